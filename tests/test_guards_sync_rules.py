"""The ``sync_rules`` guard: a draft never passes unseen with copy sync would call missing."""

from __future__ import annotations

from enrich.config import Settings, StoreConfig, SyncConfig
from enrich.guards.draft import check_draft
from enrich.missing import DraftRules, Rules, fingerprint, plain_text

SOURCE = {"id": 9, "name": "Bamboo Mug", "sku": "BM-9", "description": "",
          "attributes": [{"name": "Material", "options": ["Bamboo"]}]}
BOILER = ("This quality product is sourced from our trusted partners and meets all applicable "
          "standards. Please contact customer service for more information about delivery.")


def rules(**sync: object) -> DraftRules:
    settings = Settings(store=StoreConfig(url="https://shop.example", seo_plugin="yoast"),
                        sync=SyncConfig(**sync))  # type: ignore[arg-type]
    return DraftRules(Rules.from_settings(settings),
                      frozenset({fingerprint(plain_text(BOILER))}))


def sync_flags(fields: dict[str, str], draft_rules: DraftRules) -> dict[str, str]:
    result = check_draft(fields, SOURCE, sync_rules=draft_rules)
    return {f.field: f.detail for f in result.flags if f.guard == "sync_rules"}


def test_fields_sync_would_call_missing_are_flagged_by_name() -> None:
    flags = sync_flags({"seo_title": "Bamboo Mug",
                        "short_description": "TBD",
                        "description": f"<p>{BOILER}</p>",
                        "meta_description": "A light bamboo mug for hot drinks, made to last "
                                            "and easy to clean after every use."},
                       rules(fields=["description", "short_description", "seo_title",
                                     "meta_description"]))
    assert set(flags) == {"seo_title", "short_description", "description"}
    assert "same as the name" in flags["seo_title"]
    assert "placeholder" in flags["short_description"]
    assert "boilerplate" in flags["description"]
    assert all("next `enrich sync`" in d for d in flags.values())


def test_a_field_sync_does_not_check_is_not_flagged_and_a_flag_marks_the_draft() -> None:
    draft_rules = rules(fields=["description"])
    assert sync_flags({"seo_title": "Bamboo Mug"}, draft_rules) == {}
    result = check_draft({"description": "Bamboo Mug"}, SOURCE, sync_rules=draft_rules)
    assert result.flagged and "sync_rules" in result.guards

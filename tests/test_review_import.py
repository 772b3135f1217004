"""`review import`, `review approve` and `review reject` against a real ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from review_helpers import draft_fields, seed_sample_catalog

from enrich.cli.main import cli
from enrich.errors import InputError
from enrich.ledger import Attempt, DraftRecord, EnqueueItem, Ledger
from enrich.review.decisions import apply_decisions, parse_decisions
from enrich.review.export import export_review


def _decisions(export_id: str, ledger: Ledger, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A decisions.json as the page writes it, for drafts as they are in the ledger now."""
    out = []
    for item in items:
        draft = ledger.draft_for(item["job_id"])
        out.append({"job_id": item["job_id"], "draft_id": draft["id"],
                    "draft_created_at": draft["created_at"], "note": item.get("note", ""),
                    "decision": item["decision"],
                    **({"edited_fields": item["edited_fields"]}
                       if "edited_fields" in item else {}),
                    **({"flagged_ack": item["flagged_ack"]} if "flagged_ack" in item else {})})
    return {"format": "enrich-review-decisions", "version": 1, "export_id": export_id,
            "ledger": str(ledger.path), "exported_at": "2026-11-23T00:00:00Z",
            "saved_at": "2026-11-23T00:01:00Z", "decisions": out}


def _run(db_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", str(db_path), "review", *args])


def _redraft(ledger: Ledger, job_id: int) -> None:
    """The worker writes the same job again (rejected -> pending -> drafted, same draft id)."""
    ledger.review(job_id, "rejected")
    ledger.set_status([job_id], "pending")
    jobs = ledger.claim("redraft", limit=50)
    job = next(j for j in jobs if j.id == job_id)
    snap = ledger.get_product(job.source_id)["snapshot"]
    fields = draft_fields(snap)
    fields["seo_title"] = "Rewritten " + fields["seo_title"]
    ledger.complete(job_id, "redraft", DraftRecord(fields=fields, template_name="product_copy.j2",
                                                   template_hash="ffff", provider="offline",
                                                   model="offline-v1"),
                    Attempt(started_at=0.0, outcome="ok"))


def test_import_applies_approvals_rejections_and_notes(ledger: Ledger, db_path: Path,
                                                       tmp_path: Path) -> None:
    ids = seed_sample_catalog(ledger)
    export = export_review(ledger, tmp_path / "review.html")
    doc = _decisions(export.export_id, ledger, [
        {"job_id": ids[0], "decision": "approved"},
        {"job_id": ids[2], "decision": "rejected", "note": "Too generic, mention the fabric"},
    ])
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = _run(db_path, "import", str(path))
    assert res.exit_code == 0, res.output
    assert "2 applied (1 approved, 1 rejected, 0 edited), 0 refused" in res.output
    assert ledger.get_job(ids[0]).status == "approved"
    assert ledger.get_job(ids[2]).status == "rejected"
    assert ledger.draft_for(ids[2])["reviewer_note"] == "Too generic, mention the fabric"
    assert ledger.draft_for(ids[0])["reviewed_at"] is not None
    assert ledger.get_job(ids[1]).status == "drafted"  # undecided stays undecided


def test_edit_is_rechecked_and_stored(ledger: Ledger, db_path: Path, tmp_path: Path) -> None:
    ids = seed_sample_catalog(ledger)
    export = export_review(ledger, None)
    before = ledger.draft_for(ids[1])
    long_title = "Hoodie " * 12  # 84 characters: over the 60 a title may have
    doc = _decisions(export.export_id, ledger, [
        {"job_id": ids[1], "decision": "approved", "edited_fields": {"seo_title": long_title}},
    ])
    result = apply_decisions(ledger, parse_decisions(json.dumps(doc)))
    assert [o.job_id for o in result.applied] == [ids[1]] and not result.refused
    after = ledger.draft_for(ids[1])
    assert ledger.get_job(ids[1]).status == "approved"
    assert after["fields"] == before["fields"]  # the generated draft is kept as it was
    assert after["edited_fields"]["seo_title"].strip() == long_title.strip()
    assert set(after["edited_fields"]) == {"seo_title"}  # only what the reviewer changed
    title_flags = [f for f in after["flags"] if f["field"] == "seo_title"]
    assert [f["guard"] for f in title_flags] == ["length"], after["flags"]
    assert "the limit is 60" in title_flags[0]["detail"]
    # The grounding flag of the generated meta description is still there (not edited).
    assert [f["guard"] for f in after["flags"] if f["field"] == "meta_description"] == \
        ["grounding"]
    assert after["flagged"] == 1
    assert result.applied[0].edited and result.applied[0].flags == after["flags"]


def test_changed_drafts_are_refused_item_by_item(ledger: Ledger, db_path: Path,
                                                 tmp_path: Path) -> None:
    ids = seed_sample_catalog(ledger)
    export = export_review(ledger, None)
    doc = _decisions(export.export_id, ledger, [
        {"job_id": ids[0], "decision": "approved"},
        {"job_id": ids[3], "decision": "approved"},
        {"job_id": ids[4], "decision": "rejected", "note": "no"},
        {"job_id": ids[5], "decision": "approved"},
    ])
    # After the export: job ids[3] is written again, ids[4]'s product changes in the store.
    _redraft(ledger, ids[3])
    source = ledger.get_job(ids[4]).source_id
    ledger.enqueue_many([EnqueueItem(kind="product", source_id=source, input_hash="changed",
                                     payload={"fields": ["seo_title"]})])
    newer = ledger.list_jobs(source_id=source, status="pending")[0].id
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = _run(db_path, "import", str(path))
    assert res.exit_code == 1, res.output
    assert "2 applied" in res.output and "2 refused" in res.output
    assert f"refused job {ids[3]} (approved): the draft changed since the page was exported" \
        in res.output
    assert f"refused job {ids[4]} (rejected): the product changed in the store" in res.output
    assert f"it is now job {newer}" in res.output
    assert ledger.get_job(ids[0]).status == "approved"
    assert ledger.get_job(ids[5]).status == "approved"
    assert ledger.get_job(ids[3]).status == "drafted"  # the new draft waits for a person
    assert ledger.get_job(ids[4]).status == "superseded"


def test_redraft_between_check_and_write_is_refused_by_the_ledger(ledger: Ledger) -> None:
    ids = seed_sample_catalog(ledger, limit=3)
    draft = ledger.draft_for(ids[0])
    _redraft(ledger, ids[0])
    assert ledger.draft_for(ids[0])["id"] == draft["id"]  # same row, new text
    from enrich.errors import LedgerError
    with pytest.raises(LedgerError, match="changed since it was exported"):
        ledger.review(ids[0], "approved", expect_draft_id=draft["id"],
                      expect_draft_created_at=draft["created_at"])


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["decisions"][1].update(decision="maybe"),
     "decisions[1] (job {job}): field 'decision' must be one of approved, rejected"),
    (lambda d: d["decisions"][1].pop("draft_id"),
     "decisions[1] (job {job}): field 'draft_id' must be a positive integer"),
    (lambda d: d["decisions"][1].update(edited_fields={"seo_title": 5}),
     "decisions[1] (job {job}): edited_fields.seo_title must be text"),
    (lambda d: d["decisions"][1].update(job_id=d["decisions"][0]["job_id"]),
     "decisions[1] (job {job0}): a second decision for the same job"),
    (lambda d: d.update(format="something-else"), "not a review decisions file"),
    (lambda d: d.update(version=2), "version 2 is not supported"),
])
def test_a_bad_item_names_the_item_and_nothing_is_applied(ledger: Ledger, db_path: Path,
                                                          tmp_path: Path, mutate: Any,
                                                          message: str) -> None:
    ids = seed_sample_catalog(ledger, limit=4)
    export = export_review(ledger, None)
    doc = _decisions(export.export_id, ledger, [{"job_id": ids[0], "decision": "approved"},
                                                {"job_id": ids[1], "decision": "approved"}])
    mutate(doc)
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = _run(db_path, "import", str(path))
    assert res.exit_code == 1
    assert message.format(job=ids[1], job0=ids[0]) in res.output
    assert "what to do:" in res.output
    assert {ledger.get_job(i).status for i in ids} == {"drafted"}


def test_bad_json_and_a_file_from_another_ledger(ledger: Ledger, db_path: Path,
                                                 tmp_path: Path) -> None:
    ids = seed_sample_catalog(ledger, limit=3)
    path = tmp_path / "decisions.json"
    path.write_text('{"format": "enrich-review-decisions", "decisions": [', encoding="utf-8")
    res = _run(db_path, "import", str(path))
    assert res.exit_code == 1 and "not valid JSON" in res.output and "line 1" in res.output
    with pytest.raises(InputError, match="not UTF-8"):
        parse_decisions(b"\xff\xfe{", "x.json")
    doc = _decisions("20260101T000000Z-deadbeef", ledger,
                     [{"job_id": ids[0], "decision": "approved"}])
    doc["ledger"] = "/elsewhere/enrich.db"
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = _run(db_path, "import", str(path))
    assert res.exit_code == 1 and "another ledger (/elsewhere/enrich.db)" in res.output
    assert ledger.get_job(ids[0]).status == "drafted"
    res = _run(db_path, "import", str(tmp_path / "missing.json"))
    assert res.exit_code == 2 and "cannot read" in res.output


def test_edit_of_an_unknown_field_is_refused(ledger: Ledger) -> None:
    ids = seed_sample_catalog(ledger, limit=2)
    export = export_review(ledger, None)
    doc = _decisions(export.export_id, ledger, [
        {"job_id": ids[0], "decision": "approved", "edited_fields": {"price": "1.00"}}])
    result = apply_decisions(ledger, parse_decisions(json.dumps(doc)))
    assert not result.applied
    assert "edited field 'price' is not a field of this draft" in result.refused[0].reason
    assert ledger.get_job(ids[0]).status == "drafted"


def test_cli_approve_and_reject(ledger: Ledger, db_path: Path) -> None:
    ids = seed_sample_catalog(ledger)
    flagged = [i for i in ids if ledger.draft_for(i)["flagged"]]
    clean = [i for i in ids if not ledger.draft_for(i)["flagged"]]
    res = _run(db_path, "reject", str(clean[0]), "--note", "Wrong tone")
    assert res.exit_code == 0, res.output
    assert ledger.get_job(clean[0]).status == "rejected"
    assert ledger.draft_for(clean[0])["reviewer_note"] == "Wrong tone"
    res = _run(db_path, "approve", str(flagged[0]), str(clean[1]), "--unflagged")
    assert res.exit_code == 1
    assert f"refused job {flagged[0]} (approved): flagged by grounding" in res.output
    assert ledger.get_job(clean[1]).status == "approved"
    assert ledger.get_job(flagged[0]).status == "drafted"
    res = _run(db_path, "approve", "--unflagged", "--json")
    assert res.exit_code == 0, res.output
    done = json.loads(res.output)
    assert {o["job_id"] for o in done["applied"]} == set(clean[2:])
    assert {ledger.get_job(i).status for i in flagged} == {"drafted"}
    res = _run(db_path, "approve", "--all")
    assert res.exit_code == 0, res.output
    assert {ledger.get_job(i).status for i in flagged} == {"approved"}
    assert ledger.get_job(clean[0]).status == "rejected"  # --all is drafted jobs only
    res = _run(db_path, "approve")
    assert res.exit_code == 2 and "give job ids, --all or --unflagged" in res.output
    res = _run(db_path, "approve", "999")
    assert res.exit_code == 1 and "no job with id 999" in res.output
    res = _run(db_path, "reject")
    assert res.exit_code == 2


def test_an_edit_can_clear_a_flag_or_raise_new_ones(ledger: Ledger) -> None:
    ids = seed_sample_catalog(ledger)
    flagged = ids[1]
    meta = ledger.draft_for(flagged)["fields"]["meta_description"]
    assert meta.endswith(" Only 250 g.")
    shared = ("Soft and warm for everyday wear, this piece is made to be worn again and "
              "again through every season.")
    export = export_review(ledger, None)
    doc = _decisions(export.export_id, ledger, [
        # The reviewer removes the invented weight: the grounding flag goes away.
        {"job_id": flagged, "decision": "approved",
         "edited_fields": {"meta_description": meta.removesuffix(" Only 250 g.")}},
        # A link that is not in the product data is flagged.
        {"job_id": ids[2], "decision": "approved",
         "edited_fields": {"short_description": "<p>See https://cheap-copies.example now</p>"}},
        # Two products edited to the same text: the second is a duplicate of the first.
        {"job_id": ids[3], "decision": "approved",
         "edited_fields": {"short_description": f"<p>{shared}</p>"}},
        {"job_id": ids[4], "decision": "approved",
         "edited_fields": {"short_description": f"<p>{shared}</p>"}},
    ])
    result = apply_decisions(ledger, parse_decisions(json.dumps(doc)))
    assert not result.refused and len(result.applied) == 4
    cleared = ledger.draft_for(flagged)
    assert cleared["flags"] == [] and cleared["flagged"] == 0
    link = ledger.draft_for(ids[2])
    assert "contact" in {f["guard"] for f in link["flags"]}
    assert ledger.draft_for(ids[3])["flags"] == []
    dup = ledger.draft_for(ids[4])
    short = [f for f in dup["flags"] if f["field"] == "short_description"]
    assert [f["guard"] for f in short] == ["duplicate"]
    assert f"job {ids[3]}" in short[0]["detail"]


def test_a_moved_ledger_is_applied_with_a_warning(ledger: Ledger, db_path: Path,
                                                  tmp_path: Path) -> None:
    ids = seed_sample_catalog(ledger, limit=3)
    export = export_review(ledger, None)
    doc = _decisions(export.export_id, ledger, [{"job_id": ids[0], "decision": "approved"}])
    ledger.close()
    moved = tmp_path / "moved.db"
    db_path.rename(moved)
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = _run(moved, "import", str(path))
    assert res.exit_code == 0, res.output
    assert f"warning: the page was exported from {db_path}" in res.output
    with Ledger(moved) as reopened:
        assert reopened.get_job(ids[0]).status == "approved"


def test_export_to_a_missing_folder_is_a_usage_error(ledger: Ledger, db_path: Path,
                                                     tmp_path: Path) -> None:
    seed_sample_catalog(ledger, limit=2)
    res = _run(db_path, "export", "--out", str(tmp_path / "no" / "such" / "review.html"))
    assert res.exit_code == 2 and "cannot write the review page" in res.output


def test_undoing_an_edit_and_invoice_drafts(ledger: Ledger) -> None:
    ids = seed_sample_catalog(ledger, limit=2)
    original = ledger.draft_for(ids[0])["fields"]["seo_title"]
    export = export_review(ledger, None)
    first = _decisions(export.export_id, ledger, [
        {"job_id": ids[0], "decision": "approved", "edited_fields": {"seo_title": "Shorter"}}])
    assert apply_decisions(ledger, parse_decisions(json.dumps(first))).applied[0].edited
    assert ledger.draft_for(ids[0])["edited_fields"] == {"seo_title": "Shorter"}
    back = _decisions(export.export_id, ledger, [
        {"job_id": ids[0], "decision": "approved", "edited_fields": {"seo_title": original}}])
    outcome = apply_decisions(ledger, parse_decisions(json.dumps(back))).applied[0]
    assert not outcome.edited and outcome.fields["seo_title"] == original
    assert ledger.draft_for(ids[0])["edited_fields"] == {}
    # An invoice draft's edit must still be an invoice (tests/test_review_invoices.py has
    # the edits that are): a date that is not a date is refused, naming the field.
    ledger.enqueue_many([EnqueueItem(kind="invoice", source_id="inv-1.pdf", input_hash="h")])
    job = ledger.claim("t", kind="invoice")[0]
    ledger.complete(job.id, "t", DraftRecord(fields={"total": {"amount": "12.00"}}),
                    Attempt(started_at=0.0, outcome="ok"))
    export = export_review(ledger, None)
    doc = _decisions(export.export_id, ledger, [
        {"job_id": job.id, "decision": "approved", "edited_fields": {"issue_date": "soon"}}])
    result = apply_decisions(ledger, parse_decisions(json.dumps(doc)))
    assert "field 'issue_date'" in result.refused[0].reason
    doc["decisions"][0].pop("edited_fields")
    assert apply_decisions(ledger, parse_decisions(json.dumps(doc))).applied
    assert ledger.get_job(job.id).status == "approved"


def test_import_keeps_the_acknowledgement_of_a_flagged_approval(ledger: Ledger, db_path: Path,
                                                                tmp_path: Path) -> None:
    """An approval the page asked about is stamped on the draft's flags; one it did not ask
    about (an older page) is applied but not stamped; an edit keeps the stamp on the
    re-checked flags."""
    ids = seed_sample_catalog(ledger)
    flagged = [i for i in ids if ledger.draft_for(i)["flags"]]
    assert len(flagged) >= 3
    export = export_review(ledger, tmp_path / "review.html")
    long_title = "A title far longer than sixty characters, which the length guard flags"
    doc = _decisions(export.export_id, ledger, [
        {"job_id": flagged[0], "decision": "approved", "flagged_ack": True},
        {"job_id": flagged[1], "decision": "approved"},
        {"job_id": flagged[2], "decision": "approved", "flagged_ack": True,
         "edited_fields": {"seo_title": long_title}},
    ])
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    res = _run(db_path, "import", str(path))
    assert res.exit_code == 0, res.output
    acked = ledger.draft_for(flagged[0])["flags"]
    assert acked and all(f.get("acknowledged_at") for f in acked)
    assert not any("acknowledged_at" in f for f in ledger.draft_for(flagged[1])["flags"])
    rechecked = ledger.draft_for(flagged[2])["flags"]
    assert "length" in [f["guard"] for f in rechecked]
    assert all(f.get("acknowledged_at") for f in rechecked)
    # Rejecting it later takes the stamp off: it only ever marks a standing approval.
    doc = _decisions(export.export_id, ledger, [{"job_id": flagged[0], "decision": "rejected"}])
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert _run(db_path, "import", str(path)).exit_code == 0
    assert not any("acknowledged_at" in f for f in ledger.draft_for(flagged[0])["flags"])


def test_flagged_ack_must_be_a_boolean() -> None:
    raw = {"format": "enrich-review-decisions", "version": 1, "export_id": "x",
           "decisions": [{"job_id": 1, "draft_id": 1, "decision": "approved",
                          "flagged_ack": "yes"}]}
    with pytest.raises(InputError, match=r"decisions\[0\] \(job 1\): field 'flagged_ack' "
                                         r"must be true or false"):
        parse_decisions(json.dumps(raw))
    raw["decisions"][0]["flagged_ack"] = True
    assert parse_decisions(json.dumps(raw)).decisions[0].as_dict()["flagged_ack"] is True

"""Character limits the page counts against, and the words that explain each guard.

The limits are the guards' own (``[guards] min_chars / max_chars``), so the count on the
page and the check that flags a draft can never disagree.
"""

from __future__ import annotations

from enrich.config import GuardsConfig
from enrich.guards import FIELDS

#: Plain words for each guard (names as in enrich.guards.GUARDS), shown before its detail.
GUARD_EXPLANATIONS: dict[str, str] = {
    "schema": "The draft is missing a field it was asked for, or has one of the wrong type.",
    "length": "The text is outside the length search engines and the store expect.",
    "html": "The draft had HTML that is not allowed on product pages; it was cleaned.",
    "grounding": "The text states a number, unit or model code that is not in the product "
                 "data. Check it is true before approving.",
    "contact": "The text contains a web address, e-mail address or phone number that is not "
               "in the product data.",
    "injection": "The product data holds an instruction to the model, or the text reads like "
                 "a model talking. Read it carefully.",
    "duplicate": "The text nearly repeats another product's; search engines may ignore it.",
    "sync_rules": "The next sync would call this field missing (the same as the name, too "
                  "short, a placeholder, or supplier boilerplate) and queue it again.",
    "input": "The product's own data has a problem sync found (an instruction hidden in it, "
             "two values for one quantity, a bad weight or price, markup in the name, a "
             "duplicate SKU). Check the draft against the store before approving.",
}


def explain(guard: str) -> str:
    return GUARD_EXPLANATIONS.get(guard, f"The {guard} check flagged this field.")


def field_limits(config: GuardsConfig | None = None) -> dict[str, tuple[int | None, int | None]]:
    """(min, max) characters per field; None where there is no bound."""
    cfg = config or GuardsConfig()
    out: dict[str, tuple[int | None, int | None]] = {}
    for name in FIELDS:
        low, high = cfg.limits(name)
        out[name] = (low or None, high or None)
    return out

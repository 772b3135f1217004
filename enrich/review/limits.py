"""Character limits the page counts against, and the words that explain each guard.

The limits come from the guards when they declare them, so the page and the checks that
flag a draft can never disagree; the constants here are the fallback.
"""

from __future__ import annotations

from typing import Any

#: (minimum, maximum) characters per field; None = no bound. Search engines cut titles
#: at about 60 characters and descriptions at about 160; shorter than 120 wastes the slot.
DEFAULT_LIMITS: dict[str, tuple[int | None, int | None]] = {
    "seo_title": (None, 60),
    "meta_description": (120, 160),
    "focus_keyword": (None, 60),
    "name": (None, 120),
    "short_description": (None, 800),
    "image_alt": (None, 125),
}

#: Plain words for each guard, shown above the guard's own detail.
GUARD_EXPLANATIONS: dict[str, str] = {
    "schema": "The draft is missing a field or has one of the wrong type.",
    "length": "The text is outside the length search engines and the store expect.",
    "html": "The text had HTML that is not allowed on product pages; it was cleaned.",
    "grounding": "The text states a number, unit or claim that is not in the product data. "
                 "Check it is true before approving.",
    "hallucination": "The text states a number, unit or claim that is not in the product "
                     "data. Check it is true before approving.",
    "numbers": "The text states a number or unit that is not in the product data.",
    "claims": "The text makes a claim the product data does not support.",
    "links": "The text contains a link, email address or script that is not in the product "
             "data.",
    "urls": "The text contains a link or email address that is not in the product data.",
    "injection": "The product data or the text looks like an instruction to the model; "
                 "read it carefully.",
    "duplicate": "The same text is used on other products; search engines may ignore it.",
    "empty": "A field the store needs came back empty.",
    "unchecked": "The edited text could not be re-checked by the guards.",
}


def explain(guard: str) -> str:
    return GUARD_EXPLANATIONS.get(guard, f"The {guard} check flagged this field.")


def field_limits() -> dict[str, tuple[int | None, int | None]]:
    """The limits in force: the guards' when they declare them, else DEFAULT_LIMITS."""
    limits = dict(DEFAULT_LIMITS)
    try:
        from enrich import guards
    except ImportError:
        return limits
    declared: Any = getattr(guards, "DEFAULT_LIMITS", None) or getattr(guards, "LIMITS", None)
    if isinstance(declared, dict):
        for name, value in declared.items():
            bounds = _bounds(value)
            if bounds is not None:
                limits[str(name)] = bounds
    return limits


def _bounds(value: Any) -> tuple[int | None, int | None] | None:
    if isinstance(value, int):
        return (None, value)
    if isinstance(value, tuple | list) and len(value) == 2:
        return (value[0], value[1])
    if isinstance(value, dict):
        return (value.get("min"), value.get("max"))
    low, high = getattr(value, "min", None), getattr(value, "max", None)
    if low is not None or high is not None:
        return (low, high)
    return None

"""Every guard run on one draft (``check_draft``): the package docstring lists them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from enrich.config import GuardsConfig
from enrich.guards.duplicates import DUPLICATE_FIELDS, DuplicateIndex, Match
from enrich.guards.grounding import SourceNumbers, codes, quantities
from enrich.guards.html import sanitize_html, strip_tags
from enrich.guards.injection import find_instructions, has_instruction, obeyed, output_marker
from enrich.guards.inputs import SHOWN_MARKUP_RE, Conflict, bad_values, conflicts
from enrich.guards.sync_rules import SyncRules, sync_rule_problems
from enrich.guards.text import Source, find_contacts, plain_text, squash, without_contacts

FIELDS: tuple[str, ...] = ("name", "description", "short_description", "seo_title",
                           "meta_description", "focus_keyword", "image_alt")
HTML_FIELDS = frozenset({"description", "short_description"})
_DIGIT_RE = re.compile(r"\d")
GUARDS: tuple[str, ...] = ("schema", "length", "html", "grounding", "contact", "injection",
                           "duplicate", "sync_rules", "input")
LABELS: dict[str, str] = {
    "name": "title", "description": "description", "short_description": "short description",
    "seo_title": "SEO title", "meta_description": "meta description",
    "focus_keyword": "focus keyword", "image_alt": "image alt text",
}

#: Default (min, max) characters per field, as the review page counts them.
DEFAULT_LIMITS: dict[str, dict[str, int]] = {
    name: {"min": GuardsConfig().limits(name)[0], "max": GuardsConfig().limits(name)[1]}
    for name in FIELDS
}

__all__ = [
    "DEFAULT_LIMITS",
    "GUARDS",
    "DuplicateIndex",
    "Flag",
    "GuardResult",
    "Match",
    "check_draft",
]


@dataclass(frozen=True)
class Flag:
    """One failed check: which guard, on which field, and a sentence for the store owner."""

    guard: str
    field: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"guard": self.guard, "field": self.field, "detail": self.detail}


@dataclass
class GuardResult:
    """The cleaned fields (sanitised HTML, stripped text) and every flag raised."""

    fields: dict[str, Any]
    flags: list[Flag] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def guards(self) -> list[str]:
        """Names of the guards that flagged, each once, in GUARDS order."""
        raised = {f.guard for f in self.flags}
        return [g for g in GUARDS if g in raised]

    def flag_dicts(self) -> list[dict[str, str]]:
        return [f.as_dict() for f in self.flags]


def _label(name: str) -> str:
    return LABELS.get(name, name)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Check:
    """One draft being checked: collects flags with their sentences."""

    def __init__(self, source: Mapping[str, Any], limits: GuardsConfig) -> None:
        self.source = Source(source)
        self.limits = limits
        self.flags: list[Flag] = []
        self._numbers: SourceNumbers | None = None
        self._conflicts: list[Conflict] | None = None
        self.bad = bad_values(source)

    def flag(self, guard: str, name: str, detail: str) -> None:
        self.flags.append(Flag(guard, name, detail))

    @property
    def numbers(self) -> SourceNumbers:
        if self._numbers is None:
            self._numbers = SourceNumbers(self.source)
        return self._numbers

    # -- schema -----------------------------------------------------------------------------

    def schema(self, fields: Mapping[str, Any], expected: Iterable[str] | None
               ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in FIELDS:
                self.flag("schema", str(name), f"The draft has a field “{_short(str(name), 40)}”"
                          " that enrich does not write; it was dropped.")
                continue
            if name == "image_alt":
                out[name] = self._alt_list(value)
            elif value is None:
                out[name] = ""
            elif isinstance(value, str):
                out[name] = value
            else:
                self.flag("schema", name, f"The {_label(name)} should be text but is "
                          f"{type(value).__name__}; it was turned into text.")
                out[name] = str(value)
        for name in expected or ():
            if name not in out:
                self.flag("schema", name, f"The {_label(name)} was requested but the draft "
                          "does not have one.")
        return out

    def _alt_list(self, value: Any) -> list[str]:
        if isinstance(value, str):
            self.flag("schema", "image_alt", "The image alt texts should be a list, one per "
                      "image, but came as one text; it was used for the first image.")
            return [value]
        if not isinstance(value, list):
            self.flag("schema", "image_alt", "The image alt texts should be a list, one per "
                      f"image, but came as {type(value).__name__}; they were dropped.")
            return []
        # None stays as an empty alt text so the list still lines up with the images.
        items = ["" if v is None else v if isinstance(v, str) else str(v) for v in value]
        if any(v is not None and not isinstance(v, str) for v in value):
            self.flag("schema", "image_alt", "Some image alt texts were not text; they were "
                      "turned into text.")
        return items

    # -- html -------------------------------------------------------------------------------

    def html(self, name: str, value: str) -> str:
        if name in HTML_FIELDS:
            cleaned, removed = sanitize_html(value, self.limits.html_tags,
                                             self.source.contacts[0] if "href" in value.lower()
                                             else set())
            where = f"the {_label(name)}"
        else:
            cleaned, removed = strip_tags(value)
            where = f"the {_label(name)} (plain text, no HTML allowed)"
        if removed:
            self.flag("html", name, f"Removed from {where}: {', '.join(removed)}. "
                      "Check that the cleaned text still reads well.")
        return cleaned.strip()

    # -- length -----------------------------------------------------------------------------

    def length(self, name: str, text: str, which: str = "") -> None:
        low, high = self.limits.limits(name)
        label = which or f"The {_label(name)}"
        size = len(text)
        if size == 0:
            self.flag("length", name, f"{label} is empty.")
        elif high and size > high:
            self.flag("length", name, f"{label} is {size} characters long; the limit is {high}.")
        elif size < low:
            self.flag("length", name, f"{label} is only {size} characters long; the minimum "
                      f"is {low}.")

    # -- facts ------------------------------------------------------------------------------

    def contact(self, name: str, text: str) -> None:
        if "@" not in text and "." not in text and not _DIGIT_RE.search(text):
            return
        urls, emails, phones = find_contacts(text)
        for url in dict.fromkeys(urls):
            if not self.source.has_url(url):
                self.flag("contact", name, f"The {_label(name)} contains the web address "
                          f"{url}, which is not in the product data.")
        for email in dict.fromkeys(emails):
            if not self.source.has_email(email):
                self.flag("contact", name, f"The {_label(name)} contains the e-mail address "
                          f"{email}, which is not in the product data.")
        for phone in dict.fromkeys(phones):
            if not self.source.has_phone(phone):
                self.flag("contact", name, f"The {_label(name)} contains the phone number "
                          f"{phone}, which is not in the product data.")

    @property
    def conflicts(self) -> list[Conflict]:
        if self._conflicts is None:
            self._conflicts = conflicts(self.source.product)
        return self._conflicts

    def bad_input(self, name: str, text: str) -> None:
        """The draft repeats a weight, size or price the data has wrong (sync named it)."""
        for where, value, why in self.bad:
            if re.search(r"(?<![\w.,-])" + re.escape(value) + r"(?![\w.,])", text,
                         re.IGNORECASE):
                self.flag("grounding", name, f"The {_label(name)} repeats “{value}”, but the "
                          f"product data's {where.replace('_', ' ')} {why}; leave it out or "
                          "correct the product first.")

    def shown_markup(self, name: str, plain: str) -> None:
        """Markup that would show as text ("&lt;script&gt;" reads "<script>" on the page)."""
        m = SHOWN_MARKUP_RE.search(unescape(plain) if "&" in plain else plain)
        if m:
            self.flag("html", name, f"The {_label(name)} shows markup as text "
                      f"(“{_short(m.group(0), 40)}”); the product data carries markup, "
                      "which must not reach the copy.")

    def grounding(self, name: str, text: str) -> None:
        if not _DIGIT_RE.search(text):
            return
        text = without_contacts(text)
        seen: set[str] = set()
        for q in quantities(text, contacts_removed=True):
            if q.text in seen:
                continue
            seen.add(q.text)
            conflict = next((c for c in self.conflicts if q.family == c.family and any(
                q.base_values() & v.base_values() for v in c.values)), None)
            if conflict is not None:
                self.flag("grounding", name, f"The {_label(name)} says “{q.text}”, but "
                          f"{conflict.sentence()}; check which is right before approving.")
                continue
            problem = self.numbers.problem(q)
            if problem:
                self.flag("grounding", name, f"The {_label(name)} says “{q.text}”, but "
                          f"{problem}.")
        for code in dict.fromkeys(codes(text, contacts_removed=True)):
            if code.lower() not in self.numbers.codes:
                self.flag("grounding", name, f"The {_label(name)} mentions “{code}”, which is "
                          "not in the product data.")

    def injection(self, texts: dict[str, tuple[str, str]]) -> None:
        for name, (raw, _plain) in texts.items():
            marker = output_marker(raw)
            if marker:
                self.flag("injection", name, f"The {_label(name)} contains “{_short(marker)}”, "
                          "which reads like a message from the model, not product copy.")
        if not has_instruction(self.source.text):
            return
        instructions = find_instructions(self.source.text)
        source_lower = self.source.lower
        spans = " \n ".join(i.context for i in instructions)
        for name, (_raw, plain) in texts.items():
            lower = squash(plain)
            for instruction in instructions:
                found = obeyed(lower, instruction, source_lower, spans)
                if found is None:
                    continue
                phrase, kind = found
                if kind == "payload":
                    self.flag("injection", name, f"The {_label(name)} contains “{phrase}”, "
                              "which an instruction hidden in the product data asked for "
                              f"(“{_short(instruction.text)}”). The model may have followed "
                              "it; rewrite this field.")
                else:
                    self.flag("injection", name, f"The {_label(name)} repeats “{phrase}” from "
                              "an instruction hidden in the product data "
                              f"(“{_short(instruction.text)}”); rewrite this field.")
                break


def as_guards_config(limits: GuardsConfig | Mapping[str, Any] | None) -> GuardsConfig:
    """``[guards]`` settings from a GuardsConfig, or a ``{field: {"min", "max"}}`` mapping."""
    if limits is None:
        return GuardsConfig()
    if isinstance(limits, GuardsConfig):
        return limits
    lows: dict[str, int] = {}
    highs: dict[str, int] = {}
    for name, bounds in limits.items():
        low, high = ((bounds.get("min"), bounds.get("max")) if isinstance(bounds, Mapping)
                     else tuple(bounds) if isinstance(bounds, list | tuple) else (None, bounds))
        if low is not None:
            lows[name] = int(low)
        if high is not None:
            highs[name] = int(high)
    return GuardsConfig.model_validate({"min_chars": lows, "max_chars": highs})


def check_draft(fields: Mapping[str, Any], source: Mapping[str, Any], *,
                limits: GuardsConfig | Mapping[str, Any] | None = None,
                duplicates: DuplicateIndex | None = None,
                expected: Iterable[str] | None = None,
                source_id: str | int | None = None,
                sync_rules: SyncRules | None = None,
                input_flags: Iterable[Mapping[str, Any]] | None = None) -> GuardResult:
    """Check one draft against its source product; return the cleaned fields and flags.

    ``limits`` is ``settings.guards`` (a ``{field: {"min", "max"}}`` mapping also works).
    ``expected`` names the fields the job asked for (a missing one is flagged).
    ``duplicates`` is only read: add the draft to it once it is recorded.
    ``sync_rules``: sync's missing-field rules; a field they would call missing is flagged.
    ``input_flags`` are the product's input problems sync recorded (``inputs.py``, the
    ledger's ``products.input_flags``): each becomes an ``input`` flag on the draft.
    """
    check = _Check(source, as_guards_config(limits))
    values = check.schema(fields, expected)
    cleaned: dict[str, Any] = {}
    texts: dict[str, tuple[str, str]] = {}
    for name, value in values.items():
        if name == "image_alt":
            alts = [check.html(name, alt) for alt in value]
            cleaned[name] = alts
            images = check.source.product.get("images")
            count = len(images) if isinstance(images, list) else None
            if count is not None and count != len(alts):
                check.flag("schema", name, f"There are {len(alts)} image alt text(s) for "
                           f"{count} image(s).")
            elif not alts:
                check.flag("length", name, "The image alt texts are empty.")
            for i, alt in enumerate(alts, 1):
                check.length(name, alt, f"The alt text of image {i}")
            texts[name] = ("\n".join(value), "\n".join(alts))
            continue
        clean = check.html(name, value)
        cleaned[name] = clean
        plain = plain_text(clean) if name in HTML_FIELDS else clean
        check.length(name, plain)
        texts[name] = (value, plain)
    for name, (_raw, plain) in texts.items():
        check.contact(name, plain)
        check.grounding(name, plain)
        check.bad_input(name, plain)
        check.shown_markup(name, plain)
    check.injection(texts)
    for flag in input_flags or ():
        what = str(flag.get("flag") or "input")
        check.flag("input", str(flag.get("field") or ""),
                   f"Input problem ({what}): {flag.get('detail') or ''}".strip())
    if duplicates is not None:
        own = source_id if source_id is not None else source.get("id")
        for name in DUPLICATE_FIELDS:
            text = cleaned.get(name)
            if not isinstance(text, str):
                continue
            match = duplicates.check(text, source_id=own)
            if match:
                job = f" (job {match.job_id})" if match.job_id is not None else ""
                check.flag("duplicate", name, f"The {_label(name)} is {match.similarity:.0%} "
                           f"the same as the {_label(match.field)} drafted for product "
                           f"{match.source_id}{job}. Make it specific to this product.")
    if sync_rules is not None:
        for name, why in sync_rule_problems(cleaned, source, sync_rules).items():
            check.flag("sync_rules", name, f"The {_label(name)} would count as missing at the "
                       f"next `enrich sync` ({why}); rewrite it or approve it knowingly.")
    return GuardResult(fields=cleaned, flags=check.flags)

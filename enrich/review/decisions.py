"""Review decisions: the ``decisions.json`` format, and applying decisions to the ledger.

The page (opened from disk) cannot write to the ledger, so it saves a file; ``review
import`` applies it here, and ``review serve`` applies each decision the same way the
moment it is made. A decision names the draft it was made on (id and creation time): a
draft that was redrafted or superseded since the page was exported is refused item by
item, so nobody approves text they never saw. An edited draft is re-checked by the guards
and its flags replaced by what they find now.

Approving a flagged draft in the page asks first; the decision then carries
``"flagged_ack": true`` and each of the draft's flags is stamped ``acknowledged_at`` in
the ledger, so an approval made knowing the draft was flagged can be told from one made
without being asked (``review approve --all``). The served page refuses an approval of a
flagged draft that does not carry the acknowledgement.

decisions.json::

    {"format": "enrich-review-decisions", "version": 1,
     "export_id": "...", "ledger": "/path/enrich.db", "exported_at": "...",
     "saved_at": "...",
     "decisions": [{"job_id": 12, "draft_id": 9, "draft_created_at": 1763900000.123,
                    "decision": "approved", "note": "", "flagged_ack": true,
                    "edited_fields": {"seo_title": "..."}}]}
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.config import GuardsConfig
from enrich.errors import EnrichError, InputError, NotFound, UsageError
from enrich.guards.draft import DuplicateIndex, check_draft
from enrich.guards.duplicates import DUPLICATE_FIELDS
from enrich.ledger import JobStatus, Ledger
from enrich.ledger.codec import loads
from enrich.ledger.drafts import drafted_job_ids, newer_job_for
from enrich.ledger.inputs import product_input_flags
from enrich.review.invoices import InvoiceEditError, edit_invoice
from enrich.review.queries import ACK_KEY, EXPORTS_META_PREFIX, ReviewItem, review_item

FORMAT = "enrich-review-decisions"
VERSION = 1
#: Decisions a file may carry; the served page may also withdraw one (back to drafted).
FILE_DECISIONS = ("approved", "rejected")
SERVED_DECISIONS = ("approved", "rejected", "drafted")
REVIEWABLE = ("drafted", "approved", "rejected", "conflict")
MAX_NOTE_CHARS = 4000



@dataclass
class Decision:
    """One reviewer decision on one draft, as it came from the page."""

    job_id: int
    draft_id: int
    decision: str
    note: str | None = None
    edited_fields: dict[str, str] | None = None
    draft_created_at: float | None = None
    index: int = 0  # position in the file, for messages
    #: The reviewer was told the draft is flagged and approved it anyway.
    flagged_ack: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job_id": self.job_id, "draft_id": self.draft_id,
                               "draft_created_at": self.draft_created_at,
                               "decision": self.decision, "note": self.note or ""}
        if self.edited_fields:
            out["edited_fields"] = self.edited_fields
        if self.flagged_ack:
            out["flagged_ack"] = True
        return out


@dataclass
class DecisionsFile:
    decisions: list[Decision]
    export_id: str | None = None
    ledger: str | None = None
    exported_at: str | None = None


@dataclass
class ItemOutcome:
    """What happened to one decision: applied, or refused with the reason."""

    job_id: int
    decision: str
    applied: bool
    reason: str | None = None
    status: str | None = None
    edited: bool = False
    flags: list[dict[str, str]] = field(default_factory=list)
    fields: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "decision": self.decision, "applied": self.applied,
                "reason": self.reason, "status": self.status, "edited": self.edited,
                "flags": self.flags, "fields": self.fields}


@dataclass
class ApplyResult:
    applied: list[ItemOutcome] = field(default_factory=list)
    refused: list[ItemOutcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, outcome: ItemOutcome) -> None:
        (self.applied if outcome.applied else self.refused).append(outcome)

    def as_dict(self) -> dict[str, Any]:
        return {"applied": [o.as_dict() for o in self.applied],
                "refused": [o.as_dict() for o in self.refused], "warnings": self.warnings}


# -- parsing --------------------------------------------------------------------------------


def _bad(where: str, what: str) -> InputError:
    return InputError(f"{where}: {what}",
                      "Save the decisions again from the review page, or fix that item "
                      "by hand; nothing was applied.")


def parse_decision(raw: Any, where: str, *, allowed: Sequence[str] = FILE_DECISIONS,
                   index: int = 0) -> Decision:
    """Validate one decision object; every problem names the item and the field."""
    if not isinstance(raw, dict):
        raise _bad(where, f"must be an object, not {type(raw).__name__}")
    job = raw.get("job_id")
    if job is not None:
        where = f"{where} (job {job})"
    for key in ("job_id", "draft_id"):
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _bad(where, f"field {key!r} must be a positive integer, got {value!r}")
    decision = raw.get("decision")
    if decision not in allowed:
        raise _bad(where, f"field 'decision' must be one of {', '.join(allowed)}, "
                          f"got {decision!r}")
    note = raw.get("note")
    if note is not None and not isinstance(note, str):
        raise _bad(where, f"field 'note' must be text, got {type(note).__name__}")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise _bad(where, f"field 'note' is longer than {MAX_NOTE_CHARS} characters")
    created = raw.get("draft_created_at")
    if created is not None and (isinstance(created, bool)
                                or not isinstance(created, int | float)):
        raise _bad(where, f"field 'draft_created_at' must be a number, got {created!r}")
    edited = raw.get("edited_fields")
    if edited is not None:
        if not isinstance(edited, dict):
            raise _bad(where, "field 'edited_fields' must be an object of field -> text")
        for name, value in edited.items():
            if not isinstance(value, str):
                raise _bad(where, f"edited_fields.{name} must be text, "
                                  f"got {type(value).__name__}")
    ack = raw.get("flagged_ack", False)
    if not isinstance(ack, bool):
        raise _bad(where, f"field 'flagged_ack' must be true or false, got {ack!r}")
    unknown = set(raw) - {"job_id", "draft_id", "decision", "note", "edited_fields",
                          "draft_created_at", "name", "flagged_ack"}
    if unknown:
        raise _bad(where, f"unknown field {sorted(unknown)[0]!r}")
    return Decision(job_id=raw["job_id"], draft_id=raw["draft_id"], decision=decision,
                    note=note, edited_fields=edited or None,
                    draft_created_at=float(created) if created is not None else None,
                    index=index, flagged_ack=ack and decision == "approved")


def parse_decisions(text: str | bytes, source: str = "decisions.json") -> DecisionsFile:
    """Parse and validate a whole decisions file before anything is applied."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text ({exc.reason})",
                         "Pass the decisions.json saved by the review page.") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}",
                         "Pass the decisions.json saved by the review page.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{source}: not a review decisions file (no \"format\": "
                         f"\"{FORMAT}\")", "Pass the decisions.json saved by the review page.")
    if data.get("version") != VERSION:
        raise InputError(f"{source}: decisions format version {data.get('version')!r} is not "
                         f"supported (this enrich reads version {VERSION})",
                         "Upgrade enrich, or save the decisions again from a page exported "
                         "by this version.")
    items = data.get("decisions")
    if not isinstance(items, list):
        raise InputError(f"{source}: field 'decisions' must be a list",
                         "Pass the decisions.json saved by the review page.")
    decisions: list[Decision] = []
    seen: dict[int, int] = {}
    for i, raw in enumerate(items):
        decision = parse_decision(raw, f"{source}: decisions[{i}]", index=i)
        if decision.job_id in seen:
            raise _bad(f"{source}: decisions[{i}] (job {decision.job_id})",
                       f"a second decision for the same job (first at decisions"
                       f"[{seen[decision.job_id]}])")
        seen[decision.job_id] = i
        decisions.append(decision)
    return DecisionsFile(decisions=decisions, export_id=_opt_str(data.get("export_id")),
                         ledger=_opt_str(data.get("ledger")),
                         exported_at=_opt_str(data.get("exported_at")))


def load_decisions(path: Path) -> DecisionsFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}",
                         "Pass the path of the decisions.json the review page saved.") from None
    return parse_decisions(raw, str(path))


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# -- re-checking an edit --------------------------------------------------------------------


class GuardChecker:
    """Re-checks a reviewer's edit with the project's guards, as the worker checked the draft.

    The duplicate check compares against the catalog's other live drafts; that index is
    built from the ledger on the first edit only (most imports have none) and grows with
    each edit applied, so two products edited to the same text are caught too.
    """

    def __init__(self, ledger: Ledger, config: GuardsConfig | None = None) -> None:
        self.ledger = ledger
        self.config = config or GuardsConfig()
        self._index: DuplicateIndex | None = None

    def __call__(self, fields: dict[str, Any], item: ReviewItem
                 ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        if self._index is None:
            self._index = DuplicateIndex.from_ledger(
                self.ledger, threshold=self.config.duplicate_threshold,
                min_words=self.config.duplicate_min_words)
        wanted = item.payload.get("fields")
        result = check_draft(fields, item.source(), limits=self.config, duplicates=self._index,
                             expected=wanted if isinstance(wanted, list) else None,
                             source_id=item.source_id,
                             input_flags=(product_input_flags(self.ledger, item.source_id)
                                          if item.kind == "product" else None))
        return dict(result.fields), result.flag_dicts()

    def recorded(self, item: ReviewItem, fields: dict[str, Any]) -> None:
        """An edit was applied: later edits of other products are compared with it too."""
        if self._index is None:
            return
        for name in DUPLICATE_FIELDS:
            text = fields.get(name)
            if isinstance(text, str):
                self._index.add(item.job_id, item.source_id, text, field=name)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None


# -- applying -------------------------------------------------------------------------------


def _no_draft_reason(ledger: Ledger, job_id: int) -> str:
    """Why a job has nothing to review: it has no draft yet, or there is no such job."""
    try:
        ledger.get_job(job_id)
    except NotFound:
        return f"no job with id {job_id}"
    return f"job {job_id} has no draft"


def _refuse(d: Decision, reason: str, status: str | None = None) -> ItemOutcome:
    return ItemOutcome(job_id=d.job_id, decision=d.decision, applied=False, reason=reason,
                       status=status)


def _guards(flags: Sequence[dict[str, str]]) -> str:
    return ", ".join(sorted({str(f.get("guard", "?")) for f in flags}))


def acknowledged(flags: Sequence[dict[str, str]], ack: bool) -> list[dict[str, str]]:
    """``flags`` stamped as approved knowingly (``ack``), or with any such stamp removed.

    A stamp already there keeps its time: approving again does not rewrite history.
    """
    if ack:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [{**f, ACK_KEY: f.get(ACK_KEY) or now} for f in flags]
    return [{k: v for k, v in f.items() if k != ACK_KEY} for f in flags]


def apply_decision(ledger: Ledger, d: Decision, *, check: GuardChecker | None = None,
                   require_ack: bool = False) -> ItemOutcome:
    """Apply one decision; a decision that cannot be applied is refused with the reason.

    An edit is re-checked with ``check`` (a GuardChecker on this ledger when not given).
    ``require_ack`` refuses approving a draft that is flagged (as the reviewer saw it)
    without ``flagged_ack``: the served page always asks first, so a decision without it
    did not come through the question.
    """
    item = review_item(ledger, d.job_id)
    if item is None:
        return _refuse(d, _no_draft_reason(ledger, d.job_id))
    if item.status == JobStatus.SUPERSEDED:
        newer = newer_job_for(ledger, item.kind, item.source_id, item.job_id)
        return _refuse(d, "the product changed in the store after this draft was written"
                          + (f"; it is now job {newer}" if newer else "")
                          + ": export the review page again", item.status)
    if item.draft_id != d.draft_id or (d.draft_created_at is not None and
                                       abs(item.draft_created_at - d.draft_created_at) > 1e-6):
        return _refuse(d, "the draft changed since the page was exported (it was written "
                          "again): export the review page again and review the new draft",
                       item.status)
    if item.status not in REVIEWABLE:
        return _refuse(d, f"the job is {item.status}; only drafted, approved or rejected "
                          "drafts can be reviewed", item.status)
    if require_ack and d.decision == "approved" and item.flags and not d.flagged_ack:
        return _refuse(d, f"the draft is flagged ({_guards(item.flags)}): confirm in the page "
                          "that you read the flags (flagged_ack), then approve it again",
                       item.status)
    edited: dict[str, Any] | None = None
    flags: list[dict[str, str]] | None = None
    if d.edited_fields and item.kind == "invoice":
        try:
            checked, flags = edit_invoice(item, d.edited_fields)
        except InvoiceEditError as exc:
            return _refuse(d, str(exc), item.status)
        # The whole invoice is the edit ({} = undone): `invoices export` reads it whole.
        edited = checked if checked != item.fields else {}
    elif d.edited_fields:
        if item.kind != "product":
            return _refuse(d, f"an {item.kind} draft cannot be edited in the review page; "
                              "approve or reject it", item.status)
        unknown = sorted(set(d.edited_fields) - set(item.fields))
        if unknown:
            return _refuse(d, f"edited field {unknown[0]!r} is not a field of this draft "
                              f"(it has {', '.join(sorted(item.fields))})", item.status)
        not_text = sorted(k for k in d.edited_fields if not isinstance(item.fields[k], str))
        if not_text:
            return _refuse(d, f"field {not_text[0]!r} is not text and cannot be edited here",
                           item.status)
        merged = {**item.effective_fields, **d.edited_fields}
        if merged != item.effective_fields:
            own = check is None
            checker = check or GuardChecker(ledger)
            try:
                checked, flags = checker(merged, item)
            finally:
                if own:
                    checker.close()
            # Only what differs from the generated draft is the reviewer's edit ({} = the
            # edit was undone); the publisher lays it over the draft field by field.
            edited = {k: v for k, v in checked.items()
                      if k in item.fields and v != item.fields[k]}
    stored = acknowledged(item.flags if flags is None else flags,
                          d.decision == "approved" and d.flagged_ack)
    if flags is not None or stored != item.flags:
        flags = stored
    try:
        ledger.review(d.job_id, d.decision, note=d.note, edited_fields=edited, flags=flags,
                      expect_draft_id=d.draft_id,
                      expect_draft_created_at=item.draft_created_at)
    except EnrichError as exc:
        return _refuse(d, exc.message, item.status)
    after = review_item(ledger, d.job_id)
    assert after is not None
    if edited is not None and check is not None:
        check.recorded(after, edited)
    return ItemOutcome(job_id=d.job_id, decision=d.decision, applied=True, status=after.status,
                       edited=bool(edited), flags=after.flags,
                       fields=after.effective_fields)


def known_export(ledger: Ledger, export_id: str) -> dict[str, Any] | None:
    return loads(ledger.get_meta(EXPORTS_META_PREFIX + export_id))


def apply_decisions(ledger: Ledger, decisions: DecisionsFile, *,
                    guards: GuardsConfig | None = None) -> ApplyResult:
    """Apply every decision that still fits its draft; refuse the rest one by one.

    ``guards`` are the limits edits are re-checked against (``settings.guards``).
    """
    result = ApplyResult()
    if decisions.export_id is None or known_export(ledger, decisions.export_id) is None:
        raise InputError(
            f"the decisions were saved from a page exported from another ledger "
            f"({decisions.ledger or 'unknown'}), not {ledger.path}",
            "Run `enrich review import` with --db pointing at the ledger the page was "
            "exported from.")
    if decisions.ledger and Path(decisions.ledger).resolve() != ledger.path.resolve():
        result.warnings.append(f"the page was exported from {decisions.ledger}; applying to "
                               f"{ledger.path} (the same ledger, moved or reached by another "
                               "path)")
    check = GuardChecker(ledger, guards)
    try:
        for d in decisions.decisions:
            result.add(apply_decision(ledger, d, check=check))
    finally:
        check.close()
    return result


def _bulk(ledger: Ledger, job_ids: Sequence[int], decision: str,
          note: str | None) -> ApplyResult:
    result = ApplyResult()
    for job_id in job_ids:
        item = review_item(ledger, job_id)
        if item is None:
            result.add(ItemOutcome(job_id, decision, False, _no_draft_reason(ledger, job_id)))
            continue
        result.add(apply_decision(ledger, Decision(job_id=job_id, draft_id=item.draft_id,
                                                   decision=decision, note=note,
                                                   draft_created_at=item.draft_created_at)))
    return result


def approve_jobs(ledger: Ledger, job_ids: Sequence[int] = (), *, all_drafted: bool = False,
                 unflagged: bool = False, note: str | None = None) -> ApplyResult:
    """Approve jobs by id, every drafted job (``all_drafted``), or the unflagged ones.

    With ids and ``unflagged``, only the ids whose draft no guard flagged are approved;
    the others are refused with the reason, so a bulk approval never slips a flag through.
    """
    if not job_ids and not all_drafted and not unflagged:
        raise UsageError("nothing to approve: give job ids, --all or --unflagged",
                         "See `enrich review approve --help`.")
    ids = list(job_ids)
    if not ids:
        ids = drafted_job_ids(ledger, unflagged=unflagged)
        return _bulk(ledger, ids, "approved", note)
    if not unflagged:
        return _bulk(ledger, ids, "approved", note)
    result = ApplyResult()
    clean: list[int] = []
    for job_id in ids:
        item = review_item(ledger, job_id)
        if item is not None and item.flags:
            guards = _guards(item.flags)
            result.add(ItemOutcome(job_id, "approved", False,
                                   f"flagged by {guards} (--unflagged approves only drafts "
                                   "no guard flagged)", item.status))
        else:
            clean.append(job_id)
    more = _bulk(ledger, clean, "approved", note)
    result.applied += more.applied
    result.refused += more.refused
    return result


def reject_jobs(ledger: Ledger, job_ids: Sequence[int], *,
                note: str | None = None) -> ApplyResult:
    """Reject jobs by id, with an optional note saying why (kept on the draft)."""
    if not job_ids:
        raise UsageError("nothing to reject: give job ids",
                         "See `enrich review reject --help`.")
    return _bulk(ledger, job_ids, "rejected", note)

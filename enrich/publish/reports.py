"""What a publish or a rollback did (or, dry run, would do): one report shape for both.

Why one class: both commands decide per product (an action), write through the same batch
writer (an outcome per item, the batch count, what crash recovery settled) and end with the
same exit reason; only the names of their actions and a line or two of extras differ. The
``counts`` keys, their order and ``as_dict`` are the ``--json`` contract of each command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from enrich.publish.writer import Settled


@dataclass
class CommandReport:
    """The shared part; ``TOTAL``/``ACTIONS``/``DONE`` name one command's counts."""

    #: Count key of every item the command looked at.
    TOTAL: ClassVar[str]
    #: Actions a decision can take, in the order the counts list them.
    ACTIONS: ClassVar[tuple[str, ...]]
    #: Count key of the items the store confirmed.
    DONE: ClassVar[str]

    run_id: int | None
    dry_run: bool
    items: list[Any] = field(default_factory=list)
    settled: Settled = field(default_factory=Settled)
    recovered: Settled = field(default_factory=Settled)
    exit_reason: str = "completed"

    def _ended(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)

    def _done(self) -> int:
        return self._ended(self.DONE)

    def _more_counts(self) -> dict[str, int]:
        return {}

    def _more_fields(self) -> dict[str, Any]:
        return {}

    def counts(self) -> dict[str, int]:
        out = {self.TOTAL: len(self.items), **dict.fromkeys(self.ACTIONS, 0)}
        for item in self.items:
            out[item.action] += 1
        if not self.dry_run:
            out[self.DONE] = self._done()
            out["conflict"] = self._ended("conflict")
            out["error"] = self._ended("error")
            out["batch_requests"] = self.settled.batch_requests
            out.update(self._more_counts())
        return out

    @property
    def ok(self) -> bool:
        """False when something selected did not reach the store (conflict or error)."""
        c = self.counts()
        return c["conflict"] == 0 and c["error"] == 0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "dry_run": self.dry_run, "counts": self.counts(),
                "exit_reason": self.exit_reason, **self._more_fields(),
                "items": [i.as_dict() for i in self.items]}


@dataclass
class PublishReport(CommandReport):
    """What a publish did (or, for a dry run, would do)."""

    TOTAL: ClassVar[str] = "approved"
    ACTIONS: ClassVar[tuple[str, ...]] = ("write", "unchanged", "conflict", "error")
    DONE: ClassVar[str] = "written"

    pending_recovery: int = 0  # dry run: interrupted writes the next real run settles first

    def _done(self) -> int:
        return len(self.settled.written)

    def _more_counts(self) -> dict[str, int]:
        return {"recovered_written": len(self.recovered.written),
                "recovered_conflicts": len(self.recovered.conflicts),
                "recovered_resent": len(self.recovered.requeued)}

    def _more_fields(self) -> dict[str, Any]:
        return {"pending_recovery": self.pending_recovery,
                "recovered": self.recovered.as_dict()}

    @property
    def ok(self) -> bool:
        """False when something approved was not published (conflict or error)."""
        return super().ok and not self.recovered.conflicts


@dataclass
class RollbackReport(CommandReport):
    """What a rollback did (or, for a dry run, would do)."""

    TOTAL: ClassVar[str] = "selected"
    ACTIONS: ClassVar[tuple[str, ...]] = ("restore", "nothing", "conflict", "error")
    DONE: ClassVar[str] = "rolled_back"

    #: Product ids asked for that have no published write to undo.
    not_found: list[str] = field(default_factory=list)

    def _more_fields(self) -> dict[str, Any]:
        return {"not_found": self.not_found}

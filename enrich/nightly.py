"""The night's work for cron: an incremental sync, then drafting until the morning.

In batch mode (``[llm] mode = "batch"``) the drafting is two steps instead: collect the
batches that ended since the last night (their results become drafts), then submit what is
pending. A batch submitted on Monday night is collected by Tuesday's nightly; the summary says
what is still in flight and since when.

It lives in the library, not the CLI, so anything that wants a night (the command, a test,
a scheduler of one's own) gets the same order of steps and the same verdict. It never
publishes: publishing waits for a person's approval. One night at a time per ledger (an
flock the kernel drops however the process ends): two would sync the same catalog and split
one night's budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from enrich.app import App
from enrich.ledger.locks import hold_nightly
from enrich.sync import SyncProgress, SyncSummary, sync
from enrich.worker import RunResult, parse_until, run_jobs
from enrich.worker.batch import (
    PollSummary,
    SubmitSummary,
    batch_overview,
    poll_batches,
    submit_batches,
)
from enrich.worker.runner import ProgressCallback


@dataclass
class BatchNight:
    """Batch mode's night: what was collected, what was submitted, what is in flight."""

    poll: PollSummary
    submit: SubmitSummary
    in_flight: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.poll.dead == 0 and self.submit.dead == 0


@dataclass
class NightlyResult:
    """What the sync saw and what the drafting run (live) or the batches (batch) did."""

    sync: SyncSummary
    run: RunResult | None = None
    batch: BatchNight | None = None

    @property
    def ok(self) -> bool:
        """False when something needs a look in the morning: a run that did not end
        cleanly, dead jobs, or products the store holds in a shape enrich cannot read."""
        drafted = self.run.ok if self.run is not None else (
            self.batch is not None and self.batch.ok)
        return drafted and not self.sync.invalid


def nightly(app: App, *, until: str | None = None, limit: int | None = None,
            on_sync_progress: Callable[[SyncProgress], None] | None = None,
            on_synced: Callable[[SyncSummary], None] | None = None,
            on_progress: ProgressCallback | None = None) -> NightlyResult:
    """Sync the store incrementally, then draft until ``until`` (HH:MM local time, default
    ``[nightly] until``) or ``limit`` jobs (default ``[nightly] limit``).

    ``on_synced`` sees the sync summary before drafting starts, so a log shows it when it
    happened rather than hours later. Raises ``AlreadyRunning`` (not an error: exit 0)
    while another nightly holds this ledger.
    """
    settings = app.settings
    # Parsed before the sync: a bad --until is refused before any work, and a sync that
    # runs past the deadline leaves no time to draft instead of a whole extra day.
    deadline = parse_until(until or settings.nightly.until)
    with hold_nightly(app.db_path):
        with app.woo_client() as client:
            summary = sync(app.ledger, client, settings, progress=on_sync_progress)
        if on_synced is not None:
            on_synced(summary)
        if settings.llm.mode == "batch":
            polled = asyncio.run(poll_batches(app.ledger, settings, app.secrets))
            sent = asyncio.run(submit_batches(app.ledger, settings, app.secrets,
                                              limit=limit or settings.nightly.limit))
            overview = batch_overview(app.ledger, limit=None)
            return NightlyResult(summary, batch=BatchNight(polled, sent, overview["in_flight"]))
        result = asyncio.run(run_jobs(app.ledger, settings, app.secrets, until=deadline,
                                      limit=limit or settings.nightly.limit,
                                      on_progress=on_progress))
    return NightlyResult(summary, run=result)

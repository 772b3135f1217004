"""Progress for people (a rich bar on a terminal) and for cron (a log line now and then)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from enrich.worker.runner import RunStats


def _eta(stats: RunStats) -> str:
    eta = stats.eta_s()
    if eta is None:
        return "ETA -"
    if eta >= 3600:
        return f"ETA {eta / 3600:.1f} h"
    return f"ETA {max(1, round(eta / 60))} min" if eta >= 60 else f"ETA {eta:.0f} s"


def progress_line(stats: RunStats) -> str:
    """``720/10,000 done, 3 failed, $1.42 spent, ETA 45 min`` (and what else happened)."""
    failed = stats.dead + stats.retried
    line = (f"{stats.done:,}/{stats.total:,} done, {failed:,} failed, "
            f"${stats.cost_usd:,.2f} spent, {_eta(stats)}")
    extra = []
    if stats.flagged:
        extra.append(f"{stats.flagged:,} flagged")
    if stats.rate_limited:
        extra.append(f"{stats.rate_limited:,} rate-limited")
    if stats.dead:
        extra.append(f"{stats.dead:,} dead")
    return line + (f" ({', '.join(extra)})" if extra else "")


class LogProgress:
    """A line every ``every`` jobs or ``seconds`` seconds, whichever comes first."""

    def __init__(self, stream: TextIO | None = None, *, every: int = 100,
                 seconds: float = 30.0) -> None:
        self.stream = stream
        self.every = every
        self.seconds = seconds
        self._last_done = -1
        self._last_at = 0.0

    def __call__(self, stats: RunStats) -> None:
        now = time.monotonic()
        if (stats.done - self._last_done >= self.every or now - self._last_at >= self.seconds
                or stats.done >= stats.total):
            if stats.done == self._last_done and now - self._last_at < self.seconds:
                return
            self._last_done, self._last_at = stats.done, now
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} {progress_line(stats)}", file=self.stream or sys.stderr, flush=True)


class BarProgress:
    """A rich progress bar: done/total, failed, cost, rate and ETA."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]drafting"), BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), transient=False)
        self._task = self._progress.add_task("run", total=1, detail="")

    def __enter__(self) -> BarProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, stats: RunStats) -> None:
        rate = stats.done / stats.elapsed_s * 60 if stats.elapsed_s > 0 else 0.0
        detail = (f"{stats.dead + stats.retried:,} failed · {stats.flagged:,} flagged · "
                  f"${stats.cost_usd:,.2f} · {rate:,.0f}/min · {_eta(stats)}")
        self._progress.update(self._task, total=max(stats.total, stats.done, 1),
                              completed=stats.done, detail=detail)

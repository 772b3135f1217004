"""The throttled worker that turns pending jobs into drafts; see ``runner.py``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from enrich.config import Secrets, Settings
from enrich.errors import UsageError
from enrich.guards.duplicates import DuplicateIndex
from enrich.ledger import Ledger
from enrich.prompts import PromptBook
from enrich.providers import make_provider
from enrich.worker.limits import Breaker, Budget, RateLimiter, retry_delay
from enrich.worker.runner import EXIT_REASONS, ProgressCallback, RunResult, RunStats, Worker

__all__ = [
    "EXIT_REASONS",
    "Breaker",
    "Budget",
    "RateLimiter",
    "RunResult",
    "RunStats",
    "Worker",
    "parse_until",
    "retry_delay",
    "run_jobs",
]


def parse_until(value: str, now: dt.datetime | None = None) -> float:
    """``HH:MM`` local time as a Unix time: today, or tomorrow if it has passed."""
    try:
        hour, minute = (int(part) for part in value.split(":"))
        target_time = dt.time(hour, minute)
    except ValueError:
        raise UsageError(f"--until {value!r} is not a time of day",
                         "Give it as HH:MM in local time, e.g. --until 06:00.") from None
    current = now or dt.datetime.now().astimezone()
    target = current.replace(hour=target_time.hour, minute=target_time.minute, second=0,
                             microsecond=0)
    if target <= current:
        target += dt.timedelta(days=1)
    return target.timestamp()


async def run_jobs(ledger: Ledger, settings: Settings, secrets: Secrets, *,
                   limit: int | None = None, until: float | None = None,
                   concurrency: int | None = None, grace_s: float = 30.0,
                   on_progress: ProgressCallback | None = None,
                   http_client: Any = None, default_headers: dict[str, str] | None = None,
                   handle_signals: bool = True, kind: str = "product") -> RunResult:
    """Build the provider, prompts and duplicate index from settings, and run the worker."""
    if settings.llm.mode == "batch":  # a library caller's slip: the CLI picks the mode
        raise UsageError(
            "run_jobs drafts live, but llm.mode = \"batch\"",
            "Call enrich.worker.batch.submit_batches (`enrich run` does when mode is batch), "
            "or set [llm] mode = \"live\".")
    provider = make_provider(settings.llm, secrets, http_client=http_client,
                             default_headers=default_headers)
    prompts = PromptBook.from_settings(settings)
    prompts.check()  # a broken template stops here, before any spend
    guards = settings.guards
    duplicates = DuplicateIndex.from_ledger(ledger, threshold=guards.duplicate_threshold,
                                            min_words=guards.duplicate_min_words)
    try:
        worker = Worker(ledger, settings, provider, prompts, limit=limit, until=until,
                        concurrency=concurrency, grace_s=grace_s, duplicates=duplicates,
                        on_progress=on_progress, handle_signals=handle_signals, kind=kind)
        return await worker.run()
    finally:
        duplicates.close()
        await provider.aclose()

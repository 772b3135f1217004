"""The job state machine, in one table.

Every status change in the ledger is checked against ``EDGES``; SQL that moves many jobs at
once (claim, supersede, retry) builds its ``WHERE status IN (...)`` from ``sources_of``, so
the rules live here and nowhere else.

    pending ─claim─▶ processing ─ok─▶ drafted ─▶ approved ─▶ published ─rollback─▶ rolled_back
       ▲                 │ │ │              └─▶ rejected      └─(store changed)─▶ conflict
       ├─429 / lease─────┘ │ └─permanent error or max attempts─▶ dead
       └──── failed ◀─error┘ (retried after backoff: failed ─claim─▶ processing)

Batch mode (``enrich.worker.batch``): a job is claimed as for a live run, leased to the
batch's intent (``batch:<local id>``, no expiry) while the provider is asked, and moved to
``submitted`` in the transaction that records the provider's answer; the batch's results
then move it on like a live answer would:

    pending ─claim─▶ processing ─provider accepted─▶ submitted ─result─▶ drafted
                        │ (never accepted: reconcile)     ├─error─▶ failed | dead
                        └──────────▶ pending ◀────────────┘ expired / canceled

Sync also records products it will not send to the model: ``needs_data`` (too little source
data to write from) and ``invalid`` (a malformed field). A changed input ``supersedes`` the
job that was written from the old one.
"""

from __future__ import annotations

from enum import StrEnum

from enrich.errors import IllegalTransition


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUBMITTED = "submitted"  # in a provider batch, waiting for its results
    FAILED = "failed"
    DEAD = "dead"
    DRAFTED = "drafted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"
    CONFLICT = "conflict"
    ROLLED_BACK = "rolled_back"
    NEEDS_DATA = "needs_data"
    INVALID = "invalid"
    SUPERSEDED = "superseded"


S = JobStatus

#: Statuses a worker may claim from (``failed`` only once its backoff has passed).
CLAIMABLE = (S.PENDING, S.FAILED)
#: Statuses that a changed input may supersede: everything not yet written to the store.
SUPERSEDABLE = (S.PENDING, S.FAILED, S.DEAD, S.DRAFTED, S.APPROVED, S.REJECTED,
                S.CONFLICT, S.NEEDS_DATA, S.INVALID, S.PROCESSING, S.SUBMITTED)

EDGES: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (S.PENDING, S.PROCESSING),
        (S.FAILED, S.PROCESSING),
        (S.PROCESSING, S.PENDING),  # released: 429, lease expired, clean stop
        (S.PROCESSING, S.FAILED),  # retryable error, backoff before the next claim
        (S.PROCESSING, S.DEAD),  # permanent error, or out of attempts
        (S.PROCESSING, S.DRAFTED),
        (S.PROCESSING, S.SUBMITTED),  # batch mode: the provider accepted the batch
        (S.SUBMITTED, S.DRAFTED),  # its result, through the same guards as a live answer
        (S.SUBMITTED, S.FAILED),  # an errored item, retried like a live error
        (S.SUBMITTED, S.DEAD),  # a permanent error, or out of attempts
        (S.SUBMITTED, S.PENDING),  # expired, canceled or rate limited: not the job's fault
        (S.FAILED, S.PENDING),  # jobs retry --failed
        (S.FAILED, S.DEAD),
        (S.DEAD, S.PENDING),  # jobs retry --dead
        (S.DRAFTED, S.APPROVED),
        (S.DRAFTED, S.REJECTED),
        (S.APPROVED, S.REJECTED),
        (S.APPROVED, S.DRAFTED),  # approval withdrawn
        (S.REJECTED, S.APPROVED),
        (S.REJECTED, S.DRAFTED),
        (S.REJECTED, S.PENDING),  # redraft
        (S.APPROVED, S.PUBLISHED),
        (S.APPROVED, S.CONFLICT),
        (S.CONFLICT, S.APPROVED),  # re-approved after looking at the store's change
        (S.PUBLISHED, S.ROLLED_BACK),
        (S.NEEDS_DATA, S.PENDING),
        (S.INVALID, S.PENDING),
        *((status, S.SUPERSEDED) for status in SUPERSEDABLE),
        (S.SUPERSEDED, S.PENDING),  # the input came back to a value seen before
    }
)


def sources_of(target: JobStatus | str) -> tuple[str, ...]:
    """The statuses a job may be in to move to ``target``."""
    return tuple(sorted(old.value for old, new in EDGES if new == target))


def check_transition(job_id: int, old: JobStatus | str, new: JobStatus | str) -> None:
    """Raise IllegalTransition unless old -> new is an edge of the state machine."""
    if (JobStatus(old), JobStatus(new)) not in EDGES:
        allowed = ", ".join(sources_of(new)) or "nothing"
        raise IllegalTransition(
            f"job {job_id}: cannot go from {old} to {new} (only from: {allowed})",
            "This is a bug in the caller, or the job changed underneath it; "
            "see `enrich jobs show " + str(job_id) + "`.",
        )

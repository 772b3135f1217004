"""The single-writer lock of publish and rollback.

Two publishers would both read "not yet written" and both write, so one at a time holds an
flock on ``<ledger>.publish.lock``: the kernel drops it when its holder dies (SIGKILL
included, reaped or not), so a killed publish never blocks the next one and a live one
always does. The ledger's ``meta`` row only names the run holding it, so the next holder can
close that run as killed (its planned rows are then recovered). The ledger side of
publishing (approved drafts, the ``publishes`` rows, job moves) is ``enrich.ledger.publishes``.
"""

from __future__ import annotations

from enrich.errors import UsageError
from enrich.ledger import Ledger
from enrich.ledger import publishes as P
from enrich.ledger.locks import HeldLock, Locked, acquire, lock_file

_HELD: dict[tuple[str, int], HeldLock] = {}


def acquire_lock(ledger: Ledger, run_id: int) -> None:
    """Refuse at once while another publish/rollback writes from this ledger."""
    try:
        held = acquire(lock_file(ledger.path, "publish"), run_id=run_id)
    except Locked as busy:
        holder = busy.holder
        raise UsageError(
            f"another publish or rollback (run {holder.info.get('run_id', '?')}, "
            f"{holder.describe()}) is writing to the store from this ledger",
            "Wait for it to finish, then run the command again (a killed one lets go at "
            "once).") from None
    try:
        P.take_writer_slot(ledger, run_id)
    except BaseException:
        held.release()
        raise
    _HELD[(str(ledger.path), run_id)] = held


def release_lock(ledger: Ledger, run_id: int) -> None:
    held = _HELD.pop((str(ledger.path), run_id), None)
    try:
        P.leave_writer_slot(ledger, run_id)
    finally:
        if held is not None:
            held.release()

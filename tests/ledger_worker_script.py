"""A claiming process for the concurrency tests: claims until the queue is empty.

Run as ``python ledger_worker_script.py DB OWNER OUT [--hold SECONDS]``. With ``--hold`` it
claims one batch with a short lease and then sleeps (to be killed with SIGKILL).
"""

from __future__ import annotations

import json
import sys
import time

from enrich.ledger import Attempt, DraftRecord, Ledger


def main() -> None:
    db, owner, out = sys.argv[1:4]
    hold = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--hold" else None
    ledger = Ledger(db, busy_timeout_s=5)
    claimed: list[int] = []
    if hold is not None:
        jobs = ledger.claim(owner, 5, lease_s=1.0)
        with open(out, "w") as fh:
            json.dump([j.id for j in jobs], fh)
        time.sleep(hold)
        return
    while True:
        jobs = ledger.claim(owner, 7)
        if not jobs:
            break
        for job in jobs:
            claimed.append(job.id)
            ledger.complete(job.id, owner, DraftRecord({"by": owner}),
                            Attempt(time.time(), "ok"))
    with open(out, "w") as fh:
        json.dump(claimed, fh)


if __name__ == "__main__":
    main()

"""Locks the kernel releases: ``flock`` on small files next to the ledger.

Why not a pid in a row or a file: a process killed with SIGKILL whose parent never reaps it
is a zombie, and ``os.kill(pid, 0)`` calls it alive for as long as the zombie stays (forever
in a container whose PID 1 reaps nothing); pids are also reused. An ``flock`` belongs to an
open file, and the kernel drops it when the process exits, before it becomes a zombie. So
"can I lock it?" is the one liveness test that cannot lie.

Why hand-written and not ``filelock``: its lock opens the file with ``O_TRUNC``, so every
refused contender would wipe the holder's pid and start time that our messages show.

The files (``enrich.db`` stands for the ledger's name):

- ``enrich.db.publish.lock``: held by ``enrich publish`` and ``enrich rollback``;
- ``enrich.db.nightly.lock``: held by ``enrich nightly``;
- ``enrich.db.workers/<owner>.lock``: held by each worker process for its life, so a lease
  whose owner's file can be locked by someone else belongs to a dead process.

Each file carries ``{"pid", "since", ...}`` as JSON for messages only; it is never trusted
as the lock. A holder removes its file when it lets go; a file left by a killed process is
harmless (the next holder locks it again) and workers' files are swept by the next worker.
Deleting a lock file races with a process that opened it just before: every acquirer checks,
once locked, that the path still names the file it locked, and starts again if not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.errors import LedgerUnusable

#: errno values meaning "this filesystem does not do flock", as opposed to "someone holds it".
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}


def lock_file(ledger_path: Path, name: str) -> Path:
    """``enrich.db`` -> ``enrich.db.<name>.lock`` in the ledger's folder."""
    return ledger_path.with_name(f"{ledger_path.name}.{name}.lock")


def workers_dir(ledger_path: Path) -> Path:
    """The folder of the worker processes' lock files, one per lease owner."""
    return ledger_path.with_name(f"{ledger_path.name}.workers")


def owner_file(ledger_path: Path, owner: str) -> Path:
    """The lock file of one lease owner (``host:pid:nonce``), safe as a file name."""
    return workers_dir(ledger_path) / (re.sub(r"[^A-Za-z0-9._-]", "_", owner) + ".lock")


@dataclass(frozen=True)
class Holder:
    """What a lock file says about the process holding it (informational only)."""

    pid: int | None = None
    since: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``pid 123, since 02:14``: the words every "already running" message uses."""
        pid = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        if self.since is None:
            return pid
        return f"{pid}, since {time.strftime('%H:%M', time.localtime(self.since))}"


class Locked(Exception):
    """Another live process holds the lock; each caller words its own message."""

    def __init__(self, path: Path, holder: Holder) -> None:
        super().__init__(f"{path} is locked by {holder.describe()}")
        self.path = path
        self.holder = holder


class AlreadyRunning(Locked):
    """A command that runs one at a time per ledger found one running: not an error (exit 0).

    Not an ``EnrichError``: the CLI prints it as news, not in red on stderr.
    """

    def __str__(self) -> str:
        return f"already running ({self.holder.describe()})"


def _unsupported(path: Path, exc: OSError) -> LedgerUnusable:
    return LedgerUnusable(
        f"cannot lock {path}: its filesystem does not support file locks "
        f"({exc.strerror or exc})",
        "Keep the ledger on a local disk (SQLite's WAL mode needs one too): set [ledger] "
        "path or --db to a file there.")


def _cannot_create(path: Path, exc: OSError) -> LedgerUnusable:
    return LedgerUnusable(
        f"cannot create lock file {path} ({exc.strerror or exc})",
        "enrich keeps its lock files beside the ledger: make the ledger's folder writable by "
        "the user that runs enrich, or point --db at a ledger in a writable folder.")


def _read_holder(fd: int) -> Holder:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return Holder()  # being written or torn: the lock itself is what counts
    if not isinstance(data, dict):
        return Holder()
    pid, since = data.get("pid"), data.get("since")
    return Holder(pid if isinstance(pid, int) else None,
                  float(since) if isinstance(since, int | float) else None, data)


def read_holder(path: Path) -> Holder:
    """Who the file says holds it, without locking (for messages)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return Holder()
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


class HeldLock:
    """An flock this process holds; ``release`` (or process death) lets it go."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> Holder:
        """What this lock's file says (the info the holder wrote)."""
        if self._fd is None:
            return Holder()
        return _read_holder(self._fd)

    def release(self, *, remove: bool = True) -> None:
        """Let go; with ``remove`` the file goes first (while still locked, so nobody locks
        a file about to vanish)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            with contextlib.suppress(OSError):
                if remove and os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    self.path.unlink()
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_flock(path: Path, fd: int) -> bool:
    """True if locked; False if another process holds it; LedgerUnusable if flock cannot."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if exc.errno in _UNSUPPORTED:
            raise _unsupported(path, exc) from None
        raise
    return True


def _open(path: Path, create: bool) -> int:
    try:
        return os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        if not create:
            raise
        raise LedgerUnusable(
            f"ledger folder {path.parent} does not exist",
            "Create the folder, or set [ledger] path / --db to a file in an existing one.",
        ) from None
    except PermissionError as exc:
        raise _cannot_create(path, exc) from None


def _lock_open_file(path: Path, fd: int) -> bool:
    """Lock ``fd``: True if it is still the file at ``path``, False if removed meanwhile."""
    if not _try_flock(path, fd):
        raise Locked(path, _read_holder(fd))
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def acquire(path: Path, *, create: bool = True, stamp: bool = True,
            **info: Any) -> HeldLock:
    """Take the lock at once or raise ``Locked`` naming the holder; never waits.

    With ``create=False`` a missing file raises ``FileNotFoundError`` (a reclaimer only
    tests files that exist). With ``stamp`` the file is rewritten with our pid, the time and
    ``info``; without, it keeps what the last holder wrote (a reclaimer reads the owner).
    """
    for _ in range(100):  # each turn is a file removed under us; a handful at most
        fd = _open(path, create)
        try:
            current = _lock_open_file(path, fd)
        except BaseException:
            os.close(fd)
            raise
        if not current:  # the holder before us removed it after we opened it: again
            os.close(fd)
            if not create:
                raise FileNotFoundError(errno.ENOENT, "lock file removed", str(path))
            continue
        if stamp:
            body = json.dumps({"pid": os.getpid(), "since": time.time(), **info},
                              sort_keys=True).encode()
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, body, 0)
            except OSError:
                pass  # the words are for messages only; the lock is held all the same
        return HeldLock(path, fd)
    raise LedgerUnusable(f"cannot lock {path}: it keeps being removed and created again",
                         "Another program is deleting enrich's lock files; stop it.")


def hold_nightly(ledger_path: Path) -> HeldLock:
    """The nightly lock of this ledger, or ``AlreadyRunning`` naming the holder.

    One nightly at a time: two would sync the same catalog and split one night's budget.
    Held until ``release()`` or the process ends, however it ends.
    """
    try:
        return acquire(lock_file(ledger_path, "nightly"), command="nightly")
    except Locked as busy:
        raise AlreadyRunning(busy.path, busy.holder) from None


def hold_owner(ledger_path: Path, owner: str) -> HeldLock:
    """The lock a worker holds for its whole life, before it claims any lease."""
    folder = workers_dir(ledger_path)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise _cannot_create(folder, exc) from None
    return acquire(owner_file(ledger_path, owner), owner=owner)


def dead_owners(ledger_path: Path) -> Iterator[str | None]:
    """The owners whose worker died, one at a time, each held locked by us while yielded.

    The caller gives back the owner's leases; asking for the next one releases the lock and
    removes the file (the cleanup after killed workers). If the caller fails or stops early,
    the file stays, so the next worker tries again. ``None`` is a worker that died before
    writing its name (it held no lease). Files of live owners stay untouched.
    """
    folder = workers_dir(ledger_path)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".lock"):
            continue
        try:
            lock = acquire(folder / name, create=False, stamp=False)
        except (Locked, FileNotFoundError):
            continue  # alive, or swept by another worker meanwhile
        try:
            owner = lock.holder().info.get("owner")
            yield owner if isinstance(owner, str) else None
        except BaseException:
            lock.release(remove=False)
            raise
        lock.release()

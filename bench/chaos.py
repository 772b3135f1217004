"""Chaos, measured: `enrich sync`, `run` and `publish` SIGKILLed at seeded moments, resumed,
and checked after every kill.

    uv run python bench/chaos.py [--seed 1] [--kills 8] [--products 300] [--time-bound 600]
                                 [--store-latency-ms 300] [--llm-latency-ms 250]
                                 [--batch-size 10] [--keep DIR] [--no-reap]

The sandbox store (a synthetic catalog) and the sandbox LLM serve from this process on
127.0.0.1, each behind a thin wrapper that timestamps every request it handles; `enrich` runs
as a real CLI subprocess against them. For each stage the harness starts the command, kills it
with SIGKILL at a seeded moment, reaps it (``--no-reap``: leaves it a zombie until its stage
ends, as a container's PID 1 that never reaps would; enrich's locks are flocks, which a zombie
no longer holds), checks the ledger and the store, and starts it again (the resume),
N times; then lets the last one finish. Half of the kills wait for a request of the stage's
own kind to be inside a sandbox (sync: a page read; run: an LLM request; publish: a batch
write, slowed by the store's latency so the kill lands before the store applies it); whether a
kill really landed with such a request in flight is read from the timestamps, not assumed.

Checked after every kill and at every stage's end: ``PRAGMA integrity_check`` is ok; every job
keeps a known status and none disappears; no job or (source, input) has two drafts; no live
product has two jobs; publish never writes a product twice (the store's own per-product write
counter) nor writes one the ledger does not know about, and records no conflict or error. At
the end: sync queued exactly what an uninterrupted sync queues, the queue is drafted, every
approved draft is published once and the store's products equal the approved drafts field by
field, and a further publish writes nothing. Exit 1 on any violation or when the time bound
is reached. Traffic: loopback only (proxies are removed from the children's environment).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.config import ENV_WOO_KEY, ENV_WOO_SECRET, Secrets, load_settings
from enrich.httpserver import LoopbackServer, Request, Response
from enrich.ledger import Ledger
from enrich.ledger.states import JobStatus
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.llm import LLMSandboxOptions, SandboxLLM
from enrich.sandbox.store import API_PREFIX, SandboxStore, StoreOptions
from enrich.sync import sync
from enrich.woo.client import WooClient

KEY = "ck_chaos_sandbox"
SECRET = "cs_chaos_sandbox"
LLM_KEY = "sk-chaos-sandbox"
FIELDS = ("description", "short_description", "seo_title", "meta_description")
#: Where the store keeps each draft field (seo_plugin = "yoast").
STORE_FIELD = {"description": "description", "short_description": "short_description",
               "seo_title": "meta:_yoast_wpseo_title",
               "meta_description": "meta:_yoast_wpseo_metadesc"}
KNOWN_STATUSES = frozenset(s.value for s in JobStatus)
PAGE_SIZE = 100  # sync's per_page


class ChaosTimeout(Exception):
    """The overall time bound was reached; the harness stops and reports it."""


class ApproveFailed(Exception):
    """`enrich review approve` between run and publish failed: publish has nothing to do."""


@dataclass
class ChaosConfig:
    seed: int = 1
    kills: int = 8  # per stage
    products: int = 300
    time_bound_s: float = 600.0
    store_latency_ms: int = 300
    llm_latency_ms: int = 250
    batch_size: int = 10  # small batches: more batch boundaries for the kills to hit
    store_timeout_s: float = 3.0  # also how long publish waits before resending a young row
    concurrency: int = 8
    keep: Path | None = None
    #: False: killed children stay unreaped (zombies) until their stage ends, as under a
    #: container's PID 1 that never reaps; shows whether a pid-liveness check survives them.
    reap: bool = True
    echo: Callable[[str], None] = print


# --- sandboxes with timestamped requests ----------------------------------------------------


@dataclass
class Timed:
    method: str
    path: str
    started: float
    ended: float | None = None


class RequestClock:
    """Wraps a sandbox handler and timestamps each request (monotonic, this process's clock).

    The sandboxes run here, so "was a batch request inside the store when the SIGKILL left"
    is a comparison of two timestamps on one clock, not a guess from the child's output.
    """

    def __init__(self, handle: Callable[[Request], Response]) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self.entries: list[Timed] = []

    def __call__(self, request: Request) -> Response:
        entry = Timed(request.method.upper(), request.path, time.monotonic())
        with self._lock:
            self.entries.append(entry)
        try:
            return self._handle(request)
        finally:
            entry.ended = time.monotonic()

    def _select(self, since: float, match: Callable[[Timed], bool]) -> list[Timed]:
        with self._lock:
            return [e for e in self.entries if e.started >= since and match(e)]

    def in_flight(self, at: float, match: Callable[[Timed], bool], since: float = 0.0) -> int:
        return sum(1 for e in self._select(since, match)
                   if e.started <= at and (e.ended is None or e.ended > at))

    def first_started(self, since: float) -> float | None:
        return min((e.started for e in self._select(since, lambda e: True)), default=None)

    def answered(self, since: float, match: Callable[[Timed], bool]) -> int:
        return sum(1 for e in self._select(since, match) if e.ended is not None)

    def started(self, since: float, match: Callable[[Timed], bool]) -> int:
        return len(self._select(since, match))

    def wait_quiet(self, deadline: float) -> None:
        """Until no request is inside the sandbox (a killed client's request still runs)."""
        while any(e.ended is None for e in self._select(0.0, lambda e: True)):
            _check_deadline(deadline)
            time.sleep(0.02)


def _is_page_read(e: Timed) -> bool:
    return e.method == "GET" and e.path == f"{API_PREFIX}/products"


def _is_batch_write(e: Timed) -> bool:
    return e.method in ("POST", "PUT", "PATCH") and e.path.endswith("/batch")


def _is_llm_request(e: Timed) -> bool:
    return e.method == "POST" and e.path.startswith("/v1/")


@dataclass
class Sandboxes:
    store: SandboxStore
    store_url: str
    store_clock: RequestClock
    llm: SandboxLLM
    llm_url: str
    llm_clock: RequestClock


@contextmanager
def sandboxes(config: ChaosConfig) -> Iterator[Sandboxes]:
    """The store (synthetic catalog) and the LLM on 127.0.0.1, served by this process."""
    store = SandboxStore(list(synthetic_catalog(config.products, config.seed)),
                         StoreOptions(consumer_key=KEY, consumer_secret=SECRET,
                                      seed=config.seed))
    llm = SandboxLLM(LLMSandboxOptions(seed=config.seed))
    store_clock, llm_clock = RequestClock(store.handle), RequestClock(llm.handle)
    with LoopbackServer(store_clock) as store_server, LoopbackServer(llm_clock) as llm_server:
        store.base_url = store_server.url
        try:
            yield Sandboxes(store, store_server.url, store_clock, llm, llm_server.url,
                            llm_clock)
        finally:
            llm.close()


def write_config(folder: Path, boxes: Sandboxes, config: ChaosConfig) -> Path:
    """A complete config against the two sandboxes (keys come from the environment)."""
    path = folder / "config.toml"
    fields = ", ".join(f'"{f}"' for f in FIELDS)
    path.write_text(f"""[store]
url = "{boxes.store_url}"
seo_plugin = "yoast"
timeout_s = {config.store_timeout_s}
max_attempts = 5

[sync]
fields = [{fields}]

[llm]
provider = "openai"
model = "gpt-4o-mini"
base_url = "{boxes.llm_url}/v1"
concurrency = {config.concurrency}
max_rpm = 60000
max_tpm = 100000000
budget_usd = 100.0
timeout_s = 30
retry_base_s = 0.2
retry_max_s = 2.0

[publish]
batch_size = {config.batch_size}

[ledger]
path = "enrich.db"
""", encoding="utf-8")
    return path


def child_env() -> dict[str, str]:
    """The sandboxes' keys, no proxy (loopback only), none of the developer's enrich settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith("ENRICH_")
           and k not in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")}
    env.update({ENV_WOO_KEY: KEY, ENV_WOO_SECRET: SECRET, "OPENAI_API_KEY": LLM_KEY,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


class Child:
    """One `enrich` CLI process; output goes to files so a full pipe can never stall it."""

    def __init__(self, cfg: Path, args: tuple[str, ...], log_name: str) -> None:
        self.out_path = cfg.parent / "logs" / f"{log_name}.out"
        self.err_path = self.out_path.with_suffix(".err")
        self.out_path.parent.mkdir(exist_ok=True)
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "enrich.cli", "--config", str(cfg), *args],
                cwd=cfg.parent, env=child_env(), stdout=out, stderr=err,
                stdin=subprocess.DEVNULL)

    def kill(self, *, reap: bool = True) -> float:
        """SIGKILL, then reap, so no zombie is left to look alive to a pid check (unless
        ``reap`` is False: then it is reaped by ``Harness.reap_all`` when its stage ends)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        at = time.monotonic()
        if reap:
            self.proc.wait(timeout=30)
        else:
            _wait_for_zombie(self.proc.pid)
        return at

    def finish(self, deadline: float) -> int:
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise ChaosTimeout(f"{' '.join(self.proc.args[4:])} still running at the time "
                               "bound") from None

    def output(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def tail(self) -> str:
        """The command's error, on one line (its last stderr line when it wrote no error)."""
        lines = [line.strip() for line in self.err_path.read_text(
            encoding="utf-8", errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        return (errors or lines or ["(no stderr)"])[-1][:300]


def _wait_for_zombie(pid: int) -> None:
    """Until the kernel has killed ``pid`` (its state is Z), without reaping it."""
    stat = Path(f"/proc/{pid}/stat")
    for _ in range(3000):
        try:
            if stat.read_text().rpartition(")")[2].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.01)


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise ChaosTimeout("the time bound was reached")


# --- reading the ledger (read-only; the child is writing) -----------------------------------


@contextmanager
def read_ledger(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def _scalar(db: Path, sql: str, *params: Any) -> int:
    if not db.exists():
        return 0
    try:
        with read_ledger(db) as conn:
            return int(conn.execute(sql, params).fetchone()[0] or 0)
    except sqlite3.OperationalError:
        return 0  # not migrated yet, or locked past the timeout: no progress seen


def jobs_of(conn: sqlite3.Connection) -> dict[int, tuple[str, str, str]]:
    """job id -> (source_id, input_hash, status)."""
    return {int(r[0]): (r[1], r[2], r[3]) for r in conn.execute(
        "SELECT id, source_id, input_hash, status FROM jobs WHERE kind = 'product'")}


def ledger_violations(conn: sqlite3.Connection) -> list[str]:
    """What must hold in any ledger at any moment, killed or not."""
    found: list[str] = []
    result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        found.append(f"integrity_check: {'; '.join(map(str, result[:5]))}")
    for job_id, status in conn.execute("SELECT id, status FROM jobs"):
        if status not in KNOWN_STATUSES:
            found.append(f"job {job_id} has unknown status {status!r}")
    for job_id, n in conn.execute(
            "SELECT job_id, COUNT(*) FROM drafts GROUP BY job_id HAVING COUNT(*) > 1"):
        found.append(f"job {job_id} has {n} drafts")
    for source, input_hash, n in conn.execute(
            "SELECT j.source_id, j.input_hash, COUNT(*) FROM drafts d JOIN jobs j "
            "ON j.id = d.job_id GROUP BY j.kind, j.source_id, j.input_hash HAVING COUNT(*) > 1"):
        found.append(f"product {source} has {n} drafts for one input ({input_hash[:12]})")
    for source, n in conn.execute(
            "SELECT source_id, COUNT(*) FROM jobs WHERE status != 'superseded' "
            "GROUP BY kind, source_id HAVING COUNT(*) > 1"):
        found.append(f"product {source} has {n} live jobs")
    return found


def jobs_kept(before: dict[int, tuple[str, str, str]], after: dict[int, tuple[str, str, str]],
              *, exact: bool) -> list[str]:
    """No job disappeared or changed its input; with ``exact``, none appeared either."""
    found = [f"job {j} (product {before[j][0]}) lost" for j in sorted(set(before) - set(after))]
    found += [f"job {j} changed input" for j in sorted(set(before) & set(after))
              if before[j][:2] != after[j][:2]]
    if exact:
        found += [f"job {j} (product {after[j][0]}) appeared" for j in
                  sorted(set(after) - set(before))]
    return found


def publish_violations(conn: sqlite3.Connection, store: SandboxStore,
                       approved: dict[int, str]) -> list[str]:
    """Publish's promises at any moment: each product written at most once, never a write
    the ledger does not know about, and (nobody edits this store) no conflict or error."""
    found = [f"product {pid} written {n} times" for pid, n in sorted(store.writes.items())
             if n > 1]
    known = {int(r[0]) for r in conn.execute(
        "SELECT source_id FROM publishes WHERE outcome IN ('planned', 'written')")}
    found += [f"product {pid} written to the store with no publish row in the ledger"
              for pid in sorted(set(store.writes) - known)]
    for job_id, n in conn.execute(
            "SELECT job_id, COUNT(*) FROM publishes WHERE outcome = 'written' "
            "GROUP BY job_id HAVING COUNT(*) > 1"):
        found.append(f"job {job_id} recorded as written {n} times")
    for job_id, outcome, error in conn.execute(
            "SELECT job_id, outcome, error FROM publishes "
            "WHERE outcome NOT IN ('planned', 'written')"):
        found.append(f"job {job_id}: publish outcome {outcome} ({error})")
    statuses = dict(conn.execute("SELECT id, status FROM jobs WHERE kind = 'product'"))
    for job_id in approved:
        if statuses.get(job_id) not in ("approved", "published"):
            found.append(f"approved job {job_id} is {statuses.get(job_id)}")
    return found


def store_equals_drafts(conn: sqlite3.Connection, store: SandboxStore,
                        approved: dict[int, str]) -> tuple[list[str], int]:
    """Every approved draft's fields (as approved: a reviewer's edit wins) are what the store
    holds for that product; returns the violations and how many fields were compared."""
    found: list[str] = []
    compared = 0
    for job_id, source in sorted(approved.items()):
        row = conn.execute("SELECT d.fields, d.edited_fields, j.payload FROM drafts d "
                           "JOIN jobs j ON j.id = d.job_id WHERE d.job_id = ?",
                           (job_id,)).fetchone()
        if row is None:
            found.append(f"approved job {job_id} has no draft")
            continue
        draft = {**json.loads(row[0] or "{}"), **json.loads(row[1] or "{}")}
        wanted = json.loads(row[2] or "{}").get("fields") or list(draft)
        product = store.product(int(source))
        meta = {m["key"]: m["value"] for m in product.get("meta_data") or []}
        differ: list[tuple[str, Any, Any]] = []
        for name in wanted:
            value = draft.get(name)
            if not value:
                continue  # publish never sends an empty value
            where = STORE_FIELD[name]
            held = meta.get(where[5:]) if where.startswith("meta:") else product.get(where)
            compared += 1
            if held != value:
                differ.append((name, held, value))
        if differ:
            name, held, value = differ[0]
            found.append(f"product {source} differs from its approved draft in "
                         f"{', '.join(d[0] for d in differ)} ({name}: store "
                         f"{str(held)[:40]!r}, draft {str(value)[:40]!r})")
    return found, compared


# --- one stage: start, kill at a seeded moment, check, resume ---------------------------------


@dataclass
class Kill:
    stage: str
    index: int
    mode: str  # in-flight | timed | startup | missed (the command finished first)
    after_s: float  # since the process started
    progress: int  # units done by the killed process before the kill
    in_flight: int  # requests of the stage's kind inside a sandbox at the kill
    violations: list[str] = field(default_factory=list)


@dataclass
class Resume:
    """A command started after a kill: when it first reached a sandbox, and when it first
    committed new work to the ledger (None: killed or finished before it did)."""

    first_request_s: float | None
    first_progress_s: float | None


@dataclass
class StageResult:
    name: str
    what: str  # the kind of request "in flight" means for this stage
    kills: list[Kill] = field(default_factory=list)
    resumes: list[Resume] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def landed(self) -> int:
        return sum(1 for k in self.kills if k.mode != "missed")

    @property
    def mid_request(self) -> int:
        return sum(1 for k in self.kills if k.mode != "missed" and k.in_flight > 0)

    @property
    def resume_s(self) -> list[float]:
        return [r.first_progress_s for r in self.resumes if r.first_progress_s is not None]

    @property
    def startup_s(self) -> list[float]:
        return [r.first_request_s for r in self.resumes if r.first_request_s is not None]


@dataclass
class Stage:
    """What a stage runs, how its progress is counted, and which requests are its batches."""

    name: str
    args: tuple[str, ...]
    what: str
    clock: RequestClock
    match: Callable[[Timed], bool]
    latency_s: float
    progress: Callable[[float], int]  # units done; the argument is the process's start
    budget: Callable[[int], int]  # the largest progress threshold for a kill, given kills left
    check: Callable[[], list[str]]


class Watch:
    """One running command of a stage: its new units of work, and when the first one came."""

    def __init__(self, stage: Stage, child: Child, deadline: float) -> None:
        self.stage = stage
        self.child = child
        self.deadline = deadline
        self.base = stage.progress(child.started)
        self.first_progress_s: float | None = None

    def units(self) -> int:
        done = self.stage.progress(self.child.started) - self.base
        if done > 0 and self.first_progress_s is None:
            self.first_progress_s = time.monotonic() - self.child.started
        return done

    def finished(self) -> bool:
        return self.child.proc.poll() is not None

    def wait(self, until: Callable[[], bool], *, step: float = 0.01) -> None:
        """Poll (noting progress) until ``until()`` or the command exits."""
        while not until() and not self.finished():
            _check_deadline(self.deadline)
            self.units()
            time.sleep(step)

    def pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.wait(lambda: time.monotonic() >= end, step=0.002)

    def resume(self) -> Resume:
        since = self.child.started
        first = self.stage.clock.first_started(since)
        return Resume(None if first is None else first - since, self.first_progress_s)


class Harness:
    def __init__(self, config: ChaosConfig, folder: Path, boxes: Sandboxes) -> None:
        self.config = config
        self.folder = folder
        self.boxes = boxes
        self.cfg = write_config(folder, boxes, config)
        self.db = folder / "enrich.db"
        self.rng = random.Random(config.seed)
        self.deadline = time.monotonic() + config.time_bound_s
        self.children: list[Child] = []

    def spawn(self, stage: str, args: tuple[str, ...]) -> Child:
        child = Child(self.cfg, args, f"{len(self.children) + 1:03d}-{stage}")
        self.children.append(child)
        return child

    def close(self) -> None:
        """Kill and reap whatever is still running (a time bound hit mid-stage)."""
        for child in self.children:
            if child.proc.poll() is None:
                child.kill()

    def reap_all(self) -> None:
        for child in self.children:
            child.proc.poll()

    def run_stage(self, stage: Stage, result: StageResult) -> None:
        """N kills, each followed by a check; then the resumed command runs to completion."""
        for index in range(self.config.kills):
            kills_left = self.config.kills - index
            # Three draws per kill whatever happens, so the seed fixes every mode and
            # fraction even though the thresholds depend on how far the stage got.
            draw, fraction, jitter = self.rng.random(), self.rng.random(), self.rng.random()
            mode = ("in-flight" if index % 2 == 0 else "timed" if draw < 2 / 3
                    else "startup")
            threshold = int(fraction * (max(0, stage.budget(kills_left)) + 1))
            watch = Watch(stage, self.spawn(stage.name, stage.args), self.deadline)
            kill = self._kill_at(watch, index, mode, threshold, jitter)
            if index > 0:
                result.resumes.append(watch.resume())
            kill.violations = stage.check()
            result.kills.append(kill)
            result.violations += [f"after kill {index + 1}: {v}" for v in kill.violations]
            self.config.echo(
                f"  {stage.name} kill {index + 1}: {kill.mode}, {kill.after_s:.2f} s after "
                f"start, progress {kill.progress}, {kill.in_flight} {stage.what} in flight"
                + (f"; VIOLATIONS: {kill.violations}" if kill.violations else ""))
            if kill.mode == "missed":
                break  # the command finished its work: nothing left to kill
        watch = Watch(stage, self.spawn(stage.name, stage.args), self.deadline)
        watch.wait(lambda: False, step=0.02)
        code = watch.child.finish(self.deadline)
        watch.units()
        if result.kills:
            result.resumes.append(watch.resume())
        if code != 0:
            result.violations.append(f"the final `enrich {' '.join(stage.args)}` exited "
                                     f"{code}: {watch.child.tail()}")
        stage.clock.wait_quiet(self.deadline)
        result.violations += [f"after the final run: {v}" for v in stage.check()]
        self.reap_all()

    def _kill_at(self, watch: Watch, index: int, mode: str, threshold: int,
                 jitter: float) -> Kill:
        stage, child = watch.stage, watch.child
        if mode == "startup":  # anywhere from interpreter start to the first requests
            watch.pause(0.05 + jitter * 1.5)
        else:
            watch.wait(lambda: watch.units() >= threshold)
            if mode == "in-flight":
                watch.wait(lambda: stage.clock.in_flight(
                    time.monotonic(), stage.match, since=child.started) > 0, step=0.002)
                watch.pause(jitter * 0.7 * stage.latency_s)
            else:  # at most about one more request's worth of work
                watch.pause(jitter * stage.latency_s)
        progress = watch.units()
        if watch.finished():
            child.finish(self.deadline)
            stage.clock.wait_quiet(self.deadline)
            return Kill(stage.name, index + 1, "missed", time.monotonic() - child.started,
                        progress, 0)
        at = child.kill(reap=self.config.reap)
        in_flight = stage.clock.in_flight(at, stage.match, since=child.started)
        stage.clock.wait_quiet(self.deadline)  # let the dead client's last request land
        return Kill(stage.name, index + 1, mode, at - child.started, progress, in_flight)

    # --- the three stages ---------------------------------------------------------------

    def sync_stage(self) -> StageResult:
        result = StageResult("sync", "page read")
        boxes, db = self.boxes, self.db
        boxes.store.options.latency_ms = self.config.store_latency_ms
        reference = self._reference_sync()
        seen: dict[int, tuple[str, str, str]] = {}

        def check() -> list[str]:
            nonlocal seen
            if not db.exists():
                return []
            with read_ledger(db) as conn:
                now = jobs_of(conn)
                found = ledger_violations(conn) + jobs_kept(seen, now, exact=False)
            seen = now
            return found

        pages = math.ceil(self.config.products / PAGE_SIZE)
        stage = Stage("sync", ("sync",), result.what, boxes.store_clock, _is_page_read,
                      self.config.store_latency_ms / 1000,
                      lambda since: boxes.store_clock.answered(since, _is_page_read),
                      # Every sync restarts at page 1 until one completes (then the cursor
                      # is set and the next is incremental): stop short of the last page, so
                      # a kill lands before a sync completes.
                      lambda kills_left: max(0, pages - 2), check)
        self.run_stage(stage, result)
        with read_ledger(db) as conn:
            live = _live_jobs(conn)
            products = _product_states(conn)
        if live != reference["jobs"]:
            result.violations.append(
                f"sync queued {len(live)} live jobs, an uninterrupted sync "
                f"{len(reference['jobs'])}; differing: "
                f"{sorted(set(live) ^ set(reference['jobs']))[:5]}")
        if products != reference["products"]:
            result.violations.append("product snapshots differ from an uninterrupted sync's")
        result.figures = {"jobs": len(live), "pages": pages}
        return result

    def _reference_sync(self) -> dict[str, Any]:
        """What an uninterrupted sync of the same store queues (a separate ledger)."""
        settings = load_settings(self.cfg)
        secrets = Secrets({ENV_WOO_KEY: KEY, ENV_WOO_SECRET: SECRET})
        ref_db = self.folder / "reference.db"
        with Ledger(ref_db) as ledger, WooClient.from_settings(settings, secrets) as woo:
            sync(ledger, woo, settings)
        with read_ledger(ref_db) as conn:
            return {"jobs": _live_jobs(conn), "products": _product_states(conn)}

    def run_stage_drafts(self) -> StageResult:
        result = StageResult("run", "LLM request")
        boxes, db = self.boxes, self.db
        boxes.llm.options.latency_ms = self.config.llm_latency_ms
        with read_ledger(db) as conn:
            start = jobs_of(conn)
        todo = sum(1 for _, _, s in start.values() if s in ("pending", "failed"))
        done_sql = ("SELECT COUNT(*) FROM jobs WHERE kind = 'product' "
                    "AND status IN ('drafted', 'dead')")

        def check() -> list[str]:
            with read_ledger(db) as conn:
                return ledger_violations(conn) + jobs_kept(start, jobs_of(conn), exact=True)

        stage = Stage("run", ("run",), result.what, boxes.llm_clock, _is_llm_request,
                      self.config.llm_latency_ms / 1000,
                      lambda since: _scalar(db, done_sql),
                      lambda kills_left: (todo - _scalar(db, done_sql)) // (kills_left + 1),
                      check)
        self.run_stage(stage, result)
        with read_ledger(db) as conn:
            counts = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"))
            drafts = conn.execute("SELECT COUNT(*) FROM drafts").fetchone()[0]
            lost = conn.execute(
                "SELECT COUNT(*) FROM attempts WHERE outcome = 'lost'").fetchone()[0]
        unfinished = {s: counts.get(s, 0) for s in ("pending", "failed", "processing")
                      if counts.get(s, 0)}
        if unfinished:
            result.violations.append(f"jobs left unfinished after the final run: {unfinished}")
        if drafts != counts.get("drafted", 0):
            result.violations.append(f"{drafts} drafts for {counts.get('drafted', 0)} "
                                     "drafted jobs")
        result.figures = {"jobs": todo, "drafted": counts.get("drafted", 0),
                          "dead": counts.get("dead", 0), "lost_leases": lost,
                          "llm_requests": boxes.llm_clock.started(0.0, _is_llm_request)}
        return result

    def approve(self) -> dict[int, str]:
        child = self.spawn("approve", ("review", "approve", "--unflagged"))
        code = child.finish(self.deadline)
        if code != 0:
            raise ApproveFailed(f"enrich review approve --unflagged exited {code}: "
                                f"{child.tail()}")
        with read_ledger(self.db) as conn:
            return {int(r[0]): r[1] for r in conn.execute(
                "SELECT id, source_id FROM jobs WHERE status = 'approved'")}

    def publish_stage(self, approved: dict[int, str]) -> StageResult:
        result = StageResult("publish", "batch write")
        boxes, db = self.boxes, self.db
        store = boxes.store
        store.options.latency_ms = self.config.store_latency_ms
        with read_ledger(db) as conn:
            start = jobs_of(conn)
        written_sql = "SELECT COUNT(*) FROM publishes WHERE outcome = 'written'"

        doubt = {"in_doubt": 0, "in_doubt_landed": 0}

        def check() -> list[str]:
            with read_ledger(db) as conn:
                # Rows a killed publish planned and never settled: did the request land?
                planned = [int(r[0]) for r in conn.execute(
                    "SELECT source_id FROM publishes WHERE outcome = 'planned'")]
                doubt["in_doubt"] += len(planned)
                doubt["in_doubt_landed"] += sum(1 for pid in planned if store.writes[pid])
                return (ledger_violations(conn) + jobs_kept(start, jobs_of(conn), exact=True)
                        + publish_violations(conn, store, approved))

        stage = Stage("publish", ("publish",), result.what, boxes.store_clock, _is_batch_write,
                      self.config.store_latency_ms / 1000,
                      lambda since: _scalar(db, written_sql),
                      lambda kills_left: (len(approved) - _scalar(db, written_sql))
                      // (kills_left + 1), check)
        self.run_stage(stage, result)
        with read_ledger(db) as conn:
            published = {int(r[0]) for r in conn.execute(
                "SELECT id FROM jobs WHERE status = 'published'")}
            planned = conn.execute(
                "SELECT COUNT(*) FROM publishes WHERE outcome = 'planned'").fetchone()[0]
            mismatches, compared = store_equals_drafts(conn, store, approved)
        if published != set(approved):
            result.violations.append(
                f"{len(set(approved) - published)} approved jobs not published, "
                f"{len(published - set(approved))} published without approval")
        if planned:
            result.violations.append(f"{planned} publish rows still planned")
        wanted = {int(s) for s in approved.values()}
        if set(store.writes) != wanted:
            result.violations.append(
                f"the store was written {len(store.writes)} products, approved {len(wanted)}")
        result.violations += mismatches[:5]
        if len(mismatches) > 5:
            result.violations.append(f"... and {len(mismatches) - 5} more products differ "
                                     "from their approved drafts")
        batches = store.count("products/batch")
        store.options.latency_ms = 0
        again = self.spawn("publish", ("publish", "--json"))
        code = again.finish(self.deadline)
        rewritten = json.loads(again.output() or "{}").get("counts", {}).get("written")
        if code != 0 or rewritten != 0 or store.count("products/batch") != batches:
            result.violations.append(f"publish again: exit {code}, {rewritten} written, "
                                     f"{store.count('products/batch') - batches} batches")
        with read_ledger(db) as conn:
            recovered = _recovered(conn)
        result.figures = {"approved": len(approved), "written_once": sum(
            1 for n in store.writes.values() if n == 1), "written_twice": sum(
            1 for n in store.writes.values() if n > 1), "fields_compared": compared,
            "batch_requests": batches, **doubt, **recovered}
        return result


def _live_jobs(conn: sqlite3.Connection) -> dict[str, tuple[str, str, str]]:
    """source_id -> (input_hash, status, payload) of each product's live job."""
    return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
        "SELECT source_id, input_hash, status, payload FROM jobs "
        "WHERE kind = 'product' AND status != 'superseded'")}


def _recovered(conn: sqlite3.Connection) -> dict[str, int]:
    """What the publishes that finished found left behind by the killed ones."""
    totals = {"recovered_written": 0, "recovered_resent": 0, "recovered_conflicts": 0}
    for (counts,) in conn.execute("SELECT counts FROM runs WHERE kind = 'publish' "
                                  "AND counts IS NOT NULL"):
        for key in totals:
            totals[key] += int(json.loads(counts).get(key) or 0)
    return totals


def _product_states(conn: sqlite3.Connection) -> dict[str, tuple[Any, ...]]:
    return {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT source_id, content_hash, state, missing FROM products")}


# --- the whole run --------------------------------------------------------------------------


@dataclass
class ChaosReport:
    config: ChaosConfig
    stages: list[StageResult] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def all_violations(self) -> list[str]:
        return self.violations + [f"{s.name}: {v}" for s in self.stages for v in s.violations]


def run_chaos(config: ChaosConfig) -> ChaosReport:
    """Sync, run and publish, each killed ``config.kills`` times; see the module docstring."""
    report = ChaosReport(config)
    started = time.monotonic()
    folder = config.keep or Path(tempfile.mkdtemp(prefix="enrich-chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with sandboxes(config) as boxes:
            harness = Harness(config, folder, boxes)
            try:
                for make in (harness.sync_stage, harness.run_stage_drafts):
                    report.stages.append(make())
                approved = harness.approve()
                if approved:
                    report.stages.append(harness.publish_stage(approved))
                else:
                    report.violations.append("no draft was approved: nothing to publish")
            except (ChaosTimeout, ApproveFailed) as exc:
                report.violations.append(f"stopped: {exc}")
            finally:
                harness.close()
    finally:
        report.elapsed_s = time.monotonic() - started
        if config.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return report


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}" if values else "-"


def summary(report: ChaosReport) -> str:
    c = report.config
    lines = [f"chaos: seed {c.seed}, {c.products} products, {c.kills} kills per stage, store "
             f"latency {c.store_latency_ms} ms, LLM latency {c.llm_latency_ms} ms, batch "
             f"{c.batch_size}, store timeout {c.store_timeout_s:g} s"
             + ("" if c.reap else "; killed children left unreaped (zombies)"),
             f"{'stage':8} {'kills':>5} {'mid-request':>11}  {'request kind':13} "
             f"{'first request s':>15} {'resume s':>13} {'violations':>10}",
             f"{'':8} {'':>5} {'':>11}  {'':13} {'(median / max)':>15} "
             f"{'(median / max)':>13}"]
    for s in report.stages:
        lines.append(f"{s.name:8} {s.landed:>5} {s.mid_request:>11}  {s.what:13} "
                     f"{_spread(s.startup_s):>15} {_spread(s.resume_s):>13} "
                     f"{len(s.violations):>10}")
    for s in report.stages:
        if s.figures:
            lines.append(f"{s.name}: " + ", ".join(f"{k} {v}" for k, v in s.figures.items()))
    found = report.all_violations
    lines.append(f"total {report.elapsed_s:.1f} s; violations: "
                 + ("none" if not found else str(len(found))))
    lines += [f"  VIOLATION {v}" for v in found[:30]]
    if len(found) > 30:
        lines.append(f"  ... and {len(found) - 30} more")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=8, help="SIGKILLs per stage")
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--time-bound", type=float, default=600.0,
                        help="seconds; past it the harness stops and exits 1")
    parser.add_argument("--store-latency-ms", type=int, default=300)
    parser.add_argument("--llm-latency-ms", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--no-reap", dest="reap", action="store_false",
                        help="leave killed children as zombies until their stage ends (as "
                             "a container without an init does)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the ledger, config and logs in this folder")
    args = parser.parse_args(argv)
    config = ChaosConfig(seed=args.seed, kills=args.kills, products=args.products,
                         time_bound_s=args.time_bound, store_latency_ms=args.store_latency_ms,
                         llm_latency_ms=args.llm_latency_ms, batch_size=args.batch_size,
                         keep=args.keep, reap=args.reap)
    report = run_chaos(config)
    print(summary(report))
    return 1 if report.all_violations else 0


if __name__ == "__main__":
    sys.exit(main())

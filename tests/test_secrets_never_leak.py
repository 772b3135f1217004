"""Invariant: the four secrets never leave the environment, on the happy path or any error path.

One end-to-end pass per store auth mode (Basic over HTTPS, OAuth 1.0a over plain HTTP, query
keys over HTTPS): sync (plus a wrong secret, a store that drops every connection and a port
nothing listens on), run on the sandbox LLM's OpenAI and Anthropic routes (plus a forced 401
and dropped connections), review export and approve, publish (plus a publish whose writes are
dropped), then the read commands. Every secret value is distinctive, and afterwards every
byte enrich could have written is searched for it, raw and in the encodings a leak would take
(URL-quoted, Basic-auth base64): the ledger's tables column by column, the raw ``.db`` /
``-wal`` / ``-shm`` bytes, everything printed on stdout and stderr, the review page, the
store's state file and any other file in the working folder.

Faults the sandbox LLM injects on request come from its ``x-sandbox-fault`` header, added by
a handler in front of the sandbox (the worker itself is run unchanged through the CLI).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.httpserver import LoopbackServer, Request, Response
from enrich.sandbox.llm import FAULT_HEADER, SandboxLLM
from enrich.sandbox.store import StoreOptions, serve_store
from tests.woo_helpers import product

WOO_KEY = "ck_canary4f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4"
WOO_SECRET = "cs_canary9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1"
WRONG_WOO_SECRET = "cs_canaryWRONG0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5"
OPENAI_KEY = "sk-proj-canaryOPENAI-7Hq2xZ_9LmN4pR6tV8wY0aB3cD5eF+g/h="
ANTHROPIC_KEY = "sk-ant-api03-canaryANTHROPIC-Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk"
SECRETS = (WOO_KEY, WOO_SECRET, WRONG_WOO_SECRET, OPENAI_KEY, ANTHROPIC_KEY)

PRODUCTS = 120  # more than one page of 100: the OAuth1 Link header echo is followed


def needles() -> dict[str, bytes]:
    """Every form a leaked secret could take in a file or a message."""
    found: dict[str, bytes] = {}
    for secret in SECRETS:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            found[form] = form.encode()
    for secret in (WOO_SECRET, WRONG_WOO_SECRET):  # an Authorization: Basic header
        basic = base64.b64encode(f"{WOO_KEY}:{secret}".encode()).decode()
        found[f"basic({secret})"] = basic.encode()
    return found


def leaks_in(blob: bytes) -> list[str]:
    """Each secret form found, with the text around its first occurrence."""
    found = []
    for name, needle in needles().items():
        at = blob.find(needle)
        if at >= 0:
            around = blob[max(0, at - 160):at + len(needle) + 40].decode("utf-8", "replace")
            found.append(f"{name} in ...{around}...")
    return found


class FaultyLLM:
    """The sandbox LLM behind a switch that adds ``x-sandbox-fault`` to requests: the next
    ones from ``queued``, then ``fault`` (None: no fault)."""

    def __init__(self) -> None:
        self.llm = SandboxLLM()
        self.fault: str | None = None
        self.queued: list[str] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        with self.lock:
            fault = self.queued.pop(0) if self.queued else self.fault
        if fault is not None:
            request = dataclasses.replace(
                request, headers={**request.headers, FAULT_HEADER: fault})
        response = self.llm.handle(request)
        self.statuses.append(response.status)
        return response


@contextmanager
def faulty_llm() -> Iterator[tuple[str, FaultyLLM]]:
    switch = FaultyLLM()
    try:
        with LoopbackServer(switch.handle) as server:
            yield server.url, switch
    finally:
        switch.llm.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, *, store_url: str, auth: str, ca: Path | None,
                 provider: str, llm_url: str) -> Path:
    model, base = (("gpt-4o-mini", f"{llm_url}/v1") if provider == "openai"
                   else ("claude-haiku-4-5", llm_url))
    verify = f'"{ca}"' if ca is not None else "true"
    path.write_text(f"""
[store]
url = "{store_url}"
auth = "{auth}"
verify_tls = {verify}
max_attempts = 2
timeout_s = 5

[sync]
fields = ["description", "short_description"]

[llm]
provider = "{provider}"
model = "{model}"
base_url = "{base}"
max_rpm = 60000
max_tpm = 100000000
max_attempts = 2
retry_base_s = 0.01
retry_max_s = 0.05
timeout_s = 5
concurrency = 4

[ledger]
path = "enrich.db"
""", encoding="utf-8")
    return path


class Session:
    """Runs CLI commands with the secrets in the environment and keeps everything printed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.printed: list[str] = []

    def __call__(self, config: Path, *args: str, env: dict[str, str] | None = None
                 ) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--config", str(config), *args],
                                    env={**self.env, **(env or {})})
        text = result.output + "\n" + (result.stderr or "")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            text += f"\n{type(result.exception).__name__}: {result.exception!r}"
        self.printed.append(f"$ enrich {' '.join(args)}\n{text}")
        return result.exit_code, text

    def process(self, config: Path, *args: str, env: dict[str, str] | None = None
                ) -> tuple[int, str]:
        """In a process of its own: everything written to fds 1 and 2 is kept (the worker's
        progress lines go to the stderr it found at import, past click's capture)."""
        done = subprocess.run(
            [sys.executable, "-m", "enrich", "--config", str(config), *args],
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(config.parent),
                 **self.env, **(env or {})},
            cwd=config.parent, capture_output=True, text=True, timeout=60, check=False)
        text = done.stdout + "\n" + done.stderr
        self.printed.append(f"$ enrich {' '.join(args)}\n{text}")
        return done.returncode, text


def ledger_values(db: Path) -> Iterator[tuple[str, str, object]]:
    """(table, column, value) for every cell of every table, meta included."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"runs", "attempts", "jobs", "publishes", "meta"} <= set(tables), tables
        for table in tables:
            cur = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cur.description]
            for row in cur:
                for column, value in zip(columns, row, strict=True):
                    yield table, column, value
    finally:
        conn.close()


STORE_MODES = [
    pytest.param("basic", True, id="basic-over-https"),
    pytest.param("oauth1", False, id="oauth1-over-http"),
    pytest.param("query", True, id="query-over-https"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("auth", "https"), STORE_MODES)
def test_no_secret_reaches_ledger_output_html_or_files(tmp_path: Path, auth: str, https: bool,
                                                       capfd: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    # Every logger at DEBUG (httpx logs each request's URL at INFO): a library user who
    # turns logging on must not find the keys in the log either.
    caplog.set_level(logging.DEBUG)
    env = {"WOO_CONSUMER_KEY": WOO_KEY, "WOO_CONSUMER_SECRET": WOO_SECRET,
           "OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    enrich = Session(env)
    state = tmp_path / "store-state.json"
    options = StoreOptions(consumer_key=WOO_KEY, consumer_secret=WOO_SECRET, state_path=state)
    catalog = [product(i, name=f"Walnut side table {i}") for i in range(1, PRODUCTS + 1)]
    with serve_store(catalog, options=options, https=https) as shop, faulty_llm() as (llm_url,
                                                                                     llm):
        openai_cfg = write_config(tmp_path / "openai.toml", store_url=shop.url, auth=auth,
                                  ca=shop.ca_path, provider="openai", llm_url=llm_url)
        anthropic_cfg = write_config(tmp_path / "anthropic.toml", store_url=shop.url,
                                     auth=auth, ca=shop.ca_path, provider="anthropic",
                                     llm_url=llm_url)
        dead_port = free_port()
        scheme = "https" if https else "http"
        nowhere_cfg = write_config(tmp_path / "nowhere.toml",
                                   store_url=f"{scheme}://127.0.0.1:{dead_port}", auth=auth,
                                   ca=shop.ca_path, provider="openai", llm_url=llm_url)

        # -- sync: refused, unreachable, dropping, then for real -----------------------------
        code, out = enrich(openai_cfg, "sync", env={"WOO_CONSUMER_SECRET": WRONG_WOO_SECRET})
        assert code == 2 and "refused" in out, out
        code, out = enrich(nowhere_cfg, "sync")
        assert code != 0 and "connect" in out, out
        shop.store.options.drop_rate = 1.0
        code, out = enrich(openai_cfg, "sync")
        shop.store.options.drop_rate = 0.0
        assert code != 0 and "gave up after 2 attempt(s)" in out, out
        code, out = enrich(openai_cfg, "sync")
        assert code == 0 and "scanned" in out, out
        if auth == "oauth1":  # the second page came from a Link header echoing oauth_*
            assert shop.store.count("products", "GET") >= 2

        # -- run: each route, with a forced 401 and dropped connections (then retried) -------
        for config in (openai_cfg, anthropic_cfg):
            llm.fault = "401"  # in this process: the SDKs' DEBUG logs are captured too
            code, out = enrich(config, "run", "--limit", "2")
            assert code != 0 and "401" in out, out
            llm.fault = None
            llm.queued = ["drop", "drop"]
            code, out = enrich.process(config, "run", "--limit", "5")
            assert "2 failed" in out and "drafted 3" in out, out
            assert not llm.queued
        assert {401, 200} <= set(llm.statuses)
        code, out = enrich(openai_cfg, "run", "--limit", "2",
                           env={"OPENAI_API_KEY": "sk-invalid"})
        assert code != 0 and "401" in out, out

        # -- review and publish, with a publish whose writes are all dropped -----------------
        code, out = enrich(openai_cfg, "review", "export", "--out", str(tmp_path / "r.html"))
        assert code == 0, out
        code, out = enrich(openai_cfg, "review", "approve", "--all")
        assert code == 0, out
        shop.store.options.drop_rate = 1.0
        code, out = enrich(openai_cfg, "publish")
        shop.store.options.drop_rate = 0.0
        assert code != 0, out
        code, out = enrich(openai_cfg, "publish")
        assert code == 0, out
        assert sum(shop.store.writes.values()) >= 6
        code, out = enrich(openai_cfg, "publish", "--dry-run", "--json")
        assert code == 0, out
        for args in (("status",), ("jobs", "list"), ("jobs", "list", "--json"),
                     ("report", "--json"), ("sync", "--json"), ("review", "export", "--json",
                                                                "--out", "again.html")):
            code, out = enrich(openai_cfg, *args)
            assert code == 0, (args, out)
        for job in range(1, 8):
            enrich(openai_cfg, "jobs", "show", str(job), "--json")

    # -- the search ---------------------------------------------------------------------------
    problems: list[str] = []
    db = tmp_path / "enrich.db"
    cells = 0
    for table, column, value in ledger_values(db):
        cells += 1
        blob = value if isinstance(value, bytes) else str(value).encode()
        problems += [f"ledger {table}.{column}: {name}" for name in leaks_in(blob)]
    assert cells > 1000
    ledger_files = sorted(tmp_path.glob("enrich.db*"))
    assert db in ledger_files
    outside = capfd.readouterr()  # anything that went past click's capture
    printed = "\n".join([*enrich.printed, outside.out, outside.err, caplog.text])
    assert "HTTP Request: GET" in caplog.text
    assert "openai._base_client" in caplog.text and "anthropic._base_client" in caplog.text
    assert "done," in printed  # the worker's progress lines were captured
    problems += [f"printed: {name}" for name in leaks_in(printed.encode())]
    assert state.exists() and (tmp_path / "r.html").exists()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for path in files:
        problems += [f"{path.name}: {name}" for name in leaks_in(path.read_bytes())]
    assert not problems, "\n\n".join(problems)
    # The faults really happened, and their messages were kept where people read them.
    errors = " ".join(str(v) for t, c, v in ledger_values(db)
                      if (t, c) in {("attempts", "error"), ("jobs", "last_error"),
                                    ("publishes", "error")} and v)
    assert "401" in errors and "connection" in errors.lower(), errors[:2000]


@pytest.mark.parametrize("url", [
    f"https://{WOO_KEY}:{WOO_SECRET}@shop.example",
    f"https://shop.example/?consumer_key={WOO_KEY}&consumer_secret={WOO_SECRET}",
])
def test_keys_written_into_the_store_url_are_refused_without_echo(tmp_path: Path,
                                                                   url: str) -> None:
    """Keys come from the environment only: an address carrying them is refused before
    anything is read or recorded, and the refusal does not quote them."""
    config = tmp_path / "config.toml"
    config.write_text(f'[llm]\nprovider = "offline"\n\n[store]\nurl = "{url}"\n',
                      encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "sync"],
                                env={"WOO_CONSUMER_KEY": "ck_env", "WOO_CONSUMER_SECRET": "cs_env"})
    assert result.exit_code == 2
    assert "config.toml:5: [store] url carries credentials" in result.output
    assert "WOO_CONSUMER_SECRET" in result.output
    assert not leaks_in(result.output.encode()), result.output
    assert not (tmp_path / "enrich.db").exists()

"""What a store owner sees when something is wrong: one line naming the thing, what to do,
and the documented exit code (0 ok, 1 needs a look, 2 usage or configuration) - never a
traceback. Each test is a failure path found by walking the CLI as a new user would, against
real SQLite files and the project's sandboxes over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner, Result

from enrich.cli.main import cli
from enrich.ledger import Ledger
from enrich.sandbox.catalog import synthetic_catalog
from enrich.sandbox.llm import LLMSandboxOptions, serve_llm
from enrich.sandbox.store import StoreOptions, serve_store
from tests.paths import WOO_SAMPLE_CSV
from tests.worker_helpers import synced_ledger

CATALOG = WOO_SAMPLE_CSV


def enrich(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: escaped as {type(result.exception).__name__}: {result.exception}\n"
        f"{result.output}")
    assert "Traceback" not in result.output, result.output
    return result


def assert_one_clear_error(result: Result, code: int, *needles: str) -> None:
    """The documented exit code, an `error:` line naming the thing, and a `what to do:`."""
    assert result.exit_code == code, result.output
    assert "error: " in result.output and "what to do: " in result.output, result.output
    for needle in needles:
        assert needle in result.output, result.output


# -- the ledger file ---------------------------------------------------------------------------

def test_ledger_that_is_a_text_file_is_named_and_left_alone(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("my shopping list\n")
    result = enrich("--db", str(text), "status")
    assert_one_clear_error(result, 2, str(text), "not an enrich ledger", "--db")
    assert text.read_text() == "my shopping list\n"


def test_damaged_ledger_says_so_and_how_to_rescue_it(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    with Ledger(good) as ledger:
        ledger.conn.execute("CREATE TABLE filler (x)")
        ledger.conn.executemany("INSERT INTO filler VALUES (?)",
                                [("x" * 500,) for _ in range(200)])
        ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(good.read_bytes()[:40_000])
    result = enrich("--db", str(damaged), "jobs", "list")
    assert_one_clear_error(result, 2, str(damaged), "damaged", ".recover")


def test_another_programs_database_gets_no_enrich_tables(tmp_path: Path) -> None:
    foreign = tmp_path / "wordpress.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE wp_posts (id INTEGER PRIMARY KEY, title TEXT)")
    conn.commit()
    conn.close()
    result = enrich("--db", str(foreign), "status")
    assert_one_clear_error(result, 2, str(foreign), "not an enrich ledger", "wp_posts")
    conn = sqlite3.connect(foreign)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert tables == {"wp_posts"}


def test_a_new_or_existing_ledger_still_opens(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    assert enrich("--db", str(fresh), "status").exit_code == 0
    assert enrich("--db", str(fresh), "status").exit_code == 0  # reopened: no false alarm


def test_ledger_in_a_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    result = enrich("--db", str(tmp_path / "nope" / "enrich.db"), "status")
    assert_one_clear_error(result, 2, str(tmp_path / "nope"), "does not exist")


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (which ignores file modes): chattr +i."""
    if os.geteuid() != 0:
        path.chmod(stat.S_IRUSR)
        try:
            yield
        finally:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a file read-only")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"running as root and chattr +i failed here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_ledger_is_refused_before_any_work(tmp_path: Path) -> None:
    """SQLite opens a read-only file and fails at the first write, halfway through a
    command; enrich says so before it starts."""
    path = tmp_path / "enrich.db"
    with Ledger(path) as ledger:
        ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    with _read_only(path):
        for args in (["jobs", "retry", "--failed"], ["status"]):
            result = enrich("--db", str(path), *args)
            assert_one_clear_error(result, 2, f"cannot write to ledger {path}", "read-only",
                                   "writable")
    assert path.read_bytes() == before


# -- the store ---------------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _store_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "{url}"\nmax_attempts = 1\n{extra}'
                      f'[ledger]\npath = "{tmp_path / "enrich.db"}"\n')
    return config


WOO_ENV = {"WOO_CONSUMER_KEY": "ck_sandbox", "WOO_CONSUMER_SECRET": "cs_sandbox"}


def test_store_that_is_not_running_names_the_url_to_check(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = enrich("--config", str(_store_config(tmp_path, url)), "sync", env=WOO_ENV)
    assert_one_clear_error(result, 1, f"cannot connect to {url}", f"store.url (now {url})")
    assert "cs_sandbox" not in result.output


def test_store_url_credentials_never_reach_the_message(tmp_path: Path) -> None:
    url = f"http://admin:hunter2@127.0.0.1:{_closed_port()}/shop"
    result = enrich("--config", str(_store_config(tmp_path, url)), "sync", env=WOO_ENV)
    # Refused before use (config.py): kept, the address would reach the ledger's meta and
    # the sync summary on a store that answers.
    assert result.exit_code == 2, result.output
    assert "hunter2" not in result.output and "admin" not in result.output
    assert "[store] url carries credentials" in result.output


def test_oauth1_signs_for_a_plain_http_shop_that_is_not_loopback() -> None:
    """authlib refuses http:// for any host but loopback; a real plain-HTTP shop is not
    loopback. The signature must be RFC 5849's HMAC over the http:// URL itself."""
    from urllib.parse import parse_qsl, quote, urlsplit

    from enrich.woo.auth import OAuth1QueryAuth

    request = httpx.Request("GET", "http://shop.example.com/wp-json/wc/v3/products?page=2")
    signed = next(OAuth1QueryAuth("ck_abc", "cs_def").auth_flow(request))
    params = parse_qsl(signed.url.query.decode())
    signature = dict(params)["oauth_signature"]

    def enc(text: str) -> str:
        return quote(text, safe="~")

    normalized = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(
        (k, v) for k, v in params if k != "oauth_signature"))
    base = "&".join(["GET", enc("http://shop.example.com/wp-json/wc/v3/products"),
                     enc(normalized)])
    expected = base64.b64encode(hmac.new(b"cs_def&", base.encode(), hashlib.sha256).digest())
    assert signature == expected.decode()
    assert urlsplit(str(signed.url)).scheme == "http"


def test_sync_over_plain_http_by_host_name(tmp_path: Path) -> None:
    """The same through the CLI, against the sandbox by a name that is not a loopback
    literal (this machine's host name, when it resolves to 127.0.0.1)."""
    name = socket.gethostname()
    try:
        if not ipaddress.ip_address(socket.gethostbyname(name)).is_loopback:
            pytest.skip(f"host name {name} does not resolve to loopback here")
    except OSError:
        pytest.skip(f"host name {name} does not resolve here")
    with serve_store(CATALOG, options=StoreOptions(consumer_key="ck_sandbox",
                                                   consumer_secret="cs_sandbox")) as store:
        url = f"http://{name}:{urlsplit(store.url).port}"
        config = _store_config(tmp_path, url)
        result = enrich("--config", str(config), "sync", env=WOO_ENV)
        assert result.exit_code == 0, result.output
        assert "scanned" in result.output
        wrong = enrich("--config", str(config), "sync",
                       env={**WOO_ENV, "WOO_CONSUMER_SECRET": "cs_wrong"})
        assert_one_clear_error(wrong, 2, "Invalid signature", "WOO_CONSUMER_SECRET")


# -- the model ---------------------------------------------------------------------------------

def _llm_config(tmp_path: Path, db: Path, base_url: str, extra: str = "") -> Path:
    config = tmp_path / "llm.toml"
    config.write_text(f"""
[store]
url = "http://127.0.0.1:{_closed_port()}"
max_attempts = 1
[sync]
fields = ["description", "short_description"]
[llm]
provider = "openai"
model = "gpt-4o-mini"
base_url = "{base_url}"
max_rpm = 60000
max_tpm = 100000000
retry_base_s = 0.05
retry_max_s = 0.1
{extra}
[ledger]
path = "{db}"
""")
    return config


@pytest.fixture
def waiting_db(db_path: Path) -> Path:
    with Ledger(db_path) as ledger, synced_ledger(ledger, 6) as queued:
        assert queued > 2
    return db_path


def test_model_server_not_running_is_named_in_every_failed_attempt(
        tmp_path: Path, waiting_db: Path) -> None:
    base_url = f"http://user:s3cret@127.0.0.1:{_closed_port()}/v1"
    config = _llm_config(tmp_path, waiting_db, base_url)
    env = {"OPENAI_API_KEY": "sk-test-cli-errors"}
    result = enrich("--config", str(config), "run", "--limit", "2", env=env)
    # Nothing drafted, every attempt failed: not a clean night, and the hint says so.
    assert result.exit_code == 1, result.output
    assert "None was drafted" in result.output and "Review them" not in result.output
    listed = enrich("--config", str(config), "jobs", "list", "--json", env=env)
    errors = [job["last_error"] for job in json.loads(listed.output) if job["last_error"]]
    assert errors, listed.output
    clean = base_url.replace("user:s3cret@", "")
    for error in errors:
        assert f"connection to {clean} failed" in error and "s3cret" not in error, error


def test_rejected_model_key_is_a_configuration_error(tmp_path: Path, waiting_db: Path) -> None:
    with serve_llm() as llm:
        config = _llm_config(tmp_path, waiting_db, f"{llm.url}/v1")
        result = enrich("--config", str(config), "run", "--limit", "2",
                        env={"OPENAI_API_KEY": "sk-invalid"})
        assert_one_clear_error(result, 2, "API key was rejected", "OPENAI_API_KEY")
        assert "sk-invalid" not in result.output
        sample = enrich("--config", str(config), "estimate", "--sample", "2",
                        env={"OPENAI_API_KEY": "sk-invalid"})
        assert_one_clear_error(sample, 2, "estimate --sample", "API key was rejected")
        assert "cost:" not in sample.output  # no $0 estimate made from nothing


def test_estimate_sample_that_drafted_nothing_gives_no_price(tmp_path: Path,
                                                             waiting_db: Path) -> None:
    config = _llm_config(tmp_path, waiting_db, f"http://127.0.0.1:{_closed_port()}/v1")
    result = enrich("--config", str(config), "estimate", "--sample", "2",
                    env={"OPENAI_API_KEY": "sk-test-cli-errors"})
    assert_one_clear_error(result, 1, "drafted none of the 2 product job(s)",
                           "jobs list --status failed")
    assert "$0.0000" not in result.output


def test_nightly_refuses_a_bad_until_before_syncing(tmp_path: Path, db_path: Path) -> None:
    with serve_store(CATALOG, options=StoreOptions(consumer_key="ck_sandbox",
                                                   consumer_secret="cs_sandbox")) as store:
        config = _store_config(tmp_path, store.url)
        result = enrich("--config", str(config), "--db", str(db_path), "nightly",
                        "--until", "25:00", env=WOO_ENV)
        assert_one_clear_error(result, 2, "--until '25:00'", "HH:MM")
        assert store.store.count("products", "GET") == 0


def test_sandbox_prints_no_traceback_when_a_client_hangs_up(
        capfd: pytest.CaptureFixture[str]) -> None:
    """A run that stops cancels its requests in flight; the sandbox serving them must not
    print a BrokenPipe traceback into the terminal (or a test's captured output)."""
    body = json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "Product: a blue mug"}]}).encode()
    with serve_llm(LLMSandboxOptions(latency_ms=150)) as llm:
        port = int(urlsplit(llm.url).port or 0)
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: Bearer sk-test\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            # Hang up with a reset, as a cancelled request does, before the answer comes.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        time.sleep(0.5)
        with httpx.Client() as client:  # and it still answers the next client
            answer = client.get(f"{llm.url}/v1/models", headers={"Authorization": "Bearer x"})
        assert answer.status_code == 200
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out, captured.err


# -- the sandboxes' own command lines --------------------------------------------------------------

@pytest.mark.parametrize("command", [["sandbox", "llm"], ["sandbox", "store", "--synthetic", "2"]])
def test_sandbox_port_in_use_is_a_usage_error(command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = enrich(*command, "--port", port)
    assert_one_clear_error(result, 2, f"cannot serve on 127.0.0.1:{port}", "--port")


def test_sandbox_store_names_the_file_it_cannot_load(tmp_path: Path) -> None:
    not_json = tmp_path / "state.json"
    not_json.write_text("[store]\n")
    result = enrich("sandbox", "store", "--port", "0", "--state", str(not_json))
    assert_one_clear_error(result, 2, f"--state {not_json}", "JSON")
    missing = enrich("sandbox", "store", "--port", "0", "--catalog", str(tmp_path / "no.csv"))
    assert_one_clear_error(missing, 2, "no.csv", "--catalog")
    nowhere = tmp_path / "nope" / "state.json"
    result = enrich("sandbox", "store", "--port", "0", "--synthetic", "2", "--state", str(nowhere))
    assert_one_clear_error(result, 2, f"folder {nowhere.parent} does not exist")


# -- the demo ------------------------------------------------------------------------------------

def test_demo_never_writes_over_a_project_or_an_earlier_demo(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "config.toml").write_text("# my real shop\n")
    result = enrich("demo", "--dir", str(project))
    assert_one_clear_error(result, 2, "already holds an enrich project (config.toml)")
    assert (project / "config.toml").read_text() == "# my real shop\n"
    assert sorted(p.name for p in project.iterdir()) == ["config.toml"]

    demo = tmp_path / "demo"
    assert enrich("demo", "--dir", str(demo)).exit_code == 0
    ledger_before = (demo / "enrich.db").read_bytes()
    again = enrich("demo", "--dir", str(demo))
    assert_one_clear_error(again, 2, "already holds an earlier demo", "status")
    assert (demo / "enrich.db").read_bytes() == ledger_before


# -- init, and whatever enrich did not expect ---------------------------------------------------

def test_init_into_a_folder_it_cannot_make(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = enrich("init", "--dir", str(blocker / "shop"))
    assert_one_clear_error(result, 2, f"cannot write {blocker / 'shop'}", "--dir")


def test_unexpected_error_is_one_line_without_secrets_and_a_traceback_on_request(
        tmp_path: Path) -> None:
    """A ledger another program changed (a table dropped) is nothing enrich can name; it
    still says one line, keeps secrets out of it, and shows the traceback only when asked."""
    path = tmp_path / "enrich.db"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE attempts")
    conn.commit()
    conn.close()
    env = {"OPENAI_API_KEY": "attempts"}  # a secret that happens to be in the message
    result = enrich("--db", str(path), "report", env=env)
    assert_one_clear_error(result, 1, "error: unexpected OperationalError: no such table: ***",
                           "ENRICH_DEBUG=1")
    assert "attempts" not in result.output
    debug = CliRunner().invoke(cli, ["--db", str(path), "report"],
                               env={**env, "ENRICH_DEBUG": "1"})
    assert isinstance(debug.exception, sqlite3.OperationalError)


# -- long steps say they are alive ----------------------------------------------------------------

def test_sync_under_cron_logs_progress_lines(tmp_path: Path) -> None:
    """No terminal, so no bar: a long sync still writes a line every 50 pages (or 30 s)."""
    catalog = list(synthetic_catalog(5_050, 7))
    with serve_store(catalog, options=StoreOptions(consumer_key="ck_sandbox",
                                                   consumer_secret="cs_sandbox")) as store:
        config = _store_config(tmp_path, store.url)
        result = enrich("--config", str(config), "sync", env=WOO_ENV)
    assert result.exit_code == 0, result.output
    assert re.search(r"\d\d:\d\d:\d\d sync: page 50, 5,000 of 5,050 products read",
                     result.output), result.output


# -- no config file (cron starts in the home folder) ---------------------------------------------

@pytest.mark.parametrize("command", [["sync"], ["nightly"], ["publish"], ["publish", "--dry-run"],
                                     ["rollback", "--run", "1"]])
def test_store_commands_without_a_config_file_say_so(tmp_path: Path,
                                                     command: list[str]) -> None:
    """Not "cannot connect to http://127.0.0.1:8787": the built-in store.url is the
    sandbox's, and the user's config.toml is simply not where enrich looked."""
    result = enrich(*command, env=WOO_ENV)
    assert_one_clear_error(result, 2, "no config file", str(tmp_path), "--config")
    assert list(tmp_path.iterdir()) == []  # and no stray ledger made in the wrong folder


def test_rollback_without_a_target_asks_for_one(tmp_path: Path) -> None:
    config = _store_config(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    result = enrich("--config", str(config), "rollback", env=WOO_ENV)
    assert_one_clear_error(result, 2, "--run ID or --product ID", "one of them")
    assert "not both" not in result.output


# -- the config file -----------------------------------------------------------------------------

def test_config_typo_names_the_line_and_the_key_it_meant(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[llm]\nprovider = "offline"\nmax_rmp = 100\n')
    result = enrich("--config", str(config), "status")
    assert_one_clear_error(result, 2, f"{config}:3: [llm] max_rmp: unknown key",
                           "did you mean max_rpm?")
    config.write_text('[stor]\nurl = "http://127.0.0.1:8787"\n')
    result = enrich("--config", str(config), "status")
    assert_one_clear_error(result, 2, "stor: unknown key (did you mean store?)")
    config.write_text('[sync]\nzzz = 1\n')
    result = enrich("--config", str(config), "status")
    assert_one_clear_error(result, 2, "[sync] zzz: unknown key")
    assert "did you mean" not in result.output


def test_jobs_retry_without_a_target_says_how_to_find_one(db_path: Path) -> None:
    result = enrich("--db", str(db_path), "jobs", "retry")
    assert_one_clear_error(result, 2, "job ids, --failed or --dead", "jobs list --status")


def test_breaker_stop_says_what_kept_failing(tmp_path: Path, waiting_db: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    config = _llm_config(tmp_path, waiting_db, url,
                         "breaker_window = 5\nmax_attempts = 50\nconcurrency = 1")
    result = enrich("--config", str(config), "run", env={"OPENAI_API_KEY": "sk-test-cli"})
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())  # rich wraps the summary at the terminal width
    # A refused connection is transient: it stops the run once it is half the window (3 of 5).
    assert "breaker" in said and ("3 of the last 5 attempts failed with transient errors "
                                  "(limit 50%); last: openai gpt-4o-mini") in said, said
    assert f"connection to {url} failed" in said, said


def test_ledger_path_that_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[ledger]\npath = "{folder}"\n')
    result = enrich("--config", str(config), "status")
    assert_one_clear_error(result, 2, f"ledger path {folder} is a folder",
                           str(folder / "enrich.db"))


def test_publish_dry_run_on_a_large_queue_logs_its_reading(tmp_path: Path) -> None:
    catalog = list(synthetic_catalog(1_100, 7))
    with serve_store(catalog, options=StoreOptions(consumer_key="ck_sandbox",
                                                   consumer_secret="cs_sandbox")) as store:
        config = _store_config(tmp_path, store.url)
        for step in (["sync"], ["run"], ["review", "approve", "--all"]):
            done = enrich("--config", str(config), *step, env=WOO_ENV)
            assert done.exit_code == 0, done.output
        result = enrich("--config", str(config), "publish", "--dry-run", env=WOO_ENV)
        assert result.exit_code == 0, result.output
        assert store.store.count(method="PUT") + store.store.count(method="POST") == 0
    assert re.search(r"\d\d:\d\d:\d\d publish plan: 1,0\d\d approved product\(s\) read back",
                     result.output), result.output[:2000]


def test_publish_with_nothing_approved_says_how_to_approve(tmp_path: Path) -> None:
    with serve_store(CATALOG, options=StoreOptions(consumer_key="ck_sandbox",
                                                   consumer_secret="cs_sandbox")) as store:
        config = _store_config(tmp_path, store.url)
        result = enrich("--config", str(config), "publish", env=WOO_ENV)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "no approved drafts to publish" in said and "enrich review approve" in said, said

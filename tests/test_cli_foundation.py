"""`enrich init`, `status`, `jobs` through the real CLI on a real ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from enrich.cli.main import cli
from enrich.ledger import Attempt, EnqueueItem, JobStatus, Ledger


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_init_writes_config_and_prompts_and_refuses_overwrite(tmp_path: Path) -> None:
    code, out = _run("init", "--dir", str(tmp_path / "shop"))
    assert code == 0, out
    config = tmp_path / "shop" / "config.toml"
    assert config.exists() and (tmp_path / "shop" / "prompts").is_dir()
    assert 'dir = "prompts"' in config.read_text()
    code, out = _run("init", "--dir", str(tmp_path / "shop"))
    assert code == 2 and "--force" in out
    assert _run("init", "--dir", str(tmp_path / "shop"), "--force")[0] == 0
    # The written config loads, and its ledger path is next to it.
    code, out = _run("--config", str(config), "status", "--json")
    assert code == 0, out
    assert (tmp_path / "shop" / "enrich.db").exists()


def test_status_json_has_the_stable_shape(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        ledger.enqueue_many([EnqueueItem("product", "1", "h"), EnqueueItem("invoice", "a", "h")])
    code, out = _run("--db", str(db_path), "status", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert set(data) >= {"jobs", "cost_usd", "last_run"}
    assert set(data["jobs"]) == {"product", "invoice"}
    assert set(data["jobs"]["product"]) == {s.value for s in JobStatus}
    assert data["jobs"]["product"]["pending"] == 1 and data["jobs"]["invoice"]["pending"] == 1
    assert data["cost_usd"] == 0.0 and data["last_run"] is None


def test_jobs_list_show_retry(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        ledger.enqueue_many([EnqueueItem("product", str(i), "h") for i in range(3)])
        job = ledger.claim("w", 1)[0]
        ledger.fail(job.id, "w", Attempt(time.time(), "dead", error_class="BadRequest",
                                         error="400 from model", http_status=400),
                    max_attempts=3, permanent=True)
    code, out = _run("--db", str(db_path), "jobs", "list", "--status", "dead", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [job.id]
    assert {"id", "kind", "source_id", "status", "attempts", "last_error"} <= set(rows[0])
    assert "400 from model" in rows[0]["last_error"]
    code, out = _run("--db", str(db_path), "jobs", "show", str(job.id), "--json")
    shown = json.loads(out)
    assert shown["attempts_log"][0]["http_status"] == 400 and shown["draft"] is None
    assert _run("--db", str(db_path), "jobs", "show", str(job.id))[0] == 0
    code, out = _run("--db", str(db_path), "jobs", "retry", "--dead")
    assert code == 0 and "1 job(s) back to pending" in out
    code, out = _run("--db", str(db_path), "jobs", "show", "999")
    assert code == 2 and "no job with id 999" in out


def test_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[llm]\nconcurency = 4\n")
    code, out = _run("--config", str(config), "status")
    assert code == 2
    assert "error:" in out and "concurency: unknown key" in out and "Traceback" not in out


def test_console_is_unbounded_in_a_pipe_unless_columns_is_set() -> None:
    import io

    from rich.table import Table

    from enrich.cli.render import PIPE_WIDTH, _Console

    table = Table()
    for name in ("product", "reason"):
        table.add_column(name)
    table.add_row("Chaz Kangeroo Hoodie-XS-Black", "x" * 150)
    piped = _Console(file=io.StringIO(), _environ={})
    assert piped.width == PIPE_WIDTH
    piped.print(table)
    text = piped.file.getvalue()  # type: ignore[attr-defined]
    assert "x" * 150 in text and "…" not in text
    narrow = _Console(file=io.StringIO(), _environ={"COLUMNS": "60"})
    assert narrow.width == 60

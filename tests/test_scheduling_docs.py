"""docs/scheduling.md stays true: the crontab line and the systemd units name enrich commands and
options that exist, parse as what they claim to be, and use only placeholder paths."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import click

from enrich.cli.main import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "scheduling.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


def _check_invocation(words: list[str]) -> None:
    """``/path/to/enrich [global options] COMMAND [options]``: all of them real."""
    assert words[0] == "/path/to/enrich", words
    ctx = cli.make_context("enrich", [], resilient_parsing=True)
    rest = words[1:]
    while rest and rest[0].startswith("--"):
        option = next((p for p in cli.params if rest[0] in getattr(p, "opts", ())), None)
        assert option is not None, f"enrich has no global option {rest[0]}"
        rest = rest[2:] if not getattr(option, "is_flag", False) else rest[1:]
    command = cli.get_command(ctx, rest[0])
    assert isinstance(command, click.Command), f"enrich has no command {rest[0]!r}"
    for word in rest[1:]:
        if word.startswith("--"):
            assert any(word in getattr(p, "opts", ()) for p in command.params), word


def _paths(text: str) -> list[str]:
    return re.findall(r"(?<![\w.])/[\w./-]+", text)


def test_crontab_line_runs_an_existing_command_with_placeholder_paths() -> None:
    (block,) = _blocks("cron")
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert len(fields) == 6 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5])
    for command in fields[5].split("&&"):
        words = shlex.split(command.split(">>")[0])
        if words[0] == "/path/to/enrich":
            _check_invocation(words)
    assert "nightly" in fields[5]
    assert all(p.startswith("/path/to/") for p in _paths(fields[5])), _paths(fields[5])


def test_systemd_service_and_timer_parse_and_name_real_commands() -> None:
    service, timer = _blocks("ini")
    units = {}
    for name, text in (("service", service), ("timer", timer)):
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text)
        units[name] = parser
    svc = units["service"]
    assert svc["Service"]["Type"] == "oneshot"
    _check_invocation(shlex.split(svc["Service"]["ExecStart"]))
    assert "nightly" in svc["Service"]["ExecStart"]
    for key in ("WorkingDirectory", "EnvironmentFile"):
        assert svc["Service"][key].startswith("/path/to/")
    assert all(p.startswith("/path/to/") for p in _paths(service))
    tim = units["timer"]
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", tim["Timer"]["OnCalendar"])
    assert tim["Install"]["WantedBy"] == "timers.target"
    assert "enrich-nightly.service" in DOC.read_text() and "enrich-nightly.timer" in DOC.read_text()

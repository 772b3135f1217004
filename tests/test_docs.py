"""Docs that tests keep true: every command has help and an entry in docs/commands.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from enrich.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent


def _commands(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, (*path, name))
    else:
        yield path


def _command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize("path", list(_commands(cli)), ids=" ".join)
def test_every_command_has_help_and_docs(path: tuple[str, ...]) -> None:
    cmd = _command(path)
    assert cmd.help and len(cmd.help.strip()) > 20, f"enrich {' '.join(path)} has no help"
    for param in cmd.params:
        if isinstance(param, click.Option) and param.name != "as_json":
            assert param.help, f"enrich {' '.join(path)} {param.opts[0]} has no help text"
    docs = (ROOT / "docs" / "commands.md").read_text()
    top = f"enrich {path[0]}"
    assert top in docs, f"docs/commands.md does not mention `{top}`"


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    assert "uv run enrich demo" in head and "uv run pytest" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "uv run pytest\n" in ci

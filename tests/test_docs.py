"""Docs that tests keep true: every command has help and an entry in docs/commands.md, every
shared option says the same thing everywhere, the error tree in enrich/errors.py is the real one,
and every doc is reachable from the README."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import enrich
from enrich import errors
from enrich.cli.main import cli
from enrich.cli.options import json_option

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
        if isinstance(param, click.Option):
            assert param.help, f"enrich {' '.join(path)} {param.opts[0]} has no help text"
    docs = (ROOT / "docs" / "commands.md").read_text()
    top = f"enrich {path[0]}"
    assert top in docs, f"docs/commands.md does not mention `{top}`"


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    assert "uv run enrich demo" in head and "uv run pytest" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "uv run pytest\n" in ci


def test_json_is_one_shared_option() -> None:
    """``--json`` is declared once (cli/options.py): the same flag and words on every command."""

    def command() -> None:
        pass

    shared = json_option(command).__click_params__[0]  # type: ignore[attr-defined]
    found = [param for path in _commands(cli) for param in _command(path).params
             if "--json" in getattr(param, "opts", ())]
    assert len(found) >= 12
    assert {(param.name, param.help, getattr(param, "is_flag", False)) for param in found} == {
        (shared.name, shared.help, True)}


_TREE_NODE = re.compile(r"^    (?P<indent>(?:[│ ]   )*)(?:[├└]── )?(?P<name>[A-Z]\w+)\b")


def _documented_tree() -> dict[str, tuple[str | None, int]]:
    """``{class: (parent, exit code)}`` as the diagram in enrich/errors.py draws them."""
    doc = errors.__doc__ or ""
    diagram = doc[doc.index("    EnrichError"):].split("\n\n", 1)[0]
    tree: dict[str, tuple[str | None, int]] = {}
    path: list[str] = []
    for line in diagram.splitlines():
        node = _TREE_NODE.match(line)
        if node and ("──" in line or not path):  # else a description's second line
            depth = len(node["indent"]) // 4 + (1 if path else 0)
            path = [*path[:depth], node["name"]]
            tree[node["name"]] = (path[-2] if len(path) > 1 else None, 1)
        if "(exit 2)" in line:
            tree[path[-1]] = (tree[path[-1]][0], 2)
    return tree


def test_the_error_tree_in_errors_py_lists_every_class_as_it_is() -> None:
    for info in pkgutil.walk_packages(enrich.__path__, "enrich."):
        if not info.name.endswith("__main__"):  # running `python -m enrich` starts the CLI
            importlib.import_module(info.name)

    def subclasses(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    actual = {errors.EnrichError.__name__: (None, errors.EnrichError.exit_code)}
    for cls in subclasses(errors.EnrichError):
        actual[cls.__name__] = (cls.__mro__[1].__name__, cls.exit_code)
    assert _documented_tree() == actual


def test_every_doc_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README.md does not link docs/{doc.name}"

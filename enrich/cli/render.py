"""Output helpers shared by commands: JSON for scripts, rich tables for people."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import click
from rich.console import Console, ConsoleDimensions
from rich.text import Text

from enrich.worker import RunResult
from enrich.worker.progress import progress_line

#: Width when the output is a file or a pipe: wide enough that no table column is cut.
PIPE_WIDTH = 10_000


class _Console(Console):
    """A console as wide as the terminal, or unbounded when the output is not a terminal.

    Rich assumes 80 columns for a pipe or a file, so ``enrich report > report.txt`` used to
    cut every wide table at 80 columns, with ellipses where the values were. Tables are not
    expanded, so a wide console costs nothing: each line is as long as its content.
    ``COLUMNS`` still wins, for a caller who wants a fixed width.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and "COLUMNS" not in self._environ:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console()

# C0 and C1 control characters but newline and tab: an escape sequence in a product name
# or a draft could recolour, hide or retitle the operator's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def untrusted(value: Any, style: str = "") -> Text:
    """Product, draft or error text for the console: never read as rich markup (``[/b]``
    would crash the command, ``[link=…]`` would make a link), control codes made visible."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(value))
    return Text(text, style=style)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def money(usd: float) -> str:
    return f"${usd:,.4f}" if usd < 1 else f"${usd:,.2f}"


def render_run(result: RunResult) -> None:
    """How a drafting run ended, what it did and what to do (for `run` and `nightly`)."""
    s = result.stats
    console.print(f"run #{result.run_id}: {result.exit_reason} ({result.message})")
    console.print(f"  {progress_line(s)}")
    console.print(f"  drafted {s.drafted:,} ({s.flagged:,} flagged by guards), dead {s.dead:,},"
                  f" retries scheduled {s.retried:,}, rate-limited {s.rate_limited:,}, "
                  f"requests {s.requests:,}, cost {money(s.cost_usd)}")
    if result.hint:
        console.print(f"  what to do: {result.hint}")

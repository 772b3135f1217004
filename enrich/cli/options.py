"""Options several commands share, declared once (as sqlite-utils does with its
``output_options``), so each means the same thing and says so in the same words everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: Job statuses whose drafts the review commands can show.
REVIEW_STATUSES = ("drafted", "approved", "rejected", "conflict")
#: ``--sample`` given without N: take N from ``[review] sample``.
SAMPLE_FROM_CONFIG = -1


def json_option(fn: F) -> F:
    """``--json``: the command's result as JSON on stdout, for scripts, in place of the text."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON for scripts instead of text (a stable shape).")(fn)


def review_filters(*, default_statuses: tuple[str, ...]) -> Callable[[F], F]:
    """Which drafts a review page shows: ``--status``, ``--flagged-only``, ``--kind``,
    ``--sample [N]`` and ``--seed``. Commands differ only in the statuses shown when none is
    given."""
    default = ", ".join(default_statuses)

    def decorator(fn: F) -> F:
        for option in reversed((
            click.option("--status", "statuses", multiple=True,
                         type=click.Choice(REVIEW_STATUSES), default=default_statuses,
                         help=f"Drafts whose job is in this status (repeatable; default: "
                              f"{default})."),
            click.option("--flagged-only", is_flag=True, help="Only drafts a guard flagged."),
            click.option("--kind", type=click.Choice(("product", "invoice")), default=None,
                         help="Only product copy or only invoices (default: both, in one "
                              "page)."),
            click.option("--sample", type=int, is_flag=False, flag_value=SAMPLE_FROM_CONFIG,
                         default=None, metavar="[N]",
                         help="A stratified sample of N drafts by category and flag (N "
                              "defaults to [review] sample) for a spot check before bulk "
                              "approval."),
            click.option("--seed", type=int, default=0, show_default=True,
                         help="Seed of the sample (same seed, same sample)."),
        )):
            fn = option(fn)
        return fn

    return decorator

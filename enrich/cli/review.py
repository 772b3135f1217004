"""`enrich review export | import | approve | reject | serve`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from enrich.app import App
from enrich.cli.options import SAMPLE_FROM_CONFIG, json_option, review_filters
from enrich.cli.render import echo_json
from enrich.errors import UsageError
from enrich.review.decisions import (
    ApplyResult,
    apply_decisions,
    approve_jobs,
    load_decisions,
    reject_jobs,
)
from enrich.review.export import export_review

LARGE_PAGE = 20_000  # drafts; about 55 MB of HTML (10,000 open in ~1.3 s: bench/review.py)


def _sample(app: App, sample: int | None) -> int | None:
    if sample == SAMPLE_FROM_CONFIG:
        return app.settings.review.sample
    if sample is not None and sample < 1:
        raise click.BadParameter("must be at least 1", param_hint="--sample")
    return sample


def _statuses(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))  # --status drafted --status drafted: once


def _report(result: ApplyResult, as_json: bool, verb: str) -> None:
    if as_json:
        echo_json(result.as_dict())
    else:
        for warning in result.warnings:
            click.secho(f"warning: {warning}", fg="yellow")
        edited = sum(1 for o in result.applied if o.edited)
        flagged = [o for o in result.applied if o.edited and o.flags]
        by = {d: sum(1 for o in result.applied if o.decision == d)
              for d in ("approved", "rejected")}
        click.echo(f"{verb}: {len(result.applied)} applied "
                      f"({by['approved']} approved, {by['rejected']} rejected, "
                      f"{edited} edited), {len(result.refused)} refused")
        for o in flagged:
            guards = ", ".join(sorted({f.get("guard", "?") for f in o.flags}))
            click.echo(f"  job {o.job_id}: the edit is flagged by {guards} "
                       "(see `enrich jobs show`)")
        for o in result.refused:
            click.echo(f"  refused job {o.job_id} ({o.decision}): {o.reason}")
    if result.refused:
        sys.exit(1)


@click.group("review")
def review() -> None:
    """Look at drafts and approve, edit or reject them; nothing is published unapproved."""


@review.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("review.html"), show_default=True, help="The HTML file to write.")
@review_filters(default_statuses=("drafted",))
@json_option
@click.pass_obj
def export_command(app: App, out: Path, statuses: tuple[str, ...], flagged_only: bool,
                   kind: str | None, sample: int | None, seed: int, as_json: bool) -> None:
    """Write one self-contained HTML page to review drafts in, offline.

    Open it in a browser, decide, press "Save decisions", then run
    `enrich review import decisions.json`.
    """
    result = export_review(app.ledger, out, statuses=_statuses(statuses),
                           flagged_only=flagged_only, sample=_sample(app, sample), seed=seed,
                           guards=app.settings.guards, kind=kind)
    if as_json:
        echo_json(result.as_dict())
        return
    of = f" (a sample of {result.matching:,})" if result.count < result.matching else ""
    click.echo(f"wrote {out}: {result.count:,} draft(s){of}, export {result.export_id}")
    if result.count > LARGE_PAGE:
        click.echo(f"that is a large page ({len(result.html) / 1e6:.0f} MB) to mail or open; "
                   "consider --flagged-only, --sample, or `enrich review serve`")
    if result.count:
        click.echo("open it in a browser, decide, press \"Save decisions\", then run "
                      "`enrich review import decisions.json`")


@review.command("import")
@click.argument("decisions_file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_obj
def import_command(app: App, decisions_file: Path, as_json: bool) -> None:
    """Apply a decisions.json saved by the review page.

    Edited drafts are re-checked by the guards. A decision on a draft that changed since the
    page was exported is refused, item by item, with the reason (exit code 1).
    """
    decisions = load_decisions(decisions_file)
    result = apply_decisions(app.ledger, decisions, guards=app.settings.guards)
    _report(result, as_json, f"imported {decisions_file}")


@review.command("approve")
@click.argument("job_ids", nargs=-1, type=int)
@click.option("--all", "all_drafted", is_flag=True, help="Every drafted job, flagged or not.")
@click.option("--unflagged", is_flag=True,
              help="Only drafts no guard flagged (alone: every such drafted job).")
@click.option("--note", default=None, help="A note kept with each decision.")
@json_option
@click.pass_obj
def approve_command(app: App, job_ids: tuple[int, ...], all_drafted: bool, unflagged: bool,
                    note: str | None, as_json: bool) -> None:
    """Approve drafts by job id, or all drafted ones (--all / --unflagged)."""
    if job_ids and all_drafted:
        raise click.UsageError("give job ids or --all, not both")
    result = approve_jobs(app.ledger, job_ids, all_drafted=all_drafted, unflagged=unflagged,
                          note=note)
    _report(result, as_json, "approve")


@review.command("reject")
@click.argument("job_ids", nargs=-1, type=int, required=True)
@click.option("--note", default=None, help="Why (kept with the draft, shown on redraft).")
@json_option
@click.pass_obj
def reject_command(app: App, job_ids: tuple[int, ...], note: str | None,
                   as_json: bool) -> None:
    """Reject drafts by job id, with an optional note."""
    _report(reject_jobs(app.ledger, job_ids, note=note), as_json, "reject")


@review.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port on 127.0.0.1 (default: [review] port, 8789; 0 = any free port).")
@review_filters(default_statuses=("drafted", "approved", "rejected"))
@click.pass_obj
def serve_command(app: App, port: int | None, statuses: tuple[str, ...], flagged_only: bool,
                  kind: str | None, sample: int | None, seed: int) -> None:
    """Serve the review page on 127.0.0.1; each decision goes straight into the ledger.

    Stop it with Ctrl-C. The address printed carries a session token: do not share it.
    """
    from enrich.review.serve import ReviewServer

    chosen = app.settings.review.port if port is None else port
    try:
        server = ReviewServer(app.db_path, port=chosen,
                              statuses=_statuses(statuses),
                              flagged_only=flagged_only, sample=_sample(app, sample),
                              seed=seed, lease_s=app.settings.ledger.lease_s,
                              guards=app.settings.guards, kind=kind)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{chosen}: {exc.strerror}",
                         "Pass --port with another port, or --port 0 for any free one.") \
            from None
    click.echo(f"review page: {server.url}")
    click.echo("decisions are written to the ledger as you make them; Ctrl-C to stop")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        click.echo("review server stopped")


COMMANDS = [review]

"""`enrich invoices add | run | export | eval`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from enrich.app import App
from enrich.cli.options import json_option
from enrich.cli.render import console, echo_json, money
from enrich.cli.run import run_command
from enrich.invoices.evaluate import evaluate
from enrich.invoices.export import FORMATS, export_invoices
from enrich.invoices.intake import add_invoices


@click.group("invoices")
def invoices_group() -> None:
    """Supplier invoices (PDF) to validated records on the same ledger and worker."""


@invoices_group.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--recursive", "-r", is_flag=True, help="Walk folders and their subfolders.")
@json_option
@click.pass_obj
def add_command(app: App, paths: tuple[Path, ...], recursive: bool, as_json: bool) -> None:
    """Queue PDF invoices (files or folders); unreadable files are recorded with the reason.

    The same file twice queues nothing; a changed file under the same name is a new job.
    """
    report = add_invoices(app.ledger, app.settings, paths, recursive=recursive)
    if as_json:
        echo_json(report.as_dict())
    else:
        console.print(f"{report.files} file(s): {report.queued} queued "
                      f"({report.embedded_xml} with embedded e-invoice XML"
                      + (f", {report.vision} scan(s) to read from page images"
                         if report.vision else "") + "), "
                      f"{report.unchanged} unchanged, {len(report.duplicates)} duplicate(s), "
                      f"{report.superseded} superseded, {len(report.problems)} problem(s)")
        for p in report.problems:
            console.print(f"  [yellow]{p['problem']}[/yellow] {p['reason']}", highlight=False)
    if report.problems:
        sys.exit(1)


@invoices_group.command("run")
@click.option("--limit", type=click.IntRange(min=1), help="Extract at most N invoices.")
@click.option("--until", "until_text", metavar="HH:MM", help="Stop cleanly at this local time.")
@click.option("--concurrency", type=click.IntRange(min=1, max=512),
              help="Requests in flight (default: [llm] concurrency).")
@click.pass_context
def run_invoices(ctx: click.Context, limit: int | None, until_text: str | None,
                 concurrency: int | None) -> None:
    """Extract pending invoices: the same as `enrich run --kind invoice`."""
    ctx.invoke(run_command, limit=limit, until_text=until_text, kind="invoice",
               concurrency=concurrency)


@invoices_group.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json",
              show_default=True, help="json, jsonl, csv (one row per line item) or cii (XML).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write here (a folder for cii) instead of standard output.")
@click.option("--all", "include_all", is_flag=True,
              help="Every drafted invoice, not only the approved ones.")
@click.pass_obj
def export_command(app: App, fmt: str, out: Path | None, include_all: bool) -> None:
    """Export approved invoices (or all) as JSON, JSON lines, CSV or EN 16931 CII XML."""
    result = export_invoices(app.ledger, fmt, out=out, include_all=include_all)
    if result.text is not None:
        click.echo(result.text, nl=False)
    else:
        click.echo(f"{result.invoices} invoice(s), {result.rows} written to "
                   f"{out}", err=True)
    for problem in result.invalid:
        click.echo(f"not written (XSD): {problem}", err=True)
    if result.invalid:
        sys.exit(1)


@invoices_group.command("eval")
@click.option("--truth", "truth_dir", required=True, type=click.Path(path_type=Path),
              help="Folder of PDFs with name.json (invoice2data) or name.xml (CII) beside.")
@json_option
@click.pass_obj
def eval_command(app: App, truth_dir: Path, as_json: bool) -> None:
    """Per-field accuracy of the invoice drafts against ground truth, by field and family."""
    data = evaluate(app.ledger, truth_dir).as_dict()
    if as_json:
        echo_json(data)
        return
    for title, key, first in (("by field", "fields", "field"),
                              ("by corpus family", "families", "family"),
                              ("by extraction path", "paths", "path")):
        table = Table(title=title)
        for name in (first, "right", "total", "accuracy"):
            table.add_column(name, justify="left" if name == first else "right")
        for name, row in sorted(data[key].items()):
            table.add_row(name, str(row["right"]), str(row["total"]),
                          f"{row['accuracy']:.0%}" if row["accuracy"] is not None else "-")
        console.print(table)
    o = data["overall"]
    console.print(f"overall {o['right']}/{o['total']}"
                  + (f" = {o['accuracy']:.1%}" if o["accuracy"] is not None else "")
                  + f"; extraction cost {money(data['cost_usd'])}"
                  + (f"; {len(data['unmatched'])} truth file(s) with no draft"
                     if data["unmatched"] else ""))


COMMANDS = [invoices_group]

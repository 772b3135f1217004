"""``enrich sandbox``: local stand-ins for the store and the LLM, for trials and tests."""

from __future__ import annotations

import click

from enrich.cli.sandbox_llm import llm_command
from enrich.cli.sandbox_store import store_command


@click.group("sandbox")
def sandbox() -> None:
    """Serve a local WooCommerce store or LLM endpoint on 127.0.0.1 (no real shop touched)."""


sandbox.add_command(store_command)
sandbox.add_command(llm_command)

COMMANDS = [sandbox]

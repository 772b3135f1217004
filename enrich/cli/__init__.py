"""The command line: thin click commands over the library (see ``main.py``)."""

from enrich.cli.main import cli, main

__all__ = ["cli", "main"]

"""``enrich sandbox store``: serve a local WooCommerce REST v3 store on 127.0.0.1."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from enrich.errors import EnrichError, InputError, UsageError
from enrich.sandbox.store import StoreOptions, serve_store
from enrich.sandbox.store_auth import ApiKey
from enrich.sandbox.store_settings import DIMENSION_UNITS, WEIGHT_UNITS, StoreSettings


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("store")
@click.option("--port", type=int, default=8787, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--catalog", "catalog", type=click.Path(path_type=Path, dir_okay=False),
              help="JSON array of wc/v3 products or a WooCommerce product CSV.")
@click.option("--synthetic", type=int, default=None,
              help="Serve N synthetic supplier products instead of a catalog file.")
@click.option("--state", "state", type=click.Path(path_type=Path, dir_okay=False),
              help="Persist the store here after every write; resume from it on restart.")
@click.option("--consumer-key", default="ck_sandbox", show_default=True,
              help="The REST key the sandbox accepts (a throwaway, not a real shop's).")
@click.option("--consumer-secret", default="cs_sandbox", show_default=True,
              help="The REST secret the sandbox accepts.")
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="Delay added to every request.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of requests answered 503 (a quarter of them 501, as WAFs do).")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of requests whose connection is closed without an answer.")
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Requests per second before 429 with Retry-After.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for faults and synthetic data.")
@click.option("--key", "extra_keys", multiple=True, metavar="CK:CS[:PERMISSIONS]",
              help="Another API key (permissions read, write or read_write; repeatable), "
                   "e.g. a read-only key to see the store refuse writes.")
@click.option("--weight-unit", type=click.Choice(WEIGHT_UNITS), default="lbs",
              show_default=True, help="The store's weight unit (bare product weights are in it).")
@click.option("--dimension-unit", type=click.Choice(DIMENSION_UNITS), default="in",
              show_default=True, help="The store's dimension unit.")
@click.option("--currency", default="USD", show_default=True,
              help="The store's currency (ISO 4217 code).")
@click.option("--https", is_flag=True,
              help="Serve HTTPS with a self-signed certificate (Basic and query keys work "
                   "only over HTTPS; plain HTTP needs OAuth 1.0a, as on a real store).")
def store_command(port: int, catalog: Path | None, synthetic: int | None, state: Path | None,
                  consumer_key: str, consumer_secret: str, latency_ms: int, fail_rate: float,
                  drop_rate: float, rate_limit: float | None, seed: int,
                  extra_keys: tuple[str, ...], weight_unit: str, dimension_unit: str,
                  currency: str, https: bool) -> None:
    """Serve a WooCommerce REST v3 store on 127.0.0.1 to try enrich without the live shop.

    It follows the real store's contract (paging headers, error bodies, meta_data merging,
    batch limits and quirks). Stop it with Ctrl-C.
    """
    from enrich.sandbox.catalog import synthetic_catalog

    if catalog is not None and synthetic is not None:
        raise click.UsageError("pass either --catalog or --synthetic, not both")
    if state is not None and not state.parent.is_dir():  # else the first write would fail
        raise UsageError(f"--state {state}: folder {state.parent} does not exist",
                         "Create the folder, or pass --state in an existing one.")
    source: Iterable[dict[str, Any]] | Path
    if state is not None and state.exists():
        source = []  # the state file wins over --catalog: the store resumes from it
    elif catalog is not None:
        source = catalog
    elif synthetic is not None:
        source = synthetic_catalog(synthetic, seed)  # streamed: never held twice
    else:
        raise click.UsageError("pass --catalog PATH, --synthetic N, or an existing --state FILE")
    try:
        settings = StoreSettings(weight_unit, dimension_unit, currency.upper())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--currency") from exc
    keys = []
    for spec in extra_keys:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]) or (
                len(parts) == 3 and parts[2] not in ("read", "write", "read_write")):
            raise click.BadParameter(f"{spec!r}: expected CK:CS or CK:CS:read|write|read_write",
                                     param_hint="--key")
        keys.append(ApiKey(parts[0], parts[1], parts[2] if len(parts) == 3  # type: ignore[arg-type]
                           else "read_write"))
    options = StoreOptions(consumer_key=consumer_key, consumer_secret=consumer_secret,
                           latency_ms=latency_ms, fail_rate=fail_rate, drop_rate=drop_rate,
                           rate_limit=rate_limit,
                           seed=seed, state_path=state, extra_keys=tuple(keys),
                           settings=settings)
    try:
        with serve_store(source, options=options, port=port, https=https) as running:
            # A large catalog is millions of objects that live as long as the store: kept
            # out of the cycle collector, which otherwise walked them all now and then and
            # stalled every request for up to a second (100,000 products).
            gc.freeze()
            click.echo(f"WooCommerce sandbox store: {running.url}  ({len(running.store)} "
                       "products and variations)")
            click.echo(f"  REST API:        {running.api_url}")
            click.echo(f"  consumer key:    {consumer_key}")
            click.echo(f"  consumer secret: {consumer_secret}")
            for key in keys:
                click.echo(f"  extra key:       {key.consumer_key} ({key.permissions})")
            if running.ca_path is not None:
                click.echo(f"  certificate:     {running.ca_path} (trust it: store.verify_tls)")
            else:
                click.echo("  auth:            OAuth 1.0a over plain HTTP (use --https for "
                           "Basic auth)")
            if state is not None:
                click.echo(f"  state file:      {state}")
            click.echo(f"Point enrich at it: store.url = \"{running.url}\" in config.toml, "
                       f"then WOO_CONSUMER_KEY={consumer_key} "
                       f"WOO_CONSUMER_SECRET={consumer_secret} enrich sync")
            click.echo("Press Ctrl-C to stop.")
            signal.signal(signal.SIGTERM, _stop)  # a service manager stops it cleanly too
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                click.echo("stopped")
    except InputError as exc:  # --catalog names a file that is not a catalog
        raise UsageError(exc.message, exc.hint) from exc
    except EnrichError:
        raise
    except OSError as exc:
        if exc.filename:  # the state file, not the port
            raise UsageError(f"cannot use {exc.filename}: {exc.strerror}",
                             hint="Check --state (a file in a folder you can write).") from exc
        raise UsageError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}",
                         hint="Pick another --port or stop what is using it.") from exc
    except ValueError as exc:
        source = (f"--state {state}" if state is not None and state.exists()
                  else f"--catalog {catalog}" if catalog is not None else "the catalog")
        raise UsageError(f"cannot load the store from {source}: {exc}",
                         hint="--state takes the JSON file a sandbox store saved; --catalog a "
                              "JSON array of products or a WooCommerce product CSV.") from exc

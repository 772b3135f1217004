"""``enrich sandbox llm``: a local OpenAI/Anthropic/Gemini-compatible endpoint with fault
injection."""

from __future__ import annotations

from pathlib import Path

import click

from enrich.errors import UsageError
from enrich.sandbox.llm import FAULT_HEADER, FAULTS, LLMSandboxOptions, serve_llm_forever

_rate = click.FloatRange(0.0, 1.0)


@click.command("llm")
@click.option("--port", type=click.IntRange(0, 65535), default=8788, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="Delay added to every admitted request.")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute before 429.")
@click.option("--tpm", type=click.IntRange(min=1),
              help="Tokens per minute before 429 (estimated at 4 characters per token), "
                   "counted as each provider does: OpenAI prompt + max_tokens, Anthropic "
                   "uncached input (ITPM).")
@click.option("--otpm", type=click.IntRange(min=1),
              help="Anthropic output tokens per minute (OTPM), charged as produced.")
@click.option("--fail-rate", type=_rate, default=0.0, show_default=True,
              help="Share of requests answered 500.")
@click.option("--overload-rate", type=_rate, default=0.0, show_default=True,
              help="Share answered 529 overloaded (503 on the OpenAI route).")
@click.option("--rate-limit-rate", type=_rate, default=0.0, show_default=True,
              help="Share answered 429 with retry-after: 1, besides --rpm/--tpm.")
@click.option("--malformed-rate", type=_rate, default=0.0, show_default=True,
              help="Share of answers whose JSON is truncated or misses a required field.")
@click.option("--timeout-rate", type=_rate, default=0.0, show_default=True,
              help="Share of requests held past the client's timeout, then closed.")
@click.option("--drop-rate", type=_rate, default=0.0, show_default=True,
              help="Share of connections closed without an answer.")
@click.option("--timeout-s", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="How long a timeout fault holds the connection before closing it.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the fault draws: the same requests fail the same way.")
@click.option("--gullible/--no-gullible", default=True, show_default=True,
              help="Obey instructions injected into the product data (to test the guards).")
@click.option("--batch-delay-s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds a batch takes from creation to its results (every API).")
@click.option("--batch-error-rate", type=_rate, default=0.0, show_default=True,
              help="Share of batch lines answered with an error instead of a response.")
@click.option("--batch-expire-rate", type=_rate, default=0.0, show_default=True,
              help="OpenAI/Anthropic: share of batch lines that expire unprocessed.")
@click.option("--batch-expire-s", type=click.FloatRange(min=0, min_open=True),
              help="Gemini: batches still unfinished this many seconds after creation expire.")
@click.option("--state", "state", type=click.Path(path_type=Path, dir_okay=False),
              help="Persist batches and files here after every change; resume on restart "
                   "(Gemini's in the same name + .gemini).")
def llm_command(port: int, latency_ms: int, rpm: int | None, tpm: int | None,
                otpm: int | None,
                fail_rate: float, overload_rate: float, rate_limit_rate: float,
                malformed_rate: float,
                timeout_rate: float, drop_rate: float, timeout_s: float, seed: int,
                gullible: bool, batch_delay_s: float, batch_error_rate: float,
                batch_expire_rate: float, batch_expire_s: float | None,
                state: Path | None) -> None:
    """Serve a fake OpenAI, Anthropic and Gemini API on 127.0.0.1 for trials and tests.

    Point the OpenAI SDK at URL/v1, the Anthropic and google-genai SDKs at URL; any API key
    works except sk-invalid (rejected) and sk-no-quota (quota exhausted). Answers are built
    from the product data in the prompt, fit the requested JSON schema, and cost nothing.
    The request header x-sandbox-fault forces one failure: 401, 400, 404, 429, quota, 500,
    503, 529, timeout, drop, malformed, missing or refusal (and 403 on Gemini). Batches
    persist in --state across restarts. Stop with Ctrl-C.
    """
    if state is not None and not state.parent.is_dir():  # else the first write would fail
        raise UsageError(f"--state {state}: folder {state.parent} does not exist",
                         hint="Create the folder, or pass --state in an existing one.")
    try:
        options = LLMSandboxOptions(
            latency_ms=latency_ms, rpm=rpm, tpm=tpm, otpm=otpm, fail_rate=fail_rate,
            overload_rate=overload_rate, rate_limit_rate=rate_limit_rate,
            malformed_rate=malformed_rate,
            timeout_rate=timeout_rate, drop_rate=drop_rate, timeout_s=timeout_s, seed=seed,
            gullible=gullible, batch_delay_s=batch_delay_s, batch_error_rate=batch_error_rate,
            batch_expire_rate=batch_expire_rate, batch_expire_s=batch_expire_s,
            state_path=state)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc

    def announce(url: str) -> None:
        click.echo(f"enrich sandbox llm listening on {url}")
        click.echo(f"  OpenAI:    base_url={url}/v1   Anthropic: base_url={url}")
        click.echo(f"  Gemini:    HttpOptions(base_url={url})")
        click.echo(f"  forced faults: header {FAULT_HEADER}: {' | '.join(FAULTS)}")
        click.echo("  Ctrl-C to stop")

    try:
        serve_llm_forever(options, port=port, announce=announce)
    except KeyboardInterrupt:
        click.echo("stopped")
    except ValueError as exc:  # an unreadable --state file
        raise UsageError(str(exc), hint="Move the file away, or pass another --state.") from exc
    except OSError as exc:  # the same message, hint and exit code as `sandbox store`
        raise UsageError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}",
                         hint="Pick another --port (0 picks a free one) or stop what is "
                              "using it.") from exc

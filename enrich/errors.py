"""The errors enrich raises on purpose.

Every error carries a one-line message that names the record and field involved, and a
``hint`` that says what to do about it. The CLI renders them as two lines and an exit code;
anything else that escapes is a bug (re-raised with its traceback under ``ENRICH_DEBUG=1``).

    EnrichError
    ├── ConfigError              bad or unknown config key, secret in the file      (exit 2)
    ├── UsageError               a command called in a way that cannot work         (exit 2)
    ├── LedgerError              the ledger file cannot be used as it is
    │   ├── LedgerVersionError   ledger written by a newer enrich                   (exit 2)
    │   ├── IllegalTransition    a job status change the state machine forbids
    │   ├── NotFound             no job/draft/run with that id                      (exit 2)
    │   ├── LedgerUnusable       the path is not a usable ledger: missing folder,
    │   │                        not SQLite, damaged, read-only, another program's (exit 2)
    │   └── LeaseLost            the job's lease moved on to another worker (in enrich.ledger)
    ├── InputError               a record is malformed (names record and field)
    ├── StoreError               the WooCommerce store refused or failed
    │   ├── StoreAuthError       401/403: keys, permissions, or scheme              (exit 2)
    │   └── StoreUnavailable     5xx/429/connection errors after retries
    ├── ProviderError            the LLM provider failed
    │   ├── RetryableProviderError   429, 5xx, 529, timeouts; may carry retry_after
    │   │   └── RateLimited          429: re-queued with a delay, not counted as an attempt
    │   ├── PermanentProviderError   this record cannot succeed (400, refusal, bad output)
    │   │   └── UnusableOutput       a refusal or still-invalid output; carries the billed usage
    │   │       └── OutputTruncated  cut off at max_tokens: asked again with a larger limit
    │   └── FatalProviderError       the run cannot succeed (401/403, quota, unknown model) (exit 2)
    └── RunStopped               the worker stopped early (breaker, budget, fatal error)

Every class here is in this module but ``LeaseLost``; tests/test_docs.py keeps this tree
complete.
"""

from __future__ import annotations


class EnrichError(Exception):
    """Base of every error enrich raises on purpose."""

    exit_code = 1
    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class ConfigError(EnrichError):
    """The configuration is wrong; nothing was done."""

    exit_code = 2
    default_hint = "Fix the configuration (see config.example.toml) and run the command again."


class UsageError(EnrichError):
    """The command was called in a way that cannot work."""

    exit_code = 2


class LedgerError(EnrichError):
    """The ledger cannot be used as it is."""


class LedgerVersionError(LedgerError):
    """The ledger was written by a newer version of enrich."""

    exit_code = 2
    default_hint = "Upgrade enrich (uv tool upgrade enrich) or point --db at another ledger."


class IllegalTransition(LedgerError):
    """A job status change the state machine does not allow."""


class NotFound(LedgerError):
    """No row with that id."""

    exit_code = 2


class InputError(EnrichError):
    """A source record is malformed; the message names the record and the field."""


class StoreError(EnrichError):
    """The WooCommerce store refused a request or failed."""

    def __init__(
        self, message: str, hint: str | None = None, *, status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code


class StoreAuthError(StoreError):
    """The store rejected the keys (401) or their permissions (403)."""

    exit_code = 2
    default_hint = (
        "Check WOO_CONSUMER_KEY / WOO_CONSUMER_SECRET, that the key has read_write permission "
        "and belongs to an administrator or shop manager, and store.auth (plain-HTTP stores "
        "accept only oauth1)."
    )


class StoreUnavailable(StoreError):
    """The store kept failing (5xx, 429, connection errors) after every retry."""

    default_hint = "The store is down or throttling; try again later or lower the request rate."


class ProviderError(EnrichError):
    """The LLM provider failed."""

    def __init__(
        self, message: str, hint: str | None = None, *, status: int | None = None,
        retry_after: float | None = None, error_class: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.retry_after = retry_after
        self.error_class = error_class or type(self).__name__


class RetryableProviderError(ProviderError):
    """A transient failure: try again later (honour retry_after when set)."""


class RateLimited(RetryableProviderError):
    """HTTP 429: re-queue with a delay; it does not count as an attempt."""


class PermanentProviderError(ProviderError):
    """This record cannot succeed as it is: invalid request, refusal, unrepairable output."""


class FatalProviderError(ProviderError):
    """No record can succeed: bad key, no quota, unknown model. The run stops."""

    exit_code = 2


class RunStopped(EnrichError):
    """The worker stopped before the queue was empty, for a reason it names."""


class UnusableOutput(PermanentProviderError):
    """The model answered but its answer cannot be used (a refusal, or output still invalid
    after the one repair request). The tokens were billed all the same, so the error carries
    the usage (an ``enrich.providers.Usage``) and cost of every request it took."""

    def __init__(
        self, message: str, hint: str | None = None, *, status: int | None = None,
        retry_after: float | None = None, error_class: str | None = None,
        usage: object | None = None, cost_usd: float = 0.0,
    ) -> None:
        super().__init__(message, hint, status=status, retry_after=retry_after,
                         error_class=error_class)
        self.usage = usage
        self.cost_usd = cost_usd


class OutputTruncated(UnusableOutput):
    """The answer stopped at the request's output token limit before it was complete. The
    worker asks once more with a larger limit (the job keeps its attempt) and learns the
    figure; ``limit`` is the limit that was too small."""

    def __init__(self, message: str, hint: str | None = None, *, limit: int = 0,
                 status: int | None = None, usage: object | None = None,
                 cost_usd: float = 0.0) -> None:
        super().__init__(message, hint, status=status, error_class="truncated", usage=usage,
                         cost_usd=cost_usd)
        self.limit = limit


class LedgerUnusable(LedgerError):
    """The ledger path does not lead to a ledger enrich can use (its folder is missing, the
    file is not SQLite or is damaged, it cannot be written, or it belongs to another
    program). Nothing was done; the user points --db / [ledger] path elsewhere or fixes it."""

    exit_code = 2
    default_hint = "Point --db or [ledger] path at the ledger file (enrich.db)."

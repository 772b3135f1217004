"""Configuration: ``config.toml`` for behaviour, the environment for secrets.

The file is validated by pydantic models that forbid unknown keys, so a typo such as
``max_rmp`` is an error naming the key, the file and the line, not a silently ignored
setting that lets a night's run go at the wrong rate. Secrets are never read from the
file: a key, secret or token written into it is refused with the variable to use instead,
so ``config.toml`` can be committed and shared without leaking them.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from enrich.errors import ConfigError

# Environment variable names: the only place secrets come from.
ENV_CONFIG = "ENRICH_CONFIG"
ENV_DB = "ENRICH_DB"
ENV_DEBUG = "ENRICH_DEBUG"
ENV_WOO_KEY = "WOO_CONSUMER_KEY"
ENV_WOO_SECRET = "WOO_CONSUMER_SECRET"
ENV_OPENAI_KEY = "OPENAI_API_KEY"
ENV_ANTHROPIC_KEY = "ANTHROPIC_API_KEY"
ENV_GEMINI_KEY = "GEMINI_API_KEY"

DEFAULT_CONFIG_PATH = Path("config.toml")

# Keys that hold secrets, with the variable that must be used instead.
_SECRET_KEYS: dict[str, str] = {
    "consumer_key": ENV_WOO_KEY,
    "consumer_secret": ENV_WOO_SECRET,
    "woo_consumer_key": ENV_WOO_KEY,
    "woo_consumer_secret": ENV_WOO_SECRET,
    "openai_api_key": ENV_OPENAI_KEY,
    "anthropic_api_key": ENV_ANTHROPIC_KEY,
    "gemini_api_key": ENV_GEMINI_KEY,
    "api_key": f"{ENV_OPENAI_KEY}, {ENV_ANTHROPIC_KEY} or {ENV_GEMINI_KEY}",
    "key": "the provider's environment variable",
    "secret": "the provider's environment variable",
    "token": "the provider's environment variable",
    "password": "the provider's environment variable",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StoreConfig(_Section):
    """Where the WooCommerce store is and how to talk to it."""

    url: str = "http://127.0.0.1:8787"
    auth: Literal["auto", "basic", "oauth1", "query"] = "auto"
    seo_plugin: Literal["yoast", "rankmath", "seopress", "none"] = "none"
    statuses: list[Literal["publish", "draft", "pending", "private", "future"]] = Field(
        default_factory=lambda: ["publish", "draft", "pending", "private"]
    )
    timeout_s: float = Field(default=30.0, gt=0)
    verify_tls: bool | str = True
    max_attempts: int = Field(default=5, ge=1, le=20)

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


#: Tier names enrich gives itself: ``urgent`` sits above every [sync] priority tier (for
#: ``enrich jobs prioritize``), ``rest`` below them (products no tier matches).
RESERVED_TIERS = ("urgent", "rest")


class PriorityTier(_Section):
    """One ``[sync] priority`` tier: the products meeting every condition given (an omitted
    condition matches anything). A product takes the first tier it meets."""

    tier: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    status: list[Literal["publish", "draft", "pending", "private", "future"]] | None = None
    stock_status: list[Literal["instock", "outofstock", "onbackorder"]] | None = None
    min_sales: int = Field(default=0, ge=0)


def _default_priority() -> list[PriorityTier]:
    return [PriorityTier(tier="selling", status=["publish"],
                         stock_status=["instock", "onbackorder"]),
            PriorityTier(tier="published", status=["publish"])]


class SyncConfig(_Section):
    """Which products and fields count as missing copy, and which go to the model first."""

    fields: list[
        Literal["name", "description", "short_description", "seo_title",
                "meta_description", "focus_keyword", "image_alt"]
    ] = Field(default_factory=lambda: ["description", "short_description",
                                       "seo_title", "meta_description"])
    variations: bool = False
    min_length: dict[str, int] = Field(
        default_factory=lambda: {"description": 120, "short_description": 30,
                                 "seo_title": 10, "meta_description": 50}
    )
    placeholders: list[str] = Field(
        default_factory=lambda: ["lorem ipsum", "tbd", "n/a", "coming soon",
                                 "description", "todo", "placeholder"]
    )
    boilerplate_min_products: int = Field(default=5, ge=2)
    min_source_chars: int = Field(default=20, ge=0)
    max_field_bytes: int = Field(default=1_000_000, gt=0)
    # Page reader processes for a large catalog (None: one per CPU; 0: none). Their pages are
    # asked for on a connection each, so a sync has up to this many page requests in flight
    # (and as many for variations, with ``variations``).
    readers: int | None = Field(default=None, ge=0, le=16)
    priority: list[PriorityTier] = Field(default_factory=_default_priority, max_length=20)

    @field_validator("priority")
    @classmethod
    def _tiers_are_distinct(cls, tiers: list[PriorityTier]) -> list[PriorityTier]:
        names = [t.tier for t in tiers]
        for name in names:
            if name in RESERVED_TIERS:
                raise ValueError(f"tier {name!r} is reserved (urgent and rest are built in): "
                                 f"pick another name")
            if names.count(name) > 1:
                raise ValueError(f"tier {name!r} is named twice: each tier needs its own name")
        return tiers


class PriceConfig(_Section):
    """USD per million tokens for one model."""

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)
    batch_discount: float = Field(default=0.5, ge=0, le=1)
    cache_write: float | None = Field(default=None, ge=0)  # Anthropic cache writes


class LLMConfig(_Section):
    """Which model writes the drafts, and the limits it must stay within."""

    provider: Literal["openai", "anthropic", "gemini", "offline"] = "offline"
    model: str = "offline-v1"
    base_url: str | None = None
    mode: Literal["live", "batch"] = "live"
    # Batch mode: at most this many requests / bytes per provider batch (the providers' own
    # limits, enrich.providers.batches.BATCH_LIMITS, apply when unset or larger).
    batch_max_requests: int | None = Field(default=None, ge=1)
    batch_max_bytes: int | None = Field(default=None, ge=1024)
    concurrency: int = Field(default=8, ge=1, le=512)
    # None: start at the provider's lowest paid tier and take the key's real limits from
    # the rate-limit headers (enrich.providers.limit_model); a number is kept as is.
    max_rpm: int | None = Field(default=None, ge=1)
    max_tpm: int | None = Field(default=None, ge=1)
    max_attempts: int = Field(default=4, ge=1, le=50)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    budget_usd: float = Field(default=5.0, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)
    temperature: float = Field(default=0.4, ge=0, le=2)
    max_output_tokens: int = Field(default=1200, ge=16)
    # The breaker (worker.limits.Breaker): systematic failures over breaker_threshold of the
    # last breaker_window attempts stop the run; transient ones only at half the window or in
    # a long streak, so a night of ordinary 5xx and timeouts still drains the queue.
    breaker_window: int = Field(default=50, ge=5)
    breaker_threshold: float = Field(default=0.10, gt=0, le=1)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)


class PromptsConfig(_Section):
    """Prompt templates and the voice they write in."""

    dir: str | None = None
    brand_voice: str = "Clear, friendly and factual. No hype, no claims the data does not support."
    language: str = "en"
    examples: list[dict[str, str]] = Field(default_factory=list)


#: The copy fields enrich can write, in the order prompts and review pages show them.
CopyField = Literal["name", "description", "short_description", "seo_title",
                    "meta_description", "focus_keyword", "image_alt"]

# Characters of text (HTML tags not counted); image_alt limits apply to each alt text.
_DEFAULT_MAX_CHARS: dict[str, int] = {
    "name": 120, "description": 4000, "short_description": 400, "seo_title": 60,
    "meta_description": 160, "focus_keyword": 60, "image_alt": 125,
}
_DEFAULT_MIN_CHARS: dict[str, int] = {
    "name": 3, "description": 120, "short_description": 30, "seo_title": 10,
    "meta_description": 120, "focus_keyword": 2, "image_alt": 5,
}
# Tags a store owner may allow in descriptions; anything that can run code or load
# content (script, style, iframe, img, form, ...) can never be allowed.
SAFE_HTML_TAGS = frozenset({
    "p", "br", "ul", "ol", "li", "strong", "em", "b", "i", "u", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "a", "span", "hr", "sub",
    "sup", "dl", "dt", "dd",
})


class GuardsConfig(_Section):
    """Limits every draft is checked against. A draft outside them is flagged for review,
    never dropped and never passed silently."""

    max_chars: dict[CopyField, int] = Field(default_factory=lambda: dict(_DEFAULT_MAX_CHARS))
    min_chars: dict[CopyField, int] = Field(default_factory=lambda: dict(_DEFAULT_MIN_CHARS))
    html_tags: list[str] = Field(
        default_factory=lambda: ["p", "br", "ul", "ol", "li", "strong", "em", "h2", "h3", "h4"])
    duplicate_threshold: float = Field(default=0.8, ge=0.3, le=1.0)
    duplicate_min_words: int = Field(default=8, ge=3)

    @field_validator("max_chars", "min_chars")
    @classmethod
    def _merge_defaults(cls, value: dict[str, int], info: Any) -> dict[str, int]:
        # A table naming one field changes that field only; the others keep their defaults.
        bad = [f"{k} = {v}" for k, v in value.items() if v < 0]
        if bad:
            raise ValueError(f"must be 0 or more, got {', '.join(bad)}")
        base = _DEFAULT_MAX_CHARS if info.field_name == "max_chars" else _DEFAULT_MIN_CHARS
        return {**base, **value}

    @field_validator("html_tags")
    @classmethod
    def _safe_tags(cls, value: list[str]) -> list[str]:
        tags = [t.strip().lower() for t in value]
        unsafe = sorted(set(tags) - SAFE_HTML_TAGS)
        if unsafe:
            raise ValueError(f"tag(s) {', '.join(unsafe)} cannot be allowed; choose from "
                             f"{', '.join(sorted(SAFE_HTML_TAGS))}")
        return tags

    def limits(self, field: str) -> tuple[int, int]:
        """(min, max) characters for a field; a min above the max means the max wins."""
        high = self.max_chars.get(field, 0)  # type: ignore[call-overload]
        low = self.min_chars.get(field, 0)  # type: ignore[call-overload]
        return (min(low, high) if high else low, high)


class ReviewConfig(_Section):
    """The review page."""

    port: int = Field(default=8789, ge=1, le=65535)
    sample: int = Field(default=50, ge=1)


class PublishConfig(_Section):
    """Writing approved drafts back to the store."""

    batch_size: int = Field(default=100, ge=1, le=100)


class LedgerConfig(_Section):
    """Where the job ledger lives."""

    path: str = "enrich.db"
    lease_s: float = Field(default=300.0, gt=0)


class NightlyConfig(_Section):
    """The unattended run: sync, draft until a deadline, report."""

    until: str = "06:00"
    limit: int | None = Field(default=None, ge=1)

    @field_validator("until")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("must be a time of day as HH:MM, e.g. 06:00")
        return value


class InvoicesConfig(_Section):
    """Invoice PDFs: limits on what is read, OCR, and the embedded e-invoice XML."""

    max_mb: float = Field(default=20.0, gt=0)
    max_pages: int = Field(default=50, ge=1)
    ocr: bool = True
    ocr_languages: str = "eng+deu+fra"
    vision: bool = False
    #: Pages of a scan sent to the model (the first N); the rest are not read.
    vision_max_pages: int = Field(default=5, ge=1, le=20)
    #: Longest edge of a page image in pixels (Anthropic scales down anything over 1568).
    vision_max_px: int = Field(default=1568, ge=384, le=4096)
    #: True when llm.model takes images though enrich's table does not list it (a local
    #: vision model behind an OpenAI-compatible llm.base_url).
    model_takes_images: bool = False
    use_embedded_xml: bool = True
    template: str = "invoice.j2"


class Settings(_Section):
    """The whole configuration. ``source`` is the file it came from, if any."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    nightly: NightlyConfig = Field(default_factory=NightlyConfig)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    invoices: InvoicesConfig = Field(default_factory=InvoicesConfig)

    source: Path | None = Field(default=None, exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the file is relative to the file's folder, not the current one."""
        p = Path(path).expanduser()
        if p.is_absolute() or self.source is None:
            return p
        return self.source.parent / p


class Secrets:
    """Read secrets from the environment at the moment they are needed, never stored."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._env = environ if environ is not None else os.environ

    def get(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def require(self, name: str, purpose: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigError(
                f"{name} is not set; it is needed {purpose}.",
                f"export {name}=... in the environment that runs enrich (never in config.toml).",
            )
        return value


def _line_of(text: str, section: tuple[str | int, ...]) -> int | None:
    """Best-effort line number of a dotted key in TOML text, for error messages."""
    if not section:
        return None
    *tables, key = [str(part) for part in section]
    lines = text.splitlines()
    table_re = re.compile(r"^\s*\[+\s*" + re.escape(".".join(str(p) for p in section))
                          + r"\s*\]+\s*(#.*)?$")
    for i, line in enumerate(lines):
        if table_re.match(line):
            return i + 1
    start = 0
    if tables:
        header = re.compile(r"^\s*\[+\s*" + re.escape(".".join(tables)) + r"\s*\]+\s*(#.*)?$")
        for i, line in enumerate(lines):
            if header.match(line):
                start = i + 1
                break
        else:
            start = 0
    key_re = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
    for i in range(start, len(lines)):
        if i > start and re.match(r"^\s*\[", lines[i]) and tables:
            break
        if key_re.match(lines[i]):
            return i + 1
    return None


def _where(path: Path, text: str, loc: tuple[str | int, ...]) -> str:
    line = _line_of(text, loc)
    return f"{path}:{line}" if line else str(path)


def _dotted(loc: tuple[str | int, ...]) -> str:
    tables = [str(p) for p in loc[:-1]]
    return (f"[{'.'.join(tables)}] " if tables else "") + str(loc[-1])


def _did_you_mean(loc: tuple[str | int, ...]) -> str:
    """The known key an unknown one is probably a typo of, e.g. max_rmp -> max_rpm."""
    model: Any = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    known = [name for name in model.model_fields if name != "source"]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _find_secrets(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in data.items():
        loc = (*prefix, key)
        if isinstance(value, dict):
            if prefix[:2] == ("llm", "prices"):
                continue
            found.extend(_find_secrets(value, loc))
        elif key.lower() in _SECRET_KEYS:
            found.append(loc)
    return found


def _url_has_credentials(url: str) -> bool:
    """A password or REST key written into the store's address: it would be printed, kept
    in the ledger and committed with the file."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return False  # not a URL at all: validation says so
    keys = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    return password is not None or bool(keys & {"consumer_key", "consumer_secret"})


def parse_settings(text: str, path: Path) -> Settings:
    """Validate TOML text; every problem is a ConfigError naming the key, file and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    store = data.get("store")
    url = store.get("url") if isinstance(store, dict) else None
    if isinstance(url, str) and _url_has_credentials(url):
        # Checked before validation, whose messages quote the value.
        raise ConfigError(
            f"{_where(path, text, ('store', 'url'))}: [store] url carries credentials "
            "(user:password@ or consumer_key/consumer_secret); enrich does not read secrets "
            "from the config file.",
            f"Write the bare address in {path.name} and set {ENV_WOO_KEY} and "
            f"{ENV_WOO_SECRET} in the environment instead.")
    secrets = _find_secrets(data)
    if secrets:
        loc = secrets[0]
        var = _SECRET_KEYS[loc[-1].lower()]
        raise ConfigError(
            f"{_where(path, text, loc)}: {_dotted(loc)} looks like a secret; enrich does not "
            "read secrets from the config file.",
            f"Delete it from {path.name} and set {var} in the environment instead.",
        )
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            what = f"{_dotted(loc)}: unknown key{_did_you_mean(loc)}"
        else:
            what = f"{_dotted(loc)}: {err['msg']}"
            if "input" in err and not isinstance(err["input"], dict):
                what += f" (got {err['input']!r})"
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{_where(path, text, loc)}: {what}{more}") from None
    settings.source = path.resolve()
    return settings


def load_settings(path: Path | None = None, *, required: bool = False) -> Settings:
    """Load settings from ``path``, ``$ENRICH_CONFIG`` or ``./config.toml``.

    A missing default file means built-in defaults (so ``enrich status --db x.db`` works
    anywhere); a missing file the user named is an error.
    """
    explicit = path is not None or bool(os.environ.get(ENV_CONFIG))
    chosen = path or Path(os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG_PATH)
    if not chosen.exists():
        if explicit or required:
            raise ConfigError(
                f"config file {chosen} does not exist.",
                "Run `enrich init` to write one, or pass --config PATH.",
            )
        return Settings()
    try:
        text = chosen.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {chosen}: {exc}") from None
    return parse_settings(text, chosen)

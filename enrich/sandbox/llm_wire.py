"""What both wire formats of the sandbox LLM endpoint share.

Each format module (``llm_openai``, ``llm_anthropic``) turns its request body into an
``Ask``, and an ``Answer`` plus usage back into its own response body, so the core in
``llm`` (auth, limits, faults, counters) is written once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from enrich.sandbox.llm_limits import LimitState, estimate_tokens

if TYPE_CHECKING:  # llm_images raises this module's BadRequest
    from enrich.sandbox.llm_images import SeenImage

Mode = Literal["text", "json_object", "json_schema", "tool"]


class BadRequest(Exception):
    """The request body is not something the real API would accept."""

    def __init__(self, message: str, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True)
class Segment:
    """One cacheable piece of the prompt, in the order the API reads them."""

    tokens: int
    digest: str  # of everything up to and including this piece
    breakpoint: bool  # a prefix ending here may be cached
    ttl: float = 300.0


@dataclass
class Ask:
    """A request, whichever format it came in."""

    route: str  # "openai" or "anthropic"
    model: str
    system: str
    user: str  # the text of the user turns: where the record's fenced data sits
    prompt_tokens: int
    mode: Mode = "text"
    schema: dict[str, Any] | None = None
    tool_name: str | None = None
    max_tokens: int | None = None
    segments: list[Segment] = field(default_factory=list)
    images: list[SeenImage] = field(default_factory=list)  # counted in prompt_tokens


@dataclass
class Usage:
    prompt_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    cache_write_ttl: float = 300.0


@dataclass
class Answer:
    """What the sandbox model says: text (JSON text in JSON modes), or a tool's input."""

    text: str | None = None
    tool_input: dict[str, Any] | None = None
    refusal: str | None = None
    finish: Literal["stop", "length", "refusal"] = "stop"

    @property
    def output_text(self) -> str:
        if self.tool_input is not None:
            return json.dumps(self.tool_input, ensure_ascii=False)
        return self.refusal or self.text or ""


def segments_of(model: str, pieces: list[tuple[Any, bool, float]]) -> list[Segment]:
    """Cumulative digests of ``(piece, is_breakpoint, ttl)`` so a prefix has one key."""
    running = hashlib.sha256(model.encode())
    found: list[Segment] = []
    for piece, breakpoint, ttl in pieces:
        dumped = json.dumps(piece, sort_keys=True, ensure_ascii=False)
        running.update(dumped.encode())
        found.append(Segment(estimate_tokens(_text_of(piece)), running.copy().hexdigest(),
                             breakpoint, ttl))
    return found


def _text_of(piece: Any) -> str:
    """The characters a piece costs: its text, or its JSON when it is a schema or tool."""
    if isinstance(piece, str):
        return piece
    if isinstance(piece, dict) and isinstance(piece.get("text"), str) and piece.get(
            "type", "text") == "text":
        return piece["text"]
    if isinstance(piece, dict) and isinstance(piece.get("content"), str):
        return piece["content"]
    return json.dumps(piece, ensure_ascii=False, separators=(",", ":"))


def text_of_content(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif isinstance(block.get("content"), str | list):
                    parts.append(text_of_content(block["content"]))
        return "\n".join(parts)
    return ""


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def rate_limit_headers(state: LimitState | None, name: Callable[[str, str], str],
                       reset: Callable[[float], str]) -> list[tuple[str, str]]:
    """Limit, remaining and reset of each limit the sandbox enforces, requests then tokens.

    The formats agree on what is sent and when; they differ only in how a header is spelled
    (``name(kind, part)``, e.g. ``("requests", "limit")``) and how a reset time is written.
    """
    if state is None:
        return []
    headers: list[tuple[str, str]] = []
    for kind, limit, remaining, reset_s in (
            ("requests", state.requests_limit, state.requests_remaining, state.requests_reset),
            ("tokens", state.tokens_limit, state.tokens_remaining, state.tokens_reset)):
        if limit is not None:
            headers += [(name(kind, "limit"), str(limit)),
                        (name(kind, "remaining"), str(remaining)),
                        (name(kind, "reset"), reset(reset_s))]
    return headers

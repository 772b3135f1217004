"""The Anthropic Messages wire format (``POST /v1/messages``) of the sandbox.

Shapes follow the API reference and the installed ``anthropic`` SDK's types (``Message``,
``Usage``, ``ToolUseBlock``): structured output through a forced tool call (``tool_choice``
``{"type": "tool", "name": ...}``) or ``output_config.format`` json_schema, plain text
otherwise. Prompt caching is simulated: a prefix that ends at a ``cache_control`` block
(tools, then system, then messages, in that order; at most 4 breakpoints) is written on
first sight and read on the next identical prefix within its TTL (5 minutes, or 1 hour
with ``"ttl": "1h"``).
"""

from __future__ import annotations

from typing import Any

from enrich.httpserver import Response
from enrich.sandbox.llm_images import SeenImage, anthropic_image
from enrich.sandbox.llm_limits import LimitState, rfc3339_after
from enrich.sandbox.llm_wire import (
    Answer,
    Ask,
    BadRequest,
    Usage,
    rate_limit_headers,
    require_object,
    segments_of,
    text_of_content,
)

MAX_BREAKPOINTS = 4


def _ttl(block: Any) -> tuple[bool, float]:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(control, dict):
        return False, 300.0
    if control.get("type") != "ephemeral":
        raise BadRequest("cache_control.type: Input should be 'ephemeral'", "cache_control")
    return True, 3600.0 if control.get("ttl") == "1h" else 300.0


def parse(raw: Any) -> Ask:
    body = require_object(raw)
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise BadRequest(f"{name}: Field required", name)
    model = body["model"]
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Input should be a valid string", "model")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens: Input should be greater than or equal to 1", "max_tokens")
    if body.get("stream"):
        raise BadRequest("The enrich sandbox does not stream; call with stream=false.", "stream")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required", "messages")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise BadRequest(
                f'messages.{index}.role: Unexpected role "{role}". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.',
                f"messages.{index}.role")

    pieces: list[tuple[Any, bool, float]] = []
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise BadRequest("tools: Input should be a valid list", "tools")
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRequest("tools.0.name: Field required", "tools")
        flagged, ttl = _ttl(tool)
        pieces.append(({k: v for k, v in tool.items() if k != "cache_control"}, flagged, ttl))

    system = body.get("system")
    system_blocks: list[Any]
    if system is None:
        system_blocks = []
    elif isinstance(system, str):
        system_blocks = [system] if system else []
    elif isinstance(system, list):
        system_blocks = system
    else:
        raise BadRequest("system: Input should be a valid string or list of text blocks",
                         "system")
    for block in system_blocks:
        if isinstance(block, dict) and block.get("type") != "text":
            raise BadRequest("system: blocks must be of type 'text'", "system")
        flagged, ttl = _ttl(block)
        pieces.append((_strip_control(block), flagged, ttl))

    images: list[SeenImage] = []
    for index, message in enumerate(messages):
        content = message.get("content")
        blocks = content if isinstance(content, list) else [content]
        for number, block in enumerate(blocks):
            flagged, ttl = _ttl(block)
            if isinstance(block, dict) and block.get("type") == "image":
                seen = anthropic_image(block, f"messages.{index}.content.{number}.image")
                images.append(seen)
                block = f"[image {seen.sha256}]"  # its tokens are the image's, added below
            pieces.append(({"role": message["role"], "block": _strip_control(block)}, flagged,
                           ttl))

    automatic = body.get("cache_control")
    if automatic is not None and pieces:
        flagged, ttl = _ttl({"cache_control": automatic})
        piece, _, _ = pieces[-1]
        pieces[-1] = (piece, True, ttl)
    flagged_count = sum(1 for _, flagged, _ in pieces if flagged)
    if flagged_count > MAX_BREAKPOINTS:
        raise BadRequest(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be "
                         f"provided. Found {flagged_count}.", "cache_control")

    system_text = "\n".join(text_of_content([b]) if isinstance(b, dict) else str(b)
                            for b in system_blocks)
    user = "\n".join(text_of_content(m.get("content")) for m in messages if m["role"] == "user")
    ask = Ask(route="anthropic", model=model, system=system_text, user=user, prompt_tokens=0,
              max_tokens=max_tokens)
    ask.segments = segments_of(model, [(_piece_text(p), f, t) for p, f, t in pieces])
    ask.images = images
    ask.prompt_tokens = sum(s.tokens for s in ask.segments) + sum(i.tokens for i in images)
    _read_output(body, tools, ask)
    return ask


def _piece_text(piece: Any) -> Any:
    """What a piece costs in tokens: a message block costs its text, a tool its JSON."""
    if isinstance(piece, dict) and "block" in piece:
        block = piece["block"]
        if isinstance(block, str):
            return block
        if isinstance(block, dict):
            return text_of_content([block]) or block
        return str(block)
    return piece


def _strip_control(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _read_output(body: dict[str, Any], tools: list[dict[str, Any]], ask: Ask) -> None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("tool", "any"):
        if not tools:
            raise BadRequest("tool_choice: may only be specified while providing tools.",
                             "tool_choice")
        wanted = choice.get("name") if choice["type"] == "tool" else tools[0]["name"]
        for tool in tools:
            if tool["name"] == wanted:
                schema = tool.get("input_schema")
                if not isinstance(schema, dict):
                    raise BadRequest(f"tools.{tools.index(tool)}.input_schema: Field required",
                                     "tools")
                ask.mode = "tool"
                ask.tool_name = wanted
                ask.schema = schema
                return
        raise BadRequest(f"tool_choice: Tool '{wanted}' not found in tools.", "tool_choice")
    output = body.get("output_config")
    fmt = output.get("format") if isinstance(output, dict) else None
    if isinstance(fmt, dict):
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise BadRequest("output_config.format: expected {'type': 'json_schema', "
                             "'schema': {...}}", "output_config.format")
        ask.mode = "json_schema"
        ask.schema = fmt["schema"]


def success(ask: Ask, answer: Answer, usage: Usage, request_id: str) -> dict[str, Any]:
    stop = "end_turn"
    content: list[dict[str, Any]]
    if answer.refusal is not None:
        content = [{"type": "text", "text": answer.refusal, "citations": None}]
        stop = "refusal"
    elif answer.tool_input is not None:
        content = [{"type": "tool_use", "id": f"toolu_{request_id[:24]}",
                    "name": ask.tool_name, "input": answer.tool_input}]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": answer.text or "", "citations": None}]
    if answer.finish == "length":
        stop = "max_tokens"
    fresh = max(0, usage.prompt_tokens - usage.cache_read - usage.cache_write)
    long_ttl = usage.cache_write_ttl > 300
    message = {
        "id": f"msg_{request_id[:24]}",
        "type": "message",
        "role": "assistant",
        "model": ask.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": fresh,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 0 if long_ttl else usage.cache_write,
                "ephemeral_1h_input_tokens": usage.cache_write if long_ttl else 0,
            },
            "output_tokens": usage.output_tokens,
            "service_tier": "standard",
        },
    }
    if stop == "refusal":
        message["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
    return message


def error(status: int, kind: str, message: str, request_id: str,
          headers: list[tuple[str, str]] | None = None,
          details: dict[str, Any] | None = None) -> Response:
    inner: dict[str, Any] = {"type": kind, "message": message}
    if details:
        inner["details"] = details
    body = {"type": "error", "error": inner, "request_id": f"req_{request_id[:24]}"}
    return Response.json(body, status, headers)


def limit_headers(state: LimitState | None) -> list[tuple[str, str]]:
    """``anthropic-ratelimit-requests-limit`` and kin; resets as RFC 3339 times.

    As the real API does, the input (ITPM) and output (OTPM) limits have their own headers,
    ``anthropic-ratelimit-input-tokens-*`` and ``-output-tokens-*``; ``-tokens-*`` repeats
    the input limit (the one ``--tpm`` sets).
    """
    headers = rate_limit_headers(state, lambda kind, part: f"anthropic-ratelimit-{kind}-{part}",
                                 rfc3339_after)
    if state is None:
        return headers
    for kind, limit, remaining, reset_s in (
            ("input-tokens", state.tokens_limit, state.tokens_remaining, state.tokens_reset),
            ("output-tokens", state.output_limit, state.output_remaining, state.output_reset)):
        if limit is not None:
            headers += [(f"anthropic-ratelimit-{kind}-limit", str(limit)),
                        (f"anthropic-ratelimit-{kind}-remaining", str(remaining)),
                        (f"anthropic-ratelimit-{kind}-reset", rfc3339_after(reset_s))]
    return headers

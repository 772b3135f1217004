"""The OpenAI Chat Completions wire format (``POST /v1/chat/completions``) of the sandbox.

Shapes follow the API reference and the installed ``openai`` SDK's types
(``ChatCompletion``, ``CompletionUsage``): structured outputs through ``response_format``
``json_schema`` (strict schemas are checked the way the real API checks them, so a
provider that sends a non-strict schema fails here first), ``json_object``, plain text,
and a forced function call through ``tools`` + ``tool_choice``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from enrich.httpserver import Response
from enrich.sandbox.llm_images import SeenImage, openai_image
from enrich.sandbox.llm_limits import LimitState, go_duration
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

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
CACHE_TTL = 600.0  # OpenAI keeps prefixes for 5 to 10 minutes of inactivity


def parse(raw: Any) -> Ask:
    body = require_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter")
    if body.get("stream"):
        raise BadRequest("The enrich sandbox does not stream; call with stream=false.", "stream")
    messages = body.get("messages")
    if messages is None:
        raise BadRequest("Missing required parameter: 'messages'.", "messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("[] is too short - 'messages'", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            role = message.get("role") if isinstance(message, dict) else message
            raise BadRequest(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.", f"messages[{index}].role")
    system = "\n".join(text_of_content(m.get("content")) for m in messages
                       if m["role"] in ("system", "developer"))
    user = "\n".join(text_of_content(m.get("content")) for m in messages if m["role"] == "user")
    ask = Ask(route="openai", model=model, system=system, user=user, prompt_tokens=0)
    head: Any = None
    response_format = body.get("response_format")
    if response_format is not None:
        head = _read_response_format(response_format, ask, messages)
    tools = body.get("tools")
    tool_choice = body.get("tool_choice")
    if tools is not None:
        head = [head, tools] if head is not None else tools
        _read_tool_choice(tools, tool_choice, ask)
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BadRequest(f"Invalid '{name}': integer below minimum value. Expected a "
                                 f"value >= 1, but got {value} instead.", name)
            ask.max_tokens = value
            break
    pieces: list[tuple[Any, bool, float]] = []
    if head is not None:
        pieces.append((head, False, CACHE_TTL))
    last = len(messages) - 1
    for index, message in enumerate(messages):
        text = text_of_content(message.get("content"))
        # Automatic prefix caching: every message boundary before the last turn.
        pieces.append(({"role": message["role"], "content": text}, index < last, CACHE_TTL))
    ask.segments = segments_of(model, pieces)
    ask.images = _images(messages)
    ask.prompt_tokens = sum(s.tokens for s in ask.segments) + sum(i.tokens for i in ask.images)
    return ask


def _images(messages: list[dict[str, Any]]) -> list[SeenImage]:
    """The ``image_url`` parts of the user turns, each checked (see ``llm_images``)."""
    found: list[SeenImage] = []
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for number, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            where = f"messages[{index}].content[{number}]"
            if kind not in ("text", "image_url"):
                raise BadRequest(f"Invalid value: '{kind}'. Supported values are: 'text', "
                                 "'image_url', 'input_audio', 'refusal', and 'file'.",
                                 f"{where}.type", "invalid_value")
            if kind == "image_url":
                if message["role"] != "user":
                    raise BadRequest(f"Image URLs are only allowed for messages with role "
                                     f"'user', but this message with role '{message['role']}'"
                                     " contains an image URL.", where, "invalid_value")
                found.append(openai_image(part, where))
    return found


def _read_response_format(value: Any, ask: Ask, messages: list[dict[str, Any]]) -> Any:
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_object",
                                                                "json_schema"):
        kind = value.get("type") if isinstance(value, dict) else value
        raise BadRequest(f"Invalid value: '{kind}'. Supported values are: 'json_object', "
                         "'json_schema', and 'text'.", "response_format.type")
    if value["type"] == "json_object":
        everything = " ".join(text_of_content(m.get("content")) for m in messages).lower()
        if "json" not in everything:
            raise BadRequest("'messages' must contain the word 'json' in some form, to use "
                             "'response_format' of type 'json_object'.", "messages")
        ask.mode = "json_object"
        return value
    if value["type"] == "text":
        return value
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise BadRequest("Missing required parameter: 'response_format.json_schema.name'.",
                         "response_format.json_schema.name")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise BadRequest("Missing required parameter: 'response_format.json_schema.schema'.",
                         "response_format.json_schema.schema")
    if spec.get("strict"):
        problem = strict_schema_problem(schema)
        if problem:
            raise BadRequest(f"Invalid schema for response_format '{spec['name']}': {problem}",
                             "response_format")
    ask.mode = "json_schema"
    ask.schema = schema
    return value


def _read_tool_choice(tools: Any, choice: Any, ask: Ask) -> None:
    if not isinstance(tools, list):
        raise BadRequest("Invalid type for 'tools': expected an array.", "tools")
    if not (isinstance(choice, dict) and choice.get("type") == "function"):
        return  # "auto"/"none"/"required": the sandbox answers in text
    name = (choice.get("function") or {}).get("name")
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name") == name:
            parameters = function.get("parameters") or {"type": "object", "properties": {}}
            if function.get("strict"):
                problem = strict_schema_problem(parameters)
                if problem:
                    raise BadRequest(f"Invalid schema for function '{name}': {problem}",
                                     "tools")
            ask.mode = "tool"
            ask.tool_name = name
            ask.schema = parameters
            return
    raise BadRequest(f"Invalid value for 'tool_choice': no function named '{name}' was "
                     "specified in the 'tools' parameter.", "tool_choice")


def strict_schema_problem(schema: dict[str, Any]) -> str | None:
    """The first rule of strict structured outputs the schema breaks, worded as OpenAI does."""

    def walk(node: Any, context: tuple[str, ...]) -> str | None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                found = walk(item, (*context, str(index)))
                if found:
                    return found
            return None
        if not isinstance(node, dict):
            return None
        kinds = node.get("type")
        is_object = kinds == "object" or (isinstance(kinds, list) and "object" in kinds) or (
            "properties" in node and kinds is None)
        where = f"In context=({', '.join(repr(c) for c in context)})"
        if is_object:
            if node.get("additionalProperties") is not False:
                return (f"{where}, 'additionalProperties' is required to be supplied and to "
                        "be false.")
            properties = node.get("properties") or {}
            missing = [k for k in properties if k not in (node.get("required") or [])]
            if missing:
                return (f"{where}, 'required' is required to be supplied and to be an array "
                        f"including every key in properties. Missing '{missing[0]}'.")
        for key in ("properties", "$defs", "definitions"):
            children = node.get(key)
            if isinstance(children, dict):
                for name, child in children.items():
                    found = walk(child, (*context, key, name))
                    if found:
                        return found
        for key in ("items", "anyOf", "allOf", "oneOf"):
            if key in node:
                found = walk(node[key], (*context, key))
                if found:
                    return found
        return None

    return walk(schema, ())


def success(ask: Ask, answer: Answer, usage: Usage, request_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None,
                               "annotations": []}
    finish = "length" if answer.finish == "length" else "stop"
    if answer.refusal is not None:
        message["content"] = None
        message["refusal"] = answer.refusal
    elif answer.tool_input is not None:
        message["content"] = None
        message["tool_calls"] = [{
            "id": f"call_{request_id[:24]}", "type": "function",
            "function": {"name": ask.tool_name,
                         "arguments": json.dumps(answer.tool_input, ensure_ascii=False)},
        }]
        finish = "tool_calls" if answer.finish != "length" else "length"
    return {
        "id": f"chatcmpl-{request_id[:29]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ask.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.prompt_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_enrich_sandbox",
    }


def error(status: int, message: str, kind: str, code: str | None = None,
          param: str | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return Response.json(body, status, headers)


def limit_headers(state: LimitState | None) -> list[tuple[str, str]]:
    """``x-ratelimit-limit-requests`` and kin; resets as Go durations ("6m0s")."""
    return rate_limit_headers(state, lambda kind, part: f"x-ratelimit-{part}-{kind}", go_duration)

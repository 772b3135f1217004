"""Token counts before sending: for ``estimate``, the budget cap and TPM limiting.

tiktoken would be exact for OpenAI models, but it downloads its encodings on first use and
enrich must run where there is no network but the provider's. So this is an approximation,
tuned for product copy and the prompts that carry it:

* about 4 characters per token for English prose (OpenAI's and Anthropic's own rule of thumb),
* but never fewer than 4 tokens per 3 words (short words, spaces and punctuation each cost),
* one token per digit group and per punctuation run the BPE splits off (sizes, SKUs,
  "12.5 x 30 cm" cost more than their length suggests),
* non-ASCII characters (accents, CJK, emoji) cost about one token each.

docs/providers.md states how far this typically lands from the provider's own count. The
provider's usage, not this estimate, is what is billed and recorded.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_WORD = re.compile(r"[A-Za-z]+")
_DIGITS = re.compile(r"\d+")
_PUNCT = re.compile(r"[^\w\s]+")

#: Per message framing (role markers, separators) in both chat formats.
MESSAGE_OVERHEAD = 4
#: Per request framing (the reply primer, the response_format / tool wrapper).
REQUEST_OVERHEAD = 12


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text`` (0 for an empty string)."""
    if not text:
        return 0
    ascii_text = text.encode("ascii", "ignore").decode("ascii")
    non_ascii = len(text) - len(ascii_text)
    words = len(_WORD.findall(ascii_text))
    digit_groups = len(_DIGITS.findall(ascii_text))
    punct_runs = len(_PUNCT.findall(ascii_text))
    by_chars = len(ascii_text) / 4.0
    by_words = words * 4.0 / 3.0 + digit_groups + punct_runs * 0.5
    return max(1, math.ceil(max(by_chars, by_words) + non_ascii))


def estimate_prompt_tokens(system: str, user: str, schema: dict[str, Any] | None = None) -> int:
    """Input tokens of one request: both messages, their framing and the output schema."""
    total = estimate_tokens(system) + estimate_tokens(user) + 2 * MESSAGE_OVERHEAD
    if schema is not None:
        total += estimate_tokens(json.dumps(schema, separators=(",", ":")))
    return total + REQUEST_OVERHEAD


def estimate_output_tokens(schema: dict[str, Any], max_output_tokens: int) -> int:
    """Expected output tokens for a JSON answer to ``schema``, capped at the request's max.

    Each string field counts its ``maxLength`` (or 600 characters when unbounded, the size of a
    product description) at 4 characters per token, plus the JSON keys and quotes.
    """
    props = schema.get("properties", {})
    chars = 2
    for name, prop in props.items():
        chars += len(name) + 6
        limit = prop.get("maxLength")
        if limit is None:
            for option in prop.get("anyOf", []):
                limit = option.get("maxLength", limit)
        kind = prop.get("type")
        if kind in ("integer", "number", "boolean"):
            chars += 8
        else:
            chars += int(limit) if limit is not None else 600
    return min(max_output_tokens, max(1, math.ceil(chars / 4.0)))

"""Token counts before sending: for ``estimate``, the budget cap and TPM limiting.

tiktoken would be exact for OpenAI models, but it downloads its encodings on first use and
enrich must run where there is no network but the provider's. So this approximates how a
byte-pair tokenizer (cl100k / o200k) splits text, which is closer than "4 characters per
token" for the prose and JSON enrich sends:

* a common English word is one token, whatever its length; a very long one (over 10
  letters) costs one more token per 6 further letters,
* digits go in groups of up to three ("2024" is two tokens),
* a run of punctuation is one token (``","`` and ``{"`` in JSON, the ``'`` of "Let's"),
* a line break is one token, other whitespace is absorbed into the next word,
* every non-ASCII character (accents, CJK, emoji) costs about one token.

docs/providers.md gives the measured error on published token counts. The provider's usage,
not this estimate, is what is billed and recorded.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_WORD = re.compile(r"[A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")
_PUNCT = re.compile(r"[^\w\s]+", re.ASCII)
_NEWLINES = re.compile(r"\n+")

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
    words = sum(1 + max(0, len(w) - 10) // 6 for w in _WORD.findall(ascii_text))
    digits = sum(math.ceil(len(d) / 3) for d in _DIGITS.findall(ascii_text))
    punct = len(_PUNCT.findall(ascii_text))
    lines = len(_NEWLINES.findall(ascii_text))
    return max(1, words + digits + punct + lines + non_ascii)


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

"""How each service counts its per-minute limits, and where enrich starts before it knows.

The services differ in what a request costs against a tokens-per-minute limit, so pacing by
one formula either wastes the limit or runs into 429s:

* **OpenAI** charges the prompt (estimated from its characters) *plus the request's
  ``max_tokens``* when the request arrives, whatever the answer turns out to use. An
  oversized ``max_tokens`` is paid for in throughput, which is why the worker sizes it.
* **Anthropic** counts input (ITPM) and output (OTPM) apart. ITPM takes the prompt tokens
  not read from the prompt cache (cache reads do not count for current models); OTPM takes
  the tokens actually produced, so ``max_tokens`` costs nothing up front.
* **Gemini** counts requests (RPM) and input tokens (TPM) per model; it sends no
  rate-limit headers, so its starting figures are the lowest paid tier's, per model.

The starting figures are the lowest paid tier of each service (OpenAI tier 1 for its small
models, Anthropic tier 1 for Haiku, Gemini tier 1): with ``[llm] max_rpm`` / ``max_tpm``
unset the worker starts there and moves to whatever the response headers say the key's
limits are. A figure set in the config is kept as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LimitModel:
    """One service's way of counting, and its starting (conservative) limits."""

    rpm: int
    tpm: int  # TPM, or Anthropic's ITPM
    otpm: int | None = None  # Anthropic's output tokens per minute; None = not counted apart
    #: The request's ``max_tokens`` is charged when it arrives (OpenAI).
    output_at_request: bool = True
    #: Prompt tokens read from the cache are not charged (Anthropic ITPM).
    cache_reads_free: bool = False

    def request_tokens(self, prompt_chars: int, cached_chars: int,
                       max_output_tokens: int) -> int:
        """What one request takes from the TPM (ITPM) bucket when it is sent.

        Prompt tokens are counted as the services' limiters count them, one per four
        characters (they do not tokenize), ``cached_chars`` of them free when cache reads
        are, plus ``max_output_tokens`` where the output is charged up front.
        """
        chars = prompt_chars - (cached_chars if self.cache_reads_free else 0)
        tokens = math.ceil(max(0, chars) / 4)
        return tokens + (max_output_tokens if self.output_at_request else 0)


#: OpenAI tier 1 (gpt-4o-mini / gpt-4.1-mini): 500 RPM, 200,000 TPM.
OPENAI = LimitModel(rpm=500, tpm=200_000)
#: Anthropic tier 1 (Claude Haiku): 50 RPM, 50,000 ITPM, 10,000 OTPM.
ANTHROPIC = LimitModel(rpm=50, tpm=50_000, otpm=10_000, output_at_request=False,
                       cache_reads_free=True)
#: Gemini tier 1 by model family (input TPM); the most restrictive one for an unknown model.
GEMINI = {
    "gemini-2.5-pro": LimitModel(rpm=150, tpm=2_000_000, output_at_request=False),
    "gemini-2.5-flash-lite": LimitModel(rpm=4_000, tpm=4_000_000, output_at_request=False),
    "gemini-2.5-flash": LimitModel(rpm=1_000, tpm=1_000_000, output_at_request=False),
    "gemini-2.0-flash-lite": LimitModel(rpm=4_000, tpm=4_000_000, output_at_request=False),
    "gemini-2.0-flash": LimitModel(rpm=2_000, tpm=4_000_000, output_at_request=False),
}
GEMINI_DEFAULT = LimitModel(rpm=150, tpm=1_000_000, output_at_request=False)


def gemini_limits(model: str) -> LimitModel:
    """The tier-1 figures of ``model``'s family (longest matching prefix)."""
    for prefix in sorted(GEMINI, key=len, reverse=True):
        if model.startswith(prefix):
            return GEMINI[prefix]
    return GEMINI_DEFAULT

"""Page images for models that read them: which models do, what an image costs, the limits.

A scanned invoice with no text layer (and no usable OCR) can still be read by a model that
takes images (``[invoices] vision = true``). This module is what the three services' image
input has in common and where they differ, kept apart from the providers' request code so
those only add the parts in their own wire format:

- which models take images: a small table per provider, because sending an image to a
  text-only model is a 400 that would kill every job of the run one by one; an unlisted
  model (a local vision model behind an OpenAI-compatible ``llm.base_url``) is refused with
  the setting that overrides the table named (``[invoices] model_takes_images``);
- the limits every page image is rendered under, the smallest of the three services'
  (Anthropic: 5 MB and 8000 px per image, scaled down past 1568 px or ~1.15 megapixels;
  OpenAI: 50 MB per request; Gemini: 20 MB per request with inline data);
- the documented token formulas, so ``enrich estimate`` and the worker's budget count an
  image before it is sent: OpenAI's 512 px tiles (or 32 px patches for the mini/nano
  models), Anthropic's width × height / 750, Gemini's 258 tokens per 768 px tile.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass

#: Anthropic rejects an image over 5 MB (the smallest per-image limit of the three).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: Anthropic rejects an image over 8000 px on either side.
MAX_IMAGE_PX = 8000
#: Gemini's inline data: the whole request under 20 MB (OpenAI 50 MB, Anthropic 32 MB).
MAX_REQUEST_IMAGE_BYTES = 20_000_000
#: Anthropic scales an image down past this long edge or pixel count (no gain, more latency).
ANTHROPIC_LONG_EDGE = 1568
ANTHROPIC_MAX_PIXELS = 1_150_000
MEDIA_TYPES = ("image/png", "image/jpeg")


@dataclass(frozen=True)
class PageImage:
    """One rendered page as sent: never stored (the ledger keeps the PDF's path and hash)."""

    page: int  # 1-based
    media_type: str  # image/png or image/jpeg
    data: bytes
    width: int
    height: int

    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.b64()}"


# -- which models take images -----------------------------------------------------------

_TAKES_IMAGES: dict[str, re.Pattern[str]] = {
    # gpt-4o, gpt-4.1, gpt-4.5, gpt-5 families and the o-series that read images.
    "openai": re.compile(r"^(chatgpt-4o|gpt-4o|gpt-4\.1|gpt-4\.5|gpt-4-turbo|gpt-5"
                         r"|o1(?!-mini)|o3(?!-mini)|o4-mini)"),
    # Claude 3.5 and later: claude-3-5-*, claude-3-7-*, claude-{opus,sonnet,haiku}-4+.
    "anthropic": re.compile(r"^claude-(3-5|3-7|(opus|sonnet|haiku)-[4-9]|[4-9])"),
    # Gemini 1.5 and 2.x onwards are multimodal.
    "gemini": re.compile(r"^(models/)?gemini-(1\.5|[2-9])"),
}


def image_support(provider: str, model: str, *, declared: bool = False) -> str | None:
    """None when ``model`` takes images; otherwise why not, as one line naming the setting.

    ``declared`` is ``[invoices] model_takes_images``: the user's word for a model the table
    does not list. The offline provider reads no images whatever is declared.
    """
    if provider == "offline":
        return ("llm.provider = offline reads no images (it extracts from text only): set "
                "llm.provider and llm.model to a model that takes images, or install "
                "tesseract-ocr and keep [invoices] ocr = true")
    pattern = _TAKES_IMAGES.get(provider)
    name = model.lower().rsplit("/", 1)[-1] if provider != "gemini" else model.lower()
    if declared or (pattern is not None and pattern.match(name)):
        return None
    return (f"llm.model = {model!r} ({provider}) is not in enrich's list of models that take "
            "images: choose one that does (gpt-4o, gpt-4.1, gpt-5, claude 3.5 or later, "
            "gemini 2 or later), or set [invoices] model_takes_images = true if it reads "
            "images (a local vision model behind llm.base_url)")


# -- rendering size ---------------------------------------------------------------------

def render_scale(width_pt: float, height_pt: float, max_px: int) -> float:
    """The scale (pixels per PDF point) that keeps a page within ``max_px`` on its long
    edge and within Anthropic's pixel budget scaled to that edge, so no service resizes
    it (1568 px → 1.15 MP: an A4 page at about 109 dpi, 902 × 1276 px)."""
    long_edge = max(width_pt, height_pt, 1.0)
    pixels = ANTHROPIC_MAX_PIXELS * (max_px / ANTHROPIC_LONG_EDGE) ** 2
    scale = min(max_px / long_edge, math.sqrt(pixels / max(width_pt * height_pt, 1.0)),
                (MAX_IMAGE_PX - 1) / long_edge)
    for _ in range(50):  # PDFium rounds each side up: step back until the result fits
        w, h = pixel_size(width_pt, height_pt, scale)
        if max(w, h) <= max_px and w * h <= pixels:
            break
        scale *= 0.999
    return scale


def pixel_size(width_pt: float, height_pt: float, scale: float) -> tuple[int, int]:
    """The size PDFium renders a page at ``scale`` (it rounds each side up)."""
    return max(1, math.ceil(width_pt * scale)), max(1, math.ceil(height_pt * scale))


# -- tokens ------------------------------------------------------------------------------

#: OpenAI tile models: (base tokens, tokens per 512 px tile) at detail "high".
_OPENAI_TILES = (("gpt-4o-mini", 2833, 5667), ("gpt-5-chat", 70, 140), ("gpt-5", 70, 140),
                 ("o1", 75, 150), ("o3", 75, 150), ("", 85, 170))
#: OpenAI patch models: 32 px patches (at most 1536) times a multiplier.
_OPENAI_PATCHES = (("gpt-5-mini", 1.62), ("gpt-5-nano", 2.46), ("gpt-4.1-mini", 1.62),
                   ("gpt-4.1-nano", 2.46), ("o4-mini", 1.72))


def _openai_tiles(width: int, height: int, base: int, per_tile: int) -> int:
    """Fit within 2048 × 2048, shortest side to 768, then 512 px tiles."""
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return base + per_tile * math.ceil(w / 512) * math.ceil(h / 512)


def _openai_patches(width: int, height: int, multiplier: float) -> int:
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches > 1536:
        shrink = math.sqrt(32 * 32 * 1536 / (width * height))
        shrink *= min(math.floor(width * shrink / 32) / (width * shrink / 32),
                      math.floor(height * shrink / 32) / (height * shrink / 32))
        patches = min(1536, math.ceil(int(width * shrink) / 32)
                      * math.ceil(int(height * shrink) / 32))
    return math.ceil(patches * multiplier)


def image_tokens(provider: str, model: str, width: int, height: int) -> int:
    """Input tokens of one image as the service's documentation counts them."""
    name = model.lower().rsplit("/", 1)[-1]
    if provider == "openai":
        for prefix, multiplier in _OPENAI_PATCHES:
            if name.startswith(prefix):
                return _openai_patches(width, height, multiplier)
        for prefix, base, per_tile in _OPENAI_TILES:
            if name.startswith(prefix):
                return _openai_tiles(width, height, base, per_tile)
    if provider == "anthropic":
        w, h = float(width), float(height)
        shrink = min(1.0, ANTHROPIC_LONG_EDGE / max(w, h),
                     math.sqrt(ANTHROPIC_MAX_PIXELS / (w * h)))
        return math.ceil(w * shrink * h * shrink / 750)
    if provider == "gemini":
        if width <= 384 and height <= 384:
            return 258
        return 258 * math.ceil(width / 768) * math.ceil(height / 768)
    return 0  # offline (or a provider that reads no images): nothing is sent


def images_tokens(provider: str, model: str, sizes: list[tuple[int, int]]) -> int:
    return sum(image_tokens(provider, model, w, h) for w, h in sizes)


# -- wire formats ------------------------------------------------------------------------

def openai_content(text: str, images: tuple[PageImage, ...]) -> list[dict[str, object]]:
    """Chat Completions content parts: the text, then each page as a data URL."""
    return [{"type": "text", "text": text},
            *({"type": "image_url", "image_url": {"url": image.data_url(), "detail": "high"}}
              for image in images)]


def anthropic_content(text: str, images: tuple[PageImage, ...]) -> list[dict[str, object]]:
    """Messages content blocks: the pages first (as Anthropic recommends), then the text."""
    return [*({"type": "image", "source": {"type": "base64", "media_type": image.media_type,
                                           "data": image.b64()}} for image in images),
            {"type": "text", "text": text}]


def gemini_parts(text: str, images: tuple[PageImage, ...]) -> list[dict[str, object]]:
    """generateContent parts: the text, then each page as ``inline_data`` (the SDK writes
    the bytes as base64)."""
    return [{"text": text},
            *({"inline_data": {"mime_type": image.media_type, "data": image.data}}
              for image in images)]

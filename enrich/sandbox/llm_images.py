"""Image inputs of the sandbox LLM: checked as the real APIs check them, counted, never seen.

Each wire format carries a page image its own way (OpenAI an ``image_url`` part with a
``data:`` URL, Anthropic an ``image`` block with a base64 ``source``, Gemini an
``inlineData`` part); each format module finds them and hands the media type and base64
text here. An image must be real: strict base64, a PNG or JPEG by its magic bytes (and the
type it claims, where the API checks that), within the service's size limits, decodable by
Pillow. Anything else is the service's 400, worded as it words it, so a client that sends a
broken image fails here as it would in production.

An accepted image costs what the service's documentation says (OpenAI's gpt-4o tiles for
every OpenAI model, Anthropic's width × height / 750 after its resize, Gemini's 258 tokens
per 768 px tile), written here from the documentation rather than imported from the
providers, so that a test comparing enrich's estimate with the sandbox's usage compares two
readings of the documents, not one function with itself.

The sandbox model cannot read pixels. It records what it received (``SeenImage``: type,
size, hash) for tests to assert on, and answers from the text it was sent: for a scan that
is an empty fence, so its invoice has every field null. That is the honest answer of a model
that sees nothing; the point of the sandbox is the plumbing, not the reading.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
from dataclasses import dataclass

from enrich.sandbox.llm_wire import BadRequest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
#: Per-image limits (bytes of the decoded image, longest side in pixels) by route.
MAX_BYTES = {"openai": 20 * 1024 * 1024, "anthropic": 5 * 1024 * 1024,
             "gemini": 20 * 1000 * 1000}
MAX_SIDE = {"openai": 16_384, "anthropic": 8000, "gemini": 16_384}
ANTHROPIC_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
GEMINI_ERROR = ("Unable to process input image. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting")


@dataclass(frozen=True)
class SeenImage:
    """One image a request carried, as the sandbox received it."""

    media_type: str  # what the request said
    kind: str  # what the bytes are: image/png or image/jpeg
    width: int
    height: int
    size: int  # decoded bytes
    sha256: str
    tokens: int


def _sniff(data: bytes) -> str | None:
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    return None


def _refuse(route: str, message: str, where: str, code: str | None) -> BadRequest:
    if route == "gemini":
        return BadRequest(GEMINI_ERROR)
    return BadRequest(message, where, code)


def decode(route: str, media_type: str, data: object, where: str) -> SeenImage:
    """The image in ``data`` (base64 text), or the route's BadRequest."""
    if not isinstance(data, str) or not data:
        raise _refuse(route, f"{where}: Field required" if route == "anthropic" else
                      "You uploaded an unsupported image. Please make sure your image is "
                      "valid.", where, "invalid_image_format")
    if route == "gemini":  # proto3 JSON takes bytes in either alphabet; the SDK sends URL-safe
        data = data.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(route, f"{where}: The image data is not valid base64." if route ==
                      "anthropic" else "Invalid base64 image_url.", where,
                      "invalid_image_url") from None
    if route == "anthropic" and len(data) > MAX_BYTES["anthropic"]:
        raise _refuse(route, f"{where}: image exceeds 5 MB maximum: {len(data)} bytes > "
                      f"{MAX_BYTES['anthropic']} bytes", where, None)
    if len(raw) > MAX_BYTES[route]:
        raise _refuse(route, f"Image size {len(raw)} bytes exceeds the maximum of "
                      f"{MAX_BYTES[route]} bytes.", where, "image_too_large")
    kind = _sniff(raw)
    if kind is None:
        raise _refuse(route, f"{where}: Could not process image" if route == "anthropic" else
                      "You uploaded an unsupported image. Please make sure your image is "
                      "valid.", where, "invalid_image_format")
    if route == "anthropic" and kind != media_type:
        raise _refuse(route, f"{where}: Image does not match the provided media type "
                      f"{media_type}", where, None)
    try:
        from PIL import Image, UnidentifiedImageError

        with Image.open(io.BytesIO(raw)) as image:
            width, height = image.size
            image.load()  # a truncated body fails here, as it fails the real decoder
    except (OSError, UnidentifiedImageError, ValueError):
        raise _refuse(route, f"{where}: Could not process image" if route == "anthropic" else
                      "You uploaded an unsupported image. Please make sure your image is "
                      "valid.", where, "invalid_image_format") from None
    if max(width, height) > MAX_SIDE[route]:
        raise _refuse(route, f"{where}: At least one of the image dimensions exceed max "
                      f"allowed size: {MAX_SIDE[route]} pixels", where, "image_too_large")
    return SeenImage(media_type, kind, width, height, len(raw),
                     hashlib.sha256(raw).hexdigest(), tokens(route, width, height))


def tokens(route: str, width: int, height: int) -> int:
    """Input tokens of one image as each service documents them."""
    if route == "openai":  # detail high: within 2048², shortest side 768, 512 px tiles
        w, h = float(width), float(height)
        if max(w, h) > 2048:
            w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
        if min(w, h) > 768:
            w, h = w * 768 / min(w, h), h * 768 / min(w, h)
        return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)
    if route == "anthropic":  # resized to 1568 px long edge and ~1.15 MP, then w*h/750
        scale = min(1.0, 1568 / max(width, height), math.sqrt(1_150_000 / (width * height)))
        return math.ceil(width * scale * height * scale / 750)
    if width <= 384 and height <= 384:  # gemini
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def openai_image(part: dict[str, object], where: str) -> SeenImage:
    """An ``image_url`` part: only ``data:`` URLs (the sandbox fetches nothing)."""
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else None
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise BadRequest(f"Invalid '{where}.image_url.url'. Expected a base64-encoded data URL "
                         "with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVz"
                         "IGhlcmU='), but got a value that is not one (the enrich sandbox "
                         "takes data URLs only).", f"{where}.image_url.url", "invalid_value")
    head, _, data = url.partition(";base64,")
    return decode("openai", head[len("data:"):], data, where)


def anthropic_image(block: dict[str, object], where: str) -> SeenImage:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise BadRequest(f"{where}.source: the enrich sandbox takes base64 image sources "
                         "only", f"{where}.source")
    media_type = source.get("media_type")
    if media_type not in ANTHROPIC_TYPES:
        raise BadRequest(f"{where}.source.base64.media_type: Input should be 'image/jpeg', "
                         "'image/png', 'image/gif' or 'image/webp'", f"{where}.source")
    return decode("anthropic", str(media_type), source.get("data"),
                  f"{where}.source.base64.data")


def gemini_image(part: dict[str, object], where: str) -> SeenImage:
    blob = part.get("inlineData") or part.get("inline_data")
    if not isinstance(blob, dict):
        raise BadRequest(GEMINI_ERROR)
    media_type = blob.get("mimeType") or blob.get("mime_type")
    if not isinstance(media_type, str) or not media_type.startswith("image/"):
        raise BadRequest(f"* GenerateContentRequest.{where}.inline_data.mime_type: "
                         "Unsupported MIME type: " + str(media_type) + "\n")
    return decode("gemini", media_type, blob.get("data"), where)

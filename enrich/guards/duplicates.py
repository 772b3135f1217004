"""Near-duplicate copy across a catalog's drafts: MinHash signatures in LSH buckets.

Each text becomes the set of its 3-word shingles; a one-permutation MinHash (64 bins, one
hash per shingle, empty bins filled by rotation) estimates the Jaccard similarity of two
sets. Signatures are cut into 16 bands of 4 bins: two texts that share any band are
candidates (a pair at Jaccard 0.8 shares one with probability > 0.999, a pair at 0.3 with
about 0.12), and a candidate is flagged when its estimated similarity reaches the
threshold. A check costs O(text length) plus a few indexed lookups, whatever the size of
the catalog.

The index lives in a private temporary SQLite database (``enrich.ledger.bands``, deleted
when closed), so a 500,000-product catalog costs disk pages, not gigabytes of Python dicts.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from enrich.guards.text import plain_text
from enrich.ledger import Ledger
from enrich.ledger.bands import BandStore
from enrich.ledger.drafts import live_product_fields

BINS = 64
BANDS = 16
ROWS = BINS // BANDS
SHINGLE = 3
_EMPTY = 0xFFFF_FFFF
_WORD_RE = re.compile(r"\w+")
_CANDIDATES_PER_BAND = 8
#: Fields compared across products (titles and SEO lines are short and often alike).
DUPLICATE_FIELDS = ("description", "short_description")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(plain_text(text).lower())


def shingles(text: str) -> set[str]:
    return _shingles(_words(text))


def _shingles(words: list[str]) -> set[str]:
    if len(words) < SHINGLE:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def signature(text: str) -> array[int] | None:
    """64 MinHash values (16 bits each) of ``text``'s shingles; None for empty text."""
    return _signature(_words(text))


def _signature(words: list[str]) -> array[int] | None:
    grams = _shingles(words)
    if not grams:
        return None
    crc = zlib.crc32
    hashes = sorted([(crc(g.encode()) * 0x9E3779B1) & 0xFFFF_FFFF for g in grams],
                    reverse=True)
    # Descending order: the last value written to a bin is its minimum.
    smallest = {h >> 26: h & 0x03FF_FFFF for h in hashes}
    mins = [smallest.get(b, _EMPTY) for b in range(BINS)]
    if _EMPTY in mins:
        mins = _densify(mins)
    return array("I", (v & 0xFFFF for v in mins))


def _densify(mins: list[int]) -> list[int]:
    """Fill empty bins (short texts) from the next filled bin to the right, circularly,
    offset by the distance: two texts agree on a filled-in bin exactly when they agree on
    the bin it borrowed from, which keeps the estimate unbiased (Shrivastava & Li, 2014)."""
    filled = [v != _EMPTY for v in mins]
    out = list(mins)
    nearest_value, distance = _EMPTY, 0
    # Two passes right to left: the second wraps around for bins after the last filled one.
    for i in range(2 * BINS - 1, -1, -1):
        j = i % BINS
        if filled[j]:
            nearest_value, distance = mins[j], 0
        else:
            distance += 1
            if i < BINS and nearest_value != _EMPTY:
                out[j] = (nearest_value + distance * 0x9E37) & 0x03FF_FFFF
    return out


def similarity(a: array[int], b: array[int]) -> float:
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / BINS


def _band_keys(sig: array[int]) -> list[int]:
    keys = []
    for band in range(BANDS):
        part = sig[band * ROWS:(band + 1) * ROWS]
        value = band
        for v in part:
            value = (value << 16) | v
        keys.append(value & 0x7FFF_FFFF_FFFF_FFFF)
    return keys


@dataclass(frozen=True)
class Match:
    """An earlier draft that the checked text nearly repeats."""

    job_id: int | None
    source_id: str
    field: str
    similarity: float


class DuplicateIndex:
    """Drafted copy of the catalog, to find near-duplicates of a new draft quickly.

    ``check`` never adds; call ``add`` once a draft is recorded (``check_draft`` leaves the
    index alone, so a reviewer's re-check of an edit does not count the edit twice).
    """

    def __init__(self, *, threshold: float = 0.8, min_words: int = 8) -> None:
        self.threshold = threshold
        self.min_words = min_words
        self._store = BandStore()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> DuplicateIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _eligible(self, text: str) -> array[int] | None:
        words = _words(text)
        return _signature(words) if len(words) >= self.min_words else None

    def add(self, job_id: int | None, source_id: str | int, text: str, *,
            field: str = "description") -> bool:
        """Remember a drafted text; False when it is too short to compare."""
        sig = self._eligible(text)
        if sig is None:
            return False
        self._insert([(job_id, str(source_id), field, sig)])
        return True

    def _insert(self, rows: list[tuple[int | None, str, str, array[int]]]) -> None:
        self._store.insert((job_id, source_id, field, sig.tobytes(), _band_keys(sig))
                           for job_id, source_id, field, sig in rows)

    @property
    def size(self) -> int:
        """How many texts the index holds."""
        return self._store.size

    def check(self, text: str, *, source_id: str | int | None = None) -> Match | None:
        """The most similar earlier draft of *another* product at or above the threshold."""
        sig = self._eligible(text)
        if sig is None or self.size == 0:
            return None
        own = None if source_id is None else str(source_id)
        best: Match | None = None
        rows = self._store.candidates(_band_keys(sig), not_source=own,
                                      limit=_CANDIDATES_PER_BAND * BANDS)
        for job_id, src, field, blob in rows:
            other = array("I")
            other.frombytes(blob)
            score = similarity(sig, other)
            if score >= self.threshold and (best is None or score > best.similarity):
                best = Match(job_id, src, field, score)
        return best

    @classmethod
    def from_ledger(cls, ledger: Ledger, *, threshold: float = 0.8, min_words: int = 8,
                    fields: Iterable[str] = DUPLICATE_FIELDS,
                    batch: int = 2000) -> DuplicateIndex:
        """An index of the copy in the ledger's live drafts (edits win over the original).

        Rejected and superseded drafts are left out: their text will never be published.
        """
        index = cls(threshold=threshold, min_words=min_words)
        wanted = tuple(fields)
        for chunk in live_product_fields(ledger, batch=batch):
            rows: list[tuple[int | None, str, str, array[int]]] = []
            for job_id, source_id, values in chunk:
                for name in wanted:
                    text = values.get(name)
                    if isinstance(text, str):
                        sig = index._eligible(text)
                        if sig is not None:
                            rows.append((job_id, source_id, name, sig))
            if rows:
                index._insert(rows)
        return index

"""Near-duplicate copy across a catalog's drafts: LSH on MinHash finds candidates, the exact
Jaccard similarity of their shingle sets decides.

Each text becomes the set of its 3-word shingles; a one-permutation MinHash (64 bins, one
hash per shingle, empty bins filled by rotation) is cut into 16 bands of 4 bins, and two
texts that share any band are candidates (a pair at Jaccard 0.8 shares one with probability
> 0.999, a pair at 0.3 with about 0.12). A candidate is flagged on the *exact* Jaccard of the
two shingle sets (32-bit shingle hashes, stored with the text), not the MinHash estimate:
64 bins estimate a short text's similarity within about ±0.15, which flagged short
descriptions "84 % the same" at a true 0.5 and missed pairs at 0.8-0.9 (bench/duplicates.py,
docs/guards.md). Short texts have their own threshold: a one-word change in a 12-word text
already moves its 3-shingle Jaccard to about 0.6.

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
#: Texts shorter than this many words are "short" and have their own threshold: there one
#: changed phrase already moves the 3-shingle Jaccard of the same copy to 0.55-0.8, so
#: 0.6 is where the fixture catalogs' short near-copies sit (bench/duplicates.py,
#: docs/guards.md "Near-duplicates: calibration").
SHORT_WORDS = 30
SHORT_THRESHOLD = 0.6
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


def shingle_hashes(words: list[str]) -> array[int]:
    """The text's shingles as sorted 32-bit hashes: what the exact Jaccard is computed on."""
    crc = zlib.crc32
    return array("I", sorted({crc(g.encode()) for g in _shingles(words)}))


def jaccard(a: array[int], b: array[int]) -> float:
    """Exact Jaccard similarity of two sorted shingle-hash arrays."""
    if not a or not b:
        return 0.0
    common = len(set(a).intersection(b))
    return common / (len(a) + len(b) - common)


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

    def __init__(self, *, threshold: float = 0.8, min_words: int = 8,
                 short_threshold: float = SHORT_THRESHOLD,
                 short_words: int = SHORT_WORDS) -> None:
        self.threshold = threshold
        self.min_words = min_words
        #: Texts under ``short_words`` words are flagged at ``short_threshold`` (docs/guards.md).
        self.short_threshold = short_threshold
        self.short_words = short_words
        self._store = BandStore()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> DuplicateIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _eligible(self, text: str) -> tuple[array[int], array[int], int] | None:
        """(MinHash signature, shingle hashes, word count), or None when too short."""
        words = _words(text)
        if len(words) < self.min_words:
            return None
        sig = _signature(words)
        return None if sig is None else (sig, shingle_hashes(words), len(words))

    def threshold_for(self, words: int) -> float:
        """The similarity that flags a text of ``words`` words (the shorter text of a pair)."""
        return self.short_threshold if words < self.short_words else self.threshold

    def add(self, job_id: int | None, source_id: str | int, text: str, *,
            field: str = "description") -> bool:
        """Remember a drafted text; False when it is too short to compare."""
        found = self._eligible(text)
        if found is None:
            return False
        self._insert([(job_id, str(source_id), field, found)])
        return True

    def _insert(self, rows: list[tuple[int | None, str, str,
                                       tuple[array[int], array[int], int]]]) -> None:
        # The stored blob is the word count then the sorted shingle hashes: the exact
        # Jaccard of a candidate needs them, the band keys need only the signature.
        self._store.insert(
            (job_id, source_id, field, array("I", [words]).tobytes() + grams.tobytes(),
             _band_keys(sig))
            for job_id, source_id, field, (sig, grams, words) in rows)

    @property
    def size(self) -> int:
        """How many texts the index holds."""
        return self._store.size

    def check(self, text: str, *, source_id: str | int | None = None) -> Match | None:
        """The most similar earlier draft of *another* product at or above the threshold."""
        found = self._eligible(text)
        if found is None or self.size == 0:
            return None
        sig, grams, words = found
        own = None if source_id is None else str(source_id)
        best: Match | None = None
        rows = self._store.candidates(_band_keys(sig), not_source=own,
                                      limit=_CANDIDATES_PER_BAND * BANDS)
        for job_id, src, field, blob in rows:
            stored = array("I")
            stored.frombytes(blob)
            score = jaccard(grams, stored[1:])
            if (score >= self.threshold_for(min(words, stored[0]))
                    and (best is None or score > best.similarity)):
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
            rows: list[tuple[int | None, str, str, tuple[array[int], array[int], int]]] = []
            for job_id, source_id, values in chunk:
                for name in wanted:
                    text = values.get(name)
                    if isinstance(text, str):
                        found = index._eligible(text)
                        if found is not None:
                            rows.append((job_id, source_id, name, found))
            if rows:
                index._insert(rows)
        return index

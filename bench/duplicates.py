"""Precision and recall of the near-duplicate guard against exact shingle Jaccard.

    uv run python bench/duplicates.py [THRESHOLD ...]

Texts: the fixture catalogs' own descriptions and short descriptions (WooCommerce, Magento
clothing and gear, Saleor) and the offline writer's drafts of every product, each distinct
text once. Truth: the exact Jaccard similarity of two texts' 3-word shingle sets. For every
pair that shares a shingle, the bench records whether the guard's LSH bands make it a
candidate, the MinHash estimate (what the guard flagged on before) and the exact value
(what it flags on now), and prints, per length class (short: under SHORT_WORDS words for
the shorter text of the pair) and threshold, the pairs at or above the threshold and the
precision and recall of both rules. Results are recorded in docs/guards.md.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from guard_helpers import (
    magento_configurable_products,
    magento_gear_products,
    saleor_products,
    woo_products,
)

from enrich.guards.duplicates import (
    SHORT_WORDS,
    _band_keys,
    _shingles,
    _signature,
    _words,
    similarity,
)
from enrich.prompts import output_model
from enrich.providers.offline import OfflineProvider

MIN_WORDS = 8


def corpus() -> dict[str, list[str]]:
    """Distinct texts per field: the catalogs' own copy and the offline writer's drafts."""
    products = woo_products() + magento_configurable_products() + magento_gear_products() + \
        saleor_products()
    schema = output_model(["description", "short_description"]).model_json_schema()
    writer = OfflineProvider()
    texts: dict[str, dict[str, None]] = defaultdict(dict)
    for product in products:
        drafted = writer.write(schema, product)
        for field in ("description", "short_description"):
            for text in (product.get(field), drafted[field]):
                if isinstance(text, str) and len(_words(text)) >= MIN_WORDS:
                    texts[field][text] = None
    return {field: list(found) for field, found in texts.items()}


def pairs(texts: list[str]) -> list[tuple[int, float, float, bool]]:
    """(shorter text's words, exact Jaccard, MinHash estimate, LSH candidate) for every
    pair of texts that shares at least one shingle."""
    words = [_words(t) for t in texts]
    grams = [_shingles(w) for w in words]
    sigs = [_signature(w) for w in words]
    bands = [set(_band_keys(s)) if s is not None else set() for s in sigs]
    holders: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(grams):
        for gram in g:
            holders[gram].append(i)
    out = []
    for i, g in enumerate(grams):
        common: dict[int, int] = defaultdict(int)
        for gram in g:
            for j in holders[gram]:
                if j > i:
                    common[j] += 1
        for j, shared in common.items():
            exact = shared / (len(g) + len(grams[j]) - shared)
            sig_i, sig_j = sigs[i], sigs[j]
            assert sig_i is not None and sig_j is not None
            out.append((min(len(words[i]), len(words[j])), exact, similarity(sig_i, sig_j),
                        bool(bands[i] & bands[j])))
    return out


def table(found: list[tuple[int, float, float, bool]], thresholds: list[float]) -> list[str]:
    rows = ["| length | threshold | pairs >= t (exact) | of them in [t, t+0.1) | "
            "MinHash estimate: precision | recall | missed in [t, t+0.1) | "
            "exact Jaccard of LSH candidates: precision | recall |",
            "|---|---|---|---|---|---|---|---|---|"]
    for label, keep in ((f"short (< {SHORT_WORDS} words)", lambda w: w < SHORT_WORDS),
                        (f"long (>= {SHORT_WORDS} words)", lambda w: w >= SHORT_WORDS)):
        chosen = [p for p in found if keep(p[0])]
        for t in thresholds:
            truth = [p for p in chosen if p[1] >= t]
            band = [p for p in truth if p[1] < t + 0.1]
            old = [p for p in chosen if p[3] and p[2] >= t]
            new = [p for p in chosen if p[3] and p[1] >= t]
            old_hit = sum(p[1] >= t for p in old)
            missed = sum(not (p[3] and p[2] >= t) for p in band)
            rows.append(
                f"| {label} | {t:.2f} | {len(truth):,} | {len(band):,} | "
                f"{_ratio(old_hit, len(old))} | {_ratio(old_hit, len(truth))} | "
                f"{missed:,} of {len(band):,} | {_ratio(len(new), len(new))} | "
                f"{_ratio(len(new), len(truth))} |")
    return rows


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole else "-"


def main() -> None:
    thresholds = [float(a) for a in sys.argv[1:]] or [0.5, 0.6, 0.7, 0.8, 0.9]
    started = time.perf_counter()
    texts = corpus()
    found: list[tuple[int, float, float, bool]] = []
    for field, chosen in texts.items():
        found += pairs(chosen)
        print(f"{field}: {len(chosen):,} distinct texts")
    print(f"{len(found):,} pairs sharing a shingle ({time.perf_counter() - started:.1f} s)\n")
    print("\n".join(table(found, thresholds)))


if __name__ == "__main__":
    main()

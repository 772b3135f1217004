"""Literal prefilters: skip a large case-insensitive regex on text it cannot match.

The injection guard's source regex is ~55 alternatives under ``IGNORECASE``; Python's ``re``
tries each of them at every position, so it costs ~1.5 µs per character, and sync runs it on
every text of every product (``enrich.guards.inputs``). Almost no product text holds an
instruction, and every alternative needs certain words to match ("ignore" and
"instructions"; "note", "to" and "assistant"...). This module reads those words out of the
patterns themselves (their parse tree, so they cannot drift apart from the patterns): for
each alternative, clauses that every match satisfies, each clause a set of lower-case
strings one of which the match contains. Where the pattern proves a word boundary (``\\b``,
a space or punctuation next to a letter) the string carries a marker there, so "ai" as a
word is not found inside "chair".

``Prefilter.regex(text)`` gives the regex to run on ``text``: None when no alternative can
match (the common case: one substring search), or one made of only the alternatives that
may, in their original order. An alternative left out matches nowhere in the text, and
alternation takes the first alternative that matches at a position, so the matches are
those of the whole regex: the same results, cheaper.

Exactness rests on how ``re`` folds case: a character matches a pattern letter when their
simple lower cases agree, which ``str.lower`` reproduces for every character except three
(``İ``, ``ı``, ``ſ``, which fold onto ASCII ``i`` and ``s``); a text holding one of those (or
a NUL, the boundary marker) is searched with the whole regex. Only ASCII pattern characters
become clause strings; syntax the reader does not know adds no clause, never a wrong one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from enrich.guards.text import ascii_apart

try:  # the stdlib's own regex parser (``sre_parse`` before 3.11)
    from re import _constants as _C  # type: ignore[attr-defined]
    from re import _parser as _P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a Python without it: no prefilter, same results
    _C = _P = None

#: Characters ``re`` folds onto an ASCII letter that ``str.lower`` does not lower to it, and
#: the marker itself: a text with one of them is searched with the whole regex.
_UNSAFE = ("\u0130", "\u0131", "\u017f", "\x00")
#: Where the text has a word boundary (exactly where the patterns' ``\b`` holds).
MARK = "\x00"
_BOUNDARY_RE = re.compile(r"\b")
#: Most strings one exact run may expand to ("a\\.?i\\.?" gives four).
_MAX_EXACT = 64

Clause = frozenset[str]


@dataclass(frozen=True)
class _Info:
    """What a piece of pattern tells about its matches: the exact strings it matches (when
    few and all known) and clauses every match of it satisfies."""

    exact: frozenset[str] | None
    clauses: tuple[Clause, ...]


_UNKNOWN = _Info(None, ())
_EMPTY = _Info(frozenset({""}), ())
#: Zero-width items after which a word character is at a word boundary (a line start, or
#: ``\b`` itself), and before which a word character ends at one.
_BOUNDED_BEFORE = frozenset({"AT_BEGINNING", "AT_BEGINNING_LINE", "AT_BEGINNING_STRING",
                             "AT_BOUNDARY"})
_BOUNDED_AFTER = frozenset({"AT_END", "AT_END_LINE", "AT_END_STRING", "AT_BOUNDARY"})
_NOT_WORD_CATEGORIES = frozenset({"CATEGORY_SPACE", "CATEGORY_NOT_WORD", "CATEGORY_LINEBREAK",
                                  "CATEGORY_UNI_SPACE", "CATEGORY_UNI_NOT_WORD",
                                  "CATEGORY_UNI_LINEBREAK"})


_REPEATS: tuple[Any, ...] = ()
if _C is not None:
    _REPEATS = tuple(x for x in (_C.MAX_REPEAT, _C.MIN_REPEAT,
                                 getattr(_C, "POSSESSIVE_REPEAT", None)) if x is not None)


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _char(code: int) -> str | None:
    ch = chr(code).lower()
    return ch if ch.isascii() and len(ch) == 1 and ch != MARK else None


def _punctuation(code: int) -> bool:
    """A non-word character without case: under ``IGNORECASE`` it matches only itself."""
    ch = chr(code)
    return not _word(ch) and ch.lower() == ch == ch.upper()


def _not_word_set(op: Any, av: Any) -> bool:
    """Every character ``op`` matches is a non-word character (one character, known)."""
    if op is _C.LITERAL:
        return _punctuation(av)
    if op is _C.IN:
        return bool(av) and all(
            (o is _C.LITERAL and _punctuation(a))
            or (o is _C.CATEGORY and str(a) in _NOT_WORD_CATEGORIES) for o, a in av)
    return False


def _starts_apart(items: Sequence[Any], then: bool) -> bool:
    """Whatever ``items`` match, followed by text with property ``then``, begins with a
    non-word character or a line end (so a word ending just before has a boundary).
    Unknown syntax gives False, which only means fewer markers."""
    if not items:
        return then
    (op, av), rest = items[0], list(items[1:])
    if op is _C.AT:
        return True if str(av) in _BOUNDED_AFTER else _starts_apart(rest, then)
    if op in (_C.ASSERT, _C.ASSERT_NOT):
        return _starts_apart(rest, then)
    if _not_word_set(op, av):
        return True
    if op is _C.SUBPATTERN:
        return _starts_apart([*av[-1].data, *rest], then)
    if op is _C.BRANCH:
        return all(_starts_apart([*b.data, *rest], then) for b in av[1])
    if op in _REPEATS:
        low, _high, item = av
        first = _starts_apart(item.data, False)  # an empty body gives False: sound
        return first if low >= 1 else first and _starts_apart(rest, then)
    return False


def _ends_apart(items: Sequence[Any], before: bool) -> bool:
    """After ``items`` (entered with property ``before``), the character just before is a
    non-word character, or the position is a line start. Unknown syntax gives False."""
    state = before
    for op, av in items:
        if op is _C.AT:
            state = True if str(av) in _BOUNDED_BEFORE else state
        elif op in (_C.ASSERT, _C.ASSERT_NOT):
            continue
        elif _not_word_set(op, av):
            state = True
        elif op is _C.SUBPATTERN:
            state = _ends_apart(av[-1].data, state)
        elif op is _C.BRANCH:
            state = all(_ends_apart(b.data, state) for b in av[1])
        elif op in _REPEATS:
            low, _high, item = av
            once = _ends_apart(item.data, False)  # an empty body gives False: sound
            state = once if low >= 1 else once and state
        else:
            state = False
    return state


def _marked(s: str) -> str:
    """``s`` with exactly one marker wherever a word and a non-word character meet, and the
    edge markers it already had."""
    core = s.strip(MARK)
    if not core:
        return s[:1]
    out = [MARK] if s.startswith(MARK) else []
    prev = ""
    for ch in core:
        if ch == MARK:
            continue
        if prev and _word(prev) != _word(ch):
            out.append(MARK)
        out.append(ch)
        prev = ch
    if s.endswith(MARK):
        out.append(MARK)
    return "".join(out)


def _in_context(strings: set[str] | frozenset[str], left: bool, right: bool) -> Clause:
    """``strings`` with a marker before a leading word character when the text before is
    apart (``left``), and after a trailing one when the text after is (``right``)."""
    return frozenset(_marked((MARK if left and s and _word(s[0]) else "") + s
                             + (MARK if right and s and _word(s[-1]) else "")) for s in strings)


def _useful(clause: frozenset[str] | None) -> bool:
    return bool(clause) and all(s.strip(MARK) for s in clause)  # type: ignore[union-attr]


#: Words too common in product copy to be worth testing first (a guess at rarity: it only
#: orders the clauses, every clause is still required). The second line is the catalog's
#: own vocabulary: 18 of the 57 fixture products with an id say "product", and a supplier
#: text "description for item 8"; tested first, they sent those texts to ``which``.
_COMMON = frozenset("""a an and are as at be by de del den der des die das do du el en es
et for from has have in is it la las le les los need not of on or para pour que so that
the this to tu und with y you your
copy description descriptions item items listing product products""".split())  # noqa: SIM905


def _rank(clause: Clause) -> tuple[bool, int, int]:
    """Common words last; then longer strings (markers included) are rarer in product text,
    and fewer strings are fewer tests."""
    common = any(s.strip(MARK) in _COMMON for s in clause)
    return not common, min(map(len, clause)), -len(clause)


def _sequence(items: Sequence[Any], left: bool, right: bool) -> _Info:
    """``left``: the text before these items ends apart (non-word or line start);
    ``right``: the text after them starts apart."""
    clauses: list[Clause] = []
    run: set[str] = {""}
    run_left = left
    state = left
    exact = True

    def flush(after_apart: bool) -> None:
        strings = _in_context(run, run_left, after_apart)
        if _useful(strings):
            clauses.append(strings)

    for index, (op, av) in enumerate(items):
        after = _starts_apart(items[index + 1:], right)
        info = _node(op, av, state, after)
        if info.exact is not None and len(run) * len(info.exact) <= _MAX_EXACT:
            if run == {""}:
                run_left = state
            run = {a + b for a in run for b in info.exact}
        else:
            exact = False
            flush(_starts_apart(items[index:], right))
            clauses.extend(info.clauses)
            run, run_left = (set(info.exact), state) if info.exact is not None else ({""},
                                                                                        False)
        state = _ends_apart([(op, av)], state)
    if exact:
        whole = frozenset(_marked(s) for s in run)
        return _Info(whole, ())
    flush(right)
    return _Info(None, tuple(dict.fromkeys(clauses)))


def _node(op: Any, av: Any, left: bool, right: bool) -> _Info:
    if op is _C.LITERAL:
        ch = _char(av)
        return _Info(frozenset({ch}), ()) if ch else _UNKNOWN
    if op is _C.IN:
        chars = set()
        for item_op, item in av:
            ch = _char(item) if item_op is _C.LITERAL else None
            if ch is None:
                return _UNKNOWN
            chars.add(ch)
        return _Info(frozenset(chars), ())
    if op is _C.AT:
        return _Info(frozenset({MARK}), ()) if str(av) == "AT_BOUNDARY" else _EMPTY
    if op in (_C.ASSERT, _C.ASSERT_NOT):
        return _EMPTY  # zero width: a match may hold anything here
    if op is _C.SUBPATTERN:
        return _sequence(av[-1].data, left, right)
    if op is getattr(_C, "ATOMIC_GROUP", None):
        return _sequence(av.data, left, right)
    if op is _C.BRANCH:
        branches = [_sequence(b.data, left, right) for b in av[1]]
        if all(b.exact is not None for b in branches) and \
                sum(len(b.exact or ()) for b in branches) <= _MAX_EXACT:
            return _Info(frozenset().union(*(b.exact or () for b in branches)), ())
        best = [_in_context(b.exact, left, right) if b.exact is not None else _best(b)
                for b in branches]
        if any(c is None for c in best):
            return _UNKNOWN
        return _Info(None, (frozenset().union(*best),))  # type: ignore[arg-type]
    if op in _REPEATS:
        low, high, item = av
        once = low == high == 1
        body = _sequence(item.data, left if once else False, right if once else False)
        if body.exact is not None and low == 0 and high == 1:
            return _Info(body.exact | {""}, ())
        if body.exact is not None and low == high and len(body.exact) ** low <= _MAX_EXACT:
            strings = {""}
            for _ in range(low):
                strings = {a + b for a in strings for b in body.exact}
            return _Info(frozenset(strings), ())
        return _Info(None, _clauses(body)) if low >= 1 else _UNKNOWN
    return _UNKNOWN


def _clauses(info: _Info) -> tuple[Clause, ...]:
    if info.exact is not None:
        return (info.exact,) if _useful(info.exact) else ()
    return info.clauses


def _best(info: _Info) -> Clause | None:
    return max(_clauses(info), key=_rank, default=None)


def clauses_of(pattern: str, flags: int = 0) -> list[tuple[Clause, ...]]:
    """For each top-level branch of ``pattern``: clauses every match of it satisfies (most
    selective first). An empty tuple means the branch needs nothing known: no filtering."""
    if _P is None:
        return [()]
    tree = list(_P.parse(pattern, flags).data)
    while len(tree) == 1 and tree[0][0] is _C.SUBPATTERN:
        tree = list(tree[0][1][-1].data)
    prefix = [it for it in tree if it[0] is not _C.BRANCH]
    branching = [it for it in tree if it[0] is _C.BRANCH]
    if len(branching) == 1 and all(op is _C.AT for op, _av in prefix):
        # "\bA|\bB" parses as \b + (A|B): filter A and B apart, each with the common prefix.
        at = tree.index(branching[0])
        branches = [tree[:at] + list(b.data) + tree[at + 1:] for b in branching[0][1][1]]
    else:
        branches = [tree]
    return [tuple(sorted(_clauses(_sequence(b, False, False)), key=_rank, reverse=True))
            for b in branches]


class Marked:
    """A text as the clauses are tested on it: lower case (``lower``), its words, and the
    lower case with a marker at each word boundary (``text``, built only when a string
    that needs it is in ``lower`` at all).

    An ASCII text also keeps ``spaced``: its non-word characters as spaces, between two
    spaces. A string that is a word start or a word end (a marker at one end, word
    characters otherwise) is in the marked text exactly when it is in ``spaced`` with a
    space for its marker, one substring search instead of marking the whole text.
    """

    __slots__ = ("_text", "lower", "spaced", "words")

    def __init__(self, lower: str) -> None:
        self.lower = lower
        self._text: str | None = None
        self.spaced: str | None = None
        if lower.isascii():
            apart = ascii_apart(lower)
            self.words = frozenset(apart.split())
            self.spaced = f" {apart} "
        else:
            self.words = frozenset(self.text.split(MARK))

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = _BOUNDARY_RE.sub(MARK, self.lower)
        return self._text

    def has(self, string: str, plain: str, spaced: str | None = None) -> bool:
        """Whether the marked text holds ``string`` (``plain`` is it without markers,
        ``spaced`` it as found in ``spaced``, when it is a word start or end)."""
        if spaced is not None and self.spaced is not None:
            return spaced in self.spaced
        return plain in self.lower and self.has_marked(string)

    def has_marked(self, string: str) -> bool:
        """Whether the marked text holds ``string``, without marking the whole text when it
        is not marked yet (``\\b`` for each marker, searched in ``lower``: ~4 µs less on a
        product's text, where one or two strings are asked for)."""
        if self._text is not None:
            return string in self._text
        return _as_regex(string).search(self.lower) is not None


@functools.lru_cache(maxsize=1024)
def _as_regex(string: str) -> re.Pattern[str]:
    """``string`` with each marker as ``\\b``: it matches ``lower`` where ``string`` is in the
    marked text. Markers sit at every word boundary of the marked text and inside
    ``string`` wherever a word and a non-word character meet (``_marked``), so only its
    edge markers add a condition, and ``\\b`` is that condition."""
    return re.compile(r"\b".join(re.escape(part) for part in string.split(MARK)))


class _SpacedWords:
    """Which word starts (" erw") and word ends ("crit ") an ASCII text's words hold.

    Such a probe is in ``Marked.spaced`` exactly when one of the text's words starts (or
    ends) with it. Each word is judged once and remembered: a catalog's texts share most of
    their words, so a text is judged by a set difference and a lookup or two instead of a
    substring search per probe (25 for the injection guard's first clauses, ~3 µs a product
    at sync). It remembers ``limit`` hits and as many misses (~5 MB at most, most of it
    numbers: ids and sizes); past that, a new word is judged every time it is met. Threads
    may share one: each step is a single operation on a dict or a set, and a word judged
    twice is judged the same.
    """

    def __init__(self, probes: Sequence[str], limit: int = 50_000) -> None:
        self.probes = tuple(probes)
        self.limit = limit
        self._tests = tuple((p[0] == " ", p.strip(" ")) for p in self.probes)
        self._starts = tuple(body for start, body in self._tests if start)
        self._ends = tuple(body for start, body in self._tests if not start)
        self._hits: dict[str, tuple[int, ...]] = {}
        self._misses: set[str] = set()

    def found(self, words: frozenset[str]) -> list[int]:
        """Indices of the probes some of ``words`` hold (an index once per word)."""
        out: list[int] = []
        for word in words.difference(self._misses):
            hit = self._hits.get(word)
            if hit is None:
                hit = self._judge(word)
                if hit:
                    if len(self._hits) < self.limit:
                        self._hits[word] = hit
                elif len(self._misses) < self.limit:
                    self._misses.add(word)
            out.extend(hit)
        return out

    def _judge(self, word: str) -> tuple[int, ...]:
        if not (word.startswith(self._starts) or word.endswith(self._ends)):
            return ()  # two C calls rule out nearly every word
        return tuple(i for i, (start, body) in enumerate(self._tests)
                     if (word.startswith(body) if start else word.endswith(body)))


def _spaced(string: str) -> str | None:
    """A word start or word end (``MARK`` + word characters, or the reverse) as it reads
    in ``Marked.spaced``; None for any other string."""
    if len(string) < 2 or (string[0] == MARK) == (string[-1] == MARK):
        return None
    body = string[1:] if string[0] == MARK else string[:-1]
    if not all(_word(c) and c.isascii() for c in body):
        return None
    return f" {body}" if string[0] == MARK else f"{body} "


def marked(text: str) -> Marked | None:
    """``text`` ready for ``Prefilter``; None when the clauses cannot be trusted on it (it
    holds a character ``re`` folds differently from ``str.lower``, or a marker)."""
    if MARK in text or (not text.isascii() and any(c in text for c in _UNSAFE)):
        return None
    return Marked(text.lower())


class _Clause:
    """One clause, split for speed: whole words (looked up in the text's set of words) and
    other strings (searched in the marked text)."""

    __slots__ = ("partial", "words")

    def __init__(self, strings: Clause) -> None:
        self.words = frozenset(s[1:-1] for s in strings if _is_word(s))
        self.partial = tuple(sorted((s, s.replace(MARK, ""), _spaced(s)) for s in strings
                                    if not _is_word(s)))

    def holds(self, text: Marked) -> bool:
        return not self.words.isdisjoint(text.words) or \
            any(text.has(s, plain, spaced) for s, plain, spaced in self.partial)


def _is_word(s: str) -> bool:
    """A marker, one run of word characters, a marker: a whole word."""
    return len(s) > 2 and s[0] == MARK and s[-1] == MARK and \
        all(_word(c) for c in s[1:-1])


class Prefilter:
    """The alternatives of one regex, each with the clauses a match of it needs."""

    def __init__(self, alternatives: Sequence[str], flags: int) -> None:
        self.alternatives = tuple(alternatives)
        self.flags = flags
        self.full = self._compile(tuple(range(len(self.alternatives))))
        try:
            needs = [clauses_of(p, flags) for p in self.alternatives]
        except Exception:  # unknown syntax: filter nothing, the results stay the same
            needs = [[()] for _ in self.alternatives]
        self.unfiltered = any(not b for branches in needs for b in branches)
        self.needs = [[[_Clause(c) for c in b] for b in branches] for branches in needs]
        # Each branch's first clause, indexed by its strings: a text holding none of them
        # rules the branch out, and only the branches some string points at are tested on.
        self.by_word: dict[str, set[tuple[int, int]]] = {}
        by_partial: dict[str, set[tuple[int, int]]] = {}
        for alt, branches in enumerate(needs):
            for index, branch in enumerate(branches):
                for string in branch[0] if branch else ():
                    target = self.by_word if _is_word(string) else by_partial
                    target.setdefault(string[1:-1] if _is_word(string) else string,
                                      set()).add((alt, index))
        self.first_words = frozenset(self.by_word)
        self.by_partial = tuple(sorted(
            (string, string.replace(MARK, ""), _spaced(string), branches)
            for string, branches in by_partial.items()))
        self.by_spaced = tuple((spaced, branches) for _s, _p, spaced, branches
                               in self.by_partial if spaced is not None)
        self._spaced_words = _SpacedWords([spaced for spaced, _b in self.by_spaced])
        self.by_marked = tuple((string, plain, branches) for string, plain, spaced, branches
                               in self.by_partial if spaced is None)

    def _compile(self, which: tuple[int, ...]) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{self.alternatives[i]})" for i in which), self.flags)

    def which(self, text: Marked | None) -> tuple[int, ...]:
        """The alternatives that may match somewhere in ``text`` (all when it is None)."""
        if self.unfiltered or text is None:
            return tuple(range(len(self.alternatives)))
        pointed = [self.by_word[w] for w in self.first_words.intersection(text.words)]
        if text.spaced is not None:  # ASCII: word starts and ends by the text's words
            lower = text.lower
            pointed += [self.by_spaced[i][1] for i in self._spaced_words.found(text.words)]
            pointed += [branches for string, plain, branches in self.by_marked
                        if plain in lower and text.has_marked(string)]
        else:
            pointed += [branches for string, plain, spaced, branches in self.by_partial
                        if text.has(string, plain, spaced)]
        if not pointed:
            return ()
        return tuple(sorted({alt for alt, index in set().union(*pointed)
                             if all(c.holds(text) for c in self.needs[alt][index][1:])}))

    def regex(self, text: str, ready: Marked | None) -> re.Pattern[str] | None:
        """The regex giving ``text`` the same matches as all alternatives, or None when
        none can match anywhere in it. ``ready`` is ``marked(text)``."""
        which = self.which(ready)
        if not which:
            return None
        if len(which) == len(self.alternatives):
            return self.full
        return _subset(self, which)


class FirstClauses:
    """The first clauses of several prefilters at once: a text holding none of their
    strings is ruled out by every one of them, in one pass instead of one per filter."""

    def __init__(self, *filters: Prefilter) -> None:
        self.unfiltered = any(f.unfiltered for f in filters)
        self.words = frozenset().union(*(f.first_words for f in filters))
        self.by_spaced = tuple(dict.fromkeys(p for f in filters for p, _b in f.by_spaced))
        self.by_marked = tuple(dict.fromkeys((s, p) for f in filters
                                             for s, p, _b in f.by_marked))
        self.by_partial = tuple(dict.fromkeys((s, p, sp) for f in filters
                                              for s, p, sp, _b in f.by_partial))
        # Whether any of ``by_marked``'s strings is in a text at all, by one search (most
        # hold a "." or a bracket, which most texts have): 0.5-1 µs instead of ~2.
        self.any_marked = re.compile("|".join(re.escape(p) for _s, p in self.by_marked)) \
            if self.by_marked else None
        self._spaced_words = _SpacedWords(self.by_spaced)

    def any_in(self, text: Marked | None) -> bool:
        """False when no filter can point at any alternative in ``text``."""
        if self.unfiltered or text is None or not self.words.isdisjoint(text.words):
            return True
        if text.spaced is not None:
            lower = text.lower
            return bool(self._spaced_words.found(text.words)) or (
                self.any_marked is not None and self.any_marked.search(lower) is not None
                and any(plain in lower and text.has_marked(string)
                        for string, plain in self.by_marked))
        return any(text.has(string, plain, spaced) for string, plain, spaced in self.by_partial)


@functools.lru_cache(maxsize=512)
def _subset(prefilter: Prefilter, which: tuple[int, ...]) -> re.Pattern[str]:
    return prefilter._compile(which)


__all__ = ["MARK", "FirstClauses", "Marked", "Prefilter", "clauses_of", "marked"]

"""Literal prefilters for the lexicon's regular expressions (inline layer speed).

``required_literals(pattern)`` reads a compiled pattern's parse tree and returns a set of
strings such that *every* match of the pattern contains at least one of them, or None when
no such set can be proven (then the pattern always runs). The inline layer skips a rule
whose literals are all absent from the text: a few substring tests instead of a regex scan
over the whole message for each of ~70 rules, which was most of the inline layer's cost
and ~10% of the server's CPU per chat message (docs/benchmarks.md). ``LiteralIndex`` finds
which of all the rules' literals occur in a message in one regex pass, so each rule's test
is a set intersection.

Being wrong here would hide a risk phrase, so the analysis only ever answers what it can
prove and gives up (None) on anything else: case-insensitive patterns, back-references,
character classes other than a few literal characters, optional or zero-repeat parts.
tests/triage/test_prefilter.py checks it against generated matches of every rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

try:  # Python 3.11+: the parser is private but stable; without it nothing is filtered.
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _p = _c = None

__all__ = ["required_literals", "may_match", "may_match_present", "LiteralIndex"]

# A character class of more literal characters than this is not worth testing for.
_MAX_CLASS = 4
_ZERO_WIDTH = {"AT", "ASSERT", "ASSERT_NOT"}


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings of which every non-empty match of `pattern` contains at least one; None
    when that cannot be shown."""
    if _p is None or pattern.flags & (re.IGNORECASE | re.VERBOSE) or not isinstance(pattern.pattern, str):
        return None
    try:
        found = _sequence(list(_p.parse(pattern.pattern, pattern.flags)))
    except Exception:  # an unknown construct: no prefilter, the pattern always runs
        return None
    if not found or any(not s for s in found):
        return None
    return frozenset(found)


def may_match(literals: frozenset[str] | None, text: str) -> bool:
    """False only when the pattern behind `literals` cannot match `text`."""
    return literals is None or any(s in text for s in literals)


def may_match_present(literals: frozenset[str] | None, present: frozenset[str]) -> bool:
    """may_match, given the literals `present` in the text (LiteralIndex.present)."""
    return literals is None or not literals.isdisjoint(present)


class LiteralIndex:
    """Which of a fixed set of literals occur in a text, found in one regex pass.

    Testing each rule's literals with `in` cost ~620 substring tests per message, most of
    the inline layer's time, spent in the Python loop around them rather than the tests.
    Here the literals form a trie, compiled to one pattern tried at every position inside
    a lookahead (so overlapping occurrences are all seen). At each position it reports the
    longest literal that starts there; every other literal starting there is a prefix of
    that one, so `present` adds all the literals each reported one contains. The result is
    exactly `{s for s in literals if s in text}` (tests/triage/test_prefilter.py)."""

    def __init__(self, literal_sets: Iterable[frozenset[str] | None]) -> None:
        literals = sorted({s for found in literal_sets if found for s in found})
        self._within = {m: frozenset(s for s in literals if s in m) for m in literals}
        self._pattern = re.compile(f"(?=({_trie_pattern(literals)}))") if literals else None

    def present(self, text: str) -> frozenset[str]:
        if self._pattern is None:
            return frozenset()
        found: set[str] = set()
        for longest in set(self._pattern.findall(text)):
            found |= self._within[longest]
        return frozenset(found)


def _trie_pattern(words: list[str]) -> str:
    """A pattern matching exactly the given (non-empty) strings, longest first, shaped as a
    trie: the branches at each node start with different characters, so at most one of
    them proceeds and the scan at one position is linear in the longest word."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        inner = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{inner})?" if "" in node else inner  # greedy: the longer word first

    return build(trie)


def _score(candidate: set[str]) -> tuple[int, int]:
    # Prefer long literals (rarer in text), then fewer of them (fewer tests).
    return (min(len(s) for s in candidate), -len(candidate))


def _sequence(items: list[tuple[Any, Any]]) -> set[str] | None:
    """Items matched one after another: any one item's requirement holds for the whole."""
    candidates: list[set[str]] = []
    run: list[str] = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if run:
            candidates.append({"".join(run)})
            run = []
        if name in _ZERO_WIDTH:
            continue  # consumes nothing: neither helps nor breaks the rest
        found = _item(name, av)
        if found:
            candidates.append(found)
    if run:
        candidates.append({"".join(run)})
    return max(candidates, key=_score) if candidates else None


def _item(name: str, av: Any) -> set[str] | None:
    if name == "SUBPATTERN":
        _group, add_flags, _del_flags, sub = av
        if add_flags & (_c.SRE_FLAG_IGNORECASE | _c.SRE_FLAG_VERBOSE):
            return None
        return _sequence(list(sub))
    if name == "ATOMIC_GROUP":
        return _sequence(list(av))
    if name == "BRANCH":
        union: set[str] = set()
        for branch in av[1]:
            found = _sequence(list(branch))
            if not found:
                return None  # one alternative needs nothing: the whole needs nothing
            union |= found
        return union
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, sub = av
        return _sequence(list(sub)) if low >= 1 else None
    if name == "IN":
        if len(av) > _MAX_CLASS or any(str(op) != "LITERAL" for op, _ in av):
            return None
        return {chr(code) for _, code in av}
    return None  # ANY, CATEGORY, GROUPREF, NOT_LITERAL, ...: anything at all

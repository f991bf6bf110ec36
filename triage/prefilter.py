"""Literal prefilters for the lexicon's regular expressions (inline layer speed).

``required_literals(pattern)`` reads a compiled pattern's parse tree and returns a set of
strings such that *every* match of the pattern contains at least one of them, or None when
no such set can be proven (then the pattern always runs). The inline layer skips a rule
whose literals are all absent from the text: a few substring tests instead of a regex scan
over the whole message for each of ~70 rules, which was most of the inline layer's cost
and ~10% of the server's CPU per chat message (docs/benchmarks.md). ``LiteralIndex`` finds
which of all the rules' literals occur in a message in one pass, so each rule's test
is a set intersection.

Being wrong here would hide a risk phrase, so the analysis only ever answers what it can
prove and gives up (None) on anything else: case-insensitive patterns, back-references,
character classes other than a few literal characters, optional or zero-repeat parts.
tests/triage/test_prefilter.py checks it against generated matches of every rule.

The engine uses ``required_alternatives``, the finer form: a pattern's top-level branches
each with every set of strings it requires, indexed by ``ClauseFilter``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import ahocorasick_rs

try:  # Python 3.11+: the parser is private but stable; without it nothing is filtered.
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _p = _c = None

__all__ = [
    "required_literals",
    "required_alternatives",
    "may_match",
    "may_match_present",
    "may_match_any",
    "LiteralIndex",
    "ClauseFilter",
]

# A character class of more literal characters than this is not worth testing for.
_MAX_CLASS = 4
# Sets kept per alternative (the most selective first), and how many alternatives nested
# inside a sequence are combined set by set (see _clauses_item).
_MAX_CLAUSES = 4
_BRANCH_PRODUCT = 16
# A set holding a string shorter than this is met by nearly every text: not worth keeping
# beyond an alternative's first set.
_MIN_EXTRA_LITERAL = 3
_ZERO_WIDTH = {"AT", "ASSERT", "ASSERT_NOT"}


def _parsed(pattern: re.Pattern[str]) -> list[tuple[Any, Any]] | None:
    """The pattern's parse tree, or None where no prefilter can be derived from it."""
    if _p is None or pattern.flags & (re.IGNORECASE | re.VERBOSE) or not isinstance(pattern.pattern, str):
        return None
    try:
        return list(_p.parse(pattern.pattern, pattern.flags))
    except Exception:  # an unknown construct: no prefilter, the pattern always runs
        return None


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings of which every non-empty match of `pattern` contains at least one (the most
    selective of the sets the whole pattern requires); None when that cannot be shown."""
    items = _parsed(pattern)
    found = _clauses_sequence(items) if items is not None else []
    return found[0] if found else None


def required_alternatives(pattern: re.Pattern[str]) -> tuple[tuple[frozenset[str], ...], ...]:
    """What every non-empty match of `pattern` contains, as alternatives: each match meets
    at least one alternative, and meets an alternative when it holds a string of *each* of
    its sets (the most selective set first). () when nothing can be shown.

    A single set per pattern (required_literals) lets a rule run wherever one common word
    of any of its branches occurs (" to ", "have", "my "). Splitting a pattern into its
    top-level branches, and requiring every part of a branch ("don't" and "want" and
    "live"), lets the inline layer skip most rules on everyday chat."""
    items = _parsed(pattern)
    found = _alternatives(items) if items is not None else None
    return tuple(tuple(clauses) for clauses in found) if found else ()


def may_match_any(alternatives: tuple[tuple[frozenset[str], ...], ...], present: frozenset[str]) -> bool:
    """False only when a pattern with these required_alternatives cannot match a text
    whose literals are `present`."""
    return not alternatives or any(_meets(clauses, present) for clauses in alternatives)


def _meets(clauses: tuple[frozenset[str], ...], present: frozenset[str]) -> bool:
    """True when `present` holds a string of each set."""
    return all(not clause.isdisjoint(present) for clause in clauses)


def may_match(literals: frozenset[str] | None, text: str) -> bool:
    """False only when the pattern behind `literals` cannot match `text`."""
    return literals is None or any(s in text for s in literals)


def may_match_present(literals: frozenset[str] | None, present: frozenset[str]) -> bool:
    """may_match, given the literals `present` in the text (LiteralIndex.present)."""
    return literals is None or not literals.isdisjoint(present)


class LiteralIndex:
    """Which of a fixed set of literals occur in a text, found in one pass.

    Testing each rule's literals with `in` cost ~620 substring tests per message, most of
    the inline layer's time, spent in the Python loop around them rather than the tests.
    Here one Aho-Corasick automaton over all the literals (ahocorasick-rs, compiled code)
    reports every occurrence of every literal, overlapping and nested ones included, in one
    scan: 4 µs on a benchmark message against 31 µs for the regex trie tried at every
    position that did this before (docs/benchmarks.md, twenty-second pass). The result is
    exactly `{s for s in literals if s in text}` (tests/triage/test_prefilter.py)."""

    def __init__(self, literal_sets: Iterable[frozenset[str] | None]) -> None:
        literals = sorted({s for found in literal_sets if found for s in found})
        # Standard match semantics are the only ones that report overlapping matches.
        self._automaton = (ahocorasick_rs.AhoCorasick(literals, matchkind=ahocorasick_rs.MatchKind.Standard)
                           if literals else None)

    def present(self, text: str) -> frozenset[str]:
        if self._automaton is None:
            return frozenset()
        return frozenset(self._automaton.find_matches_as_strings(text, overlapping=True))


class ClauseFilter:
    """Which of many patterns may match, given the literals present in a text.

    Testing every pattern's alternatives in a Python loop would cost more than the regex
    scans it saves. Here each alternative is indexed under the strings of its first (most
    selective) set, so only the alternatives reached from a string that is present are
    tested further."""

    def __init__(self, patterns: list[tuple[tuple[frozenset[str], ...], ...]]) -> None:
        self._always = frozenset(i for i, alternatives in enumerate(patterns) if not alternatives)
        self._rest: list[tuple[int, tuple[frozenset[str], ...]]] = []
        by_literal: dict[str, set[int]] = {}
        for i, alternatives in enumerate(patterns):
            for first, *rest in alternatives:
                for literal in first:
                    by_literal.setdefault(literal, set()).add(len(self._rest))
                self._rest.append((i, tuple(rest)))
        self._by_literal = {literal: frozenset(ids) for literal, ids in by_literal.items()}
        self.literals = sorted({s for alternatives in patterns for clauses in alternatives for c in clauses for s in c})

    def candidates(self, present: frozenset[str]) -> list[int]:
        """Indices, in order, of the patterns that may match a text holding `present`."""
        reached: set[int] = set()
        for literal in present:
            ids = self._by_literal.get(literal)
            if ids:
                reached |= ids
        found = set(self._always)
        rests = self._rest
        for entry in reached:
            i, rest = rests[entry]
            if i in found:
                continue
            # _meets(rest, present), written out: a call and a generator per entry were
            # most of this method's ~18 µs a message (twenty-eighth pass).
            for clause in rest:
                if clause.isdisjoint(present):
                    break
            else:
                found.add(i)
        return sorted(found)


def _score(candidate: frozenset[str]) -> tuple[int, int]:
    # Prefer long literals (rarer in text), then fewer of them (fewer tests).
    return (min(len(s) for s in candidate), -len(candidate))


def _clauses_sequence(items: list[tuple[Any, Any]]) -> list[frozenset[str]]:
    """Items matched one after another: every item's clauses hold for the whole match."""
    clauses: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if run:
            clauses.append(frozenset({"".join(run)}))
            run = []
        if name in _ZERO_WIDTH:
            continue
        clauses.extend(_clauses_item(name, av))
    if run:
        clauses.append(frozenset({"".join(run)}))
    # A clause holding "" is met by any text; duplicates test nothing new.
    unique = list(dict.fromkeys(clause for clause in clauses if clause and "" not in clause))
    return sorted(unique, key=_score, reverse=True)


def _clauses_item(name: str, av: Any) -> list[frozenset[str]]:
    if name == "SUBPATTERN":
        _group, add_flags, _del_flags, sub = av
        if add_flags & (_c.SRE_FLAG_IGNORECASE | _c.SRE_FLAG_VERBOSE):
            return []
        return _clauses_sequence(list(sub))
    if name == "ATOMIC_GROUP":
        return _clauses_sequence(list(av))
    if name == "BRANCH":
        alternatives = [_clauses_sequence(list(branch)) for branch in av[1]]
        if any(not clauses for clauses in alternatives):
            return []  # one alternative needs nothing: the whole needs nothing
        # (A1 and A2) or (B1 and B2) holds exactly when every (Ai or Bj) does. Combining
        # each alternative's two best clauses stays small for a few alternatives; for
        # more, each contributes its best clause to one union.
        per_alternative = 2 if 2 ** len(alternatives) <= _BRANCH_PRODUCT else 1
        combined: list[frozenset[str]] = [frozenset()]
        for clauses in alternatives:
            combined = [done | clause for done in combined for clause in clauses[:per_alternative]]
        return combined
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, sub = av
        return _clauses_sequence(list(sub)) if low >= 1 else []
    if name == "IN":
        if len(av) > _MAX_CLASS or any(str(op) != "LITERAL" for op, _ in av):
            return []
        return [frozenset(chr(code) for _, code in av)]
    return []


def _alternatives(items: list[tuple[Any, Any]]) -> list[list[frozenset[str]]] | None:
    """A sequence as alternatives of sets: its top-level branches, each on its own, or the
    whole sequence as one. None when some alternative needs nothing."""
    core = [(op, av) for op, av in items if str(op) not in _ZERO_WIDTH]
    if len(core) == 1:
        # Assertions dropped beside it only ever constrain a match further.
        name, av = str(core[0][0]), core[0][1]
        if name == "BRANCH":
            found: list[list[frozenset[str]]] = []
            for branch in av[1]:
                sub = _alternatives(list(branch))
                if sub is None:
                    return None
                found.extend(sub)
            return found
        if name == "SUBPATTERN" and not av[1] & (_c.SRE_FLAG_IGNORECASE | _c.SRE_FLAG_VERBOSE):
            return _alternatives(list(av[3]))
    clauses = _clauses_sequence(items)
    if not clauses:
        return None
    kept = clauses[:1] + [c for c in clauses[1:] if min(len(s) for s in c) >= _MIN_EXTRA_LITERAL]
    return [kept[:_MAX_CLAUSES]]

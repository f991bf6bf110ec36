"""The inline layer's literal prefilter must never hide a match (triage/prefilter.py)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage import engine
from triage import lexicon as lx
from triage import normalize as normalize_mod
from triage.prefilter import LiteralIndex, may_match, may_match_present, required_literals

from .cases import CONCERN, ESCALATE, NONE

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "triage"
PATTERNS = [(rule.id, rule.pattern) for rule in lx.RULES] + [(f"idiom{i}", p) for i, p in enumerate(lx.IDIOMS)]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"kill myself", {"kill myself"}),
        (r"\bkill(?:s|ed)?\b", {"kill"}),
        (r"a(?:bc|de)f", {"bc", "de"}),  # the longest required part wins
        (r"(?:pills|tablets)+ tonight", {" tonight"}),
        (r"[ab]c", {"c"}),
        (r"[ab]", {"a", "b"}),
        (r"x?", None),  # may match without any literal
        (r"(?:kill|)", None),  # an empty alternative needs nothing
        (r"\w+", None),
        (r"(?i)kill", None),  # case-insensitive: not analysed
        (r"(a)\1", {"a"}),
        (r"(?:die){2,}", {"die"}),
        (r"(?:die){0,3}", None),
    ],
)
def test_required_literals(pattern: str, expected: set[str] | None) -> None:
    found = required_literals(re.compile(pattern))
    assert (None if found is None else set(found)) == expected


def test_every_lexicon_pattern_is_filtered() -> None:
    """Not a safety property (None is always safe), but the speed depends on it."""
    assert all(rule.literals for rule in lx.RULES)


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_literals_are_in_every_generated_match(name: str, pattern: re.Pattern[str]) -> None:
    """Strings generated to match each lexicon pattern always contain one of its literals."""
    literals = required_literals(pattern)
    if literals is None:
        return

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(st.from_regex(pattern))
    def check(text: str) -> None:
        if any(m.end() > m.start() for m in pattern.finditer(text)):
            assert may_match(literals, text), (name, text, sorted(literals))

    check()


def _corpus() -> list[str]:
    texts = [case[0] if isinstance(case, tuple) else case for case in (*ESCALATE, *CONCERN, *NONE)]
    texts += [json.loads(line)["text"] for line in (Path(__file__).with_name("dev_messages.jsonl")).read_text().splitlines() if line.strip()]
    if (DATA / "chat_dev.jsonl").exists():
        texts += [json.loads(line)["text"] for line in (DATA / "chat_dev.jsonl").read_text().splitlines() if line.strip()]
    if (DATA / "dreaddit_train.csv").exists():
        with open(DATA / "dreaddit_train.csv", newline="") as fh:
            texts += [row["text"] for _, row in zip(range(1500), csv.DictReader(fh), strict=False)]
    return texts


def test_prefilter_changes_no_assessment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same assessment, to the last evidence span, with the prefilter and without it
    (on all 30,738 texts of the shared data sets when measured; a sample here)."""
    texts = _corpus()
    filtered = [engine.assess_inline(t).to_dict() for t in texts]
    monkeypatch.setattr(engine, "may_match_present", lambda literals, present: True)
    unfiltered = [engine.assess_inline(t).to_dict() for t in texts]
    assert len(texts) > 1000
    assert [i for i, (a, b) in enumerate(zip(filtered, unfiltered, strict=True)) if a != b] == []


ALL_LITERALS = sorted({s for _, p in PATTERNS for s in (required_literals(p) or ())})


def test_literal_index_finds_exactly_the_literals_in_each_text() -> None:
    """The one-pass index answers what testing every literal with `in` would."""
    index = LiteralIndex(required_literals(p) for _, p in PATTERNS)
    literal_sets = [required_literals(p) for _, p in PATTERNS]
    for text in _corpus():
        text = text.lower()
        present = index.present(text)
        assert present == {s for s in ALL_LITERALS if s in text}, text
        assert [may_match_present(ls, present) for ls in literal_sets] == [may_match(ls, text) for ls in literal_sets]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(ALL_LITERALS) | st.text(alphabet="abdeilmnost '", max_size=4), max_size=12))
def test_literal_index_on_overlapping_literals(parts: list[str]) -> None:
    """Texts made of literals and fragments run together, so that occurrences overlap,
    nest and share prefixes."""
    index = LiteralIndex([frozenset(ALL_LITERALS)])
    text = "".join(parts)
    assert index.present(text) == {s for s in ALL_LITERALS if s in text}


@pytest.mark.parametrize(
    ("literals", "text", "expected"),
    [
        ({"kill", "kill myself", "ill"}, "i will kill myself", {"kill", "kill myself", "ill"}),
        ({"a.b", "(c)"}, "a.b (c) axb", {"a.b", "(c)"}),  # regex metacharacters are literal
        ({"aa"}, "aaa", {"aa"}),
        ({"ab", "b"}, "xyz", set()),
    ],
)
def test_literal_index_examples(literals: set[str], text: str, expected: set[str]) -> None:
    assert LiteralIndex([frozenset(literals), None]).present(text) == expected


def test_literal_index_of_nothing() -> None:
    assert LiteralIndex([None]).present("anything") == frozenset()


def _normalized_without_fast_path(monkeypatch: pytest.MonkeyPatch, texts: list[str]) -> list:
    with monkeypatch.context() as m:
        m.setattr(normalize_mod, "_ASCII_FOLD", None)
        return [normalize_mod.normalize(t) for t in texts]


def test_ascii_fast_path_normalizes_as_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """triage/normalize.py folds ASCII text with one table; the per-character path must
    give the same text and offsets (mixed-case, backticks, leet, slang, spacing)."""
    texts = [t for t in _corpus() if t.isascii()]
    texts += ["I Want To `Die`", "k1ll  mys3lf\t\tTONIGHT", "s-h again", "SeWeR  SlIdE", "a" * 50, "", " `` "]
    assert normalize_mod._ASCII_FOLD is not None
    assert [normalize_mod.normalize(t) for t in texts] == _normalized_without_fast_path(monkeypatch, texts)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_fast_path_on_any_ascii(text: str) -> None:
    with pytest.MonkeyPatch.context() as m:
        assert normalize_mod.normalize(text) == _normalized_without_fast_path(m, [text])[0]

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
from triage.prefilter import may_match, required_literals

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
    monkeypatch.setattr(engine, "may_match", lambda literals, text: True)
    unfiltered = [engine.assess_inline(t).to_dict() for t in texts]
    assert len(texts) > 1000
    assert [i for i, (a, b) in enumerate(zip(filtered, unfiltered, strict=True)) if a != b] == []

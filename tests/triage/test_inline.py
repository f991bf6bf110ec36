"""Inline layer: categories, idioms, negation, context, normalisation, override."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.triage.cases import CONCERN, ESCALATE, NONE
from triage.engine import LEVELS, assess_inline, level_rank, max_level
from triage.lexicon import CATEGORIES, LEXICON_VERSION
from triage.normalize import normalize


@pytest.mark.parametrize(("text", "category"), ESCALATE)
def test_escalate_messages(text: str, category: str) -> None:
    a = assess_inline(text)
    assert a.action == "escalate", (a.level, a.evidence)
    assert category in a.categories


@pytest.mark.parametrize(("text", "category"), CONCERN)
def test_concern_messages_go_to_review(text: str, category: str | None) -> None:
    a = assess_inline(text)
    assert a.action in ("review", "escalate"), a.evidence
    if category:
        assert category in a.categories


@pytest.mark.parametrize("text", NONE)
def test_idioms_and_everyday_messages_are_allowed(text: str) -> None:
    a = assess_inline(text)
    assert a.action == "allow", a.evidence
    assert level_rank(a.level) <= level_rank("low")


def test_every_category_is_covered_by_cases() -> None:
    covered = {c for _, c in ESCALATE} | {c for _, c in CONCERN if c}
    assert covered == set(CATEGORIES)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("i want to kill myself", "escalate"),
        ("i would never kill myself", "allow"),
        ("i don't want to die", "allow"),
        ("i'm not going to hurt myself, promise", "allow"),
        ("i'm not going to be here tomorrow", "escalate"),  # negation inside the phrase itself
        ("i don't want to be alive", "review"),
        ("i don't want to die but i've taken all my pills", "escalate"),
        ("i can't stop thinking about killing myself", "review"),
    ],
)
def test_negation(text: str, expect: str) -> None:
    assert assess_inline(text).action == expect


@pytest.mark.parametrize(
    ("text", "max_allowed"),
    [
        ("hypothetically what if someone took all their pills tonight", "moderate"),
        ("in the film the character jumps off a bridge", "low"),
        ("they told me to kill myself", "moderate"),
        ("i tried to kill myself years ago, i'm doing much better now", "moderate"),
        ("i used to want to die when i was 12", "moderate"),
    ],
)
def test_hypothetical_reported_and_past_are_not_escalated(text: str, max_allowed: str) -> None:
    a = assess_inline(text)
    assert level_rank(a.level) <= level_rank(max_allowed), a.evidence


def test_past_attempt_is_still_reviewed() -> None:
    assert assess_inline("i tried to kill myself years ago").action == "review"


def test_third_party_urgent() -> None:
    a = assess_inline("my friend said she'll kill herself tonight")
    assert a.action == "escalate"
    assert a.categories == ["third_party_risk"]


def test_third_party_subject_detection() -> None:
    a = assess_inline("my mate messaged me, he's going to end it")
    assert "third_party_risk" in a.categories and "suicidal_ideation" not in a.categories
    assert a.action == "escalate"


@pytest.mark.parametrize(
    "text",
    [
        "i want to k1ll mys3lf",
        "i want to kill mysefl",
        "i want to kiiiiill myself",
        "i want to ki\u200bll myself",
        "i want to kіll myself",  # Cyrillic i
        "I WANT TO KILL MYSELF",
        "kms",
        "i'm going to unalive myself",
        "thinking about sewerslide a lot, i've picked the day",
        "im suicidle",
        "ｉ ｗａｎｔ ｔｏ ｄｉｅ",  # fullwidth
        "i want to dïe",
    ],
)
def test_normalisation_tricks(text: str) -> None:
    a = assess_inline(text)
    assert a.action in ("review", "escalate") and "suicidal_ideation" in a.categories, normalize(text).text


def test_evidence_spans_point_into_the_original_text() -> None:
    text = "ok so... I w4nt to k1ll mys3lf 2nite"
    a = assess_inline(text)
    assert a.level in ("high", "imminent")
    assert a.flags["timeframe"] and a.flags["active_ideation"]
    for e in a.evidence:
        assert text[e["start"] : e["end"]] == e["text"]
    assert any("k1ll mys3lf" in e["text"] for e in a.evidence)


def test_cssrs_flags() -> None:
    a = assess_inline("i want to die and i know exactly how, i've got the pills")
    assert a.flags["active_ideation"] and a.flags["method"] and a.flags["plan"]
    assert a.level in ("high", "imminent")
    b = assess_inline("i wish i was dead")
    assert b.flags["wish_dead"] and not b.flags["method"]
    assert b.level == "moderate"


def test_imminent_levels() -> None:
    assert assess_inline("i've just taken an overdose").level in ("high", "imminent")
    assert assess_inline("i'm going to kill myself tonight").level == "imminent"
    assert assess_inline("im sat on the edge of the bridge").level == "imminent"


def test_record_shape_and_versions() -> None:
    d = assess_inline("hello").to_dict()
    assert set(d) == {"risk", "toxicity", "pii", "action", "versions", "degraded"}
    assert set(d["risk"]) == {"level", "score", "categories", "flags", "evidence"}
    assert d["toxicity"] is None  # model layer has not run
    assert d["versions"]["lexicon"] == LEXICON_VERSION
    assert d["risk"]["level"] == "none" and d["action"] == "allow"


def test_levels_helpers() -> None:
    assert LEVELS == ("none", "low", "moderate", "high", "imminent")
    assert max_level("low", "high") == "high"
    assert [level_rank(x) for x in LEVELS] == [0, 1, 2, 3, 4]


def test_score_orders_levels() -> None:
    scores = [assess_inline(t).score for t in ("hi", "i feel worthless", "i want to kill myself", "i'm going to kill myself tonight")]
    assert scores == sorted(scores) and 0 <= scores[0] and scores[-1] <= 1


def test_engine_import_does_not_import_torch() -> None:
    code = "import sys, django; from django.conf import settings; settings.configure(); import triage.engine; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - fixed argv

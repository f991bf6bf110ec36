"""PII detection and redaction."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from triage import pii as pii_mod
from triage.engine import assess_inline
from triage.pii import find_pii, redact

from .test_prefilter import _corpus


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("text me on 07700 900123", "phone", "07700 900123"),
        ("my number is +44 7700 900123", "phone", "+44 7700 900123"),
        ("call 020 7946 0018", "phone", "020 7946 0018"),
        ("my cousin in the US is +1 415 555 2671", "phone", "+1 415 555 2671"),
        ("whatsapp +353 85 123 4567", "phone", "+353 85 123 4567"),
        ("email me jess.smith99@gmail.com", "email", "jess.smith99@gmail.com"),
        ("i live at 14 Acacia Avenue", "address", "14 Acacia Avenue"),
        ("postcode is SW1A 1AA", "postcode", "SW1A 1AA"),
        ("it's m1 1ae near the station", "postcode", "m1 1ae"),
        ("follow me @jess_x99", "social_handle", "@jess_x99"),
        ("add me on snap: jessy_22", "social_handle", "jessy_22"),
        ("my insta is jess.smith", "social_handle", "jess.smith"),
        ("https://www.instagram.com/jess.smith/", "social_handle", "https://www.instagram.com/jess.smith/"),
        ("join discord.gg/abc123", "social_handle", "discord.gg/abc123"),
    ],
)
def test_pii_types(text: str, kind: str, value: str) -> None:
    found = find_pii(text)
    assert any(p["type"] == kind and p["text"] == value for p in found), found
    for p in found:
        assert text[p["start"] : p["end"]] == p["text"]


@pytest.mark.parametrize(
    "text",
    ["i got 100 in the test", "see you at 10:30 on 12/03/2024", "i'm 15 and in year 10", "that was 2023", "i scored 3-1"],
)
def test_no_false_pii(text: str) -> None:
    assert find_pii(text) == []


def test_school_names_only_when_configured() -> None:
    text = "I go to Oakfield Academy in year 9"
    assert not any(p["type"] == "school" for p in find_pii(text))
    found = find_pii(text, school_names=["Oakfield Academy"])
    assert [p["text"] for p in found if p["type"] == "school"] == ["Oakfield Academy"]
    with override_settings(TRIAGE_SCHOOL_NAMES=["Oakfield Academy"]):
        assert any(p["type"] == "school" for p in assess_inline(text).pii)


def test_redact() -> None:
    text = "call 07700 900123 or email a@b.com"
    assert redact(text, find_pii(text)) == "call [PHONE] or email [EMAIL]"
    assert redact("abc", []) == "abc"


def test_pii_routes_to_review() -> None:
    a = assess_inline("add me on snap jess_x22 and text 07700900123")
    assert a.action == "review" and a.level == "none"
    with override_settings(TRIAGE_PII_REVIEW_TYPES=()):
        assert assess_inline("text 07700900123").action == "allow"


def _without_guards(texts: list[str]) -> list[list[dict]]:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(pii_mod, "_NEEDS", {})
        return [find_pii(t) for t in texts]


def test_skipped_patterns_change_no_answer() -> None:
    """find_pii skips a pattern when the text lacks a character all its matches contain
    (triage/pii.py, _NEEDS); the answers are those of running every pattern."""
    texts = [*_corpus(), "text me on 07700 900123", "jess.smith99@gmail.com", "https://x.com/jess", "www.example.org",
             "14 Acacia Avenue, SW1A 1AA", "follow me @jess_x99", "add me on snap: jessy_22", "0207 946 0018"]
    assert [find_pii(t) for t in texts] == _without_guards(texts)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet="aeiost SWAJ@./:+-()0147_", max_size=60))
def test_skipped_patterns_on_generated_text(text: str) -> None:
    assert find_pii(text) == _without_guards([text])[0]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(["sc", "tt", "snap", "snapchat", "school", "Insta", "IG", "kik", "_", " ", ": ", "-",
                                 "jess_x22", "jess.x", "me on ", "is ", "x", "9", "é", "\u212a", "ſ", "TikTok", "psn"]),
                max_size=10))
def test_platform_word_guard_changes_no_answer(parts: list[str]) -> None:
    """The platform-handle pattern is skipped unless a platform word stands as a whole word
    (or the text is not ASCII); words run together, in any case, beside "_" and digits."""
    text = "".join(parts)
    assert find_pii(text) == _without_guards([text])[0]


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.sampled_from(["14 ", "3", "flat 2 ", "Acacia ", "Avenue", "ROAD", "rd", "flat", "flats", "st", "Street",
                                 "walked", "park", "Parkway", "0", "07700 900123", "+44 ", "+", "(", "00", "(020) 7946 0018",
                                 "SW1A 1AA", "m1 1ae", "gir 0aa", "1AE", "9zz", "3cc", "www.", "WWW.", "http://", "httpſ://",
                                 "ſ", "\u212a", "é", "٣", " ", ",", ".", ":", "/", "_", "x", "a1b2", "d0e", "t=1796594095.71 "]),
                max_size=12))
def test_digit_and_url_guards_change_no_answer(parts: list[str]) -> None:
    """The phone, postcode, address and URL patterns are skipped unless a phone could start
    ("+", "0" or "(" after no word character), the postcode's inward code, a digit and a whole
    street word, or "://" / "www." occur (triage/pii.py): the answers of running every pattern,
    on parts run together in any order and case, beside ids, times and non-ASCII look-alikes."""
    text = "".join(parts)
    assert find_pii(text) == _without_guards([text])[0]


def test_street_words_are_the_patterns_street_words() -> None:
    """The address guard's word list is every word the pattern's street-word group matches."""
    group = re.compile(pii_mod._STREET_WORDS + r"\Z")
    assert all(group.match(word) for word in pii_mod._STREET_WORD_LIST)
    alternatives = pii_mod._STREET_ALTERNATIVES
    assert pii_mod._STREET_WORDS == "(?:" + "|".join(alternatives) + ")"
    assert len(pii_mod._STREET_WORD_LIST) == len(alternatives) + sum(a.endswith("s?") for a in alternatives)
    assert all(re.fullmatch(r"[a-z]+(?:s\?)?", a) for a in alternatives), "extend the guard for this alternative"


def test_platform_words_are_the_patterns_platforms() -> None:
    """The guard's word list and the pattern's platforms are the same set (the pattern is
    built from the list): a platform written into the pattern alone would be skipped by the
    guard."""
    names = pii_mod._PLATFORM_HANDLE.pattern.split(")\\b", 1)[0].removeprefix("\\b(?:")
    words = set()
    for alternative in names.split("|"):
        m = re.fullmatch(r"(\w+)(?:\(\?:(\w+)\)\?)?", alternative)
        assert m, f"extend this test for the alternative {alternative!r}"
        words |= {m[1], m[1] + m[2]} if m[2] else {m[1]}
    assert words == set(pii_mod._PLATFORM_WORDS)

"""The inline layer's literal prefilter must never hide a match (triage/prefilter.py)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage import engine
from triage import lexicon as lx
from triage import normalize as normalize_mod
from triage.prefilter import (
    ClauseFilter,
    LiteralIndex,
    may_match,
    may_match_any,
    may_match_present,
    required_alternatives,
    required_literals,
)

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


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"kill myself", [[{"kill myself"}]]),
        # every part of a sequence is required; one-character parts only as the first set
        (r"\bdon't (?:really )?want to (?:live|exist)", [[{"want to "}, {"exist", "live"}, {"don't "}]]),
        # top-level branches are alternatives of their own, under \b and other assertions
        (r"\b(?:pills|rope)\b|\bjump off (?:a|the) bridge", [[{"pills"}], [{"rope"}], [{" bridge"}, {"jump off "}]]),
        # a branch inside a sequence: its alternatives' best sets combined (the parser has
        # moved their common "w" out in front)
        (r"\bi (?:want to die|will kill myself) now", [[{"ant to die", "ill kill myself"}, {" now"}, {"i w"}]]),
        (r"x (?:kill|die) (?:me|you)", [[{"die", "kill"}]]),  # short parts ("x ", "me") dropped
        (r"x?", []),
        (r"(?:kill|)me", [[{"me"}]]),  # the empty alternative inside: only "me" is required
        (r"kill|x?", []),  # an alternative that needs nothing: the whole needs nothing
        (r"(?i)kill", []),
    ],
)
def test_required_alternatives(pattern: str, expected: list[list[set[str]]]) -> None:
    found = required_alternatives(re.compile(pattern))

    def canonical(alternatives: Any) -> list[list[list[str]]]:
        return sorted(sorted(sorted(clause) for clause in clauses) for clauses in alternatives)

    assert canonical(found) == canonical(expected)


def test_every_lexicon_pattern_is_filtered() -> None:
    """Not a safety property (no alternatives is always safe), but the speed depends on it."""
    assert all(rule.alternatives for rule in lx.RULES)


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


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_alternatives_are_met_by_every_generated_match(name: str, pattern: re.Pattern[str]) -> None:
    """Strings generated to match each lexicon pattern always meet one of its alternatives:
    a string of each of its sets."""
    alternatives = required_alternatives(pattern)
    literals = {s for clauses in alternatives for clause in clauses for s in clause}

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(st.from_regex(pattern))
    def check(text: str) -> None:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                # The match alone, so that the rest of the generated text cannot help.
                present = frozenset(s for s in literals if s in m.group(0))
                assert may_match_any(alternatives, present), (name, m.group(0), alternatives)

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
    monkeypatch.setattr(engine, "_candidate_rules", lambda present: list(lx.RULES))
    monkeypatch.setattr(engine, "_IDIOM_FILTER", ClauseFilter([() for _ in engine._IDIOMS]))  # every idiom tried
    unfiltered = [engine.assess_inline(t).to_dict() for t in texts]
    assert len(texts) > 1000
    assert [i for i, (a, b) in enumerate(zip(filtered, unfiltered, strict=True)) if a != b] == []


def test_idle_modifiers_skipped_change_no_assessment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modifier rules (a time, a method) run only beside a live primary match, their context
    checks end at the negation test (triage/engine.py): the same assessments as running them
    all, on the corpus and on modifiers beside negated, past, reported, fictional and
    third-person phrases."""
    texts = _corpus() + [
        "i want to kill myself tonight", "i would never kill myself tonight", "i tried to kill myself last year with pills",
        "they told me to kill myself tomorrow", "in the film he wants to die tonight", "what if i took all the pills tonight",
        "my friend says he will end it tonight", "i'm going to hurt him tomorrow with a knife", "tonight i have a test",
        "i don't want to go out tonight", "rope", "i have a rope and i want to die", "the bridge tonight, i want to die",
    ]
    skipped = [engine.assess_inline(t).to_dict() for t in texts]
    monkeypatch.setattr(engine, "_IDLE_MODIFIER_WORK_SKIPPED", False)
    every = [engine.assess_inline(t).to_dict() for t in texts]
    assert [i for i, (a, b) in enumerate(zip(skipped, every, strict=True)) if a != b] == []
    assert any(e["level"] == "none" for d in every for e in d["risk"]["evidence"])  # modifiers did count somewhere


ALL_LITERALS = sorted({s for _, p in PATTERNS for s in (required_literals(p) or ())})
RULE_ALTERNATIVES = [rule.alternatives for rule in lx.RULES]
ALL_REQUIRED = sorted({s for alts in RULE_ALTERNATIVES for clauses in alts for clause in clauses for s in clause})


def test_clause_filter_answers_as_testing_every_rule() -> None:
    """ClauseFilter's index gives the rules that testing each one's alternatives would, in
    lexicon order, on real texts and on the engine's own index of required strings."""
    rule_filter = ClauseFilter(RULE_ALTERNATIVES + [()])
    every = len(RULE_ALTERNATIVES)
    for text in _corpus():
        text = text.lower()
        present = frozenset(s for s in ALL_REQUIRED if s in text)
        expected = [i for i, alts in enumerate(RULE_ALTERNATIVES) if may_match_any(alts, present)]
        assert rule_filter.candidates(present) == [*expected, every], text
        assert engine._LITERALS.present(text) >= present


def test_idiom_filter_answers_as_testing_every_idiom() -> None:
    idiom_alternatives = [alternatives for _, alternatives in engine._IDIOMS]
    for text in _corpus():
        present = engine._LITERALS.present(text.lower())
        expected = [i for i, alts in enumerate(idiom_alternatives) if may_match_any(alts, present)]
        assert engine._IDIOM_FILTER.candidates(present) == expected, text


@settings(max_examples=300, deadline=None, database=None)
@given(st.sets(st.sampled_from(ALL_REQUIRED), max_size=40))
def test_clause_filter_on_any_set_of_strings(present: set[str]) -> None:
    expected = [i for i, alts in enumerate(RULE_ALTERNATIVES) if may_match_any(alts, frozenset(present))]
    assert ClauseFilter(RULE_ALTERNATIVES).candidates(frozenset(present)) == expected


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


def _normalized_without_shortcuts(monkeypatch: pytest.MonkeyPatch, texts: list[str]) -> list:
    """normalize as it was before the shortcuts: every token through _fix_token, every
    multi-word pattern over the text."""
    with monkeypatch.context() as m:
        m.setattr(normalize_mod, "_token_changes",
                  lambda tokens: {t: normalize_mod._fix_token(t) for t in tokens})
        m.setattr(normalize_mod, "_substitute_tokens",
                  lambda text, offs, _tokens, changes: normalize_mod._substitute(text, offs, normalize_mod._TOKEN_RE, changes.get))
        m.setattr(normalize_mod, "_MULTI_ANY", re.compile(""))
        return [normalize_mod.normalize(t) for t in texts]


def test_normalize_shortcuts_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Known-stable tokens and the one-pattern test for the multi-word slang give the
    text and offsets that running every step gives."""
    texts = _corpus() + ["k1ll  mys3lf\t\tTONIGHT", "s-h again", "SeWeR  SlIdE", "kermit sewer slide", "o.d. tn",
                         "ｋｉｌｌ ｍｙｓｅｌｆ", "commit die", "i'm gonna kms rn", "un-alive", "", "   "]
    assert [normalize_mod.normalize(t) for t in texts] == _normalized_without_shortcuts(monkeypatch, texts)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet="aeiklmnorstu 01345@$!'-._\n", max_size=60))
def test_normalize_shortcuts_on_any_text(text: str) -> None:
    with pytest.MonkeyPatch.context() as m:
        assert normalize_mod.normalize(text) == _normalized_without_shortcuts(m, [text])[0]


def _fix_token_as_written_before(token: str) -> str:
    """normalize's _fix_token before the twenty-eighth pass (generators, re.sub by text)."""
    tok = token
    if any(c.isalpha() for c in tok) and any(c in normalize_mod._LEET for c in tok):
        tok = "".join(normalize_mod._LEET.get(c, c) for c in tok)
    tok = re.sub(r"([a-z])\1{2,}", r"\1\1", tok)
    if tok in normalize_mod._TOKEN_MAP:
        return normalize_mod._TOKEN_MAP[tok]
    if tok not in normalize_mod._RISK_WORDS:
        single = re.sub(r"([a-z])\1", r"\1", tok)
        if single != tok and single in normalize_mod._RISK_WORDS:
            return single
        if single in normalize_mod._TOKEN_MAP:
            return normalize_mod._TOKEN_MAP[single]
    return tok


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(alphabet="abdegiklmnosty01345790@$!'_AZé\u00aa\u0661", max_size=16))
def test_fix_token_as_before(token: str) -> None:
    """Leet inside tokens with a letter (ASCII or not), runs squeezed, slang mapped."""
    assert normalize_mod._fix_token.__wrapped__(token) == _fix_token_as_written_before(token)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_numbers_are_tokens_fix_token_keeps(token: str) -> None:
    assert normalize_mod._NUMBERS_STAY and normalize_mod._fix_token.__wrapped__(token) == token


def test_stable_token_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(normalize_mod, "_STABLE_TOKENS", set())
    monkeypatch.setattr(normalize_mod, "_STABLE_TOKENS_MAX", 50)
    for i in range(200):
        normalize_mod.normalize(f"word{i}x another{i}y")
    assert len(normalize_mod._STABLE_TOKENS) <= 50
    assert normalize_mod.normalize("i wanna kms").text == "i want to kill myself"


def _substitute_by_characters(chars: list[str], offs: list[int], pattern: re.Pattern[str], repl) -> tuple[str, list]:
    """normalize's _substitute as it was written before the twenty-second pass, one list
    item per character: the reference for the offsets the string-slicing one returns."""
    text = "".join(chars)
    out_c: list[str] = []
    out_o: list[int] = []
    pos = 0
    for m in pattern.finditer(text):
        new = repl(m.group(0))
        if new is None or new == m.group(0):
            continue
        out_c.extend(chars[pos : m.start()])
        out_o.extend(offs[pos : m.start()])
        first, last = offs[m.start()], offs[m.end() - 1]
        for i, ch in enumerate(new):
            out_c.append(ch)
            out_o.append(last if i == len(new) - 1 else first)
        pos = m.end()
    return "".join(out_c + chars[pos:]), out_o + offs[pos:]


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(alphabet="ab1@$'!! .-\n", max_size=40), st.dictionaries(st.sampled_from(["a", "ab", "b!b", "1", "a'b", "@", "bb"]),
                                                             st.sampled_from(["", "x", "xyz", "a", "ab", "b!b"])))
def test_substitute_tokens_is_substitute_over_the_tokens(text: str, changes: dict[str, str]) -> None:
    """Tokens joined by "!", next to each other, at either end, changed to longer, shorter,
    empty and equal text; offsets not the identity."""
    offs = [3 * i + 1 for i in range(len(text))]
    tokens = normalize_mod._TOKEN_RE.findall(text)
    assert normalize_mod._substitute_tokens(text, offs, tokens, changes) == normalize_mod._substitute(
        text, offs, normalize_mod._TOKEN_RE, changes.get)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet="ab c", max_size=30), st.sampled_from(["", "x", "xyz", "a", "ab"]), st.sampled_from(["a+", "b", " +", "ca?"]))
def test_substitute_carries_offsets_as_one_item_per_character(text: str, new: str, pattern: str) -> None:
    """Replacements longer, shorter, empty and equal to the match; offsets not the identity."""
    offs = [3 * i + 1 for i in range(len(text))]
    compiled = re.compile(pattern)
    assert normalize_mod._substitute(text, offs, compiled, lambda _: new) == _substitute_by_characters(
        list(text), offs, compiled, lambda _: new)

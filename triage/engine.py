"""Triage engine: the public entry points other apps call.

* ``assess_inline(text)`` - lexicon + PII, pure Python, safe inside the message
  transaction (p99 well under 2 ms). Never imports torch.
* ``assess_full(texts)`` - inline plus the model layer (risk head + Detoxify),
  batched; meant for Celery workers on the ``triage`` queue. If the model layer
  fails, the inline result stands and the action is raised to at least "review":
  failure is never "no risk".

Levels and actions (docs/triage.md): escalate = high | imminent; review =
moderate, or toxicity / PII over threshold, or the model layer failed; allow
otherwise. Risk overrides toxicity: a toxic message that is also risky is
escalated to people, never just hidden.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from triage import lexicon as lx
from triage import pii as pii_mod
from triage.normalize import Normalized, normalize
from triage.prefilter import ClauseFilter, LiteralIndex, required_alternatives

__all__ = [
    "LEVELS",
    "ACTIONS",
    "Assessment",
    "assess_inline",
    "assess_full",
    "level_rank",
    "max_level",
    "action_rank",
]

logger = logging.getLogger(__name__)

LEVELS: tuple[str, ...] = ("none", "low", "moderate", "high", "imminent")
ACTIONS: tuple[str, ...] = ("allow", "review", "escalate")
_LEVEL_SCORE = {"none": 0.0, "low": 0.2, "moderate": 0.45, "high": 0.75, "imminent": 0.92}
_SELF_CATS = {"suicidal_ideation", "self_harm"}
# Distress rules that can anchor an elided intent ("kys they said, honestly i'm going to").
_INTENT_ANCHORS = {"wb.hopeless", "wb.tell_others_die"}
TOXICITY_KEYS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")


def level_rank(level: str) -> int:
    """0 for "none" ... 4 for "imminent"; raises ValueError on an unknown level."""
    return LEVELS.index(level)


def max_level(a: str, b: str) -> str:
    return a if level_rank(a) >= level_rank(b) else b


def action_rank(action: str) -> int:
    return ACTIONS.index(action)


def _setting(name: str, default: Any) -> Any:
    try:
        return getattr(settings, name, default)
    except Exception:  # settings not configured (plain-python use, e.g. bench without Django)
        return default


@dataclass(frozen=True, slots=True)
class Assessment:
    """One assessment of one text. ``to_dict()`` is the CLI record (minus "id")."""

    level: str
    score: float
    categories: list[str]
    flags: dict[str, bool]
    evidence: list[dict[str, Any]]
    toxicity: dict[str, float] | None
    pii: list[dict[str, Any]]
    action: str
    versions: dict[str, str]
    model_failed: bool = False
    model: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def degraded(self) -> bool:
        return self.model_failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "risk": {
                "level": self.level,
                "score": round(self.score, 4),
                "categories": list(self.categories),
                "flags": dict(self.flags),
                "evidence": [dict(e) for e in self.evidence],
            },
            "toxicity": dict(self.toxicity) if self.toxicity is not None else None,
            "pii": [dict(p) for p in self.pii],
            "action": self.action,
            "versions": dict(self.versions),
            "degraded": self.model_failed,
        }


# --- inline layer ------------------------------------------------------------------


_IDIOMS = tuple((pattern, required_alternatives(pattern)) for pattern in lx.IDIOMS)
_RULE_FILTER = ClauseFilter([rule.alternatives for rule in lx.RULES])
_IDIOM_FILTER = ClauseFilter([alternatives for _, alternatives in _IDIOMS])
# Every string any rule or idiom requires: one pass over a message says which occur.
_LITERALS = LiteralIndex(
    [frozenset(_RULE_FILTER.literals)] + [clause for _, alts in _IDIOMS for clauses in alts for clause in clauses]
)


# Modifier rules (level "none") are run only beside a live primary match, and their
# context checks stop after the negation test (see _context_cap, _risk). False runs them
# all, as before: tests/triage/test_prefilter.py compares the two.
_IDLE_MODIFIER_WORK_SKIPPED = True


def _candidate_rules(present: frozenset[str]) -> list[lx.Rule]:
    """The rules, in lexicon order, that may match a text holding the literals `present`."""
    return [lx.RULES[i] for i in _RULE_FILTER.candidates(present)]


def _mask_idioms(text: str) -> tuple[str, frozenset[str]]:
    """Blank idiom spans (same length, so offsets stay valid). Returns the text and the
    literals present in it."""
    present = _LITERALS.present(text)
    # Testing each idiom's alternatives in turn (may_match_any) cost 19 µs a message; the
    # filter reaches the few that may match from the literals present.
    pending = _IDIOM_FILTER.candidates(present)
    while pending:
        i = pending.pop(0)
        pattern = _IDIOMS[i][0]
        if pattern.search(text):
            text = pattern.sub(lambda m: " " * len(m.group(0)), text)
            # Blanking can remove literals and, next to a space, make new ones (rare).
            present = _LITERALS.present(text)
            pending = [j for j in _IDIOM_FILTER.candidates(present) if j > i]
    return text, present


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo, hi = 0, len(text)
    for m in lx.CLAUSE_SPLIT.finditer(text):
        if m.end() <= start:
            lo = m.end()
        elif m.start() >= end:
            hi = m.start()
            break
    return lo, hi


def _context_cap(rule: lx.Rule, text: str, start: int, end: int) -> str | None:
    """The highest level this match may have given its context; None = discard."""
    if not rule.contextual:
        return rule.level
    lo, hi = _clause_bounds(text, start, end)
    prefix = text[lo:start]
    clause = text[lo:hi]
    if lx.NEGATION.search(prefix) and not lx.NEGATION_BREAKERS.search(prefix):
        # "i would never kill myself", "i don't want to die": not a disclosure.
        return None
    if rule.level == "none" and _IDLE_MODIFIER_WORK_SKIPPED:
        # A modifier (a time, a method): the caps below only ever lower a level, and
        # "none" is the lowest, so only the negation above can change its answer. They
        # were ~60 µs a message where a benign one says "today" (twenty-eighth pass).
        return "none"
    cap = rule.level
    if lx.FICTION.search(text):
        # Talking about a film, game or essay: keep a trace, never escalate.
        cap = "low"
    elif lx.HYPOTHETICAL.search(text):
        cap = "moderate"
    if lx.PAST.search(clause):
        # History matters to a counsellor (review) but is not a current crisis.
        cap = min(cap, "moderate", key=level_rank)
    if lx.REPORTED.search(prefix):
        # "they told me to kill myself": bullying, reviewed, not the writer's intent.
        cap = min(cap, "moderate", key=level_rank)
    return min(rule.level, cap, key=level_rank)


@dataclass(slots=True)
class _Hit:
    rule: lx.Rule
    start: int
    end: int
    level: str
    category: str


def _about_someone_else(text: str, start: int, end: int) -> bool:
    """True when a self-risk phrase has a third-person subject ("he's going to end it")."""
    if lx.FIRST_SUBJECT.search(text, start, end):
        return False  # "kill myself" is about the writer whoever else is mentioned
    lo, _ = _clause_bounds(text, start, end)
    # Look back a little past the clause start: "my mate texted me, he's going to end it".
    window = text[max(0, lo - 40) : start]
    last_third = max((m.end() for m in lx.THIRD_SUBJECT.finditer(window)), default=-1)
    last_first = max((m.end() for m in lx.FIRST_SUBJECT.finditer(window)), default=-1)
    return last_third > last_first


def _hits(text: str, rules: list[lx.Rule]) -> list[_Hit]:
    """The matches of `rules` (in order) that survive their context; a modifier (level
    "none") gives at most its first, which is all the combination rules need."""
    hits: list[_Hit] = []
    for rule in rules:
        for m in rule.pattern.finditer(text):
            if m.end() == m.start():
                continue
            cap = _context_cap(rule, text, m.start(), m.end())
            if cap is None:
                continue
            category = rule.category
            if category in _SELF_CATS and _about_someone_else(text, m.start(), m.end()):
                category = "third_party_risk"
            hits.append(_Hit(rule, m.start(), m.end(), cap, category))
            if rule.level == "none":
                break  # one of each modifier is enough
    return hits


def _risk(norm: Normalized, original: str) -> tuple[str, list[str], dict[str, bool], list[dict[str, Any]], float]:
    text, present = _mask_idioms(norm.text)
    # Only rules whose required strings are all in the text (triage/prefilter.py).
    candidates = _candidate_rules(present)
    primaries = _hits(text, [rule for rule in candidates if rule.level != "none"])
    level = "none"
    for h in primaries:
        level = max_level(level, h.level)
    # Only matches that kept their full level (not capped as past, reported,
    # hypothetical or fiction) may combine with a method or a time.
    capped = [h for h in primaries if h.level != h.rule.level]
    live = [
        h
        for h in primaries
        if h.level == h.rule.level and not any(c.start < h.end and h.start < c.end for c in capped)
    ]
    cats_present = {h.category for h in live}
    # A modifier only counts beside a live primary match (`relevant` below), so without
    # one the modifier rules are not run: a benign message that says "today" or "tonight"
    # made one, and its context checks, on every such message.
    idle = not live and _IDLE_MODIFIER_WORK_SKIPPED
    modifiers = [] if idle else _hits(text, [rule for rule in candidates if rule.level == "none"])
    self_hits = [h for h in live if h.category in _SELF_CATS]
    anchored = bool(self_hits) or any(h.rule.id in _INTENT_ANCHORS for h in live)
    flags = {f: False for f in lx.FLAGS}
    for h in self_hits:
        for f in h.rule.flags:
            flags[f] = True
    used_mods: list[_Hit] = []
    mod_flags: set[str] = set()
    for h in modifiers:
        relevant = anchored or (
            h.rule.id == "si.timeframe" and cats_present & {"third_party_risk", "harm_to_others", "abuse_disclosure"}
        ) or (h.rule.id == "ho.how" and "harm_to_others" in cats_present)
        if relevant:
            used_mods.append(h)
            mod_flags.update(h.rule.flags)
    if anchored:
        for f in mod_flags:
            flags[f] = True
    # C-SSRS combination: method with ideation, intent with a time, behaviour.
    if anchored:
        if flags["method"] and (flags["active_ideation"] or flags["intent"] or flags["plan"]):
            level = max_level(level, "high")
        if mod_flags & {"intent", "plan"}:
            level = max_level(level, "high")
        if flags["timeframe"] and (flags["intent"] or flags["plan"] or flags["behaviour"]):
            level = max_level(level, "imminent")
        if flags["timeframe"] and flags["active_ideation"]:
            level = max_level(level, "high")
    if "third_party_risk" in cats_present and "timeframe" in mod_flags:
        level = max_level(level, "high")
    if "harm_to_others" in cats_present and ({"timeframe", "plan"} & mod_flags):
        level = max_level(level, "high")
    categories = [c for c in lx.CATEGORIES if any(h.category == c and h.level != "none" for h in primaries)]
    evidence = []
    for h in sorted(primaries + used_mods, key=lambda h: (h.start, h.end)):
        s, e = norm.span(h.start, h.end)
        item: dict[str, Any] = {
            "start": s,
            "end": e,
            "text": original[s:e],
            "rule": h.rule.id,
            "category": h.category,
            "level": h.level,
        }
        if h.rule.subcategory:
            item["subcategory"] = h.rule.subcategory
        evidence.append(item)
    # Score orders attention inside a level; it never decides on its own (NICE NG225).
    n_flags = sum(flags.values())
    score = _LEVEL_SCORE[level] + (min(0.02 * (n_flags + len(primaries) - 1), 0.06) if level != "none" else 0.0)
    return level, categories, flags, evidence, round(min(score, 1.0), 4)


def _pii_needs_review(found: list[dict[str, Any]]) -> bool:
    if not found:  # most texts: no setting to read (a missing one costs an exception)
        return False
    types = set(_setting("TRIAGE_PII_REVIEW_TYPES", pii_mod.DEFAULT_REVIEW_TYPES))
    return any(p["type"] in types for p in found)


def _toxicity_needs_review(toxicity: dict[str, float] | None) -> bool:
    if not toxicity:
        return False
    threshold = float(_setting("TRIAGE_TOXICITY_REVIEW_THRESHOLD", 0.8))
    return any(v >= threshold for v in toxicity.values())


def _decide(level: str, *, toxicity: dict[str, float] | None, pii: list[dict[str, Any]], model_failed: bool) -> str:
    # Risk first: high/imminent always goes to people, whatever else is true.
    if level_rank(level) >= level_rank("high"):
        return "escalate"
    if level == "moderate" or model_failed or _toxicity_needs_review(toxicity) or _pii_needs_review(pii):
        return "review"
    return "allow"


def versions(*, model: dict[str, str] | None = None) -> dict[str, str]:
    out = {"lexicon": lx.LEXICON_VERSION, "engine": ENGINE_VERSION}
    if model:
        out.update(model)
    return out


ENGINE_VERSION = "1.0.0"


def assess_inline(text: str) -> Assessment:
    """Lexicon + PII assessment. Pure Python; no I/O, no ML; thread-safe.

    ``toxicity`` is None: the model layer has not run. The caller (message
    service) stores this in the message transaction and enqueues the model pass.
    """
    text = text or ""
    norm = normalize(text)
    level, categories, flags, evidence, score = _risk(norm, text)
    found = pii_mod.find_pii(text, school_names=_setting("TRIAGE_SCHOOL_NAMES", ()))
    action = _decide(level, toxicity=None, pii=found, model_failed=False)
    return Assessment(
        level=level,
        score=score,
        categories=categories,
        flags=flags,
        evidence=evidence,
        toxicity=None,
        pii=found,
        action=action,
        versions=versions(),
    )


def _combine(inline: Assessment, result: dict[str, Any], model_versions: dict[str, str]) -> Assessment:
    """Merge a model-layer result into an inline assessment. The model may only raise."""
    toxicity = {k: round(float(result["toxicity"][k]), 4) for k in TOXICITY_KEYS}
    p_escalate = float(result["risk"]["escalate"])
    p_concern = float(result["risk"]["concern"])
    level = inline.level
    evidence = list(inline.evidence)
    review_t = float(_setting("TRIAGE_MODEL_REVIEW_THRESHOLD", 0.8))
    escalate_t = float(_setting("TRIAGE_MODEL_ESCALATE_THRESHOLD", 0.97))
    model_level = "none"
    if p_escalate >= escalate_t:
        model_level = "high"
    elif p_escalate + p_concern >= review_t:
        model_level = "moderate"
    if level_rank(model_level) > level_rank(level):
        level = model_level
        evidence.append(
            {"start": 0, "end": 0, "text": "", "rule": "model.risk", "category": "model", "level": model_level}
        )
    score = max(inline.score, round(0.45 * (p_escalate + p_concern) + 0.4 * p_escalate, 4))
    action = _decide(level, toxicity=toxicity, pii=inline.pii, model_failed=False)
    return replace(
        inline,
        level=level,
        score=min(score, 1.0),
        evidence=evidence,
        toxicity=toxicity,
        action=action,
        versions=versions(model=model_versions),
        model={"risk": {"none": round(1 - p_escalate - p_concern, 4), "concern": round(p_concern, 4), "escalate": round(p_escalate, 4)}},
    )


def degrade(inline: Assessment, reason: str) -> Assessment:
    """The failure path: inline result stands, a person reviews it."""
    action = inline.action if action_rank(inline.action) >= action_rank("review") else "review"
    return replace(inline, action=action, model_failed=True, versions={**inline.versions, "model": f"unavailable: {reason}"[:200]})


def assess_full(texts: list[str]) -> list[Assessment]:
    """Inline + model layer for a batch. Never raises for a model failure."""
    inline = [assess_inline(t) for t in texts]
    if not inline:
        return []
    try:
        from triage import model  # lazy: pulls in torch/transformers on first use

        results, model_versions = model.predict(list(texts))
    except Exception as exc:  # any model failure -> people review (reliability.md)
        logger.warning("triage model layer failed: %s", type(exc).__name__)
        return [degrade(a, type(exc).__name__) for a in inline]
    return [_combine(a, r, model_versions) for a, r in zip(inline, results, strict=True)]

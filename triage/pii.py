"""Personal details in a message: find them (with spans) and redact them.

Young people sometimes post their number, school or Snapchat in a public forum,
or are asked for it by someone grooming them. Finding it routes the message to a
moderator (review); ``redact`` gives the moderator a one-click redaction.
Runs on the original text (not the normalised one) so spans are exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ahocorasick_rs

__all__ = ["PII_TYPES", "DEFAULT_REVIEW_TYPES", "find_pii", "redact"]

PII_TYPES = ("email", "phone", "url", "social_handle", "postcode", "address", "school")
DEFAULT_REVIEW_TYPES = PII_TYPES

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
# UK mobiles/landlines (07..., 01/02/03..., +44 / 0044) and other international
# numbers written with a leading + or 00. Separators: space, dash, dot, brackets.
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+|00)44\s?\(?0?\)?\s?(?:\d[\s\-.]?){9,10}"
    r"|0(?:\d[\s\-.]?){9,10}"
    r"|\(0\d{2,4}\)\s?\d{3,4}[\s\-]?\d{3,4}"
    r"|(?:\+|00)[1-9]\d{0,2}[\s\-.]?\(?\d{1,4}\)?(?:[\s\-.]?\d{2,4}){2,4}"
    r")(?!\w)"
)
_URL_SOCIAL = re.compile(
    r"\b(?:https?://)?(?:www\.)?(?:instagram\.com|instagr\.am|tiktok\.com|snapchat\.com|facebook\.com|fb\.com|"
    r"twitter\.com|x\.com|discord\.gg|discord\.com/users|t\.me|wa\.me|youtube\.com|twitch\.tv|reddit\.com/u(?:ser)?|"
    r"onlyfans\.com|kik\.me|linktr\.ee)/[^\s]+",
    re.IGNORECASE,
)
_URL = re.compile(r"\bhttps?://[^\s<>\"']+|\bwww\.[^\s<>\"']+\.[a-z]{2,}[^\s<>\"']*", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{1,29})(?<!\.)")
# The platforms a handle is given for; every _PLATFORM_HANDLE match starts with one of these
# as a whole word (_has_platform_word, below, relies on it).
_PLATFORM_WORDS = ("snap", "snapchat", "sc", "insta", "instagram", "ig", "tiktok", "tt", "discord", "kik", "whatsapp",
                   "telegram", "twitter", "twitch", "xbox", "psn", "gamertag")
# "add me on snap: jess_x", "my insta is jess.x", "sc - jess123"
_PLATFORM_HANDLE = re.compile(
    rf"\b(?:{'|'.join(re.escape(w) for w in sorted(_PLATFORM_WORDS, key=len, reverse=True))})\b"
    r"(?:\s+(?:name|id|user(?:name)?|handle|tag))?\s*(?:is|:|-|=|@|me at|me on)?\s*(?:is\s+)?@?"
    r"(?P<handle>(?=[A-Za-z0-9_.]*[0-9_.])[A-Za-z0-9_.]{3,30}|[A-Za-z][A-Za-z0-9_.]{2,29}(?=\s*$))",
    re.IGNORECASE,
)
_POSTCODE = re.compile(
    r"\b(?:GIR ?0AA|[A-PR-UWYZ](?:\d[A-HJKPSTUW\d]?|[A-HK-Y]\d[ABEHMNPRV-Y\d]?) ?\d[ABD-HJLNP-UW-Z]{2})\b",
    re.IGNORECASE,
)
# The words an address ends with; the pattern's group is built from these, and the
# whole-word guard below from every word they match ("flats?" is two; tests/triage/test_pii.py
# checks the two agree).
_STREET_ALTERNATIVES = (
    "road", "rd", "street", "st", "avenue", "ave", "lane", "ln", "close", "drive", "dr", "way", "court", "ct", "crescent",
    "cres", "gardens", "gdns", "place", "pl", "terrace", "grove", "square", "sq", "hill", "park", "rise", "mews", "walk",
    "row", "view", "green", "parade", "estate", "house", "flats?",
)
_STREET_WORDS = "(?:" + "|".join(_STREET_ALTERNATIVES) + ")"
_STREET_WORD_LIST = tuple(
    word for alternative in _STREET_ALTERNATIVES
    for word in ((alternative[:-2], alternative[:-1]) if alternative.endswith("s?") else (alternative,))
)
_ADDRESS = re.compile(
    rf"\b(?:(?:flat|apartment|apt)\s+\d+[a-z]?,?\s+)?\d{{1,4}}[a-z]?,?\s+(?:[A-Za-z'\-]+\s+){{1,3}}{_STREET_WORDS}\b",
    re.IGNORECASE,
)
_SCHOOL_GENERIC_CONTEXT = re.compile(r"\b(?:i go to|i'm at|im at|i attend|my school is|at school at)\s+$", re.IGNORECASE)


_DIGIT = re.compile(r"\d")


def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def _automaton(words: tuple[str, ...]) -> ahocorasick_rs.AhoCorasick:
    return ahocorasick_rs.AhoCorasick(words, matchkind=ahocorasick_rs.MatchKind.Standard)


_PLATFORM_AUTOMATON = _automaton(_PLATFORM_WORDS)
_STREET_AUTOMATON = _automaton(_STREET_WORD_LIST)


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what \w matches


def _has_whole_word(automaton: ahocorasick_rs.AhoCorasick, text: str) -> bool:
    """Whether one of the automaton's words stands as a whole word in `text`, in any case.
    Non-ASCII text always answers True (the pattern runs): there, case-insensitive matching
    (the Kelvin sign is a "k") and lower() (which may change a text's length) differ from
    this ASCII check."""
    if not text.isascii():
        return True
    lowered = text.lower()
    for _, start, end in automaton.find_matches_as_indexes(lowered, overlapping=True):
        if (start == 0 or not _word_char(lowered[start - 1])) and (end == len(lowered) or not _word_char(lowered[end])):
            return True
    return False


def _has_platform_word(text: str) -> bool:
    """The platform-handle pattern itself costs ~18 µs a message, spent trying its
    case-insensitive start at every word boundary, and substrings alone say little ("sc"
    in "school")."""
    return _has_whole_word(_PLATFORM_AUTOMATON, text)


def _may_hold_address(text: str) -> bool:
    """An address match holds a digit and ends with a street word as a whole word. The
    pattern cost ~27 µs on a 220-character message with a digit (twenty-eighth pass)."""
    return _has_digit(text) and _has_whole_word(_STREET_AUTOMATON, text)


# Every postcode match ends with this (the inward code: a digit and two letters), under
# the same flags, so where it is absent the whole pattern (~13 µs) cannot match.
_POSTCODE_TAIL = re.compile(r"\d[ABD-HJLNP-UW-Z]{2}\b", re.IGNORECASE)
# Every phone match starts with "+", "0" or "(" that no word character or "+" precedes
# (the pattern's look-behind, the same class).
_PHONE_LEAD = re.compile(r"[+0(]")
_WORD_OR_PLUS = re.compile(r"[\w+]")


def _may_start_phone(text: str) -> bool:
    """Whether a phone match could start somewhere in `text`: the pattern (~11 µs on a
    message with digits) then runs. Ids and times in a text hold zeros after digits or
    letters, which no number starts with."""
    for m in _PHONE_LEAD.finditer(text):
        i = m.start()
        if i == 0 or _WORD_OR_PLUS.match(text, i - 1) is None:
            return True
    return False


def _may_hold_url(text: str) -> bool:
    """A URL match holds "://" or, in any case, "www." (ASCII text; elsewhere ":" or "."
    as before, for case-insensitive matching beyond ASCII)."""
    if "://" in text:
        return True
    if text.isascii():
        return "www." in text.lower()
    return ":" in text or "." in text


# A test every match of a pattern passes (a character or word it must contain): most chat
# messages have no digit, "@", "/" or platform name, and then those patterns are not run
# (inline layer speed; tests/triage/test_pii.py checks the answers are the same as running
# every pattern).
_NEEDS: dict[re.Pattern[str], Callable[[str], bool]] = {
    _EMAIL: lambda text: "@" in text,
    _HANDLE: lambda text: "@" in text,
    _PHONE: _may_start_phone,
    _POSTCODE: lambda text: _POSTCODE_TAIL.search(text) is not None,
    _ADDRESS: _may_hold_address,
    _URL_SOCIAL: lambda text: "/" in text,
    _URL: _may_hold_url,
    _PLATFORM_HANDLE: _has_platform_word,
}


def _spans(pattern: re.Pattern[str], text: str, kind: str, group: str | int = 0) -> Iterable[dict[str, Any]]:
    need = _NEEDS.get(pattern)
    if need is not None and not need(text):
        return
    for m in pattern.finditer(text):
        s, e = m.span(group)
        if e > s:
            yield {"type": kind, "start": s, "end": e, "text": text[s:e]}


def _phone_ok(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    # Guard against dates, scores and years run together: a phone number has 10-15 digits.
    return 10 <= len(digits) <= 15


def find_pii(text: str, *, school_names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """All personal details in ``text``: ``[{type, start, end, text}]`` sorted by start.

    Overlaps are resolved by preferring the earlier, then the longer, match (a
    social link beats the bare URL inside it, an email beats the @handle inside it).
    """
    found: list[dict[str, Any]] = []
    found += _spans(_EMAIL, text, "email")
    found += [p for p in _spans(_PHONE, text, "phone") if _phone_ok(p["text"])]
    found += _spans(_URL_SOCIAL, text, "social_handle")
    found += _spans(_URL, text, "url")
    found += _spans(_HANDLE, text, "social_handle")
    found += _spans(_PLATFORM_HANDLE, text, "social_handle", "handle")
    found += _spans(_POSTCODE, text, "postcode")
    found += _spans(_ADDRESS, text, "address")
    if school_names:
        names = sorted({n.strip() for n in school_names if n and n.strip()}, key=len, reverse=True)
        if names:
            pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)
            found += _spans(pattern, text, "school")
    found.sort(key=lambda p: (p["start"], -(p["end"] - p["start"])))
    out: list[dict[str, Any]] = []
    for p in found:
        if out and p["start"] < out[-1]["end"]:
            continue
        out.append(p)
    return out


def redact(text: str, spans: Sequence[dict[str, Any]], *, template: str = "[{type}]") -> str:
    """Replace each span with ``[TYPE]`` (e.g. "[PHONE]"). Overlapping spans merge."""
    ordered = sorted(spans, key=lambda p: (p["start"], -p["end"]))
    pieces: list[str] = []
    pos = 0
    for p in ordered:
        start, end = int(p["start"]), int(p["end"])
        if end <= pos:
            continue
        start = max(start, pos)
        pieces.append(text[pos:start])
        pieces.append(template.format(type=str(p.get("type", "pii")).upper()))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)

"""Text normalisation for the inline triage layer.

Young people write "k1ll mysefl", "suuuicide", "unalive", "sewerslide", paste
text with zero-width joiners or Cyrillic look-alike letters (sometimes to dodge
filters). The lexicon is written against one canonical form, so every message is
normalised first. Every normalised character keeps the index of the original
character it came from, so that evidence spans shown to a clinician point into
the text the young person actually wrote.

Pure Python, no ML: this runs inside the message transaction.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Normalized", "normalize"]

# Characters that render as nothing but split words for a naive matcher.
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u034f"}

# Look-alike letters (Cyrillic, Greek, a few symbols) -> Latin. NFKC already folds
# fullwidth and mathematical alphanumerics; these survive NFKC.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "ӏ": "l", "к": "k", "м": "m", "т": "t", "н": "h",
        "в": "b", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ο": "o", "α": "a", "ε": "e", "ι": "i",
        "κ": "k", "ν": "v", "τ": "t", "ρ": "p", "υ": "u", "χ": "x", "ѵ": "v",
        "\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
        "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
    }
)

# Leetspeak, applied only inside a token that also contains letters, so phone
# numbers, dates and "2 hours" are untouched.
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
_LEET_CHARS = frozenset(_LEET)

# Whole-token slang, abbreviations and common misspellings -> canonical words.
# Keep these to tokens whose meaning is (nearly) unambiguous in a wellbeing chat.
_TOKEN_MAP: dict[str, str] = {
    # suicide / self-harm slang and euphemism
    "kms": "kill myself", "kmsl": "kill myself", "kys": "kill yourself",
    "unalive": "kill", "unalived": "killed", "unaliving": "killing", "unalives": "kills",
    "sewerslide": "suicide", "sewerslided": "suicide", "suicde": "suicide",
    "sucide": "suicide", "suicid": "suicide", "suiside": "suicide", "suacide": "suicide",
    "sucidal": "suicidal", "suicidel": "suicidal",
    "suisidal": "suicidal", "suacidal": "suicidal", "suicidle": "suicidal",
    "selfharm": "self harm", "selfharming": "self harming", "selfharmed": "self harmed",
    "ctb": "suicide", "od": "overdose", "od'd": "overdosed", "oded": "overdosed",
    "overdoes": "overdose", "overdosing": "overdosing",
    "ded": "dead", "kil": "kill", "killin": "killing", "cuttin": "cutting",
    "myslef": "myself", "mysefl": "myself", "myselfe": "myself", "meself": "myself",
    "maself": "myself", "miself": "myself", "myseld": "myself", "myselg": "myself",
    "pils": "pills", "tablests": "tablets", "tabs": "tablets",
    "noodz": "nudes", "nudez": "nudes", "nudies": "nudes", "pix": "pics",
    # everyday chat contractions
    "wanna": "want to", "gonna": "going to", "gunna": "going to", "gna": "going to",
    "gotta": "got to", "tryna": "trying to", "finna": "going to", "imma": "i'm going to",
    "ima": "i'm going to", "im": "i'm", "ive": "i've", "ill": "i'll", "id": "i'd",
    "dont": "don't", "cant": "can't", "wont": "won't", "didnt": "didn't",
    "doesnt": "doesn't", "isnt": "isn't", "wouldnt": "wouldn't", "couldnt": "couldn't",
    "shouldnt": "shouldn't", "wasnt": "wasn't", "aint": "ain't", "thats": "that's",
    "hes": "he's", "shes": "she's", "theyre": "they're", "theyll": "they'll",
    "u": "you", "ur": "your", "r": "are", "ppl": "people", "abt": "about",
    "rn": "right now", "tn": "tonight", "tonite": "tonight", "2nite": "tonight",
    "2night": "tonight", "tmrw": "tomorrow", "tmr": "tomorrow", "tmrrw": "tomorrow",
    "tomoz": "tomorrow", "2moro": "tomorrow", "2morrow": "tomorrow", "tomorow": "tomorrow",
    "2day": "today", "bc": "because", "cuz": "because", "coz": "because", "cos": "because",
    "bf": "boyfriend", "gf": "girlfriend", "mom": "mum", "mam": "mum", "mummy": "mum",
    "mother": "mum", "stepdad": "step dad", "stepmum": "step mum", "father": "dad",
    "daddy": "dad", "pls": "please", "plz": "please", "nd": "and", "n": "and",
    "ppls": "people", "evry1": "everyone", "every1": "everyone", "sum1": "someone",
    "some1": "someone", "no1": "no one", "noone": "no one", "any1": "anyone",
    "b4": "before", "l8r": "later", "nvm": "never mind", "skl": "school", "skool": "school",
}

# Words whose doubled letters are part of the spelling; any other token with a
# doubled letter is tried with that letter single ("diie" -> "die").
_RISK_WORDS = frozenset(
    "die dead death dying kill hang hanging pills suicide suicidal myself hurt end life alive "
    "overdose starve sick bleed bleeding jump gone goodbye tonight tomorrow abuse rape touch "
    "touched touching scared alone hopeless worthless cut cutting cuts blade razor knife rope "
    "bridge tablets nudes want going hate help".split()
)

_MULTI = [
    # Multi-word slang, matched after token mapping.
    (re.compile(r"\bsewer[\s\-_]*slide\b"), "suicide"),
    (re.compile(r"\bself[\s\-_]*harm"), "self harm"),
    (re.compile(r"\bun[\s\-_]alive"), "kill"),
    (re.compile(r"\bs[\s\-_.]*h\b(?=\s*(?:again|scars?|urges?|relapse|wounds?|clean|free|marks?))"), "self harm"),
    (re.compile(r"\bkermit\s+(?:sewer\s*slide|suicide)"), "suicide"),
    (re.compile(r"\bo\.\s?d\.?(?=\s|$)"), "overdose"),
    (re.compile(r"\bcommit(?:ting)?\s+die\b"), "kill myself"),
]

# "!" counts as a letter only between word characters ("d!e"), not as trailing punctuation.
_TOKEN_RE = re.compile(r"[a-z0-9@$']+(?:!+[a-z0-9@$']+)*")
_SPACES = re.compile(r"\s{2,}")


@dataclass(frozen=True, slots=True)
class Normalized:
    """Canonical text plus, for each of its characters, the original index."""

    text: str
    offsets: tuple[int, ...]
    original_length: int

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of ``text`` back onto the original string."""
        if end <= start:
            pos = self.offsets[start] if start < len(self.offsets) else self.original_length
            return pos, pos
        return self.offsets[start], self.offsets[end - 1] + 1


def _substitute(
    text: str, offs: list[int], pattern: re.Pattern[str], repl: Callable[[str], str | None]
) -> tuple[str, list[int]]:
    """Regex replace on `text` while carrying each character's original offset along.
    `repl` gets the matched text and returns its replacement, or None to keep it. Returns
    the same text and list when nothing is replaced. Works on slices of the string and the
    offsets, not on a list of characters: the inline layer runs this on every message with
    a token to fix, and the characters' list cost a third of normalize (twenty-second pass)."""
    out_t: list[str] = []
    out_o: list[int] = []
    pos = 0
    for m in pattern.finditer(text):
        matched = m.group(0)
        new = repl(matched)
        if new is None or new == matched:
            continue
        start, end = m.span()
        out_t.append(text[pos:start])
        out_o += offs[pos:start]
        # Every replacement character points at the replaced source token; the
        # last one at its last character so span ends stay inclusive of it.
        out_t.append(new)
        if new:
            out_o += [offs[start]] * (len(new) - 1)
            out_o.append(offs[end - 1])
        pos = end
    if not out_t:
        return text, offs
    out_t.append(text[pos:])
    out_o += offs[pos:]
    return "".join(out_t), out_o


def _substitute_tokens(text: str, offs: list[int], tokens: list[str], changes: dict[str, str]) -> tuple[str, list[int]]:
    """_substitute(text, offs, _TOKEN_RE, changes.get), given `tokens` =
    _TOKEN_RE.findall(text). A message has a few tokens to fix and dozens to keep: the
    pieces between the tokens come from one split (compiled code) and only the changed
    tokens take a turn of Python, where _substitute took one for every token (~30 µs on a
    220-character message with one token to fix; twenty-eighth pass)."""
    changed = [i for i, token in enumerate(tokens) if token in changes and changes[token] != token]
    if not changed:
        return text, offs
    gaps = _TOKEN_RE.split(text)  # what lies before, between and after the tokens
    # bounds[2 * i] is where token i starts, bounds[2 * i + 1] where it ends.
    bounds = list(itertools.accumulate(itertools.chain.from_iterable(zip(map(len, gaps), map(len, tokens), strict=False))))
    out_t: list[str] = []
    out_o: list[int] = []
    pos = 0
    for i in changed:
        start, end = bounds[2 * i], bounds[2 * i + 1]
        new = changes[tokens[i]]
        out_t.append(text[pos:start])
        out_o += offs[pos:start]
        out_t.append(new)
        if new:  # as in _substitute
            out_o += [offs[start]] * (len(new) - 1)
            out_o.append(offs[end - 1])
        pos = end
    out_t.append(text[pos:])
    out_o += offs[pos:]
    return "".join(out_t), out_o


_DOUBLE = re.compile(r"([a-z])\1")
_RUN_OF_THREE = re.compile(r"([a-z])\1{2,}")
_LEET_TABLE = str.maketrans(_LEET)
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _undouble(token: str) -> str:
    return _DOUBLE.sub(r"\1", token)


def _has_letter(token: str) -> bool:
    if token.isascii():
        return not _ASCII_LETTERS.isdisjoint(token)  # what isalpha() is in ASCII
    return any(c.isalpha() for c in token)


@lru_cache(maxsize=8192)
def _fix_token(token: str) -> str:
    """One token with leetspeak undone, long letter runs squeezed, slang and misspellings
    mapped. Cached with a bound: every message brings tokens never seen before (names,
    numbers, ids), which an unbounded cache would keep for the life of the process."""
    tok = token
    # Set tests, a translate table and compiled patterns: a message's new tokens (names,
    # ids, typos) each come here, and the per-character generators and re.sub's pattern
    # lookups were ~15 µs of a 32-character one (twenty-eighth pass).
    if not _LEET_CHARS.isdisjoint(tok) and _has_letter(tok):
        # Leet only inside tokens that have letters ("k1ll", "$uicide", "d!e").
        tok = tok.translate(_LEET_TABLE)
    tok = _RUN_OF_THREE.sub(r"\1\1", tok)
    if tok in _TOKEN_MAP:
        return _TOKEN_MAP[tok]
    if tok not in _RISK_WORDS:
        single = _undouble(tok)
        if single != tok and single in _RISK_WORDS:
            return single
        if single in _TOKEN_MAP:
            return _TOKEN_MAP[single]
    return tok


@lru_cache(maxsize=8192)
def _fold(ch: str) -> str:
    """One character folded ("" if invisible). Cached per distinct character: the
    inline layer runs on every chat message, and the unicodedata calls per character
    were half its time. Bounded: hostile text can hold any number of distinct code points."""
    if ch in _INVISIBLE or unicodedata.category(ch) == "Cf":
        return ""
    folded = unicodedata.normalize("NFKC", ch)
    folded = unicodedata.normalize("NFKD", folded)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return folded.translate(_HOMOGLYPHS).lower()


def _ascii_fold_table() -> dict[int, str] | None:
    """_fold for every ASCII character as one str.translate table, or None if some ASCII
    character does not fold to exactly one character (then there is no fast path)."""
    folded = {code: _fold(chr(code)) for code in range(128)}
    if any(len(f) != 1 for f in folded.values()):
        return None
    return {code: f for code, f in folded.items() if f != chr(code)}


_ASCII_FOLD = _ascii_fold_table()


# Tokens that _fix_token leaves as they are, learnt as messages arrive, so that only a
# message's unknown tokens cost a Python call each: calling it for every token was a third
# of the inline layer's time on everyday chat (docs/benchmarks.md, seventeenth pass).
# Bounded for the same reason as _fix_token's cache; once full, an unknown token just
# takes the test.
_STABLE_TOKENS: set[str] = set()
_STABLE_TOKENS_MAX = 20_000
# _fix_token gives a token of ASCII digits back as it is (no letter for leet or runs, no
# slang or misspelling) unless such a token is itself a key of the slang map.
_NUMBERS_STAY = not any(key.isdigit() for key in _TOKEN_MAP)
# Matches wherever any of the multi-word patterns would: when it finds nothing, none of
# them can replace anything, and the pass over the text for each one is skipped.
_MULTI_ANY = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in _MULTI))


def _token_changes(tokens: list[str]) -> dict[str, str]:
    """The `tokens` (of a text) that _fix_token changes, each with its replacement."""
    unknown = set(tokens).difference(_STABLE_TOKENS)
    if unknown and _NUMBERS_STAY:
        # Numbers (times, counts, ids) are new in nearly every message that has one, and
        # would fill the learnt set with what _fix_token never changes.
        unknown = {token for token in unknown if not token.isdigit()}
    if not unknown:
        return {}
    changes = {token: fixed for token in unknown if (fixed := _fix_token(token)) != token}
    if len(_STABLE_TOKENS) + len(unknown) - len(changes) <= _STABLE_TOKENS_MAX:
        _STABLE_TOKENS.update(unknown.difference(changes))
    return changes


def normalize(text: str) -> Normalized:
    """Return the canonical lower-case form of ``text`` with an offset map.

    Steps, each for a reason given above: drop invisible characters, NFKC and
    strip accents, fold homoglyphs, lower-case, undo leetspeak inside words,
    squeeze letters repeated three or more times, expand slang and fix common
    misspellings, squeeze whitespace.
    """
    if _ASCII_FOLD is not None and text.isascii():
        # Most messages: one character in, one out, so the offsets are the identity.
        folded, offs = text.translate(_ASCII_FOLD), list(range(len(text)))
    else:
        chars: list[str] = []
        offs = []
        for i, ch in enumerate(text):
            for c in _fold(ch):
                chars.append(c)
                offs.append(i)
        folded = "".join(chars)
    tokens = _TOKEN_RE.findall(folded)
    changes = _token_changes(tokens)
    if changes:
        folded, offs = _substitute_tokens(folded, offs, tokens, changes)
    if _MULTI_ANY.search(folded):
        for pattern, repl in _MULTI:
            folded, offs = _substitute(folded, offs, pattern, lambda _matched, r=repl: r)
    if _SPACES.search(folded):
        folded, offs = _substitute(folded, offs, _SPACES, lambda _matched: " ")
    return Normalized(text=folded, offsets=tuple(offs), original_length=len(text))

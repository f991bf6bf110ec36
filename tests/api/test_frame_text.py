"""config.realtime.frame_text (every frame a socket is sent) decodes to the same JSON as
the standard library's compact encoding with `default=str`, whichever encoder wrote it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from config.realtime import frame_text


def _reference(payload):
    return json.dumps(payload, separators=(",", ":"), default=str)


@dataclasses.dataclass
class _Point:
    x: int


def test_frames_decode_as_the_standard_librarys():
    aware = dt.datetime(2026, 12, 6, 19, 51, 41, 828636, tzinfo=dt.UTC)
    payloads = [
        {"type": "message.new", "body": "i can't sleep 😞 — ça va", "seq": 4, "risk": {"score": 0.42, "flags": {}}},
        {"type": "x", "at": aware, "day": aware.date(), "id": uuid.UUID(int=7), "point": _Point(1)},  # via str
        {"type": "x", "big": 2**70},  # beyond orjson's integers: the standard library writes it
        {"type": "x", "keys": {1: "int key"}},
        {"type": "x", "body": "lone \ud800 surrogate"},
        {"type": "x", "nothing": None, "yes": True, "list": [1.5, -0.0, 1e-7]},
    ]
    for payload in payloads:
        text = frame_text(payload)
        assert isinstance(text, str)
        assert json.loads(text) == json.loads(_reference(payload)), payload
    # Datetimes keep the text `str` gives them (a space, not ISO's "T").
    assert json.loads(frame_text({"at": aware}))["at"] == str(aware)


def test_a_non_finite_number_is_null_not_invalid_json():
    # The standard library wrote NaN / Infinity, which no browser's JSON.parse accepts.
    assert frame_text({"score": float("nan"), "max": float("inf")}) == '{"score":null,"max":null}'


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(st.text(), _JSON, max_size=6))
def test_any_payload_decodes_as_the_standard_librarys(payload):
    assert json.loads(frame_text(payload)) == json.loads(_reference(payload))

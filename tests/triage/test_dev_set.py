"""Second dev set: project-written messages in young people's style (not used for
training; tests/triage/dev_messages.jsonl, 45 none / 40 concern / 40 escalate).

The inline layer is checked always; the full engine only where trained artefacts
are present in TRIAGE_MODEL_DIR (skipped otherwise, e.g. TRIAGE_MODEL_DIR=/tmp/empty-models).
Thresholds are the issue's targets (escalate recall >= 0.95, <= 3% of none
escalated, >= 85% of concern flagged review or higher) plus the counsellor-noise
goal (none mostly allowed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triage import engine
from triage import model as triage_model

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / ".." / "shared" / "data" / "triage"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _figures(rows: list[dict], actions: list[str]) -> dict[str, float]:
    def share(label: str, ok: tuple[str, ...]) -> float:
        sel = [a for r, a in zip(rows, actions, strict=True) if r["label"] == label]
        return sum(a in ok for a in sel) / len(sel)

    return {
        "escalate_recall": share("escalate", ("escalate",)),
        "concern_flagged": share("concern", ("review", "escalate")),
        "none_escalated": share("none", ("escalate",)),
        "none_allowed": share("none", ("allow",)),
    }


def _check(fig: dict[str, float], *, none_allowed: float) -> None:
    assert fig["escalate_recall"] >= 0.95, fig
    assert fig["none_escalated"] <= 0.03, fig
    assert fig["concern_flagged"] >= 0.85, fig
    assert fig["none_allowed"] >= none_allowed, fig


def test_dev_set_is_balanced_and_unseen() -> None:
    rows = _rows(HERE / "dev_messages.jsonl")
    labels = [r["label"] for r in rows]
    assert {lab: labels.count(lab) for lab in set(labels)} == {"none": 45, "concern": 40, "escalate": 40}
    seed = json.loads((Path(engine.__file__).parent / "artefacts" / "risk_seed.json").read_text())["rows"]
    assert not {r["text"] for r in rows} & {r["text"] for r in seed}  # never trained on


def test_dev_set_inline() -> None:
    rows = _rows(HERE / "dev_messages.jsonl")
    _check(_figures(rows, [engine.assess_inline(r["text"]).action for r in rows]), none_allowed=0.95)


@pytest.fixture(scope="module")
def model_available() -> None:
    try:
        triage_model.load()
    except triage_model.ModelUnavailable:
        pytest.skip("no trained artefacts in TRIAGE_MODEL_DIR (run `python manage.py triage train`)")


@pytest.mark.parametrize("path", [HERE / "dev_messages.jsonl", SHARED / "chat_dev.jsonl"], ids=["dev_messages", "chat_dev"])
def test_full_engine_targets(model_available: None, path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.name} not present")
    rows = _rows(path)
    results = engine.assess_full([r["text"] for r in rows])
    assert not any(a.model_failed for a in results)
    # none mostly stays allow with the model layer on (was 15/25 on chat_dev with the 0.5 threshold)
    _check(_figures(rows, [a.action for a in results]), none_allowed=0.9)

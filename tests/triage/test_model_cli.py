"""Model layer, failure path, Detoxify offline loading and the CLI contract."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from triage import engine
from triage import model as triage_model

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "triage"


def _classify(lines: list[dict], *extra: str) -> list[dict]:
    src = io.StringIO("".join(json.dumps(x) + "\n" for x in lines))
    out = io.StringIO()
    import sys

    old = sys.stdin
    sys.stdin = src
    try:
        call_command("triage", "classify", *extra, stdout=out)
    finally:
        sys.stdin = old
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Detoxify-format checkpoint built here from 64 rows (seconds, not minutes)."""
    if not (DATA / "davidson_offensive_train.csv").exists():
        pytest.skip("shared Davidson data not present")
    from triage.training import train

    out = tmp_path_factory.mktemp("models")
    train(data_dir=DATA, out_dir=out, limit=64, log=lambda _m: None)
    return out


def test_detoxify_loads_local_checkpoint_offline(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from detoxify import Detoxify

    det = Detoxify(checkpoint=str(tiny_model_dir / "detoxify-minilm.ckpt"), huggingface_config_path=str(tiny_model_dir / "hf"))
    out = det.predict(["you are lovely", "shut up idiot"])
    assert set(out) == set(engine.TOXICITY_KEYS)
    assert all(0.0 <= v <= 1.0 for vals in out.values() for v in vals)
    cfg = json.loads((tiny_model_dir / "hf" / "config.json").read_text())
    assert len(cfg["id2label"]) == 6


def test_assess_full_with_model(tiny_model_dir: Path) -> None:
    with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir)):
        a, b = engine.assess_full(["i'm going to take all my pills tonight", "i love baking"])
    assert a.action == "escalate" and not a.model_failed
    assert set(a.toxicity) == set(engine.TOXICITY_KEYS)
    assert "toxicity_model" in a.versions and "lexicon" in a.versions
    assert b.toxicity is not None


def test_each_precision_loads_and_scores_alike(tiny_model_dir: Path) -> None:
    """fp32, bf16 and int8 load through the same path; bf16 must not move a verdict."""
    texts = ["i'm going to take all my pills tonight", "i love baking", "shut up idiot", "exams are stressing me out"]
    scores = {}
    for precision in ("fp32", "bf16", "int8"):
        with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir), TRIAGE_MODEL_PRECISION=precision):
            results, versions = triage_model.predict(texts)
        assert versions["precision"] == precision
        scores[precision] = [r["toxicity"]["toxicity"] for r in results]
    assert all(abs(a - b) < 0.02 for a, b in zip(scores["fp32"], scores["bf16"], strict=True))
    assert all(abs(a - b) < 0.1 for a, b in zip(scores["fp32"], scores["int8"], strict=True))


def test_onnx_runtime_scores_as_torch(tiny_model_dir: Path) -> None:
    """ONNX Runtime runs the same fp32 network: same scores (to float error) and verdicts,
    exported once per checkpoint and recorded in the versions."""
    texts = ["i'm going to take all my pills tonight", "i love baking", "shut up idiot", "exams are stressing me out " * 12]
    results = {}
    for runtime in ("torch", "onnx"):
        with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir), TRIAGE_MODEL_PRECISION="fp32", TRIAGE_MODEL_RUNTIME=runtime):
            results[runtime], versions = triage_model.predict(texts)
            full = engine.assess_full(texts)
        assert versions["runtime"].startswith("onnxruntime-" if runtime == "onnx" else "torch")
        assert all(a.versions["runtime"] == versions["runtime"] for a in full)
        results[runtime + "_actions"] = [a.action for a in full]
    for a, b in zip(results["torch"], results["onnx"], strict=True):
        for group in ("toxicity", "risk"):
            assert all(abs(a[group][k] - b[group][k]) < 1e-4 for k in a[group])
    assert results["torch_actions"] == results["onnx_actions"]
    exports = [p for p in (tiny_model_dir / "onnx").glob("*.onnx") if "-int8" not in p.name]  # int8 has its copy
    assert len(exports) == 1 and not list((tiny_model_dir / "onnx").glob("*.tmp"))


def test_int8_runs_on_onnx_runtime_with_per_channel_weights(tiny_model_dir: Path) -> None:
    """int8 runs on ONNX Runtime, on a quantised copy of the fp32 export made once beside it;
    its scores stay near fp32's, and it says so in every assessment's versions."""
    texts = ["i'm going to take all my pills tonight", "i love baking", "shut up idiot", "exams are stressing me out " * 12]
    with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir), TRIAGE_MODEL_PRECISION="fp32", TRIAGE_MODEL_RUNTIME="onnx"):
        fp32, _ = triage_model.predict(texts)
    with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir), TRIAGE_MODEL_PRECISION="int8"):
        int8, versions = triage_model.predict(texts)
        full = engine.assess_full(texts)
    assert versions["precision"] == "int8" and versions["runtime"].startswith("onnxruntime-")
    assert all(a.versions["precision"] == "int8" for a in full)
    assert full[0].action == "escalate"  # the inline layer's verdict stands whatever the model says
    for a, b in zip(fp32, int8, strict=True):
        for group in ("toxicity", "risk"):
            assert all(abs(a[group][k] - b[group][k]) < 0.15 for k in a[group])
    onnx_dir = tiny_model_dir / "onnx"
    assert len(list(onnx_dir.glob("*-int8pc*.onnx"))) == 1 and not list(onnx_dir.glob("*.tmp"))
    import onnx

    (quantised,) = onnx_dir.glob("*-int8pc*.onnx")
    ops = {node.op_type for node in onnx.load(str(quantised)).graph.node}
    assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops


# ~190 tokens of everyday text: past the network's 128, so a text that ends after it is
# read in more than one window.
LONG_EVERYDAY = "today was alright, i went to school and then walked the dog before tea with my mum. " * 10


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_long_text_is_read_to_its_end(tiny_model_dir: Path, runtime: str) -> None:
    """A text longer than the network's 128 tokens is read in overlapping windows and each
    score is its highest over them. Before, only the first 128 tokens were read, so two long
    texts that differ only after them got the same scores, whatever the ending said."""
    worrying = LONG_EVERYDAY + "i'm going to take all my pills tonight, shut up you stupid idiot"
    harmless = LONG_EVERYDAY + "i love baking"
    with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir), TRIAGE_MODEL_PRECISION="fp32", TRIAGE_MODEL_RUNTIME=runtime):
        _logits, _feats, sample = triage_model.forward(triage_model.load(), ["i love baking", worrying])
        results, _ = triage_model.predict([worrying, harmless, "i love baking"])
        alone, _ = triage_model.predict(["i love baking"])
    assert list(sample[:2]) == [0, 1] and len(sample) >= 3 and set(sample[2:]) == {1}
    assert results[0] != results[1]
    # A short text's scores do not depend on the long ones beside it (to padding's float error).
    for group in ("toxicity", "risk"):
        assert results[2][group] == pytest.approx(alone[0][group], abs=1e-5)


def test_windows_out_of_order_fail_the_batch(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scores are never paired with the wrong text: windows that do not come grouped by text,
    in order, fail the batch, and its assessments go to people."""
    real = triage_model.forward

    def scrambled(bundle, texts, **kwargs):
        logits, feats, sample = real(bundle, texts, **kwargs)
        return logits, feats, sample[::-1].copy()

    monkeypatch.setattr(triage_model, "forward", scrambled)
    with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir)):
        with pytest.raises(RuntimeError):
            triage_model.predict(["i love baking", "shut up idiot"])
        assert all(a.model_failed and a.action == "review" for a in engine.assess_full(["i love baking", "hi"]))


def test_windows_most_alarming() -> None:
    """Each threshold sees its highest value over a text's windows: p(escalate) the highest
    window's, p(escalate) + p(concern) the highest window's sum; one window stays as it is."""
    import numpy as np

    names = ["none", "concern", "escalate"]
    risk = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.6, 0.3, 0.1]])
    out = triage_model._windows_most_alarming(risk, np.array([0, 3]), names)
    assert out[0] == pytest.approx([0.2, 0.4, 0.4]) and list(out[1]) == list(risk[3])
    assert out.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert triage_model._windows_most_alarming(risk, np.arange(4), names) is risk


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_onnx_runtime_falls_back_to_torch(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    """A failed export or session never costs the model layer: torch runs it (int8 with
    torch's own dynamic quantisation)."""
    def broken(*args, **kwargs):
        raise RuntimeError("no onnx here")

    monkeypatch.setattr(triage_model, "_onnx_session", broken)
    triage_model._load.cache_clear()
    try:
        with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir), TRIAGE_MODEL_PRECISION=precision, TRIAGE_MODEL_RUNTIME="onnx"):
            results, versions = triage_model.predict(["i love baking"])
            network = triage_model.load()["detoxify"].model
    finally:
        triage_model._load.cache_clear()
    assert versions["runtime"] == "torch" and versions["precision"] == precision and len(results) == 1
    import torch

    quantised = any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in network.modules())
    assert quantised is (precision == "int8")


def test_runtime_setting() -> None:
    with override_settings(TRIAGE_MODEL_RUNTIME="onnx"):
        assert triage_model.model_runtime("fp32") == "onnx"
        assert triage_model.model_runtime("int8") == "onnx"
        assert triage_model.model_runtime("bf16") == "torch"  # oneDNN's bf16 kernels are torch's
    with override_settings(TRIAGE_MODEL_RUNTIME="auto"):
        assert triage_model.model_runtime("int8") == "onnx"  # onnxruntime is a dependency
    with override_settings(TRIAGE_MODEL_RUNTIME="torch"):
        assert triage_model.model_runtime("fp32") == "torch"
        assert triage_model.model_runtime("int8") == "torch"
    with override_settings(TRIAGE_MODEL_RUNTIME="tensorrt"), pytest.raises(triage_model.ModelUnavailable):
        triage_model.model_runtime("fp32")


def test_precision_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(TRIAGE_MODEL_PRECISION="int8"):
        assert triage_model.model_precision() == "int8"
    with override_settings(TRIAGE_MODEL_PRECISION="fp64"), pytest.raises(triage_model.ModelUnavailable):
        triage_model.model_precision()
    with override_settings(TRIAGE_MODEL_PRECISION="auto"):
        assert triage_model.model_precision() == triage_model.auto_precision(Path("/proc/cpuinfo").read_text())
    with override_settings(TRIAGE_MODEL_PRECISION="auto", TRIAGE_MODEL_RUNTIME="torch"):
        assert triage_model.model_precision() in ("fp32", "bf16")  # never torch's per-tensor int8


@pytest.mark.parametrize(("vendor", "flags", "faster"), [
    ("AuthenticAMD", "fpu avx2 avx512f avx512_bf16 avx512_vnni", True),  # EPYC: ~2x fp32 (measured)
    ("GenuineIntel", "fpu avx2 avx512f avx512_bf16 avx512_vnni", False),  # no AMX: 0.6x fp32 (measured)
    ("GenuineIntel", "fpu avx512f avx512_bf16 amx_bf16 amx_tile", True),
    ("AuthenticAMD", "fpu avx2 avx512f", False),  # bf16 would be emulated
    ("GenuineIntel", "fpu avx2", False),
])
def test_auto_precision_is_bf16_only_where_it_was_measured_faster(vendor: str, flags: str, faster: bool) -> None:
    cpuinfo = f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: {flags}\n"
    assert triage_model.bf16_is_faster(cpuinfo) is faster


@pytest.mark.parametrize(("vendor", "flags", "onnx", "expected"), [
    ("AuthenticAMD", "fpu avx2 avx512f avx512_bf16 avx512_vnni", True, "int8"),  # Zen 4: 156-191 vs bf16 99-111 msg/s
    ("AuthenticAMD", "fpu avx2 avx512f avx512_bf16 avx512_vnni", False, "bf16"),  # no torch per-tensor int8 by default
    ("GenuineIntel", "fpu avx2 avx512f avx512_bf16 avx512_vnni", True, "int8"),  # no AMX: VNNI int8 over fp32
    ("GenuineIntel", "fpu avx512f avx512_bf16 avx512_vnni amx_bf16 amx_int8 amx_tile", True, "bf16"),  # AMX: bf16
    ("GenuineIntel", "fpu avx2 avx_vnni", True, "int8"),
    ("AuthenticAMD", "fpu avx2", True, "int8"),  # AVX2 only (Zen 3): 7-bit weights, 1.4-1.7x fp32
    ("GenuineIntel", "fpu avx2", True, "int8"),
    ("AuthenticAMD", "fpu avx2", False, "fp32"),  # torch's int8 is never chosen
    ("GenuineIntel", "fpu avx2 avx512f avx512bw", True, "fp32"),  # AVX-512 without VNNI: not measured
    ("GenuineIntel", "fpu sse4_2", True, "fp32"),
])
def test_auto_precision_is_the_fastest_measured_that_passed_the_gates(vendor: str, flags: str, onnx: bool, expected: str) -> None:
    cpuinfo = f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: {flags}\n"
    assert triage_model.auto_precision(cpuinfo, onnx=onnx) == expected


def test_failure_path_routes_to_review(tmp_path: Path) -> None:
    with override_settings(TRIAGE_MODEL_DIR=str(tmp_path / "missing")):
        with pytest.raises(triage_model.ModelUnavailable):
            triage_model.predict(["hi"])
        ok, risky = engine.assess_full(["i love baking", "i want to kill myself tonight"])
    assert ok.model_failed and ok.action == "review" and ok.level == "none"
    assert ok.to_dict()["degraded"] is True and ok.toxicity is None
    assert risky.action == "escalate" and risky.model_failed  # inline result stands


def test_risk_overrides_toxicity(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_predict(texts: list[str]):
        tox = dict.fromkeys(engine.TOXICITY_KEYS, 0.99)
        return [{"toxicity": tox, "risk": {"none": 1.0, "concern": 0.0, "escalate": 0.0}} for _ in texts], {"toxicity_model": "fake"}

    monkeypatch.setattr(triage_model, "predict", fake_predict)
    toxic_risky, toxic_only = engine.assess_full(["f*** this s*** i'm going to kill myself tonight", "you absolute idiot"])
    assert toxic_risky.action == "escalate"
    assert toxic_only.action == "review" and toxic_only.level == "none"


def test_model_can_raise_but_not_lower(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_predict(texts: list[str]):
        tox = dict.fromkeys(engine.TOXICITY_KEYS, 0.0)
        return [{"toxicity": tox, "risk": {"none": 0.1, "concern": 0.8, "escalate": 0.1}} for _ in texts], {}

    monkeypatch.setattr(triage_model, "predict", fake_predict)
    quiet, crisis = engine.assess_full(["everything feels grey lately", "i've just taken an overdose"])
    assert quiet.level == "moderate" and quiet.action == "review"
    assert crisis.action == "escalate"


def test_cli_classify_contract(tmp_path: Path) -> None:
    lines = [{"id": "a", "text": "i'm going to jump off the bridge tonight"}, {"id": 7, "text": "i could eat a horse"}, {"id": "c", "text": ""}]
    with override_settings(TRIAGE_MODEL_DIR=str(tmp_path / "none")):
        recs = _classify(lines)
    assert [r["id"] for r in recs] == ["a", 7, "c"]
    for r in recs:
        assert set(r) == {"id", "risk", "toxicity", "pii", "action", "versions", "degraded"}
        assert set(r["risk"]) == {"level", "score", "categories", "flags", "evidence"}
    assert recs[0]["action"] == "escalate" and recs[0]["risk"]["level"] == "imminent"
    assert recs[1]["risk"]["level"] == "none"
    assert recs[1]["action"] == "review" and recs[1]["degraded"]  # model missing -> people review


def test_cli_classify_files(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    dst = tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": 1, "text": "my friend says she's going to end her life tomorrow"}) + "\n")
    call_command("triage", "classify", "--input", str(src), "--output", str(dst), "--inline-only")
    (rec,) = [json.loads(x) for x in dst.read_text().splitlines()]
    assert rec["id"] == 1 and rec["action"] == "escalate" and "third_party_risk" in rec["risk"]["categories"]


def test_cli_evaluate_chat_dev() -> None:
    path = DATA / "chat_dev.jsonl"
    if not path.exists():
        pytest.skip("shared chat_dev.jsonl not present")
    out = io.StringIO()
    call_command("triage", "evaluate", "--data", str(path), "--inline-only", stdout=out)
    text = out.getvalue()
    assert "recall escalate" in text and "none escalated" in text and "confusion" in text
    recall = float(text.split("recall escalate")[1].split("=")[1].split()[0])
    assert recall >= 0.95


def test_cli_evaluate_toxicity_auc(tiny_model_dir: Path) -> None:
    with override_settings(TRIAGE_MODEL_DIR=str(tiny_model_dir)):
        out = io.StringIO()
        small = tiny_model_dir / "small.csv"
        rows = (DATA / "davidson_offensive_train.csv").read_text().splitlines()[:300]
        small.write_text("\n".join(rows) + "\n")
        call_command("triage", "evaluate", "--data", str(small), "--split", "all", stdout=out)
    assert "ROC AUC" in out.getvalue()

"""Model layer: Detoxify toxicity + a risk head, one MiniLM forward pass per batch.

Everything heavy (torch, transformers, detoxify, numpy) is imported inside
functions and the loaded model is cached per process, so importing this module
is cheap and Django start-up never pays for it. Runs in Celery workers on the
``triage`` queue (and in the CLI).

Artefacts (built by ``python manage.py triage train``, git-ignored) live in
``settings.TRIAGE_MODEL_DIR`` (default ``<BASE_DIR>/var/models``):

    detoxify-minilm.ckpt   Detoxify-format checkpoint {"config", "state_dict"}
    hf/                    config.json (6 labels, id2label) + tokenizer files, so
                           Detoxify loads offline (huggingface_config_path)
    toxicity_tfidf.joblib  word+char TF-IDF logistic heads blended with Detoxify's logits
    risk_head.npz          logistic head over mean-pooled hidden states (layers listed)
    manifest.json          versions, seeds, data hashes, metrics
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

__all__ = ["ModelUnavailable", "model_dir", "predict", "load", "TOXICITY_CLASSES"]

TOXICITY_CLASSES = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
RISK_CLASSES = ("none", "concern", "escalate")
CKPT_NAME = "detoxify-minilm.ckpt"
TFIDF_NAME = "toxicity_tfidf.joblib"
_lock = threading.Lock()


class ModelUnavailable(RuntimeError):
    """The model layer cannot run (artefacts missing or failed to load)."""


def model_dir() -> Path:
    configured = getattr(settings, "TRIAGE_MODEL_DIR", None)
    if configured:
        return Path(configured)
    return Path(settings.BASE_DIR) / "var" / "models"


@cache
def _load(directory: str, detoxify_model: str, precision: str) -> dict[str, Any]:
    import numpy as np
    import torch
    from detoxify import Detoxify

    threads = getattr(settings, "TRIAGE_TORCH_THREADS", None)
    if threads:
        torch.set_num_threads(int(threads))
    d = Path(directory)
    manifest_path = d / "manifest.json"
    if detoxify_model != "local":
        # Official checkpoints (original / unbiased / multilingual ...) download on
        # first use; only for deployments with network access. No risk head then.
        det = Detoxify(model_type=detoxify_model)
        return {"detoxify": det, "head": None, "versions": {"toxicity_model": f"detoxify-{detoxify_model}"}}
    ckpt = d / CKPT_NAME
    if not ckpt.exists() or not (d / "hf" / "config.json").exists() or not manifest_path.exists():
        raise ModelUnavailable(f"no trained artefacts in {d}; run `python manage.py triage train`")
    det = Detoxify(checkpoint=str(ckpt), huggingface_config_path=str(d / "hf"))
    det.model.eval()
    if precision == "bf16":
        det.model.to(torch.bfloat16)
    elif precision == "int8":
        det.model = torch.ao.quantization.quantize_dynamic(det.model, {torch.nn.Linear}, dtype=torch.qint8)
    manifest = json.loads(manifest_path.read_text())
    head = None
    if (d / "risk_head.npz").exists():
        z = np.load(d / "risk_head.npz")
        head = {
            "coef": z["coef"], "intercept": z["intercept"], "classes": [str(c) for c in z["classes"]],
            "layers": [int(x) for x in z["layers"]] if "layers" in z.files else [-1],
            "normalize": "layers" in z.files,
        }
    tfidf = None
    if (d / TFIDF_NAME).exists():
        import joblib

        tfidf = joblib.load(d / TFIDF_NAME)
        # Detoxify key -> row of the tf-idf logit matrix it is blended with.
        tfidf["key_row"] = {key: row for row, (_head, keys) in enumerate(tfidf["heads"]) for key in keys}
    versions = {
        "precision": precision,
        "toxicity_model": manifest.get("toxicity_model", "unknown"),
        "risk_model": manifest.get("risk_model", "none") if head else "none",
    }
    if tfidf is not None:
        versions["toxicity_model"] += "+" + str(manifest.get("toxicity_blend", "tfidf"))
    return {"detoxify": det, "head": head, "tfidf": tfidf, "versions": versions}


def model_precision() -> str:
    """TRIAGE_MODEL_PRECISION: fp32, bf16, int8 or auto (default). auto = bf16 where the
    CPU computes bfloat16 natively (AVX512-BF16 or AMX): about twice the speed of fp32 with
    the same verdicts (docs/triage.md); fp32 elsewhere, where bf16 would be emulated and
    slower. int8 (dynamic quantisation) is faster still but moves the scores more; opt-in."""
    configured = str(getattr(settings, "TRIAGE_MODEL_PRECISION", "auto")).lower()
    if configured in ("fp32", "bf16", "int8"):
        return configured
    if configured != "auto":
        raise ModelUnavailable(f"TRIAGE_MODEL_PRECISION must be fp32, bf16, int8 or auto, not {configured!r}")
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if (" avx512_bf16" in flags or " amx_bf16" in flags) else "fp32"


def load() -> dict[str, Any]:
    """Load (once per process) and return the model bundle; raises ModelUnavailable."""
    try:
        return _load(str(model_dir()), getattr(settings, "TRIAGE_DETOXIFY_MODEL", "local"), model_precision())
    except ModelUnavailable:
        raise
    except Exception as exc:  # corrupt checkpoint, missing package, download refused
        raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc


def pooled_features(hidden_states: Any, attention_mask: Any, layers: tuple[int, ...] | list[int], *, normalize: bool = True) -> Any:
    """Risk-head features: mean-pooled (L2-normalised) hidden states of `layers`, concatenated.

    normalize=False reproduces heads trained before the layer list was stored
    (risk_head.npz without `layers`: raw mean of the last layer)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden_states[0].dtype)
    parts = []
    for layer in layers:
        pooled = (hidden_states[int(layer)] * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        parts.append(torch.nn.functional.normalize(pooled, dim=1) if normalize else pooled)
    return torch.cat(parts, dim=1).numpy()


def forward(bundle: dict[str, Any], texts: list[str], *, max_length: int = 128) -> tuple[Any, Any, Any]:
    """One batched pass: (toxicity logits [n,6], risk features [n,h*k], tf-idf logits or None)."""
    import torch

    det = bundle["detoxify"]
    enc = det.tokenizer(texts, return_tensors="pt", truncation=True, padding=True, max_length=max_length)
    head = bundle.get("head")
    layers = head["layers"] if head else (-1,)
    with torch.inference_mode():
        out = det.model(**enc, output_hidden_states=True)
        hidden = [h.float() for h in out.hidden_states]  # bf16 -> fp32 for the numpy risk head
        feats = pooled_features(hidden, enc["attention_mask"], layers, normalize=head["normalize"] if head else True)
        logits = out.logits.float().numpy()
    tfidf = bundle.get("tfidf")
    tf_logits = None
    if tfidf is not None:
        x = tfidf["features"].transform(texts)
        tf_logits = x @ tfidf["coef"].T + tfidf["intercept"]
    return logits, feats, tf_logits


def _sigmoid(x: Any) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: Any) -> Any:
    import numpy as np

    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def predict(texts: list[str], *, batch_size: int | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Toxicity (Detoxify keys) and risk probabilities for each text, in order.

    Texts are sorted by length and batched so padding stays small. Raises
    ModelUnavailable when artefacts are missing; callers degrade to review.
    """
    import numpy as np

    bundle = load()
    det = bundle["detoxify"]
    class_names = list(det.class_names)
    batch_size = batch_size or int(getattr(settings, "TRIAGE_MODEL_BATCH_SIZE", 32))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[dict[str, Any] | None] = [None] * len(texts)
    head = bundle["head"]
    with _lock:  # one forward at a time per process: torch threads are shared
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            batch = [texts[i] or " " for i in idx]
            logits, feats, tf_logits = forward(bundle, batch)
            if tf_logits is not None:
                w = float(bundle["tfidf"].get("weight", 0.5))
                for j, name in enumerate(class_names):
                    row_ = bundle["tfidf"]["key_row"].get(name)
                    if row_ is not None:
                        logits[:, j] = (1 - w) * logits[:, j] + w * tf_logits[:, row_]
            probs = _sigmoid(logits)
            if head is not None:
                risk = _softmax(feats @ head["coef"].T + head["intercept"])
                names = head["classes"]
            else:
                risk = np.tile(np.array([[1.0, 0.0, 0.0]]), (len(idx), 1))
                names = list(RISK_CLASSES)
            for row, i in enumerate(idx):
                tox = {name: float(probs[row, j]) for j, name in enumerate(class_names)}
                results[i] = {
                    "toxicity": {k2: tox.get(k2, 0.0) for k2 in TOXICITY_CLASSES},
                    "risk": {n: float(risk[row, j]) for j, n in enumerate(names)},
                }
    return [r for r in results if r is not None], dict(bundle["versions"])

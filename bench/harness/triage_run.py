"""Triage throughput on one core (run pinned by the harness): inline layer, model layer
(inline + MiniLM Detoxify + risk head, `triage.engine.assess_full`) at batch 1, 8 and 32, on
the deployed runtime (ONNX Runtime where installed) and on torch,
(the Celery task gets what triage/dispatch.py coalesced: one id under light load, up to 32
under heavy load), and Detoxify's BERT-base architecture in the
same process (randomly initialised: weights cannot be downloaded here; speed only).
Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
for var in ("DATABASE_URL", "REDIS_URL"):
    os.environ.pop(var, None)

from bench.harness.loadgen import CRISIS, FILLER  # noqa: E402

TEXTS = [
    "exams are stressing me out, any tips for sleeping?",
    "my friends left me out again today and i feel rubbish",
    "you are such an idiot lol",
    "add me on snap jess_x22 or text 07700 900123",
    "kids at school push me around every day and nobody does anything about it, i hate it there",
    *CRISIS,
]


def rate(fn, items, min_s: float = 3.0) -> float:
    n, start = 0, time.perf_counter()
    while True:
        for x in items:
            fn(x)
            n += 1
        el = time.perf_counter() - start
        if el >= min_s:
            return n / el


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    import django

    django.setup()
    from triage.engine import assess_full, assess_inline

    texts = [(t + " " + FILLER)[: 40 + (i * 37) % 360] for i, t in enumerate(TEXTS * (args.n // len(TEXTS) + 1))][: args.n]
    out = {"texts": len(texts), "affinity": sorted(os.sched_getaffinity(0))}
    for t in texts[:200]:
        assess_inline(t)
    out["inline_msgs_per_s"] = round(rate(assess_inline, texts), 1)
    import torch

    torch.set_num_threads(1)
    out["torch_threads"] = torch.get_num_threads()
    from triage import model as triage_model

    try:
        triage_model.load()
    except triage_model.ModelUnavailable as exc:
        out["model_error"] = str(exc)
        print(json.dumps(out))
        return
    sample = texts[:256]
    batches = [sample[i : i + 32] for i in range(0, len(sample), 32)]
    from django.test import override_settings

    def model_rates(prefix: str) -> None:
        versions = assess_full(texts[:32])[0].versions
        out[f"{prefix}_runtime"] = versions.get("runtime")
        out[f"{prefix}_precision"] = versions.get("precision")
        out[f"{prefix}_b1_msgs_per_s"] = round(rate(lambda t: assess_full([t]), sample), 1)
        out[f"{prefix}_b8_msgs_per_s"] = round(8 * rate(assess_full, [sample[i : i + 8] for i in range(0, len(sample), 8)]), 1)
        out[f"{prefix}_b32_msgs_per_s"] = round(32 * rate(assess_full, batches), 1)

    model_rates("model")  # as deployed (TRIAGE_MODEL_RUNTIME=auto)
    if out["model_runtime"] != "torch":
        with override_settings(TRIAGE_MODEL_RUNTIME="torch"):
            model_rates("model_torch")  # the same network on torch, for comparison
    from transformers import BertConfig, BertForSequenceClassification

    tok = triage_model.load()["detoxify"].tokenizer
    bert = BertForSequenceClassification(BertConfig(num_labels=6)).eval()
    with torch.inference_mode():
        def run(batch):
            bert(**tok(batch, return_tensors="pt", padding=True, truncation=True))

        run(sample[:32])
        out["bert_b1_msgs_per_s"] = round(rate(lambda t: run([t]), sample[:64], 3.0), 1)
        out["bert_b32_msgs_per_s"] = round(32 * rate(run, batches[:2], 5.0), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

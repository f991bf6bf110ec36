"""``python manage.py triage classify|evaluate|train`` - the stable triage CLI.

classify: JSON lines in ({"id", "text"}), one record per line out, same id, same
order, full engine (inline + model layer; degraded records if the model layer is
unavailable). evaluate: recall per label / none escalated / confusion matrix for
labelled JSONL, ROC AUC for the Davidson toxicity CSV. train: rebuilds the
model artefacts reproducibly.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _data_dir() -> Path:
    configured = getattr(settings, "TRIAGE_DATA_DIR", None)
    return Path(configured) if configured else (Path(settings.BASE_DIR) / ".." / "shared" / "data" / "triage").resolve()


class Command(BaseCommand):
    help = "Triage engine: classify, evaluate, train."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="sub", required=True)
        c = sub.add_parser("classify", help="JSONL {id,text} in -> JSONL records out")
        c.add_argument("--input", default="-")
        c.add_argument("--output", default="-")
        c.add_argument("--batch-size", type=int, default=256)
        c.add_argument("--inline-only", action="store_true", help="skip the model layer")
        e = sub.add_parser("evaluate", help="labelled JSONL or the Davidson CSV")
        e.add_argument("--data", required=True)
        e.add_argument("--inline-only", action="store_true")
        e.add_argument("--split", choices=["heldout", "all"], default="heldout", help="Davidson rows to score")
        e.add_argument("--show-errors", action="store_true")
        t = sub.add_parser("train", help="rebuild model artefacts into TRIAGE_MODEL_DIR")
        t.add_argument("--data-dir", default=None)
        t.add_argument("--out", default=None)
        t.add_argument("--epochs", type=int, default=1)
        t.add_argument("--all", action="store_true", help="train on every Davidson row (no held-out split)")
        t.add_argument("--limit", type=int, default=None, help="first N rows only (smoke tests)")
        t.add_argument("--threads", type=int, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, f"_{opts['sub']}")(opts)

    # --- classify ---------------------------------------------------------------
    def _classify(self, opts: dict[str, Any]) -> None:
        from triage.engine import assess_full, assess_inline

        src = sys.stdin if opts["input"] == "-" else open(opts["input"], encoding="utf-8")
        dst = self.stdout if opts["output"] == "-" else open(opts["output"], "w", encoding="utf-8")
        try:
            batch: list[dict[str, Any]] = []

            def flush() -> None:
                texts = [str(r.get("text") or "") for r in batch]
                results = [assess_inline(t) for t in texts] if opts["inline_only"] else assess_full(texts)
                for r, a in zip(batch, results, strict=True):
                    dst.write(json.dumps({"id": r.get("id"), **a.to_dict()}, ensure_ascii=False) + "\n")
                batch.clear()

            for n, line in enumerate(src, 1):
                if not line.strip():
                    continue
                try:
                    batch.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise CommandError(f"line {n}: invalid JSON ({exc.msg})") from exc
                if len(batch) >= opts["batch_size"]:
                    flush()
            if batch:
                flush()
        finally:
            if src is not sys.stdin:
                src.close()
            if dst is not self.stdout:
                dst.close()

    # --- evaluate ---------------------------------------------------------------
    def _evaluate(self, opts: dict[str, Any]) -> None:
        path = Path(opts["data"])
        if path.suffix == ".csv":
            self._evaluate_toxicity(path, opts)
        else:
            self._evaluate_risk(path, opts)

    def _evaluate_risk(self, path: Path, opts: dict[str, Any]) -> None:
        from triage.engine import assess_full, assess_inline

        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        texts = [r["text"] for r in rows]
        t0 = time.perf_counter()
        results = [assess_inline(t) for t in texts] if opts["inline_only"] else assess_full(texts)
        elapsed = time.perf_counter() - t0
        confusion: Counter[tuple[str, str]] = Counter()
        for r, a in zip(rows, results, strict=True):
            confusion[(r["label"], a.action)] += 1
        labels = ["escalate", "concern", "none"]
        actions = ["escalate", "review", "allow"]
        hit = {"escalate": ("escalate",), "concern": ("review", "escalate"), "none": ("allow",)}
        out = self.stdout.write
        out(f"{path.name}: {len(rows)} messages, {'inline only' if opts['inline_only'] else 'full engine'}, {elapsed:.2f}s")
        for label in labels:
            total = sum(confusion[(label, a)] for a in actions)
            if total:
                got = sum(confusion[(label, a)] for a in hit[label])
                name = {"escalate": "escalated", "concern": "flagged review or higher", "none": "allowed"}[label]
                out(f"recall {label:8s} ({name}): {got}/{total} = {got / total:.3f}")
        total_none = sum(confusion[("none", a)] for a in actions)
        if total_none:
            out(f"none escalated: {confusion[('none', 'escalate')]}/{total_none} = {confusion[('none', 'escalate')] / total_none:.3f}")
        out("confusion (rows = label, columns = action):")
        out(f"{'':10s}" + "".join(f"{a:>10s}" for a in actions))
        for label in labels:
            out(f"{label:10s}" + "".join(f"{confusion[(label, a)]:>10d}" for a in actions))
        if opts["show_errors"]:
            for r, a in zip(rows, results, strict=True):
                if a.action not in hit[r["label"]]:
                    out(f"  {r['label']} -> {a.action} ({a.level}): {r['text']}")

    def _evaluate_toxicity(self, path: Path, opts: dict[str, Any]) -> None:
        from sklearn.metrics import roc_auc_score

        from triage import model as triage_model
        from triage.training import davidson_rows, is_heldout

        rows = davidson_rows(path)
        if opts["split"] == "heldout":
            rows = [r for r in rows if is_heldout(r["id"])]
        t0 = time.perf_counter()
        try:
            results, versions = triage_model.predict([r["tweet"] for r in rows], batch_size=64)
        except triage_model.ModelUnavailable as exc:
            raise CommandError(str(exc)) from exc
        y = [r["class"] in ("0", "1") for r in rows]
        score = [res["toxicity"]["toxicity"] for res in results]
        self.stdout.write(f"{path.name}: {len(rows)} rows ({opts['split']} split), model {versions.get('toxicity_model')}, {time.perf_counter() - t0:.1f}s")
        self.stdout.write(f"toxicity ROC AUC (toxic = class 0 or 1): {roc_auc_score(y, score):.4f}")
        hate = [r["class"] == "0" for r in rows]
        if any(hate):
            ia = [res["toxicity"]["identity_attack"] for res in results]
            self.stdout.write(f"identity_attack ROC AUC (hate = class 0): {roc_auc_score(hate, ia):.4f}")

    # --- train ------------------------------------------------------------------
    def _train(self, opts: dict[str, Any]) -> None:
        from triage.model import model_dir
        from triage.training import train

        data_dir = Path(opts["data_dir"]) if opts["data_dir"] else _data_dir()
        if not (data_dir / "davidson_offensive_train.csv").exists():
            raise CommandError(f"training data not found in {data_dir}")
        out = Path(opts["out"]) if opts["out"] else model_dir()
        manifest = train(
            data_dir=data_dir, out_dir=out, epochs=opts["epochs"], use_all=opts["all"],
            limit=opts["limit"], threads=opts["threads"], log=self.stdout.write,
        )
        self.stdout.write(json.dumps(manifest, indent=2))
        self._prepare_runtime(out)

    def _prepare_runtime(self, out: Path) -> None:
        """Export the ONNX Runtime copy now, so no worker pays for it at its first start."""
        from triage.model import _load, model_precision, model_runtime

        precision = model_precision()
        runtime = model_runtime(precision)
        if runtime == "onnx":
            bundle = _load(str(out), "local", precision, runtime)
            self.stdout.write(f"runtime: {bundle['versions']['runtime']}")

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
    onnx/<key>.onnx        the same fp32 network exported for ONNX Runtime (written on
                           first load when the runtime is onnx; key = checkpoint + layers)
    onnx/<key>-int8pc.onnx its int8 copy (precision int8 on ONNX Runtime; per-channel weights)

Runtime (TRIAGE_MODEL_RUNTIME): the fp32 forward pass runs on ONNX Runtime when it is
installed (auto), otherwise on torch. Same weights, same outputs to ~1e-5; ONNX Runtime's
fused CPU kernels cost 1.2-1.7x less CPU per message at the batch sizes the worker sees
(docs/triage.md), and the model worker shares its cores with everything else. int8 (what
`auto` means on CPUs with VNNI and no AMX, and on AVX2-only ones) runs on ONNX Runtime too,
on a quantised copy of that export.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

__all__ = ["ModelUnavailable", "model_dir", "predict", "load", "warm", "run_in_idle_thread", "TOXICITY_CLASSES"]

TOXICITY_CLASSES = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
RISK_CLASSES = ("none", "concern", "escalate")
CKPT_NAME = "detoxify-minilm.ckpt"
TFIDF_NAME = "toxicity_tfidf.joblib"
_lock = threading.Lock()
logger = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """The model layer cannot run (artefacts missing or failed to load)."""


def model_dir() -> Path:
    configured = getattr(settings, "TRIAGE_MODEL_DIR", None)
    if configured:
        return Path(configured)
    return Path(settings.BASE_DIR) / "var" / "models"


@cache
def _load(directory: str, detoxify_model: str, precision: str, runtime: str = "torch") -> dict[str, Any]:
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
    elif precision == "int8" and runtime != "onnx":
        det.model = _torch_int8(det.model)
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
    bundle = {"detoxify": det, "head": head, "tfidf": tfidf, "versions": versions}
    if runtime == "onnx":
        # Never worse than torch: if the export or the session fails, torch runs it.
        try:
            bundle["onnx"] = _onnx_session(det.model, d, layers=tuple(head["layers"]) if head else (-1,),
                                           int8=precision == "int8")
            versions["runtime"] = "onnxruntime-" + bundle["onnx"].version
        except Exception as exc:
            logger.warning("triage model: ONNX Runtime unavailable (%s: %s); running on torch", type(exc).__name__, exc)
            if precision == "int8":
                det.model = _torch_int8(det.model)
    versions.setdefault("runtime", "torch")
    return bundle


def _torch_int8(network: Any) -> Any:
    """PyTorch dynamic quantisation of the Linear layers (weights per tensor): int8's
    fallback when ONNX Runtime cannot run it; it moves the risk probabilities about twice as
    far as ONNX Runtime's per-channel weights (docs/triage.md)."""
    import torch

    return torch.ao.quantization.quantize_dynamic(network, {torch.nn.Linear}, dtype=torch.qint8)


_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _OnnxForward:
    """An ONNX Runtime session for the network: logits, then the hidden states of the layers
    it was exported with (in that order)."""

    def __init__(self, session: Any, version: str) -> None:
        self.session, self.version = session, version
        self.inputs = [i.name for i in session.get_inputs()]

    def run(self, enc: dict[str, Any]) -> tuple[Any, list[Any]]:
        import numpy as np

        outputs = self.session.run(None, {name: np.asarray(enc[name], dtype=np.int64) for name in self.inputs})
        return outputs[0], outputs[1:]


def _onnx_session(network: Any, directory: Path, *, layers: tuple[int, ...], int8: bool = False) -> _OnnxForward:
    """Export `network` (fp32, eval) to ONNX once per checkpoint and open a session on it;
    with `int8`, on a dynamically quantised copy of that export (_onnx_int8).

    The file is keyed by the checkpoint (size, mtime), the manifest, the layers and the
    torch version, so retraining never runs a stale export. Written to a temporary name
    and renamed, so workers starting together never read half a file."""
    import hashlib

    import onnxruntime as ort
    import torch

    ckpt = (directory / CKPT_NAME).stat()
    key = hashlib.sha256(
        f"{ckpt.st_size}:{ckpt.st_mtime_ns}:{(directory / 'manifest.json').read_text()}:{layers}:{torch.__version__}".encode()
    ).hexdigest()[:16]
    path = directory / "onnx" / f"minilm-{key}.onnx"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        _onnx_export(network, path, layers=layers)
    if int8:
        path = _onnx_int8(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    # Idle pool threads must not spin: the worker shares cores with the ASGI server.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _OnnxForward(session, ort.__version__)


def _onnx_export(network: Any, path: Path, *, layers: tuple[int, ...]) -> None:
    import torch

    class _Outputs(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> tuple[Any, ...]:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                             output_hidden_states=True)
            return (out.logits, *(out.hidden_states[int(layer)] for layer in layers))

    example = torch.ones((2, 8), dtype=torch.long)

    def export(tmp: str) -> None:
        with torch.no_grad():
            torch.onnx.export(
                _Outputs(network).eval(), (example, example, torch.zeros_like(example)), tmp,
                input_names=list(_ONNX_INPUTS), output_names=["logits", *(f"hidden_{layer}" for layer in layers)],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in _ONNX_INPUTS},
                opset_version=17, dynamo=False,
            )

    _write_then_rename(path, export)


def _write_then_rename(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp)` writes a file at a temporary name beside `path`, which is then renamed
    into place: workers starting together never read half a file, and a failed write leaves
    nothing behind."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the other artefacts are not
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _onnx_int8(fp32_path: Path) -> Path:
    """The int8 copy of an fp32 export (made once, beside it): ONNX Runtime's dynamic
    quantisation of every weight MatMul, weights int8 **per output channel**, activations
    quantised per tensor at run time; the pooler and classifier (Gemm) stay fp32.

    Per-channel weights halve how far int8 moves the risk probabilities compared with per
    tensor (max 0.14 against 0.34 on 3,678 dev-set, Davidson, Counsel Chat, Reddit and harness
    texts; torch's per-tensor int8 moved them up to 0.51) at the same speed (docs/triage.md).
    On CPUs without VNNI, activations times weights can saturate int16 in MLAS's u8s8
    kernels, so weights keep 7 bits there (`reduce_range`) and the file's name says which."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reduce_range = not _cpu_has_vnni()
    path = fp32_path.with_name(fp32_path.stem + ("-int8pc-rr" if reduce_range else "-int8pc") + ".onnx")
    if path.exists():
        return path

    def quantise(tmp: str) -> None:
        # The quantiser reports every node it skips (INFO) and advises pre-processing
        # (WARNING) on the root logger: once per checkpoint, but hundreds of lines in a
        # worker's log. Quiet for the call; a failure still raises.
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(str(fp32_path), tmp, per_channel=True, reduce_range=reduce_range,
                             weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        finally:
            logging.disable(previous)

    _write_then_rename(path, quantise)
    return path


# CPU flags for int8 dot-product instructions (AMX's tiles include them).
_VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@cache
def _cpu_has_vnni() -> bool:
    return bool((_VNNI_FLAGS | {"amx_int8"}) & cpu_flags(_cpuinfo()))


def model_precision() -> str:
    """TRIAGE_MODEL_PRECISION: fp32, bf16, int8 or auto (default); auto = auto_precision()
    for this CPU. bf16 gives fp32's verdicts; int8 (ONNX Runtime, per-channel weights)
    moves the risk probabilities by up to ~0.14, so verdicts near a threshold can change
    either way, with the same recall on every labelled set here (docs/triage.md)."""
    configured = str(getattr(settings, "TRIAGE_MODEL_PRECISION", "auto")).lower()
    if configured in ("fp32", "bf16", "int8"):
        return configured
    if configured != "auto":
        raise ModelUnavailable(f"TRIAGE_MODEL_PRECISION must be fp32, bf16, int8 or auto, not {configured!r}")
    return _cpu_auto_precision(onnx=model_runtime("int8") == "onnx")


def auto_precision(cpuinfo: str, *, onnx: bool = True) -> str:
    """The precision `auto` means on the CPU that /proc/cpuinfo describes: the fastest one
    measured there whose verdicts passed the triage gates (docs/triage.md).

    - AMX: bf16 (oneDNN's tile kernels: 195-253 msg/s at 8-32 texts per call, seventh pass);
    - VNNI without AMX: int8 on ONNX Runtime (AMD Zen 4: 156-191 msg/s at 8-32 per call
      against bf16's 99-111; Intel VNNI Xeons ran int8 1.45-1.65x fp32), only where ONNX
      Runtime runs it (`onnx`): torch's per-tensor int8 moves the scores too far;
    - AVX2 without AVX-512 or VNNI: int8 on ONNX Runtime too, its weights in 7 bits so MLAS's
      u8s8 kernels cannot saturate (_onnx_int8): AMD Zen 3, 1.4-1.7x fp32 (56-67 / 80-90 /
      92-109 against 41-48 / 53-55 / 64-67 msg/s at 1 / 8 / 32 per call), the gates as fp32's
      (docs/triage.md, thirty-fourth pass of issue 7). AVX-512 without VNNI (its own u8s8
      kernels) was not measured and keeps fp32;
    - else bf16 where bf16_is_faster, fp32 elsewhere."""
    flags = cpu_flags(cpuinfo)
    if onnx and "amx_bf16" not in flags and (flags & _VNNI_FLAGS or ("avx2" in flags and "avx512f" not in flags)):
        return "int8"
    return "bf16" if bf16_is_faster(cpuinfo) else "fp32"


def bf16_is_faster(cpuinfo: str) -> bool:
    """Whether bf16 beats fp32 for the model layer on the CPU that /proc/cpuinfo describes.

    Measured (docs/benchmarks.md, docs/triage.md): on AMD EPYCs with AVX512-BF16 bf16 ran
    about twice as fast as fp32; on an Intel Xeon (Emerald Rapids in a VM that hides AMX)
    with AVX512-BF16 but no AMX it ran at 0.6x fp32 on ONNX Runtime (oneDNN's bf16 kernels
    there are not the AMX ones). AMX (amx_bf16) is what Intel's bf16 kernels are built for;
    without AVX512-BF16 bf16 is emulated and slower everywhere."""
    flags = cpu_flags(cpuinfo)
    if "amx_bf16" in flags:
        return True
    return "avx512_bf16" in flags and "AuthenticAMD" in cpuinfo


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first CPU that /proc/cpuinfo text lists."""
    return set(next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "").split())


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


# load() runs for every predict() call: what the machine has is read once per process,
# not from /proc and the import path on every batch.
@cache
def _cpu_auto_precision(*, onnx: bool) -> str:
    return auto_precision(_cpuinfo(), onnx=onnx)


@cache
def _onnx_installed() -> bool:
    import importlib.util

    return bool(importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"))


def model_runtime(precision: str) -> str:
    """TRIAGE_MODEL_RUNTIME: torch, onnx or auto (default). auto = onnx for fp32 and int8
    when onnxruntime is installed (int8: per-channel weights, faster and closer to fp32 than
    torch's per-tensor int8); bf16 stays on torch (oneDNN's bf16 kernels are torch's)."""
    configured = str(getattr(settings, "TRIAGE_MODEL_RUNTIME", "auto")).lower()
    if configured not in ("auto", "torch", "onnx"):
        raise ModelUnavailable(f"TRIAGE_MODEL_RUNTIME must be torch, onnx or auto, not {configured!r}")
    if precision == "bf16" or configured == "torch":
        return "torch"
    if configured == "onnx":
        return "onnx"
    return "onnx" if _onnx_installed() else "torch"


def load() -> dict[str, Any]:
    """Load (once per process) and return the model bundle; raises ModelUnavailable."""
    try:
        precision = model_precision()
        return _load(str(model_dir()), getattr(settings, "TRIAGE_DETOXIFY_MODEL", "local"), precision,
                     model_runtime(precision))
    except ModelUnavailable:
        raise
    except Exception as exc:  # corrupt checkpoint, missing package, download refused
        raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc


def pooled_features(hidden_states: Any, attention_mask: Any, layers: tuple[int, ...] | list[int], *, normalize: bool = True) -> Any:
    """Risk-head features: mean-pooled (L2-normalised) hidden states of `layers`, concatenated.

    normalize=False reproduces heads trained before the layer list was stored
    (risk_head.npz without `layers`: raw mean of the last layer)."""
    import torch

    parts = []
    for layer in layers:
        hidden = hidden_states[int(layer)]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        parts.append(torch.nn.functional.normalize(pooled, dim=1) if normalize else pooled)
    return torch.cat(parts, dim=1).numpy()


# The network reads MAX_TOKENS tokens at a time ([CLS] and [SEP] included). A longer text
# (messages and posts may run to 4,000 characters, ~1,000 tokens) is read in windows of that
# size, each overlapping the one before by WINDOW_OVERLAP tokens so that a sentence cut at a
# window's edge is whole in the next; reading only the first window left a disclosure at the
# end of a long message to the inline layer alone (docs/triage.md, "Long texts").
MAX_TOKENS = 128
WINDOW_OVERLAP = 32


def forward(bundle: dict[str, Any], texts: list[str], *, max_length: int = MAX_TOKENS) -> tuple[Any, Any, Any]:
    """One batched pass over every window of `texts`: (toxicity logits [w,6], risk features
    [w,h*k], the index in `texts` of each window's text [w]). A text's windows are
    consecutive and in order; a text of at most `max_length` tokens is one window."""
    import torch

    det = bundle["detoxify"]
    head = bundle.get("head")
    layers = head["layers"] if head else (-1,)
    normalize = head["normalize"] if head else True
    session = bundle.get("onnx")
    windows = {"truncation": True, "padding": True, "max_length": max_length, "stride": WINDOW_OVERLAP,
               "return_overflowing_tokens": True}
    if session is not None:
        enc = det.tokenizer(texts, return_tensors="np", **windows)
        sample = enc.pop("overflow_to_sample_mapping")
        logits, hidden = session.run(enc)
        # The exported outputs are exactly `layers`, in order: index them by position.
        feats = pooled_features([torch.from_numpy(h) for h in hidden], torch.from_numpy(enc["attention_mask"]),
                                list(range(len(hidden))), normalize=normalize)
        return logits, feats, sample
    # Lengths padded to a multiple of 8: torch's CPU kernels (oneDNN) build and cache a
    # kernel per input shape, and chat texts of every length made nearly every batch a new
    # shape, built afresh (a stream of fresh batches ran 8-15% faster padded, bf16; scores
    # move by < 0.004 and no verdict changed on 770 dev-set, Davidson and harness texts).
    # The padding is masked, so it adds no information.
    enc = det.tokenizer(texts, return_tensors="pt", pad_to_multiple_of=8, **windows)
    sample = enc.pop("overflow_to_sample_mapping").numpy()
    with torch.inference_mode():
        out = det.model(**enc, output_hidden_states=True)
        # bf16 -> fp32 for the numpy risk head: only the layers it reads (all seven were
        # converted before, ~3% of the model worker's CPU).
        hidden = {int(layer): out.hidden_states[int(layer)].float() for layer in layers}
        feats = pooled_features(hidden, enc["attention_mask"], layers, normalize=normalize)
        logits = out.logits.float().numpy()
    return logits, feats, sample


def _tfidf_logits(bundle: dict[str, Any], texts: list[str]) -> Any:
    tfidf = bundle.get("tfidf")
    if tfidf is None:
        return None
    x = tfidf["features"].transform(texts)
    return x @ tfidf["coef"].T + tfidf["intercept"]


def _windows_most_alarming(risk: Any, starts: Any, names: list[str]) -> Any:
    """One risk distribution per text from its windows' ([w, classes] -> [texts, classes];
    `starts`: each text's first window). A one-window text keeps its own. For a longer one
    each threshold the engine applies sees its highest value over the windows: p(escalate)
    is the highest window's, p(escalate) + p(concern) the highest window's sum, and p(none)
    what is left. A worrying passage is not diluted by the everyday text around it."""
    import numpy as np

    if len(starts) == len(risk):
        return risk
    ends = [*starts[1:], len(risk)]
    e, c, n = names.index("escalate"), names.index("concern"), names.index("none")  # RISK_CLASSES
    out = np.zeros((len(starts), len(names)), dtype=risk.dtype)
    for row, (a, b) in enumerate(zip(starts, ends, strict=True)):
        if b - a == 1:
            out[row] = risk[a]
            continue
        escalate = risk[a:b, e].max()
        alarm = (risk[a:b, e] + risk[a:b, c]).max()  # >= escalate: each window's sum is >= its p(escalate)
        out[row, e], out[row, c], out[row, n] = escalate, alarm - escalate, max(0.0, 1.0 - alarm)
    return out


def _sigmoid(x: Any) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: Any) -> Any:
    import numpy as np

    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


# Set in a `triage`-queue worker by run_in_idle_thread(): one thread of the process,
# under SCHED_IDLE, that loads the model and runs every forward pass.
_idle_runner: Any = None


def run_in_idle_thread() -> bool:
    """From now on, load the model and run every forward pass of this process in one thread
    under SCHED_IDLE, so it computes only on cycles nothing else on the box wants and is
    preempted at once when the ASGI server, PostgreSQL or Redis need the core. Only that
    thread: the caller's database work (claims, results, escalations) stays at its own
    priority, so a starved forward pass never holds a lock anyone waits on (the model runs
    outside any transaction, reassess.assessments_apply_model). Scheduling policy is per
    thread on Linux, and threads ONNX Runtime or torch start from it inherit it.
    Returns False (and changes nothing) where SCHED_IDLE cannot be set."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    global _idle_runner

    def set_idle() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0 = the calling thread

    runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triage-model-idle")
    try:
        runner.submit(set_idle).result()
    except (OSError, AttributeError) as exc:  # not permitted, not Linux
        runner.shutdown()
        logger.warning("triage model: SCHED_IDLE not applied (%s); the forward pass runs in the task's thread", exc)
        return False
    _idle_runner = runner
    return True


def _in_runner(fn: Any, *args: Any, **kwargs: Any) -> Any:
    runner = _idle_runner
    if runner is None:
        return fn(*args, **kwargs)
    return runner.submit(fn, *args, **kwargs).result()


def warm() -> dict[str, Any]:
    """load(), where forward passes will run (the idle thread, if there is one)."""
    return _in_runner(load)


def predict(texts: list[str], *, batch_size: int | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Toxicity (Detoxify keys) and risk probabilities for each text, in order.

    Texts are sorted by length and batched so padding stays small. Raises
    ModelUnavailable when artefacts are missing; callers degrade to review.
    """
    return _in_runner(_predict, texts, batch_size=batch_size)


def _predict(texts: list[str], *, batch_size: int | None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    import numpy as np

    bundle = load()
    det = bundle["detoxify"]
    class_names = list(det.class_names)
    # 8, not 32: texts are sorted by length first, and smaller forward passes pad less;
    # on the worker's batches (<= 32 mixed-length chat messages) 8 costs 15-30% less CPU
    # per text than 32 on torch and ONNX Runtime alike (docs/triage.md).
    batch_size = batch_size or int(getattr(settings, "TRIAGE_MODEL_BATCH_SIZE", 8))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[dict[str, Any] | None] = [None] * len(texts)
    head = bundle["head"]
    # The tf-idf blend is computed once for the whole call, not per forward pass: a
    # transform call has a fixed cost (the FeatureUnion's machinery) of the order of
    # the per-text cost, and at 8 texts per pass it was ~13% of the model layer's CPU.
    ordered = [texts[i] or " " for i in order]
    all_tf = _tfidf_logits(bundle, ordered)
    with _lock:  # one forward at a time per process: torch threads are shared
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            logits, feats, sample = forward(bundle, ordered[k : k + batch_size])
            starts = np.flatnonzero(np.r_[True, sample[1:] != sample[:-1]])  # each text's first window
            if not np.array_equal(sample[starts], np.arange(len(idx))):
                # Windows not grouped by text, in order: never pair scores with the wrong
                # text; the batch fails and its assessments go to people (degrade).
                raise RuntimeError("tokenizer returned windows out of order")
            # Toxicity: each class's highest logit over the text's windows (the blend and the
            # sigmoid below are increasing, so that is its highest probability).
            logits = np.maximum.reduceat(logits, starts, axis=0)
            tf_logits = None if all_tf is None else all_tf[k : k + batch_size]
            if tf_logits is not None:
                w = float(bundle["tfidf"].get("weight", 0.5))
                for j, name in enumerate(class_names):
                    row_ = bundle["tfidf"]["key_row"].get(name)
                    if row_ is not None:
                        logits[:, j] = (1 - w) * logits[:, j] + w * tf_logits[:, row_]
            probs = _sigmoid(logits)
            if head is not None:
                names = head["classes"]
                risk = _windows_most_alarming(_softmax(feats @ head["coef"].T + head["intercept"]), starts, names)
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

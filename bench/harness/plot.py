"""PNG plots: delivery latency percentiles over time and throughput (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def latency_throughput(path: Path, title: str, series: list[dict], *, marks: list[tuple[float, str]] = (),
                       threshold_ms: float | None = None, extra: dict[str, list[dict]] | None = None,
                       cpu: list[dict] | None = None) -> None:
    rows = 3 if cpu else 2
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows + 0.6), sharex=True)
    ax = axes[0]
    t = [p["t"] for p in series]
    for key, style in (("p50", "-"), ("p99", "-"), ("max", ":")):
        ax.plot(t, [p[key] for p in series], style, label=f"delivery {key}", linewidth=1.2)
    for name, s in (extra or {}).items():
        ax.plot([p["t"] for p in s], [p["p99"] for p in s], "--", label=f"{name} p99", linewidth=1)
    if threshold_ms:
        ax.axhline(threshold_ms, color="red", linewidth=0.8, linestyle="--", label=f"{threshold_ms:g} ms")
    ax.set_yscale("log")
    ax.set_ylabel("ms (from scheduled send)")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax = axes[1]
    ax.plot(t, [p["offered"] for p in series], label="offered msg/s", linewidth=1)
    ax.plot(t, [p["delivered"] for p in series], label="delivered msg/s", linewidth=1)
    ax.set_ylabel("messages/s")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    if cpu:
        ax = axes[2]
        for core in sorted(k for k in cpu[0]["cores"] if k != "cpu"):
            ax.plot([c["t"] for c in cpu], [c["cores"][core] * 100 for c in cpu], label=f"{core} busy %", linewidth=1)
        ax.set_ylim(0, 105)
        ax.set_ylabel("% busy")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    for x, label in marks:
        for a in axes:
            a.axvline(x, color="grey", linewidth=0.8, linestyle=":")
        axes[0].annotate(label, (x, axes[0].get_ylim()[1]), fontsize=7, va="top", rotation=90)
    axes[-1].set_xlabel("seconds since load start")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def bars(path: Path, title: str, values: dict[str, float], ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(list(values), list(values.values()))
    for i, v in enumerate(values.values()):
        ax.annotate(f"{v:.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)

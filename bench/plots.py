"""The report's plots from a results JSON: docs/bench-fanout.png and docs/bench-memory.png.

Usage: python plots.py RESULTS.json DOCS_DIR (run with the `peers` venv, which has matplotlib).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from report import idle_point, median_range

MAIN = ("ms2", "ms1", "sio", "wsb", "node")


def fanout(data: dict, path: Path) -> None:
    keys = [k for k in MAIN if k in data["results"]]
    labels = [data["targets"][k]["label"] for k in keys]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for i, (name, label) in enumerate(
        (("fanout-100", "100 receivers"), ("fanout-1000", "1,000 receivers"))
    ):
        mids, errs = [], [[], []]
        for key in keys:
            rates = [r["rate"] for r in data["results"][key].get(name, {}).get("runs", [])]
            mid, lo, hi = median_range(rates)
            mids.append(mid)
            errs[0].append(mid - lo)
            errs[1].append(hi - mid)
        xs = [x + (i - 0.5) * width for x in range(len(keys))]
        bars = ax.bar(xs, mids, width, yerr=errs, capsize=3, label=label)
        ax.bar_label(bars, labels=[f"{m / 1000:.0f}k" for m in mids], fontsize=8, padding=2)
    ax.set_xticks(range(len(keys)), labels, fontsize=9)
    ax.set_ylabel("deliveries per second")
    ax.set_title("Fan-out: 100 messages of ~100 bytes to one room (median, min-max)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def memory(data: dict, path: Path) -> None:
    keys = [k for k in (*MAIN, "floor") if k in data["results"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.38
    for i, count in enumerate((1000, 10000)):
        values = [idle_point(data["results"][k].get("idle"), count) for k in keys]
        xs = [x + (i - 0.5) * width for x in range(len(keys))]
        bars = left.bar(xs, values, width, label=f"{count:,} connections")
        left.bar_label(bars, labels=[f"{v:.0f}" for v in values], fontsize=8, padding=2)
    left.set_xticks(range(len(keys)), [data["targets"][k]["label"] for k in keys], fontsize=8)
    left.tick_params(axis="x", labelrotation=15)
    left.set_ylabel("server RSS per idle connection (KiB)")
    left.set_title("Idle connections")
    left.legend()
    for key in keys:
        slow = data["results"][key].get("slow")
        if not slow or "rss" not in slow:
            continue
        ts = [t for t, _ in slow["rss"]]
        right.plot(ts, [kib / 1024 for _, kib in slow["rss"]], label=data["targets"][key]["label"])
        right.axvline(slow["phases"]["reading"]["t_end"], color="grey", linewidth=0.5)
    right.set_xlabel("seconds (grey line: one receiver stops reading)")
    right.set_ylabel("server RSS (MiB)")
    right.set_title("Slow consumer: server RSS over time")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    docs = Path(sys.argv[2])
    fanout(data, docs / "bench-fanout.png")
    memory(data, docs / "bench-memory.png")


if __name__ == "__main__":
    main()

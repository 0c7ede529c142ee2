"""PNG plots of bench results (matplotlib: .venv/bin/pip install -r bench/requirements.lock).

Each function takes rows the benches already print and writes one picture;
nothing here measures.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("plots need matplotlib: .venv/bin/pip install --require-hashes "
                         "-r bench/requirements.lock") from None
    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def latency_vs_concurrency(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """p50 and p99 latency against connections, one line pair per server.

    ``rows``: ``{"server", "connections", "p50_ms", "p99_ms", "requests_s"}``.
    """
    plt = _pyplot()
    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(11, 4.2))
    for server in dict.fromkeys(row["server"] for row in rows):
        mine = sorted((r for r in rows if r["server"] == server), key=lambda r: r["connections"])
        x = [r["connections"] for r in mine]
        line = latency.plot(x, [r["p50_ms"] for r in mine], marker="o", label=f"{server} p50")
        latency.plot(x, [r["p99_ms"] for r in mine], marker="^", linestyle="--",
                     color=line[0].get_color(), label=f"{server} p99")
        throughput.plot(x, [r["requests_s"] for r in mine], marker="o", label=server)
    ticks = sorted({row["connections"] for row in rows})
    for axes in (latency, throughput):
        _log2_axis(axes, ticks)
        axes.set_xlabel("concurrent connections")
        axes.grid(True, alpha=0.3)
    latency.set_yscale("log")
    throughput.set_yscale("log")  # the HTTP floor is tens of times the servers
    latency.set_ylabel("latency (ms)")
    throughput.set_ylabel("requests/s")
    latency.legend(fontsize=7)
    throughput.legend(fontsize=7)
    figure.suptitle("one-row predictions on loopback (wrk)")
    return _save(figure, plt, path)


def throughput_vs_batch(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Requests/s and p99 against the server's max batch size.

    ``rows``: ``{"max_batch_size", "requests_s", "p99_ms"}``.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    ordered = sorted(rows, key=lambda r: r["max_batch_size"])
    x = [r["max_batch_size"] for r in ordered]
    axes.plot(x, [r["requests_s"] for r in ordered], marker="o", color="tab:blue")
    _log2_axis(axes, x)
    axes.set_xlabel("max_batch_size")
    axes.set_ylabel("requests/s", color="tab:blue")
    p99 = axes.twinx()
    p99.plot(x, [r["p99_ms"] for r in ordered], marker="^", linestyle="--", color="tab:red")
    p99.set_ylabel("p99 (ms)", color="tab:red")
    axes.grid(True, alpha=0.3)
    figure.suptitle("swarmai server, 64 connections, by batch size")
    return _save(figure, plt, path)


def timelines(runs: Mapping[str, Sequence[tuple[float, str]]], path: Path) -> Path:
    """Where each command's seconds go: one bar per command, split at its progress lines.

    ``runs``: command -> ``[(seconds since it began, progress line), ...]``, the last
    entry its exit.  Steps wide enough for it are labelled with their line.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(11, 0.7 + 0.75 * len(runs)))
    colours = plt.get_cmap("tab20").colors
    longest = max(steps[-1][0] for steps in runs.values())
    for y, steps in enumerate(runs.values()):
        spans = [(start, end - start, line)
                 for (start, line), (end, _) in itertools.pairwise(steps)]
        axes.broken_barh([(start, width) for start, width, _ in spans], (y - 0.35, 0.7),
                         facecolors=[colours[i % len(colours)] for i in range(len(spans))])
        for start, width, line in spans:
            characters = int(width / longest * 150)  # about what fits at this font size
            if characters >= 8:
                label = " ".join(line.split())
                label = label if len(label) <= characters else label[:characters - 1] + "…"
                axes.text(start + width / 2, y, label, ha="center", va="center", fontsize=6)
    axes.set_yticks(range(len(runs)), list(runs))
    axes.invert_yaxis()
    # A --verbose timeline counts from when the command's code began, after its
    # imports; the process's exit is timed from its start, so the last step of each
    # bar holds the imports too.
    axes.set_xlabel("seconds since the command began; each bar's last step runs to the "
                    "process's exit and includes its imports")
    axes.grid(True, axis="x", alpha=0.3)
    figure.suptitle("swarmai lifecycle commands, step by step (--verbose)")
    return _save(figure, plt, path)


def _log2_axis(axes: Any, ticks: Sequence[int]) -> None:
    """A log-2 x axis labelled with the values measured, not powers of two."""
    axes.set_xscale("log", base=2)
    axes.set_xticks(list(ticks), [str(tick) for tick in ticks])
    axes.minorticks_off()


def _save(figure: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

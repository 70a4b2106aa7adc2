"""The bench's report: the printed table per workload, bench.md and bench.png, and
the machine and versions it ran with."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

from nntk_bench.frameworks import FRAMEWORKS


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in (
        "numpy",
        "tensorflow",
        "tf-keras",
        "torch",
        "onnxruntime",
        "onnx",
        "ai-edge-litert",
        "scipy-openblas32",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kernel_isa() -> str:
    import nntk_core as nn

    try:
        f = nn.lib.NNTKKernelISA
        f.restype = ctypes.c_char_p
        f.argtypes = []
        return f().decode()
    except AttributeError:
        return "n/a"


# What the columns mean (printed once before the workloads, and under bench.md's table).
LEGEND = (
    "median / IQR / min: milliseconds per call (IQR = p75 - p25 over the samples); "
    "CPU ms: the median CPU time per call of the framework's process (all its threads; "
    "on a shared machine it leaves out the waits for a core); "
    "GFLOP/s and %peak: the matrix products' rate, and as a share of the measured one-thread "
    "sgemm peak (higher is better), %peak CPU the same by CPU time; nntk/x: nntk's median "
    "time / this framework's, x CPU the same by CPU time (below 1: nntk is faster); "
    "check: outputs against the reference before timing."
)


def ms(value: float) -> str:
    """Milliseconds with three decimals, four below 0.1 ms (W6's microseconds)."""
    return f"{value:.4f}" if value < 0.1 else f"{value:.3f}"


def format_workload(wl: str, entry: dict) -> str:
    lines = [
        f"\n{wl}  {entry['description']}  ({entry['flops'] / 1e6:.1f} MFLOP)",
        f"  {'framework':12s} {'median ms':>10s} {'IQR ms':>8s} {'min ms':>8s} {'CPU ms':>8s} "
        f"{'GFLOP/s':>8s} {'%peak':>6s} {'%peak CPU':>9s} {'nntk/x':>7s} {'x CPU':>6s}  check",
    ]
    for fw, i in sorted(entry["frameworks"].items(), key=lambda kv: kv[1].get("median_ms", 1e9)):
        ratio = f"{i['nntk_ratio']:.2f}" if "nntk_ratio" in i else "-"
        ratio_cpu = f"{i['nntk_ratio_cpu']:.2f}" if "nntk_ratio_cpu" in i else "-"
        lines.append(
            f"  {fw:12s} {ms(i['median_ms']):>10s} {ms(i['iqr_ms']):>8s} {ms(i['min_ms']):>8s} "
            f"{ms(i['cpu_median_ms']):>8s} {i['gflops']:8.1f} {i['pct_peak']:6.1f} "
            f"{i['cpu_pct_peak']:9.1f} {ratio:>7s} {ratio_cpu:>6s}  {i['check']} "
            f"({i['check_detail']})"
        )
    for who in ("nntk", "nntk_py"):
        if f"{who}_vs_fastest_peer" in entry:
            ratio = entry[f"{who}_vs_fastest_peer"]
            lines.append(
                f"  {who.replace('_', '-')} time / fastest peer's = {ratio:.2f}, by CPU time "
                f"{entry[f'{who}_vs_fastest_peer_cpu']:.2f} (below 1: {who.replace('_', '-')} "
                "is faster)"
            )
    if "c_per_frame_us" in entry:
        lines.append("  " + per_frame_line(entry["c_per_frame_us"]))
    return "\n".join(lines)


def per_frame_line(us: dict) -> str:
    """W6's C API figures, in microseconds per frame."""
    return (
        f"nntk C API per frame, timed in C: {us['latency_in_c']:.2f} us = FLOP time at the "
        f"sgemm peak {us['flop_time_at_peak']:.2f} us + overhead {us['overhead']:.2f} us "
        f"(the bench's nntk row adds {us['ctypes_call']:.2f} us: its one ctypes call)"
    )


def markdown(report: dict) -> str:
    """The run as a Markdown table (what docs/bench/README.md shows), one row per
    workload and framework, fastest first."""
    m, k = report["machine"], report["nntk"]
    load = "/".join(f"{x[0]:.2f}" for x in (m["load_average_before"], m["load_average_after"]))
    lines = [
        f"nntk `{k['backend']}` backend, `{k['kernels']}` kernels; {m['cpu']}, {m['cores']} "
        f"cores, one thread per framework; measured sgemm peak {report['peak_gflops']:.1f} "
        f"GFLOP/s; load average before/after {load}.",
        "",
        "| workload | framework | median ms | IQR ms | CPU ms | GFLOP/s | % peak | % peak CPU "
        "| nntk / framework | by CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios, py_ratios, per_frame = [], [], []
    for wl, entry in report["workloads"].items():
        by_time = sorted(entry["frameworks"].items(), key=lambda kv: kv[1].get("median_ms", 1e9))
        for fw, i in by_time:
            ratio = f"{i['nntk_ratio']:.2f}" if "nntk_ratio" in i and fw != "nntk" else "—"
            ratio_cpu = f"{i['nntk_ratio_cpu']:.2f}" if "nntk_ratio_cpu" in i else "—"
            if i["check"] != "ok":
                ratio = f"MISMATCH ({i['check_detail']})"
            lines.append(
                f"| {wl} | {fw} | {ms(i['median_ms'])} | {ms(i['iqr_ms'])} "
                f"| {ms(i['cpu_median_ms'])} | {i['gflops']:.1f} | {i['pct_peak']:.1f} "
                f"| {i['cpu_pct_peak']:.1f} | {ratio} | {ratio_cpu} |"
            )
        for who, found in (("nntk", ratios), ("nntk_py", py_ratios)):
            if f"{who}_vs_fastest_peer" in entry:
                found.append(
                    f"{wl} {entry[f'{who}_vs_fastest_peer']:.2f} "
                    f"(CPU {entry[f'{who}_vs_fastest_peer_cpu']:.2f})"
                )
        if "c_per_frame_us" in entry:
            per_frame.append(f"{wl}: " + per_frame_line(entry["c_per_frame_us"]) + ".")
    if ratios:
        lines += ["", "nntk time / fastest peer's (below 1: nntk is faster): " + ", ".join(ratios)]
    if py_ratios:
        lines += ["", "nntk-py time / fastest peer's: " + ", ".join(py_ratios)]
    lines += [line for text in per_frame for line in ("", text)]
    lines += ["", LEGEND.replace("nntk/x", "nntk / framework").replace("x CPU", "by CPU")]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    wls = list(report["workloads"])
    fws = [fw for fw in FRAMEWORKS if any(fw in report["workloads"][w]["frameworks"] for w in wls)]
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(1, len(fws))
    for i, fw in enumerate(fws):
        xs, ys, lo, hi = [], [], [], []
        for j, wl in enumerate(wls):
            info = report["workloads"][wl]["frameworks"].get(fw)
            if info is None:
                continue
            xs.append(j + (i - (len(fws) - 1) / 2) * width)
            ys.append(info["median_ms"])
            lo.append(info["median_ms"] - info["p25_ms"])
            hi.append(info["p75_ms"] - info["median_ms"])
        ax.bar(xs, ys, width, yerr=[lo, hi], label=fw, capsize=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(wls)))
    short = {
        "W1": "GRU inference\nB=1",
        "W2": "LSTM inference\nB=1",
        "W3": "keyword detector\ninference B=1",
        "W4": "keyword detector\ntrain step B=32",
        "W5": "GRU fwd+bwd\nB=32",
        "W6": "keyword detector\nper frame",
        "W7a": "GRU(256) inference\nB=1",
        "W7b": "LSTM(256) inference\nB=1",
        "W7c": "GRU(256) fwd+bwd\nB=32",
        "W7d": "LSTM(256) fwd+bwd\nB=32",
    }
    ax.set_xticklabels([f"{wl}: {short.get(wl, wl)}" for wl in wls], fontsize=8)
    ax.set_ylabel("median ms per call (log; bars: IQR)")
    ax.set_title(
        f"nntk vs peers, one thread, {report['machine']['cpu']} "
        f"(sgemm peak {report['peak_gflops']:.0f} GFLOP/s)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

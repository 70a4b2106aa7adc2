"""The run: every framework built, checked against the reference and timed, workload
by workload; and `nntk-parity bench`, the command."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from pathlib import Path

from nntk_bench.frameworks import BUILDERS, FRAMEWORKS, IN_PROCESS
from nntk_bench.memory import memory_report
from nntk_bench.nntk_runners import nntk_model
from nntk_bench.report import (
    LEGEND,
    cpu_name,
    format_workload,
    kernel_isa,
    markdown,
    plot,
    versions,
)
from nntk_bench.timing import Local, Worker, measure_peak, time_interleaved
from nntk_bench.workloads import (
    GRAD_TOL,
    INFER_TOL,
    LOSS_RTOL,
    STREAMED_FROM,
    WORKLOADS,
    Skip,
    compare,
    make_weights,
    workload_flops,
)


def run_bench(
    frameworks: list[str],
    workloads: list[str],
    quick: bool,
    out_dir: Path | None,
    log=print,
    nntk_threads: int = 1,
) -> dict:
    # A hard import: without it numpy's OpenBLAS keeps its own threads, one of which can
    # spin beside the timed calls (in the CPU-time column) after any numpy BLAS call.
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rounds = 3 if quick else 15
    target = 0.002 if quick else 0.005
    warmup = 2 if quick else 5
    import nntk_core

    nntk_core.set_thread_count(nntk_threads)  # nntk's own pool (docs/threads.md)
    w = make_weights()
    load_before = os.getloadavg()
    peak = measure_peak(512 if quick else 2048)
    log(f"single-core sgemm peak: {peak:.1f} GFLOP/s")

    # Every peer starts its process now (they build their models side by side); nntk's
    # runners are built here. Timing starts when all are ready.
    workers = {fw: Worker(fw) for fw in frameworks if fw not in IN_PROCESS}
    ran: dict[str, Local | Worker] = {}  # the frameworks that run
    offered: dict[str, dict[str, str]] = {}  # framework -> its workloads -> note
    notes: dict[str, str] = {}
    try:
        for fw in frameworks:
            runner = workers.get(fw)
            try:
                runner = runner or Local(BUILDERS[fw](w))
                offered[fw] = runner.ready()
                ran[fw] = runner
            except Skip as exc:
                notes[fw] = f"skipped: {exc}"
                log(f"{fw}: {notes[fw]}")
        # reference outputs: tf.keras when present (the spec), else nntk
        reference = "tf" if "tf" in ran else ("nntk" if "nntk" in ran else None)
        results = _run_workloads(
            ran, offered, reference, workloads, rounds, target, warmup, peak, log, w
        )
    finally:  # whatever happened: no worker outlives the run
        for worker in workers.values():
            worker.close()
        nntk_core.set_thread_count(1)

    report = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        },
        "nntk": {
            "backend": nntk_core.BACKEND,
            "kernels": kernel_isa(),
            "library": nntk_core.lib._name,
        },
        "versions": versions(),
        "threads": "1 everywhere: threadpoolctl limits BLAS/OpenMP pools to 1, torch "
        "set_num_threads(1), ORT intra/inter_op 1, TF intra/inter_op 1, TFLite "
        f"num_threads=1, nntk's OpenBLAS 1; nntk's pool {nntk_threads} (--nntk-threads)",
        "settings": {
            "quick": quick,
            "rounds": rounds,
            "sample_target_s": target,
            "warmup": warmup,
            "inference_tolerance_abs": INFER_TOL,
            "loss_rtol": LOSS_RTOL,
            "gradient_tolerance_rel_max": GRAD_TOL,
            "reference": reference,
        },
        "peak_gflops": peak,
        "notes": notes,
        "workloads": results,
    }
    try:
        report["memory"] = memory_report()
    except Exception as exc:  # never lose the timings for the memory figures
        report["memory"] = {"error": f"{type(exc).__name__}: {exc}"}
    limiter.restore_original_limits()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
        (out_dir / "bench.md").write_text(markdown(report))
        plot(report, out_dir / "bench.png")
    return report


def _run_workloads(ran, offered, ref_fw, workloads, rounds, target, warmup, peak, log, w) -> dict:
    """Per workload: every framework's outputs checked against ref_fw's (a streamed
    workload's, every framework's, against nntk's full-sequence inference), then timed."""
    log(LEGEND)
    results: dict[str, dict] = {}
    for wl in workloads:
        entry = {"description": WORKLOADS[wl], "flops": workload_flops(wl), "frameworks": {}}
        present = {fw: runner for fw, runner in ran.items() if wl in offered[fw]}
        wl_ref_fw = ref_fw
        if wl in STREAMED_FROM:
            wl_ref_fw = f"nntk {STREAMED_FROM[wl]} (full sequence)"
            model = nntk_model(w, 1)
            ref = model(w.x1)[0]
            model.close()
        else:
            ref = present[ref_fw].result(wl) if ref_fw in present else None
        for fw, runner in present.items():
            if ref is None or fw == wl_ref_fw:
                ok, detail = True, "reference" if fw == ref_fw else "no reference"
            else:
                ok, detail = compare(wl, runner.result(wl), ref)
            entry["frameworks"][fw] = {"check": "ok" if ok else "MISMATCH", "check_detail": detail}
            if not ok:
                log(f"{wl} {fw}: MISMATCH ({detail})")
        samples = time_interleaved(present, wl, rounds, target, warmup)
        for fw, s in samples.items():
            ms = sorted(wall * 1e3 for wall, _ in s)
            q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
            med = statistics.median(ms)
            cpu = statistics.median(c * 1e3 for _, c in s)
            info = entry["frameworks"][fw]
            info.update(
                median_ms=med,
                p25_ms=q[0],
                p75_ms=q[2],
                iqr_ms=q[2] - q[0],
                min_ms=ms[0],
                cpu_median_ms=cpu,
                samples=len(ms),
                gflops=entry["flops"] / (med * 1e-3) / 1e9,
                cpu_pct_peak=100.0 * entry["flops"] / (cpu * 1e-3) / 1e9 / peak,
            )
            info["pct_peak"] = 100.0 * info["gflops"] / peak
        _ratios(entry, "median_ms", "")
        _ratios(entry, "cpu_median_ms", "_cpu")
        base = entry["frameworks"].get("nntk")
        if wl in STREAMED_FROM and base:
            runner = ran["nntk"].runners[wl]
            entry["c_per_frame_us"] = _per_frame_overhead(
                runner, base, entry["flops"], peak, rounds
            )
        for fw in present:
            if offered[fw][wl]:
                entry["frameworks"][fw]["note"] = offered[fw][wl]
        results[wl] = entry
        log(format_workload(wl, entry))
    return results


def _ratios(entry: dict, key: str, suffix: str) -> None:
    """nntk's time (by `key`: the wall or the CPU median) over each peer's, and nntk's
    and nntk-py's over the fastest peer's (peers that passed their check only)."""
    fws = entry["frameworks"]
    base = fws.get("nntk")
    for fw, info in fws.items():
        if base and fw != "nntk" and info["check"] == "ok":
            info["nntk_ratio" + suffix] = base[key] / info[key]
    peers = [i[key] for fw, i in fws.items() if not fw.startswith("nntk") and i["check"] == "ok"]
    if not peers:
        return
    entry["fastest_peer" + suffix + "_ms"] = min(peers)
    for fw, name in (("nntk", "nntk"), ("nntk-py", "nntk_py")):
        if fw in fws:
            entry[f"{name}_vs_fastest_peer{suffix}"] = fws[fw][key] / min(peers)


def _per_frame_overhead(runner, nntk: dict, flops: float, peak: float, rounds: int) -> dict:
    """The C API's per-frame figures in microseconds: the frames timed in C alone (no
    ctypes; the median of `rounds` runs of as many frames as the bench's samples last),
    the FLOP time at the sgemm peak, the overhead (the C latency - the FLOP time), and
    the one ctypes call per frame the bench's row pays on top (its CPU time - C's)."""
    frames = max(100, round(2e-3 / (nntk["median_ms"] * 1e-3)))
    in_c = statistics.median(runner.ns_per_frame(frames) for _ in range(rounds)) / 1e3
    flop_time = flops / (peak * 1e9) * 1e6
    return {
        "latency_in_c": in_c,
        "flop_time_at_peak": flop_time,
        "overhead": in_c - flop_time,
        "ctypes_call": nntk["cpu_median_ms"] * 1e3 - in_c,
    }


def main(args) -> int:
    frameworks = args.frameworks.split(",") if args.frameworks else list(FRAMEWORKS)
    unknown = [f for f in frameworks if f not in BUILDERS]
    workloads = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    unknown += [w for w in workloads if w not in WORKLOADS]
    if unknown:
        print(
            f"nntk-parity bench: unknown framework or workload: {', '.join(unknown)} "
            f"(frameworks: {', '.join(FRAMEWORKS)}; workloads: {', '.join(WORKLOADS)})",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) if args.out else None
    report = run_bench(frameworks, workloads, args.quick, out, nntk_threads=args.nntk_threads)
    mem = report.get("memory", {})
    if "w4" in mem:
        print(
            f"\nnntk memory: W4 peak {mem['w4']['peak_bytes_during_step']} bytes, "
            f"{mem['w4']['allocated_during_step']} allocated during a step; at Create "
            "(training: capacity B=32, T=100): "
            + ", ".join(f"{m['layer']}/{m['mode']} {m['bytes']}" for m in mem["create"])
        )
    if out is not None:
        written = [out / name for name in ("bench.json", "bench.md", "bench.png")]
        print("\nwrote " + ", ".join(str(path) for path in written if path.exists()))
    bad = [
        (wl, fw)
        for wl, e in report["workloads"].items()
        for fw, i in e["frameworks"].items()
        if i["check"] != "ok"
    ]
    return 1 if any(fw.startswith("nntk") for _, fw in bad) else 0


def add_parser(subparsers) -> None:
    """`nntk-parity bench` (registered by parity/cli.py)."""
    bench = subparsers.add_parser(
        "bench",
        help="time nntk against ONNX Runtime, TFLite, PyTorch and TF (+XLA) on workloads "
        "W1-W7, one thread each, after checking all compute the same outputs",
    )
    bench.add_argument("--quick", action="store_true", help="a short smoke run")
    bench.add_argument(
        "--frameworks",
        metavar="LIST",
        help=f"comma-separated subset of {','.join(FRAMEWORKS)} "
        "(default: all; a peer that is not installed is skipped with a note)",
    )
    first, *_, last = WORKLOADS
    bench.add_argument(
        "--workloads", metavar="LIST", help=f"comma-separated subset of {first}..{last}"
    )
    bench.add_argument("--out", metavar="DIR", help="write bench.json and bench.png into DIR")
    bench.add_argument(
        "--nntk-threads",
        type=int,
        default=1,
        metavar="N",
        help="threads of nntk's training pool (docs/threads.md; default 1); the peers stay at 1",
    )
    bench.set_defaults(func=main)

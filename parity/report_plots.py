"""The plots of a parity report: one PNG per layer with the error along the time axis
(`QuantityStats.error_by_step`) and a histogram per quantity of the per-case max errors
(`QuantityStats.errors`). They need matplotlib (`pip install nntk[report]`); without it
there are none and the reports say so."""

from __future__ import annotations

import io
import math

import numpy as np


def _power_of_ten(value: float, _position) -> str:
    return f"{value:.0e}" if value else "0"


def plot_layer(layer: dict) -> bytes | None:
    """One PNG per layer: the error along the time axis (all quantities that have it)
    and a histogram of per-case max errors for each quantity. None if matplotlib is
    missing or there is nothing to plot."""
    try:
        from matplotlib import rc_context
    except ImportError:
        return None
    quantities = layer["quantities"]
    timed = {q: s["error_by_step"] for q, s in quantities.items() if s["error_by_step"]}
    histos = {q: s["errors"] for q, s in quantities.items() if s["errors"]}
    if not timed and not histos:
        return None
    cols = 3
    rows = (1 if timed else 0) + math.ceil(len(histos) / cols)
    # titley fixed: the titles' automatic placement measures every tick label again
    with rc_context({"axes.titley": 1.0}):
        return _draw(layer, timed, histos, rows, cols)


def _draw(layer, timed, histos, rows, cols):
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

    fig = Figure(figsize=(10, 2.6 * rows))
    grid = fig.add_gridspec(rows, cols)
    row = 0
    if timed:
        ax = fig.add_subplot(grid[0, :])
        positive = False
        styles = ("-", "--", ":", "-.")
        for i, (q, errs) in enumerate(sorted(timed.items())):
            ax.plot(range(len(errs)), errs, styles[i % 4], marker="o", markersize=3, label=q)
            positive = positive or any(e > 0 for e in errs)
        if positive:
            ax.set_yscale("symlog", linthresh=1e-9)
        ax.set_xlabel("time step t")
        ax.set_ylabel("max |nntk - float64|")
        ax.set_title(f"{layer['layer']}: error along the time axis (max over cases)")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        row = 1
    for i, (q, errs) in enumerate(sorted(histos.items())):
        ax = fig.add_subplot(grid[row + i // cols, i % cols])
        values = [e for e in errs if isinstance(e, float) and e > 0 and math.isfinite(e)]
        exact = sum(1 for e in errs if e == 0)
        if values:
            lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
            hi = max(hi, lo + 1)
            bins = [10 ** (lo + (hi - lo) * k / 20) for k in range(21)]
            counts, _ = np.histogram(values, bins=bins)  # one patch, not one per bar
            ax.stairs(counts, bins, fill=True, color="#4878a8")
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(numticks=4))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        ax.set_title(f"{q}: {len(errs)} cases, {exact} exact", fontsize="small")
        ax.set_xlabel("per-case max error", fontsize="small")
        ax.tick_params(labelsize="x-small")
    for ax in fig.axes:
        ax.minorticks_off()  # log-axis minor ticks cost most of the drawing time
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "linear":  # plain "1e-08" labels: mathtext is slow
                axis.set_major_formatter(FuncFormatter(_power_of_ten))
    fig.subplots_adjust(left=0.07, right=0.98, top=0.95, bottom=0.08, hspace=0.6, wspace=0.25)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    return buffer.getvalue()

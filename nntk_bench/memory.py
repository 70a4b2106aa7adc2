"""nntk's allocations: what each layer of W4 allocates at Create, and during a step."""

from __future__ import annotations

import ctypes

from nntk_bench.nntk_runners import NNTKRaw, nntk_model, nntk_train_runner
from nntk_bench.workloads import TRAIN_B, T, make_weights


def memory_report() -> dict:
    """Bytes each W4 layer allocates at Create (handle, weights, training capacity for
    B=32, T=100 reserved up front) and the peak allocated during one W4 step."""
    import nntk_core as nn
    from nntk_core import _native

    if not hasattr(nn.lib, "NNTKMemoryStats"):
        return {"note": "this build has no NNTKMemoryStats"}
    current, peak = ctypes.c_int64(), ctypes.c_int64()

    def stats():
        nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
        return current.value, peak.value

    w = make_weights()
    # The layers of W4's own model (nntk_model), each created once more by hand from its
    # configuration, so the table follows the model.
    model = nntk_model(w, TRAIN_B)
    layers = []
    for layer in model.layers:
        config = layer._new_config()  # each layer's config, created alone
        for mode, extra in (
            ("inference", ()),
            ("training", (ctypes.byref(_native.TrainingConfig(TRAIN_B, T)),)),
        ):
            before, _ = stats()
            handle = getattr(nn.lib, f"NNTKLayerCreateFor{mode.capitalize()}")(config, *extra)
            after, _ = stats()
            layers.append({"layer": layer.layer_type.name, "mode": mode, "bytes": after - before})
            nn.lib.NNTKLayerDestroy(handle)
        nn.lib.NNTKLayerConfigDestroy(config)
    model.close()
    base, _ = stats()

    def check(status, what):
        if status != 0:
            raise RuntimeError(f"nntk {what}: {nn.lib.NNTKLastError().decode()}")

    runner = nntk_train_runner(NNTKRaw(), nntk_model(w, TRAIN_B), w, check)
    runner.fn()  # the first step grows the workspaces and creates Adam's slots
    before, _ = stats()
    nn.lib.NNTKMemoryResetPeak()
    runner.fn()
    after, peak_bytes = stats()
    return {
        "create": layers,
        "w4": {
            "resident_bytes": before - base,
            "peak_bytes_during_step": peak_bytes - base,
            "allocated_during_step": peak_bytes - before,
            "note": "W4's model (weights, gradients, training caches, workspaces) and Adam's "
            "slots, after one step; a later step allocates nothing",
        },
    }

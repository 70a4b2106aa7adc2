"""nntk's allocations: what each layer of W4 allocates at Create, and during a step."""

from __future__ import annotations

import ctypes

from nntk_bench.nntk_runners import NNTKRaw, nntk_model, nntk_train_runner
from nntk_bench.workloads import CLASSES, TRAIN_B, D, F, K, T, U, make_weights


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

    specs = [
        ("Conv1d", nn.lib.NNTKConv1dConfigCreate, (D, F, K, 1, 0, 1, 0, 1)),
        ("BatchNorm", nn.lib.NNTKBatchNormConfigCreate, (F, 0.99, 1e-3, 1, 1)),
        ("Activation", nn.lib.NNTKActivationConfigCreate, (1, F)),
        ("GRU", nn.lib.NNTKGRUConfigCreate, (F, U, 6, 4, 1, 1, 1, 0)),
        ("BatchNorm", nn.lib.NNTKBatchNormConfigCreate, (U, 0.99, 1e-3, 1, 1)),
        ("GRU", nn.lib.NNTKGRUConfigCreate, (U, U, 6, 4, 1, 1, 1, 0)),
        ("TimeDistributedDense", nn.lib.NNTKTimeDistributedDenseConfigCreate, (U, CLASSES, 7, 1)),
    ]
    layers = []
    for layer, create_config, args in specs:
        config = create_config(*args)
        for mode, extra in (
            ("inference", ()),
            ("training", (ctypes.byref(_native.TrainingConfig(TRAIN_B, T)),)),
        ):
            before, _ = stats()
            handle = getattr(nn.lib, f"NNTK{layer}CreateFor{mode.capitalize()}")(config, *extra)
            after, _ = stats()
            layers.append({"layer": layer, "mode": mode, "bytes": after - before})
            getattr(nn.lib, f"NNTK{layer}Destroy")(handle)
        getattr(nn.lib, f"NNTK{layer}ConfigDestroy")(config)
    w = make_weights()
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

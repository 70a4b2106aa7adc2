"""The compute kernels (nntk_core/csrc/src/core/kernels*.{h,inc,c}) on every instruction set
this machine has, each forced with NNTK_ISA in its own process (the table is chosen once
per process): streaming is bit for bit the whole-sequence call, training forward is bit
for bit inference, and the tables agree with each other to float32 rounding. Shapes
include the workloads' (units 64, input 40) and odd ones that end in masked tails. Also
the memory counter (NNTKMemoryStats) and `nntk-parity bench --quick` for nntk alone."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from helpers import _env, cli

import nntk_core as nn
from nntk_bench.nntk_runners import nntk_model
from nntk_bench.workloads import TRAIN_B, WORKLOADS, make_weights

# Run in a child process with NNTK_ISA set: prints the table's name, then a JSON list of
# outputs (as lists) for the cases, after asserting the bitwise properties itself.
CHILD = r"""
import json, sys
import numpy as np
import nntk_core as nn

def make(kind, units, d, **kw):
    cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
    return cls(units, input_dim=d, return_sequences=True, return_state=True, **kw)

out = {"isa": nn.lib.NNTKKernelISA().decode(), "cases": []}
rng = np.random.default_rng(0)
# batch 1 and >= 8 steps read the recurrent kernel from its panels (core/recurrent.c; the
# tables with recurrent_panels, not avx512, which reads it in place, row_cols at a time);
# 37 units end in a partial panel, GRU reset_after=False uses the panels for 2U columns
configs = [(kind, {}) for kind in ("rnn", "gru", "lstm")] + [("gru", {"reset_after": False})]
for kind, options in configs:
    for units, d, batch, steps in ((64, 40, 1, 30), (37, 5, 1, 17), (37, 5, 3, 17), (5, 70, 7, 9)):
        layer = make(kind, units, d, **options)
        layer.set_weights([rng.uniform(-0.4, 0.4, w.shape).astype(np.float32)
                           for w in layer.get_weights()])
        x = rng.uniform(-1, 1, (batch, steps, d)).astype(np.float32)
        whole, *state = layer(x)
        trained, *_ = layer(x, training=True)
        assert np.array_equal(trained, whole), (kind, units, "training != inference")
        cut = [1, steps // 2, steps - 1]
        s, parts = None, []
        for chunk in np.split(x, cut, axis=1):
            o, s = layer.stream(chunk, s)
            parts.append(o)
        assert np.array_equal(np.concatenate(parts, axis=1), whole), (kind, units, "stream")
        dy = rng.standard_normal(whole.shape).astype(np.float32)
        dx, grads = layer.backward([dy, None] + ([None] if kind == "lstm" else []))[:2]
        out["cases"].append([whole.tolist(), dx.tolist(), [g.tolist() for g in grads]])
print(json.dumps(out))
"""


def _run_child(isa: str) -> dict:
    env = dict(_env(), NNTK_ISA=isa)  # the same packages and library as this process
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_kernel_table_streams_bitwise_and_agrees():
    results = {isa: _run_child(isa) for isa in ("generic", "avx2", "avx512")}
    names = {isa: r["isa"] for isa, r in results.items()}
    assert names["generic"] == "generic"
    # a table is used only where the CPU has it; forcing a lower one must work
    assert names["avx2"] in ("generic", "avx2")
    reference = results["generic"]["cases"]
    for isa, r in results.items():
        for case, ref in zip(r["cases"], reference, strict=True):
            whole, dx, grads = case
            ref_whole, ref_dx, ref_grads = ref
            for got, want in zip([whole, dx, *grads], [ref_whole, ref_dx, *ref_grads], strict=True):
                g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
                scale = max(1.0, float(np.max(np.abs(w))))
                assert float(np.max(np.abs(g - w))) <= 1e-5 * scale, (isa, names[isa])


def test_memory_counter_tracks_create_and_destroy():
    current, peak = ctypes.c_int64(), ctypes.c_int64()
    nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
    before = current.value
    layer = nn.GRU(64, input_dim=40, return_sequences=True)
    layer(np.zeros((2, 10, 40), np.float32), training=True)
    nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
    assert current.value - before >= 4 * (40 * 192 + 64 * 192 + 2 * 192)  # at least the weights
    assert peak.value >= current.value
    layer.close()
    nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
    assert current.value == before
    nn.lib.NNTKMemoryResetPeak()
    nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
    assert peak.value == current.value


@pytest.mark.slow
def test_bench_quick_runs_nntk_alone(tmp_path):
    """`nntk-parity bench --quick` for nntk (C API and Python API): every workload runs,
    both drive the same computation (outputs checked), the JSON and plot are written, and
    a training step allocates nothing. Timing itself is not asserted."""
    proc = cli("bench", "--quick", "--frameworks", "nntk,nntk-py", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert set(report["workloads"]) == set(WORKLOADS)
    assert report["peak_gflops"] > 0
    for wl, entry in report["workloads"].items():
        assert entry["flops"] > 0
        for fw in ("nntk", "nntk-py"):
            info = entry["frameworks"][fw]
            assert info["check"] == "ok", (wl, fw, info)
            assert info["median_ms"] > 0 and info["gflops"] > 0 and info["samples"] >= 3
    assert report["memory"]["w4"]["allocated_during_step"] == 0
    assert report["memory"]["w4"]["resident_bytes"] > 0
    # one row per layer of W4's model and mode, in the model's order
    model = nntk_model(make_weights(), TRAIN_B)
    w4 = [type(layer).__name__ for layer in model.layers]
    model.close()
    created = report["memory"]["create"]
    assert [m["layer"] for m in created if m["mode"] == "inference"] == w4
    assert [m["layer"] for m in created if m["mode"] == "training"] == w4
    table = (tmp_path / "bench.md").read_text()
    for wl in WORKLOADS:
        assert f"| {wl} | nntk | " in table and f"| {wl} | nntk-py | " in table
    # W6's C per-frame figures: the latency splits into FLOP time and overhead
    per_frame = report["workloads"]["W6"]["c_per_frame_us"]
    assert per_frame["latency_in_c"] > per_frame["flop_time_at_peak"] > 0
    assert per_frame["latency_in_c"] == pytest.approx(
        per_frame["flop_time_at_peak"] + per_frame["overhead"]
    )
    assert "W6: nntk C API per frame" in table
    if (tmp_path / "bench.png").exists():
        assert (tmp_path / "bench.png").stat().st_size > 1000


def _inference_layers() -> dict[str, tuple]:
    """name -> (spec, config): every configuration the parity sweep builds, for every
    class of the library (nntk_core.LAYER_CLASSES, through its spec), and every layer
    of the catalogue's networks at full size (as the keyword detectors use them). Every
    inference handle must reserve at Create what a batch-1 inference call of any length
    needs; derived, so a new layer is covered without edits here."""
    from nntk_models import NETWORKS
    from parity.specs import all_specs, get_spec

    specs = {spec.layer_class: spec for spec in all_specs()}
    layers = {}
    for name in nn.LAYER_CLASSES:
        assert name in specs, f"{name} in LAYER_CLASSES has no parity spec (parity/specs/)"
        for i, case in enumerate(specs[name].sweep_cases()):
            layers[f"{specs[name].name}[{i}]"] = (specs[name], case.config)
    for network in NETWORKS.values():
        for i, (spec_name, config) in enumerate(network.layers(**network.full)):
            layers[f"{network.name}[{i}] {spec_name}"] = (get_spec(spec_name), config)
    return layers


INFERENCE_LAYERS = _inference_layers()


def _build(name: str):
    """The layer `name` of INFERENCE_LAYERS, and its input's feature count."""
    spec, config = INFERENCE_LAYERS[name]
    return spec.build_native(nn, config), spec.input_features(config)


def _shortest_input(layer, features: int) -> int:
    """The shortest sequence the layer takes (1; a valid-padding Conv1d: its effective
    kernel), as the layer itself says: a shorter one is refused naming the length, by the
    Python class (ValueError) or by the library (NNTKError, invalid argument: the layers
    whose class is derived, e.g. MaxPool1d under valid padding)."""
    for steps in range(1, 64):
        try:
            layer(np.zeros((1, steps, features), np.float32))
        except (ValueError, nn.NNTKError) as exc:
            assert "steps" in str(exc), exc
            if isinstance(exc, nn.NNTKError):
                assert exc.status == "NNTK_ERROR_INVALID_ARGUMENT", exc
            continue
        return steps
    raise AssertionError("no sequence length up to 63 is accepted")


def _memory() -> tuple[int, int]:
    current, peak = ctypes.c_int64(), ctypes.c_int64()
    nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
    return current.value, peak.value


def _typed(layer, suffix: str):
    """The layer's typed C function NNTK<Name><suffix>."""
    return getattr(nn.lib, f"NNTK{layer.layer_type.name}{suffix}")


def _raw_handle(layer, capacity: tuple[int, int] | None):
    """A C handle of `layer`'s configuration: CreateForInference, or CreateForTraining
    with a capacity (batch, steps); its weights filled with values in [0.1, 0.5] (valid
    for every layer, BatchNorm's variance included)."""
    config = layer._new_config()
    if capacity is None:
        handle = _typed(layer, "CreateForInference")(config)
    else:
        handle = _typed(layer, "CreateForTraining")(
            config, ctypes.byref(nn._native.TrainingConfig(*capacity))
        )
    _typed(layer, "ConfigDestroy")(config)
    assert handle, nn.lib.NNTKLastError().decode()
    weights, count = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
    assert _typed(layer, "GetWeights")(handle, ctypes.byref(weights), ctypes.byref(count)) == 0
    if count.value:  # Activation has no weights
        block = np.ctypeslib.as_array(weights, (count.value,))
        block[:] = np.random.default_rng(1).uniform(0.1, 0.5, count.value)
    return handle


def _apply(layer, handle, suffix: str, x: np.ndarray, out: np.ndarray) -> None:
    floats = ctypes.POINTER(ctypes.c_float)
    status = _typed(layer, suffix)(
        handle, x.shape[0], x.shape[1], x.ctypes.data_as(floats), out.ctypes.data_as(floats)
    )
    assert status == 0, nn.lib.NNTKLastError().decode()


@pytest.mark.parametrize("name", sorted(INFERENCE_LAYERS))
@pytest.mark.parametrize("steps", ["shortest", 33, 100, 500])
def test_inference_call_allocates_nothing_after_create(name, steps):
    """A handle from CreateForInference reserves at Create what a batch-1 ApplyInference
    of any length needs, so the call allocates nothing (NNTKMemoryStats: neither the
    current bytes nor the peak move)."""
    layer, features = _build(name)
    if steps == "shortest":
        steps = _shortest_input(layer, features)
    handle = _raw_handle(layer, None)
    try:
        # positive, as the weights are: no relu-type activation gives all zeros, even
        # at one step, so `out` shows the call computed
        x = np.random.default_rng(0).uniform(0.1, 1, (1, steps, features))
        x = x.astype(np.float32)
        out = np.zeros(4 * steps * 128, np.float32)  # larger than any output here
        before = _memory()[0]
        nn.lib.NNTKMemoryResetPeak()
        _apply(layer, handle, "ApplyInference", x, out)
        assert _memory() == (before, before), (name, steps)
        assert np.any(out != 0)  # it did compute
    finally:
        _typed(layer, "Destroy")(handle)


@pytest.mark.parametrize("name", sorted(INFERENCE_LAYERS))
def test_training_handle_with_capacity_allocates_nothing_in_any_call(name):
    """CreateForTraining with a capacity (4, 60) reserves everything: a training batch,
    its gradient, an inference call and a second batch, each at or below the capacity,
    allocate nothing."""
    layer, features = _build(name)
    handle = _raw_handle(layer, (4, 60))
    gradient = _typed(layer, "GradientCreate")(handle)
    assert gradient, nn.lib.NNTKLastError().decode()
    floats = ctypes.POINTER(ctypes.c_float)
    try:
        rng = np.random.default_rng(0)
        before = _memory()[0]
        nn.lib.NNTKMemoryResetPeak()
        for batch, steps in ((4, 60), (2, 17)):
            x = rng.uniform(-1, 1, (batch, steps, features)).astype(np.float32)
            out = np.zeros(4 * batch * steps * 128, np.float32)
            _apply(layer, handle, "ApplyTrainingBatch", x, out)
            d_out = rng.standard_normal(out.size).astype(np.float32)
            d_in = np.zeros(x.size, np.float32)
            status = _typed(layer, "CalculateGradient")(
                handle, gradient, d_out.ctypes.data_as(floats), d_in.ctypes.data_as(floats)
            )
            assert status == 0, nn.lib.NNTKLastError().decode()
            _apply(layer, handle, "ApplyInference", x, out)
        assert _memory() == (before, before), name
    finally:
        _typed(layer, "GradientDestroy")(gradient)
        _typed(layer, "Destroy")(handle)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_bidirectional_streamed_inference_is_bitwise_the_whole_sequence(
    kind, merge_mode, go_backwards
):
    """Bidirectional inference streams each direction 32 steps at a time and merges as it
    goes (bidirectional.c, apply_streamed); the training call runs both directions over the
    whole sequence and merges after. Outputs and final states must be the same bits, at
    lengths below, at and across the chunk boundary, batch 1 and 3, with and without an
    initial state."""
    cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
    rng = np.random.default_rng(7)
    layer = nn.Bidirectional(
        cls(9, input_dim=5, return_sequences=True, return_state=True, go_backwards=go_backwards),
        merge_mode=merge_mode,
    )
    layer.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
    )
    for batch, steps in ((1, 1), (1, 32), (1, 33), (3, 70), (1, 100)):
        x = rng.uniform(-1, 1, (batch, steps, 5)).astype(np.float32)
        states = [
            rng.uniform(-1, 1, (batch, 9)).astype(np.float32)
            for _ in range(4 if kind == "lstm" else 2)
        ]
        for initial in (None, states):
            streamed = layer(x, initial_state=initial)
            whole = layer(x, training=True, initial_state=initial)
            for a, b in zip(streamed, whole, strict=True):
                assert np.array_equal(a, b), (batch, steps, initial is None)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_batch_one_panel_path_is_bitwise_a_row_of_a_batch(kind, go_backwards):
    """At batch 1 and at least recurrent_panel_min_steps steps the recurrent kernel is read
    from column panels of recurrent_panel columns (core/recurrent.c; avx512 reads it in
    place, row_cols columns at a time, kernels.h recurrent_panels); a
    batch of two takes the whole-row product. Rows are independent, so a sample alone and
    the same sample in a batch must be the same bits: units of one, two and four panels
    and a partial panel, inference and training, from zeros and from a given state."""
    from parity.blocking import kernel_constants

    constants = kernel_constants()
    panel, steps = constants["recurrent_panel"], constants["recurrent_panel_min_steps"] + 3
    cls = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
    rng = np.random.default_rng(11)
    for units in (panel, 2 * panel, 4 * panel, panel + 5):
        layer = cls(
            units, input_dim=6, return_sequences=True, return_state=True, go_backwards=go_backwards
        )
        layer.set_weights(
            [rng.uniform(-0.3, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()]
        )
        x = rng.uniform(-1, 1, (2, steps, 6)).astype(np.float32)
        states = [
            rng.uniform(-1, 1, (2, units)).astype(np.float32)
            for _ in range(2 if kind == "lstm" else 1)
        ]
        for initial in (None, states):
            first = None if initial is None else [s[:1] for s in initial]
            for training in (False, True):
                pair = layer(x, training=training, initial_state=initial)
                one = layer(x[:1], training=training, initial_state=first)
                for a, b in zip(one, pair, strict=True):
                    assert np.array_equal(a, b[:1]), (units, initial is None, training)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_batch_one_panels_around_the_k_block(kind):
    """The one-row product's forms on the batch-1 panels (kernels_impl.inc, row_tile; the
    avx2 table): a panel of a whole k_block rows prefetches the rows ahead, a shorter K
    block or a partial last panel does not. units = k_block: whole k_block-row panels;
    k_block + 5: a second K block of 5 rows and a partial last panel. Every form loads the
    same values, so a sample alone (batch 1: the panels) must be the same bits as the same
    sample in a batch of two (the tiles), under the running table."""
    from parity.blocking import kernel_constants

    constants = kernel_constants()
    isa = nn.lib.NNTKKernelISA().decode()
    k_block = constants[f"{isa}.k_block"]
    steps = constants["recurrent_panel_min_steps"] + 1
    cls = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
    rng = np.random.default_rng(12)
    for units in (k_block, k_block + 5):
        layer = cls(units, input_dim=3, return_sequences=True, return_state=True)
        layer.set_weights(
            [rng.uniform(-0.2, 0.2, w.shape).astype(np.float32) for w in layer.get_weights()]
        )
        x = rng.uniform(-1, 1, (2, steps, 3)).astype(np.float32)
        pair = layer(x)
        one = layer(x[:1])
        for a, b in zip(one, pair, strict=True):
            assert np.array_equal(a, b[:1]), units


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_batch_one_wide_product_around_the_row_k_block(kind):
    """A one-row product wider than one column block, read in place (a short chunk at
    batch 1: no panels; kernels_impl.inc, matvec), runs its K rows in blocks of
    row_k_block rows, each block through every column block. K = input_dim and units
    one below, at and one above row_k_block and two blocks and a part; 3U or 4U columns
    span two row_cols blocks and a part. A K block or a column strip skipped or run
    twice changes the sample's output, so a sample alone (batch 1) must be the same
    bits as the same sample in a batch of two (the tiles), under the running table."""
    from parity.blocking import kernel_constants

    constants = kernel_constants()
    isa = nn.lib.NNTKKernelISA().decode()
    row_k, row_cols = constants[f"{isa}.row_k_block"], constants[f"{isa}.row_cols"]
    gates = {"gru": 3, "lstm": 4}[kind]
    steps = constants["recurrent_panel_min_steps"] - 1  # in place: no panels
    cls = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
    rng = np.random.default_rng(16)
    for depth in (row_k - 1, row_k, row_k + 1, 2 * row_k + 3):
        units = max(depth, row_cols // gates + 1)  # 2 column blocks at least
        layer = cls(units, input_dim=depth, return_sequences=True, return_state=True)
        layer.set_weights(
            [rng.uniform(-0.2, 0.2, w.shape).astype(np.float32) for w in layer.get_weights()]
        )
        x = rng.uniform(-1, 1, (2, steps, depth)).astype(np.float32)
        pair = layer(x)
        one = layer(x[:1])
        for a, b in zip(one, pair, strict=True):
            assert np.array_equal(a, b[:1]), (depth, units)

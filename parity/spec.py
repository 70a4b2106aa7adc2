"""LayerSpec: how the suite sees a layer, and Case: one drawn example.

A spec is data plus a few hooks: the option space (hypothesis strategies), how to
build the tf.keras twin and the nntk layer, names for the axes of every quantity
(so a failure reads `kernel grad [in=3, unit=7]`), and a declared tolerance with its
reason for every quantity. The generic machinery (runner, tests, CLI) does the rest.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np
from hypothesis import strategies as st

from parity.compare import Tolerance

# Weight draws: Glorot-like at the realistic scale, with a share of larger draws
# to stress saturation and growth. Hypothesis shrinks toward the first entry.
SCALES: dict[str, float] = {"realistic": 1.0, "large": 3.0}


# Options with at most this many values are swept in pairs (LayerSpec.sweep_cases).
PAIRWISE_MAX_VALUES = 3

# The case-id keys that are not config options (so no config option may use them).
CASE_FIELDS = ("B", "T", "rank", "seed", "draw")

# Sizes (units, filters, features) drawn: mostly up to SMALL_SIZE (fast, and where
# off-by-one bugs show), one draw in four up to MAX_SIZE (real models use 64-256
# units: a second column tile, panel and cell block, inner sizes above 128).
SMALL_SIZE, MAX_SIZE = 32, 160


def sizes(low: int = 1) -> st.SearchStrategy[int]:
    small = st.integers(low, SMALL_SIZE)
    return st.one_of(small, small, small, st.integers(SMALL_SIZE + 1, MAX_SIZE))


# -- the kernels' blocking: where code paths change --------------------------------------
@lru_cache(maxsize=1)
def kernel_constants() -> dict[str, int]:
    """The library's blocking constants (NNTKKernelConstants, core/blocking.h and each
    kernel table compiled in): shared ones by name ("pack_k"), each table's as
    "<isa>.<name>" ("avx2.tile_cols")."""
    import nntk_core

    text = nntk_core.lib.NNTKKernelConstants().decode()
    return {name: int(value) for name, _, value in (line.partition("=") for line in text.split())}


def boundaries(*names: str) -> list[int]:
    """The distinct values of the named constants over every kernel table: "tile_cols"
    is each table's "<isa>.tile_cols", "pack_k" the shared one."""
    constants = kernel_constants()
    found = {
        value
        for key, value in constants.items()
        for name in names
        if key == name or key.endswith(f".{name}")
    }
    if not found:
        raise KeyError(f"the library reports no blocking constant named {names}")
    return sorted(found)


def tile_heights() -> list[int]:
    """Rows per tile of the tables that tile rows (a table that runs one row at a
    time, tile_rows = 1, has no row boundary)."""
    return [n for n in boundaries("tile_rows") if n > 1]


def kernel_tables() -> dict[str, dict[str, int]]:
    """Each kernel table's own constants by table name: {"avx2": {"tile_rows": 4, ...}}."""
    tables: dict[str, dict[str, int]] = {}
    for key, value in kernel_constants().items():
        table, dot, name = key.partition(".")
        if dot:
            tables.setdefault(table, {})[name] = value
    return tables


@lru_cache(maxsize=1)
def kernel_products() -> list[tuple[int, int]]:
    """(M, N) products of nntk_matmul that together run every kernel instance of every
    table compiled in, each instance by the smallest product that runs it: a one-row
    block of n vectors (M = 1, N = (n-1)·vector + 1, for n up to row_cols/vector) and a
    tile of r rows x v vectors (M = r, or tile_rows + 1 for r = 1 since one row takes the
    one-row path; N = (v-1)·vector + 1), for a table that tiles rows (tile_rows > 1). One
    set per table, merged: a build with fewer tables (no SIMD) asks for a subset of what a
    full build's fixtures hold."""
    products = set()
    for k in kernel_tables().values():
        vector = k["vector"]
        products |= {(1, (n - 1) * vector + 1) for n in range(1, k["row_cols"] // vector + 1)}
        if k["tile_rows"] > 1:
            rows = [r if r > 1 else k["tile_rows"] + 1 for r in range(1, k["tile_rows"] + 1)]
            widths = [(v - 1) * vector + 1 for v in range(1, k["tile_cols"] // vector + 1)]
            products |= {(m, n) for m in rows for n in widths}
    return sorted(products)


def around(values: Iterable[int], step: int = 1) -> list[int]:
    """Sizes n whose step·n is one below, at (where step divides it) and one above each
    boundary: a GRU's 3·units columns around a 64-column panel are units 21 and 22."""
    sizes_ = set()
    for boundary in values:
        sizes_.update({(boundary - 1) // step, boundary // step + 1})
        if boundary % step == 0:
            sizes_.add(boundary // step)
    return sorted(n for n in sizes_ if n >= 1)


def float32_range(quantities: dict[str, Any]) -> dict[str, Any]:
    """Keras quantities with every value too large for float32 made ±inf. The float64
    referee has the wider range: exp(88.7229) = 3.4028245e38 is finite there, but
    every float32 implementation (IEEE rounding) must give inf. A no-op for float32."""
    out = {}
    for name, value in quantities.items():
        array = np.asarray(value)
        if array.dtype == np.float64:
            with np.errstate(over="ignore"):
                narrow = array.astype(np.float32)
            array = np.where(np.isinf(narrow) & np.isfinite(array), narrow, array)
        out[name] = array
    return out


@dataclass(frozen=True)
class Case:
    """One example: a layer config, an input shape and the seed of its data.

    Its `id` is a self-contained string; `nntk-parity repro ID` reruns exactly it.
    """

    layer: str
    config: dict[str, Any]
    batch: int
    steps: int
    rank: int  # 2: (batch, features); 3: (batch, steps, features)
    seed: int
    scale: str = "realistic"
    extra: dict[str, Any] = field(default_factory=dict)  # spec-specific draws

    def __post_init__(self):
        clash = set(self.config) & set(CASE_FIELDS)
        if clash:
            raise ValueError(f"config options may not be named {sorted(clash)}")

    @property
    def id(self) -> str:
        fields = {
            **{k: json.dumps(v) for k, v in sorted(self.config.items())},
            "B": self.batch,
            "T": self.steps,
            "rank": self.rank,
            "seed": self.seed,
            "draw": self.scale,
        }
        fields.update({f"x.{k}": json.dumps(v) for k, v in sorted(self.extra.items())})
        return f"{self.layer}?{urlencode(fields, safe=':,[]')}"

    @classmethod
    def from_id(cls, case_id: str) -> Case:
        layer, _, query = case_id.strip().partition("?")
        if not layer or not query:
            raise ValueError(f"not a case id: {case_id!r} (expected 'layer?key=value&...')")
        config, extra, meta = {}, {}, {}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=True):
            if key in CASE_FIELDS:
                meta[key] = value
            elif key.startswith("x."):
                try:
                    extra[key[2:]] = json.loads(value)
                except json.JSONDecodeError:
                    raise ValueError(
                        f"case id {case_id!r}: the value of {key!r} is not JSON: {value!r}"
                    ) from None
            else:
                try:
                    config[key] = json.loads(value)
                except json.JSONDecodeError:
                    raise ValueError(
                        f"case id {case_id!r}: the value of {key!r} is not JSON: {value!r}"
                    ) from None
        missing = {"B", "T", "rank", "seed"} - set(meta)
        if missing:
            raise ValueError(f"case id {case_id!r} lacks {', '.join(sorted(missing))}")
        return cls(
            layer=layer,
            config=config,
            batch=int(meta["B"]),
            steps=int(meta["T"]),
            rank=int(meta["rank"]),
            seed=int(meta["seed"]),
            scale=meta.get("draw", "realistic"),
            extra=extra,
        )

    def describe(self) -> str:
        shape = f"B={self.batch}" + (f" T={self.steps}" if self.rank == 3 else " (2-D input)")
        return f"{self.layer} {self.config} {shape} seed={self.seed} scale={self.scale}"


@dataclass(frozen=True)
class Bucket:
    """A shape bucket for attribute coverage: a named class of cases (`B=1`, `T=1`,
    `units=1`) that a run must exercise. `make` turns any valid case into one in the
    bucket (the spec's `adjust_sweep_config` is applied afterwards), so the bucket is
    run as an explicit example and recorded as a fixture instead of left to chance."""

    name: str
    hit: Callable[[Case], bool]
    make: Callable[[Case], Case] | None = None

    @classmethod
    def config(cls, key: str, value: Any) -> Bucket:
        """The bucket of cases whose config has `key == value` (e.g. units=1)."""
        return cls(
            f"{key}={value}",
            lambda case: case.config.get(key) == value,
            lambda case: replace(case, config={**case.config, key: value}),
        )

    @classmethod
    def sizes(
        cls,
        key: str,
        values: Iterable[int],
        lean: Callable[[Case], Case] = lambda case: case,
        when: tuple[str, Callable[[Case], bool]] | None = None,
    ) -> list[Bucket]:
        """A bucket per value of a size option (`key == value`, and `when` = (label,
        test) if given), made by `lean` after setting the size: `lean` shrinks the
        case's other dimensions so that a large size stays a small, fast fixture."""
        buckets = []
        for value in values:
            label = f"{key}={value}" + (f", {when[0]}" if when else "")
            buckets.append(
                cls(
                    label,
                    lambda c, v=value: c.config.get(key) == v and (when is None or when[1](c)),
                    lambda c, v=value: lean(replace(c, config={**c.config, key: v})),
                )
            )
        return buckets

    @classmethod
    def shape(cls, label: str, hit: Callable[[Case], bool], **changes: Any) -> Bucket:
        """A bucket of input shapes (`B=1, T=33`), made by setting Case fields."""
        return cls(label, hit, lambda c: replace(c, **changes))


class LayerSpec:
    """Base spec. A subclass sets the class attributes and `config_strategy`, and
    overrides hooks where its layer differs from a one-input one-output layer."""

    name: str = ""  # registry key and case-id prefix, e.g. "dense"
    layer_class: str = ""  # the nntk_core class it covers, e.g. "Dense"
    ranks: tuple[int, ...] = (2, 3)  # input ranks to draw
    batch_range: tuple[int, int] = (1, 8)
    steps_range: tuple[int, int] = (1, 16)
    # Options whose every value a run must exercise (attribute coverage).
    options: dict[str, tuple] = {}
    # Weight-draw regimes (name -> multiple of the Glorot-like draw).
    scales: dict[str, float] = SCALES
    # Tolerances by quantity prefix ("output", "grad:input", "grad:kernel", "grad",
    # "state"): the longest matching prefix wins. Each with its reason.
    tolerances: dict[str, Tolerance] = {}

    # -- what is drawn -----------------------------------------------------------------
    def config_strategy(self) -> st.SearchStrategy[dict]:
        raise NotImplementedError

    def case_strategy(self) -> st.SearchStrategy[Case]:
        @st.composite
        def cases(draw):
            config = draw(self.config_strategy())
            rank = draw(st.sampled_from(self.ranks))
            batch = draw(st.integers(*self.batch_range))
            steps = draw(self.steps_strategy(config)) if rank == 3 else 1
            seed = draw(st.integers(0, 2**31 - 1))
            scale = draw(self.scale_strategy(config))
            extra = draw(self.extra_strategy(config))
            return Case(self.name, config, batch, steps, rank, seed, scale, extra)

        return cases()

    # A typical config: the sweep (below) varies one declared option at a time from it.
    base_config: dict[str, Any] = {}
    # Case.extra draws that act as options (a recurrent layer's initial_state): the
    # sweep varies and pairs them like the declared options.
    extra_options: dict[str, tuple] = {}

    def sweep_cases(self) -> list[Case]:
        """Run first in every profile, so that attribute coverage does not depend on
        what hypothesis happens to draw: one case per declared option value, then
        cases that pair every two options of at most PAIRWISE_MAX_VALUES values
        (every combination the layer allows: `initial_state` with and without
        `use_bias`, ...), chosen greedily so that they stay few."""
        if "_sweep" not in self.__dict__:
            self.__dict__["_sweep"] = self._make_sweep()
        return list(self.__dict__["_sweep"])

    def _make_sweep(self) -> list[Case]:
        paired = self.paired_options()
        # The other options rotate through their values in the cases that set a
        # paired option, so that none keeps its base value among, say, the cases
        # without initial_state.
        others = {k: v for k, v in self.options.items() if k not in paired}
        turns = itertools.count(1)
        cases = []
        for option, values in {**self.options, **self.extra_options}.items():
            for value in values:
                rotated = {}
                if option in paired:
                    turn = next(turns)
                    rotated = {k: v[turn % len(v)] for k, v in others.items()}
                cases.append(self.case_with({**rotated, option: value}, seed=len(cases) + 1))
        candidates = []
        for combo in itertools.product(*paired.values()):
            values = dict(zip(paired, combo, strict=True))
            candidates.append((values, self.pairs_of(self.case_with(values, seed=0))))
        needed = set().union(*(pairs for _, pairs in candidates))
        for case in cases:
            needed -= self.pairs_of(case)
        for turn in turns:
            if not needed:
                break
            values, _ = max(candidates, key=lambda item: len(item[1] & needed))
            rotated = {k: v[turn % len(v)] for k, v in others.items()}
            case = self.case_with({**rotated, **values}, seed=len(cases) + 1)
            if not self.pairs_of(case) & needed:  # the rotation made the pair invalid
                case = self.case_with(values, seed=len(cases) + 1)
            needed -= self.pairs_of(case)
            cases.append(case)
        # Every value of a paired option with two values of every other option.
        for option, values in paired.items():
            for value in values:
                group = [c for c in cases if self.variety_values(c).get(option) == value]
                if not others or all(
                    len({hashable(self.variety_values(c).get(k)) for c in group}) > 1
                    for k in others
                ):
                    continue
                turn = next(turns)
                rotated = {k: v[turn % len(v)] for k, v in others.items()}
                cases.append(self.case_with({**rotated, option: value}, seed=len(cases) + 1))
        return cases

    def paired_options(self) -> dict[str, tuple]:
        """The options (declared and extra) that the sweep pairs."""
        both = {**self.options, **self.extra_options}
        return {k: v for k, v in both.items() if len(v) <= PAIRWISE_MAX_VALUES}

    def pairs_of(self, case: Case) -> set[tuple]:
        """The (option, value) pairs of paired options that a case exercises."""
        values = self.variety_values(case)
        items = sorted(
            ((k, hashable(v)) for k, v in values.items() if k in self.paired_options()),
            key=repr,
        )
        return set(itertools.combinations(items, 2))

    def variety_values(self, case: Case) -> dict[str, Any]:
        """The option values a case exercises, extra options included."""
        values = self.option_values(case)
        values.update({k: case.extra[k] for k in self.extra_options if k in case.extra})
        return values

    def case_with(self, values: dict[str, Any], seed: int) -> Case:
        """The base case with some option values (config options, `rank` or extra
        options), made valid by adjust_sweep_config."""
        config = dict(self.base_config)
        rank = self.ranks[-1]
        extra = {}
        for option, value in values.items():
            if option == "rank":
                rank = value
            elif option in self.extra_options:
                extra[option] = value
            else:
                config[option] = value
        config = self.adjust_sweep_config(config)
        steps = self.sweep_steps(config) if rank == 3 else 1
        batch = min(2, self.batch_range[1])
        extra = {**self.sweep_extra(config), **extra}
        return Case(self.name, config, batch, steps, rank, seed, "realistic", extra)

    def sweep_steps(self, config: dict) -> int:
        """Sequence length of the sweep's cases."""
        return min(5, self.steps_range[1])

    def base_case(self) -> Case:
        """The sweep's starting point: base_config at a small default shape."""
        return self.case_with({}, seed=1)

    def shape_buckets(self) -> list[Bucket]:
        """Shape buckets a run must exercise: the smallest batch, the shortest and the
        longest sequence, every input rank, plus the spec's `extra_buckets()`. A spec
        whose shapes are constrained differently overrides this."""
        b_lo = self.batch_range[0]
        buckets = [Bucket(f"B={b_lo}", lambda c: c.batch == b_lo, lambda c: replace(c, batch=b_lo))]
        if 3 in self.ranks:
            for steps in dict.fromkeys(self.steps_range):
                buckets.append(
                    Bucket(
                        f"T={steps}",
                        lambda c, s=steps: c.rank == 3 and c.steps == s,
                        lambda c, s=steps: replace(c, rank=3, steps=s),
                    )
                )
        if len(self.ranks) > 1:
            for rank in self.ranks:
                buckets.append(
                    Bucket(
                        f"rank={rank}",
                        lambda c, r=rank: c.rank == r,
                        lambda c, r=rank: replace(c, rank=r, steps=c.steps if r == 3 else 1),
                    )
                )
        named = {b.name: b for b in [*buckets, *self.extra_buckets()]}  # one per name
        return list(named.values())

    def adjust_case(self, case: Case) -> Case:
        """Makes a constructed coverage case valid where shape and config interact
        (identity by default)."""
        return case

    def extra_buckets(self) -> list[Bucket]:
        """Spec-specific buckets, e.g. `[Bucket.config("units", 1)]` (none by default)."""
        return []

    def buckets_hit(self, case: Case) -> list[str]:
        return [b.name for b in self.shape_buckets() if b.hit(case)]

    def coverage_cases(self) -> list[Case]:
        """The sweep, plus one case per shape bucket the sweep misses (made from the
        base case): every declared option value and every bucket, deterministically."""
        if "_coverage" not in self.__dict__:
            self.__dict__["_coverage"] = self._make_coverage()
        return list(self.__dict__["_coverage"])

    def _make_coverage(self) -> list[Case]:
        cases = self.sweep_cases()
        start = self.base_case()
        if not cases:
            cases = [start]
        # The spec's own buckets first: their lean cases often also hit a generic one.
        generic = {b.name for b in self.extra_buckets()}
        buckets = sorted(self.shape_buckets(), key=lambda b: b.name not in generic)
        for bucket in buckets:
            if bucket.make is None or any(bucket.hit(c) for c in cases):
                continue
            case = bucket.make(start)
            config = self.adjust_sweep_config(dict(case.config))
            case = self.adjust_case(replace(case, config=config, seed=len(cases) + 1))
            if bucket.hit(case):
                cases.append(case)
        return cases

    def adjust_sweep_config(self, config: dict) -> dict:
        """Makes a swept config valid where options interact (identity by default)."""
        return config

    def sweep_extra(self, config: dict) -> dict:
        return {}

    def extra_strategy(self, config: dict) -> st.SearchStrategy[dict]:
        """Spec-specific draws stored in Case.extra (none by default)."""
        return st.just({})

    def scale_strategy(self, config: dict) -> st.SearchStrategy[str]:
        """Weight-draw regimes for a config (a spec may keep some configs realistic)."""
        return st.sampled_from(list(self.scales))

    def steps_strategy(self, config: dict) -> st.SearchStrategy[int]:
        """Sequence lengths to draw for a config (a layer may need a minimum)."""
        return st.integers(*self.steps_range)

    def call_input(self, x: np.ndarray) -> np.ndarray:
        """One call's input, given the drawn input (a spec drawing several batches at
        once stacks them on a leading axis and returns the last)."""
        return x

    def call_input_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return self.call_input(x).shape

    def input_features(self, config: dict) -> int:
        return config["input_dim"]

    def input_shape(self, case: Case) -> tuple[int, ...]:
        features = self.input_features(case.config)
        if case.rank == 3:
            return (case.batch, case.steps, features)
        return (case.batch, features)

    def draw_input(self, case: Case, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(self.input_shape(case)).astype(np.float32)

    def draw_weight(
        self, name: str, shape: tuple[int, ...], scale: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Glorot-uniform-like for matrices (fan_in = shape[-2]·taps, fan_out = shape[-1]);
        uniform(-0.5, 0.5) for vectors; times the case's scale."""
        if len(shape) >= 2:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
        else:
            limit = 0.5
        return (rng.uniform(-limit, limit, size=shape) * scale).astype(np.float32)

    # -- the two implementations ---------------------------------------------------------
    def build_keras(self, keras, config: dict, dtype: str, input_shape: tuple):
        """The tf.keras twin in `dtype`, built for `input_shape` ((None, ..., features))."""
        raise NotImplementedError

    def build_native(self, nn, config: dict):
        raise NotImplementedError

    def weight_names(self, keras_layer) -> list[str]:
        """Names of the Keras layer's weights in get_weights() order."""
        return self.weight_names_of(keras_layer.weights)

    def output_names(self, config: dict, count: int) -> list[str]:
        """Names of the layer's outputs (one for most layers)."""
        return ["output"] if count == 1 else [f"output{i}" for i in range(count)]

    def draw_states(self, case: Case, rng: np.random.Generator) -> list[np.ndarray]:
        """Extra inputs of the call (a recurrent layer's initial state); none by default."""
        return []

    def run_keras(
        self, tf, layer, x: np.ndarray, upstream: list[np.ndarray], states=()
    ) -> dict[str, Any]:
        """Every quantity of the tf.keras side: the inference output, then under a
        GradientTape the training output and the gradients of x and of every trainable
        weight for `upstream`, then the non-trainable weights after the training call."""
        xt = tf.constant(x)
        outputs = tf.nest.flatten(layer(xt, training=False))
        names = self.output_names(layer.get_config(), len(outputs))
        quantities: dict[str, Any] = {
            f"{n}:inference": y for n, y in zip(names, outputs, strict=True)
        }
        with tf.GradientTape() as tape:
            tape.watch(xt)
            outputs = tf.nest.flatten(layer(xt, training=True))
        quantities.update({f"{n}:training": y for n, y in zip(names, outputs, strict=True)})
        sources = [xt] + list(layer.trainable_weights)
        grads = tape.gradient(
            outputs,
            sources,
            output_gradients=[tf.constant(u) for u in upstream],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        quantities["grad:input"] = grads[0]
        for name, grad in zip(
            self.weight_names_of(layer.trainable_weights), grads[1:], strict=True
        ):
            quantities[f"grad:{name}"] = grad
        for name, var in zip(
            self.weight_names_of(layer.non_trainable_weights),
            layer.non_trainable_weights,
            strict=True,
        ):
            quantities[f"state:{name}"] = var.numpy()  # a snapshot, not the live variable
        return quantities

    def run_native(
        self, layer, x: np.ndarray, upstream: list[np.ndarray], names: list[str], states=()
    ):
        """The same quantities from the nntk layer. `names` are the Keras weight names."""
        outputs = layer(x, training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        out_names = self.output_names({}, len(outputs))
        quantities: dict[str, Any] = {
            f"{n}:inference": y for n, y in zip(out_names, outputs, strict=True)
        }
        outputs = layer(x, training=True)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        quantities.update({f"{n}:training": y for n, y in zip(out_names, outputs, strict=True)})
        dx, dweights = layer.backward(upstream if len(upstream) > 1 else upstream[0])
        quantities["grad:input"] = dx
        mask = layer.trainable_mask()
        trainable = [n for n, t in zip(names, mask, strict=True) if t]
        for name, grad in zip(trainable, dweights, strict=True):
            quantities[f"grad:{name}"] = grad
        for name, value, t in zip(names, layer.get_weights(), mask, strict=True):
            if not t:
                quantities[f"state:{name}"] = value
        return quantities

    def weight_names_of(self, variables) -> list[str]:
        """Names of Keras variables: the last path component ("dense/kernel:0" -> "kernel")."""
        return [v.name.split("/")[-1].split(":")[0] for v in variables]

    # -- reading results -------------------------------------------------------------------
    def axis_names(self, quantity: str, config: dict, ndim: int) -> tuple[str, ...]:
        """Names of the axes of a quantity, for locating an element in layer terms."""
        if quantity.startswith(("output", "grad:input")):
            last = "in" if quantity.startswith("grad:input") else "unit"
            return ("b", "t", last)[-ndim:] if ndim == 3 else ("b", last)[-ndim:]
        return tuple(f"axis{i}" for i in range(ndim))

    def locate(self, quantity: str, index: tuple[int, ...], config: dict) -> str:
        """`kernel grad [in=3, unit=7]`-style description of an element."""
        names = self.axis_names(quantity, config, len(index))
        label = quantity
        if quantity.startswith("grad:"):
            label = f"{quantity[5:]} grad"
        elif quantity.startswith("state:"):
            label = quantity[6:]
        inside = ", ".join(f"{n}={i}" for n, i in zip(names, index, strict=False))
        return f"{label} [{inside}]"

    def tolerance(self, quantity: str) -> Tolerance:
        best = ""
        for prefix in self.tolerances:
            if quantity.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        if not best:
            raise KeyError(f"spec {self.name!r} declares no tolerance for {quantity!r}")
        return self.tolerances[best]

    def option_values(self, case: Case) -> dict[str, Any]:
        """The option values a case exercises, for attribute coverage."""
        values = {k: case.config[k] for k in self.options if k in case.config}
        if "rank" in self.options:
            values["rank"] = case.rank
        return values


def hashable(value):
    return tuple(value) if isinstance(value, list) else value

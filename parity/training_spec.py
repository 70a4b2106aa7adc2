"""The base of the training specs (parity/training.py describes them): a grid of
options, its cases and their seeds, and the interface the runner and the report use."""

from __future__ import annotations

import itertools

import numpy as np

from parity.case import Case
from parity.compare import Tolerance
from parity.fixtures import ArrayData

SEED = 20240611


def _seed(name: str, config: dict) -> int:
    """A case's data seed: a function of the spec and its options only (stable ids)."""
    import zlib

    text = name + "".join(f"&{k}={v}" for k, v in sorted(config.items()))
    return (SEED + zlib.crc32(text.encode())) % 2**31


class TrainingSpec:
    """A grid of options; subclasses say how to draw a case's data, run tf.keras on it
    (`keras_quantities`) and run nntk on it (`run_native`)."""

    name = ""
    description = ""
    options: dict[str, tuple] = {}
    tolerances: dict[str, Tolerance] = {}  # by quantity name prefix ("" = the default)
    batch, steps, rank = 1, 1, 2  # the Case shape fields (see each spec)
    # Whether run_native makes its optimizer(s) through nn.optimizers: replay then runs
    # the case again with the optimizer saved and restored after every step
    # (parity/training.py, restored_optimizer_comparisons).
    uses_optimizer = False

    def valid(self, config: dict) -> bool:
        return True

    def configs(self) -> list[dict]:
        """Every valid combination of the options (rank taken out: it is a Case field)."""
        names = list(self.options)
        combos = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*self.options.values())
        ]
        return [c for c in combos if self.valid(c)]

    def case(self, config: dict) -> Case:
        config = dict(config)
        rank = config.pop("rank", self.rank)
        return Case(
            layer=self.name,
            config=config,
            batch=self.batch,
            steps=self.steps,
            rank=rank,
            seed=_seed(self.name, {**config, "rank": rank}),
        )

    def cases(self) -> list[Case]:
        return [self.case(c) for c in self.configs()]

    # -- the interface SpecRun and the report use --------------------------------------
    def option_values(self, case: Case) -> dict:
        values = {k: case.config[k] for k in self.options if k in case.config}
        if "rank" in self.options:
            values["rank"] = case.rank
        return values

    def shape_buckets(self) -> list:
        return []

    def buckets_hit(self, case: Case) -> list[str]:
        return []

    def tolerance(self, quantity: str) -> Tolerance:
        best = ""
        for prefix in self.tolerances:
            if quantity.startswith(prefix) and len(prefix) >= len(best):
                best = prefix
        return self.tolerances[best]

    def axis_names(self, quantity: str, case_config: dict, ndim: int) -> list[str]:
        return [f"i{k}" for k in range(ndim)]

    def locate(self, quantity: str, index: tuple[int, ...], config: dict) -> str:
        names = self.axis_names(quantity, config, len(index))
        inside = ", ".join(f"{n}={i}" for n, i in zip(names, index, strict=False))
        return f"{quantity} [{inside}]" if inside else quantity

    def missing_pairs(self, cases: list[Case]) -> list[str]:
        """Option value pairs that some valid combination has and no case exercises
        (single values are SpecRun.missing_coverage's job)."""
        every = [self.option_values(self.case(c)) for c in self.configs()]
        seen = [self.option_values(c) for c in cases]
        missing = []
        for a, b in itertools.combinations(self.options, 2):
            wanted = dict.fromkeys((v[a], v[b]) for v in every)
            have = {(v.get(a), v.get(b)) for v in seen}
            missing += [f"{a}={x!r} with {b}={y!r}" for x, y in wanted if (x, y) not in have]
        return missing

    # -- data and the two sides ----------------------------------------------------------
    def draw(self, case: Case) -> ArrayData:
        """The case's data (numpy only, from case.seed)."""
        raise NotImplementedError

    def keras_quantities(self, case: Case, data: ArrayData, dtype) -> dict[str, np.ndarray]:
        """tf.keras on the data, in `dtype` (np.float64: the referee)."""
        raise NotImplementedError

    def run_native(self, nn, case: Case, data: ArrayData) -> dict[str, np.ndarray]:
        """nntk (`nn`: the nntk_core module, or a fake with the same names) on the data."""
        raise NotImplementedError

    def reference(self, case: Case) -> tuple[ArrayData, dict, dict]:
        data = self.draw(case)
        return (
            data,
            self.keras_quantities(case, data, np.float64),
            self.keras_quantities(case, data, np.float32),
        )


def tf_and_keras():
    from parity import reference

    return reference.tensorflow(), reference.keras()

"""The explicit cases every profile runs first (LayerSpec's sweep and coverage), so
that attribute coverage does not depend on what hypothesis happens to draw: every
option value, every pair of small options, and every shape bucket."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from parity.case import Bucket, Case, hashable

# Options with at most this many values are swept in pairs (Sweep.sweep_cases).
PAIRWISE_MAX_VALUES = 3


class Sweep:
    """The sweep and coverage cases of a spec (LayerSpec's base): from its `options`,
    `extra_options`, `base_config`, ranks and ranges, and its `extra_buckets()`."""

    name: str
    ranks: tuple[int, ...]
    batch_range: tuple[int, int]
    steps_range: tuple[int, int]
    options: dict[str, tuple]
    base_config: dict[str, Any]
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

    def option_values(self, case: Case) -> dict[str, Any]:
        """The option values a case exercises, for attribute coverage."""
        values = {k: case.config[k] for k in self.options if k in case.config}
        if "rank" in self.options:
            values["rank"] = case.rank
        return values

"""Case: one drawn example of a layer spec (a self-contained id that reruns it), and
Bucket: a named class of cases a run must exercise (attribute coverage)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

# The case-id keys that are not config options (so no config option may use them).
CASE_FIELDS = ("B", "T", "rank", "seed", "draw")


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


def hashable(value):
    return tuple(value) if isinstance(value, list) else value

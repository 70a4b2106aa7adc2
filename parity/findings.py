"""A layer spec's distinct failures (parity/spec_run.py diagnoses a live run into
them): `Finding`, the statistics that find the option values a failure never shows
with, and the message that lists them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from parity.runner import CaseResult


@dataclass
class Finding:
    """One distinct failure of a layer spec: the matrix columns (quantities, or RAISED /
    UNSUPPORTED) that fail under the same implicated option values, and its minimal case.

    `options` holds the option values the failure goes with: those of the failing cases,
    for every option that has a value whose cases provably never fail these columns
    (SpecRun.implicated; empty: the failure does not depend on the options)."""

    kind: str  # "numeric", "raised" or "unsupported"
    columns: list[str]
    options: dict[str, Any]
    failing_cases: int
    minimal: CaseResult
    shrunk: bool = False  # the minimal case is hypothesis's shrunk one
    clean: dict[str, list] = field(default_factory=dict)  # option -> values that never fail

    def title(self) -> str:
        where = (
            "with " + ", ".join(f"{k}={_show(v)}" for k, v in self.options.items())
            if self.options
            else "with any option value"
        )
        if self.kind == "unsupported":
            return f"unsupported {where}"
        if self.kind == "raised":
            return f"the native side raised {where}"
        return f"{', '.join(self.columns)} {where}"

    def describe(self) -> str:
        plural = "s" if self.failing_cases != 1 else ""
        clean = "; ".join(
            f"{option} = {', '.join(_show(v) for v in values)} never "
            f"fail{'s' if len(values) == 1 else ''}"
            for option, values in self.clean.items()
        )
        origin = (
            "minimal case (shrunk by hypothesis)"
            if self.shrunk
            else "smallest failing case seen (not shrunk)"
        )
        lines = [
            f"{self.title()}: {self.failing_cases} failing case{plural}"
            + (f" ({clean})" if clean else ""),
            f"  {origin}:",
        ]
        lines += ["  " + line for line in self.minimal.failure_message().splitlines()]
        return "\n".join(lines)

    def to_json(self) -> dict:
        worst = {
            c.quantity: {"location": c.worst_location, "tolerance_used": c.tolerance_used}
            for c in self.minimal.comparisons
            if not c.passed
        }
        return {
            "kind": self.kind,
            "title": self.title(),
            "columns": self.columns,
            "options": self.options,
            "failing_cases": self.failing_cases,
            "shrunk": self.shrunk,
            "case": self.minimal.case.id,
            "repro": self.minimal.repro_command(),
            "error": self.minimal.error,
            "worst": worst,
            "text": self.describe(),
        }


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def case_size(result: CaseResult) -> tuple:
    """A size order for picking the smallest failing case of a finding: elements of
    the input and sum of the integer options (units, filters, ...), then the id."""
    case = result.case
    sizes = sum(v for v in case.config.values() if isinstance(v, int) and not isinstance(v, bool))
    return (case.batch * case.steps * max(1, sizes), case.scale != "realistic", case.id)


CLEAN_SIGNIFICANCE = 0.01
CLEAN_SHARE = 0.25


def clean_values(counts: dict[Any, list[int]]) -> tuple[list, float]:
    """The values of an option that never fail a column, when that is evidence that the
    option matters, given value -> [cases, failing cases]; else none. Evidence: the
    clean values hold at least CLEAN_SHARE of the N cases, and the f failures would all
    miss their n_clean cases by chance (failures placed at random among the cases) with
    probability C(N - n_clean, f) / C(N, f) <= CLEAN_SIGNIFICANCE. So a fault in one
    value of an option is pinned to it, while a fault that depends on the shape (units
    > 32, say) strikes a share of every value's cases and implicates no option (a few
    rarely drawn values may pass by chance, but they hold too few cases). Also returns
    that probability (1.0: no evidence)."""
    total = sum(n for n, _ in counts.values())
    failures = sum(f for _, f in counts.values())
    if not failures:
        return [], 1.0
    clean = [v for v, (n, f) in counts.items() if n and not f]
    n_clean = sum(counts[v][0] for v in clean)
    chance = math.comb(total - n_clean, failures) / math.comb(total, failures)
    if n_clean < CLEAN_SHARE * total or chance > CLEAN_SIGNIFICANCE:
        return [], 1.0
    return clean, chance


def hashable(value):
    return tuple(value) if isinstance(value, list) else value


def findings_message(spec_name: str, findings: list[Finding]) -> str:
    """The failure text of a live run: every distinct failure, then, apart, what the
    native side said it does not support."""
    failures = [f for f in findings if f.kind != "unsupported"]
    unsupported = [f for f in findings if f.kind == "unsupported"]
    lines = []
    for title, group in (
        ("distinct failure", failures),
        ("unsupported case group (apart from the numeric failures)", unsupported),
    ):
        if not group:
            continue
        count = len(group)
        noun = title.replace("failure", "failures" if count != 1 else "failure", 1)
        noun = noun.replace("group", "groups" if count != 1 else "group", 1)
        lines.append(f"{spec_name}: {count} {noun}")
        for i, finding in enumerate(group, 1):
            lines.append(f"[{i}/{count}] {finding.describe()}")
    return "\n".join(lines)

"""Shards of a live run: `nntk-parity run --shard I/N --report DIR` runs a
deterministic 1/N of the run's cases and writes their results to DIR/SHARD_FILE;
`nntk-parity report merge DIR...` reads the N shards back and makes the report the
whole run makes (a long nightly spread over a CI system's matrix jobs:
docs/gate.md).

A shard file holds, per spec, the search's seed and a digest of its planned case ids,
and every case result of the shard (JSON: the comparisons' numbers exactly, floats
in Python's repr). The merge plans the specs again from those seeds and accepts the
shards only if the plans are the same (same code, same hypothesis, same profile and
--layer selection), every shard of the N there once; it then finishes every spec as a
one-process run does (spec_run.finish_spec), shrinking failures with TensorFlow
(imported only then).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from parity.case import Case
from parity.compare import Comparison, Tolerance
from parity.parallel import CaseResults
from parity.runner import CaseResult
from parity.spec_run import SpecPlan
from parity.terminal import UsageError

FORMAT = 1
SHARD_FILE = "shard-{index}-of-{count}.json"
_SHARD_NAME = re.compile(r"shard-(\d+)-of-(\d+)\.json")
# Must agree between the shards: a result computed against other versions or settings
# is not the same run's (the CPU and the library's path may differ: other machines).
SAME_META = ("versions", "reference_settings", "nntk", "backend")


class ShardError(UsageError):
    """Shards that cannot be merged (missing, duplicated, of different runs)."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`: every count-th case of the run, starting
    with the index-th, over every selected spec's planned cases in order (the specs
    in the run's order, each spec's cases in its plan's). Round robin: every shard gets
    a like share of every spec, so of the dear and the cheap cases alike."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, slash, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            shard = None
        if not slash or shard is None or not 1 <= shard.index <= shard.count:
            raise ValueError(f"I/N with 1 <= I <= N (e.g. 2/4), not {text!r}")
        return shard

    def takes(self, position: int) -> bool:
        return position % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def plan_digest(plan: SpecPlan) -> str:
    return hashlib.sha256("\n".join(c.id for c in plan.cases).encode()).hexdigest()


def _comparison_json(c: Comparison) -> dict:
    return asdict(c)  # the tolerance as a dict, tuples as lists


def _comparison(d: dict) -> Comparison:
    index = d["worst_index"]
    return Comparison(
        **{
            **d,
            "tolerance": Tolerance(**d["tolerance"]),
            "shape": tuple(d["shape"]),
            "worst_index": None if index is None else tuple(index),
        }
    )


def write(
    directory, shard: Shard, profile: str, plans: list[SpecPlan], done: CaseResults, meta: dict
) -> Path:
    """The shard's results into `directory`/SHARD_FILE; returns its path."""
    results = []
    for plan in plans:
        for index, result in sorted(done.results[plan.spec].items()):
            results.append(
                {
                    "spec": plan.spec,
                    "index": index,
                    "id": result.case.id,
                    "error": result.error,
                    "unsupported": result.unsupported,
                    "comparisons": [_comparison_json(c) for c in result.comparisons],
                }
            )
    content = {
        "tool": "nntk-parity",
        "kind": "shard",
        "format": FORMAT,
        "shard": [shard.index, shard.count],
        "profile": profile,
        "meta": meta,
        "specs": [
            {
                "spec": plan.spec,
                "seed": plan.seed,
                "cases": len(plan.cases),
                "plan_sha256": plan_digest(plan),
                "seconds": done.seconds[plan.spec],
            }
            for plan in plans
        ],
        "results": results,
    }
    path = Path(directory) / SHARD_FILE.format(index=shard.index, count=shard.count)
    path.write_text(json.dumps(content) + "\n")
    return path


def find(paths: list[str]) -> list[Path]:
    """The shard files named, or in the directories named (a CI system's downloaded
    artifacts: one directory per shard, or all in one)."""
    files = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("shard-*.json") if _SHARD_NAME.fullmatch(p.name))
            if not found:
                raise ShardError(f"no shard file (shard-I-of-N.json) in {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ShardError(f"no such shard file or directory: {path}")
    return files


def _load(path: Path) -> dict:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ShardError(f"cannot read the shard file {path}: {exc}") from exc
    if not isinstance(content, dict) or content.get("kind") != "shard":
        raise ShardError(f"{path} is not a shard file of `nntk-parity run --shard`")
    if content.get("format") != FORMAT:
        raise ShardError(
            f"{path}: shard format {content.get('format')}, this version reads {FORMAT}"
        )
    return content


@dataclass
class Merged:
    """The shards read back: the run's profile, its specs' plans and every result."""

    profile: str
    plans: list[SpecPlan]
    done: CaseResults
    meta: dict


def read(paths: list[str], plan_again) -> Merged:
    """Reads every shard of one run. `plan_again(name, seed)` plans a spec (under the
    shards' profile, loaded by the caller from `profile_of`) for the check that the
    shards' plans are this code's."""
    shards = [(path, _load(path)) for path in find(paths)]
    first_path, first = shards[0]
    count = first["shard"][1]
    seen: dict[int, Path] = {}
    for path, content in shards:
        index, n = content["shard"]
        if n != count:
            raise ShardError(f"{path} is shard {index}/{n}, {first_path} one of {count}")
        if index in seen:
            raise ShardError(f"shard {index}/{count} given twice: {seen[index]} and {path}")
        seen[index] = path
        if (_run_of(content), content["profile"]) != (_run_of(first), first["profile"]):
            raise ShardError(
                f"{path} and {first_path} are shards of different runs (another profile, "
                "--layer selection, --seed or version of the code)"
            )
        for key in SAME_META:
            if content["meta"].get(key) != first["meta"].get(key):
                raise ShardError(
                    f"{path} and {first_path} ran against different {key}: "
                    f"{content['meta'].get(key)} and {first['meta'].get(key)}"
                )
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise ShardError(f"shards of {count}: missing {', '.join(f'{i}/{count}' for i in missing)}")
    plans = []
    for entry in first["specs"]:
        plan = plan_again(entry["spec"], entry["seed"])
        if plan_digest(plan) != entry["plan_sha256"] or len(plan.cases) != entry["cases"]:
            raise ShardError(
                f"{entry['spec']}: the shards' cases are not the ones this code plans for "
                "the same profile and seed (another version of nntk or hypothesis)"
            )
        plans.append(plan)
    done = CaseResults.empty(plans)
    cases = {plan.spec: plan.cases for plan in plans}
    for _, content in shards:
        for entry in content["specs"]:
            done.seconds[entry["spec"]] += entry["seconds"]
        for r in content["results"]:
            case: Case = cases[r["spec"]][r["index"]]
            if case.id != r["id"]:
                raise ShardError(f"{r['spec']} case {r['index']}: {r['id']} is not {case.id}")
            result = CaseResult(
                case,
                [_comparison(c) for c in r["comparisons"]],
                error=r["error"],
                unsupported=r["unsupported"],
            )
            done.results[r["spec"]][r["index"]] = result
    return Merged(first["profile"], plans, done, first["meta"])


def _run_of(content: dict) -> list[dict]:
    """What the shards of one run share: per spec, all but its time."""
    return [{k: v for k, v in spec.items() if k != "seconds"} for spec in content["specs"]]


def profile_of(paths: list[str]) -> str:
    """The profile of the first shard named (the merge loads it before planning)."""
    return _load(find(paths)[0])["profile"]

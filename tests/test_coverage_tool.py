"""The coverage exclusions exclude only error exits (ci/coverage.sh, docs/coverage.md).

The branch figures of ci/coverage.sh leave out argument validation, API-state checks and
allocation failures: by the patterns in ci/gcovr.cfg and by GCOVR_EXCL_BR_START/STOP
regions in the C. These tests read the sources (no build, no gcov) and prove that every line
a pattern selects is an `if` whose statement is an error exit, that every pattern still
selects something, and that every region is closed, short and gives its reason. So an
exclusion cannot grow over computation unnoticed. The last test runs the table script
(ci/coverage_table.py) on small fake gcovr summaries.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.harness

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "ci" / "gcovr.cfg"
SOURCES = sorted(
    p for p in (ROOT / "nntk_core" / "csrc").rglob("*") if p.suffix in {".c", ".h", ".inc"}
)
# An error exit: a failing status, NULL for a handle, or nothing from a destroy function.
EXIT = re.compile(r"\breturn\s*(;|s;|NULL;|(nntk_)?relabel\(\w+, s\);|nntk_fail\()")
REGION_MAX_LINES = 40


def patterns() -> list[re.Pattern]:
    """The exclude-branches-by-pattern values of ci/gcovr.cfg, as gcovr compiles them."""
    found = []
    for line in CONFIG.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "exclude-branches-by-pattern":
            found.append(re.compile(value.strip()))
    return found


def guards_error_exit(lines: list[str], i: int) -> bool:
    """Whether the `if` on lines[i] (one line of condition) guards only an error exit."""
    line = lines[i].split("/*")[0].rstrip()
    if not line.lstrip().startswith("if ("):
        return False
    if line.endswith(";"):  # if (cond) statement;
        return bool(EXIT.search(line))
    if line.endswith("{"):  # if (cond) { ... } : the block must leave with an error exit
        depth, j = 1, i + 1
        while depth and j < len(lines):
            depth += lines[j].count("{") - lines[j].count("}")
            if depth and EXIT.search(lines[j]):
                return True
            j += 1
        return False
    return bool(EXIT.search(lines[i + 1]))  # if (cond)\n    statement;


def test_the_guard_check_tells_an_error_exit_from_computation():
    assert guards_error_exit(["if (p == NULL) {", "  nntk_fail(E, m);", "  return NULL;", "}"], 0)
    assert guards_error_exit(["if ((s = f(x)) != NNTK_OK) return s;"], 0)
    assert guards_error_exit(["if (s != NNTK_OK) return nntk_relabel(where, s);"], 0)
    assert guards_error_exit(["if (!filter->training)", "  return nntk_fail(E, m);"], 0)
    assert not guards_error_exit(["if (bias == NULL) {", "  y = x;", "}"], 0)
    assert not guards_error_exit(["if (d_in == NULL) return NNTK_OK;"], 0)
    assert not guards_error_exit(["if (s != NNTK_OK)", "  total += 1;"], 0)


@pytest.mark.parametrize("pattern", patterns(), ids=lambda p: p.pattern[:40])
def test_every_pattern_selects_only_error_exits_and_selects_some(pattern):
    selected, wrong = 0, []
    for path in SOURCES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if pattern.match(line):  # gcovr: the regex must match the start of the line
                selected += 1
                if not guards_error_exit(lines, i):
                    wrong.append(f"{path.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    assert not wrong, "excluded, but not an error exit:\n" + "\n".join(wrong)
    assert selected, f"the pattern selects no line (stale?): {pattern.pattern}"


def test_patterns_are_read_from_the_config():
    assert len(patterns()) >= 4


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_exclusion_regions_are_closed_short_and_give_their_reason(path):
    start = None
    for i, line in enumerate(path.read_text().splitlines(), 1):
        where = f"{path.relative_to(ROOT)}:{i}"
        assert "GCOVR_EXCL_START" not in line and "LCOV_EXCL" not in line, (
            f"{where}: only branch exclusions (GCOVR_EXCL_BR_*) are used: lines stay counted"
        )
        if "GCOVR_EXCL_BR_START" in line:
            assert start is None, f"{where}: region opened inside another"
            assert re.search(r"GCOVR_EXCL_BR_START: \w.+\*/", line), f"{where}: no reason given"
            start = i
        elif "GCOVR_EXCL_BR_STOP" in line:
            assert start is not None, f"{where}: closes no region"
            assert i - start <= REGION_MAX_LINES, f"{where}: region of {i - start} lines"
            start = None
        elif "GCOVR_EXCL" in line:
            raise AssertionError(f"{where}: unexpected marker {line.strip()}")
    assert start is None, f"{path.relative_to(ROOT)}:{start}: region never closed"


def _summary(*files):  # a gcovr --json-summary with the given (name, lines, branches) rows
    return {
        "files": [
            {
                "filename": name,
                "line_covered": lines[0],
                "line_total": lines[1],
                "branch_covered": branches[0],
                "branch_total": branches[1],
            }
            for name, lines, branches in files
        ]
    }


def test_the_table_counts_each_kernel_table_apart_and_gates_on_the_sum(tmp_path):
    """ci/coverage_table.py on small fake gcovr summaries (no build)."""
    inc = "nntk_core/csrc/src/core/kernels_impl.inc"
    (tmp_path / "files.json").write_text(
        json.dumps(_summary(("nntk_core/csrc/src/dense.c", (8, 10), (3, 4))))
    )
    for table, covered in (("generic", 1), ("avx2", 2)):
        (tmp_path / f"kernels-{table}.json").write_text(
            json.dumps(_summary((inc, (covered, 2), (covered, 2))))
        )

    def run(*floors):
        return subprocess.run(
            [sys.executable, str(ROOT / "ci" / "coverage_table.py"), "--mode", "replay"]
            + ["--report", str(tmp_path), "--tables", "generic", "avx2", *floors],
            capture_output=True,
            text=True,
        )

    ok = run("--floor-branch", "75", "--floor-line", "78")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "| src/core/kernels_impl.inc [generic] | 1/2 | 50.0 | 1/2 | 50.0 |" in ok.stdout
    assert "| src/core/kernels_impl.inc [avx2] | 2/2 | 100.0 | 2/2 | 100.0 |" in ok.stdout
    assert "| **total** | 11/14 | 78.6 | 6/8 | 75.0 |" in ok.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["branch_percent"], summary["line_percent"]) == (75.0, 78.57)
    low = run("--floor-branch", "75.1")
    assert low.returncode == 1 and "branch 75.00% is below the floor 75.10%" in low.stdout


def _goal():
    """ci/coverage_table.py's GOAL (the script is not a package module)."""
    sys.path.insert(0, str(ROOT / "ci"))
    try:
        import coverage_table
    finally:
        sys.path.pop(0)
    return coverage_table.GOAL


def test_the_goal_set_is_every_source_but_the_shared_plumbing():
    """The layer, kernel and training code of the goal figure: every C source and
    kernel-table unit the table can list, but core/status.c (argument checkers,
    allocation: the C API's plumbing), the allocation-fault test build's injector, the
    kernel tables' wrapper units (kernels_<table>.c: their code is kernels_impl.inc's,
    counted per table), core/layer.c and core/layer_api.c (the handle and argument
    plumbing of every layer's public functions), the C model (src/model/), the
    streaming chain (core/chain.c), the worker pool (core/threads.c) and the headers
    without code."""
    src = ROOT / "nntk_core" / "csrc"
    files = [str(p.relative_to(src)) for p in SOURCES if p.is_relative_to(src / "src")]
    code_headers = {
        "src/core/vmath.h",
        "src/core/recurrent.h",
        "src/core/layer.h",
        "src/core/pool1d.h",
    }
    left_out = {
        "src/core/status.c",
        "src/core/layer.c",
        "src/core/layer_api.c",
        "src/core/alloc_faults.c",
        *(f for f in files if re.fullmatch(r"src/core/kernels_\w+\.c", f)),
        # the C model (nntk/model.h): not layer, kernel or training code; its own tests
        # measure it (docs/coverage.md), the total counts it
        *(f for f in files if f.startswith("src/model/")),
        # the streaming chain (NNTKLayerChain, NNTKModelStream): composes layers like the
        # C model, measured by its own tests
        "src/core/chain.c",
        # the worker pool (NNTKSetThreadCount): plumbing that runs the layers' split
        # loops, not a layer's; replay runs one thread, the thread-count tests measure it
        "src/core/threads.c",
        *(f for f in files if f.endswith(".h") and f not in code_headers),
    }
    goal = _goal()
    assert {f for f in files if not goal.fullmatch(f)} == left_out
    for table in ("generic", "avx2", "avx512"):
        assert goal.fullmatch(f"src/core/kernels_impl.inc [{table}]")
        assert goal.fullmatch(f"src/core/vmath.h [{table}]")
    assert not goal.fullmatch("src/core/status.c [avx2]")


def test_the_goal_figure_gates_on_the_layer_kernel_and_training_rows(tmp_path):
    """--floor-goal fails on the goal rows' branch figure alone (fake summaries)."""
    (tmp_path / "files.json").write_text(
        json.dumps(
            _summary(
                ("nntk_core/csrc/src/dense.c", (4, 4), (3, 4)),
                ("nntk_core/csrc/src/train/loss.c", (4, 4), (4, 4)),
                ("nntk_core/csrc/src/core/status.c", (1, 4), (0, 12)),
            )
        )
    )
    (tmp_path / "kernels-avx2.json").write_text(
        json.dumps(_summary(("nntk_core/csrc/src/core/kernels_impl.inc", (2, 2), (1, 2))))
    )

    def run(floor):
        return subprocess.run(
            [sys.executable, str(ROOT / "ci" / "coverage_table.py"), "--mode", "replay"]
            + ["--report", str(tmp_path), "--tables", "avx2", "--floor-goal", floor],
            capture_output=True,
            text=True,
        )

    ok = run("80")  # goal: 8/10 branches; the total (8/22) is not gated here
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "layer, kernel and training code: branches 8/10 (80.0 %), lines 10/10" in ok.stdout
    assert json.loads((tmp_path / "summary.json").read_text())["goal_branch_percent"] == 80.0
    low = run("80.1")
    assert low.returncode == 1
    assert "layer, kernel and training branch 80.00% is below the floor 80.10%" in low.stdout


def _call_arguments(text: str, name: str) -> list[list[str]]:
    """The argument lists of every call of `name(` in C source text (not its
    declaration or definition: those follow a type)."""
    calls = []
    for match in re.finditer(rf"\b{name}\(", text):
        before = text[: match.start()].rstrip()
        if before.endswith("void"):  # `void nntk_gemm(` : the prototype / definition
            continue
        depth, args, current = 1, [], ""
        for ch in text[match.end() :]:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            if ch == "," and depth == 1:
                args.append(current.strip())
                current = ""
            else:
                current += ch
        calls.append([*args, current.strip()])
    return calls


def test_every_gemm_call_keeps_the_contract_the_dead_code_went_for():
    """nntk_gemm computes alpha = 1 and beta 0 or 1 only (core/ops.h): its general
    alpha/beta path, which no caller reached, was deleted (docs/coverage.md, part C). A
    caller passing anything else would get a wrong product silently, so every call in
    the sources is checked here."""
    calls = [
        args
        for path in SOURCES
        if path.suffix == ".c"
        for args in _call_arguments(path.read_text(), "nntk_gemm")
    ]
    assert len(calls) >= 10  # the layers' weight and input gradients
    for args in calls:
        assert len(args) == 13, args
        assert args[5] == "1.0f" and args[10] in {"0.0f", "1.0f"}, args


def test_a_build_with_fewer_kernel_tables_asks_for_a_subset_of_the_kernel_products(monkeypatch):
    """The Conv1D kernel-product buckets (parity.blocking.kernel_products) of a build without
    the SIMD tables (the portable build: mutation testing replays on it) are among those
    the fixtures were recorded for with every table, or its replay would report missing
    buckets."""
    from parity import blocking

    full = blocking.kernel_constants()
    generic_only = {k: v for k, v in full.items() if "." not in k or k.startswith("generic.")}
    products = {}
    for name, constants in (("full", full), ("generic", generic_only)):
        blocking.kernel_products.cache_clear()
        monkeypatch.setattr(blocking, "kernel_constants", lambda c=constants: c)
        products[name] = set(blocking.kernel_products())
    blocking.kernel_products.cache_clear()
    assert products["generic"] <= products["full"]
    # The default build has the SIMD tables too, whose products the portable build does
    # not ask for; the portable build (the second CI test pass) has only the generic one.
    if generic_only != full:
        assert products["generic"] < products["full"]

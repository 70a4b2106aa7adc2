"""Mutation testing of the C library: how many planted faults does the suite catch?

    python tools/mutation/mutate.py [--seed N] [--sample N] [--replay-only]
                                    [--results FILE] [--resume] [--floor-replay PCT]
                                    [--floor-total PCT] [--table FILE]
                                    [--files REGEX] [--keys KEY,...]
    python tools/mutation/mutate.py --list | --report --results FILE
    python tools/mutation/mutate.py --check KEY,... [--command "pytest ..."]

The mutants come from universalmutator (PyPI, pinned in the `mutation` extra): its
regular-expression rules for C (universal.rules, c.rules, c_like.rules, the set
`mutate file.c` uses) applied to every C source of the library (nntk_core/csrc/src:
*.c, *.inc, and the private headers that hold inline code). The tool skips any line
holding "/*"; most of this code ends its lines with shape comments, so the sources are
mutated with their comments blanked out (newlines kept, so line numbers stay).

Sampling: a mutant's key is its file, its original line, its mutated line and the
occurrence of that pair in the file (no line number, so the key survives edits
elsewhere). The sample is the N mutants with the smallest sha256("SEED:key"); a
smaller N with the same seed is a subset of a larger one (the CI sample is the head
of the full sample), and editing one file changes only that file's mutants.

Each sampled mutant, grouped by file:
1. is written into a private copy of the sources (build/mutation/src; the checkout is
   never touched) and built incrementally (-j1) in build/mutation/default (the default
   build: OpenBLAS and the SIMD kernel tables). A compile failure makes it *invalid*
   (not counted). If every object file is bit-identical to the unmutated build's, the
   portable build (build/mutation/portable: no BLAS, no SIMD) is tried; identical there
   too makes it *equivalent* by trivial compiler equivalence (TCE). Otherwise the
   build whose code changed is the one tested.
2. `nntk-parity replay` (TF-free) runs against that build (NNTK_CORE_LIB). A failure,
   a crash (signal) or a timeout (an endless loop) kills it. A mutant that survives
   the CPU's own table is replayed again under NNTK_ISA=avx2 and NNTK_ISA=generic:
   each table is a separate code path in the kernel files, and code outside them
   takes paths by the table's constants (recurrent.c's panels, read by avx2 and
   generic only); CI replays under all three (ci/kernel-tables.sh).
3. A replay survivor (unless --replay-only or listed as equivalent) meets the rest of
   the suite, cheapest first (see `live`): replay on its ASan+UBSan build, the C smoke
   test (tests/c/smoke.c), the C thread test (tests/c/threads.c, one round, not under
   TSan: the first calls raced, OpenBLAS's set-up observed), the allocation-failure loop
   (tests/c/alloc_faults.c) on its allocation-failure build (ci/alloc-faults.sh's:
   -DNNTK_ALLOC_FAULTS=ON + ASan+UBSan, LeakSanitizer on), the contract tests, the
   allocation failures from Python (tests/alloc_faults_check.py), the tests of the layers
   that use its file, the live ci profile of those layers (`nntk-parity run --profile ci
   --layer ...`). The two twin builds of a tested build are made (and checked clean) when
   its first survivor needs them.
4. A survivor of everything is *equivalent* only if tools/mutation/equivalent.toml
   lists it with the reason; otherwise it *survived*.

Figures (over non-equivalent valid mutants): replay kill rate and replay + live kill
rate, per file and in total. --floor-replay / --floor-total make the command exit 1
when a figure is below the floor (the CI gate). Results go to --results (JSON, one
record per mutant, written after each mutant); --resume continues a run with the same
seed, sample, sources and fixtures.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CSRC = Path("nntk_core/csrc")
SRC = CSRC / "src"
# The work directory (NNTK_MUTATION_DIR): two runs at once need two.
WORK = Path(os.environ.get("NNTK_MUTATION_DIR", ROOT / "build" / "mutation")).resolve()
EQUIVALENT_FILE = Path(__file__).resolve().parent / "equivalent.toml"
DEFAULT_SEED = 20261206
# universalmutator's rule set for a .c file (what `mutate file.c` applies).
RULES = ["universal.rules", "c.rules", "c_like.rules"]
# The library's build inputs copied into the private source tree.
BUILD_INPUTS = ["CMakeLists.txt", "cmake", str(CSRC)]
CONFIGS = {
    "default": [],
    "portable": ["-DNNTK_BLAS=OFF", "-DNNTK_SIMD=OFF"],
}
CONSTRAINTS = [
    "implicit-function-declaration",
    "int-conversion",
    "incompatible-pointer-types",
    "return-type",  # a value-returning function that falls off its end (UB when used)
]
# The sanitizer build of a replay survivor (ci/sanitize.sh's ASan+UBSan build): an
# out-of-bounds access or undefined behaviour that leaves every value right.
SANITIZER_FLAGS = {name: ["-DNNTK_SANITIZE=ON", *flags] for name, flags in CONFIGS.items()}
# Its allocation-failure twin (ci/alloc-faults.sh's build): every malloc/calloc/realloc
# of the library can be made to fail in turn, so a mutant of what follows a failed
# allocation (a failure ignored, a half-built handle returned, a leak) meets a check.
FAULT_FLAGS = {name: ["-DNNTK_ALLOC_FAULTS=ON", *flags] for name, flags in SANITIZER_FLAGS.items()}
# ci/alloc-faults.sh's loop: every config variant (seed 1, 100%) and the model files.
FAULT_LOOP_ARGS = ["1", "100", *sorted(map(str, (ROOT / "fuzz/model_corpus").glob("*.nntk")))]
# The code compiled into each kernel table (kernels_impl.inc includes vmath.h).
KERNEL_FILES = {"src/core/kernels_impl.inc", "src/core/vmath.h"}
ISA_FALLBACKS = ["avx2", "generic"]  # tables below the CPU's own, for a replay survivor

# Tests run at the live stage, beside the live ci profile of the affected layers.
# Every library mutant: the C-API and bad-input contracts, the public API and the cases
# written for earlier survivors.
TESTS_ALWAYS = [
    "tests/test_c_api_invalid.py",
    "tests/test_bad_input.py",
    "tests/test_api.py",
    "tests/test_layer_rules.py",  # the layer-specific rules (Conv1d, BatchNorm, Bidirectional)
    "tests/test_mutation_kills.py",  # the cases written for this sample's survivors
]
TESTS_TRAINING = [
    "tests/test_losses_keras.py",
    "tests/test_optimizers_keras.py",
    "tests/test_model_api.py",
    "tests/test_model_keras.py",
]
TESTS_RECURRENT = ["tests/test_recurrent_api.py", "tests/test_recurrent_large_weights.py"]


# ----------------------------------------------------------------------------- mutants


def blank_comments(text: str) -> str:
    """C source with every comment's characters replaced by spaces (newlines kept), so
    universalmutator, which skips any line holding "/*", sees the code on such lines.
    String and character literals are kept as they are."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def mutation_files() -> list[str]:
    """The C sources to mutate, relative to nntk_core/csrc: every .c and .inc, and the
    private headers with code in them (static inline functions)."""
    files = []
    for path in sorted((ROOT / SRC).rglob("*")):
        text = path.read_text() if path.is_file() else ""
        if path.suffix in (".c", ".inc") or (path.suffix == ".h" and "static inline" in text):
            files.append(str(path.relative_to(ROOT / CSRC)))
    return files


@dataclass
class Mutant:
    key: str
    file: str  # relative to nntk_core/csrc
    line: int
    original: str  # the original line, comments included
    mutated: str  # the mutated line (comments blanked)
    rule: str
    rank: str = ""  # sha256(seed:key): the sample order

    def text(self) -> str:
        """The mutated file: the checkout's, comments blanked, with the mutated line."""
        lines = blank_comments((ROOT / CSRC / self.file).read_text()).splitlines(keepends=True)
        lines[self.line - 1] = self.mutated
        return "".join(lines)


def generate(file: str) -> list[Mutant]:
    from universalmutator import mutator

    text = (ROOT / CSRC / file).read_text()
    original = text.splitlines(keepends=True)
    blanked = blank_comments(text).splitlines(keepends=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the tool narrates on stdout
        raw = mutator.mutants_regexp(
            blanked, ruleFiles=RULES, ignorePatterns=[], ignoreStringOnly=True
        )
    mutants, seen = [], {}
    for line, mutated, (rule, _where), _pair in raw:
        pair = (original[line - 1].strip(), mutated.strip())
        occurrence = seen[pair] = seen.get(pair, -1) + 1
        key = hashlib.sha256("\0".join((file, *pair, str(occurrence))).encode()).hexdigest()[:16]
        mutants.append(Mutant(key, file, line, original[line - 1], mutated, rule))
    return mutants


def sample(seed: int, size: int) -> tuple[list[Mutant], dict[str, int]]:
    everything, per_file = [], {}
    for file in mutation_files():
        mutants = generate(file)
        per_file[file] = len(mutants)
        everything += mutants
    for m in everything:
        m.rank = hashlib.sha256(f"{seed}:{m.key}".encode()).hexdigest()
    chosen = sorted(everything, key=lambda m: m.rank)[:size]
    return chosen, per_file


def load_equivalents() -> dict[str, str]:
    """tools/mutation/equivalent.toml: survivors judged equivalent, each with its reason,
    by mutant key (file, line and mutant are there for the reader and checked)."""
    data = tomllib.loads(EQUIVALENT_FILE.read_text()) if EQUIVALENT_FILE.exists() else {}
    judged = {}
    for entry in data.get("equivalent", []):
        if not entry.get("reason", "").strip():
            raise SystemExit(f"{EQUIVALENT_FILE}: {entry} has no reason")
        judged[entry["key"]] = entry["reason"]
    return judged


# ------------------------------------------------------------------------------ builds


def sync_sources(dest: Path) -> None:
    """Mirror the build inputs into dest, rewriting only files whose bytes differ (so
    the incremental build recompiles only what changed)."""
    wanted = set()
    for name in BUILD_INPUTS:
        base = ROOT / name
        for path in [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()):
            rel = path.relative_to(ROOT)
            wanted.add(rel)
            target = dest / rel
            if not target.exists() or target.read_bytes() != path.read_bytes():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        if path.relative_to(dest) not in wanted:
            path.unlink()


def run(cmd, timeout, env=None, log=None) -> tuple[str, int | None, float]:
    """Runs cmd in its own process group: ('ok'|'failed'|'crash'|'timeout', code, s)."""
    start = time.monotonic()
    with open(log or os.devnull, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return "timeout", None, time.monotonic() - start
    elapsed = time.monotonic() - start
    if code == 0:
        return "ok", 0, elapsed
    return ("crash" if code < 0 else "failed"), code, elapsed


class Builds:
    def __init__(self, src: Path):
        self.src = src
        self.dirs = {name: WORK / name for name in CONFIGS}
        self.baseline: dict[str, dict[str, str]] = {}
        self.live_ready: set[str] = set()  # tested builds whose live twins are ready
        self.programs: dict[str, Path | None] = {}  # C test programs (c_test_program)

    def configure_and_build(self) -> None:
        """The default build now; the others when a mutant first needs them (most never
        reach the portable build: it is for mutants whose default objects are unchanged)."""
        self.ensure("default")

    def ensure(self, name: str) -> None:
        """Configures and builds `name` from the unmutated sources, and records its objects.
        Call with the source copy unmutated."""
        if name in self.baseline:
            return
        self.configure(name, CONFIGS[name])
        if self.build(name) != "ok":
            raise SystemExit(f"the unmutated {name} build fails: see {WORK}/build.log")
        self.baseline[name] = self.objects(name)

    def prepare_live(self, tested: str) -> None:
        """The live stage's twins of the tested build (ASan+UBSan, allocation-failure
        injection) and the C test programs: each check passes on the unmutated sources
        (call with the source copy unmutated, and build the tested build again after;
        once per tested build, when its first replay survivor needs them)."""
        if tested in self.live_ready:
            return
        for name, flags, checks in [
            (tested, None, self.c_program_checks),
            (self.sanitized(tested), SANITIZER_FLAGS[tested], lambda lib: [replay_check(lib)]),
            (self.faulty(tested), FAULT_FLAGS[tested], self.fault_checks),
        ]:
            if flags is not None:
                self.dirs[name] = WORK / name
                self.configure(name, flags)
            if self.build(name) != "ok":
                raise SystemExit(f"the unmutated {name} build fails: see {WORK}/build.log")
            for i, (label, cmd, env) in enumerate(checks(self.library(name))):
                log = WORK / f"baseline-{name}-{i}.log"
                if run(cmd, 1800, env, log)[0] != "ok":
                    raise SystemExit(f"{label} fails on the unmutated {name} build: see {log}")
        self.live_ready.add(tested)

    @staticmethod
    def sanitized(tested: str) -> str:
        return f"asan-{tested}"

    @staticmethod
    def faulty(tested: str) -> str:
        return f"faults-{tested}"

    def c_program_checks(self, library: Path) -> list[tuple[str, list[str], dict[str, str]]]:
        """The C smoke test and one round of the C thread test (the first calls raced,
        OpenBLAS's set-up observed), not under TSan, on a library."""
        env = dict(env_for(library), LD_LIBRARY_PATH=str(library.parent))  # the programs' libnntk
        checks = []
        for target, label, arguments in [
            ("nntk_smoke", "C smoke test (tests/c/smoke.c)", []),
            ("nntk_threads", "C thread test (tests/c/threads.c)", ["1"]),
        ]:
            program = self.c_test_program(target)
            if program is not None:
                checks.append((label, [str(program), *arguments], env))
        return checks

    def fault_checks(self, library: Path) -> list[tuple[str, list[str], dict[str, str]]]:
        """ci/alloc-faults.sh's two checks on an allocation-failure build: the C loop
        (tests/c/alloc_faults.c, LeakSanitizer on) and the same from Python."""
        program = self.c_test_program("nntk_alloc_faults", FAULT_FLAGS["portable"])
        if program is None:
            raise SystemExit(f"tests/c/alloc_faults.c does not build: see {WORK}/build.log")
        env = dict(sanitizer_env(library), ASAN_OPTIONS="detect_leaks=1:halt_on_error=1")
        env.pop("LD_PRELOAD")  # the program is instrumented itself
        env["LD_LIBRARY_PATH"] = str(library.parent)
        loop = [str(program), *FAULT_LOOP_ARGS]
        pytest = [tool("pytest"), "-q", "-p", "no:cacheprovider", "tests/alloc_faults_check.py"]
        return [
            ("allocation-failure loop (tests/c/alloc_faults.c)", loop, env),
            (
                "allocation failures from Python (tests/alloc_faults_check.py)",
                pytest,
                sanitizer_env(library),
            ),
        ]

    def configure(self, name: str, flags: list[str]) -> None:
        cmd = ["cmake", "-S", str(self.src), "-B", str(self.dirs[name])]
        cmd += ["-DCMAKE_BUILD_TYPE=Release", f"-DPython_EXECUTABLE={sys.executable}", *flags]
        # ISO C constraint violations that GCC 12 only warns about (errors by default from
        # GCC 14): a call of an undeclared function (a mutant like `j(0+1)`), an integer
        # passed for a pointer and back (swapped arguments); and a deleted `return x;`
        # (undefined behaviour, which the project's -Wall -Werror build refuses). Such a
        # mutant is invalid, not left to fail or pass by chance at run time.
        cmd += [f"-DCMAKE_C_FLAGS={' '.join('-Werror=' + w for w in CONSTRAINTS)}"]
        with open(WORK / "configure.log", "a") as log:  # CMake's notes on unused -D's
            subprocess.run(cmd, check=True, stdout=log, stderr=log)

    def build(self, name: str) -> str:
        cmd = ["cmake", "--build", str(self.dirs[name]), "-j1", "--target", "nntk"]
        status, _, _ = run(cmd, timeout=600, log=WORK / "build.log")
        return status

    def objects(self, name: str) -> dict[str, str]:
        return {
            str(p.relative_to(self.dirs[name])): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.dirs[name].rglob("*.o"))
        }

    def library(self, name: str) -> Path:
        return self.dirs[name] / "libnntk.so"

    def c_test_program(self, target: str, flags: list[str] | None = None) -> Path | None:
        """A C test program of tests/c (the smoke test: every layer through the C API,
        with training capacities and inference-only handles, which the Python binding
        never uses; the thread test; the allocation-failure loop), built once from the checkout
        (unmutated) in its own directory; run on a mutant with LD_LIBRARY_PATH (its
        RUNPATH gives way). None if it does not build."""
        if target not in self.programs:
            where = WORK / target
            cmd = ["cmake", "-S", str(ROOT), "-B", str(where), "-DCMAKE_BUILD_TYPE=Release"]
            cmd += [f"-DPython_EXECUTABLE={sys.executable}", "-DNNTK_BUILD_C_TESTS=ON"]
            cmd += flags or []
            with open(WORK / "configure.log", "a") as log:
                configured = subprocess.run(cmd, stdout=log, stderr=log).returncode == 0
            build = ["cmake", "--build", str(where), "-j1", "--target", target]
            built = configured and run(build, timeout=1200, log=WORK / "build.log")[0] == "ok"
            self.programs[target] = where / target if built else None
        return self.programs[target]


# ------------------------------------------------------------------------------ stages


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run inside the project's environment (ci/env.sh)")
    return found


def env_for(library: Path, isa: str | None = None) -> dict[str, str]:
    env = dict(os.environ, NNTK_CORE_LIB=str(library))
    env.pop("NNTK_ISA", None)
    if isa:
        env["NNTK_ISA"] = isa
    return env


def replay_command() -> list[str]:
    return [tool("nntk-parity"), "replay", "--fixtures", str(ROOT / "fixtures")]


def replay_check(library: Path) -> tuple[str, list[str], dict[str, str]]:
    """Replay on a sanitizer build (what ci/sanitize.sh runs)."""
    return ("replay on the ASan+UBSan build", replay_command(), sanitizer_env(library))


def replay(library: Path, isa: str | None, timeout: float, log: Path) -> tuple[str, int | None]:
    status, code, _ = run(replay_command(), timeout, env_for(library, isa), log)
    return status, code


def spec_names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "parity" / "specs").glob("*.py") if p.stem != "__init__")


def exported_names(path: Path) -> set[str]:
    """What other layer files can reach in a layer file: its public functions and its
    layer types (Bidirectional runs the recurrent layers' types, TimeDistributedDense
    runs the type dense.c declares for it)."""
    text = path.read_text()
    functions = re.findall(r"^NNTK_API\b[^(]*?\b(NNTK\w+)\s*\(", text, re.M)
    types = re.findall(r"^const NNTKLayerType (nntk_\w+_type)\b", text, re.M)
    return set(functions) | set(types)


def affected_layers(file: str) -> list[str]:
    """The layer specs whose code runs the file: shared code (core/) serves every layer;
    a layer's own file serves its spec and every layer file that calls its public
    functions or runs its layer types (Bidirectional wraps the recurrent layers,
    TimeDistributedDense wraps Dense); training code (train/) serves no layer spec,
    only the training tests."""
    specs = spec_names()
    if file.startswith("src/core/"):
        return specs
    stem = Path(file).stem
    if stem not in specs:
        return []
    names = exported_names(ROOT / CSRC / file)
    users = {
        p.stem
        for p in (ROOT / SRC).glob("*.c")
        if p.stem != stem
        and names & set(re.findall(r"\b(?:NNTK\w+|nntk_\w+_type)\b", p.read_text()))
    }
    return sorted({stem} | (users & set(specs)))


def affected_tests(file: str, layers: list[str]) -> list[str]:
    """The tests of the file's layers, beyond the always-run contract tests."""
    tests = []
    if file.startswith("src/train/") or file.startswith("src/core/"):
        tests += TESTS_TRAINING  # training runs every layer's gradient and the core code
    if {"rnn", "gru", "lstm", "bidirectional"} & set(layers):
        tests += TESTS_RECURRENT
    if file in KERNEL_FILES or file == "src/core/ops.c":
        tests.append("tests/test_kernels.py")
    return tests


def sanitizer_env(library: Path) -> dict[str, str]:
    """ci/sanitize.sh's setting: the runtimes preloaded into the uninstrumented Python,
    every report fatal, leak detection off (CPython leaks at exit by design)."""
    runtimes = [
        subprocess.run(
            ["gcc", f"-print-file-name={rt}"], capture_output=True, text=True
        ).stdout.strip()
        for rt in ("libasan.so", "libubsan.so")
    ]
    return dict(
        env_for(library),
        LD_PRELOAD=" ".join(runtimes),
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
    )


def live(builds: Builds, tested: str, file: str, timeout: float, log_dir: Path):
    """The rest of the suite, cheapest first: replay on the ASan+UBSan build (what
    ci/sanitize.sh runs), the C smoke and thread tests, the allocation-failure loop on the mutant's
    injection build (what ci/alloc-faults.sh runs) and the contract tests (seconds), the
    same failures from Python, the tests of the file's layers, then the live ci profile
    of those layers. ('killed'|'survived', what killed it or what ran)."""
    layers = affected_layers(file)
    env = env_for(builds.library(tested))
    for twin in (builds.sanitized(tested), builds.faulty(tested)):
        if builds.build(twin) != "ok":
            return "survived", f"the {twin} build fails (not counted as a kill)"
    fault_loop, fault_python = builds.fault_checks(builds.library(builds.faulty(tested)))
    pytest = [tool("pytest"), "-x", "-q", "-p", "no:cacheprovider", "--hypothesis-profile=ci"]
    pytest += ["-m", "not slow"]  # the full-size model parity: the nightly suite's, not ours
    commands = [replay_check(builds.library(builds.sanitized(tested)))]
    commands += builds.c_program_checks(builds.library(tested))
    commands.append(fault_loop)
    commands.append(("pytest -x " + " ".join(TESTS_ALWAYS), [*pytest, *TESTS_ALWAYS], env))
    commands.append(fault_python)
    tests = affected_tests(file, layers)
    if tests:
        commands.append(("pytest -x " + " ".join(tests), [*pytest, *tests], env))
    if layers:
        cmd = [tool("nntk-parity"), "run", "--profile", "ci"]
        for layer in layers:
            cmd += ["--layer", layer]
        label = "nntk-parity run --profile ci --layer " + " --layer ".join(layers)
        commands.append((label, cmd, env))
    for i, (label, cmd, command_env) in enumerate(commands):
        status, code, _ = run(cmd, timeout, command_env, log_dir / f"live{i}.log")
        if status != "ok":
            return "killed", f"{label}: {status} (exit {code})"
    return "survived", "; ".join(label for label, _, _ in commands)


# ----------------------------------------------------------------------------- driver


@dataclass
class Result:
    key: str
    file: str
    line: int
    original: str
    mutated: str
    rule: str
    outcome: str = ""  # invalid | equivalent | killed_replay | killed_live | survived
    detail: str = ""
    build: str = ""  # the build tested (default | portable)
    seconds: float = 0.0
    stages: list[str] = field(default_factory=list)


def fingerprint() -> dict[str, str]:
    def tree_hash(base: Path, pattern: str) -> str:
        digest = hashlib.sha256()
        for p in sorted(base.rglob(pattern)):
            if p.is_file():
                digest.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes())
        return digest.hexdigest()[:16]

    return {
        "sources": tree_hash(ROOT / CSRC, "*"),
        "fixtures": hashlib.sha256((ROOT / "fixtures/manifest.json").read_bytes()).hexdigest()[:16],
    }


def mutate_one(m: Mutant, builds: Builds, args, replay_timeout: float, equivalents) -> Result:
    start = time.monotonic()
    result = Result(m.key, m.file, m.line, m.original.rstrip("\n"), m.mutated.rstrip("\n"), m.rule)
    target = builds.src / CSRC / m.file
    pristine = (ROOT / CSRC / m.file).read_text()
    log_dir = WORK / "logs" / m.key
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "mutant.diff").write_text(
        f"{m.file}:{m.line}\n- {m.original.rstrip()}\n+ {m.mutated.rstrip()}\n"
    )
    try:
        tested = None
        for name in CONFIGS:
            if name not in builds.baseline:  # built first from the unmutated sources
                target.write_text(pristine)
                builds.ensure(name)
            target.write_text(m.text())
            if builds.build(name) != "ok":
                result.outcome, result.detail = "invalid", f"does not compile ({name} build)"
                return result
            if builds.objects(name) != builds.baseline[name]:
                tested = name
                break
        if tested is None:
            result.outcome = "equivalent"
            result.detail = "TCE: object code identical in the default and the portable build"
            return result
        result.build = tested
        library = builds.library(tested)
        isas = [None]
        if tested == "default":
            isas += ISA_FALLBACKS
        for isa in isas:
            label = f"replay (NNTK_ISA={isa})" if isa else "replay"
            log = log_dir / f"replay-{isa}.log"
            status, code = replay(library, isa, replay_timeout, log)
            result.stages.append(f"{label}: {status}")
            if code == 2 and "cannot load the native library" in log.read_text():
                result.outcome, result.detail = "invalid", "does not load (unresolved symbol)"
                return result
            if status != "ok":
                what = {"failed": f"parity failure (exit {code})", "crash": f"crash ({code})"}
                result.outcome = "killed_replay"
                result.detail = f"{label}: " + what.get(status, "timeout (endless loop)")
                return result
        if m.key in equivalents:
            result.outcome, result.detail = "survived", "survived replay; listed as equivalent"
            return result
        if args.replay_only:
            result.outcome, result.detail = "survived", REPLAY_ONLY
            return result
        if tested not in builds.live_ready:  # its twins, built from the unmutated sources
            target.write_text(pristine)
            builds.prepare_live(tested)
            target.write_text(m.text())
            if builds.build(tested) != "ok":
                raise SystemExit(f"the mutant's {tested} build fails again: see {WORK}/build.log")
        outcome, detail = live(builds, tested, m.file, args.live_timeout, log_dir)
        result.stages.append(f"live: {outcome}: {detail}")
        result.outcome = "killed_live" if outcome == "killed" else "survived"
        result.detail = detail
        return result
    finally:
        target.write_text(pristine)
        result.seconds = round(time.monotonic() - start, 1)


def judge(results: list[Result], equivalents: dict) -> list[Result]:
    """The results with every listed survivor relabelled equivalent, with its reason."""
    judged = []
    for r in sorted(results, key=lambda r: (r.file, r.line, r.key)):
        reason = equivalents.get(r.key)
        if reason and r.outcome == "survived":
            r = Result(**{**asdict(r), "outcome": "equivalent", "detail": f"judged: {reason}"})
        judged.append(r)
    return judged


REPLAY_ONLY = "survived replay (live stage not run)"
COLUMNS = ["killed_replay", "killed_live", "survived", "equivalent", "invalid"]


def table(results: list[Result], replay_only: bool) -> tuple[str, float, float]:
    rows, totals = {}, dict.fromkeys(COLUMNS, 0)
    for r in results:
        row = rows.setdefault(r.file, dict.fromkeys(COLUMNS, 0))
        row[r.outcome] += 1
        totals[r.outcome] += 1

    def rates(c):
        counted = c["killed_replay"] + c["killed_live"] + c["survived"]
        if not counted:
            return "-", "-", 100.0, 100.0
        replay_rate = 100 * c["killed_replay"] / counted
        total_rate = 100 * (c["killed_replay"] + c["killed_live"]) / counted
        return f"{replay_rate:.1f}%", f"{total_rate:.1f}%", replay_rate, total_rate

    header = ["file", "mutants", *COLUMNS, "replay kill", "replay+live kill"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for file in sorted(rows):
        c = rows[file]
        rr, tr, _, _ = rates(c)
        lines.append(
            f"| {file} | {sum(c.values())} | "
            + " | ".join(str(c[k]) for k in COLUMNS)
            + f" | {rr} | {'n/a' if replay_only else tr} |"
        )
    rr, tr, replay_rate, total_rate = rates(totals)
    lines.append(
        f"| **total** | {sum(totals.values())} | "
        + " | ".join(str(totals[k]) for k in COLUMNS)
        + f" | {rr} | {'n/a' if replay_only else tr} |"
    )
    return "\n".join(lines), replay_rate, total_rate


def survivors_text(results: list[Result]) -> str:
    out = []
    for r in results:
        if r.outcome == "survived" or r.detail.startswith("judged:"):
            out.append(
                f"- [{r.outcome}] `{r.file}:{r.line}` ({r.key})\n"
                f"  - `{r.original.strip()}`\n  + `{r.mutated.strip()}`\n  {r.detail}"
            )
    return "\n".join(out) or "(none)"


def check_keys(args) -> int:
    """Builds each mutant of --check (keys, comma-separated) and runs one command on it
    (--command, default the replay): does a new case or test kill it? Exit 0 only when
    every one is killed (the command fails) and the unmutated library passes."""
    chosen, _ = sample(args.seed, args.sample)
    by_key = {m.key: m for m in chosen}
    unknown = [k for k in args.check.split(",") if k not in by_key]
    if unknown:
        raise SystemExit(f"not in the sample (seed {args.seed}, size {args.sample}): {unknown}")
    command = args.command.split() if args.command else replay_command()
    WORK.mkdir(parents=True, exist_ok=True)
    src = WORK / "src"
    sync_sources(src)
    builds = Builds(src)
    builds.configure_and_build()
    library = builds.library("default")
    env = dict(env_for(library), LD_LIBRARY_PATH=str(library.parent))  # a C program's libnntk
    if run(command, args.live_timeout, env, WORK / "check-baseline.log")[0] != "ok":
        raise SystemExit(
            f"the command fails on the unmutated library: see {WORK}/check-baseline.log"
        )
    survivors = 0
    for key in args.check.split(","):
        m = by_key[key]
        target = src / CSRC / m.file
        pristine = (ROOT / CSRC / m.file).read_text()
        try:
            target.write_text(m.text())
            if builds.build("default") != "ok":
                verdict = "invalid (does not compile)"
            else:
                status, code, _ = run(command, args.live_timeout, env, WORK / f"check-{key}.log")
                verdict = "survived" if status == "ok" else f"killed ({status}, exit {code})"
                survivors += status == "ok"
        finally:
            target.write_text(pristine)
        print(f"{key} {m.file}:{m.line} {m.mutated.strip()[:60]!r}: {verdict}", flush=True)
    builds.build("default")
    return 1 if survivors else 0


def report(args) -> int:
    """The figures of a results file as it stands (a run in progress or interrupted:
    mutants still waiting for their live stage count as survivors)."""
    data = json.loads(args.results.read_text())
    results = judge([Result(**r) for r in data["mutants"]], load_equivalents())
    replay_only = any(r.detail == REPLAY_ONLY for r in results)
    text, replay_rate, total_rate = table(results, False)
    waiting = sum(r.detail == REPLAY_ONLY for r in results)
    summary = (
        f"{data['config']}\n{len(results)} mutants"
        + (f", {waiting} replay survivors still waiting for the live stage" if replay_only else "")
        + f"\n\n{text}\n\nSurvivors and judged equivalents:\n{survivors_text(results)}\n"
    )
    print(summary)
    if args.table:
        args.table.write_text(summary)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--sample", type=int, default=500, help="mutants (default 500)")
    parser.add_argument("--replay-only", action="store_true", help="no live stage (CI)")
    parser.add_argument("--results", type=Path, help="results JSON (default build/mutation/)")
    parser.add_argument("--resume", action="store_true", help="continue a matching run")
    parser.add_argument("--files", help="only mutants of files matching this regex")
    parser.add_argument("--keys", help="only these mutants of the sample (keys, comma-separated)")
    parser.add_argument("--live-timeout", type=float, default=1800, help="s per live command")
    parser.add_argument("--floor-replay", type=float, help="exit 1 if the replay kill %% < this")
    parser.add_argument("--floor-total", type=float, help="exit 1 if the total kill %% < this")
    parser.add_argument("--table", type=Path, help="also write the figures here (markdown)")
    parser.add_argument("--list", action="store_true", help="list the sample and stop")
    parser.add_argument(
        "--report", action="store_true", help="only print the figures of --results (no build)"
    )
    parser.add_argument(
        "--check", metavar="KEYS", help="only build these mutants and run --command"
    )
    parser.add_argument("--command", help="with --check: the command (default: the replay)")
    args = parser.parse_args(argv)
    if args.report:
        return report(args)
    if args.check:
        return check_keys(args)

    from importlib.metadata import version

    chosen, per_file = sample(args.seed, args.sample)
    if args.files:
        chosen = [m for m in chosen if re.search(args.files, m.file)]
    if args.keys:
        keys = args.keys.split(",")
        missing = sorted(set(keys) - {m.key for m in chosen})
        if missing:
            raise SystemExit(f"not in the sample (seed {args.seed}, size {args.sample}): {missing}")
        chosen = [m for m in chosen if m.key in keys]
    if args.list:
        for m in chosen:
            print(f"{m.key} {m.file}:{m.line}: {m.original.strip()}  ==>  {m.mutated.strip()}")
        print(f"{len(chosen)} of {sum(per_file.values())} mutants (seed {args.seed})")
        return 0

    WORK.mkdir(parents=True, exist_ok=True)
    results_path = args.results or WORK / f"results-seed{args.seed}-n{args.sample}.json"
    config = {
        "tool": f"universalmutator {version('universalmutator')}",
        "seed": args.seed,
        "sample": args.sample,
        "files": args.files,
        **({"keys": args.keys} if args.keys else {}),  # (absent: a nightly run's config as before)
        **fingerprint(),
    }
    done: dict[str, Result] = {}  # results to reuse
    previous: dict[str, Result] = {}  # every result of the run resumed (kept until redone)
    if args.resume and results_path.exists():
        data = json.loads(results_path.read_text())
        if data["config"] == config:
            previous = {r["key"]: Result(**r) for r in data["mutants"]}
            done = dict(previous)
            if not args.replay_only:  # a replay-only run's survivors still need the live stage
                done = {k: r for k, r in done.items() if r.detail != REPLAY_ONLY}
        else:
            print(f"{results_path}: another configuration; starting afresh", flush=True)

    src = WORK / "src"
    sync_sources(src)
    builds = Builds(src)
    builds.configure_and_build()
    status, code = replay(builds.library("default"), None, 600, WORK / "baseline-replay.log")
    if status != "ok":
        raise SystemExit(
            f"replay fails on the unmutated library ({status}, exit {code}): "
            f"see {WORK}/baseline-replay.log; nothing can be measured"
        )
    baseline_seconds = max(run(replay_command(), 600, env_for(builds.library("default")))[2], 1)
    # An endless loop is stopped at 4x the unmutated replay's time (StrykerJS's default is
    # 1.5x + 5 s): a seeded sample that draws one would otherwise spend 10x a replay on it.
    replay_timeout = max(30.0, 4 * baseline_seconds)
    print(
        f"{config['tool']}: {sum(per_file.values())} mutants in {len(per_file)} files; "
        f"sample of {len(chosen)} (seed {args.seed}); replay {baseline_seconds:.1f} s "
        f"(timeout {replay_timeout:.0f} s)",
        flush=True,
    )

    equivalents = load_equivalents()
    results: list[Result] = []
    started = time.monotonic()
    # One file at a time; the shared code (whose live stage runs every layer) last.
    order = sorted(chosen, key=lambda m: (m.file.startswith("src/core/"), m.file, m.line, m.key))
    for i, m in enumerate(order, 1):
        result = done.get(m.key) or mutate_one(m, builds, args, replay_timeout, equivalents)
        results.append(result)
        print(
            f"[{i}/{len(order)} {time.monotonic() - started:.0f}s] {result.outcome:13s} "
            f"{m.file}:{m.line} {m.mutated.strip()[:70]!r} {result.detail}",
            flush=True,
        )
        # Also the resumed results not reached yet, so an interruption loses nothing.
        fresh = {r.key for r in results}
        kept = results + [r for k, r in previous.items() if k not in fresh]
        results_path.write_text(
            json.dumps({"config": config, "mutants": [asdict(r) for r in kept]}, indent=1)
        )
    # Leave the build trees unmutated (the last mutant's file was restored).
    for name in builds.baseline:
        builds.build(name)

    # The JSON keeps the measured outcomes; the judgement is applied to the figures only.
    results = judge(results, equivalents)
    text, replay_rate, total_rate = table(results, args.replay_only)
    summary = (
        f"{config['tool']}, seed {args.seed}, sample {len(results)} of "
        f"{sum(per_file.values())} mutants, sources {config['sources']}, fixtures "
        f"{config['fixtures']}, {time.monotonic() - started:.0f} s\n\n{text}\n\n"
        f"Survivors and judged equivalents:\n{survivors_text(results)}\n"
    )
    print("\n" + summary)
    if args.table:
        args.table.write_text(summary)
    print(f"results: {results_path}")
    failed = False
    if args.floor_replay is not None and replay_rate < args.floor_replay:
        print(f"FAILED: replay kill rate {replay_rate:.1f}% < floor {args.floor_replay}%")
        failed = True
    if args.floor_total is not None and total_rate < args.floor_total:
        print(f"FAILED: replay + live kill rate {total_rate:.1f}% < floor {args.floor_total}%")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

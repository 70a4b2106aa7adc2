"""Shared helpers of the fixture, report and CLI tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import parity
from parity.compare import Comparison, Tolerance, compare

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# Run in a subprocess, this makes TensorFlow (and Keras) unimportable before anything
# else is imported, then runs the CLI: anything that imports TensorFlow fails loudly.
NO_TF_PRELUDE = """
import sys
for name in ("tensorflow", "tf_keras", "keras"):
    sys.modules[name] = None  # `import tensorflow` now raises ImportError
try:
    import tensorflow
except ImportError:
    pass
else:
    raise SystemExit("the TensorFlow poisoning did not work")
from parity.cli import main
code = main(sys.argv[1:])
tf_names = ("tensorflow", "tf_keras")
loaded = sorted(n for n, m in sys.modules.items() if m is not None and n.startswith(tf_names))
if loaded:
    raise SystemExit(f"TensorFlow modules were loaded: {loaded[:5]}")
sys.exit(code)
"""


def copy_fixtures(tmp_path: Path) -> Path:
    target = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, target)
    return target


def manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def save_manifest(directory: Path, content: dict) -> None:
    (directory / "manifest.json").write_text(json.dumps(content, indent=1))


def _env() -> dict:
    """The subprocess finds the same parity/nntk_core packages as this process (the
    installed ones in CI, the checkout's with PYTHONPATH=. locally), and the same
    library (NNTK_CORE_LIB is inherited)."""
    env = dict(os.environ)
    if env.get("NNTK_CORE_LIB"):  # the subprocess runs elsewhere
        env["NNTK_CORE_LIB"] = str(Path(env["NNTK_CORE_LIB"]).resolve())
    root = str(Path(parity.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    return env


def cli(*args: str, no_tf: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs `nntk-parity ARGS` in a fresh interpreter (optionally with TensorFlow made
    unimportable) and returns the completed process (text output)."""
    if no_tf:
        command = [sys.executable, "-c", NO_TF_PRELUDE, *args]
    else:
        command = [sys.executable, "-m", "parity", *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd or tempfile.gettempdir(),
        timeout=600,
    )


def assert_close(
    quantity: str, native, reference, tolerance: Tolerance, keras32=None, case: str = ""
) -> Comparison:
    """The tests' one comparator, the suite's (parity/compare.py): nntk against the
    float64 referee within `tolerance` elementwise and, when Keras float32's value is
    given, within k times its error. Fails with the comparison's description."""
    result = compare(quantity, native, reference, keras32, tolerance)
    assert result.passed, f"{case}: {result.describe()}" if case else result.describe()
    return result


@dataclass
class WorstErrors:
    """Per quantity, the comparison that used the most of its tolerance over a test
    module (with its case), checked by assert_close and printed by report()."""

    title: str
    rows: dict[str, tuple[Comparison, str]] = field(default_factory=dict)

    def check(
        self, quantity: str, native, reference, tolerance: Tolerance, keras32=None, case: str = ""
    ) -> Comparison:
        result = assert_close(quantity, native, reference, tolerance, keras32, case)
        seen = self.rows.get(quantity)
        if seen is None or result.tolerance_used >= seen[0].tolerance_used:
            self.rows[quantity] = (result, case)
        return result

    def lines(self) -> list[str]:
        lines = [f"{self.title}: worst error per quantity"]
        for quantity, (c, case) in sorted(self.rows.items()):
            keras32 = (
                f"  Keras float32 {c.keras32_error / c.scale:.2e}"
                if c.keras32_error == c.keras32_error  # not NaN: Keras float32 was given
                else ""
            )
            lines.append(
                f"  {quantity:28s} {100 * c.tolerance_used:7.3f}% of tolerance  "
                f"max|err|/scale={c.max_error / c.scale:.2e}{keras32}  ({case})"
            )
        return lines

    def report(self, request) -> None:
        if self.rows:
            write_lines(request, self.lines())


def write_lines(request, lines: list[str]) -> None:
    """Writes a test module's summary lines to the terminal, past pytest's capture."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)

"""Shared helpers of the fixture, report and CLI tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import parity

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

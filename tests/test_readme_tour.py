"""The README's five-command tour stays real: its `nntk-parity` commands are the ones it
names, `run`'s arguments parse, and the commands that need no TensorFlow (list, replay,
repro of a fixture) succeed from a directory outside the checkout, with TensorFlow made
unimportable."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from helpers import cli

from parity.cli import EXIT_OK, build_parser

pytestmark = pytest.mark.harness

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_commands() -> list[list[str]]:
    """The `nntk-parity ...` lines of the tour's code block, as argument lists."""
    section = README.read_text().split("## A five-command tour", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [
        shlex.split(line.split("#", 1)[0])
        for line in block.splitlines()
        if line.startswith("nntk-parity ")
    ]


def test_the_tour_shows_list_run_replay_repro():
    assert [command[1] for command in tour_commands()] == ["list", "run", "replay", "repro"]


def test_the_tour_run_command_parses():
    (run,) = [command for command in tour_commands() if command[1] == "run"]
    args = build_parser().parse_args(run[1:])
    assert (args.layer, args.profile, args.report) == (["gru"], "dev", "reports/gru")


@pytest.mark.parametrize(
    "command",
    [command for command in tour_commands() if command[1] != "run"],
    ids=lambda command: command[1],
)
def test_the_tour_command_runs_outside_the_checkout_without_tensorflow(command):
    result = cli(*command[1:], no_tf=True)  # in the temporary directory
    assert result.returncode == EXIT_OK, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr

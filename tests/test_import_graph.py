"""The import graph of the Python packages: no import circles between modules, and no
subcommand imports the command line (parity/cli.py registers the subcommands; what
they share is in parity/terminal.py).

An import inside a function counts: a lazy import closes a circle as surely as one at
the top of a module (the old cli.py -> example.py -> models.py -> cli.py circle was
made of lazy imports). The graph is grimp's (the engine of import-linter), built from
the packages' source; the checker's own test runs it on a small package with such a
circle, so a checker that finds nothing fails here."""

from __future__ import annotations

import grimp
import pytest

pytestmark = pytest.mark.harness

# Every package the wheel installs that holds Python code (pyproject.toml,
# wheel.packages), except the ctypes binding, which imports none of them.
PACKAGES = ("parity", "nntk_bench", "nntk_examples", "nntk_models")


def build(*packages: str):
    return grimp.build_graph(*packages, cache_dir=None)


def circles(graph) -> list[list[str]]:
    """Every import a -> b where b also reaches a, with the chain back: [a, b, ..., a]."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported != importer and graph.chain_exists(importer=imported, imported=importer):
                back = graph.find_shortest_chain(importer=imported, imported=importer)
                found.append([importer, *back])
    return found


@pytest.fixture(scope="module")
def graph():
    return build(*PACKAGES)


def test_the_graph_holds_every_package(graph):
    for package in PACKAGES:
        assert package in graph.modules
    assert "parity.cli" in graph.modules and "nntk_bench.run" in graph.modules


def test_no_import_circles(graph):
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_subcommand_imports_the_command_line(graph):
    """Only `python -m parity` imports parity/cli.py."""
    assert graph.find_modules_that_directly_import("parity.cli") == {"parity.__main__"}


def test_the_suite_reaches_the_other_packages_only_to_register_their_commands(graph):
    """parity/ holds the suite alone: of its modules only cli.py imports the benchmark
    or the examples (to register `bench` and `example`); the model catalogue is data
    the suite builds from."""
    outside = {"nntk_bench", "nntk_examples"}
    importers = {
        importer
        for importer in graph.find_children("parity") | {"parity"}
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] in outside
    }
    assert importers == {"parity.cli"}


def test_the_checker_finds_a_circle_of_lazy_imports(tmp_path, monkeypatch):
    """A package whose cli imports example at the top, example imports models inside a
    function and models imports cli inside a function: one circle, found from each of
    its three imports."""
    package = tmp_path / "circle_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("from circle_pkg import example\n")
    (package / "example.py").write_text("def run():\n    from circle_pkg import models\n")
    (package / "models.py").write_text("def main():\n    from circle_pkg.cli import main\n")
    (package / "leaf.py").write_text("import circle_pkg.models\n")  # on no circle
    monkeypatch.syspath_prepend(str(tmp_path))
    found = circles(build("circle_pkg"))
    assert sorted(c[0] for c in found) == [
        "circle_pkg.cli",
        "circle_pkg.example",
        "circle_pkg.models",
    ]
    assert found[0] == [
        "circle_pkg.cli",
        "circle_pkg.example",
        "circle_pkg.models",
        "circle_pkg.cli",
    ]

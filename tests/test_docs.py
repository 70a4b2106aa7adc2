"""Every document reference in the repository points to something that exists.

A reference is a `*.md` path written anywhere in a tracked text file (code comments,
docstrings, Markdown links), optionally followed by section numbers (`§5`, `§0.3`,
`§1-§4`, `§0.3 and §0.4`) or a Markdown anchor (`#hardening`). The path resolves
against the repository root or, as a Markdown link does, against the referring
file's directory; a section number must be the number of a heading of that file
(`## 5. The parity method`, `### 0.3 tanh`), an anchor the GitHub slug of one.

The scanner's own tests run it on small repositories in tmp_path, with a broken
reference of each kind, so a scanner that finds nothing fails here.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.harness

SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent

# `.md` names that are not documents of the repository: files the tools write into
# a run's output directory (parity/report.py, the benchmark, ci/coverage.sh).
GENERATED_NAMES = {"report.md", "bench.md", "table.md"}

REFERENCE = re.compile(
    r"(?<![\w/.-])"  # not the tail of a longer name or a URL path
    r"(?P<path>(?:[\w.-]+/)*[\w.-]+\.md)(?![\w/])"
    r"(?:#(?P<anchor>[\w-]+))?"
    r"(?P<sections>(?:\s*(?:,|and|or|-|–|to)?\s*§\d+(?:\.\d+)*)*)"
)
SECTION_NUMBER = re.compile(r"§(\d+(?:\.\d+)*)")
# A numbered heading: "## 5. The parity method", "### 0.3 tanh", "## §2 GRU".
NUMBERED_HEADING = re.compile(r"^#{1,6}\s+§?(\d+(?:\.\d+)*)\.?\s")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    reference: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reference!r}: {self.why}"


def tracked_files(root: Path) -> list[Path]:
    """The repository's tracked files (git), or every file outside dot-directories
    when `root` is not a git checkout (an unpacked source archive)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True
        ).stdout
        return [root / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        return [
            p
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        ]


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file (NUL bytes, not UTF-8)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped
    (word characters, spaces and hyphens kept), spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def headings(text: str) -> tuple[set[str], set[str]]:
    """(section numbers, anchors) of a Markdown text's headings, outside code blocks."""
    numbers, anchors, fenced = set(), set(), False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if m := NUMBERED_HEADING.match(line):
            numbers.add(m.group(1))
        if m := HEADING.match(line):
            anchors.add(github_slug(m.group(1)))
    return numbers, anchors


def resolve(root: Path, referrer: Path, target: str) -> Path | None:
    for base in (root, referrer.parent):
        candidate = (base / target).resolve()
        if candidate.is_file() and candidate.is_relative_to(root.resolve()):
            return candidate
    return None


def scan(root: Path) -> tuple[list[Problem], int]:
    """(the broken references, the number of references checked) under `root`."""
    problems, checked, cache = [], 0, {}
    for path in tracked_files(root):
        if path.resolve() == SELF:
            continue  # this file's examples of broken references are data
        text = read_text(path)
        if text is None:
            continue
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(text.splitlines(), 1):
            for m in REFERENCE.finditer(line):
                target = m.group("path")
                if Path(target).name in GENERATED_NAMES or target.startswith("build/"):
                    continue  # a tool's output (build/ is where the scripts write)
                checked += 1
                found = resolve(root, path, target)
                if found is None:
                    problems.append(Problem(rel, number, m.group(0).strip(), "no such file"))
                    continue
                if found not in cache:
                    cache[found] = headings(read_text(found) or "")
                numbers, anchors = cache[found]
                for section in SECTION_NUMBER.findall(m.group("sections")):
                    if section not in numbers:
                        problems.append(
                            Problem(rel, number, m.group(0).strip(), f"{target} has no §{section}")
                        )
                anchor = m.group("anchor")
                if anchor and anchor.lower() not in anchors:
                    problems.append(
                        Problem(rel, number, m.group(0).strip(), f"{target} has no #{anchor}")
                    )
    return problems, checked


def test_every_document_reference_resolves():
    problems, checked = scan(ROOT)
    assert checked >= 30, f"only {checked} references found: is the scanner reading the files?"
    assert not problems, "broken document references:\n" + "\n".join(map(str, problems))


# -- the scanner itself, on small repositories ------------------------------------------
DOC = """# A document

## 1. First
### 1.2 Detail
## 2. Second part

```
## 9. Not a heading (inside a code block)
```
"""


def make_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"docs/GUIDE.md": DOC, **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path  # not a git checkout: every file is scanned


def broken(tmp_path: Path, text: str) -> list[str]:
    problems, checked = scan(make_repo(tmp_path, {"pkg/mod.py": text}))
    assert checked >= 1, "the reference was not recognised"
    return [p.why for p in problems]


@pytest.mark.parametrize(
    "text",
    [
        "# see docs/GUIDE.md",
        "# docs/GUIDE.md §1, §1.2 and §2",
        "# (docs/GUIDE.md §1-§2)",
        '"""As in docs/GUIDE.md#2-second-part."""',
        "# report.md is written by the tool",  # a generated name, not a document
    ],
)
def test_scanner_accepts_valid_references(tmp_path, text):
    problems, _ = scan(make_repo(tmp_path, {"pkg/mod.py": text}))
    assert problems == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("# see DESIGN.md §3", "no such file"),  # the file is not in the repository
        ("# see GUIDE.md", "no such file"),  # resolves neither from the root nor pkg/
        ("# docs/GUIDE.md §3", "docs/GUIDE.md has no §3"),
        ("# docs/GUIDE.md §1.2 and §1.3", "docs/GUIDE.md has no §1.3"),
        ("# docs/GUIDE.md §9", "docs/GUIDE.md has no §9"),  # a heading in a code block
        ("# docs/GUIDE.md#third-part", "docs/GUIDE.md has no #third-part"),
    ],
)
def test_scanner_finds_broken_references(tmp_path, text, why):
    assert broken(tmp_path, text) == [why]


def test_scanner_resolves_markdown_links_relative_to_the_document(tmp_path):
    repo = make_repo(
        tmp_path,
        {
            "docs/OTHER.md": "[guide](GUIDE.md#1-first), [readme](../README.md)\n",
            "README.md": "[guide](docs/GUIDE.md), [missing](docs/MISSING.md)\n",
        },
    )
    problems, checked = scan(repo)
    assert checked == 4
    assert [(p.file, p.why) for p in problems] == [("README.md", "no such file")]


def test_scanner_reads_a_git_checkout_and_skips_binary_files(tmp_path):
    repo = make_repo(tmp_path, {"a.py": "# docs/MISSING.md\n", "untracked.py": "# X.md\n"})
    (repo / "data.bin").write_bytes(b"\0docs/MISSING.md")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "a.py", "docs", "data.bin"], check=True)
    problems, _ = scan(repo)
    assert [(p.file, p.why) for p in problems] == [("a.py", "no such file")]


def test_scanner_on_a_copy_of_the_real_documents(tmp_path):
    """The repository's own documents, copied, with one good and two broken citations."""
    for path in (ROOT / "docs").rglob("*.md"):  # the documents cite one another
        name = path.relative_to(ROOT)
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(path.read_text())
    (tmp_path / "README.md").write_text("# nntk\n\n## Hardening\n")
    (tmp_path / "gru.h").write_text(
        "/* docs/KERAS_SEMANTICS.md §2, docs/DESIGN.md §3 */\n"
        "/* docs/KERAS_SEMANTICS.md §0.3 and §0.42 */\n"
        "/* KERAS_SEMANTICS.md §2 */\n"
    )
    problems, _ = scan(tmp_path)
    assert [(p.file, p.line, p.why) for p in problems] == [
        ("gru.h", 2, "docs/KERAS_SEMANTICS.md has no §0.42"),
        ("gru.h", 3, "no such file"),
    ]

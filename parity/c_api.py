"""The public C API as data, read from the headers (never a hand-kept list).

Every `NNTK_API` declaration in `nntk_core/csrc/include/nntk/*.h` becomes a
`Function` with its return kind, its parameters (C type, name, kind) and the
comment that documents it. The headers are read as the C compiler sees them, through
its preprocessor (`cc -E -CC`): a layer header declares its standard functions by one
macro line (nntk/layer_functions.h), whose expansion keeps each function's comment.
The layers are the names `L` with an exported `NNTK<L>ConfigCreate`; their standard
function set is docs/DESIGN.md §3.

Used by parity/c_contract.py (the invalid-call contract, checked by
`nntk-parity replay` and tests/test_c_api_invalid.py), tests/test_determinism.py and
tests/c/gen_api_table.py (the table the C smoke test and the fuzzer are built
from), so a new header, layer or function is covered everywhere at once.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]  # the checkout, or site-packages when installed


def _headers() -> Path:
    """The public headers: the checkout's sources (the build runs this before anything is
    installed), else the installed package's copy (nntk_core/include/nntk, which the
    wheel carries: replay runs from an installed package)."""
    source = _ROOT / "nntk_core" / "csrc" / "include" / "nntk"
    return source if source.is_dir() else _ROOT / "nntk_core" / "include" / "nntk"


HEADERS = _headers()

# The functions every layer L has (docs/DESIGN.md §3, docs/ADDING_A_LAYER.md).
STANDARD_SUFFIXES = (
    "ConfigCreate",
    "ConfigDestroy",
    "CreateForInference",
    "CreateForTraining",
    "Destroy",
    "GetWeights",
    "OutputShape",
    "ApplyInference",
    "ApplyTrainingBatch",
    "GradientCreate",
    "GradientDestroy",
    "GradientGetWeights",
    "CalculateGradient",
)

# Parameter kinds (Param.kind), from the C type.
SCALAR_KINDS = ("i64", "i32", "f64", "f32")
_SCALAR_TYPES = {"int64_t": "i64", "int32_t": "i32", "double": "f64", "float": "f32"}


@dataclass(frozen=True)
class Param:
    ctype: str  # normalised C type, e.g. "const float *"
    name: str
    kind: str  # i64 i32 f64 f32 | fptr fptrptr i64ptr f64ptr strptr str | handle | struct
    target: str = ""  # handle/struct: the NNTK type pointed to

    @property
    def is_pointer(self) -> bool:
        return self.ctype.endswith("*")


@dataclass
class Function:
    name: str
    returns: str  # normalised C return type
    params: list[Param]
    doc: str  # the comment documenting it (shared by a group of declarations)
    header: str
    above: Function | None = None  # the declaration before it, when its doc says "As above"

    @property
    def return_kind(self) -> str:
        if self.returns == "NNTKStatus":
            return "status"
        if self.returns == "void":
            return "void"
        if self.returns == "const char *":
            return "string"
        if self.returns.endswith("*") and self.returns.rstrip(" *").startswith("NNTK"):
            return "handle"
        return self.returns

    @property
    def returned_type(self) -> str:
        """For a constructor: the handle type it returns."""
        return self.returns.replace("const ", "").rstrip(" *")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no parameter {name!r}")

    def optional_pointers(self) -> set[str]:
        """Pointer parameters the header documents as optional (NULL accepted)."""
        own = {p.name for p in self.params if p.is_pointer and documents_null(self.doc, p.name)}
        if self.above is not None:  # "As above, plus ...": the above's optional pointers too
            own |= self.above.optional_pointers() & {p.name for p in self.params}
        return own

    @property
    def is_destroy(self) -> bool:
        return (
            self.return_kind == "void"
            and len(self.params) == 1
            and self.params[0].kind == "handle"
            and self.name.endswith("Destroy")
        )


@dataclass
class Api:
    functions: dict[str, Function]
    opaque_types: set[str]  # typedef struct X X; with no body: handle types
    structs: dict[str, list[tuple[str, str]]]  # public structs: name -> [(C type, field)]
    layers: list[str] = field(default_factory=list)

    def layer_of(self, function: str) -> str | None:
        """The layer whose function this is (longest matching layer name)."""
        best = None
        for layer in self.layers:
            if function.startswith(f"NNTK{layer}") and (best is None or len(layer) > len(best)):
                best = layer
        return best

    def standard(self, layer: str, suffix: str) -> Function:
        return self.functions[f"NNTK{layer}{suffix}"]

    def constructors_of(self, type_name: str) -> list[Function]:
        return [
            f
            for f in self.functions.values()
            if f.return_kind == "handle" and f.returned_type == type_name
        ]

    def destroyer_of(self, type_name: str) -> Function | None:
        for f in self.functions.values():
            if f.is_destroy and f.params[0].target == type_name:
                return f
        return None


def _normalise_type(ctype: str) -> str:
    ctype = re.sub(r"\s+", " ", ctype.strip())
    ctype = re.sub(r"\s*\*\s*", " *", ctype)
    return ctype.replace("* *", "**").replace(" **", " **").strip()


_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_DECL = re.compile(
    r"NNTK_API\s+(?P<ret>[^;(]*?)\b(?P<name>NNTK\w+)\s*\((?P<params>[^)]*)\)\s*;", re.S
)


def _doc_before(text: str, start: int, decl_starts: set[int]) -> str:
    """The comment right before a declaration, looking back over the declarations
    of its group (a comment above two declarations documents both)."""
    pos = start
    while True:
        head = text[:pos].rstrip(" \t")
        if head.endswith("\n\n") or head.rstrip().endswith("\n\n"):
            return ""  # a blank line ends a group
        head = head.rstrip()
        if text[len(head) : pos].count("\n") > 1:
            return ""
        if head.endswith("*/"):
            body = head[head.rfind("/*") + 2 : -2]
            # The " * " that starts a continuation line, also where a macro's comment
            # has its lines spliced into one (nntk/layer_functions.h).
            body = re.sub(r"(?:^|(?<=\s))\*(?!\S)", " ", body)
            return " ".join(body.split())
        if head.endswith(";"):
            # another declaration of the same group?
            previous = [s for s in decl_starts if s < len(head)]
            if not previous:
                return ""
            candidate = max(previous)
            if text[candidate : len(head)].count(";") == 1:
                pos = candidate
                continue
        return ""


# A line marker of the preprocessor's output: `# <line> "<file>" <flags>`.
_LINE_MARKER = re.compile(r'#\s*(\d+)\s+"((?:[^"\\]|\\.)*)"')
# The umbrella header only includes the others (one of them generated by the build).
_UMBRELLA = "nntk.h"


def preprocessed_headers(directory: Path = HEADERS) -> dict[str, str]:
    """Each public header's own text (file name -> text) after the C preprocessor, with
    its comments (-CC: also those of the macros it expands) and NNTK_API kept as the
    marker (nntk/status.h takes a predefined one): its macros expanded, its directives
    and the headers it includes left out, its blank lines kept (they end a group of
    declarations). The compiler is $CC (a command, e.g. "ccache gcc"), else cc (the build
    passes its own)."""
    names = sorted(h.name for h in directory.glob("*.h") if h.name != _UMBRELLA)
    source = "".join(f'#include "{directory.name}/{name}"\n' for name in names)
    command = [*shlex.split(os.environ.get("CC") or "cc"), "-E", "-CC", "-DNNTK_API=NNTK_API"]
    command += [f"-I{directory.parent}", "-x", "c", "-"]
    done = subprocess.run(command, input=source, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed on the headers:\n{done.stderr}")
    # clang spells a macro's comment as written, its line splices included.
    output = done.stdout.replace("\\\n", " ")
    own = {(directory / name).resolve(): name for name in names}
    texts: dict[str, list[str]] = {name: [] for name in names}
    line_of = dict.fromkeys(names, 1)  # the line of each header the next output line is
    current = None
    for line in output.splitlines():
        marker = _LINE_MARKER.match(line)
        if marker:
            path = Path(re.sub(r"\\(.)", r"\1", marker.group(2)))  # unescape \\ and \"
            current, number = own.get(path.resolve()), int(marker.group(1))
            if current is not None and number > line_of[current]:  # lines skipped: blank
                texts[current].append("\n" * (number - line_of[current]))
                line_of[current] = number
        elif current is not None:
            texts[current].append(line + "\n")
            line_of[current] += 1
    return {name: "".join(text) for name, text in texts.items()}


def parse_headers(directory: Path = HEADERS) -> Api:
    functions: dict[str, Function] = {}
    opaque: set[str] = set()
    structs: dict[str, list[tuple[str, str]]] = {}
    for name, text in preprocessed_headers(directory).items():
        header = directory / name
        # Types: `typedef struct X X;` is opaque (a handle); a body is a public struct.
        plain = _COMMENT.sub(" ", text)
        opaque |= set(re.findall(r"typedef\s+struct\s+(NNTK\w+)\s+\1\s*;", plain))
        for name, body in re.findall(
            r"typedef\s+struct\s+(NNTK\w+)\s*\{(.*?)\}\s*\1\s*;", plain, re.S
        ):
            fields = re.findall(r"([\w\s]+?)\s+(\w+)\s*;", body)
            structs[name] = [(_normalise_type(t), f) for t, f in fields]
        matches = list(_DECL.finditer(text))
        starts = {m.start() for m in matches}
        previous = None
        for m in matches:
            params = []
            raw = _COMMENT.sub(" ", m.group("params")).strip()
            if raw and raw != "void":
                for part in raw.split(","):
                    pm = re.fullmatch(r"\s*(.*?)\s*\b(\w+)\s*", part, re.S)
                    if pm is None:
                        raise ValueError(f"{header.name}: cannot parse parameter {part!r}")
                    params.append((_normalise_type(pm.group(1)), pm.group(2)))
            functions[m.group("name")] = Function(
                name=m.group("name"),
                returns=_normalise_type(m.group("ret")),
                params=[],
                doc=_doc_before(text, m.start(), starts),
                header=header.name,
            )
            functions[m.group("name")].params = params  # classified below
            if previous is not None and re.match(r"As above\b", functions[m.group("name")].doc):
                functions[m.group("name")].above = previous
            previous = functions[m.group("name")]
    api = Api(functions=functions, opaque_types=opaque, structs=structs)
    for f in functions.values():
        f.params = [_classify(api, f.name, ctype, name) for ctype, name in f.params]
    api.layers = sorted(
        name[len("NNTK") : -len("ConfigCreate")]
        for name in functions
        if name.endswith("ConfigCreate")
    )
    return api


def _classify(api: Api, fn: str, ctype: str, name: str) -> Param:
    base = ctype.replace("const ", "").strip()
    if base in _SCALAR_TYPES:
        return Param(ctype, name, _SCALAR_TYPES[base])
    if re.fullmatch(r"NNTK\w+Kind|NNTK\w+Mode|NNTKPadding", base):  # an enum passed by value
        return Param(ctype, name, "i32")
    if base == "float *":
        return Param(ctype, name, "fptr")
    if base == "float **":
        return Param(ctype, name, "fptrptr")
    if base == "int64_t *":
        return Param(ctype, name, "i64ptr")
    if base == "double *":  # values in, or a described number out
        return Param(ctype, name, "f64ptr")
    if base == "char **":  # a constant string out (the layer description)
        return Param(ctype, name, "strptr")
    if base == "char *":  # a string in: a file's path (nntk/model.h)
        return Param(ctype, name, "str")
    target = base.rstrip(" *")
    if base.endswith(" *") and target in api.opaque_types:
        return Param(ctype, name, "handle", target)
    if base.endswith(" *") and target in api.structs:
        return Param(ctype, name, "struct", target)
    raise ValueError(
        f"{fn}: parameter {ctype} {name} has a type parity/c_api.py does not know; teach "
        "_classify() (and the generic argument builders) about it"
    )


# -- what the documentation says about NULL ---------------------------------------------
def documents_null(doc: str, name: str) -> bool:
    """Whether a comment documents pointer `name` as optional. Accepted phrasings
    (docs/ADDING_A_LAYER.md): "`name` may be NULL", "unless `name` is NULL",
    "`name` (shape) (NULL = zeros)", "`name` ..., or NULL to skip",
    "... to `name` unless it is NULL", "`name` (shape), ..., unless NULL"."""
    n = re.escape(name)
    # `name` where a clause starts ("d_pred (rows, C) ...", "..., and d_in"), not
    # inside a phrase ("d y_pred", "the upstream gradient").
    lead = r"(?:^|[.;:,(]\s*|\b(?:and|plus|from|to|with|or)\s+)"
    shape = r"(?:\s*\([^()]*\))?"
    patterns = [
        rf"\b{n}\b{shape}\s+(?:may|can) be NULL",
        rf"unless {n} is NULL",
        rf"\b{n}\b\s+unless it is NULL",
        rf"{lead}{n}\b{shape}(?:,[^,.;()]*)?\s*\(NULL\b",
        rf"{lead}{n}\b{shape}[^.;()]*?,\s*or NULL\b",
        rf"{lead}{n}\b{shape}(?:,[^,.;()]*,)?\s*unless NULL",
    ]
    return any(re.search(p, doc) for p in patterns)


# -- the built library ----------------------------------------------------------------
def dynamic_symbols(library: Path) -> set[str]:
    """Names of the functions and objects a shared library defines and exports."""
    out = subprocess.run(
        ["nm", "-D", "--defined-only", str(library)], check=True, capture_output=True, text=True
    ).stdout
    return {line.split()[-1] for line in out.splitlines() if len(line.split()) >= 3}


def writable_objects(library: Path) -> list[tuple[str, str, str]]:
    """(symbol, section, binding) for every data object the library defines in a
    writable, non-thread-local section (.data, .bss, ...), from its symbol table."""
    sections = {}
    text = subprocess.run(
        ["readelf", "-SW", str(library)], check=True, capture_output=True, text=True
    ).stdout
    for m in re.finditer(r"\[\s*(\d+)\]\s+(\S+)\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S*)", text):
        index, name, flags = m.groups()
        sections[index] = (name, flags)
    symbols = subprocess.run(
        ["readelf", "-sW", "--syms", str(library)], check=True, capture_output=True, text=True
    ).stdout
    found = []
    for line in symbols.splitlines():
        parts = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(parts) < 8 or not parts[0].endswith(":") or parts[3] != "OBJECT":
            continue
        name, flags = sections.get(parts[6], ("?", ""))
        if "W" in flags and "T" not in flags and name != ".data.rel.ro":
            found.append((parts[7], name, parts[4]))
    return found


def has_symbol_table(library: Path) -> bool:
    out = subprocess.run(
        ["readelf", "-SW", str(library)], check=True, capture_output=True, text=True
    ).stdout
    return ".symtab" in out


_CTYPE_OF_KIND = {"i64": "c_int64", "i32": "c_int32", "f64": "c_double", "f32": "c_float"}


def typed_config_create(cdll, layer: str, errcheck=None, api: Api | None = None):
    """NNTK<layer>ConfigCreate of `cdll`, declared from its header (a new function
    object). The binding does not declare these: their C arguments are per layer (it
    creates configs through NNTKLayerConfigCreateFromValues)."""
    import ctypes

    f = (api or parse_headers()).functions[f"NNTK{layer}ConfigCreate"]
    func = cdll[f.name]
    func.argtypes = [getattr(ctypes, _CTYPE_OF_KIND[p.kind]) for p in f.params]
    func.restype = ctypes.c_void_p
    if errcheck is not None:
        func.errcheck = errcheck
    return func


_BOUND: dict[str, object] = {}


def config_create(layer: str):
    """nntk_core.lib's NNTK<layer>ConfigCreate declared from its header, raising
    NNTKError as the binding's functions do (for the tests of the typed C API)."""
    if layer not in _BOUND:
        from nntk_core import _native

        _BOUND[layer] = typed_config_create(_native.lib, layer, _native._check_handle)
    return _BOUND[layer]

"""The library's blocking constants (NNTKKernelConstants): where the kernels' code
paths change, so where the specs put their shape buckets."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=1)
def kernel_constants() -> dict[str, int]:
    """The library's blocking constants (NNTKKernelConstants, core/blocking.h and each
    kernel table compiled in): shared ones by name ("pack_k"), each table's as
    "<isa>.<name>" ("avx2.tile_cols")."""
    import nntk_core

    text = nntk_core.lib.NNTKKernelConstants().decode()
    return {name: int(value) for name, _, value in (line.partition("=") for line in text.split())}


def boundaries(*names: str) -> list[int]:
    """The distinct values of the named constants over every kernel table: "tile_cols"
    is each table's "<isa>.tile_cols", "pack_k" the shared one."""
    constants = kernel_constants()
    found = {
        value
        for key, value in constants.items()
        for name in names
        if key == name or key.endswith(f".{name}")
    }
    if not found:
        raise KeyError(f"the library reports no blocking constant named {names}")
    return sorted(found)


def tile_heights() -> list[int]:
    """Rows per tile of the tables that tile rows (a table that runs one row at a
    time, tile_rows = 1, has no row boundary)."""
    return [n for n in boundaries("tile_rows") if n > 1]


def kernel_tables() -> dict[str, dict[str, int]]:
    """Each kernel table's own constants by table name: {"avx2": {"tile_rows": 4, ...}}."""
    tables: dict[str, dict[str, int]] = {}
    for key, value in kernel_constants().items():
        table, dot, name = key.partition(".")
        if dot:
            tables.setdefault(table, {})[name] = value
    return tables


@lru_cache(maxsize=1)
def kernel_products() -> list[tuple[int, int]]:
    """(M, N) products of nntk_matmul that together run every kernel instance of every
    table compiled in, each instance by the smallest product that runs it: a one-row
    block of n vectors (M = 1, N = (n-1)·vector + 1, for n up to row_cols/vector) and a
    tile of r rows x v vectors (M = r, r >= 2: matmul splits the rows evenly over tiles,
    so no tile has one row; N = (v-1)·vector + 1), for a table that tiles rows
    (tile_rows > 1). One set per table, merged: a build with fewer tables (no SIMD) asks
    for a subset of what a full build's fixtures hold."""
    products = set()
    for k in kernel_tables().values():
        vector = k["vector"]
        products |= {(1, (n - 1) * vector + 1) for n in range(1, k["row_cols"] // vector + 1)}
        if k["tile_rows"] > 1:
            rows = range(2, k["tile_rows"] + 1)
            widths = [(v - 1) * vector + 1 for v in range(1, k["tile_cols"] // vector + 1)]
            products |= {(m, n) for m in rows for n in widths}
    return sorted(products)


def around(values: Iterable[int], step: int = 1) -> list[int]:
    """Sizes n whose step·n is one below, at (where step divides it) and one above each
    boundary: a GRU's 3·units columns around a 64-column panel are units 21 and 22."""
    sizes_ = set()
    for boundary in values:
        sizes_.update({(boundary - 1) // step, boundary // step + 1})
        if boundary % step == 0:
            sizes_.add(boundary // step)
    return sorted(n for n in sizes_ if n >= 1)

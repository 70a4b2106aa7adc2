"""Writes seed inputs for fuzz/fuzz_layers.c: for every layer of the public headers,
a few complete, valid-looking sessions (create, train, gradient, inference, misuse)
in the harness's input format, so the fuzzer starts deep in the API instead of
at ConfigCreate's refusals. ci/fuzz.sh runs it before every fuzzing run, so a new
layer gets seeds without edits; fuzz/corpus/ holds a committed copy.

    python fuzz/make_corpus.py OUT_DIR
"""

from __future__ import annotations

import random
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parity import c_api  # noqa: E402

# Operation bytes of fuzz_layers.c's main loop (u8 % 8).
INFER, TRAIN, GRADIENT, CALCULATE, READ, WRITE, MISUSE = 0, 1, 3, 4, 5, 6, 7


def size(v: int) -> int:  # rd_size: 1 + b % 8
    assert 1 <= v <= 8
    return v - 1


def option(v: int) -> int:  # rd_i32: (b % 24) - 2
    assert -2 <= v <= 21
    return v + 2


F64_HALF = 0  # rd_f64: table[0] = 0.5


def config_bytes(params: list[c_api.Param], i32_value: int, i64_value: int) -> list[int]:
    out = []
    for p in params:
        if p.kind == "i64":
            out.append(size(i64_value))
        elif p.kind == "i32":
            out.append(option(i32_value))
        else:
            out.append(F64_HALF)
    return out


def session(layer_index: int, config: list[int], flags: int, ops: list[list[int]], seed: int):
    front = [layer_index, *config, flags]
    if flags & 2:
        front += [size(4), size(8)]
    front.append(len(ops))
    for op in ops:
        front += op
    rng = random.Random(seed)
    back = [rng.randrange(92, 156) for _ in range(600)]  # floats in about ±1
    return bytes(front + back[::-1])


def seeds(api: c_api.Api) -> dict[str, bytes]:
    out = {}
    for index, layer in enumerate(api.layers):
        params = api.standard(layer, "ConfigCreate").params
        train = [[TRAIN, size(2), size(3)], [GRADIENT], [CALCULATE, 1], [READ],
                 [INFER, size(2), size(3)], [CALCULATE, 0], [TRAIN, size(1), size(5)],
                 [CALCULATE, 1]]  # fmt: skip
        for i32_value in (0, 1, 4):
            for i64_value in (3, 1):
                config = config_bytes(params, i32_value, i64_value)
                tag = f"{layer}-opt{i32_value}-size{i64_value}"
                seed = zlib.crc32(tag.encode())
                out[f"{tag}-train"] = session(index, config, 1, train, seed)
                out[f"{tag}-capacity"] = session(index, config, 1 | 2 | 4, train, seed + 1)
                out[f"{tag}-inference"] = session(
                    index, config, 0,
                    [[INFER, size(3), size(4)], [TRAIN, size(1), size(1)], [GRADIENT]], seed + 2,
                )  # fmt: skip
        config = config_bytes(params, 0, 3)
        misuse = [[TRAIN, size(2), size(2)], [GRADIENT]] + [[MISUSE, k] for k in range(8)]
        out[f"{layer}-misuse"] = session(index, config, 1, misuse + [[WRITE]], 7)
    return out


def main() -> None:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in seeds(c_api.parse_headers()).items():
        (out_dir / name).write_bytes(data)


if __name__ == "__main__":
    main()

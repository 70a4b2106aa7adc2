"""Dense: tf.keras.layers.Dense on (B, D) and (B, T, D) input (docs/KERAS_SEMANTICS.md §7)."""

from dataclasses import replace

from parity.blocking import around, boundaries, kernel_constants, kernel_tables, tile_heights
from parity.case import Bucket, Case
from parity.compare import Tolerance
from parity.spec import LayerSpec


class DenseSpec(LayerSpec):
    name = "dense"
    layer_class = "Dense"
    ranks = (2, 3)
    base_values = {"units": 5, "input_dim": 4, "activation": "tanh"}
    # One matrix product of K = D <= 257 terms (160 drawn, 257 in the K-block
    # buckets) and one activation. A float32 dot
    # product of K terms is accurate to ~K·eps relative to the terms' size;
    # measured worst over the ci profile: see the issue note.
    tolerances = {
        "output": Tolerance(
            atol=5e-6,
            rtol=5e-5,
            reason="one K<=257 float32 dot product + activation; exponential amplifies the "
            "product's rounding: measured 8.5e-7*scale, equal to Keras float32's own error",
        ),
        "grad": Tolerance(
            atol=1e-5,
            rtol=1e-4,
            reason="weight gradients sum B*T<=257 products: cancellation (docs/DESIGN.md §5)",
        ),
    }

    def extra_buckets(self):
        # One unit (a (.., 1) output and kernel column) and one input feature.
        edges = [Bucket.config("units", 1), Bucket.config("input_dim", 1)]
        one_row = ("one row", lambda c: c.batch * c.steps == 1)
        return [
            *edges,
            # units: N of the forward product (column tiles, so two rows), K of
            # dx = dy·Wᵀ (packed K blocks)
            *Bucket.sizes(
                "units",
                around(boundaries("tile_cols", "pack_k")),
                lambda c: self.lean(c, rows=2, input_dim=1),
            ),
            # a one-row product (batch 1) in blocks of row_cols columns, and the bias
            # gradient's column blocks
            *Bucket.sizes(
                "units",
                around(boundaries("row_cols", "sum_block")),
                lambda c: self.lean(c, rows=1, input_dim=1),
                one_row,
            ),
            # input features: K of the forward product (K blocks), N of dx (packed
            # panels of pack_n columns, column tiles)
            *Bucket.sizes(
                "input_dim",
                around(boundaries("k_block", "pack_n", "tile_cols")),
                lambda c: self.lean(c, rows=2, units=1),
            ),
            *self.row_buckets(),
            *self.blas_buckets(),
            *self.row_k_buckets(),
            *self.packed_buckets(),
            *self.transposed_depth_buckets(),
        ]

    def row_k_buckets(self) -> list[Bucket]:
        """A one-row product wider than one block of row_cols columns runs its K rows in
        blocks of row_k_block rows, each through every column block (a table whose
        row_k_block is below its k_block: a boundary of its own). Input features around
        each such block, at batch 1, units one above that table's row_cols."""
        buckets = []
        for table in kernel_tables().values():
            if table["row_k_block"] >= table["k_block"]:
                continue
            wide = table["row_cols"] + 1
            buckets += Bucket.sizes(
                "input_dim",
                around([table["row_k_block"]]),
                lambda c, wide=wide: self.lean(c, rows=1, units=wide),
                (
                    f"one row, units={wide}",
                    lambda c, wide=wide: c.batch * c.steps == 1 and c.config["units"] == wide,
                ),
            )
        return buckets

    def packed_buckets(self) -> list[Bucket]:
        """A table that packs B (packed_stride > 0) copies each block of the kernel into a
        contiguous one when its rows are packed_stride floats apart (units) and two row
        tiles or more read it: rows one above the table's tile height, two input
        features (the copy's rows: a row's offset is seen from the second)."""
        buckets = []
        for table in kernel_tables().values():
            stride, rows = table["packed_stride"], table["tile_rows"] + 1
            if stride == 0 or table["tile_rows"] == 1:
                continue
            buckets.append(
                Bucket(
                    f"units={stride}, rows={rows} (packed B)",
                    lambda c, stride=stride, rows=rows: (
                        c.config["units"] == stride and c.batch * c.steps == rows
                    ),
                    lambda c, stride=stride, rows=rows: self.lean(
                        c, rows=rows, units=stride, input_dim=2
                    ),
                )
            )
        return buckets

    def blas_buckets(self) -> list[Bucket]:
        """Where the library is built with OpenBLAS, one case whose training products
        are large enough to go to it (rows = units = input_dim = side, side³ >=
        blas_min_macs multiply-adds): the only case that does, so it is kept at the
        threshold."""
        macs = kernel_constants().get("blas_min_macs")
        if macs is None:
            return []
        side = round(macs ** (1 / 3))
        side += side**3 < macs
        return [
            Bucket(
                f"rows=units=input_dim={side} (BLAS)",
                lambda c: (
                    c.batch * c.steps == side
                    and c.config["units"] == side
                    and c.config["input_dim"] == side
                ),
                lambda c: self.lean(c, rows=side, units=side, input_dim=side),
            )
        ]

    def row_buckets(self, depth: bool = True) -> list[Bucket]:
        """Rows (B·T) around every table's tile height, and (`depth`) around the K
        block of the kernel gradient xᵀ·dy (K = rows)."""
        rows = around(tile_heights() + (boundaries("k_block") if depth else []))
        return [
            Bucket(
                f"rows={n}",
                lambda c, n=n: c.batch * c.steps == n,
                lambda c, n=n: self.lean(c, rows=n, units=1, input_dim=1),
            )
            for n in rows
        ]

    def transposed_depth_buckets(self) -> list[Bucket]:
        """The kernel gradient xᵀ·dy reads x transposed: its K blocks (K = rows) lie a
        column stride apart, which one input feature (stride 1: row_buckets' depth
        cases) cannot tell from a row stride. Rows around the K block with two
        features, which also puts M = 2 on the tiles."""
        return [
            Bucket(
                f"rows={n}, input_dim=2",
                lambda c, n=n: c.batch * c.steps == n and c.config["input_dim"] >= 2,
                lambda c, n=n: self.lean(c, rows=n, units=1, input_dim=2),
            )
            for n in around(boundaries("k_block"))
        ]

    def lean(self, case: Case, rows: int, **config) -> Case:
        """A bucket case kept small: `rows` rows (as the batch of a 2-D input where
        the spec has one and the rows fit the batch range, else one sequence)."""
        if 2 in self.ranks and rows <= self.batch_range[1]:
            shape = {"rank": 2, "batch": rows, "steps": 1}
        else:
            shape = {"rank": 3, "batch": 1, "steps": rows}
        return replace(case, **shape, config={**case.config, **config})

    def axis_names(self, quantity, config, ndim):
        if quantity == "grad:kernel":
            return ("in", "unit")
        if quantity == "grad:bias":
            return ("unit",)
        return super().axis_names(quantity, config, ndim)


SPEC = DenseSpec()

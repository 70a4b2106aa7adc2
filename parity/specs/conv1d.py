"""Conv1d: tf.keras.layers.Conv1D, channels_last (docs/KERAS_SEMANTICS.md §5)."""

from dataclasses import replace

from hypothesis import strategies as st

from parity.blocking import around, boundaries, kernel_products, tile_heights
from parity.case import Bucket, Case
from parity.compare import Tolerance
from parity.spec import LayerSpec
from parity.spec_fields import Draw


def effective_kernel(config: dict) -> int:
    return (config["kernel_size"] - 1) * config["dilation_rate"] + 1


def output_steps(case) -> int:
    c = case.config
    n = case.steps - effective_kernel(c) + 1 if c["padding"] == "valid" else case.steps
    return -(-n // c["strides"])


def kernel_product_case(case: Case, m: int, n: int) -> Case:
    """A case whose forward pass makes two (M, N) products of nntk_matmul, one with
    the bias and one accumulating without it: causal, kernel_size M + 1 and 2M steps,
    so the last M outputs see every tap (the full rows: one product, bias added) and
    the first M outputs miss the first taps (the edge rows, tap by tap: tap j adds
    its j rows into the output, no bias; the last tap's M). N = filters, one input
    channel. Every kernel instance (tile, one-row block) thus runs both sides of its
    `bias` and `accumulate` tests."""
    config = {
        **case.config,
        "padding": "causal",
        "kernel_size": m + 1,
        "strides": 1,
        "dilation_rate": 1,
        "filters": n,
        "input_dim": 1,
        "use_bias": True,
    }
    return replace(case, batch=1, steps=2 * m, config=config)


def kernel_product(case: Case) -> tuple[int, int] | None:
    """(M, N) of a kernel_product_case, None for any other case."""
    c = case.config
    m = c["kernel_size"] - 1
    shaped = (c["padding"], c["strides"], c["dilation_rate"], c["input_dim"]) == ("causal", 1, 1, 1)
    if shaped and c["use_bias"] and m >= 1 and case.steps == 2 * m:
        return m, c["filters"]
    return None


class Conv1dSpec(LayerSpec):
    name = "conv1d"
    layer_class = "Conv1d"
    ranks = (3,)
    steps_range = (1, 16)
    base_values = {"filters": 4, "input_dim": 3, "kernel_size": 3}
    # Short kernels, strides and dilations: every padding's edge cases show there
    # (the kernels longer than the input are buckets below); the sizes are drawn.
    draws = {
        "kernel_size": Draw(values=(1, 2, 3, 4, 5)),
        "strides": Draw(values=(1, 2, 3)),
        "dilation_rate": Draw(values=(1, 2, 3)),
    }
    # A K = kernel_size*C_in <= 800 term dot product per output (5 taps of up to 160
    # channels); weight gradients sum B*out_steps <= 224 such products (float32
    # cancellation, docs/DESIGN.md §5).
    tolerances = {
        "output": Tolerance(atol=5e-6, rtol=5e-5, reason="K<=800 float32 dot product + activation"),
        "grad": Tolerance(atol=1e-5, rtol=1e-4, reason="sums of B*out_steps products"),
    }

    def sweep_cases(self):
        """The sweep, plus: every residue of the length modulo the strides; kernels
        longer than the input under same and causal padding, strided and dilated;
        and a long sequence (accumulation over 100 positions)."""
        cases = super().sweep_cases()
        if type(self) is not Conv1dSpec:  # a subclass (DepthwiseConv1d) keeps its own sweep
            return cases
        extra = []
        small = {"input_dim": 1, "filters": 2}  # the fixture set's budget
        # same padding splits its padding by the residue: every one; valid and causal
        # the residues of stride 3
        for padding in self.options["padding"]:
            for strides in (2, 3) if padding == "same" else (3,):
                for residue in range(strides):
                    config = {"padding": padding, "strides": strides, "kernel_size": 4 - residue}
                    extra.append(({**config, **small}, 1, 9 + residue))  # 9, 10, 11: every residue
        for padding in ("same", "causal"):
            for strides, dilation, kernel_size, steps in ((2, 1, 5, 3), (3, 1, 6, 2), (1, 2, 4, 1)):
                config = {"padding": padding, "strides": strides, "dilation_rate": dilation}
                extra.append(({**config, **small, "kernel_size": kernel_size}, 1, steps))
        long = {"padding": "same", "kernel_size": 5, "input_dim": 2, "filters": 3}
        extra.append((long, 1, 100))
        for values, batch, steps in extra:
            case = self.case_with(values, seed=len(cases) + 1)
            cases.append(replace(case, batch=batch, steps=steps))
        return cases

    def steps_strategy(self, config):
        # valid padding needs at least the effective kernel; same/causal may be shorter
        # than the kernel (an edge worth drawing).
        low = effective_kernel(config) if config["padding"] == "valid" else 1
        return st.integers(low, low + 15)

    def sweep_steps(self, config):
        return effective_kernel(config) + 4

    def adjust_sweep_config(self, config):
        # Keras rejects strides > 1 together with dilation_rate > 1.
        if config["strides"] > 1:
            config["dilation_rate"] = 1
        return config

    def adjust_case(self, case):
        # valid padding cannot take an input shorter than the effective kernel
        if case.config["padding"] == "valid" and case.steps < effective_kernel(case.config):
            return replace(case, config={**case.config, "padding": "same"})
        return case

    def extra_buckets(self):
        def kernel_longer(case):
            return case.config["padding"] != "valid" and case.steps < effective_kernel(case.config)

        def output_length_one(case):
            return output_steps(case) == 1

        return [
            # filters: N of the forward product (column tiles), K of dx = δ·Wᵀ (packed
            # K blocks). (A one-row product's row_cols blocks: the Dense spec's buckets,
            # the same nntk_matmul.)
            *Bucket.sizes(
                "filters",
                around(boundaries("tile_cols", "pack_k")),
                lambda c: self.lean(c, out_steps=2, input_dim=1),
            ),
            # input channels: N of dx (packed panels, column tiles); with kernel_size 1
            # also K of the forward product (K blocks)
            *Bucket.sizes(
                "input_dim",
                around(boundaries("pack_n", "tile_cols", "k_block")),
                lambda c: self.lean(c, out_steps=2, filters=1, kernel_size=1),
            ),
            # output steps (the forward product's rows) around every tile height
            *[
                Bucket(
                    f"output steps={n}",
                    lambda c, n=n: output_steps(c) == n,
                    lambda c, n=n: self.lean(c, out_steps=n),
                )
                for n in around(tile_heights())
            ],
            Bucket(
                "kernel > length",
                kernel_longer,
                lambda c: replace(
                    c, steps=2, config={**c.config, "padding": "causal", "kernel_size": 4}
                ),
            ),
            Bucket(
                "output length 1",
                output_length_one,
                lambda c: replace(
                    c, steps=effective_kernel(c.config), config={**c.config, "padding": "valid"}
                ),
            ),
            *[
                Bucket(
                    f"kernel product {m}x{n}",
                    lambda c, m=m, n=n: kernel_product(c) == (m, n),
                    lambda c, m=m, n=n: kernel_product_case(c, m, n),
                )
                for m, n in kernel_products()
            ],
        ]

    def lean(self, case: Case, out_steps: int, **config) -> Case:
        """A bucket case kept small: batch 1, valid padding, stride 1, `out_steps`
        output steps."""
        config = {**case.config, **config, "padding": "valid", "strides": 1, "dilation_rate": 1}
        return replace(case, batch=1, steps=out_steps + effective_kernel(config) - 1, config=config)

    def axis_names(self, quantity, config, ndim):
        if quantity == "grad:kernel":
            return ("tap", "in", "filter")
        if quantity == "grad:bias":
            return ("filter",)
        if quantity.startswith("output"):
            return ("b", "t", "filter")
        return super().axis_names(quantity, config, ndim)


SPEC = Conv1dSpec()

"""PyTorch (CPU): W1-W7 with the same weights in PyTorch's gate layout."""

from __future__ import annotations

import numpy as np

from nntk_bench.workloads import CLASSES, RECURRENT, D, F, K, Runner, Skip, U, Weights, frame_runner


# --- PyTorch (CPU) -------------------------------------------------------------------------------
def torch_runners(w: Weights) -> dict[str, Runner]:
    try:
        import torch
    except ImportError as exc:
        raise Skip(
            f"torch not installed ({exc}); install its CPU build on its own: README, Benchmark"
        ) from None
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    nn = torch.nn

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    def torch_gru(din, weights):
        kernel, recurrent, bias = weights

        def zrh_to_rzn(m):  # Keras columns [z | r | h] -> torch rows [r | z | n]
            z, r, h = np.split(m, 3, axis=-1)
            return np.concatenate([r, z, h], axis=-1)

        g = nn.GRU(din, recurrent.shape[0], batch_first=True)
        with torch.no_grad():
            g.weight_ih_l0.copy_(t(zrh_to_rzn(kernel).T))
            g.weight_hh_l0.copy_(t(zrh_to_rzn(recurrent).T))
            g.bias_ih_l0.copy_(t(zrh_to_rzn(bias[0])))
            g.bias_hh_l0.copy_(t(zrh_to_rzn(bias[1])))
        return g

    def torch_lstm(din, weights):
        kernel, recurrent, bias = weights  # gates i, f, c(g), o: the same order as torch
        g = nn.LSTM(din, recurrent.shape[0], batch_first=True)
        with torch.no_grad():
            g.weight_ih_l0.copy_(t(kernel.T))
            g.weight_hh_l0.copy_(t(recurrent.T))
            g.bias_ih_l0.copy_(t(bias))
            g.bias_hh_l0.zero_()
        return g

    def torch_bn(c, weights):
        bn = nn.BatchNorm1d(c, eps=1e-3, momentum=0.01)
        with torch.no_grad():
            for p, a in zip(
                (bn.weight, bn.bias, bn.running_mean, bn.running_var), weights, strict=True
            ):
                p.copy_(t(a))
        return bn

    class KWS(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(D, F, K)
            with torch.no_grad():
                self.conv.weight.copy_(t(np.transpose(w.conv[0], (2, 1, 0))))
                self.conv.bias.copy_(t(w.conv[1]))
            self.bn1 = torch_bn(F, w.bn1)
            self.gru1 = torch_gru(F, w.gru1)
            self.bn2 = torch_bn(U, w.bn2)
            self.gru2 = torch_gru(U, w.gru2)
            self.dense = nn.Linear(U, CLASSES)
            with torch.no_grad():
                self.dense.weight.copy_(t(w.dense[0].T))
                self.dense.bias.copy_(t(w.dense[1]))

        def forward(self, x, h1=None, h2=None):  # x (B, T, D); h1, h2 (1, B, U) or None
            h = torch.relu(self.bn1(self.conv(x.transpose(1, 2))))  # (B, F, O)
            h, h1 = self.gru1(h.transpose(1, 2), h1)  # (B, O, U)
            h = self.bn2(h.transpose(1, 2)).transpose(1, 2)
            h, h2 = self.gru2(h, h2)
            return torch.softmax(self.dense(h), dim=-1), h1, h2

    def recurrent_runner(r) -> Runner:
        """W1, W2, W5, W7: inference at B=1; or forward + backward at B=32, the result the
        input gradient and the kernel's gradient in Keras's layout."""
        make = torch_gru if r.cell == "GRU" else torch_lstm
        layer = make(D, w.recurrent(r))
        x, dy = (t(a) if a is not None else None for a in w.recurrent_data(r))
        if not r.training:
            layer.eval()

            def run():
                with torch.inference_mode():
                    return layer(x)[0].numpy()

            return Runner(run, run)
        layer.train()
        xg = x.clone().requires_grad_(True)

        def fwd_bwd():
            layer.zero_grad(set_to_none=True)
            xg.grad = None
            y, _ = layer(xg)
            y.backward(dy)
            return xg.grad, layer.weight_ih_l0.grad

        def result():
            dx, dwi = fwd_bwd()
            kernel = dwi.numpy().T
            if r.cell == "GRU":  # torch [r | z | n] -> Keras [z | r | h]
                rg, z, n = np.split(kernel, 3, axis=-1)
                kernel = np.concatenate([z, rg, n], axis=-1)
            return dx.numpy(), kernel

        return Runner(fwd_bwd, result)

    def cce(p, y):  # Keras CategoricalCrossentropy on probabilities (they sum to 1 here)
        return -(y * torch.log(torch.clamp(p, 1e-7, 1 - 1e-7))).sum(-1).mean()

    runners: dict[str, Runner] = {}
    x1 = t(w.x1)
    kws = KWS().eval()

    def w3():
        with torch.inference_mode():
            return kws(x1)[0].numpy()

    runners["W3"] = Runner(w3, w3)

    # W6: one frame per call, the GRUs' states carried
    windows = [t(x) for x in w.windows()]
    states = [None, None]

    def frame_step(i):
        with torch.inference_mode():
            y, states[0], states[1] = kws(windows[i], *states)
        return y.numpy()

    def frame_reset():
        states[:] = [None, None]

    runners["W6"] = frame_runner(frame_step, frame_reset)

    train = KWS().train()
    opt = torch.optim.Adam(train.parameters(), lr=1e-3, eps=1e-7)
    x32, y32 = t(w.x32), t(w.y32)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = cce(train(x32)[0], y32)
        loss.backward()
        opt.step()
        return loss

    first = float(cce(KWS().train()(x32)[0], y32).detach())
    runners["W4"] = Runner(step, lambda: first)

    for name, r in RECURRENT.items():
        runners[name] = recurrent_runner(r)
    return runners

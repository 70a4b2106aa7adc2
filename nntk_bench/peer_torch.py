"""PyTorch (CPU): W1-W5 with the same weights in PyTorch's gate layout."""

from __future__ import annotations

import numpy as np

from nntk_bench.workloads import CLASSES, D, F, K, Runner, Skip, U, Weights


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

        g = nn.GRU(din, U, batch_first=True)
        with torch.no_grad():
            g.weight_ih_l0.copy_(t(zrh_to_rzn(kernel).T))
            g.weight_hh_l0.copy_(t(zrh_to_rzn(recurrent).T))
            g.bias_ih_l0.copy_(t(zrh_to_rzn(bias[0])))
            g.bias_hh_l0.copy_(t(zrh_to_rzn(bias[1])))
        return g

    def torch_lstm(weights):
        kernel, recurrent, bias = weights  # gates i, f, c(g), o: the same order as torch
        g = nn.LSTM(D, U, batch_first=True)
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

        def forward(self, x):  # x (B, T, D)
            h = torch.relu(self.bn1(self.conv(x.transpose(1, 2))))  # (B, F, O)
            h, _ = self.gru1(h.transpose(1, 2))  # (B, O, U)
            h = self.bn2(h.transpose(1, 2)).transpose(1, 2)
            h, _ = self.gru2(h)
            return torch.softmax(self.dense(h), dim=-1)

    def cce(p, y):  # Keras CategoricalCrossentropy on probabilities (they sum to 1 here)
        return -(y * torch.log(torch.clamp(p, 1e-7, 1 - 1e-7))).sum(-1).mean()

    runners: dict[str, Runner] = {}
    x1 = t(w.x1)
    gru, lstm, kws = torch_gru(D, w.gru).eval(), torch_lstm(w.lstm).eval(), KWS().eval()
    for name, model in (("W1", lambda x: gru(x)[0]), ("W2", lambda x: lstm(x)[0]), ("W3", kws)):

        def run(model=model):
            with torch.inference_mode():
                return model(x1).numpy()

        runners[name] = Runner(run, run)

    train = KWS().train()
    opt = torch.optim.Adam(train.parameters(), lr=1e-3, eps=1e-7)
    x32, y32 = t(w.x32), t(w.y32)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = cce(train(x32), y32)
        loss.backward()
        opt.step()
        return loss

    first = float(cce(KWS().train()(x32), y32).detach())
    runners["W4"] = Runner(step, lambda: first)

    g5 = torch_gru(D, w.gru).train()
    xg = t(w.x32).clone().requires_grad_(True)
    dy = t(w.dy32)

    def fwd_bwd():
        g5.zero_grad(set_to_none=True)
        xg.grad = None
        y, _ = g5(xg)
        y.backward(dy)
        return xg.grad, g5.weight_ih_l0.grad

    def w5_result():
        dx, dwi = fwd_bwd()
        r, z, n = np.split(dwi.numpy().T, 3, axis=-1)  # back to Keras [z | r | h]
        return dx.numpy(), np.concatenate([z, r, n], axis=-1)

    runners["W5"] = Runner(fwd_bwd, w5_result)
    return runners

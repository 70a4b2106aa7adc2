"""The benchmark, `nntk-parity bench`: nntk side by side with the other CPU runtimes,
one thread each.

Workloads (float32, one thread):
  W1  GRU inference, B=1, T=100, 40 -> 64 units, return_sequences
  W2  LSTM inference, same shapes
  W3  keyword detector inference, B=1, T=100: Conv1D(40->64, k=5, valid) -> BatchNorm
      -> relu -> GRU(64, seq) -> BatchNorm -> GRU(64, seq) -> TimeDistributed(Dense(2, softmax))
  W4  one training step of W3's network at B=32: forward, categorical crossentropy,
      backward (weight gradients), Adam update
  W5  GRU forward + backward alone, B=32, T=100, 40 -> 64 (weight and input gradients)
  W6  W3's network streamed: one frame per call, the GRUs' states carried from call to
      call; frame i is the conv's window of K=5 input frames x[:, i:i+5] (a view of the
      feature history), so a call computes one output step; timed per frame
  W7a, W7b  GRU, LSTM inference as W1, W2 with 256 units
  W7c, W7d  GRU, LSTM forward + backward as W5 with 256 units

Every framework gets the same weights (converted to its gate layout: PyTorch GRU gates
r, z, n with two biases = Keras reset_after=True; ONNX GRU z, r, h with
linear_before_reset=1; ONNX LSTM i, o, f, c) and the same inputs, and its outputs are
checked against the reference (tf.keras when installed, else nntk) before anything is
timed: inference outputs within |a - b| <= 1e-4 (they are in [-1, 1] or probabilities),
W4's first-step loss within 1e-4 relative, W5's and W7c/d's input and kernel gradients
within 1e-3 of the largest reference element. W6's outputs over the sequence, every
framework's (nntk's too), within 1e-4 of nntk's full-sequence W3 inference. A peer
that fails the check is reported as MISMATCH and gets no ratio.

Timing: after warm-up (XLA compiles there), rounds visit the frameworks in a rotating
order (interleaved, so a change in machine load hits all alike); one sample is the mean
of enough back-to-back calls to last ~5 ms. Reported: median, IQR (p75 - p25) and min
per call, GFLOP/s of the matrix products (2 FLOPs per multiply-add; the transcendental
and elementwise work is not counted), % of the machine's measured single-core peak (a
large one-thread OpenBLAS sgemm), and the ratio nntk / framework.

nntk is driven through its C API (ctypes, preallocated buffers, as an app would call
it); "nntk-py" is the same through the Python layer classes, to show the binding's
cost. Peers are driven through their Python APIs. For W6 the run also splits nntk's
C-API latency per frame into the FLOP time at the sgemm peak and the overhead, and
measures the part of the overhead that is ctypes's own (the same number of calls of a
near-empty library function through the same path).

Processes: nntk and nntk-py run in this process; every peer runs in a process of its
own (`Worker`, multiprocessing spawn), so no two native runtimes (TensorFlow, PyTorch,
ONNX Runtime, TFLite) ever share a process: loaded together they can crash at import or
at exit (seen: TensorFlow and triton, and the teardown of all four). The TFLite worker
gets its models converted by TensorFlow in a short-lived process of their own. This
process sends the requests (warm up, calibrate, time one sample) to one framework at a
time, so the frameworks still take turns and only one of them runs at any moment.

Modules: `workloads.py` (W1-W7: shapes, FLOPs, weights and data, the output checks),
`nntk_runners.py` (nntk through its C API and its Python API), `peer_keras.py`
(tf.keras, XLA, TFLite), `peer_onnx.py` (ONNX Runtime), `peer_torch.py` (PyTorch),
`frameworks.py` (the frameworks and their builders), `timing.py` (in-process and
worker-process timing, the sgemm peak), `memory.py` (nntk's allocations), `report.py`
(the printed, Markdown and plotted report) and `run.py` (the run and the command).
"""

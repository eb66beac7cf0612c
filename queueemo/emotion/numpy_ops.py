"""The few network operations the torch-free runtime needs, in numpy (float32).

Analysis with a small network does not need torch: importing it costs a scan worker ~2 CPU-s and
~200 MB, more than the network itself. These functions compute what their torch counterparts compute
(``nn.Conv1d``, ``nn.GELU``, a bidirectional ``nn.LSTM``) to float32 rounding; the tests pin each
against torch.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, without overflow warnings for large negative inputs."""
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function to a fractional error below 1.2e-7 (Numerical Recipes' Chebyshev ``erfc``)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(x.dtype)


def gelu(x: np.ndarray) -> np.ndarray:
    """torch's exact GELU, x · Φ(x)."""
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2))))


def conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
           stride: int = 1, dilation: int = 1) -> np.ndarray:
    """(frames, in) × weight (out, in, k) → (frames_out, out), no padding (pad ``x`` first).

    Time-major, so each output frame is one row of a single matrix product over the unfolded input.
    """
    out_channels, in_channels, k = weight.shape
    span = (k - 1) * dilation + 1
    if len(x) < span:
        return np.zeros((0, out_channels), dtype=np.float32)
    windows = sliding_window_view(x, span, axis=0)[::stride, :, ::dilation]  # (frames_out, in, k)
    flat = windows.reshape(len(windows), in_channels * k)
    out = flat @ weight.reshape(out_channels, in_channels * k).T
    return out if bias is None else out + bias


def bidirectional_lstms(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Several single-layer bidirectional LSTMs (one per leading index, e.g. ensemble members) at once.

    ``x`` (models, batch, steps, inputs); per model and direction (forward, reverse): ``w_ih``
    (models, 2, 4·hidden, inputs), ``w_hh`` (models, 2, 4·hidden, hidden), ``bias`` = b_ih + b_hh
    (models, 2, 4·hidden), gates in torch's order i, f, g, o. Returns (models, batch, steps, 2·hidden):
    the forward then the reverse direction's output at each step, as ``nn.LSTM(bidirectional=True)``.
    """
    models, batch, steps, _ = x.shape
    hidden = w_hh.shape[-1]
    inputs = np.einsum("mbtd,mkgd->mkbtg", x, w_ih, optimize=True) + bias[:, :, None, None, :]
    recurrent = np.swapaxes(w_hh, -1, -2)  # (models, 2, hidden, 4·hidden)
    h = np.zeros((models, 2, batch, hidden), dtype=np.float32)
    c = np.zeros_like(h)
    out = np.empty((models, 2, batch, steps, hidden), dtype=np.float32)
    for t in range(steps):
        back = steps - 1 - t
        gates = np.stack([inputs[:, 0, :, t], inputs[:, 1, :, back]], axis=1) + h @ recurrent
        i, f, g, o = np.split(gates, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out[:, 0, :, t] = h[:, 0]
        out[:, 1, :, back] = h[:, 1]
    return np.concatenate([out[:, 0], out[:, 1]], axis=-1)

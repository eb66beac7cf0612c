"""Per-window acoustic descriptors from the 96-band mel power musicnn's input is computed from.

musicnn's embedding describes 3 s of timbre; what changes *within* a piece — playing louder, more
notes, a brighter register — is what these few numbers say directly, per 0.5-s window:

``loudness``  window loudness relative to the track's own median, in units of 10 dB
``flux``      mean positive change of log mel power between frames (onsets, note density)
``flux_rel``  ``flux`` minus the track's median flux (denser or sparser than the rest of the track)
``centroid``  power-weighted mean mel band (0 = lowest, 1 = highest): brightness

All four are unchanged by a gain, so the mastering level of a file does not leak into them (flux
excepted where music starts from digital silence, whose onset has no finite level to be relative
to). The same ``DescriptorStream`` runs at training (embedding cache) and analysis
(``embedding.embed_file``), fed the same float16 mel frames.
"""

from __future__ import annotations

import numpy as np
import torch

DESCRIPTOR_NAMES = ("loudness", "flux", "flux_rel", "centroid")
N_DESCRIPTORS = len(DESCRIPTOR_NAMES)
# Floor of the logs: loudness is floored absolutely (digital silence); for flux, each frame's bands are
# floored at 30 dB below the frame's mean band power (plus a tiny absolute floor), a floor that moves with
# a gain, so quiet bands neither vanish nor dominate at any level.
POWER_FLOOR = 1e-8
RELATIVE_FLOOR = 1e-3


class DescriptorStream:
    """Accumulates per-frame quantities of consecutive mel chunks; ``windows`` reduces them."""

    def __init__(self) -> None:
        self._previous: torch.Tensor | None = None
        self._energy: list[np.ndarray] = []
        self._weighted: list[np.ndarray] = []
        self._flux: list[np.ndarray] = []

    def add(self, power: torch.Tensor) -> None:
        """The next (frames, 96) mel power frames (any float dtype) of the track."""
        if len(power) == 0:
            return
        power = power.float()
        logs = torch.log10(power + RELATIVE_FLOOR * power.mean(dim=1, keepdim=True) + POWER_FLOOR)
        before = torch.cat([logs[:1] if self._previous is None else self._previous, logs[:-1]])
        self._flux.append((logs - before).clamp_min(0).mean(dim=1).numpy())
        self._previous = logs[-1:]
        self._energy.append(power.sum(dim=1).double().numpy())
        bands = torch.arange(power.shape[1], dtype=torch.float32) / (power.shape[1] - 1)
        self._weighted.append((power @ bands).double().numpy())

    def windows(self, n_windows: int, frames_per_window: float) -> np.ndarray:
        """(n_windows, 4) float32 descriptors; frame ``f`` belongs to window ``f // frames_per_window``."""
        if n_windows == 0:
            return np.zeros((0, N_DESCRIPTORS), dtype=np.float32)
        energy = np.concatenate(self._energy) if self._energy else np.zeros(0)
        index = np.minimum((np.arange(len(energy)) / frames_per_window).astype(np.int64), n_windows - 1)
        count = np.bincount(index, minlength=n_windows)
        total = np.bincount(index, energy, minlength=n_windows)
        weighted = np.bincount(index, np.concatenate(self._weighted) if self._weighted else None,
                               minlength=n_windows)
        flux = np.bincount(index, np.concatenate(self._flux) if self._flux else None,
                           minlength=n_windows) / np.maximum(count, 1)
        loudness = np.log10(total / np.maximum(count, 1) + POWER_FLOOR)
        centroid = np.where(total > 0, weighted / np.maximum(total, 1e-30), 0.0)
        return np.stack([loudness - np.median(loudness), flux, flux - np.median(flux), centroid],
                        axis=1).astype(np.float32)


def window_descriptors(power: torch.Tensor, n_windows: int, frames_per_window: float) -> np.ndarray:
    """(n_windows, 4) descriptors of a whole track's (frames, 96) mel power."""
    stream = DescriptorStream()
    stream.add(power)
    return stream.windows(n_windows, frames_per_window)

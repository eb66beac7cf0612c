"""musicnn (Pons & Serra, MSD model) re-implemented as ``nn.Module`` for inference (no I/O here).

The network of the ``musicnn`` package (ISC licence, © MTG-UPF), layer for layer, with weights
converted from its TensorFlow checkpoint by ``scripts/convert_musicnn.py``. Input is musicnn's
log-compressed 96-band mel spectrogram at 16 kHz (``log10(10000 · mel + 1)``); the output used
here is the 200-d "penultimate" embedding.

The front and mid end are convolutional in time, so they run once over a long stretch of frames
(``frame_features``) and any number of 3-s patches are then pooled from the result
(``embed_pooled``): one embedding per 0.5-s window costs one pass over the track, not six.
``forward`` is the original patch-by-patch model, used to check the port against TensorFlow.
``CompactMusicnn`` is the same network with its dead filters folded into constants, built at load time
for analysis.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FRONT_CHANNELS = 561  # 2 × 204 timbral + 3 × 51 temporal
FEATURE_CHANNELS = FRONT_CHANNELS + 3 * 64  # dense connection of front end and mid end: 753
EMBEDDING_SIZE = 200
# Frames of context either side that a frame's mid-end features depend on (temporal 'same' conv
# of 128 frames: 64, plus three 7-frame mid-end convolutions: 9).
RECEPTIVE_MARGIN = 73
BN_EPS = 1e-3  # TensorFlow's default for batch_normalization
TIMBRAL_KERNELS = (38, 67)  # int(0.4 · 96), int(0.7 · 96) mel bands, 7 frames
TEMPORAL_KERNELS = (128, 64, 32)  # frames, 1 mel band


def _pooled_bn(maps: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``bn(maps).amax(dim=3)`` for an inference-mode batch norm, without normalising whole maps.

    Batch norm is a per-channel affine map, so the maximum over frequency of its output is the
    affine map of the maximum (positive scale) or of the minimum (negative scale): pooling first
    saves the memory and time of normalising (batch, channels, frames, bands) maps.
    """
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps))[:, None]  # (channels, 1)
    extreme = torch.where(scale >= 0, maps.amax(dim=3), maps.amin(dim=3))  # (batch, channels, frames)
    return (extreme - bn.running_mean[:, None]) * scale + bn.bias[:, None]


class Musicnn(nn.Module):
    """musicnn MSD: log-mel (batch, frames, 96) → embeddings (batch, 200)."""

    stride = 1  # one feature per mel frame
    receptive_margin = RECEPTIVE_MARGIN

    def __init__(self) -> None:
        super().__init__()
        self.bn_input = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(nn.Conv2d(1, 204, (7, k)) for k in TIMBRAL_KERNELS)
        self.timbral_bn = nn.ModuleList(nn.BatchNorm2d(204, eps=BN_EPS) for _ in TIMBRAL_KERNELS)
        self.temporal = nn.ModuleList(nn.Conv2d(1, 51, (k, 1)) for k in TEMPORAL_KERNELS)
        self.temporal_bn = nn.ModuleList(nn.BatchNorm2d(51, eps=BN_EPS) for _ in TEMPORAL_KERNELS)
        self.mid = nn.ModuleList(nn.Conv1d(c, 64, 7) for c in (FRONT_CHANNELS, 64, 64))
        self.mid_bn = nn.ModuleList(nn.BatchNorm1d(64, eps=BN_EPS) for _ in range(3))
        self.pool_bn = nn.BatchNorm1d(2 * FEATURE_CHANNELS, eps=BN_EPS)
        self.dense = nn.Linear(2 * FEATURE_CHANNELS, EMBEDDING_SIZE)
        self.dense_bn = nn.BatchNorm1d(EMBEDDING_SIZE, eps=BN_EPS)

    def frame_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 96) → (batch, 753, frames): front- and mid-end features per frame.

        Frames beyond either end count as zeros after input normalisation, as in TensorFlow.
        """
        x = self.bn_input(mel.unsqueeze(1))  # (B, 1, T, 96)
        parts = []
        padded = F.pad(x, (0, 0, 3, 3))
        for conv, bn in zip(self.timbral, self.timbral_bn, strict=True):
            parts.append(_pooled_bn(F.relu_(conv(padded)), bn))
        for conv, bn in zip(self.temporal, self.temporal_bn, strict=True):
            k = conv.kernel_size[0]
            before = (k - 1) // 2  # TensorFlow's 'same': the extra frame of padding goes after
            parts.append(_pooled_bn(F.relu_(conv(F.pad(x, (0, 0, before, k - 1 - before)))), bn))
        front = torch.cat(parts, dim=1)  # (B, 561, T)
        outputs = [front]
        previous = None
        for conv, bn in zip(self.mid, self.mid_bn, strict=True):
            y = bn(F.relu(conv(F.pad(outputs[-1], (3, 3)))))
            previous = y if previous is None else y + previous
            outputs.append(previous)
        return torch.cat(outputs, dim=1)

    def embed_pooled(self, maximum: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Temporal max and mean of frame features, each (n, 753) → (n, 200) embeddings."""
        pooled = torch.stack([maximum, mean], dim=2).flatten(1)  # TF's order: max, mean per channel
        return self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        features = self.frame_features(patches)
        return self.embed_pooled(features.amax(dim=2), features.mean(dim=2))

    # Every channel may vary here: pooling sees all 753 (``CompactMusicnn`` skips the constant ones).
    varying_features = frame_features
    embed_varying = embed_pooled


# A filter whose weights are all smaller than this is dead: its output is its bias, a constant. In the
# MSD weights 181 + 190 of the 2 × 204 timbral filters, 126 of the 153 temporal ones and 48 of the 192
# mid-end ones are dead (largest weight 2.1e-7; the smallest live filter's largest weight is 9.4e-4).
DEAD_WEIGHT = 1e-4


def _live(conv: nn.Conv1d | nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().flatten(1).abs().amax(dim=1) >= DEAD_WEIGHT


def _bn_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """An inference-mode batch norm as ``x · scale + shift``."""
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    return scale, (bn.bias - bn.running_mean * scale).detach()


class _FrontBranch(nn.Module):
    """One front-end convolution → ReLU → batch norm → max over frequency, live filters only.

    Batch norm is a per-channel affine map and ReLU is monotonic, so the max over frequency of the
    output is taken on the raw convolution, with the filters of negative-scale channels negated
    (their max becomes the min the affine map needs): one small convolution and one max per branch.
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, pad: tuple[int, int]) -> None:
        super().__init__()
        live = _live(conv)
        scale, shift = _bn_affine(bn)
        sign = torch.where(scale[live] >= 0, 1.0, -1.0)
        self.conv = nn.Conv2d(1, int(live.sum()), conv.kernel_size)
        self.conv.weight.data = conv.weight.detach()[live] * sign[:, None, None, None]
        self.conv.bias.data = conv.bias.detach()[live] * sign
        self.pad = pad
        self.register_buffer("sign", sign[:, None])
        self.register_buffer("scale", scale[live][:, None])
        self.register_buffer("shift", shift[live][:, None])
        self.register_buffer("rows", torch.nonzero(live)[:, 0])
        dead = ~live
        self.register_buffer("dead_rows", torch.nonzero(dead)[:, 0])
        self.register_buffer("dead_values", F.relu(conv.bias.detach()[dead]) * scale[dead] + shift[dead])

    def extreme(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, frames, 96) → (batch, live filters, frames): max over frequency of the conv."""
        return self.conv(F.pad(x, (0, 0, *self.pad))).amax(dim=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, frames, 96) normalised input → (batch, live filters, frames)."""
        return F.relu_(self.extreme(x) * self.sign) * self.scale + self.shift


class _TemporalBranch(_FrontBranch):
    """A temporal (k frames × 1 band) branch as one matrix product per block of k frames.

    Output frames ``qk … qk + k − 1`` of every band depend on input frames ``qk … qk + 2k − 1``, so
    they are a product of those 2k samples with a (2k, k · filters) banded matrix of the kernels:
    twice the multiply-adds of the convolution, but one large product instead of a thin
    convolution, half the time of ``conv2d`` for these shapes (measured on one AVX2 core).
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, pad: tuple[int, int]) -> None:
        super().__init__(conv, bn, pad)
        kernels = self.conv.weight.detach()[:, 0, :, 0]  # (filters, k)
        k = kernels.shape[1]
        lag = torch.arange(2 * k)[:, None] - torch.arange(k)[None, :]  # input − output frame
        banded = kernels.T[lag.clamp(0, k - 1)] * ((lag >= 0) & (lag < k))[..., None]
        self.register_buffer("banded", banded.reshape(2 * k, -1))  # (2k, k · filters)

    def extreme(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames, bands = x.shape
        k = self.banded.shape[0] // 2
        filters = self.banded.shape[1] // k
        blocks = (frames + k - 1) // k  # not -(-frames // k): ONNX divides integers toward zero
        padded = F.pad(x[:, 0], (0, 0, self.pad[0], (blocks + 1) * k - frames - self.pad[0]))
        pieces = padded.view(batch, blocks + 1, k, bands)
        pairs = torch.cat([pieces[:, :-1], pieces[:, 1:]], dim=2).transpose(2, 3)  # (B, Q, 96, 2k)
        out = (pairs @ self.banded).view(batch, blocks, bands, k, filters).amax(dim=2)
        out = out.reshape(batch, blocks * k, filters)[:, :frames]
        return out.transpose(1, 2) + self.conv.bias[:, None]


class CompactMusicnn(nn.Module):
    """``Musicnn`` with its dead filters replaced by the constants they output (same interface).

    Built from a loaded ``Musicnn`` at load time; about nine times fewer multiply-adds per frame.
    Equal to the full network within float rounding plus the dead filters' weights (≤ 2.1e-7) times
    the input: ``bench/analyze.py --check`` measures the difference on real audio.
    """

    stride = Musicnn.stride
    receptive_margin = Musicnn.receptive_margin

    def __init__(self, full: Musicnn) -> None:
        super().__init__()
        self.bn_input = full.bn_input
        pads = [(3, 3)] * len(TIMBRAL_KERNELS) + [((k - 1) // 2, k // 2) for k in TEMPORAL_KERNELS]
        convs = [*full.timbral, *full.temporal]
        bns = [*full.timbral_bn, *full.temporal_bn]
        kinds = [_FrontBranch] * len(TIMBRAL_KERNELS) + [_TemporalBranch] * len(TEMPORAL_KERNELS)
        self.branches = nn.ModuleList(kind(conv, bn, pad)
                                      for kind, conv, bn, pad in zip(kinds, convs, bns, pads, strict=True))
        offsets = torch.cumsum(torch.tensor([0] + [c.out_channels for c in convs]), 0)
        live = torch.cat([b.rows + o for b, o in zip(self.branches, offsets, strict=False)])
        dead = torch.cat([b.dead_rows + o for b, o in zip(self.branches, offsets, strict=False)])
        # Front channels are computed live-first; ``order`` maps them back to the original layout.
        constants = torch.cat([b.dead_values for b in self.branches])
        self.register_buffer("front_constants", constants)
        self.register_buffer("order", torch.argsort(torch.cat([live, dead])))
        # The first mid-end convolution reads the live front channels; the constant ones add a fixed
        # kernel, applied to a ones signal so the zero padding at either end of a track stays exact.
        first = full.mid[0]
        self.mid_first = nn.Conv1d(len(live), first.out_channels, first.kernel_size[0])
        self.mid_first.weight.data = first.weight.detach()[:, live]
        self.mid_first.bias.data = first.bias.detach()
        self.register_buffer("mid_first_constant", torch.einsum("oik,i->ok", first.weight.detach()[:, dead],
                                                                constants)[:, None])
        self.mid = full.mid[1:]
        self.mid_bn = full.mid_bn
        self.pool_bn = full.pool_bn
        self.dense = full.dense
        self.dense_bn = full.dense_bn

    def varying_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 96) → (batch, 256, frames): the features that are not constant.

        The live front-end channels, then the mid end's 3 × 64: pooling these and adding the
        constants afterwards (``embed_varying``) saves pooling 497 constant channels.
        """
        x = self.bn_input(mel.unsqueeze(1))
        frames = x.shape[2]
        live = torch.cat([branch(x) for branch in self.branches], dim=1)
        ones = F.pad(x.new_ones((1, 1, frames)), (3, 3))
        first = self.mid_first(F.pad(live, (3, 3))) + F.conv1d(ones, self.mid_first_constant)
        previous = self.mid_bn[0](F.relu(first))
        outputs = [live, previous]
        for conv, bn in zip(self.mid, self.mid_bn[1:], strict=True):
            previous = bn(F.relu(conv(F.pad(previous, (3, 3))))) + previous
            outputs.append(previous)
        return torch.cat(outputs, dim=1)

    def _with_constants(self, varying: torch.Tensor) -> torch.Tensor:
        """(batch, 256, …) varying features → (batch, 753, …) in the original channel order."""
        n_live = len(self.order) - len(self.front_constants)
        constants = self.front_constants.view(1, -1, *[1] * (varying.dim() - 2))
        constants = constants.expand(varying.shape[0], -1, *varying.shape[2:])
        front = torch.cat([varying[:, :n_live], constants], dim=1)[:, self.order]
        return torch.cat([front, varying[:, n_live:]], dim=1)

    def frame_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 96) → (batch, 753, frames), as ``Musicnn.frame_features``."""
        return self._with_constants(self.varying_features(mel))

    embed_pooled = Musicnn.embed_pooled

    def embed_varying(self, maximum: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Temporal max and mean of ``varying_features``, each (n, 256) → (n, 200) embeddings."""
        return self.embed_pooled(self._with_constants(maximum), self._with_constants(mean))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        features = self.frame_features(patches)
        return self.embed_pooled(features.amax(dim=2), features.mean(dim=2))

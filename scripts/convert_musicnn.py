"""Convert musicnn's MSD TensorFlow checkpoint into queueemo's PyTorch weights.

A tool, not part of the package: it needs ``musicnn`` (``pip install --no-deps musicnn==0.1.0``, which
carries the checkpoint) and, for ``--verify`` and ``--golden``, ``tensorflow-cpu`` with ``tf-keras``.
TensorFlow is never a dependency of queueemo.

    python scripts/convert_musicnn.py                 # writes models/musicnn_msd.{npz,json}
    python scripts/convert_musicnn.py --verify a.opus # TF vs torch on real audio, exact 3-s patches
    python scripts/convert_musicnn.py --golden        # tests/emotion/musicnn_golden.npz, from TF
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAME = "musicnn_msd"
GOLDEN = ROOT / "tests" / "emotion" / "musicnn_golden.npz"
LICENCE = (
    "musicnn (https://github.com/jordipons/musicnn), MSD_musicnn weights. ISC License. "
    "Copyright (c) 2019, Jordi Pons and Xavier Serra (Music Technology Group, Universitat Pompeu "
    "Fabra). Permission to use, copy, modify, and/or distribute this software for any purpose with "
    "or without fee is hereby granted, provided that the above copyright notice and this permission "
    "notice appear in all copies. THE SOFTWARE IS PROVIDED \"AS IS\" AND THE AUTHOR DISCLAIMS ALL "
    "WARRANTIES WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND "
    "FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR "
    "CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, "
    "WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN "
    "CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE."
)


def checkpoint_prefix() -> str:
    import musicnn

    return str(Path(musicnn.__file__).parent / "MSD_musicnn") + "/"


def _bn(reader, tf_name: str, torch_name: str) -> dict[str, np.ndarray]:
    pairs = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}
    return {f"{torch_name}.{t}": reader.get_tensor(f"{tf_name}/{k}") for k, t in pairs.items()}


def convert(reader) -> dict[str, np.ndarray]:
    """TF checkpoint tensors → the state dict of ``queueemo.emotion.musicnn.Musicnn``."""
    state = _bn(reader, "batch_normalization", "bn_input")
    convs = [("timbral.0", "conv2d", "timbral_bn.0", 1), ("timbral.1", "conv2d_1", "timbral_bn.1", 2),
             ("temporal.0", "conv2d_2", "temporal_bn.0", 3), ("temporal.1", "conv2d_3", "temporal_bn.1", 4),
             ("temporal.2", "conv2d_4", "temporal_bn.2", 5)]
    for module, tf_conv, bn, bn_index in convs:
        state[f"{module}.weight"] = reader.get_tensor(f"{tf_conv}/kernel").transpose(3, 2, 0, 1)
        state[f"{module}.bias"] = reader.get_tensor(f"{tf_conv}/bias")
        state.update(_bn(reader, f"batch_normalization_{bn_index}", bn))
    for i in range(3):
        kernel = reader.get_tensor(f"conv2d_{5 + i}/kernel")[:, :, 0, :]  # (7, in, 64)
        state[f"mid.{i}.weight"] = kernel.transpose(2, 1, 0)
        state[f"mid.{i}.bias"] = reader.get_tensor(f"conv2d_{5 + i}/bias")
        state.update(_bn(reader, f"batch_normalization_{6 + i}", f"mid_bn.{i}"))
    state.update(_bn(reader, "batch_normalization_9", "pool_bn"))
    state["dense.weight"] = reader.get_tensor("dense/kernel").T
    state["dense.bias"] = reader.get_tensor("dense/bias")
    state.update(_bn(reader, "batch_normalization_10", "dense_bn"))
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def write_weights(out_dir: Path) -> None:
    import librosa
    import tensorflow as tf

    from queueemo.assets import file_sha256
    from queueemo.emotion.musicnn_input import N_FFT, N_MELS, SAMPLE_RATE, audio_settings

    state = convert(tf.compat.v1.train.NewCheckpointReader(checkpoint_prefix()))
    state["mel_basis"] = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)
    weights = out_dir / f"{NAME}.npz"
    np.savez_compressed(weights, **state)
    parameters = sum(v.size for k, v in state.items() if k != "mel_basis" and "running" not in k)
    info = {
        "version": f"{NAME}-{file_sha256(weights)[:12]}",
        "source": "musicnn 0.1.0 (PyPI), MSD_musicnn checkpoint, converted by scripts/convert_musicnn.py",
        "licence": LICENCE,
        "audio": audio_settings(),
        "embedding": "penultimate (200), pooled over the 3-s patch centred on each window",
        "parameters": int(parameters),
        "sha256": file_sha256(weights),
    }
    (out_dir / f"{NAME}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {weights} ({weights.stat().st_size} bytes, {parameters} parameters)")


def tf_penultimate(mels: np.ndarray) -> np.ndarray:
    """The original network on (n, 187, 96) log-mel patches → (n, 200)."""
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, mels.shape[1], 96])
    training = tf.compat.v1.placeholder(tf.bool)
    outputs = models.define_model(x, training, "MSD_musicnn", 50)
    with tf.compat.v1.Session() as session:
        tf.compat.v1.train.Saver().restore(session, checkpoint_prefix())
        return session.run(outputs[-1], feed_dict={x: mels, training: False})


def librosa_patches(signal: np.ndarray) -> np.ndarray:
    """musicnn's own input pipeline (extractor.batch_data) on a 16-kHz signal: non-overlapping patches.

    One deviation, also made by the port: ``10000 · mel`` is computed in float32 from the float16
    mel (musicnn's extractor multiplies in float16, which overflows to inf above a mel power of 6.55
    — common in loud recordings — and turns the whole embedding into NaN); mel power beyond
    float16's range is clipped.
    """
    import librosa

    mel = librosa.feature.melspectrogram(y=signal, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    mel = np.log10(10000 * np.minimum(mel, 65504.0).astype(np.float16).astype(np.float32) + 1)
    return np.stack([mel[s : s + 187] for s in range(0, len(mel) - 186, 187)]).astype(np.float32)


def torch_patches(signal: np.ndarray, mels: np.ndarray | None = None) -> np.ndarray:
    """The port on the same patches: mel computed in torch, or the given log-mel patches."""
    import torch

    from queueemo.emotion.embedding import load_front_end, log_compress, stream_mel

    front = load_front_end(ROOT / "models")
    with torch.inference_mode():
        if mels is not None:
            return front.network(torch.from_numpy(mels)).numpy()
        power, _ = stream_mel(front, iter([signal[None]]))
        mel = log_compress(power)
        patches = torch.stack([mel[s : s + 187] for s in range(0, len(mel) - 186, 187)])
        return front.network(patches).numpy()


def verify(path: Path) -> None:
    from queueemo.audio import decode_windows

    signal = np.concatenate([b.ravel() for b in decode_windows(path, sample_rate=16000)])[: 16000 * 60]
    mels = librosa_patches(signal)
    expected = tf_penultimate(mels)
    same_input = np.abs(expected - torch_patches(signal, mels)).max()
    whole = np.abs(expected - torch_patches(signal)).max()
    print(f"{path.name}: {len(expected)} patches, embedding scale {np.abs(expected).max():.2f}; "
          f"max |TF − torch| on librosa's mel {same_input:.1e}, with the mel computed in torch {whole:.1e}")


def write_golden() -> None:
    signal = runpy.run_path(str(ROOT / "tests" / "emotion" / "test_musicnn.py"))["golden_signal"]()
    mels = librosa_patches(signal)
    np.savez_compressed(GOLDEN, mel=mels, penultimate=tf_penultimate(mels))
    print(f"wrote {GOLDEN}")


def main() -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models")
    parser.add_argument("--verify", type=Path, nargs="*", default=None)
    parser.add_argument("--golden", action="store_true")
    args = parser.parse_args()
    if args.verify is not None:
        for path in args.verify:
            verify(path)
    elif args.golden:
        write_golden()
    else:
        write_weights(args.out)


if __name__ == "__main__":
    main()

"""The torch-free runtime computes what the torch networks compute."""

import itertools

import numpy as np
import pytest
import torch

from queueemo.emotion.inference import predict_features
from queueemo.emotion.network import ClipEnsembleV2, ClipV2Config
from queueemo.emotion.numpy_head import EnsembleHead
from queueemo.emotion.numpy_ops import conv1d, gelu
from queueemo.errors import ModelError


def test_gelu_matches_torch_over_a_wide_range():
    x = np.linspace(-12, 12, 20001, dtype=np.float32)
    expected = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    assert np.abs(gelu(x) - expected).max() < 2e-6


@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 3), (2, 2)])
def test_conv1d_matches_torch(stride, dilation):
    rng = np.random.default_rng(stride * 10 + dilation)
    x = rng.standard_normal((97, 12)).astype(np.float32)  # (frames, channels)
    conv = torch.nn.Conv1d(12, 7, 5, stride=stride, dilation=dilation)
    expected = conv(torch.from_numpy(x.T)[None])[0].T.detach().numpy()
    weight, bias = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    got = conv1d(x, weight, bias, stride=stride, dilation=dilation)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def _random_ensemble(seed: int, members: int = 3) -> ClipEnsembleV2:
    torch.manual_seed(seed)
    model = ClipEnsembleV2(ClipV2Config(), members)
    with torch.no_grad():
        for member in model.members:
            member.input_mean.normal_()
            member.input_std.uniform_(0.5, 2.0)
    model.segment_windows = 64
    return model.eval()


@pytest.mark.parametrize("n_windows", [1, 40, 64, 150])
def test_numpy_head_matches_the_torch_ensemble(n_windows):
    model = _random_ensemble(n_windows)
    state = {name: value.numpy() for name, value in model.state_dict().items()}
    head = EnsembleHead.from_state(state, model.config.to_dict(), len(model.members), model.segment_windows)
    embeddings = np.random.default_rng(0).standard_normal((n_windows, 200)).astype(np.float32)
    expected = predict_features(model, embeddings)
    got = head.predict(embeddings)
    assert got.shape == (n_windows, 2)
    assert np.abs(got - expected).max() < 1e-5


def test_numpy_head_refuses_what_it_does_not_compute():
    model = _random_ensemble(1)
    state = {name: value.numpy() for name, value in model.state_dict().items()}
    with pytest.raises(ModelError, match="descriptors"):
        EnsembleHead.from_state(state, {"descriptors": 4}, 3, 64)
    with pytest.raises(ModelError, match="lack"):
        EnsembleHead.from_state({}, {}, 3, 64)


def test_numpy_mel_stream_equals_the_torch_front_end_mel():
    from queueemo.audio import WINDOW_SECONDS
    from queueemo.emotion.embedding import load_front_end, stream_mel
    from queueemo.emotion.musicnn_input import (
        SAMPLE_RATE,
        hann_window,
        log_compress,
        mel_power,
        stft_chunks,
    )

    window_samples = int(WINDOW_SECONDS * SAMPLE_RATE)
    rng = np.random.default_rng(3)
    signal = (0.3 * rng.standard_normal(37 * window_samples)).astype(np.float32)
    windows = signal.reshape(-1, window_samples)
    blocks = [windows[:5], windows[5:6], windows[6:30], windows[30:]]
    front = load_front_end()
    expected, n_windows = stream_mel(front, iter(blocks))
    basis = front.mel_basis.numpy()
    chunks = stft_chunks(iter(blocks))
    got = np.concatenate([mel_power(samples, basis, hann_window()) for samples, _ in chunks])
    assert n_windows == 37
    assert got.shape == tuple(expected.shape)
    # float16 rounding of float32 sums computed in a different order: at most one ulp apart
    assert np.abs(log_compress(got) - log_compress(expected.numpy())).max() < 2e-3


# The shipped geometry and a deeper one (gated residual layers of dilation 8 and 16 on top).
DEEPER = ((5, 2, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8), (3, 1, 16))


def _random_student(seed: int = 0, convolutions=None):
    from queueemo.emotion.numpy_student import NumpyStudent, StudentConfig

    config = StudentConfig(channels=32, hidden=64) if convolutions is None else StudentConfig(
        channels=32, hidden=64, convolutions=convolutions, gated_from=4)
    rng = np.random.default_rng(seed)
    arrays = {"input_mean": rng.standard_normal(96), "input_std": rng.uniform(0.5, 2, 96),
              "output_mean": rng.standard_normal(200), "output_std": rng.uniform(0.5, 2, 200),
              "hidden.weight": rng.standard_normal((64, 64)) / 8, "hidden.bias": rng.standard_normal(64),
              "out.weight": rng.standard_normal((200, 64)) / 8, "out.bias": rng.standard_normal(200)}
    channels = 96
    for index, (kernel, _, _) in enumerate(config.convolutions):
        out = 32
        scale = np.sqrt(channels * kernel)
        arrays[f"convs.{index}.weight"] = rng.standard_normal((out, channels, kernel)) / scale
        arrays[f"convs.{index}.bias"] = rng.standard_normal(out) / 10
        if config.gated(index):
            arrays[f"gains.{index}"] = rng.uniform(-1, 1, out)
        channels = out
    assert set(arrays) == config.array_names()
    return NumpyStudent({name: value.astype(np.float32) for name, value in arrays.items()}, config)


@pytest.mark.parametrize(("n_windows", "convolutions"),
                         [(1, None), (5, None), (130, None), (301, None), (5, DEEPER), (301, DEEPER)])
def test_streamed_student_embeddings_equal_a_whole_track_pass(n_windows, convolutions):
    from queueemo.emotion.musicnn_input import SAMPLE_RATE, hann_window, mel_power, stft_chunks
    from queueemo.emotion.patch_stream import embed_mel, embed_stream

    student = _random_student(convolutions=convolutions)
    assert student.receptive_margin == (127 if convolutions else 31)
    basis = np.abs(np.random.default_rng(1).standard_normal((96, 257))).astype(np.float32) / 50
    window_samples = SAMPLE_RATE // 2
    signal = np.random.default_rng(n_windows).standard_normal(n_windows * window_samples).astype(np.float32)
    windows = signal.reshape(n_windows, window_samples)
    sizes = np.random.default_rng(2).integers(1, 40, size=n_windows)
    cuts = np.unique(np.concatenate([[0], np.minimum(np.cumsum(sizes), n_windows)]))
    blocks = [windows[a:b] for a, b in itertools.pairwise(cuts)]

    def chunks():
        return ((mel_power(s, basis, hann_window()), n) for s, n in stft_chunks(iter(blocks)))

    power = np.concatenate([mel for mel, _ in chunks()])
    whole = embed_mel(student, power, n_windows, chunk_windows=n_windows)
    streamed = embed_stream(student, chunks(), chunk_windows=16)
    assert streamed.shape == (n_windows, 200)
    assert np.abs(streamed - whole).max() < 1e-4 * np.abs(whole).max()


@pytest.mark.parametrize("convolutions", [None, DEEPER])
def test_numpy_student_computes_what_the_torch_student_computes(convolutions):
    from queueemo.emotion.numpy_student import NumpyStudent, StudentConfig
    from queueemo.emotion.training.student import StudentNetwork

    torch.manual_seed(0)
    config = StudentConfig(convolutions=convolutions, gated_from=4) if convolutions else StudentConfig()
    network = StudentNetwork(config)
    with torch.no_grad():
        for norm in network.norms:
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
        for gain in network.gains.values():
            gain.uniform_(-1, 1)
        network.input_mean.normal_()
        network.input_std.uniform_(0.5, 2.0)
    assert len(network.gains) == (2 if convolutions else 0)
    folded = network.eval().folded()
    student = NumpyStudent({name: value.numpy() for name, value in folded.state_dict().items()}, config)
    for frames in (30, 187, 1001):
        mel = np.random.default_rng(frames).standard_normal((frames, 96)).astype(np.float32)
        with torch.inference_mode():
            expected = network.varying_features(torch.from_numpy(mel)[None])[0].numpy()
        got = student.varying_features(mel)
        assert got.shape == expected.shape == (128, -(-frames // 4))
        assert np.abs(got - expected).max() < 1e-4
        maximum, mean = got[:, :3].T.copy(), got[:, 3:6].T.copy()
        with torch.inference_mode():
            embedded = network.embed_varying(torch.from_numpy(maximum), torch.from_numpy(mean)).numpy()
        assert np.abs(student.embed_varying(maximum, mean) - embedded).max() < 1e-4

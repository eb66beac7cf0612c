"""The audio front end decodes real files of every common format into identical log-mel windows."""

from __future__ import annotations

import logging
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
from audiofiles import requires_ffmpeg, synth, write_audio

from queueemo import audio
from queueemo.errors import AudioError

FORMATS = [".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a"]


def windows_of(path) -> np.ndarray:
    return np.concatenate(list(audio.decode_windows(path)))


@requires_ffmpeg
@pytest.mark.parametrize("suffix", FORMATS)
def test_common_formats_decode_to_half_second_windows(make_audio, suffix):
    path = make_audio(f"tone{suffix}", seconds=3.0, freq=330.0)
    windows = windows_of(path)
    # Lossy encoders add a little padding; 3 s is 6 windows, give or take the tail rule.
    assert windows.shape[1] == audio.WINDOW_SAMPLES
    assert 6 <= len(windows) <= 7
    assert windows.dtype == np.float32
    assert 0.1 < np.abs(windows[1]).max() < 0.5


@requires_ffmpeg
def test_stereo_is_downmixed_and_other_rates_resampled(make_audio):
    path = make_audio("stereo48k.flac", seconds=2.0, sr=48_000, channels=2, freq=1000.0)
    windows = windows_of(path)
    assert windows.shape == (4, audio.WINDOW_SAMPLES)
    spectrum = np.abs(np.fft.rfft(windows[1]))
    peak_hz = np.argmax(spectrum) * audio.SAMPLE_RATE / audio.WINDOW_SAMPLES
    assert abs(peak_hz - 1000.0) < 5


def test_trailing_partial_window_kept_only_when_half_full(tmp_path):
    long_tail = write_audio(tmp_path / "a.wav", synth(1.3))  # 0.3 s tail ≥ 0.25 s → kept
    short_tail = write_audio(tmp_path / "b.wav", synth(1.2))  # 0.2 s tail → dropped
    assert len(windows_of(long_tail)) == 3
    assert len(windows_of(short_tail)) == 2
    assert np.all(windows_of(long_tail)[2, int(0.31 * audio.SAMPLE_RATE) :] == 0)


def test_blocks_are_bounded_so_memory_does_not_grow_with_length(tmp_path):
    path = write_audio(tmp_path / "long.flac", synth(70.0))
    sizes = [len(block) for block in audio.decode_windows(path)]
    assert sum(sizes) == 140
    assert max(sizes) <= audio.BLOCK_WINDOWS


def test_log_mel_matches_librosa_and_does_not_depend_on_batching():
    import librosa

    windows = np.stack([synth(0.5, freq=f, noise=0.05, seed=i) for i, f in enumerate((110, 440, 3000))])
    features = audio.log_mel(windows)
    assert features.shape == (3, audio.N_FRAMES, audio.N_MELS)
    reference = librosa.feature.melspectrogram(
        y=windows[1], sr=audio.SAMPLE_RATE, n_fft=audio.N_FFT, hop_length=audio.HOP_LENGTH,
        n_mels=audio.N_MELS, pad_mode="reflect",
    )
    np.testing.assert_allclose(features[1], np.log1p(reference).T, atol=1e-4)
    np.testing.assert_allclose(audio.log_mel(windows[1:2])[0], features[1], atol=1e-5)


def test_soundfile_fallback_gives_the_same_windows(tmp_path, monkeypatch):
    path = write_audio(tmp_path / "rate.wav", synth(2.0, sr=22_050, freq=500.0), sr=22_050)
    with_ffmpeg = windows_of(path)
    monkeypatch.setattr(audio, "_ffmpeg_available", lambda: False)
    with_soundfile = windows_of(path)
    assert with_soundfile.shape == with_ffmpeg.shape
    # Different resamplers: the same tone, not the same samples.
    spectra = [np.abs(np.fft.rfft(w[1])) for w in (with_ffmpeg, with_soundfile)]
    assert np.argmax(spectra[0]) == np.argmax(spectra[1])


def _zero_byte(tmp_path, make_audio):
    (tmp_path / "empty.mp3").write_bytes(b"")
    return tmp_path / "empty.mp3"


def _text_named(suffix):
    def make(tmp_path, make_audio):
        (tmp_path / f"notes{suffix}").write_text("not audio\n" * 200)
        return tmp_path / f"notes{suffix}"

    return make


def _missing(tmp_path, make_audio):
    return tmp_path / "missing.flac"


def _directory(tmp_path, make_audio):
    (tmp_path / "folder.ogg").mkdir()
    return tmp_path / "folder.ogg"


def _truncated(suffix, keep=1 / 3):
    def make(tmp_path, make_audio):
        data = make_audio(f"whole{suffix}", seconds=20, noise=0.1).read_bytes()
        target = tmp_path / f"truncated{suffix}"
        target.write_bytes(data[: int(len(data) * keep)])
        return target

    return make


def _cut_at(suffix, size):
    def make(tmp_path, make_audio):
        data = make_audio(f"whole{suffix}", seconds=20, noise=0.1).read_bytes()
        target = tmp_path / f"cut{suffix}"
        target.write_bytes(data[:size])
        return target

    return make


def _video_only(tmp_path, make_audio):
    target = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=32x32:d=1",
                    str(target)], check=True)
    return target


def _image_named_mp3(tmp_path, make_audio):
    target = tmp_path / "cover.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=32x32",
                    "-frames:v", "1", "-f", "image2", "-c:v", "png", str(target)], check=True)
    return target


def _damaged(suffix):
    def make(tmp_path, make_audio):
        data = bytearray(make_audio(f"whole{suffix}", seconds=20, noise=0.1).read_bytes())
        for index in range(5000, len(data) - 5000, 997):
            data[index] ^= 0xFF
        target = tmp_path / f"damaged{suffix}"
        target.write_bytes(bytes(data))
        return target

    return make


BAD_FILES = {
    "zero-byte": (_zero_byte, "empty file"),
    "missing": (_missing, "cannot read file"),
    "directory": (_directory, "not a regular file"),
    **{f"text-named-{s[1:]}": (_text_named(s), "not an audio file") for s in FORMATS},
    "video-only": (_video_only, "no audio stream"),
    "image-named-mp3": (_image_named_mp3, "no audio stream"),
    **{f"truncated-{s[1:]}": (_truncated(s), "truncated") for s in (".flac", ".mp3", ".ogg", ".opus")},
    "truncated-wav-10%": (_truncated(".wav", keep=0.1), "truncated: decoded 2.0 s of a declared 20.0 s"),
    "truncated-m4a": (_truncated(".m4a"), "incomplete MP4/M4A file"),
    # Cut inside the headers, before any audio: these were "not an audio file (format not recognised)".
    **{f"cut-in-headers-{s[1:]}": (_cut_at(s, 100), "truncated: the file ends before its first audio")
       for s in (".ogg", ".opus")},
    "damaged-flac": (_damaged(".flac"), "corrupt data"),
    "damaged-ogg": (_damaged(".ogg"), "corrupt data"),
}
# Words that belong to ffmpeg's command line or internals, not to the user's file.
FFMPEG_INTERNALS = ("ffmpeg", "map", "Conversion failed", "file:/", "@ 0x", "Invalid argument")


@requires_ffmpeg
@pytest.mark.parametrize("make_bad, reason", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_input_raises_one_clear_reason_naming_the_file(tmp_path, make_audio, make_bad, reason):
    path = make_bad(tmp_path, make_audio)
    with pytest.raises(AudioError) as caught:
        windows_of(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.reason.startswith(reason)
    assert not [word for word in FFMPEG_INTERNALS if word in caught.value.reason]


@requires_ffmpeg
@pytest.mark.parametrize("suffix", [".wav", ".ogg", ".opus"])
def test_whole_files_with_trailing_tags_are_not_called_truncated(make_audio, suffix):
    path = make_audio(f"tagged{suffix}", seconds=2.0)
    with path.open("ab") as file:  # an ID3v1 tag, as some taggers append to any file
        file.write(b"TAG" + b"\0" * 125)
    assert 4 <= len(windows_of(path)) <= 5


def _ffmpeg_rejects(path) -> bool:
    try:
        list(audio._ffmpeg_blocks(path, audio.WINDOW_SAMPLES, audio.SAMPLE_RATE))
    except AudioError:
        return True
    return False


@requires_ffmpeg
def test_libsndfile_decodes_what_ffmpeg_rejects(tmp_path):
    # An Akai MPC 2000 sample: libsndfile reads it, ffmpeg has no demuxer for it.
    path = tmp_path / "kick.snd"
    soundfile.write(str(path), synth(2.0, freq=500.0), 44_100, format="MPC2K")
    if not _ffmpeg_rejects(path):
        pytest.skip("this ffmpeg reads MPC2K: no file at hand that only libsndfile reads")
    windows = windows_of(path)
    assert windows.shape == (4, audio.WINDOW_SAMPLES)
    peak_hz = np.argmax(np.abs(np.fft.rfft(windows[1]))) * audio.SAMPLE_RATE / audio.WINDOW_SAMPLES
    assert abs(peak_hz - 500.0) < 5


@requires_ffmpeg
def test_when_libsndfile_finds_no_sound_either_the_reason_stays_ffmpegs(tmp_path, make_audio):
    path = _damaged(".ogg")(tmp_path, make_audio)  # libsndfile opens it but finds no sound
    with pytest.raises(AudioError, match="corrupt data"):
        windows_of(path)


def test_wav_header_is_checked_by_the_decoder_not_trusted(tmp_path):
    path = tmp_path / "header-only.wav"
    soundfile.write(str(path), np.zeros(0, dtype=np.float32), 44_100)
    with pytest.raises(AudioError, match="no audio"):
        windows_of(path)


def test_stopping_early_ends_the_decoder_at_once(tmp_path):
    import time

    path = write_audio(tmp_path / "long.wav", synth(120.0))
    blocks = audio.decode_windows(path, block_windows=4)
    assert next(blocks).shape == (4, audio.WINDOW_SAMPLES)
    started = time.monotonic()
    blocks.close()
    assert time.monotonic() - started < 2.0


@requires_ffmpeg
@pytest.mark.parametrize(("suffix", "channels"), [(".ogg", 1), (".flac", 1), (".mp3", 1), (".flac", 2),
                                                  (".ogg", 2)])
def test_decoded_samples_are_ffmpegs_own_mono_downmix(tmp_path, suffix, channels):
    """Regrouped frames and the stereo → (L + R)/√2 mix give the samples of ffmpeg's ``-ac 1``."""
    left = synth(7.3, sr=48_000, freq=330, noise=0.05)
    right = synth(7.3, sr=48_000, freq=523, noise=0.05, seed=1)
    path = tmp_path / f"tone{suffix}"
    soundfile.write(str(path), np.stack([left, right], axis=1) if channels == 2 else left, 48_000)
    plain = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
                            "-ar", "16000", "-f", "f32le", "pipe:1"], capture_output=True, check=True).stdout
    ours = np.concatenate(list(audio._ffmpeg_blocks(path, 3 * 8000, 16_000)))
    np.testing.assert_allclose(ours, np.frombuffer(plain, dtype="<f4"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("decoder", ["ffmpeg", "libsndfile"])
def test_phase_inverted_channels_do_not_cancel_to_silence(tmp_path, caplog, decoder):
    if decoder == "ffmpeg" and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    tone = synth(4.0, freq=440, noise=0.02)
    path = tmp_path / "inverted.flac"
    soundfile.write(str(path), np.stack([tone, -tone], axis=1), 44_100)
    blocks = audio._ffmpeg_blocks if decoder == "ffmpeg" else audio._soundfile_blocks
    with caplog.at_level(logging.INFO, logger="queueemo.audio"):
        mono = np.concatenate(list(blocks(path, 64 * 8000, 16_000)))
    level = float(np.sqrt(np.mean(mono**2)))
    assert level == pytest.approx(np.sqrt(2) * np.sqrt(np.mean(tone**2)), rel=0.02)  # (L − R)/√2 = √2 x
    if decoder == "ffmpeg":
        assert "channels cancel in mono" in caplog.text


def test_downmix_keeps_mono_and_spreads_more_channels_by_their_power():
    tone = synth(0.5, freq=440)
    mono, cancelled = audio.downmix(tone[:, None])
    np.testing.assert_array_equal(mono, tone)
    six, cancelled_six = audio.downmix(np.repeat(tone[:, None], 6, axis=1))
    np.testing.assert_allclose(six, tone * np.sqrt(6), rtol=1e-5)
    wide, cancelled_wide = audio.downmix(np.stack([tone, 0.2 * tone], axis=1))  # an ordinary stereo mix
    np.testing.assert_allclose(wide, 1.2 * tone / np.sqrt(2), rtol=1e-5)
    assert not (cancelled or cancelled_six or cancelled_wide)

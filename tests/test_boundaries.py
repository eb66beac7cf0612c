"""Audible boundaries on generated audio with known silence, fades and levels."""

from __future__ import annotations

import numpy as np
import pytest
from audiofiles import requires_ffmpeg, synth, write_audio

from queueemo import boundaries
from queueemo.audio import WINDOW_SECONDS, decode_windows
from queueemo.boundaries import BoundaryAccumulator, boundary_emotion, tail_rows


def windows_of(signal: np.ndarray, sr: int) -> np.ndarray:
    size = round(WINDOW_SECONDS * sr)
    whole = len(signal) // size
    return signal[: whole * size].reshape(whole, size)


def analyse(signal: np.ndarray, sr: int = 44_100, block: int = 64) -> boundaries.Boundaries:
    acc = BoundaryAccumulator()
    rows = windows_of(signal, sr)
    for start in range(0, len(rows), block):
        acc.add(rows[start : start + block], sr)
    return acc.result()


def silence(seconds: float, sr: int = 44_100) -> np.ndarray:
    return np.zeros(int(seconds * sr), dtype=np.float32)


def fade_out(signal: np.ndarray, db: float = 60.0) -> np.ndarray:
    """Fade linearly in decibels from 0 to -``db``."""
    gain = 10 ** (-np.linspace(0, db, len(signal)) / 20)
    return (signal * gain).astype(np.float32)


@pytest.mark.parametrize("sr", [22_050, 44_100, 48_000])
def test_a_sine_measures_its_bs1770_loudness_at_any_sample_rate(sr):
    # BS.1770: a 0 dBFS 997 Hz sine reads -3.01 LUFS; at amplitude 0.5 it is 6.02 dB lower.
    result = analyse(synth(20, freq=997, sr=sr, loud=0.5), sr)
    assert result.opening_lufs == pytest.approx(-9.03, abs=0.1)
    assert result.level_lufs == pytest.approx(-9.03, abs=0.1)


def test_k_filter_matches_the_standard_at_48_khz():
    (shelf_b, shelf_a), (high_b, high_a) = boundaries.k_filter_coefficients(48_000)
    assert shelf_b == pytest.approx((1.53512485958697, -2.69169618940638, 1.19839281085285), abs=1e-6)
    assert shelf_a == pytest.approx((1.0, -1.69065929318241, 0.73248077421585), abs=1e-6)
    assert high_b == (1.0, -2.0, 1.0)
    assert high_a == pytest.approx((1.0, -1.99004745483398, 0.99007225036621), abs=1e-6)


def test_leading_silence_and_a_fade_out_are_found():
    body = synth(30, freq=330, loud=0.3, pulse_hz=2, noise=0.05)
    signal = np.concatenate([silence(3), body, fade_out(synth(10, freq=330, loud=0.3, noise=0.05)),
                             silence(2)])
    result = analyse(signal)
    assert result.sound_start_s == pytest.approx(3.0, abs=0.5)
    # -6 LU of a 60 dB fade over 10 s is reached 1 s into it, at 34 s
    assert 33.0 <= result.ending_start_s <= 35.5
    assert result.tail.stop * WINDOW_SECONDS == result.ending_start_s
    assert result.tail.stop - result.tail.start == boundaries.TAIL_WINDOWS
    # the ending's loudness is what is heard last: the body's last seconds and the audible fade
    assert result.opening_lufs - 6 < result.ending_lufs < result.opening_lufs - 0.5
    assert result.heard_end.stop * WINDOW_SECONDS < 45  # silence after the fade is not heard


def test_a_track_without_fade_ends_with_its_last_windows():
    signal = synth(40, freq=500, loud=0.3, noise=0.02)
    result = analyse(signal)
    assert result.sound_start_s == 0.0
    assert result.ending_start_s == pytest.approx(40.0, abs=0.5)


def test_a_long_quiet_last_section_is_music_not_an_ending():
    loud = synth(30, freq=500, loud=0.5)
    quiet = synth(45, freq=500, loud=0.05)  # -20 dB for longer than MAX_ENDING_S
    result = analyse(np.concatenate([loud, quiet]))
    assert result.ending_start_s == pytest.approx(75.0, abs=0.5)
    assert result.ending_lufs < result.opening_lufs - 15


def test_brightness_is_the_spectral_centroid():
    signal = np.concatenate([synth(15, freq=400, loud=0.3), synth(15, freq=3000, loud=0.3)])
    result = analyse(signal)
    assert result.opening_brightness == pytest.approx(400, rel=0.05)
    assert result.ending_brightness == pytest.approx(3000, rel=0.05)


def test_brightness_is_what_most_of_the_stretch_sounds_like_not_its_loudest_moments():
    # a quiet 3 kHz bed under loud 150-Hz notes sounding 30 % of the time: 70 % of the frames are the
    # bed alone, so the median frame centroid is the bed's, though most of the power is the bass's
    t = np.arange(20 * 44_100) / 44_100
    bass = 0.8 * np.sin(2 * np.pi * 150 * t) * (np.mod(t, 0.5) < 0.15)
    result = analyse((0.05 * np.sin(2 * np.pi * 3000 * t) + bass).astype(np.float32))
    assert result.opening_brightness == pytest.approx(3000, rel=0.05)


def test_brightness_does_not_depend_on_the_level():
    signal = np.concatenate([synth(10, freq=800, noise=0.02), synth(10, freq=3000, noise=0.05)])
    loud, quiet = analyse(signal), analyse(signal * np.float32(0.01))
    assert quiet.opening_brightness == pytest.approx(loud.opening_brightness, rel=0.01)


def test_blocks_of_any_size_give_the_same_result():
    signal = np.concatenate([silence(1.5), synth(25, freq=700, noise=0.1, seed=3)])
    small, large = analyse(signal, block=7), analyse(signal, block=64)
    assert small.columns() == pytest.approx(large.columns())
    assert (small.opening, small.tail) == (large.opening, large.tail)


def test_silence_only_reports_the_floor():
    result = analyse(silence(10))
    assert result.opening_lufs == boundaries.ABSOLUTE_GATE_LUFS
    assert (result.sound_start_s, result.ending_start_s) == (0.0, 10.0)
    assert BoundaryAccumulator().result().ending_start_s == 0.0


def test_opening_and_closing_emotion_skip_silence_and_fade():
    signal = np.concatenate([silence(4), synth(30, freq=440, loud=0.4),
                             fade_out(synth(10, freq=440, loud=0.4)), silence(3)])
    result = analyse(signal)
    n = len(windows_of(signal, 44_100))
    trajectory = np.zeros((n, 2), dtype=np.float32)
    body = slice(round(result.sound_start_s * 2), round(result.ending_start_s * 2))
    trajectory[body] = (0.8, 0.4)  # the model hears the body; silence and fade read neutral
    summary = boundary_emotion(trajectory, result)
    assert summary["opening_arousal"] == pytest.approx(0.8)
    assert summary["closing_arousal"] == pytest.approx(0.8)
    assert summary["closing_valence"] == pytest.approx(0.4)
    assert tail_rows(n, result.ending_start_s) == result.tail
    assert tail_rows(n, None) == slice(n - 10, n)


@requires_ffmpeg
def test_decoded_file_at_another_rate_keeps_its_boundaries(tmp_path):
    signal = np.concatenate([silence(2), synth(20, freq=600, loud=0.3, noise=0.03)])
    path = write_audio(tmp_path / "a.mp3", signal)
    acc = BoundaryAccumulator()
    for block in decode_windows(path, sample_rate=22_050):
        acc.add(block, 22_050)
    result = acc.result()
    assert result.sound_start_s == pytest.approx(2.0, abs=0.5)
    assert result.ending_start_s == pytest.approx(22.0, abs=0.6)


def clicks(rate: float, seconds: float, *, loud: float = 0.3, decay: float = 0.05, bed: float = 0.0,
           sr: int = 44_100, seed: int = 0) -> np.ndarray:
    """``rate`` decaying tone-and-noise bursts per second (jittered ±10 %), over an optional steady bed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    t = np.arange(int(0.25 * sr)) / sr
    for start in np.arange(0.0, seconds, 1 / rate):
        at = int((start + rng.uniform(-0.1, 0.1) / rate) * sr)
        if 0 <= at < n:
            burst = (0.7 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)
                     + 0.3 * rng.standard_normal(len(t))) * np.exp(-t / decay)
            end = min(n, at + len(t))
            out[at:end] += loud * burst[: end - at]
    if bed:
        out += bed * np.sin(2 * np.pi * 220 * np.arange(n) / sr)
    return out.astype(np.float32)


@pytest.mark.parametrize("sr", [16_000, 44_100])
@pytest.mark.parametrize("rate", [2, 8])
def test_onset_density_counts_known_click_rates(rate, sr):
    result = analyse(clicks(rate, 30, bed=0.05, sr=sr), sr)
    assert result.opening_onsets == pytest.approx(rate, rel=0.15)
    assert result.ending_onsets == pytest.approx(rate, rel=0.15)


def test_onset_density_of_opening_and_ending_differ_as_the_music_does():
    signal = np.concatenate([clicks(2, 20, bed=0.05), clicks(6, 20, bed=0.05, seed=1)])
    result = analyse(signal)
    assert result.opening_onsets == pytest.approx(2, rel=0.15)
    assert result.ending_onsets == pytest.approx(6, rel=0.15)


def test_a_steady_tone_has_no_onsets_and_a_fade_keeps_them():
    assert analyse(synth(20, freq=440, loud=0.3)).opening_onsets == 0.0
    fading = clicks(4, 20, bed=0.05) * (10 ** (-np.linspace(0, 40, 20 * 44_100) / 20)).astype(np.float32)
    result = analyse(fading)
    assert result.ending_onsets == pytest.approx(4, rel=0.15)  # the heard end, fade included


@pytest.mark.parametrize("sr", [16_000, 44_100])
def test_soft_music_has_as_many_onsets_as_loud_music(sr):
    # the threshold is relative to the stretch's own flux (ONSET_RELATIVE) over a floor in dB
    # (ONSET_DELTA_DB), not to an absolute level: the same music 20 dB softer keeps its onsets (only
    # bins below ONSET_FLOOR, -90 dB, are cut)
    signal = clicks(4, 20, bed=0.05, sr=sr, seed=4)
    loud, soft = analyse(signal, sr), analyse(signal * np.float32(0.1), sr)
    assert soft.opening_onsets == pytest.approx(loud.opening_onsets, abs=0.2)
    assert loud.opening_onsets == pytest.approx(4, rel=0.15)


def soft_notes(rate: float, seconds: float, *, sr: int, attack: float = 0.03) -> np.ndarray:
    """``rate`` soft harmonic notes per second of random pitch, ``attack`` seconds each, over faint noise."""
    rng = np.random.default_rng(0)
    n, t = int(seconds * sr), np.arange(int(sr / rate)) / sr
    out = 0.003 * rng.standard_normal(n)
    for start in np.arange(0.0, seconds, 1 / rate):
        f0, at = rng.uniform(200, 600), int(start * sr)
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
        note *= 0.1 * np.minimum(t / attack, 1) * np.exp(-t / 0.5)
        out[at : at + len(t)] += note[: n - at]
    return out.astype(np.float32)


def test_leading_silence_does_not_hide_the_openings_onsets():
    # the rise from digital silence into the sound is the largest flux of the opening; it is left out
    # of the range that scales the threshold (ONSET_RELATIVE), or it would hide the softer notes after it
    notes = soft_notes(3, 20, sr=16_000)
    plain = analyse(notes, 16_000)
    after_silence = analyse(np.concatenate([silence(3, 16_000), notes]), 16_000)
    assert after_silence.sound_start_s == 3.0
    assert after_silence.opening_onsets == pytest.approx(plain.opening_onsets, abs=0.3)
    assert plain.opening_onsets == pytest.approx(3, abs=0.3)


def test_onsets_are_the_same_in_blocks_of_any_size():
    signal = clicks(5, 25, bed=0.05, seed=2)
    small, large = analyse(signal, block=3), analyse(signal, block=64)
    assert (small.opening_onsets, small.ending_onsets) == (large.opening_onsets, large.ending_onsets)

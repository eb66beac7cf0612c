"""The validation comparison prints, beside the score, the figures the model card reports from it."""

from __future__ import annotations

import re

import numpy as np

from queueemo import assets
from queueemo.emotion.inference import predict_features
from queueemo.emotion.inference_v2 import load_clip_v2
from queueemo.emotion.training.compare import compare
from queueemo.emotion.training.datasets import Track
from queueemo.emotion.training.metrics import validation_report


def test_compare_prints_valence_sign_q3_recall_and_valence_r_of_each_model():
    rng = np.random.default_rng(0)
    features = lambda n: rng.normal(0, 1, (n, 204)).astype(np.float16)  # noqa: E731
    curves = [Track(f"p{i}", f"p{i}", features(30), targets=rng.uniform(-1, 1, (30, 2)).astype(np.float32))
              for i in range(3)]
    clips = [Track(f"c{i}", f"a{i}", features(12), quadrant=q)
             for i, q in enumerate(["Q1", "Q2", "Q3", "Q4"] * 2)]
    lines = compare([assets.model_dir(), assets.model_dir()], curves, clips)

    model, version = load_clip_v2()
    pieces = [predict_features(model, t.features) for t in curves]
    means = np.stack([predict_features(model, t.features).mean(0) for t in clips])
    report = validation_report(pieces, [t.targets for t in curves], means, [t.quadrant for t in clips])
    printed = dict(re.findall(r"(\w+) (-?\d\.\d{3})", lines[0].split("not scored:")[1]))
    assert lines[0].startswith(version)
    assert float(printed["sign_v"]) == round(report["4q"]["valence_sign_accuracy"], 3)
    assert float(printed["recall_Q3"]) == round(report["4q"]["recall_Q3"], 3)
    assert abs(float(printed["r_v"]) - report["vgmidi"]["valence"]["r"]) <= 5e-4
    assert "SD 0.000" in lines[-1]  # the same model against itself: no difference in any resample

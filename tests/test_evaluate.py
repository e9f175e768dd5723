"""Evaluation on simulated machines with known answers: the alarm rule, detection of a fault
that doubles one band's energy, latency, "why did it alarm", and the report on disk."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.io.wavfile

from vibrawatch import alarm, evaluate, fitting, simulate
from vibrawatch.features import FeatureConfig
from vibrawatch.recordings import Recording

RATE = 8000
WINDOW, HOP = 1024, 512


def rec(x, name):
    return Recording(name, RATE, x)


def run(threshold, clear, k, n, scores):
    return alarm.alarm_states(scores, threshold, clear, k, n).astype(int).tolist()


def test_alarm_raises_on_k_of_n_and_clears_with_hysteresis():
    # 3 of 5 above 10 raises; clears once none of the last 5 is above 6.
    s = [0, 11, 0, 11, 0, 0, 11, 0, 0, 0, 11, 11, 11, 8, 7, 5, 5, 5, 5, 5, 5, 0]
    assert run(10, 6, 3, 5, s) == \
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    # scores between the clear threshold and the threshold keep the alarm up
    assert run(10, 6, 1, 2, [11, 7, 7, 7, 0, 0]) == [1, 1, 1, 1, 1, 0]
    # isolated spikes never raise a 2-of-3 alarm
    assert sum(run(10, 10, 2, 3, [11, 0, 0] * 10)) == 0
    assert run(10, 10, 1, 1, [11, 0, 11]) == [1, 0, 1]
    states = np.array(run(10, 10, 1, 1, [11, 11, 0, 11, 0]), bool)
    assert alarm.alarm_spans(states) == [(0, 1), (3, 3)] and alarm.raises(states) == 2


@pytest.fixture(scope="module")
def machine():
    normal = simulate.machine(40, RATE, 2, seed=21)
    model, _ = fitting.fit([rec(normal, "normal")], fitting.FitSettings(window=WINDOW, hop=HOP))
    return model


def top_band(model):
    hz = model.sample_rate / model.window
    return model.edges[-2] * hz, model.edges[-1] * hz


def test_a_fault_that_doubles_one_band_is_caught_and_explained(machine):
    model = machine
    lo, hi = top_band(model)
    later = simulate.machine(20, RATE, 2, seed=22)
    faulty = simulate.double_band(later, RATE, lo, hi, seed=23)
    ev = evaluate.evaluate(model, [rec(later, "normal2")], [rec(faulty, "doubled")])
    normal, fault = ev.results
    assert np.mean(fault.scores > model.threshold) >= 0.99
    assert np.mean(normal.scores > model.threshold) <= 0.01 and normal.raises == 0
    # From the start of the recording, the alarm needs k windows (after those a zoom block
    # skips: 7.8 Hz bins at 8 kHz get one, R = 8, N_z = 256): known latency.
    first = FeatureConfig.from_model(model).first_window
    assert (model.zoom_r, first) == (8, 2)
    assert fault.latency() == pytest.approx(((first + model.alarm_k - 1) * HOP + WINDOW) / RATE)
    assert ev.window_metrics()["roc_auc"] > 0.99
    # Why: the doubled band, on both channels, carries most of every top alarm's score.
    name = FeatureConfig.from_model(model).feature_names()[model.bands - 1].split(":")[1]
    for _, _, feats in fault.top:
        assert {f.split(":")[1] for f, _ in feats[:2]} == {name}
        assert sum(share for f, share in feats if name in f) > 0.5


def test_latency_from_a_labelled_onset(machine):
    model = machine
    x = simulate.machine(10, RATE, 2, seed=24)
    bearing = simulate.machine(10, RATE, 2, seed=25, defect_hz=107.0)
    onset = 4.0
    x[int(onset * RATE):] = bearing[int(onset * RATE):]
    ev = evaluate.evaluate(model, [], [rec(x, "onset")], onset=onset)
    (r,) = ev.results
    assert r.latency() is not None and 0 < r.latency() <= 4 * WINDOW / RATE
    assert not r.states[r.times < onset].any()  # no alarm before the fault


def test_contributions_sum_to_the_score(machine):
    model = machine
    cfg = FeatureConfig.from_model(model)
    from vibrawatch import features as F

    feats = F.extract(simulate.machine(2, RATE, 2, seed=26, defect_hz=90.0), cfg)
    terms = evaluate.contributions(feats, model)
    scores = model.mahalanobis(feats)
    np.testing.assert_allclose(terms.sum(axis=1), scores, rtol=1e-9)


def test_evaluate_command_writes_a_report(machine, tmp_path):
    model_path = tmp_path / "m.vwm"
    machine.write(model_path)
    normal = tmp_path / "normal.wav"
    scipy.io.wavfile.write(normal, RATE, simulate.machine(10, RATE, 2, seed=27))
    fault = tmp_path / "bearing.wav"
    scipy.io.wavfile.write(fault, RATE, simulate.machine(5, RATE, 2, seed=28, defect_hz=107.0))
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "vibrawatch", "evaluate", str(model_path),
                           "--normal", str(normal), "--anomalous", str(fault), "--report",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ROC-AUC" in proc.stdout and "alarm after" in proc.stdout
    md = (out / "report.md").read_text()
    for png in ("timeline.png", "histogram.png", "roc.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "(%s)" % png in md
    assert "Why did it alarm" in md and "bearing.wav, window" in md
    # a recording at another rate is refused cleanly
    other = tmp_path / "other.wav"
    scipy.io.wavfile.write(other, 16000, simulate.machine(1, 16000, 2, seed=29))
    proc = subprocess.run([sys.executable, "-m", "vibrawatch", "evaluate", str(model_path),
                           "--anomalous", str(other)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "fit a model at this rate" in proc.stderr

"""Many short recordings (condition-monitoring snapshots): the whole-recording split, windows
that never span two recordings, the PRONOSTIA loader, and run-to-failure evaluation."""

import numpy as np
import pytest

from vibrawatch import datasets, fitting, recordings, simulate
from vibrawatch import features as F
from vibrawatch.recordings import Recording

RATE = 25600.0
BURST = 2560  # 0.1 s, as PRONOSTIA records


def snapshots(count, seed=0, **machine):
    """``count`` 0.1-s bursts of one healthy machine, named snap_000 ... in time order."""
    return [Recording("snap_%03d" % i, RATE,
                      simulate.machine(BURST / RATE, RATE, 2, seed=seed + i, **machine))
            for i in range(count)]


def test_fit_on_100_snapshots_with_defaults_holds_out_the_last_whole_ones():
    recs = snapshots(100)
    shuffled = [recs[i] for i in np.random.default_rng(0).permutation(100)]
    model, report = fitting.fit(shuffled, fitting.FitSettings())
    assert "whole recordings" in report.split_note
    assert "snap_075 ... snap_099" in report.split_note
    cfg = F.FeatureConfig.from_model(model)
    per_rec = cfg.n_windows(BURST)
    assert per_rec == 4  # N = 1024, hop 512
    # The last 25 by name are held out whole, and their windows set the threshold.
    held = np.concatenate([F.extract(r.samples, cfg) for r in recs[75:]])
    np.testing.assert_allclose(report.holdout_scores, model.mahalanobis(held), rtol=1e-6)
    assert (report.n_train, report.n_holdout) == (75 * per_rec, 25 * per_rec)
    assert report.cv_scores is not None and len(report.cv_scores) == 75
    assert model.threshold > 0 and model.n_train == 75 * per_rec


def test_a_window_never_spans_two_recordings():
    recs = snapshots(40)
    model, report = fitting.fit(recs, fitting.FitSettings(bands=4))
    # Joined into one recording, 40 x 2560 samples would give 199 windows; apart, 4 each.
    assert report.n_train + report.n_holdout == 40 * 4
    # The training windows are exactly those cut from each burst on its own.
    joined = np.concatenate([r.samples for r in recs])
    cfg = F.FeatureConfig.from_model(model)
    assert cfg.n_windows(len(joined)) == 199
    train_windows = np.concatenate([F.extract(r.samples, cfg) for r in recs[:30]])
    np.testing.assert_allclose(np.sort(report.train_scores),
                               np.sort(model.mahalanobis(train_windows)), rtol=1e-6)


def test_long_recordings_keep_their_own_tails():
    recs = [Recording("long_%d" % i, 8000.0, simulate.machine(20, 8000, 1, seed=i))
            for i in range(2)]
    _, report = fitting.fit(recs, fitting.FitSettings(bands=8))
    assert "each recording held out" in report.split_note


def test_one_short_recording_is_refused_with_a_way_out():
    with pytest.raises(fitting.FitError, match="more normal data"):
        fitting.fit(snapshots(1), fitting.FitSettings(bands=2))


def write_pronostia(path, rows, start=(8, 47, 5), sep=",", seed=0):
    """A tiny PRONOSTIA acc_*.csv: clock columns (microseconds in both spellings) and two
    accelerations."""
    rng = np.random.default_rng(seed)
    h, m, s = start
    lines = []
    for i in range(rows):
        us = 196910.0 + 39.0 * i
        us_text = "%.5g" % us if i % 2 else "%d" % us  # '1.9691e+05' as the real files have
        lines.append(sep.join([str(h), str(m), str(s), us_text, "%.3f" % rng.normal(),
                               "%.3f" % rng.normal()]))
    path.write_text("\n".join(lines) + "\n")


def test_pronostia_snapshot_loader(tmp_path):
    write_pronostia(tmp_path / "acc_00001.csv", 50, seed=1)
    rec = recordings.load(tmp_path / "acc_00001.csv")
    assert (rec.rate, rec.channels, rec.frames) == (25600.0, 2, 50)
    text = (tmp_path / "acc_00001.csv").read_text().splitlines()
    assert text[1].split(",")[3] == "1.9695e+05"
    np.testing.assert_allclose(rec.samples[3], [float(v) for v in text[3].split(",")[4:]])
    assert rec.info["index"] == 1 and rec.info["channels"] == ["horizontal", "vertical"]
    assert rec.info["start_s"] == pytest.approx(8 * 3600 + 47 * 60 + 5 + 0.19691)


def test_pronostia_folder_in_time_order_across_midnight(tmp_path):
    # Files 2 and 10 (10 after 9, not after 1), one with semicolons, the last past midnight.
    write_pronostia(tmp_path / "acc_00010.csv", 40, start=(0, 0, 3), seed=3)
    write_pronostia(tmp_path / "acc_00002.csv", 40, start=(23, 59, 53), sep=";", seed=2)
    write_pronostia(tmp_path / "acc_00001.csv", 40, start=(23, 59, 43), seed=1)
    (tmp_path / "notes.txt").write_text("not a snapshot")
    recs = datasets.load_snapshot_folder(tmp_path)
    assert [r.info["index"] for r in recs] == [1, 2, 10]
    np.testing.assert_allclose(recordings.snapshot_times(recs), [0, 10, 20])
    assert recordings.snapshot_interval(recs) == pytest.approx(10.0)
    assert recs[1].channels == 2


def test_pronostia_bad_files(tmp_path):
    (tmp_path / "acc_00001.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(datasets.DatasetError, match="3 columns; PRONOSTIA acc_.* have 6"):
        recordings.load(tmp_path / "acc_00001.csv")
    (tmp_path / "acc_00002.csv").write_text("1,2,3,4,x,6\n")
    with pytest.raises(datasets.DatasetError, match="not a PRONOSTIA snapshot"):
        recordings.load(tmp_path / "acc_00002.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(datasets.DatasetError, match="no snapshots"):
        datasets.load_snapshot_folder(empty)


def simulated_run(minutes=120, every=20.0, onset_min=100.0, rate=8000.0, frames=2048,
                  warm_up=0.3, drift=0.15):
    """Snapshots of a machine from new to failed: a warm-up (shaft vibration ``warm_up`` up at
    the start, decaying over 10 min), a slow healthy drift (``drift`` up over the run, as
    temperature does), and from ``onset_min`` a bearing defect whose impacts grow until the
    end."""
    recs = []
    for i in range(int(minutes * 60 / every)):
        t = i * every / 60.0
        gain = 1.0 + warm_up * np.exp(-t / 3.0) + drift * t / minutes
        defect = None if t < onset_min else dict(defect_hz=107.0, defect_g=0.3 + 0.1 * (
            t - onset_min))
        x = simulate.machine(frames / rate, rate, 2, harmonics=(gain, 0.4 * gain, 0.2 * gain),
                             seed=1000 + i, **(defect or {}))
        recs.append(Recording("acc_%05d.csv" % (i + 1), rate, x, 1.0,
                              {"start_s": 8 * 3600.0 + i * every}))
    return recs


def test_run_to_failure_warns_after_the_onset_and_not_on_the_drift():
    from vibrawatch.runtofailure import run_to_failure

    run = run_to_failure(simulated_run())
    vw, rms, kurt = run.detectors[:3]
    assert run.n_train == 180  # the first 60 min, a snapshot every 20 s
    assert vw.cleared() == (0, 0)  # warm-up and drift raised nothing
    first = vw.persistent()
    assert first is not None and 300 <= first <= 305  # onset at snapshot 300
    assert vw.lead_seconds == pytest.approx((359 - first) * 20.0)
    assert all("min before the end" in line or "NO alarm" in line for line in run.lines()[-3:])


def test_a_drift_beyond_anything_in_the_training_hour_does_alarm():
    """The documented limit: with no warm-up, the same drift keeps going after the training
    hour further than anything the hour showed, and raises the alarm before the fault."""
    from vibrawatch.runtofailure import run_to_failure

    vw = run_to_failure(simulated_run(warm_up=0.0)).detectors[0]
    first = vw.persistent()
    assert first is not None and first < 300  # raised before the onset at snapshot 300


def test_run_to_failure_command_on_a_folder_of_pronostia_files(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "Bearing_sim"
    folder.mkdir()
    for rec in simulated_run(minutes=40, onset_min=30.0):
        clock = rec.info["start_s"]
        h, m, s = int(clock // 3600), int(clock // 60 % 60), int(clock % 60)
        rows = ["%d,%d,%d,%d,%.4f,%.4f" % (h, m, s, 100 * j, a, b)
                for j, (a, b) in enumerate(rec.samples)]
        (folder / rec.name).write_text("\n".join(rows) + "\n")
    out = subprocess.run([sys.executable, "-m", "vibrawatch", "evaluate", "--run-to-failure",
                          str(folder), "--train-minutes", "20", "--report",
                          str(tmp_path / "rep")], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert "120 snapshots over 39.7 min; fitted on the first 60 (20 min)" in lines[0]
    assert any("split: whole recordings" in line for line in lines)
    vw = next(line for line in lines if line.startswith("vibrawatch "))
    lead = float(vw.split("warned ")[1].split(" min")[0])
    assert 8.0 <= lead <= 9.7 and "0 alarms raised and cleared" in vw  # onset 9.7 min before
    assert (tmp_path / "rep" / "run-to-failure.png").stat().st_size > 10000
    bad = subprocess.run([sys.executable, "-m", "vibrawatch", "evaluate", "--run-to-failure",
                          str(folder), "--train-minutes", "50"], capture_output=True, text=True)
    assert bad.returncode == 2 and "change --train-minutes" in bad.stderr


def test_score_and_evaluate_report_per_recording(tmp_path):
    import subprocess
    import sys

    import scipy.io.wavfile

    model, _ = fitting.fit(snapshots(60), fitting.FitSettings(bands=8))
    model.write(tmp_path / "m.vwm")
    paths = {"normal": [], "faulty": []}
    for i in range(6):
        for kind, extra in (("normal", {}), ("faulty", {"defect_hz": 107.0, "defect_g": 2.0})):
            path = tmp_path / ("%s_%d.wav" % (kind, i))
            x = simulate.machine(BURST / RATE, RATE, 2, seed=500 + i, **extra)
            scipy.io.wavfile.write(path, int(RATE), x)
            paths[kind].append(str(path))

    def vibrawatch(*args):
        return subprocess.run([sys.executable, "-m", "vibrawatch", *args], capture_output=True,
                              text=True, check=True).stdout

    out = vibrawatch("score", str(tmp_path / "m.vwm"), *paths["normal"], *paths["faulty"])
    assert "median" in out.splitlines()[0]
    assert "per recording (median window score), in the order given: 6 of 12 above" in out
    out = vibrawatch("evaluate", str(tmp_path / "m.vwm"), "--normal", *paths["normal"],
                     "--anomalous", *paths["faulty"])
    assert "normal, per recording: 6 recordings, 0 (0.0%) with a median" in out
    assert "faulty, per recording: 6 recordings, 6 (100.0%) with a median" in out

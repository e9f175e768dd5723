"""Detection benchmark on the public data in ../shared/data, and a throughput benchmark.

A benchmark, not a test: it prints tables (README "Benchmarks" holds a copy) and asserts
nothing. Per data set, vibrawatch is fitted with its default settings on the first 75 % in time
of every normal recording (fit's own cross-validation and held-out slice come out of that part);
the last 25 % of each normal recording is never shown to the fit and measures false alarms;
every faulty recording is scored whole. The only per-data-set settings are what a user knows:
sample rate and channels (from the files). The same features go to scikit-learn's
EllipticEnvelope, IsolationForest, OneClassSVM and LocalOutlierFactor (novelty), each at its own
default threshold, and to the classic condition-monitoring baseline (per-window mean absolute
value of each channel, MinMax scaling, PCA(2), Mahalanobis distance, threshold 3 x the mean
training distance). Thresholds are chosen by each tool, never by hand.

The ADI rig runs at 1800 and 600 rpm, each under two loads (0 and 11 lb): one model per speed,
fitted on both loads. Lighter imbalance than the rig's heavy level is not in the shared data, so
it is simulated (and labelled as such): the held-out part of every normal recording plus a sine
at the nominal shaft frequency (1x: 10 Hz at 600 rpm, 30 Hz at 1800 rpm) on every axis, of
decreasing amplitude, scored by the default model (a zoom block at 20 kHz) and by one fitted with
--zoom off; the table gives the recall per amplitude and where it falls below 99 %.

Run to failure (PRONOSTIA Bearing1_2, when ../shared/data/pronostia-bearing is there):
`vibrawatch evaluate --run-to-failure` with its defaults (fit on the first hour's snapshots),
against the RMS and kurtosis baselines (mean + 3 sd of the same hour, the same 3-of-5 rule over
snapshots): lead time of the alarm that lasts until the end, and alarms raised and cleared
before it (runtofailure.py).

    python tools/bench_detection.py [--data ../shared/data] [--no-throughput] [--no-hour]
                                    [--no-board | --only-board] [--no-run-to-failure]

The rows "learned on the board" run vwatch.learn itself (device/vwatch, from source) on
MicroPython's unix port: see bench_board_learned.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the throughput claim says
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from vibrawatch import alarm, fitting, recordings  # noqa: E402
from vibrawatch import features as F  # noqa: E402
from vibrawatch.modelfile import Mode  # noqa: E402
from vibrawatch.recordings import Recording  # noqa: E402

FIT_PART = 0.75  # first part in time of each normal recording given to the fit
BAR_RECALL, BAR_NORMAL = 0.99, 0.01


def labelled(folder, is_normal):
    rows = list(csv.DictReader(open(folder / "labels.csv")))
    normal = [folder / r["file"] for r in rows if is_normal(r)]
    faulty = [folder / r["file"] for r in rows if not is_normal(r)]
    return normal, faulty


def datasets(data):
    adi = data / "adi-cbm-motor"
    cwru = data / "cwru-bearing"
    ims = data / "ims-bearing"
    out = []
    if adi.is_dir():
        for rpm in ("1800", "0600"):
            n, f = labelled(adi, lambda r: r["label"] == "normal")
            n = [p for p in n if p.name.startswith(rpm)]
            f = [p for p in f if p.name.startswith(rpm)]
            out.append(("ADI CbM motor (ADXL356, 3 axes, 20 kHz, %d rpm, one model for 0 and "
                        "11 lb)" % int(rpm), n, f, None))
    if cwru.is_dir():
        n, f = labelled(cwru, lambda r: r["label"] == "normal")
        out.append(("CWRU bearing (DE + FE, 48 kHz, 1796 rpm, 0 hp)", n, f, None))
    if ims.is_dir():
        n, _ = labelled(ims, lambda r: True)
        n = sorted(n)
        out.append(("IMS test 1 (8 channels, 20 kHz), each file split in time", n, [], None))
        out.append(("IMS test 1, fit on the first 2 files, held out: the 2 later ones", n, [],
                    2))
    return out


def cut(rec, start, stop):
    a, b = int(rec.frames * start), int(rec.frames * stop)
    return Recording(rec.name, rec.rate, np.asarray(rec.samples[a:b]), rec.scale)


def short(path):
    """A fault's short name: ADI 'HImL', 'MA', 'HIR', 'HOR'; CWRU 'B007', 'OR007@6' ..."""
    name = Path(path).name
    if name.endswith(".Wfm.csv"):
        bearing, shaft, load, align = name.split("_")[1:5]
        parts = [p for p, ok in ((bearing, "GoB"), (shaft, "GS"), (load, "BaLo"), (align, "WA"))
                 if p != ok]
        return "+".join(parts) or "normal"
    if "_Drive_End_" in name or "_Fan_End_" in name:
        return name.split("_End_")[1].split("_")[0]
    return name[:14]


class Classic:
    """Per-window mean absolute value per channel -> MinMax -> PCA(2) -> Mahalanobis;
    threshold 3 x the mean training distance."""

    def fit(self, mav):
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import MinMaxScaler

        self.scaler = MinMaxScaler().fit(mav)
        self.pca = PCA(n_components=min(2, mav.shape[1])).fit(self.scaler.transform(mav))
        z = self.pca.transform(self.scaler.transform(mav))
        self.mu = z.mean(0)
        self.prec = np.linalg.pinv(np.atleast_2d(np.cov(z.T)))
        self.threshold = 3.0 * self.score(mav).mean()
        return self

    def score(self, mav):
        z = self.pca.transform(self.scaler.transform(mav)) - self.mu
        return np.sqrt(np.einsum("ij,jk,ik->i", z, self.prec, z))


def mav_features(rec, cfg):
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(rec.samples, np.float32) * np.float32(rec.scale)
    first = cfg.first_window  # the windows vibrawatch scores (a zoom block skips the first)
    w = sliding_window_view(x, cfg.window, axis=0)[:: cfg.hop][first : first +
                                                                cfg.n_windows(rec.frames)]
    return np.abs(w - w.mean(axis=-1, keepdims=True)).mean(axis=-1)


def sklearn_models():
    from sklearn.covariance import EllipticEnvelope
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    return {
        "EllipticEnvelope": lambda: EllipticEnvelope(random_state=0),
        "IsolationForest": lambda: IsolationForest(random_state=0),
        "OneClassSVM": lambda: make_pipeline(StandardScaler(), OneClassSVM()),
        "LOF (novelty)": lambda: make_pipeline(StandardScaler(),
                                               LocalOutlierFactor(novelty=True)),
    }


def auc(normal, fault):
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.zeros(len(normal)), np.ones(len(fault))]
    return roc_auc_score(y, np.r_[normal, fault])


def alarms(flag_runs, k, n):
    return sum(alarm.raises(alarm.alarm_states(f.astype(float), 0.5, 0.5, k, n))
               for f in flag_runs)


def load_split(normal_paths, faulty_paths, first_files):
    """(fit part, held-out normal part, faulty recordings): the first ``first_files`` normal
    recordings against the rest, or (0) each recording's first FIT_PART against its rest."""
    normals = [recordings.load(p) for p in normal_paths]
    faults = [recordings.load(p) for p in faulty_paths]
    if first_files:
        return normals[:first_files], normals[first_files:], faults
    return ([cut(r, 0, FIT_PART) for r in normals], [cut(r, FIT_PART, 1.0) for r in normals],
            faults)


def bench_dataset(title, normal_paths, faulty_paths, first_files):
    fit_recs, held_recs, faults = load_split(normal_paths, faulty_paths, first_files)
    t0 = time.perf_counter()
    model, report = fitting.fit(fit_recs, fitting.FitSettings())
    fit_s = time.perf_counter() - t0
    cfg = F.FeatureConfig.from_model(model)
    feats = lambda r: F.extract(r.samples, cfg, r.scale)  # noqa: E731
    train = np.concatenate([feats(r) for r in fit_recs]).astype(np.float64)
    held = [feats(r).astype(np.float64) for r in held_recs]
    faulty = [feats(r).astype(np.float64) for r in faults]

    rows = []
    rows.append(("vibrawatch (defaults)", model.mahalanobis, model.threshold))
    for name, make in sklearn_models().items():
        est = make().fit(train)
        # scikit-learn: higher decision_function = more normal; predict() = -1 for outliers
        rows.append((name, lambda X, est=est: -est.decision_function(X), 0.0))
    classic = Classic().fit(np.concatenate([mav_features(r, cfg) for r in fit_recs]))

    print("\n### %s" % title)
    print("fit: %d windows of %d features (%s), %.1f s; held-out normal: %d windows (%.2f s); "
          "threshold %.4g, alarm %d of %d" % (
              report.n_train + report.n_holdout, cfg.n_features,
              "%d bands%s x %d channels" % (cfg.bands, " + %d zoom bands (R = %d, N_z = %d)" % (
                  cfg.zoom_bands, cfg.zoom, cfg.zoom_window) if cfg.zoom else "",
                  cfg.channels), fit_s,
              sum(len(h) for h in held), sum(r.seconds for r in held_recs), model.threshold,
              model.alarm_k, model.alarm_n))
    if cfg.zoom:
        print("zoom bands %s: %s" % (" ".join(cfg.zoom_band_names()), report.zoom_rule))
    print(report.modes_note.split("; give")[0].split("; the score")[0])
    heads = ["method"] + ["AUC %s" % short(p) for p in faulty_paths] + \
        ["recall %s" % short(p) for p in faulty_paths] + ["normal above", "alarms"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    verdict = None
    results = []
    for name, score, thr in rows:
        results.append((name, [score(h) for h in held], [score(f) for f in faulty], thr))
    results.append(("classic MAV+PCA(2)", [classic.score(mav_features(r, cfg)) for r in held_recs],
                    [classic.score(mav_features(r, cfg)) for r in faults], classic.threshold))
    if cfg.zoom:  # the same defaults without the zoom block, for comparison
        off, _ = fitting.fit(fit_recs, fitting.FitSettings(zoom="off"))
        cfg_off = F.FeatureConfig.from_model(off)
        results.insert(1, ("vibrawatch (--zoom off)",
                           [off.mahalanobis(F.extract(r.samples, cfg_off, r.scale))
                            for r in held_recs],
                           [off.mahalanobis(F.extract(r.samples, cfg_off, r.scale))
                            for r in faults], off.threshold))
    for name, h_scores, f_scores, thr in results:
        h_all = np.concatenate(h_scores)
        aucs = ["%.4f" % auc(h_all, f) for f in f_scores]
        recalls = ["%.1f%%" % (100 * np.mean(f > thr)) for f in f_scores]
        above = np.mean(h_all > thr)
        n_alarms = alarms([h > thr for h in h_scores], model.alarm_k, model.alarm_n)
        print("| " + " | ".join([name] + aucs + recalls + ["%.1f%%" % (100 * above),
                                                           str(n_alarms)]) + " |")
        if verdict is None:
            ok_recall = all(np.mean(f > thr) >= BAR_RECALL for f in f_scores)
            verdict = (ok_recall, above <= BAR_NORMAL, n_alarms == 0)
    ok_recall, ok_normal, ok_alarm = verdict
    print("bar for the defaults: recall >= 99%% on every fault: %s; held-out normal above <= 1%%: "
          "%s; no alarm on held-out normal: %s" % (
              ("yes" if ok_recall else "NO") if faulty_paths else "n/a (no faulty data)",
              "yes" if ok_normal else "NO", "yes" if ok_alarm else "NO"))
    for line in report.calibration.lines()[2:3] + report.calibration.notes:
        print("  " + line)


AMPLITUDES = [0.5 / 2 ** i for i in range(10)]  # of the simulated 1x sine, in g


def with_sine(rec, hz, amplitude):
    """A copy of ``rec`` plus amplitude * sin(2 pi hz t) on every channel (a simulated
    imbalance: a force at the shaft frequency), in the recording's units."""
    x = np.asarray(rec.samples, np.float64) * rec.scale
    t = np.arange(len(x))[:, None] / rec.rate
    x = x + amplitude * np.sin(2 * np.pi * hz * t + np.arange(x.shape[1]))
    return Recording(rec.name, rec.rate, x.astype(np.float32), 1.0)


def bench_simulated(title, normal_paths, shaft_hz):
    """Recall on held-out normal data plus a 1x sine of decreasing amplitude, with the default
    model and with one fitted --zoom off."""
    normals = [recordings.load(p) for p in normal_paths]
    fit_recs = [cut(r, 0, FIT_PART) for r in normals]
    held_recs = [cut(r, FIT_PART, 1.0) for r in normals]
    models, notes = [], []
    for name, settings in (("defaults", fitting.FitSettings()),
                           ("--zoom off", fitting.FitSettings(zoom="off"))):
        model, report = fitting.fit(fit_recs, settings)
        models.append((name, model, F.FeatureConfig.from_model(model)))
        cfg = models[-1][2]
        notes.append("%s: %d features%s, threshold %.4g; %s" % (
            name, cfg.n_features, ", zoom bands %s (%s)" % (" ".join(cfg.zoom_band_names()),
                                                             report.zoom_rule)
            if cfg.zoom else "", model.threshold,
            report.modes_note.split("; give")[0].split("; the score")[0]))
    rms = np.mean([np.sqrt(np.mean((np.asarray(r.samples, float) * r.scale - np.mean(
        np.asarray(r.samples, float) * r.scale, axis=0)) ** 2)) for r in held_recs])
    print("\n### %s" % title)
    print("SIMULATION: held-out normal (last 25 %% of each recording, %d of them) plus a %g Hz "
          "sine on every axis; the normal signal's RMS is %.3g g per axis" % (
              len(held_recs), shaft_hz, rms))
    for note in notes:
        print(note)
    heads = ["1x amplitude (g)", "amplitude / RMS"] + ["recall, %s%s" % (n, " (zoom R = %d)" % c.zoom
                                                                         if c.zoom else "")
                                                       for n, _, c in models]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    below = [None] * len(models)
    for a in AMPLITUDES:
        cells = ["%.4g" % a, "%.3g" % (a / rms)]
        for j, (_, model, cfg) in enumerate(models):
            scores = np.concatenate([model.mahalanobis(F.extract(
                s.samples, cfg, s.scale)) for s in (with_sine(r, shaft_hz, a)
                                                    for r in held_recs)])
            recall = float(np.mean(scores > model.threshold))
            cells.append("%.1f%% of %d" % (100 * recall, len(scores)))
            if recall < BAR_RECALL and below[j] is None:
                below[j] = a
        print("| " + " | ".join(cells) + " |")
    for (name, _, _), a in zip(models, below):
        print("%s: recall falls below 99%% at %s" % (
            name, "%.4g g (%.3g x RMS)" % (a, a / rms) if a is not None else
            "none of these amplitudes"))


def _board_interpreter():
    """(MicroPython executable, backend): the first of $VWATCH_ULAB_MICROPYTHON with the ulab
    backend, else the stock unix port (the venv's `micropython`) with the pure backend."""
    import shutil

    ulab = [p for p in os.environ.get("VWATCH_ULAB_MICROPYTHON", "").split(os.pathsep) if p]
    if ulab:
        return ulab[0], "ulab"
    here = Path(sys.executable).parent / "micropython"
    return (str(here) if here.exists() else shutil.which("micropython")), "pure"


def learn_on_unix_port(fit_recs, settings_model, folder):
    """vwatch.learn, run by MicroPython's unix port on the fit part played as one stream:
    every recording's first 75 %, then every recording's last 25 %, so that the board's
    phase 2 (its held-out windows) sees every condition, as the host's held-out slices do.
    Returns (model or None, the board's lines, interpreter, backend)."""
    import scipy.io.wavfile

    from vibrawatch import modelfile

    exe, backend = _board_interpreter()
    first = [np.asarray(r.samples[: int(r.frames * 0.75)], np.float64) * r.scale
             for r in fit_recs]
    last = [np.asarray(r.samples[int(r.frames * 0.75) :], np.float64) * r.scale
            for r in fit_recs]
    stream = np.concatenate(first + last).astype(np.float32)
    wav = Path(folder) / "stream.wav"
    scipy.io.wavfile.write(wav, int(round(fit_recs[0].rate)), stream)
    tpl = Path(folder) / "template.vwm"
    settings_model.write(tpl)  # its settings; a model, so the budget is the host default
    out = Path(folder) / "learned.vwm"
    seconds = len(stream) / fit_recs[0].rate
    code = ("import vwatch\nfrom vwatch.replay import Replay\n"
            "vwatch.learn(%r, model=%r, sensor=Replay(%r, speed=0), backend=%r, template=%r, "
            "start=False)" % (seconds, str(out), str(wav), backend, str(tpl)))
    env = dict(os.environ, MICROPYPATH=str(ROOT / "device"))
    proc = subprocess.run([exe, "-X", "heapsize=4M", "-c", code], capture_output=True,
                          text=True, env=env)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    model = modelfile.read(out) if out.exists() else None
    return model, lines, exe, backend


def bench_board_learned(title, normal_paths, faulty_paths, first_files):
    """The row 'vibrawatch (learned on the board)': the host defaults' settings as template,
    learned by the board's own code on the same fit part, scored on the same held-out normal
    and faulty data against the same bar."""
    fit_recs, held_recs, faults = load_split(normal_paths, faulty_paths, first_files)
    # vwatch.learn takes no zoom block and one component (README "Learning on the board"):
    # the template is the host defaults without them
    host, _ = fitting.fit(fit_recs, fitting.FitSettings(zoom="off", modes=1))
    print("\n### %s: learned on the board" % title)
    with tempfile.TemporaryDirectory() as tmp:
        model, lines, exe, backend = learn_on_unix_port(fit_recs, host, tmp)
    print("vwatch.learn on %s (backend %s), the host defaults' settings (%d bands x %d "
          "channels, no zoom block, one component) as template" % (Path(exe).name, backend, host.bands, host.channels))
    for line in lines:
        if line.startswith(("vw1 learn fit", "vw1 learn threshold", "vw1 learn refused",
                            "ValueError", "vw1 learn error")):
            print("  " + line)
    if model is None:
        print("no board-learned model: see the board's line above")
        return
    cfg = F.FeatureConfig.from_model(model)
    held = [model.mahalanobis(F.extract(r.samples, cfg, r.scale)) for r in held_recs]
    faulty = [model.mahalanobis(F.extract(r.samples, cfg, r.scale)) for r in faults]
    heads = ["method"] + ["AUC %s" % short(p) for p in faulty_paths] + \
        ["recall %s" % short(p) for p in faulty_paths] + ["normal above", "alarms"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    h_all = np.concatenate(held)
    thr = model.threshold
    above = np.mean(h_all > thr)
    n_alarms = alarms([h > thr for h in held], model.alarm_k, model.alarm_n)
    print("| " + " | ".join(["vibrawatch (learned on the board)"]
                            + ["%.4f" % auc(h_all, f) for f in faulty]
                            + ["%.1f%%" % (100 * np.mean(f > thr)) for f in faulty]
                            + ["%.1f%%" % (100 * above), str(n_alarms)]) + " |")
    ok_recall = all(np.mean(f > thr) >= BAR_RECALL for f in faulty)
    print("bar for the defaults: recall >= 99%% on every fault: %s; held-out normal above <= 1%%: "
          "%s; no alarm on held-out normal: %s (threshold %.4g; host defaults %.4g)" % (
              ("yes" if ok_recall else "NO") if faulty_paths else "n/a (no faulty data)",
              "yes" if above <= BAR_NORMAL else "NO", "yes" if n_alarms == 0 else "NO",
              thr, host.threshold))


def bench_run_to_failure(data):
    """The PRONOSTIA run-to-failure table: lead time and alarms cleared before it."""
    from vibrawatch import datasets
    from vibrawatch.runtofailure import run_to_failure

    folder = data / "pronostia-bearing" / "Bearing1_2"
    if not folder.is_dir():
        print("\n(no %s: run-to-failure table skipped)" % folder)
        return
    recs = datasets.load_snapshot_folder(folder)
    t0 = time.perf_counter()
    run = run_to_failure(recs, name=folder.name)
    wall = time.perf_counter() - t0
    print("\n### PRONOSTIA %s run to failure (2 axes, 25.6 kHz, 0.1 s every 10 s), fitted on "
          "the first %.0f min" % (folder.name, run.train_minutes))
    print("%d snapshots over %.1f min; %d in the training part; persistence %d of the last %d "
          "snapshots; %.0f s to fit and score" % (len(recs), run.times[-1] / 60.0, run.n_train,
                                                  run.alarm_k, run.alarm_n, wall))
    for line in run.fit_lines[1:]:
        print(line)
    print("| method | warned before the end | raised at | alarms raised and cleared before it "
          "| of them in the training part |")
    print("|---|---|---|---|---|")
    names = {"vibrawatch": "vibrawatch (defaults; median of a snapshot's windows)",
             "RMS": "RMS, mean + 3 sd", "kurtosis": "kurtosis, mean + 3 sd"}
    for d in run.detectors:
        lead = d.lead_seconds
        cleared, in_train = d.cleared()
        print("| %s | %s | %s | %d | %d |" % (
            names.get(d.name, d.name), "%.1f min" % (lead / 60.0) if lead is not None
            else "no lasting alarm", "%.1f min" % ((d.end - lead) / 60.0) if lead is not None
            else "-", cleared, in_train))
    vw, rms, kurt = run.detectors[:3]
    # Healthy drift: after the training part, up to the n snapshots that raised the lasting
    # alarm (those may already be the fault's).
    first = vw.persistent() if vw.persistent() is not None else len(vw.values) + run.alarm_n - 1
    healthy = vw.values[run.n_train : first - run.alarm_n + 1]
    if healthy.size:
        print("vibrawatch snapshot scores from the end of the training part to the %d snapshots "
              "that raised its lasting alarm (the drift of a healthy machine): median %.1f, "
              "99%% %.1f, max %.1f; threshold %.1f" % (run.alarm_n, 
                  np.median(healthy), np.quantile(healthy, 0.99), healthy.max(), vw.threshold))
    leads = [d.lead_seconds if d.lead_seconds is not None else -1.0 for d in (rms, kurt)]
    earlier = vw.lead_seconds is not None and vw.lead_seconds > max(leads)
    print("goal: earlier than both baselines: %s; no alarm raised and cleared before it: %s"
          % ("yes" if earlier else "NO", "yes" if vw.cleared()[0] == 0 else "NO"))


def throughput(seconds=60.0):
    """Seconds of 8-channel 20 kHz signal turned into features per second of one core."""
    rate, ch = 20000.0, 8
    rng = np.random.default_rng(0)
    x = (rng.normal(scale=3000, size=(int(seconds * rate), ch))).astype(np.int16)
    edges = F.default_band_edges(1024, 16)
    cfg = F.FeatureConfig(1024, 512, rate, ch, edges, 1e-9, 0)
    F.extract(x[:20000], cfg, 1 / 32768)  # warm up
    t0, c0 = time.perf_counter(), time.process_time()
    feats = F.extract(x, cfg, 1 / 32768)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    d = cfg.n_features  # an identity precision: the full model's work, L = I packed
    identity = Mode(np.zeros(d), np.concatenate([np.eye(d)[j:, j] for j in range(d)]))
    t1 = time.perf_counter()
    identity.distances(feats)
    score_s = time.perf_counter() - t1
    print("\n### Throughput (8 channels, 20 kHz, N = 1024, hop 512, 16 bands, int16 input)")
    print("| what | seconds of signal per second | x real time |")
    print("|---|---|---|")
    print("| features, one core (CPU time) | %.0f | %.0fx |" % (seconds / cpu, seconds / cpu))
    print("| features, wall clock | %.0f | %.0fx |" % (seconds / wall, seconds / wall))
    print("| scores of those features (d = %d) | %.0f | %.0fx |" % (
        cfg.n_features, seconds / score_s, seconds / score_s))


def hour_fit_memory():
    """Peak memory of `vibrawatch fit` on one hour of 8-channel 20 kHz int16 WAV."""
    import scipy.io.wavfile

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "hour.wav"
        rate, ch, frames = 20000, 8, 3600 * 20000
        # Write the WAV header with scipy for a short file, then grow it chunk by chunk.
        header_probe = Path(tmp) / "probe.wav"
        scipy.io.wavfile.write(header_probe, rate, np.zeros((1, ch), np.int16))
        head = bytearray(header_probe.read_bytes()[:-2 * ch])
        data_bytes = frames * ch * 2
        head[4:8] = (len(head) - 8 + data_bytes).to_bytes(4, "little")
        head[-4:] = data_bytes.to_bytes(4, "little")
        rng = np.random.default_rng(1)
        t = np.arange(rate * 10)[:, None] / rate
        with open(wav, "wb") as fh:
            fh.write(head)
            for i in range(frames // (rate * 10)):
                block = 2000 * np.sin(2 * np.pi * 30 * (1 + 0.001 * i) * t + np.arange(ch)) + \
                    rng.normal(scale=300, size=(rate * 10, ch))
                fh.write(block.astype("<i2").tobytes())
        cmd = [sys.executable, "-m", "vibrawatch", "fit", str(wav), "-o", str(Path(tmp) / "m.vwm")]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "host"))
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        peak = {"VmRSS": 0, "RssAnon": 0}

        def poll():
            while proc.poll() is None:
                try:
                    for line in open("/proc/%d/status" % proc.pid):
                        key = line.split(":")[0]
                        if key in peak:
                            peak[key] = max(peak[key], int(line.split()[1]))
                except OSError:
                    pass
                time.sleep(0.05)

        th = threading.Thread(target=poll)
        th.start()
        out, err = proc.communicate()
        th.join()
        wall = time.perf_counter() - t0
        print("\n### Fitting one hour of 8-channel 20 kHz int16 WAV (%.2f GB, memory-mapped)"
              % (wav.stat().st_size / 1e9))
        if proc.returncode:
            print("fit failed: %s" % err.strip())
            return
        print("| what | value |")
        print("|---|---|")
        print("| wall time of `vibrawatch fit` (defaults) | %.0f s |" % wall)
        print("| peak private (anonymous) memory | %.0f MB |" % (peak["RssAnon"] / 1024))
        print("| peak resident memory, including mapped file pages the kernel may drop | %.0f MB |"
              % (peak["VmRSS"] / 1024))
        print("| fit output | %s |" % out.strip().splitlines()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-hour", action="store_true", help="skip the one-hour fit")
    parser.add_argument("--no-board", action="store_true",
                        help="skip the models learned on the board (vwatch.learn)")
    parser.add_argument("--only-board", action="store_true",
                        help="only the models learned on the board")
    parser.add_argument("--no-run-to-failure", action="store_true",
                        help="skip the PRONOSTIA run-to-failure table")
    parser.add_argument("--only-run-to-failure", action="store_true",
                        help="only the PRONOSTIA run-to-failure table")
    args = parser.parse_args()
    data = Path(args.data)
    if args.only_run_to_failure:
        bench_run_to_failure(data)
        return
    sets = datasets(data)
    if not sets:
        print("no data sets under %s" % data)
    for title, normal, faulty, first_files in sets:
        if not args.only_board:
            bench_dataset(title, normal, faulty, first_files)
        if not args.no_board:
            bench_board_learned(title, normal, faulty, first_files)
    if args.only_board:
        return
    if not args.no_run_to_failure:
        bench_run_to_failure(data)
    adi = data / "adi-cbm-motor"
    if adi.is_dir():
        normal, _ = labelled(adi, lambda r: r["label"] == "normal")
        for rpm in (600, 1800):
            bench_simulated("Simulated lighter imbalance, ADI %d rpm (one model for 0 and 11 lb)"
                            % rpm, [p for p in normal if p.name.startswith("%04d" % rpm)],
                            rpm / 60.0)
    if not args.no_throughput:
        throughput()
    if not args.no_hour:
        hour_fit_memory()


if __name__ == "__main__":
    main()

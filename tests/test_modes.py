"""Operating modes (K Gaussian components, model format v3) end to end: what fit chooses on a
simulated machine at one and at two speeds, each component's estimate, the threshold out of
sample, the file, the CLI, and the board scoring all K components on every backend as the host
does (MicroPython's unix port; ulab where $VWATCH_ULAB_MICROPYTHON names one).
"""

import csv

import numpy as np
import pytest
import scipy.io.wavfile
from sklearn.covariance import LedoitWolf

from test_cli import vibrawatch
from test_host_board_agree import board_scores
from vibrawatch import features as F
from vibrawatch import fitting, modelfile, modes, simulate
from vibrawatch.recordings import Recording

RATE = 8000
SLOW, FAST = 25.0, 50.0  # shaft Hz of the two speeds
# The zoom block would add bands (fs/N = 7.8 Hz here) and skip the first windows: these tests
# are about the modes, so they fit without it (tests/test_zoom.py covers the zoom block).
SETTINGS = dict(window=1024, hop=512, zoom="off")


def run(seconds, shaft_hz, seed, **kw):
    return simulate.machine(seconds, RATE, 2, shaft_hz=shaft_hz, seed=seed, **kw)


@pytest.fixture(scope="module")
def speeds():
    """40 s at each of two shaft speeds, and a second run at the slow one."""
    return {"slow": run(40, SLOW, 1), "fast": run(40, FAST, 2), "slow2": run(40, SLOW, 3)}


@pytest.fixture(scope="module")
def two_speed_fit(speeds):
    recs = [Recording("slow", RATE, speeds["slow"]), Recording("fast", RATE, speeds["fast"])]
    return recs, fitting.fit(recs, fitting.FitSettings(**SETTINGS))


def training_rows(recs, model, settings):
    cfg = F.FeatureConfig.from_model(model)
    blocks = []
    for rec in recs:
        feats = F.extract(rec.samples, cfg)
        tr = fitting.split_windows(len(feats), cfg, settings.holdout)[0]
        blocks.append(feats[tr.start : tr.stop])
    return cfg, blocks


# ---- what fit chooses ------------------------------------------------------------------------

def test_fit_finds_two_modes_on_a_two_speed_machine(two_speed_fit):
    recs, (model, report) = two_speed_fit
    assert model.n_modes == 2 and model.version == 3
    assert report.modes_note.startswith("modes: 2 operating modes found")
    assert "standard deviations apart" in report.modes_note
    assert report.modes_note in report.lines()
    # Each component is one speed: the slow recording's windows are nearest to one, the fast
    # one's to the other.
    cfg = F.FeatureConfig.from_model(model)
    slow, fast = (model.nearest_mode(F.extract(r.samples, cfg)) for r in recs)
    assert len(set(slow)) == len(set(fast)) == 1 and slow[0] != fast[0]


@pytest.mark.parametrize("which", ["one recording", "two recordings"])
def test_fit_keeps_one_gaussian_at_one_speed(speeds, which):
    names = ["slow"] if which == "one recording" else ["slow", "slow2"]
    recs = [Recording(n, RATE, speeds[n]) for n in names]
    model, report = fitting.fit(recs, fitting.FitSettings(**SETTINGS))
    assert model.n_modes == 1 and model.extra_modes == ()
    assert report.modes_note.startswith("modes: 1, the normal data show no separate")
    assert "--modes K" in report.modes_note


def test_auto_splits_only_modes_further_apart_than_one_gaussians_threshold():
    # Two clusters 7 standard deviations apart, 60 windows each: two by MIN_SEPARATION alone,
    # but nearer than a threshold radius of 9 (fit passes the radius of one Gaussian's
    # threshold, Hotelling's bound on all the training windows), so one component; 14 apart,
    # two.
    assert modes.separation_needed(16.0) == modes.MIN_SEPARATION
    assert modes.separation_needed(81.0) == 9.0
    rng = np.random.default_rng(5)
    groups = np.repeat([0, 1], 60)
    for apart, expected in ((7.0, 1), (14.0, 2)):
        rows = rng.normal(size=(120, 4))
        rows[60:] += apart / 2.0  # along the diagonal of 4 dimensions
        assert modes.choose(rows, groups, ["a", "b"], modes.AUTO, 12).k == 2
        choice = modes.choose(rows, groups, ["a", "b"], modes.AUTO, 12, 9.0)
        assert choice.k == expected
        if expected == 1:
            assert "9.0 needed, the radius of one Gaussian's threshold" in choice.note


def test_each_component_is_the_estimator_on_its_own_windows(two_speed_fit):
    recs, (model, _) = two_speed_fit
    settings = fitting.FitSettings(**SETTINGS)
    cfg, blocks = training_rows(recs, model, settings)
    train = np.concatenate(blocks)
    nearest = model.nearest_mode(train)
    for k, mode in enumerate(model.modes):
        lw = LedoitWolf().fit(train[nearest == k].astype(np.float64))
        np.testing.assert_allclose(mode.mu, lw.location_, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.precision(k), lw.precision_, rtol=2e-3,
                                   atol=2e-3 * np.abs(lw.precision_).max())
    # The score is the smallest distance, and with one Gaussian over both speeds the windows
    # of either speed would score far lower than under their own mode: the mixture is tighter.
    d = model.mode_distances(train)
    np.testing.assert_array_equal(model.mahalanobis(train), d.min(axis=1))
    pooled = LedoitWolf().fit(train.astype(np.float64))
    assert np.median(pooled.mahalanobis(train)) < np.median(d.max(axis=1))


def test_cross_validation_refits_the_modes_in_every_fold(two_speed_fit):
    recs, (model, _) = two_speed_fit
    settings = fitting.FitSettings(**SETTINGS)
    cfg, blocks = training_rows(recs, model, settings)
    choice = modes.ModeChoice(2, "mixture", "")
    cv = fitting.cross_validated_scores(blocks, cfg, "ledoitwolf", 0, choice)
    # Fold 3 by hand: each recording's block and the window either side left out, the mixture
    # and both components fitted on the rest.
    fit_one = lambda rows: LedoitWolf().fit(rows.astype(np.float64))  # noqa: E731
    keep, held = [], []
    for b in blocks:
        lo, hi = np.linspace(0, len(b), 11).astype(int)[3:5]
        keep.append(b[np.r_[0 : lo - 1, hi + 1 : len(b)]])
        held.append((lo, hi))
    fold = modes.ModeMixture(2, "mixture", fit_one).fit(np.concatenate(keep))
    for b, (lo, hi), scores in zip(blocks, held, cv):
        np.testing.assert_allclose(scores[lo:hi], fold.mahalanobis(b[lo:hi]), rtol=1e-9)
    # Out of sample: higher than the in-sample scores of a mixture fitted on everything.
    train = np.concatenate(blocks)
    in_sample = modes.ModeMixture(2, "mixture", fit_one).fit(train).mahalanobis(train)
    assert np.mean(np.concatenate(cv)) > 1.05 * np.mean(in_sample)


def test_one_model_across_both_speeds_catches_a_fault_at_each(two_speed_fit, speeds):
    recs, (model, report) = two_speed_fit
    cfg = F.FeatureConfig.from_model(model)
    for shaft, seed in ((SLOW, 11), (FAST, 12)):
        later = F.extract(run(20, shaft, seed), cfg)
        fault = F.extract(run(10, shaft, seed + 10, defect_hz=107.0), cfg)
        assert np.mean(model.mahalanobis(later) > model.threshold) <= 0.02, shaft
        assert np.mean(model.mahalanobis(fault) > model.threshold) >= 0.99, shaft


def test_explicit_and_per_recording_modes(speeds):
    recs = [Recording(n, RATE, speeds[n]) for n in ("slow", "fast", "slow2")]
    model, report = fitting.fit(recs, fitting.FitSettings(**SETTINGS, modes="per-recording"))
    assert model.n_modes == 3
    assert report.modes_note.startswith("modes: 3, one per recording (slow 468 windows, fast "
                                        "468 windows, slow2 468 windows)")
    assert "some recordings look like one mode" in report.modes_note  # slow and slow2
    model, report = fitting.fit(recs[:1], fitting.FitSettings(**SETTINGS, modes=2))
    assert model.n_modes == 2 and report.modes_note.startswith("modes: 2 as asked")
    # PCA per component: every mode has its own reduction.
    model, _ = fitting.fit(recs[:2], fitting.FitSettings(**SETTINGS, pca=4))
    assert model.n_modes == 2 and model.components == 4
    assert all(m.a.shape == (4, 32) and m.packed_l is None for m in model.modes)
    assert not np.allclose(model.modes[0].w, model.modes[1].w)


def test_bad_mode_settings_are_refused_with_what_to_do(speeds):
    rec = Recording("slow", RATE, speeds["slow"][: 4 * RATE])
    with pytest.raises(fitting.FitError, match="smallest mode has .* training windows"):
        fitting.fit([rec], fitting.FitSettings(window=1024, hop=512, bands=4, modes=4, zoom="off"))
    many = [Recording("r%d" % i, RATE, speeds["slow"]) for i in range(5)]
    with pytest.raises(fitting.FitError, match="5 recordings, a board scores at most 4"):
        fitting.fit(many, fitting.FitSettings(**SETTINGS, modes="per-recording"))
    for bad in ("0", "5", "two"):
        with pytest.raises(modes.ModesError, match="use auto, per-recording or a number"):
            modes.parse(bad)


# ---- the command line and the board ----------------------------------------------------------

@pytest.fixture(scope="module")
def wavs(tmp_path_factory, speeds):
    folder = tmp_path_factory.mktemp("modes")
    out = {}
    for name, x in (("slow", speeds["slow"]), ("fast", speeds["fast"]),
                    ("fast_fault", run(6, FAST, 22, defect_hz=107.0)),
                    ("slow_later", run(6, SLOW, 21))):
        out[name] = folder / (name + ".wav")
        scipy.io.wavfile.write(out[name], RATE, x)
    out["model"] = folder / "two.vwm"
    out["fit"] = vibrawatch("fit", out["slow"], out["fast"], "-o", out["model"], "--zoom",
                            "off").stdout
    return out


def test_cli_fit_info_and_report(wavs, tmp_path):
    assert "modes: 2 operating modes found" in wavs["fit"]
    model = modelfile.read(wavs["model"])
    assert model.n_modes == 2
    info = vibrawatch("info", wavs["model"]).stdout
    assert "modes        2 Gaussian components (operating modes), %d bytes of arrays each" % (
        4 * modelfile.array_floats(32)) in info
    assert "mean 0" in info and "mean 1" in info
    out = vibrawatch("evaluate", wavs["model"], "--normal", wavs["slow_later"], "--anomalous",
                     wavs["fast_fault"], "--report", tmp_path / "r").stdout
    assert "wrote" in out
    report = (tmp_path / "r" / "report.md").read_text()
    assert "against the mode that gave the score" in report
    fault_mode = int(model.nearest_mode(F.extract(
        scipy.io.wavfile.read(wavs["fast_fault"])[1], F.FeatureConfig.from_model(model)))[0])
    assert "fast_fault.wav, window" in report and ", mode %d:" % fault_mode in report
    bad = vibrawatch("fit", wavs["slow"], "-o", tmp_path / "m.vwm", "--modes", "9", "--zoom",
                     "off", check=False)
    assert bad.returncode == 2 and "argument --modes: use auto, per-recording or a number of " \
        "modes from 1 to 4" in bad.stderr
    one = tmp_path / "one.vwm"
    vibrawatch("fit", wavs["slow"], wavs["fast"], "-o", one, "--modes", "1", "--zoom", "off")
    assert modelfile.read(one).n_modes == 1


def host_scores(model, wav, tmp_path):
    table = tmp_path / "host.csv"
    vibrawatch("score", model, wav, "--csv", table)
    return np.array([float(r["score"]) for r in csv.DictReader(open(table))])


@pytest.mark.parametrize("which", ["slow_later", "fast_fault"])
def test_board_scores_all_components_as_the_host_does(device, precompiled_for, wavs, which,
                                                      tmp_path):
    backend, interp = device
    host = host_scores(wavs["model"], wavs[which], tmp_path)
    board = np.array([s for _, _, s, _ in board_scores(interp, precompiled_for(interp), backend,
                                                      wavs["model"], wavs[which])])
    assert len(board) == len(host) == 92
    np.testing.assert_allclose(board, host, rtol=1e-3, atol=1e-3 * 32)


@pytest.mark.parametrize("which", ["slow_later", "fast_fault"])
def test_q15_scores_all_components_as_the_host_does(micropython, device_mpy, wavs, which,
                                                    tmp_path):
    from test_q15 import MARGIN

    host = host_scores(wavs["model"], wavs[which], tmp_path)
    board = np.array([s for _, _, s, _ in board_scores(micropython, device_mpy, "q15",
                                                      wavs["model"], wavs[which])])
    assert len(board) == len(host) == 92
    worst = np.max(np.abs(board - host) / np.maximum(host, 32))
    print("q15, K = 2: largest score difference %.3g of max(score, d)" % worst)
    assert worst <= MARGIN


def test_q15_scores_k_components_without_allocating(dev_q15, wavs):
    # The detector's path (features from a ring, then the score): zero bytes with the GC
    # disabled, as for one component (tests/test_q15.py).
    from test_q15 import WINDOW_ALLOC_DRIVER

    out = dev_q15.run(WINDOW_ALLOC_DRIVER % dict(model=str(wavs["model"]),
                                                 wav=str(wavs["fast_fault"])), heap="128K")
    got = dict((ln[0], ln[2:].split()) for ln in out.splitlines())
    assert int(got["A"][0]) == 0, out
    first, again, returned = (float(v) for v in got["S"])
    assert first == again == returned


@pytest.fixture
def dev_q15(micropython, device_mpy):
    from device_support import Device

    return Device("q15", micropython, device_mpy)


def test_start_estimate_counts_every_component(micropython, wavs, tmp_path):
    one = tmp_path / "one.vwm"
    vibrawatch("fit", wavs["slow"], wavs["fast"], "-o", one, "--modes", "1", "--zoom", "off")
    code = ("from vwatch import start\nfor p in %r:\n    print(start._need_of(p, 'pure'))"
            % [str(one), str(wavs["model"])])
    need_one, need_two = (int(v) for v in micropython.run(code).split())
    assert need_two - need_one == 4 * modelfile.array_floats(32)

"""Fitting a model of normal operation: features -> scikit-learn covariance -> model file.

Splits are by time, never random: neighbouring windows overlap, so a random split would let
the model see the very samples it is checked on. Each recording's last ``holdout`` fraction is
held out (after a gap of the windows that overlap the training part) to pick the threshold.

    model, report = fit([load("normal.wav")], FitSettings(window=1024, hop=512, bands=16))
    model.write("normal.vwm")
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import features as F
from . import modes as M
from . import thresholds as T
from .errors import VibrawatchError
from .modelfile import Mode, Model, array_floats
from .pca import PCAPrecision, explained
from .recordings import rates_match



def _covariance(name):
    # scikit-learn takes about 1.5 s to import: only when a model is fitted, so that the
    # commands that fit nothing (monitor, deploy, record, ...) start at once.
    from sklearn import covariance

    if name == "mcd":
        return covariance.MinCovDet(random_state=0)
    return {"ledoitwolf": covariance.LedoitWolf, "empirical": covariance.EmpiricalCovariance}[
        name]()


ESTIMATORS = {name: (lambda name=name: _covariance(name)) for name in
              ("ledoitwolf", "mcd", "empirical")}
_NAN_MESSAGE = "%s holds NaN or infinite samples: clean the recording first"
EPS_SAMPLE_WINDOWS = 4096  # windows looked at to set epsilon; more changes nothing but time
MAX_AUTO_BANDS = 16  # bands per channel when --bands is not given and data are plentiful
WINDOWS_PER_FEATURE = 4  # automatic band count: at least this many training windows a feature
# Bytes of model arrays a fit without --pca may produce before its report suggests --pca: a
# quarter of a 256 KB board's RAM, the rest being the interpreter, vwatch's code (about
# 40 KB), the ring and the backend's buffers. The model is never changed behind the user's back.
BOARD_ARRAY_BUDGET = 64 * 1024
PCA_VARIANCE = 0.95  # the suggested --pca K explains this share of the standardised variance


class FitError(VibrawatchError):
    pass


@dataclass
class FitSettings:
    window: int = 1024
    hop: int = 512
    bands: int | None = None  # None: as many as the normal data support, up to MAX_AUTO_BANDS
    layout: str = "log"
    stats: int = 0
    estimator: str = "ledoitwolf"
    holdout: float = 0.25
    alarm_k: int = 3
    alarm_n: int = 5
    false_alarms_per_hour: float | None = None  # None: thresholds.DEFAULT_FALSE_ALARMS_PER_HOUR
    threshold_method: str = "auto"  # auto, data, hotelling, chi2 (see thresholds.calibrate)
    cost_miss: float | None = None  # both costs given: threshold and k-of-n minimise expected cost
    cost_false_alarm: float | None = None
    pca: int | None = None  # K > 0: keep K principal components (model format v2, pca.py)
    modes: str | int = M.AUTO  # operating modes: "auto", "per-recording" or K (modes.py)


@dataclass
class FitReport:
    n_train: int
    n_holdout: int
    n_features: int
    epsilon: float
    threshold: float
    train_scores: np.ndarray = field(repr=False)
    holdout_scores: np.ndarray = field(repr=False)
    calibration: T.Calibration | None = None
    # out-of-sample, per recording, in time
    cv_scores: list | None = field(default=None, repr=False)
    bands_note: str = ""
    anomalous_scores: list | None = field(default=None, repr=False)
    size_note: str = ""
    modes_note: str = ""

    def lines(self):
        q = lambda s, p: float(np.quantile(s, p)) if s.size else float("nan")  # noqa: E731
        cv = np.concatenate(self.cv_scores) if self.cv_scores else np.zeros(0)
        out = [
            "fitted on %d windows, %d held out, %d features" % (
                self.n_train, self.n_holdout, self.n_features),
        ]
        if self.bands_note:
            out.append(self.bands_note)
        if self.modes_note:
            out.append(self.modes_note)
        if self.size_note:
            out.append(self.size_note)
        out += [
            "epsilon %.3g (1e-6 of the median total band power)" % self.epsilon,
            "scores, training (in sample):      median %.1f, 99%% %.1f, max %.1f" % (
                q(self.train_scores, 0.5), q(self.train_scores, 0.99),
                self.train_scores.max()),
        ]
        if cv.size:
            out.append("scores, training (cross-validated): median %.1f, 99%% %.1f, max %.1f"
                       % (q(cv, 0.5), q(cv, 0.99), cv.max()))
        out.append("scores, held out:                   median %.1f, 99%% %.1f, max %.1f" % (
            q(self.holdout_scores, 0.5), q(self.holdout_scores, 0.99),
            self.holdout_scores.max()))
        if self.calibration is not None:
            out += self.calibration.lines()
        return out


def check_compatible(recordings):
    """All recordings must share one sample rate and channel count."""
    first = recordings[0]
    for rec in recordings[1:]:
        if not rates_match(rec.rate, first.rate):
            raise FitError("%s is %g Hz but %s is %g Hz: fit one model per sample rate"
                           % (rec.name, rec.rate, first.name, first.rate))
        if rec.channels != first.channels:
            raise FitError("%s has %d channels but %s has %d: pick the same ones with --channels"
                           % (rec.name, rec.channels, first.name, first.channels))


def split_windows(n_windows, cfg, holdout):
    """(train, held-out) window index ranges of one recording, split in time with a gap."""
    gap = -(-cfg.window // cfg.hop) - 1  # windows overlapping the last training window
    n_train = int(math.floor(n_windows * (1.0 - holdout)))
    return range(0, n_train), range(min(n_windows, n_train + gap), n_windows)


def auto_bands(n_train, channels, stats, window):
    """Bands per channel when --bands is not given: at most MAX_AUTO_BANDS, and few enough that
    every feature has WINDOWS_PER_FEATURE training windows (a covariance of d features from
    few more than d windows is poor, and its threshold worse). None when even one band is too
    many."""
    per_channel = n_train // (WINDOWS_PER_FEATURE * channels) - len(F.stat_bits(stats))
    bands = min(MAX_AUTO_BANDS, per_channel, window // 2 - 1)
    return bands if bands >= 1 else None


def fit(recordings, settings, progress=None, anomalous=()):
    """Fit a model on normal recordings; returns (Model, FitReport).

    ``anomalous``: labelled faulty recordings; with ``settings.cost_miss`` and
    ``settings.cost_false_alarm`` they choose the threshold and the alarm rule.
    """
    if not recordings:
        raise FitError("no recordings given")
    anomalous = list(anomalous or ())
    check_compatible(recordings + anomalous)
    costs = (settings.cost_miss, settings.cost_false_alarm)
    if any(c is not None for c in costs):
        if None in costs:
            raise FitError("give both --cost-miss and --cost-false-alarm (e.g. 100 and 1)")
        if not anomalous:
            raise FitError("--cost-miss and --cost-false-alarm need labelled faulty "
                           "recordings to weigh misses: pass them with --anomalous REC...")
    elif anomalous:
        raise FitError("--anomalous recordings are used to weigh costs: give --cost-miss and "
                       "--cost-false-alarm too (e.g. 100 and 1), or leave --anomalous out")
    if settings.estimator not in ESTIMATORS:
        raise FitError("unknown estimator %r: use one of %s"
                       % (settings.estimator, ", ".join(ESTIMATORS)))
    if settings.hop < 1:
        raise FitError("--hop must be at least 1 sample")
    if not 0.0 < settings.holdout < 1.0:
        raise FitError("--holdout %g must be a fraction between 0 and 1, e.g. 0.25"
                       % settings.holdout)
    rate, channels = recordings[0].rate, recordings[0].channels
    for rec in recordings + anomalous:
        if rec.frames < settings.window:
            raise FitError("%s has %d samples, shorter than one window of %d: record longer or "
                           "use a smaller --window" % (rec.name, rec.frames, settings.window))
    bands, bands_note = settings.bands, ""
    F.check_window(settings.window)
    if bands is None:
        probe = F.FeatureConfig(settings.window, settings.hop, rate, channels,
                                np.array([1, 2], np.uint16), 1.0, settings.stats)
        n_train = sum(len(split_windows(probe.n_windows(r.frames), probe, settings.holdout)[0])
                      for r in recordings)
        bands = auto_bands(n_train, channels, settings.stats, settings.window)
        if bands is None:
            raise FitError(
                "%d training windows are too few for %d channels: record more normal data "
                "(at least %d windows of every feature), use a smaller --hop, or fewer "
                "--channels" % (n_train, channels, WINDOWS_PER_FEATURE))
        bands_note = ("bands: %d per channel, chosen so that every feature has at least %d "
                      "training windows (give --bands to override)" % (bands,
                                                                       WINDOWS_PER_FEATURE))
    edges = F.default_band_edges(settings.window, bands, settings.layout)
    probe = F.FeatureConfig(settings.window, settings.hop, rate, channels, edges, 1.0,
                            settings.stats)
    cfg = F.FeatureConfig(settings.window, settings.hop, rate, channels, edges,
                          _epsilon(recordings, probe), settings.stats)

    train, held, names = [], [], []
    for rec in recordings:
        feats = F.extract(rec.samples, cfg, rec.scale, progress=progress)
        if not np.all(np.isfinite(feats)):
            raise FitError(_NAN_MESSAGE % rec.name)
        tr, ho = split_windows(len(feats), cfg, settings.holdout)
        train.append(feats[tr.start : tr.stop])
        held.append(feats[ho.start : ho.stop])
    train_blocks = [t for t in train if len(t)]
    names = [r.name for r, t in zip(recordings, train) if len(t)]
    groups = np.concatenate([np.full(len(t), i) for i, t in enumerate(train_blocks)])
    train, held = np.concatenate(train), np.concatenate(held)
    d = cfg.n_features
    if len(train) <= d:
        raise FitError(
            "%d training windows for %d features: a covariance needs more windows than "
            "features. Use fewer --bands (now %d), a smaller --hop, or more normal data"
            % (len(train), d, bands))
    if len(held) == 0:
        raise FitError("no held-out windows to set the threshold: give more normal data or a "
                       "larger --holdout")
    _check_constant_channels(train, cfg, recordings)
    pca = settings.pca or 0
    if not 0 <= pca < d:
        raise FitError("--pca %d: the number of components must be between 1 and %d (fewer "
                       "than the %d features)" % (pca, d - 1, d))

    try:
        choice = M.choose(train, groups, names, M.parse(settings.modes), d + 2)
    except M.ModesError as exc:
        raise FitError(str(exc)) from exc
    fit_one = _component_fitter(settings.estimator, pca)
    mixture = M.ModeMixture(choice.k, choice.how, fit_one).fit(train, groups, choice.labels)
    model = Model.from_modes(
        [_mode_arrays(est, d) for est in mixture.parts],
        sample_rate=rate, window=settings.window, hop=settings.hop, channels=channels,
        edges=edges, stats=settings.stats, epsilon=cfg.epsilon, threshold=1.0,
        clear_threshold=1.0, alarm_k=settings.alarm_k, alarm_n=settings.alarm_n,
        estimator=settings.estimator, n_train=len(train), created=int(time.time()),
    )
    size_note = _size_note(model, mixture.parts[0] if pca else None, train,
                           settings.estimator)
    # Score with the float32 arrays the board will use, so the threshold means the same there.
    holdout_scores = model.mahalanobis(held)
    cv_scores = cross_validated_scores(train_blocks, cfg, settings.estimator, pca, choice)
    out_of_sample = np.concatenate((cv_scores or []) + [holdout_scores])
    windows_per_hour = 3600.0 * rate / settings.hop
    independent = min(1.0, 2.0 * settings.hop / settings.window,
                      T.independent_fraction((cv_scores or []) + [holdout_scores]))
    fault_scores = []
    for rec in anomalous:
        feats = F.extract(rec.samples, cfg, rec.scale)
        if not np.all(np.isfinite(feats)):
            raise FitError(_NAN_MESSAGE % rec.name)
        fault_scores.append(model.mahalanobis(feats))
    # The Gaussian bounds (Hotelling) rest on the windows one component was fitted on: with
    # operating modes, the smallest mode's.
    n_fit = len(train) if choice.k == 1 else int(np.bincount(choice.labels,
                                                              minlength=choice.k).min())
    if anomalous:
        cal = T.choose_by_cost(out_of_sample, fault_scores, windows_per_hour, independent,
                               settings.cost_miss, settings.cost_false_alarm, n_fit, d)
    else:
        cal = T.calibrate(out_of_sample, n_fit, d, windows_per_hour, independent,
                          settings.alarm_k, settings.alarm_n, settings.false_alarms_per_hour,
                          settings.threshold_method)
    if cv_scores is None:
        cal.notes.append("too few training windows to cross-validate %d features: the "
                         "threshold rests on the %d held-out windows alone; record more normal "
                         "data or use fewer --bands" % (d, len(holdout_scores)))
    model.threshold = _float32_at_least(cal.threshold)
    model.clear_threshold = min(model.threshold, float(np.float32(cal.clear_threshold)))
    model.alarm_k, model.alarm_n = cal.alarm_k, cal.alarm_n
    report = FitReport(len(train), len(held), d, cfg.epsilon, model.threshold,
                       model.mahalanobis(train), holdout_scores, cal, cv_scores,
                       bands_note, fault_scores, size_note, choice.note)
    return model, report


def _component_fitter(estimator, pca):
    """rows -> a fitted estimator of one component (a mode), as the fit asked for."""
    def fit_one(rows):
        if pca:
            return PCAPrecision(pca, estimator).fit(rows)
        return ESTIMATORS[estimator]().fit(np.asarray(rows, np.float64))

    return fit_one


def _mode_arrays(est, d):
    """A component's float32 arrays for the model file from its fitted estimator."""
    if isinstance(est, PCAPrecision):
        return Mode(est.location_.astype(np.float32), None, est.w_.astype(np.float32),
                    est.a_.astype(np.float32), est.g_.astype(np.float32))
    try:
        lower = np.linalg.cholesky(est.precision_)
    except np.linalg.LinAlgError as exc:
        raise FitError("the %s covariance is singular (features that never vary?): use "
                       "--estimator ledoitwolf" % type(est).__name__) from exc
    return Mode(est.location_.astype(np.float32),
                np.concatenate([lower[j:, j] for j in range(d)]).astype(np.float32))


def _size_note(model, est, train, estimator):
    """The report's line on the model's size; suggests --pca when the full model is too big
    for a 256 KB board (the model stays as asked for)."""
    d, k_modes = model.n_features, model.n_modes
    full = 2 * (model.bands + 1) + 4 * k_modes * array_floats(d)
    if est is not None:
        return ("PCA: %d of %d components kept (%.1f%% of the standardised variance), the "
                "residual term covers the rest; model arrays %.1f KB (%.1f KB without PCA)"
                % (model.components, d, 100.0 * est.explained_variance_ratio_.sum(),
                   model.array_bytes / 1024.0, full / 1024.0))
    if full <= BOARD_ARRAY_BUDGET:
        return ""
    # The fewest components that explain PCA_VARIANCE, or as many as fit the budget.
    share = explained(train, estimator)
    fits = ((BOARD_ARRAY_BUDGET - 2 * (model.bands + 1)) // k_modes - 8 * d) // (4 * (d + 1))
    k = max(1, min(int(np.searchsorted(share, PCA_VARIANCE)) + 1, fits, d - 1))
    reduced = 2 * (model.bands + 1) + 4 * k_modes * array_floats(d, k)
    return ("model arrays take %.1f KB, more than the %d KB a 256 KB board can spare for them: "
            "consider refitting with --pca %d (%d components explain %.0f%% of the "
            "standardised variance here; %.1f KB); this model was written as asked"
            % (full / 1024.0, BOARD_ARRAY_BUDGET // 1024, k, k, 100 * share[k - 1],
               reduced / 1024.0))


def cross_validated_scores(blocks, cfg, estimator, pca=0, modes=None):
    """Blocked cross-validation over time of the training windows (thresholds.py). With
    ``pca`` components the reduction is refitted in every fold too, and with K > 1 operating
    modes (``modes``, a modes.ModeChoice) the mode assignment as well: a reduction or a
    mixture fitted on all the windows would have seen the held-out block."""
    gap = -(-cfg.window // cfg.hop) - 1
    fit_one = _component_fitter(estimator, pca)

    def score(est, rows):
        return est.mahalanobis(rows.astype(np.float64))

    if modes is not None and modes.k > 1:
        def fit_modes(rows, groups):
            return M.ModeMixture(modes.k, modes.how, fit_one).fit(rows, groups)

        return T.blocked_cv_scores(blocks, fit_modes, score, gap, with_groups=True)
    # fold training sets stay float32 (half the memory) until fit_one
    return T.blocked_cv_scores(blocks, fit_one, score, gap)


def _float32_at_least(value):
    """The smallest float32 >= value: a threshold stored as float32 must not drop below it."""
    v32 = np.float32(value)
    if float(v32) < value:
        v32 = np.nextafter(v32, np.float32(np.inf))
    return float(v32)


def mahalanobis(feats, mu, lower):
    """Squared Mahalanobis distances ||L^T (f - mu)||^2 of rows of ``feats`` (float64)."""
    v = np.asarray(feats, np.float64) - np.asarray(mu, np.float64)
    return np.sum((v @ np.asarray(lower, np.float64)) ** 2, axis=1)


def _epsilon(recordings, probe):
    """Epsilon from a time-spread sample of the windows (docs/features.md, 'Epsilon')."""
    total = sum(probe.n_windows(r.frames) for r in recordings)
    step = max(1, total // EPS_SAMPLE_WINDOWS)
    chunks = []
    for rec in recordings:
        for energies in F.band_energies(rec.samples, probe, rec.scale, step=step):
            if not np.all(np.isfinite(energies)):
                raise FitError(_NAN_MESSAGE % rec.name)
            chunks.append(energies)
    eps = F.default_epsilon(chunks)
    if not (eps > 0 and math.isfinite(eps)):
        raise FitError("the normal recordings are silent (no band energy at all): check the "
                       "sensor and the recording")
    return float(np.float32(eps))


def _check_constant_channels(train, cfg, recordings):
    per_channel = cfg.n_features // cfg.channels
    for c in range(cfg.channels):
        block = train[:, c * per_channel : (c + 1) * per_channel]
        if np.all(block == block[0]):
            raise FitError("channel %d is constant in every training window of %s (a stuck or "
                           "unplugged sensor?): leave it out with --channels"
                           % (c, ", ".join(r.name for r in recordings)))

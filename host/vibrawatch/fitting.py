"""Fitting a model of normal operation: features -> scikit-learn covariance -> model file.

Splits are by time, never random: neighbouring windows overlap, so a random split would let
the model see the very samples it is checked on. Windows are cut from each recording on its own,
so no window ever spans two recordings. Two splits (:func:`plan_split`), named in the report:

- ``tails``: each recording's last ``holdout`` fraction is held out (after a gap of the windows
  that overlap the training part) to pick the threshold; cross-validation over blocks in time
  of each recording.
- ``recordings`` (many short recordings, e.g. snapshots of a few windows each, too short to
  hold out their own tails): the last ``holdout`` fraction of the recordings in time (order from
  their names, recordings.time_order) is held out whole; cross-validation over blocks of whole
  recordings. Holding out the *last* ones in time, not a sample of them, makes the threshold
  cover how far a healthy machine drifts (warming up, wear-in) beyond the time it was fitted on.

    model, report = fit([load("normal.wav")], FitSettings(window=1024, hop=512, bands=16))
    model.write("normal.vwm")
"""

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import features as F
from . import fitsettings
from . import modes as M
from . import thresholds as T
from . import zoomrule
from .fitsettings import ESTIMATOR_NAMES, FitError, FitSettings  # noqa: F401 (re-exported)
from .modelfile import Mode, Model, array_floats
from .pca import PCAPrecision, explained
from .recordings import rates_match, snapshot_interval, time_order



def _covariance(name):
    # scikit-learn takes about 1.5 s to import: only when a model is fitted, so that the
    # commands that fit nothing (monitor, deploy, record, ...) start at once.
    from sklearn import covariance

    if name == "mcd":
        return covariance.MinCovDet(random_state=0)
    return {"ledoitwolf": covariance.LedoitWolf, "empirical": covariance.EmpiricalCovariance,
            "oas": covariance.OAS}[name]()


ESTIMATORS = {name: (lambda name=name: _covariance(name)) for name in ESTIMATOR_NAMES}
_NAN_MESSAGE = "%s holds NaN or infinite samples: clean the recording first"
EPS_SAMPLE_WINDOWS = 4096  # windows looked at to set epsilon; more changes nothing but time
MAX_AUTO_BANDS = 16  # bands per channel when --bands is not given and data are plentiful
WINDOWS_PER_FEATURE = 4  # automatic band count: at least this many training windows a feature
# Bytes of model arrays a fit without --pca may produce before its report suggests --pca: a
# quarter of a 256 KB board's RAM, the rest being the interpreter, vwatch's code (about
# 40 KB), the ring and the backend's buffers. The model is never changed behind the user's back.
BOARD_ARRAY_BUDGET = 64 * 1024
PCA_VARIANCE = 0.95  # the suggested --pca K explains this share of the standardised variance


@dataclass
class Split:
    """Which windows of each recording train the model and which set the threshold."""

    kind: str  # 'tails' or 'recordings'
    recordings: list  # in the order used (time order for 'recordings')
    parts: list  # per recording: (train range, held-out range) of its windows
    note: str = ""


@dataclass
class ZoomBlock:
    """The zoom block of a fit (zoomrule): R = 0 for none; edges and rule once laid."""

    r: int  # decimation factor R
    window: int  # N_z
    note: str  # the report's line
    edges: np.ndarray | None = None  # zoom band edges (bins of the N_z-point spectrum)
    rule: str = ""  # how the zoom bands were laid (zoomrule.line_note)


@dataclass
class Windows:
    """The normal recordings' feature rows, split in time (plan_split)."""

    split: Split
    train: np.ndarray
    held: np.ndarray
    blocks: list  # the training rows of each recording that has some, in the split's order
    groups: np.ndarray  # each training row's index into blocks
    names: list  # the recordings of blocks


@dataclass
class OutOfSample:
    """Scores of windows the model was not fitted on, which set the threshold."""

    held: np.ndarray  # the held-out windows'
    cv: list | None  # the training windows', cross-validated, per block; None: too few
    all: np.ndarray  # both together
    independent: float  # the share of them that are independent


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
    zoom_note: str = ""
    modes_note: str = ""
    split_note: str = ""
    zoom_rule: str = ""  # how the zoom bands were laid (zoomrule.line_note), '' without zoom

    def lines(self):
        q = lambda s, p: float(np.quantile(s, p)) if s.size else float("nan")  # noqa: E731
        cv = np.concatenate(self.cv_scores) if self.cv_scores else np.zeros(0)
        out = [
            "fitted on %d windows, %d held out, %d features" % (
                self.n_train, self.n_holdout, self.n_features),
        ]
        if self.split_note:
            out.append(self.split_note)
        if self.bands_note:
            out.append(self.bands_note)
        if self.zoom_note:
            out.append(self.zoom_note)
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
    gap = -(-cfg.span // cfg.hop) - 1  # windows overlapping the last training window
    n_train = int(math.floor(n_windows * (1.0 - holdout)))
    return range(0, n_train), range(min(n_windows, n_train + gap), n_windows)


def plan_split(recordings, cfg, holdout):
    """The split of :mod:`fitting`'s docstring: tails of every recording when each has one
    left after the gap, else (two recordings or more) the last recordings in time, whole."""
    counts = [cfg.n_windows(r.frames) for r in recordings]
    tails = [split_windows(n, cfg, holdout) for n in counts]
    if len(recordings) < 2 or all(len(ho) for _, ho in tails):
        return Split("tails", list(recordings), tails, "split: the last %.0f%% in time of each "
                     "recording held out (its own tail)" % (100 * holdout))
    ordered = time_order(recordings)
    n_held = min(len(ordered) - 1, max(1, int(round(holdout * len(ordered)))))
    parts = [(range(0, cfg.n_windows(r.frames)), range(0)) for r in ordered[:-n_held]]
    parts += [(range(0), range(0, cfg.n_windows(r.frames))) for r in ordered[-n_held:]]
    short = sum(1 for _, ho in tails if not len(ho))
    note = ("split: whole recordings (%d of %d too short to hold out their own tail): the last "
            "%d of %d in time held out (%s ... %s), cross-validation over blocks of whole "
            "recordings" % (short, len(recordings), n_held, len(ordered),
                            Path(ordered[-n_held].name).name, Path(ordered[-1].name).name))
    return Split("recordings", ordered, parts, note)


def auto_bands(n_train, channels, stats, window):
    """Bands per channel when --bands is not given: at most MAX_AUTO_BANDS, and few enough that
    every feature has WINDOWS_PER_FEATURE training windows (a covariance of d features from
    few more than d windows is poor, and its threshold worse). None when even one band is too
    many."""
    per_channel = n_train // (WINDOWS_PER_FEATURE * channels) - len(F.stat_bits(stats))
    bands = min(MAX_AUTO_BANDS, per_channel, window // 2 - 1)
    return bands if bands >= 1 else None


def fit(recordings, settings, progress=None, anomalous=()):
    """Fit a model on normal recordings; returns (Model, FitReport). Each line below is one
    step, a function of this module with one job, called in this order.

    ``anomalous``: labelled faulty recordings; with ``settings.cost_miss`` and
    ``settings.cost_false_alarm`` they choose the threshold and the alarm rule.
    """
    if not recordings:
        raise FitError("no recordings given")
    anomalous = list(anomalous or ())
    fitsettings.check(settings, anomalous)  # every setting against fitsettings.ALLOWED
    check_compatible(recordings + anomalous)
    zoom = choose_zoom(recordings, settings)
    span = window_layout(recordings[0], settings, zoom)
    check_lengths(recordings + anomalous, settings, span)
    check_shaft_has_zoom(settings, zoom, recordings[0].rate)
    bands, zoom_bands, bands_note = choose_bands(recordings, settings, span, zoom)
    edges = F.default_band_edges(settings.window, bands, settings.layout)
    zoom = lay_zoom_bands(recordings, settings, span, zoom, zoom_bands)
    cfg = feature_config(recordings, settings, edges, zoom)
    windows = extract_windows(recordings, cfg, settings.holdout, progress)
    check_training(windows, cfg, recordings, settings)
    windows_per_hour, windows.split.note = _windows_per_hour(windows.split, cfg, cfg.sample_rate,
                                                             settings.hop)
    choice = choose_modes(windows, cfg.n_features, settings, windows_per_hour)
    model, parts = estimate(windows, choice, cfg, settings)
    size_note = _size_note(model, parts[0] if settings.pca else None, windows.train,
                           settings.estimator)
    scores = out_of_sample_scores(model, windows, choice, cfg, settings)
    fault_scores = [model.mahalanobis(_features(rec, cfg)) for rec in anomalous]
    cal = calibrate(scores, fault_scores, windows, choice, cfg, settings, windows_per_hour)
    set_threshold(model, cal)
    report = FitReport(len(windows.train), len(windows.held), cfg.n_features, cfg.epsilon,
                       model.threshold, model.mahalanobis(windows.train), scores.held, cal,
                       scores.cv, bands_note, fault_scores, size_note, zoom_note=zoom.note,
                       modes_note=choice.note, split_note=windows.split.note,
                       zoom_rule=zoom.rule)
    return model, report


def choose_zoom(recordings, settings):
    """The zoom block (zoomrule.choose); 'auto' leaves out one whose history the shortest
    recording cannot hold, and says so."""
    rate = recordings[0].rate
    r, nz, note = zoomrule.choose(rate, settings.window, settings.hop, settings.zoom,
                                  settings.zoom_window)
    if r and settings.zoom == "auto":
        short = zoomrule.too_short(min(rec.frames for rec in recordings), settings.window,
                                   settings.hop, r, nz)
        if short:
            r, nz, note = 0, 0, short
    return ZoomBlock(r, nz, note)


def window_layout(first, settings, zoom):
    """A feature configuration that places the windows (zoom history, span, first window)
    before the bands are known: for the length checks, the split and the 1x line."""
    placeholder = np.array([1, 2], np.uint16)
    return F.FeatureConfig(settings.window, settings.hop, first.rate, first.channels,
                           placeholder, 1.0, 0, zoom.r, zoom.window,
                           placeholder if zoom.r else None)


def check_lengths(recordings, settings, span):
    """Every recording holds one window, and the full zoom history of the first."""
    need = span.first_window * settings.hop + settings.window
    for rec in recordings:
        if rec.frames < settings.window:
            raise FitError("%s has %d samples, shorter than one window of %d: record longer or "
                           "use a smaller --window" % (rec.name, rec.frames, settings.window))
        if rec.frames < need:
            raise FitError("%s has %d samples, fewer than the %d of the first window with a "
                           "full zoom history: record longer or use --zoom off"
                           % (rec.name, rec.frames, need))


def check_shaft_has_zoom(settings, zoom, rate):
    """--shaft-hz needs a zoom block, and 'auto' may have chosen none (--zoom off with it is
    refused with the settings)."""
    if settings.shaft_hz is not None and not zoom.r:
        raise FitError("--shaft-hz/--rpm place the 1x band of the zoom block, and this fit has "
                       "none (the main bins, %.3g Hz, are fine enough): leave them out, or "
                       "force one with --zoom R" % (rate / settings.window))


def choose_bands(recordings, settings, span, zoom):
    """(main bands, zoom bands, the report's note) per channel: as given, else auto_bands on
    the training windows, split between the main and zoom blocks (zoomrule.split_bands)."""
    top = zoomrule.top_bin(settings.window, zoom.r, zoom.window) if zoom.r else 0
    zoom_bands = settings.zoom_bands
    if settings.bands is not None:
        if zoom.r and zoom_bands is None:
            zoom_bands = max(1, min(top - 1, settings.bands // 3))
        return settings.bands, zoom_bands, ""
    channels = recordings[0].channels
    n_train = sum(len(tr) for tr, _ in plan_split(recordings, span, settings.holdout).parts)
    total = auto_bands(n_train, channels, settings.stats, settings.window)
    if total is None or (zoom.r and total - (zoom_bands or 1) < 1):
        raise FitError(
            "%d training windows are too few for %d channels: record more normal data "
            "(at least %d windows of every feature), use a smaller --hop, or fewer "
            "--channels" % (n_train, channels, WINDOWS_PER_FEATURE))
    if zoom.r:
        bands, auto_zoom = zoomrule.split_bands(total, top)
        if zoom_bands is None:
            zoom_bands = auto_zoom
        else:
            bands = total - zoom_bands
    else:
        bands = total
    note = ("bands: %d per channel%s, chosen so that every feature has at least %d training "
            "windows (give --bands to override)"
            % (bands, " and %d zoom bands" % zoom_bands if zoom.r else "", WINDOWS_PER_FEATURE))
    return bands, zoom_bands, note


def lay_zoom_bands(recordings, settings, span, zoom, zoom_bands):
    """The zoom block with its band edges: around the shaft's 1x line (given or found,
    _shaft_line), else log bands from zoomrule.ZOOM_LO_BIN; its note says which."""
    if not zoom.r:
        return zoom
    if not 1 <= zoom_bands <= zoom.window // 2 - 1:
        raise FitError("--zoom-bands %d: between 1 and %d for a zoom window of %d"
                       % (zoom_bands, zoom.window // 2 - 1, zoom.window))
    top = zoomrule.top_bin(settings.window, zoom.r, zoom.window)
    hz = recordings[0].rate / (zoom.r * zoom.window)
    line = _shaft_line(recordings, span, settings, top, hz)
    if line is not None:
        edges = zoomrule.line_edges(line.bin, zoom_bands, top, zoom.window)
    else:
        lo = zoomrule.ZOOM_LO_BIN if top - zoomrule.ZOOM_LO_BIN >= zoom_bands else 1
        edges = F.default_band_edges(zoom.window, zoom_bands, "log",
                                     hi=max(top, zoom_bands + lo), lo=lo)
    rule = zoomrule.line_note(line, hz, top)
    note = zoom.note + "; %s; %d zoom bands, %.3g to %.3g Hz" % (
        rule, len(edges) - 1, edges[0] * hz, edges[-1] * hz)
    return replace(zoom, note=note, edges=edges, rule=rule)


def feature_config(recordings, settings, edges, zoom):
    """The features' configuration, with epsilon as given or from the normal data."""
    first = recordings[0]
    probe = F.FeatureConfig(settings.window, settings.hop, first.rate, first.channels, edges,
                            1.0, settings.stats)
    eps = settings.epsilon
    return F.FeatureConfig(settings.window, settings.hop, first.rate, first.channels, edges,
                           float(np.float32(eps)) if eps else _epsilon(recordings, probe),
                           settings.stats, zoom.r, zoom.window, zoom.edges)


def extract_windows(recordings, cfg, holdout, progress=None):
    """Every window's features, split in time into training and held-out rows (plan_split)."""
    split = plan_split(recordings, cfg, holdout)
    train, held = [], []
    for rec, (tr, ho) in zip(split.recordings, split.parts):
        feats = _features(rec, cfg, progress)  # this recording's windows only
        train.append(feats[tr.start : tr.stop])
        held.append(feats[ho.start : ho.stop])
    blocks = [t for t in train if len(t)]
    names = [r.name for r, t in zip(split.recordings, train) if len(t)]
    groups = np.concatenate([np.full(len(t), i) for i, t in enumerate(blocks)] or [[]])
    return Windows(split, np.concatenate(train), np.concatenate(held), blocks, groups, names)


def check_training(windows, cfg, recordings, settings):
    """Enough training windows for a covariance, some held out, no constant channel, and
    --pca below the number of features."""
    d = cfg.n_features
    if len(windows.train) <= d:
        raise FitError(
            "%d training windows for %d features: a covariance needs more windows than "
            "features. Use fewer --bands (now %d), a smaller --hop, or more normal data"
            % (len(windows.train), d, cfg.bands))
    if len(windows.held) == 0:
        raise FitError("no held-out windows to set the threshold: give more normal data (a "
                       "longer recording, or several: short ones are then held out whole) or "
                       "a larger --holdout")
    _check_constant_channels(windows.train, cfg, recordings)
    pca = settings.pca or 0
    if not 0 <= pca < d:
        raise FitError("--pca %d: the number of components must be between 1 and %d (fewer "
                       "than the %d features)" % (pca, d - 1, d))


def choose_modes(windows, d, settings, windows_per_hour):
    """The operating modes (modes.choose). 'auto' splits modes only when they lie further
    apart than one Gaussian's threshold radius (modes.separation_needed): Hotelling's bound on
    all the training windows."""
    budget = settings.false_alarms_per_hour or T.DEFAULT_FALSE_ALARMS_PER_HOUR
    one_threshold = T.hotelling_bound(len(windows.train), d, T.window_rate_for(
        budget, windows_per_hour, settings.alarm_k, settings.alarm_n))
    try:
        return M.choose(windows.train, windows.groups, windows.names, M.parse(settings.modes),
                        d + 2, M.separation_needed(one_threshold))
    except M.ModesError as exc:
        raise FitError(str(exc)) from exc


def estimate(windows, choice, cfg, settings):
    """(the model with threshold 1, the fitted estimators): one covariance per mode
    (ESTIMATORS, or pca.PCAPrecision with --pca)."""
    fit_one = _component_fitter(settings.estimator, settings.pca or 0)
    parts = M.ModeMixture(choice.k, choice.how, fit_one).fit(
        windows.train, windows.groups, choice.labels).parts
    model = Model.from_modes(
        [_mode_arrays(est, cfg.n_features) for est in parts],
        sample_rate=cfg.sample_rate, window=settings.window, hop=settings.hop,
        channels=cfg.channels, edges=cfg.edges, stats=settings.stats, epsilon=cfg.epsilon,
        threshold=1.0, clear_threshold=1.0, alarm_k=settings.alarm_k, alarm_n=settings.alarm_n,
        estimator=settings.estimator, n_train=len(windows.train), created=int(time.time()),
        **_zoom_fields(cfg),
    )
    return model, parts


def out_of_sample_scores(model, windows, choice, cfg, settings):
    """The held-out windows' scores, the training windows' cross-validated ones, and the
    share of them that are independent (neighbouring windows overlap)."""
    # Score with the float32 arrays the board will use, so the threshold means the same there.
    held = model.mahalanobis(windows.held)
    whole = windows.split.kind == "recordings"
    cv = cross_validated_scores(windows.blocks, cfg, settings.estimator, settings.pca or 0,
                                choice, whole_recordings=whole)
    # Slow processes make neighbouring snapshots alike: measured across recordings
    sequences = [np.concatenate((cv or []) + [held])] if whole else (cv or []) + [held]
    independent = min(1.0, 2.0 * settings.hop / cfg.span,  # a zoom history overlaps more
                      T.independent_fraction(sequences))
    return OutOfSample(held, cv, np.concatenate((cv or []) + [held]), independent)


def calibrate(scores, fault_scores, windows, choice, cfg, settings, windows_per_hour):
    """The threshold and alarm rule (thresholds.Calibration): by the false-alarm budget
    (thresholds.calibrate), or by the costs with faulty recordings (choose_by_cost)."""
    d = cfg.n_features
    # The Gaussian bounds (Hotelling) rest on the windows one component was fitted on: with
    # operating modes, the smallest mode's.
    n_fit = len(windows.train) if choice.k == 1 else int(
        np.bincount(choice.labels, minlength=choice.k).min())
    if fault_scores:
        cal = T.choose_by_cost(scores.all, fault_scores, windows_per_hour, scores.independent,
                               settings.cost_miss, settings.cost_false_alarm, n_fit, d)
    else:
        cal = T.calibrate(scores.all, n_fit, d, windows_per_hour, scores.independent,
                          settings.alarm_k, settings.alarm_n, settings.false_alarms_per_hour,
                          settings.threshold_method)
    if scores.cv is None:
        cal.notes.append("too few training windows to cross-validate %d features: the "
                         "threshold rests on the %d held-out windows alone; record more normal "
                         "data or use fewer --bands" % (d, len(scores.held)))
    return cal


def set_threshold(model, cal):
    """The calibration into the model, stored as float32 never below the threshold."""
    model.threshold = _float32_at_least(cal.threshold)
    model.clear_threshold = min(model.threshold, float(np.float32(cal.clear_threshold)))
    model.alarm_k, model.alarm_n = cal.alarm_k, cal.alarm_n


def _features(rec, cfg, progress=None):
    """One recording's features, refused if a window holds NaN or infinity."""
    feats = F.extract(rec.samples, cfg, rec.scale, progress=progress)
    if not np.all(np.isfinite(feats)):
        raise FitError(_NAN_MESSAGE % rec.name)
    return feats


def _shaft_line(recordings, span, settings, top, zoom_hz):
    """The 1x line the zoom bands are laid around (zoomrule): as given with --shaft-hz, else
    the one found in the training windows' zoom spectrum (never the held-out ones), or None."""
    if settings.shaft_hz is not None:
        return zoomrule.given_line(settings.shaft_hz, zoom_hz, span.zoom_window)
    split = plan_split(recordings, span, settings.holdout)
    power = zoomrule.zoom_bin_power(split.recordings, span, [tr for tr, _ in split.parts], top)
    return zoomrule.find_line(power, top)


def _zoom_fields(cfg):
    # The model file's zoom block (format v3): R = 0 for none.
    if not cfg.zoom:
        return {}
    return dict(zoom_r=cfg.zoom, zoom_window=cfg.zoom_window, zoom_edges=cfg.zoom_edges)


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


def _windows_per_hour(split, cfg, rate, hop):
    """Windows scored per hour of operation, which turns the false-alarm budget per hour into
    a rate per window, and the split's note saying so. Recordings back to back give
    rate / hop; snapshots with time stamps (one every few seconds or minutes) give their
    windows per snapshot times snapshots per hour; snapshots without count as back to back,
    which errs towards fewer false alarms."""
    continuous = 3600.0 * rate / hop
    if split.kind != "recordings":
        return continuous, split.note
    every = snapshot_interval(split.recordings)
    per_rec = float(np.mean([cfg.n_windows(r.frames) for r in split.recordings]))
    if every is None or every * rate < per_rec * hop:
        return continuous, split.note + "; no time stamps: budget counted as if back to back"
    return (per_rec * 3600.0 / every,
            split.note + "; a recording every %.4g s (from their time stamps), %.0f windows "
            "per hour" % (every, per_rec * 3600.0 / every))


def _size_note(model, est, train, estimator):
    """The report's line on the model's size; suggests --pca when the full model is too big
    for a 256 KB board (the model stays as asked for)."""
    d, k_modes = model.n_features, model.n_modes
    edges = 2 * (model.bands + 1) + (2 * (model.zoom_bands + 1) if model.zoom_r else 0)
    full = edges + 4 * k_modes * array_floats(d)
    if est is not None:
        return ("PCA: %d of %d components kept (%.1f%% of the standardised variance), the "
                "residual term covers the rest; model arrays %.1f KB (%.1f KB without PCA)"
                % (model.components, d, 100.0 * est.explained_variance_ratio_.sum(),
                   model.array_bytes / 1024.0, full / 1024.0))
    if full <= BOARD_ARRAY_BUDGET:
        return ""
    # The fewest components that explain PCA_VARIANCE, or as many as fit the budget.
    share = explained(train, estimator)
    fits = ((BOARD_ARRAY_BUDGET - edges) // k_modes - 8 * d) // (4 * (d + 1))
    k = max(1, min(int(np.searchsorted(share, PCA_VARIANCE)) + 1, fits, d - 1))
    reduced = edges + 4 * k_modes * array_floats(d, k)
    return ("model arrays take %.1f KB, more than the %d KB a 256 KB board can spare for them: "
            "consider refitting with --pca %d (%d components explain %.0f%% of the "
            "standardised variance here; %.1f KB); this model was written as asked"
            % (full / 1024.0, BOARD_ARRAY_BUDGET // 1024, k, k, 100 * share[k - 1],
               reduced / 1024.0))


def cross_validated_scores(blocks, cfg, estimator, pca=0, modes=None, whole_recordings=False):
    """Blocked cross-validation over time of the training windows (thresholds.py). With
    ``pca`` components the reduction is refitted in every fold too, and with K > 1 operating
    modes (``modes``, a modes.ModeChoice) the mode assignment as well: a reduction or a
    mixture fitted on all the windows would have seen the held-out block. The gap covers a
    zoom history too (cfg.span). ``whole_recordings``: ``blocks`` are short recordings in
    time order, left out in blocks of whole recordings."""
    gap = -(-cfg.span // cfg.hop) - 1
    fit_one = _component_fitter(estimator, pca)

    def score(est, rows):
        return est.mahalanobis(rows.astype(np.float64))

    if modes is not None and modes.k > 1:
        def fit_modes(rows, groups):
            return M.ModeMixture(modes.k, modes.how, fit_one).fit(rows, groups)

        fit, with_groups = fit_modes, True
    else:  # fold training sets stay float32 (half the memory) until fit_one
        fit, with_groups = fit_one, False
    if whole_recordings:
        return T.recording_blocks_cv_scores(blocks, fit, score, with_groups=with_groups)
    return T.blocked_cv_scores(blocks, fit, score, gap, with_groups=with_groups)


def _float32_at_least(value):
    """The smallest float32 >= value: a threshold stored as float32 must not drop below it."""
    v32 = np.float32(value)
    if float(v32) < value:
        v32 = np.nextafter(v32, np.float32(np.inf))
    return float(v32)


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
    per_channel = cfg.bands + len(F.stat_bits(cfg.stats))  # the main block; zoom follows
    for c in range(cfg.channels):
        block = train[:, c * per_channel : (c + 1) * per_channel]
        if np.all(block == block[0]):
            raise FitError("channel %d is constant in every training window of %s (a stuck or "
                           "unplugged sensor?): leave it out with --channels"
                           % (c, ", ".join(r.name for r in recordings)))

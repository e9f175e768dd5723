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
from sklearn.covariance import EmpiricalCovariance, LedoitWolf, MinCovDet

from . import features as F
from .errors import VibrawatchError
from .modelfile import Model
from .recordings import rates_match

ESTIMATORS = {
    "ledoitwolf": lambda: LedoitWolf(),
    "mcd": lambda: MinCovDet(random_state=0),
    "empirical": lambda: EmpiricalCovariance(),
}
_NAN_MESSAGE = "%s holds NaN or infinite samples: clean the recording first"
EPS_SAMPLE_WINDOWS = 4096  # windows looked at to set epsilon; more changes nothing but time


class FitError(VibrawatchError):
    pass


@dataclass
class FitSettings:
    window: int = 1024
    hop: int = 512
    bands: int = 16
    layout: str = "log"
    stats: int = 0
    estimator: str = "ledoitwolf"
    holdout: float = 0.25
    alarm_k: int = 3
    alarm_n: int = 5


@dataclass
class FitReport:
    n_train: int
    n_holdout: int
    n_features: int
    epsilon: float
    threshold: float
    train_scores: np.ndarray = field(repr=False)
    holdout_scores: np.ndarray = field(repr=False)

    def lines(self):
        q = lambda s, p: float(np.quantile(s, p)) if s.size else float("nan")  # noqa: E731
        return [
            "fitted on %d windows, %d held out, %d features" % (
                self.n_train, self.n_holdout, self.n_features),
            "epsilon %.3g (1e-6 of the median total band power)" % self.epsilon,
            "scores, training:  median %.1f, 99%% %.1f, max %.1f" % (
                q(self.train_scores, 0.5), q(self.train_scores, 0.99),
                self.train_scores.max()),
            "scores, held out:  median %.1f, 99%% %.1f, max %.1f" % (
                q(self.holdout_scores, 0.5), q(self.holdout_scores, 0.99),
                self.holdout_scores.max()),
            "threshold %.2f: the largest held-out score (provisional; expected features: %d)"
            % (self.threshold, self.n_features),
        ]


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


def fit(recordings, settings, progress=None):
    """Fit a model on normal recordings; returns (Model, FitReport)."""
    if not recordings:
        raise FitError("no recordings given")
    check_compatible(recordings)
    if settings.estimator not in ESTIMATORS:
        raise FitError("unknown estimator %r: use one of %s"
                       % (settings.estimator, ", ".join(ESTIMATORS)))
    if settings.hop < 1:
        raise FitError("--hop must be at least 1 sample")
    if not 0.0 < settings.holdout < 1.0:
        raise FitError("--holdout %g must be a fraction between 0 and 1, e.g. 0.25"
                       % settings.holdout)
    rate, channels = recordings[0].rate, recordings[0].channels
    edges = F.default_band_edges(settings.window, settings.bands, settings.layout)
    probe = F.FeatureConfig(settings.window, settings.hop, rate, channels, edges, 1.0,
                            settings.stats)
    for rec in recordings:
        if rec.frames < settings.window:
            raise FitError("%s has %d samples, shorter than one window of %d: record longer or "
                           "use a smaller --window" % (rec.name, rec.frames, settings.window))
    cfg = F.FeatureConfig(settings.window, settings.hop, rate, channels, edges,
                          _epsilon(recordings, probe), settings.stats)

    train, held = [], []
    for rec in recordings:
        feats = F.extract(rec.samples, cfg, rec.scale, progress=progress)
        if not np.all(np.isfinite(feats)):
            raise FitError(_NAN_MESSAGE % rec.name)
        tr, ho = split_windows(len(feats), cfg, settings.holdout)
        train.append(feats[tr.start : tr.stop])
        held.append(feats[ho.start : ho.stop])
    train, held = np.concatenate(train), np.concatenate(held)
    d = cfg.n_features
    if len(train) <= d:
        raise FitError(
            "%d training windows for %d features: a covariance needs more windows than "
            "features. Use fewer --bands (now %d), a smaller --hop, or more normal data"
            % (len(train), d, settings.bands))
    if len(held) == 0:
        raise FitError("no held-out windows to set the threshold: give more normal data or a "
                       "larger --holdout")
    _check_constant_channels(train, cfg, recordings)

    estimator = ESTIMATORS[settings.estimator]().fit(train.astype(np.float64))
    try:
        lower = np.linalg.cholesky(estimator.precision_)
    except np.linalg.LinAlgError as exc:
        raise FitError("the %s covariance is singular (features that never vary?): use "
                       "--estimator ledoitwolf" % settings.estimator) from exc
    packed = np.concatenate([lower[j:, j] for j in range(d)]).astype(np.float32)
    mu = estimator.location_.astype(np.float32)
    model = Model(
        sample_rate=rate, window=settings.window, hop=settings.hop, channels=channels,
        edges=edges, stats=settings.stats, epsilon=cfg.epsilon, mu=mu, packed_l=packed,
        threshold=1.0, clear_threshold=1.0, alarm_k=settings.alarm_k,
        alarm_n=settings.alarm_n, estimator=settings.estimator, n_train=len(train),
        created=int(time.time()),
    )
    # Score with the float32 arrays the board will use, so the threshold means the same there.
    lower = model.cholesky_factor()
    holdout_scores = mahalanobis(held, mu, lower)
    threshold = _float32_at_least(holdout_scores.max())
    model.threshold = model.clear_threshold = threshold
    report = FitReport(len(train), len(held), d, cfg.epsilon, threshold,
                       mahalanobis(train, mu, lower), holdout_scores)
    return model, report


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

"""Fit's settings: their defaults (``FitSettings``) and their allowed values (``ALLOWED``), a
table checked by one function, :func:`check`, before any work (as scikit-learn declares its
estimators' ``_parameter_constraints``). `vibrawatch fit` runs it on its options right after
parsing (validate.py), ``fitting.fit`` on whatever settings it is given.

    check(FitSettings(window=1000))   # FitError: --window 1000: a window is a power of two ...

What only the data can tell (enough windows for the bands, --pca below the features, a zoom
block to put --shaft-hz in when --zoom is auto) is checked in the fit's steps.
"""

import math
from dataclasses import dataclass
from typing import Callable

from . import features as F
from . import modes as M
from .errors import VibrawatchError
from .modelfile import MAX_ALARM_N

ESTIMATOR_NAMES = ("ledoitwolf", "mcd", "empirical", "oas")  # fitting.ESTIMATORS
MAX_BANDS = 255  # one byte in the model file


class FitError(VibrawatchError):
    pass


@dataclass
class FitSettings:
    """How fitting.fit fits: `vibrawatch fit`'s options (README); allowed values: ALLOWED."""

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
    zoom: str | int = "auto"  # zoom block: 'auto' (zoomrule), 'off', or a decimation factor R
    zoom_window: int | None = None  # N_z (None: zoomrule.ZOOM_WINDOW)
    zoom_bands: int | None = None  # B_z (None: a third of the bands, zoomrule.split_bands)
    shaft_hz: float | None = None  # the 1x zoom band here (None: found in the data, zoomrule)
    epsilon: float | None = None  # None: the rule of docs/features.md on the normal data
    modes: str | int = M.AUTO  # operating modes: "auto", "per-recording" or K (modes.py)


@dataclass(frozen=True)
class Allowed:
    """One rule on one setting: ``ok(value, settings)``; a refusal names the option, what is
    allowed and a value that works (``problem`` and ``example``, text or settings -> text),
    or is ``message(value, settings)`` whole. None passes when ``none_ok`` (the default)."""

    option: str
    ok: Callable
    problem: str | Callable = ""
    example: str | Callable = ""
    none_ok: bool = False
    message: Callable | None = None

    def refusal(self, value, settings):
        if self.message is not None:
            return self.message(value, settings)
        text = lambda t: t(settings) if callable(t) else t  # noqa: E731
        return "%s %s: %s; e.g. %s" % (self.option, value, text(self.problem),
                                      text(self.example))


def _finite(value):
    return value is not None and math.isfinite(value)


def _positive(value, settings):
    return _finite(value) and value > 0


def _most_bands(window):
    return min(MAX_BANDS, window // 2 - 1)


def _modes_ok(value, settings):
    try:
        M.parse(value)
    except M.ModesError:
        return False
    return True


def _modes_message(value, settings):
    try:
        M.parse(value)
    except M.ModesError as exc:
        return str(exc)


# Each setting's rules, checked in this order (the first refusal is raised).
ALLOWED = {
    "window": (Allowed(
        "--window", lambda v, s: F.MIN_WINDOW <= v <= F.MAX_WINDOW and v & (v - 1) == 0,
        "a window is a power of two between %d and %d" % (F.MIN_WINDOW, F.MAX_WINDOW),
        "--window 1024"),),
    "hop": (Allowed(
        "--hop", lambda v, s: 1 <= v <= 2**31, "windows start at least 1 sample apart",
        lambda s: "--hop %d (half the window)" % (s.window // 2)),),
    "bands": (Allowed(
        "--bands", lambda v, s: 1 <= v <= _most_bands(s.window),
        lambda s: "a %d-sample window holds 1 to %d bands" % (s.window, _most_bands(s.window)),
        lambda s: "--bands %d" % min(16, _most_bands(s.window)), none_ok=True),),
    "holdout": (Allowed(
        "--holdout", lambda v, s: _finite(v) and 0.0 < v < 1.0,
        "the held-out part is a fraction between 0 and 1", "--holdout 0.25"),),
    "alarm_n": (Allowed(
        "--alarm-n", lambda v, s: 1 <= v <= MAX_ALARM_N,
        "the alarm looks back 1 to %d windows" % MAX_ALARM_N, "--alarm-n 5"),),
    "alarm_k": (Allowed(
        "--alarm-k", lambda v, s: 1 <= v <= s.alarm_n,
        lambda s: "K windows of the last --alarm-n %d: K must be between 1 and %d"
        % (s.alarm_n, s.alarm_n), lambda s: "--alarm-k %d" % max(1, min(3, s.alarm_n))),),
    "false_alarms_per_hour": (Allowed(
        "--false-alarms-per-hour", _positive, "the budget is a positive number",
        "--false-alarms-per-hour 1", none_ok=True),),
    "cost_miss": (Allowed(
        "--cost-miss", _positive, "a cost is a positive, finite number", "--cost-miss 100",
        none_ok=True),),
    "cost_false_alarm": (Allowed(
        "--cost-false-alarm", _positive, "a cost is a positive, finite number",
        "--cost-false-alarm 100", none_ok=True),),
    "pca": (Allowed("--pca", lambda v, s: v >= 1, "keep at least 1 component", "--pca 8",
                    none_ok=True),),
    "estimator": (Allowed(
        "--estimator", lambda v, s: v in ESTIMATOR_NAMES,
        message=lambda v, s: "unknown estimator %r: use one of %s"
        % (v, ", ".join(ESTIMATOR_NAMES))),),
    "epsilon": (Allowed(
        "--epsilon", _positive, none_ok=True,
        message=lambda v, s: "--epsilon %r must be a positive number, e.g. the eps a board "
        "learned with" % v),),
    "modes": (Allowed("--modes", _modes_ok, message=_modes_message),),
    "shaft_hz": (
        Allowed("--shaft-hz", _positive, "the shaft's speed is a positive number",
                "--shaft-hz 10 (600 rpm)", none_ok=True),
        Allowed("--shaft-hz", lambda v, s: s.zoom != "off", none_ok=True,
                message=lambda v, s: "--shaft-hz %g places the 1x band of the zoom block, and "
                "--zoom off leaves it out: drop one of them" % v),
    ),
}


def check(settings, anomalous=()):
    """Refuse (FitError) the first setting outside ``ALLOWED``, then costs without labelled
    faulty recordings (``anomalous``) to weigh them, or faulty recordings without costs."""
    for name, rules in ALLOWED.items():
        value = getattr(settings, name)
        for rule in rules:
            if value is None and rule.none_ok:
                continue
            if value is None or not rule.ok(value, settings):
                raise FitError(rule.refusal(value, settings))
    costs = (settings.cost_miss, settings.cost_false_alarm)
    if (None in costs) != (costs == (None, None)):
        raise FitError("give both --cost-miss and --cost-false-alarm (e.g. 100 and 1), or "
                       "neither")
    if costs != (None, None) and not anomalous:
        raise FitError("--cost-miss and --cost-false-alarm need labelled faulty recordings "
                       "to weigh misses: pass them with --anomalous REC...")
    if anomalous and costs == (None, None):
        raise FitError("--anomalous recordings are used to weigh costs: give --cost-miss "
                       "and --cost-false-alarm too (e.g. 100 and 1), or leave --anomalous out")

"""Run-to-failure evaluation: how long before a failure does the alarm come, and how many
alarms came and went before it.

A run to failure is a time-ordered set of snapshots (short recordings, e.g. PRONOSTIA's 0.1 s
every 10 s) from a new machine until it failed. Ground truth is only "healthy at the start,
failed at the end", so a detector is judged by

- the **lead time**: time from the raise of the first alarm that stays raised until the last
  snapshot, to the last snapshot (None when the alarm is not raised at the end);
- the **alarms raised and cleared before it**: false alarms, or warnings nobody could act on.

vibrawatch is fitted with its default settings on the snapshots of the first ``train_minutes``
(DEFAULT_TRAIN_MINUTES) and scores every snapshot; a snapshot's score is the median of its
windows' scores (one odd window does not make a snapshot odd). The classic baselines take the
RMS and the kurtosis of every channel of every snapshot, with a threshold of mean + 3 standard
deviations of the same training snapshots, a snapshot being above when any channel is. All
three go through the same persistence rule over snapshots: the model's k of n (alarm.py);
vibrawatch clears below the model's clear threshold, the baselines, having one level, below
their threshold. For information, one more row runs the board's own rule: k of n *windows*,
the alarm state carried from one snapshot's windows to the next (a snapshot counts as alarmed
when the state after its last window is raised); it decides four times a snapshot (N = 1024,
hop 512, 2560 samples), which the baselines, one value a snapshot, cannot.

    run = run_to_failure(datasets.load_snapshot_folder("Bearing1_2"))
    print("\\n".join(run.lines()))
    run.plot("run.png")
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import alarm
from . import features as F
from .errors import VibrawatchError
from .evaluate import recording_score
from .fitting import FitSettings, fit
from .recordings import snapshot_times, time_order

# Fit on the first hour. Why an hour, whatever the run: a bearing and its housing warm up over
# tens of minutes after a start (thermal time constants of a machine's mass), and the fit
# must have seen that warm-up, so that its cross-validation blocks and the held-out last quarter
# (15 min) measure how far a healthy machine moves, and the threshold covers it. An hour of
# snapshots every 10 s is also 360 snapshots, enough windows for 16 bands on 2 channels. The
# length of a run is unknown in advance (it ends at the failure), so a fraction of it is not an
# option a user has.
DEFAULT_TRAIN_MINUTES = 60.0
SIGMAS = 3.0  # the classic baselines' threshold: mean + 3 standard deviations


class RunToFailureError(VibrawatchError):
    pass


@dataclass
class Detector:
    """One detector's verdict over the run: its per-snapshot values, alarm states and what
    they mean."""

    name: str
    values: np.ndarray = field(repr=False)  # (snapshots,) or (snapshots, channels)
    threshold: object  # float, or one per channel
    states: np.ndarray = field(repr=False)  # alarm raised after each snapshot
    times: np.ndarray = field(repr=False)  # seconds from the first snapshot
    n_train: int = 0  # snapshots of the training part

    @property
    def end(self):
        return float(self.times[-1])

    def persistent(self):
        """Index of the snapshot that raised the alarm that lasts until the end, or None."""
        spans = alarm.alarm_spans(self.states)
        if spans and spans[-1][1] == len(self.states) - 1:
            return spans[-1][0]
        return None

    @property
    def lead_seconds(self):
        first = self.persistent()
        return None if first is None else self.end - float(self.times[first])

    def cleared(self):
        """(all, in the training part) alarms raised and cleared before the lasting one."""
        spans = alarm.alarm_spans(self.states)
        if self.persistent() is not None:
            spans = spans[:-1]
        return len(spans), sum(1 for a, _ in spans if a < self.n_train)

    def line(self):
        lead = self.lead_seconds
        cleared, in_train = self.cleared()
        return "%-33s %s; %d alarm%s raised and cleared before it%s" % (
            self.name, "warned %.1f min before the end (raised at %.1f min)" % (
                lead / 60.0, (self.end - lead) / 60.0) if lead is not None
            else "NO alarm lasting to the end", cleared, "" if cleared == 1 else "s",
            " (%d in the training part)" % in_train if in_train else "")


@dataclass
class RunToFailure:
    name: str
    times: np.ndarray = field(repr=False)
    n_train: int
    train_minutes: float
    detectors: list  # vibrawatch, RMS, kurtosis, vibrawatch with the board's rule
    fit_lines: list = field(default_factory=list)
    alarm_k: int = 3
    alarm_n: int = 5

    def lines(self):
        out = ["run to failure %s: %d snapshots over %.1f min; fitted on the first %d (%.0f "
               "min); persistence: %d of the last %d snapshots" % (
                   self.name, len(self.times), self.times[-1] / 60.0, self.n_train,
                   self.train_minutes, self.alarm_k, self.alarm_n)]
        out += ["  fit: " + line for line in self.fit_lines]
        out += [d.line() for d in self.detectors]
        return out

    def plot(self, path):
        """Score, RMS and kurtosis against the time to failure, thresholds dashed, alarms
        shaded, the training part grey."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        to_end = (self.times - self.times[-1]) / 60.0
        shown = self.detectors[:3]  # score, RMS, kurtosis
        fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.2 * len(shown) + 0.6),
                                 sharex=True)
        for ax, d in zip(np.atleast_1d(axes), shown):
            values = d.values if d.values.ndim == 2 else d.values[:, None]
            for c in range(values.shape[1]):
                ax.plot(to_end, values[:, c], lw=0.7, label=("channel %d" % c)
                        if values.shape[1] > 1 else None)
            for c, t in enumerate(np.atleast_1d(d.threshold)):
                ax.axhline(t, ls="--", lw=0.8, color="C%d" % c if np.ndim(d.threshold) else "k")
            for a, b in alarm.alarm_spans(d.states):
                ax.axvspan(to_end[a], to_end[b], color="orange", alpha=0.3, lw=0)
            ax.axvspan(to_end[0], to_end[self.n_train - 1], color="grey", alpha=0.15, lw=0)
            if d.name == "vibrawatch":
                ax.set_yscale("log")
            ax.set_ylabel(d.name, fontsize=8)
            ax.tick_params(labelsize=7)
            if values.shape[1] > 1:
                ax.legend(fontsize=6, loc="upper left")
        axes[0].set_title("%s: grey = training part, dashed = threshold, orange = alarm raised"
                          % Path(self.name).name, fontsize=8, loc="left")
        axes[-1].set_xlabel("time to failure (min)")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return Path(path)


def rms_and_kurtosis(rec):
    """(RMS, kurtosis) of every channel of one recording (kurtosis 3 for Gaussian noise)."""
    x = np.asarray(rec.samples, np.float64) * rec.scale
    centred = x - x.mean(axis=0)
    var = np.maximum((centred**2).mean(axis=0), 1e-300)
    return np.sqrt((x**2).mean(axis=0)), (centred**4).mean(axis=0) / var**2


def baseline(name, values, n_train, times, k, n):
    """Mean + SIGMAS standard deviations of the training snapshots, per channel; a snapshot is
    above when any channel is; k of n snapshots raise, none of the last n above clears."""
    mean, sd = values[:n_train].mean(axis=0), values[:n_train].std(axis=0)
    threshold = mean + SIGMAS * sd
    above = np.any(values > threshold, axis=1).astype(float)
    states = alarm.alarm_states(above, 0.5, 0.5, k, n)
    return Detector(name, values, threshold, states, times, n_train)


def board_rule(windows, model, times, n_train):
    """vibrawatch with the board's k of n over windows (their scores, one array a snapshot),
    carried across snapshots; a snapshot's value is its highest window score, its state the
    one after its last window."""
    state, states = alarm.AlarmState(), []
    for w in windows:
        for s in w:
            alarm.alarm_step(state, float(s), model.threshold, model.clear_threshold,
                             model.alarm_k, model.alarm_n)
        states.append(state.raised)
    return Detector("vibrawatch, board rule (windows)", np.array([w.max() for w in windows]),
                    model.threshold, np.array(states), times, n_train)


def run_to_failure(recordings, train_minutes=DEFAULT_TRAIN_MINUTES, settings=None,
                   name="run"):
    """Fit on the snapshots of the first ``train_minutes``, judge vibrawatch and the baselines
    over all of them (module docstring)."""
    recs = time_order(list(recordings))
    times = snapshot_times(recs)
    if times is None:
        raise RunToFailureError("%s: the snapshots carry no time stamps (PRONOSTIA clock "
                                "columns, IMS file names), so the time to failure is unknown"
                                % name)
    if not train_minutes > 0:
        raise RunToFailureError("--train-minutes must be above 0, e.g. %g"
                                % DEFAULT_TRAIN_MINUTES)
    n_train = int(np.sum(times < 60.0 * train_minutes))
    if n_train < 2 or n_train > len(recs) - 2:
        raise RunToFailureError(
            "%s: %d of %d snapshots fall in the first %g min: the training part needs some "
            "and the run must go on after it; change --train-minutes (the run lasts %.1f min)"
            % (name, n_train, len(recs), train_minutes, times[-1] / 60.0))
    model, report = fit(recs[:n_train], settings or FitSettings())
    cfg = F.FeatureConfig.from_model(model)
    windows = [model.mahalanobis(F.extract(r.samples, cfg, r.scale)) for r in recs]
    scores = np.array([recording_score(w) for w in windows])
    k, n = model.alarm_k, model.alarm_n
    states = alarm.alarm_states(scores, model.threshold, model.clear_threshold, k, n)
    stats = [rms_and_kurtosis(r) for r in recs]
    detectors = [Detector("vibrawatch", scores, model.threshold, states, times, n_train),
                 baseline("RMS", np.array([s[0] for s in stats]), n_train, times, k, n),
                 baseline("kurtosis", np.array([s[1] for s in stats]), n_train, times, k, n),
                 board_rule(windows, model, times, n_train)]
    return RunToFailure(name, times, n_train, train_minutes, detectors,
                        report.lines()[:2] + [report.calibration.lines()[0]]
                        if report.calibration else report.lines()[:2], k, n)

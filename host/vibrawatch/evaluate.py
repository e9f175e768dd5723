"""Evaluating a model on labelled recordings: separation, the alarm rule at work, and why.

    ev = evaluate(model, normal=[load("n.wav")], anomalous=[load("f.wav")])
    print("\\n".join(ev.lines()))
    write_report(ev, "out/report")     # report.md with PNG plots

Per window: ROC-AUC and PR-AUC (scikit-learn), recall and the share of normal windows above the
threshold. With the model's alarm rule (alarm.py, as the board runs it): false alarms per hour
of normal data, whether and how fast each faulty recording raised the alarm (latency from the
start of the recording, or from a labelled onset, to the end of the window that raised it).
Per recording too (snapshots: many short recordings, e.g. 0.1 s every 10 s): a recording's score
is the median of its windows' scores (:func:`recording_score`), above the threshold when at
least half its windows are; evaluate counts the normal and the faulty recordings above.
"Why": each window's score is a sum over features, sum_i v_i (P v)_i with v = f - mu and P the
precision (either form: Cholesky or PCA, modelfile.Model.precision); the largest terms name
the channels and bands that made the alarm. With K operating modes, mu and P are those of the
component that gave the window's score (the nearest).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from . import alarm
from . import features as F
from .errors import VibrawatchError
from .recordings import rates_match

TOP_FEATURES = 5
TOP_ALARMS = 5


class EvaluateError(VibrawatchError):
    pass


def check_matches_model(rec, model):
    if rec.channels != model.channels:
        raise EvaluateError(
            "%s has %d channels but model %s expects %d: pick them with --channels"
            % (rec.name, rec.channels, model.model_id, model.channels))
    if not rates_match(rec.rate, model.sample_rate):
        raise EvaluateError(
            "%s is sampled at %g Hz but the model was fitted at %g Hz: features would mean "
            "other frequencies; fit a model at this rate" % (rec.name, rec.rate,
                                                             model.sample_rate))
    cfg = F.FeatureConfig.from_model(model)
    if cfg.n_windows(rec.frames) == 0:
        need = cfg.first_window * cfg.hop + cfg.window
        if not cfg.first_window:
            raise EvaluateError("%s has %d samples, shorter than one window of %d"
                                % (rec.name, rec.frames, model.window))
        raise EvaluateError("%s has %d samples, fewer than the %d that the first window with "
                            "a full zoom history needs" % (rec.name, rec.frames, need))


def recording_score(scores):
    """One score for a recording (a snapshot): the median of its windows' scores, so one odd
    window does not make a snapshot odd; above the threshold when half its windows are."""
    return float(np.median(scores)) if len(scores) else math.nan


def contributions(feats, model):
    """(windows, d) terms v_i (P v)_i that sum to each window's score: v = f - mu_k and P_k
    of the component k that gave it (the nearest, with K operating modes)."""
    feats = np.atleast_2d(np.asarray(feats, np.float64))
    nearest = model.nearest_mode(feats) if model.n_modes > 1 else np.zeros(len(feats), int)
    out = np.empty_like(feats)
    for k in np.unique(nearest):
        rows = nearest == k
        v = feats[rows] - np.asarray(model.modes[k].mu, np.float64)
        out[rows] = v * (v @ model.precision(k))  # P is symmetric
    return out


@dataclass
class Result:
    """One recording scored: its windows, alarm states and what they mean."""

    name: str
    faulty: bool
    scores: np.ndarray = field(repr=False)
    states: np.ndarray = field(repr=False)
    times: np.ndarray = field(repr=False)  # end of each window, seconds from the start
    onset: float = 0.0  # faulty only: when the fault starts
    seconds: float = 0.0
    top: list = field(default_factory=list)  # (row, score, [(feature, share), ...])
    first: int = 0  # window index of row 0 (a zoom block skips the first windows)
    modes: np.ndarray | None = field(default=None, repr=False)  # K > 1: each window's mode

    @property
    def labels(self):
        return (self.times > self.onset) if self.faulty else np.zeros(len(self.scores), bool)

    @property
    def raises(self):
        return alarm.raises(self.states)

    def latency(self):
        """Seconds from the onset to the alarm, None if it never raised after the onset."""
        after = np.nonzero(self.states & self.labels)[0]
        return None if after.size == 0 else float(self.times[after[0]] - self.onset)


@dataclass
class Evaluation:
    model_id: str
    threshold: float
    clear_threshold: float
    alarm_k: int
    alarm_n: int
    results: list

    def _pool(self, faulty):
        rs = [r for r in self.results if r.faulty == faulty]
        if not rs:
            return np.zeros(0), np.zeros(0, bool)
        return (np.concatenate([r.scores for r in rs]), np.concatenate([r.labels for r in rs]))

    def window_metrics(self):
        from sklearn.metrics import average_precision_score, roc_auc_score

        scores = np.concatenate([r.scores for r in self.results])
        labels = np.concatenate([r.labels for r in self.results])
        if labels.all() or not labels.any():
            return {"roc_auc": math.nan, "pr_auc": math.nan}
        return {"roc_auc": float(roc_auc_score(labels, scores)),
                "pr_auc": float(average_precision_score(labels, scores))}

    def normal_summary(self):
        rs = [r for r in self.results if not r.faulty]
        hours = sum(r.seconds for r in rs) / 3600.0
        windows = sum(len(r.scores) for r in rs)
        above = sum(int((r.scores > self.threshold).sum()) for r in rs)
        raised = sum(r.raises for r in rs)
        return {"hours": hours, "windows": windows, "above": above, "raises": raised,
                "per_hour": raised / hours if hours else math.nan}

    def fault_auc(self, result):
        from sklearn.metrics import roc_auc_score

        normal, _ = self._pool(False)
        pos = result.scores[result.labels]
        if normal.size == 0 or pos.size == 0:
            return math.nan
        y = np.r_[np.zeros(normal.size), np.ones(pos.size)]
        return float(roc_auc_score(y, np.r_[normal, pos]))

    def lines(self):
        m = self.window_metrics()
        ns = self.normal_summary()
        out = ["model %s: threshold %.4g (clears below %.4g), alarm %d of %d windows" % (
            self.model_id, self.threshold, self.clear_threshold, self.alarm_k, self.alarm_n),
            "per window: ROC-AUC %.4f, PR-AUC %.4f" % (m["roc_auc"], m["pr_auc"])
            if not math.isnan(m["roc_auc"]) else
            "per window: ROC-AUC and PR-AUC need both normal and faulty windows"]
        if ns["windows"]:
            out.append("normal: %d windows (%.3g h), %d above the threshold (%.2f%%), %d false "
                       "alarms (%.3g per hour)" % (
                           ns["windows"], ns["hours"], ns["above"],
                           100.0 * ns["above"] / ns["windows"], ns["raises"], ns["per_hour"]))
        for faulty in (False, True):
            rs = [r for r in self.results if r.faulty == faulty]
            if len(rs) > 1:
                above = sum(recording_score(r.scores) > self.threshold for r in rs)
                out.append("%s, per recording: %d recordings, %d (%.1f%%) with a median "
                           "window score above the threshold" % (
                               "faulty" if faulty else "normal", len(rs), above,
                               100.0 * above / len(rs)))
        for r in self.results:
            if r.faulty:
                lat = r.latency()
                out.append("faulty %s: recall %.1f%% of %d windows, ROC-AUC %.4f, %s" % (
                    r.name, 100.0 * np.mean(r.scores[r.labels] > self.threshold),
                    int(r.labels.sum()), self.fault_auc(r),
                    "alarm after %.3f s" % lat if lat is not None else "NO ALARM"))
        return out


def evaluate(model, normal=(), anomalous=(), onset=0.0):
    """Score recordings with a model and run its alarm rule over each (fresh at each start)."""
    normal, anomalous = list(normal), list(anomalous)
    if not normal and not anomalous:
        raise EvaluateError("nothing to evaluate: give --normal and/or --anomalous recordings")
    cfg = F.FeatureConfig.from_model(model)
    results = []
    for rec, faulty in [(r, False) for r in normal] + [(r, True) for r in anomalous]:
        check_matches_model(rec, model)
        feats = F.extract(rec.samples, cfg, rec.scale)
        if not np.all(np.isfinite(feats)):
            raise EvaluateError("%s holds NaN or infinite samples: clean the recording first"
                                % rec.name)
        scores = model.mahalanobis(feats)
        states = alarm.alarm_states(scores, model.threshold, model.clear_threshold,
                                    model.alarm_k, model.alarm_n)
        # row j is window first_window + j (earlier windows lack a zoom history)
        index = np.arange(len(scores)) + cfg.first_window
        times = (index * cfg.hop + cfg.window) / cfg.sample_rate
        res = Result(rec.name, faulty, scores, states, times, onset if faulty else 0.0,
                     rec.seconds, first=cfg.first_window)
        res.top = _why(feats, scores, states, model, cfg)
        if model.n_modes > 1:
            res.modes = model.nearest_mode(feats)
        results.append(res)
    return Evaluation(model.model_id, model.threshold, model.clear_threshold, model.alarm_k,
                      model.alarm_n, results)


def _why(feats, scores, states, model, cfg):
    """The highest-scoring windows in alarm, each with its top contributing features."""
    flagged = np.nonzero(states | (scores > model.threshold))[0]
    if flagged.size == 0:
        return []
    picked = flagged[np.argsort(scores[flagged])[::-1][:TOP_ALARMS]]
    terms = contributions(feats[picked], model)
    names = cfg.feature_names()
    out = []
    for row, w in zip(terms, picked):
        order = np.argsort(row)[::-1][:TOP_FEATURES]
        total = row.sum()
        out.append((int(w), float(scores[w]), [(names[i], float(row[i] / total)) for i in order]))
    return out


def write_report(ev, directory, title="vibrawatch evaluation"):
    """report.md with timeline.png, histogram.png and roc.png in ``directory``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    from sklearn.metrics import roc_curve

    from .outputs import atomic_path, make_folder, write_bytes

    out = make_folder(directory, "--report")

    def save(fig, name):  # each file replaced only when complete
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    short = lambda name: Path(name).name  # noqa: E731

    rows = len(ev.results)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.8 * rows + 0.6), squeeze=False,
                             sharey=True)
    for ax, r in zip(axes[:, 0], ev.results):
        ax.semilogy(r.times, np.maximum(r.scores, 1e-3), lw=0.8,
                    color="tab:red" if r.faulty else "tab:blue")
        ax.axhline(ev.threshold, color="k", lw=0.8, ls="--", label="threshold")
        ax.axhline(ev.clear_threshold, color="grey", lw=0.6, ls=":", label="clear")
        for a, b in alarm.alarm_spans(r.states):
            ax.axvspan(r.times[a], r.times[b], color="orange", alpha=0.3, lw=0)
        if r.faulty and r.onset > 0:
            ax.axvline(r.onset, color="tab:red", lw=0.8)
        ax.set_title("%s (%s)" % (short(r.name), "faulty" if r.faulty else "normal"),
                     fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s); orange: alarm raised")
    fig.tight_layout()
    save(fig, "timeline.png")
    plt.close(fig)

    normal, _ = ev._pool(False)
    fault = np.concatenate([r.scores[r.labels] for r in ev.results if r.faulty] or
                           [np.zeros(0)])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    both = np.r_[normal, fault]
    bins = np.geomspace(max(both.min(), 1e-3), both.max() * 1.01, 60) if both.size else 10
    if normal.size:
        ax.hist(normal, bins=bins, alpha=0.6, label="normal", color="tab:blue")
    if fault.size:
        ax.hist(fault, bins=bins, alpha=0.6, label="faulty", color="tab:red")
    ax.axvline(ev.threshold, color="k", ls="--", label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("score (squared Mahalanobis distance)")
    ax.set_ylabel("windows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, "histogram.png")
    plt.close(fig)

    has_roc = normal.size and fault.size
    if has_roc:
        fig, ax = plt.subplots(figsize=(4, 4))
        for r in ev.results:
            if r.faulty:
                y = np.r_[np.zeros(normal.size), np.ones(int(r.labels.sum()))]
                fpr, tpr, _ = roc_curve(y, np.r_[normal, r.scores[r.labels]])
                ax.plot(fpr, tpr, label=short(r.name)[:30])
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        ax.set_xlabel("false positive rate (normal windows)")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=6)
        fig.tight_layout()
        save(fig, "roc.png")
        plt.close(fig)

    md = ["# %s" % title, "", "```"] + ev.lines() + ["```", "",
          "## Scores over time", "", "![timeline](timeline.png)", "",
          "## Scores, normal and faulty", "", "![histogram](histogram.png)", ""]
    if has_roc:
        md += ["## ROC", "", "![roc](roc.png)", ""]
    md += ["## Why did it alarm", "",
           "The top windows above the threshold of each recording, with the features that "
           "contribute most to their score (share of the score; shares can be negative when a "
           "feature moved the other way)%s." % (
               "" if all(r.modes is None for r in ev.results) else
               "; with operating modes, against the mode that gave the score (the nearest)"),
           ""]
    any_top = False
    for r in ev.results:
        for w, s, feats in r.top:
            any_top = True
            mode = "" if r.modes is None else ", mode %d" % r.modes[w]
            md.append("- %s, window %d (t = %.3f s), score %.4g%s: %s" % (
                short(r.name), w + r.first, r.times[w], s, mode,
                ", ".join("%s %.0f%%" % (name, 100 * share) for name, share in feats)))
    if not any_top:
        md.append("No window scored above the threshold.")
    return write_bytes(out / "report.md", ("\n".join(md) + "\n").encode())

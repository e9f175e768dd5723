"""`vibrawatch demo`: the whole pipeline on bundled real data, with no board attached.

1. fit a model on the first 1.5 s of the bundled normal recording (Analog Devices motor rig);
2. build a replay that the model never saw: the last 0.5 s of normal running, then a fault;
3. start an emulated board (MicroPython's unix port, heap capped like a board's) with that
   replay as its sensor, and deploy vwatch and the model to it with mpremote;
4. read the board's report lines as it runs, and summarise: when the alarm rose after the fault
   began, false alarms before it, the board's heap; plus a PNG timeline.

With ``port`` the same runs on a real board, whose own sensor is read instead of the replay.
"""

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from . import fitting, modelfile, protocol, recordings
from .board import Board, BoardError, iter_lines
from .deploy import deploy
from .emulator import EmulatedBoard
from .errors import VibrawatchError
from .outputs import atomic_path, make_folder

DATA = Path(__file__).resolve().parent / "data"
NORMAL = DATA / "adi_1800rpm_normal.wav"
FAULTS = {"outer_race": DATA / "adi_1800rpm_outer_race.wav",
          "imbalance": DATA / "adi_1800rpm_imbalance.wav"}
TRAIN_SECONDS = 1.5
SETTINGS = dict(window=512, hop=256, stats=7)


@dataclass
class DemoResult:
    model_id: str
    onset_s: float
    windows: list = field(default_factory=list)  # protocol.Window, in order
    start: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    rate: float = 0.0
    window: int = 0
    hop: int = 0

    def end_time(self, seq):
        """Time (s, from the replay's start) at which window ``seq`` was complete."""
        return (seq * self.hop + self.window) / self.rate

    @property
    def first_alarm_after_onset(self):
        for w in self.windows:
            if w.alarm and self.end_time(w.seq) > self.onset_s:
                return w
        return None

    @property
    def false_alarm_windows(self):
        """Windows that ended before the fault began and had the alarm raised."""
        return [w for w in self.windows if w.alarm and self.end_time(w.seq) <= self.onset_s]

    def summary(self):
        lines = ["board: model %s, backend %s; heap in use after start-up %s of %s bytes "
                 "(code, model, buffers)" % (
                     self.start.get("model"), self.start.get("backend"),
                     self.start.get("heap_used"),
                     self.start.get("heap_used", 0) + self.start.get("heap_free", 0))]
        lines.append("windows scored on the board: %d (fault begins at %.2f s)"
                     % (len(self.windows), self.onset_s))
        first = self.first_alarm_after_onset
        if first is None:
            lines.append("ALARM: never raised after the fault began (a missed fault!)")
        else:
            lines.append("ALARM: raised at %.3f s, %.0f ms after the fault began (window %d)"
                         % (self.end_time(first.seq), 1000 * (self.end_time(first.seq)
                                                             - self.onset_s), first.seq))
        lines.append("false alarms before the fault: %d windows" % len(self.false_alarm_windows))
        dropped = sum(w.dropped for w in self.windows)
        lines.append("samples dropped by the board: %d" % dropped)
        return lines


def make_replay(fault, out_path):
    """Normal running the model never saw, then the fault: (path, onset in seconds)."""
    normal = recordings.load(NORMAL)
    faulty = recordings.load(FAULTS[fault])
    cut = int(TRAIN_SECONDS * normal.rate)
    x = np.concatenate([np.asarray(normal.samples[cut:]), np.asarray(faulty.samples)])
    with atomic_path(out_path) as tmp:
        scipy.io.wavfile.write(tmp, int(round(normal.rate)), x.astype(np.float32))
    return out_path, (normal.frames - cut) / normal.rate


def fit_demo_model(out_dir, say):
    normal = recordings.load(NORMAL)
    train = recordings.Recording(str(NORMAL) + " (first %.1f s)" % TRAIN_SECONDS, normal.rate,
                                 normal.samples[: int(TRAIN_SECONDS * normal.rate)])
    model, report = fitting.fit([train], fitting.FitSettings(**SETTINGS))
    path = model.write(Path(out_dir) / "demo.vwm")
    for line in report.lines():
        say("  " + line)
    return path


DEMO_MARK = ".vibrawatch-demo"  # in a board-fs the demo made (and may remove again)


def check_demo_folder(out_dir):
    """Refuse an --out folder whose board-fs the demo did not make (it would remove it)."""
    fs = Path(out_dir) / "board-fs"
    earlier_demo = (Path(out_dir) / "demo.vwm").exists()  # a demo's, from before the mark
    if fs.exists() and not (fs / DEMO_MARK).exists() and not earlier_demo:
        raise VibrawatchError("--out %s holds a board-fs folder that the demo did not make, and "
                              "the demo replaces its board-fs; give another --out, e.g. "
                              "--out out/demo" % out_dir)


def run_demo(out_dir="out/demo", port=None, fault="outer_race", say=print, heap="128K",
             windows=None):
    out_dir = make_folder(out_dir, "--out")
    say("1/4 fitting a model on %.1f s of normal running (%s)" % (TRAIN_SECONDS, NORMAL.name))
    model_path = fit_demo_model(out_dir, say)
    model = modelfile.read(model_path)
    replay, onset = make_replay(fault, out_dir / "replay.wav")
    emulator = None
    if port is None:
        fs = out_dir / "board-fs"
        if fs.exists():
            check_demo_folder(out_dir)
            shutil.rmtree(fs)
        fs.mkdir()
        (fs / DEMO_MARK).write_text("made by vibrawatch demo: removed by the next demo run\n")
        shutil.copyfile(replay, fs / "replay.wav")
        emulator = EmulatedBoard(fs, heap=heap)
        port = emulator.start()
        say("2/4 emulated board on %s (heap %s), replaying %.2f s of normal running, then "
            "the %s fault" % (port, heap, onset, fault.replace("_", " ")))
    try:
        with Board(port) as board:
            say("3/4 deploying vwatch and model %s with mpremote" % model.model_id)
            report = deploy(board, model_path, say=lambda s: say("  " + s))
            say("4/4 the board is running; reading its report lines")
            result = DemoResult(model.model_id, onset, rate=model.sample_rate,
                                window=model.window, hop=model.hop)
            result.start = protocol.parse_line(report.start_line)[1]
            collect(board, result, max_windows=windows)
    finally:
        if emulator is not None:
            emulator.stop()
    return result


def collect(board, result, idle_timeout=30.0, max_windows=None):
    """Read report lines until the board stops (the end of the replay) or max_windows."""
    try:
        for line in iter_lines(board, idle_timeout=idle_timeout):
            kind, data = protocol.parse_line(line)
            if kind == "window":
                result.windows.append(data)
                if max_windows is not None and len(result.windows) >= max_windows:
                    return
            elif kind == "stop":
                return
            elif kind == "error":
                raise VibrawatchError("the board reported an error: %s" % data)
            elif kind in ("alarm", "warn"):
                result.events.append((kind, data))
    except BoardError as exc:
        if not result.windows:
            raise
        result.events.append(("warn", str(exc)))


def plot_timeline(result, path, threshold):
    """Scores over time with the threshold, the fault onset and the alarm spans."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([result.end_time(w.seq) for w in result.windows])
    s = np.array([w.score for w in result.windows])
    alarm = np.array([w.alarm for w in result.windows])
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.semilogy(t, s, ".-", lw=0.8, ms=3, label="score on the board")
    ax.axhline(threshold, color="tab:orange", ls="--", label="threshold")
    ax.axvline(result.onset_s, color="k", lw=1, label="fault begins")
    for i in np.flatnonzero(alarm):
        ax.axvspan(t[i] - result.hop / result.rate, t[i], color="tab:red", alpha=0.15, lw=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("squared Mahalanobis distance")
    ax.set_title("vibrawatch demo: model %s on an emulated board (red: alarm raised)"
                 % result.model_id)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def main(args, say=print):
    started = time.monotonic()
    result = run_demo(args.out, port=args.port, fault=args.fault, say=say,
                      windows=args.windows if args.port else None)
    model = modelfile.read(Path(args.out) / "demo.vwm")
    png = plot_timeline(result, Path(args.out) / "timeline.png", model.threshold)
    say("")
    for line in result.summary():
        say(line)
    say("timeline: %s   (demo took %.0f s)" % (png, time.monotonic() - started))
    return 0 if result.first_alarm_after_onset is not None else 1

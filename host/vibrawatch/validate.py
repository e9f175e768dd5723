"""Every command's options and their combinations, checked before any work starts.

One function per command (``CHECKS``); `vibrawatch` runs it right after parsing, so a wrong
option is refused in a second, not after a long fit or a recording, and the message names the
option and a value that works. Output paths are checked here too (vibrawatch.outputs), and an
output that is also an input is refused. Fit's settings are checked by their own table,
fitsettings.ALLOWED, the one check fitting.fit runs too (FitError).

    validate.check(args)   # raises OptionError; commands without a checker pass through
"""

import math
import re
from pathlib import Path

from . import fitsettings, outputs
from .errors import VibrawatchError

MAX_RATE_HZ = 10e6  # no vibration sensor samples faster; a model stores the rate as float32
MAX_CHANNELS = 8  # a model's channels: one byte, and the board's sensors deliver 1 to 8
MAX_SECONDS = 24 * 3600.0
REPORT_FILES = ("report.md", "timeline.png", "histogram.png", "roc.png")  # evaluate --report
HEAP_MIN, HEAP_MAX = 16 * 1024, 64 * 1024 * 1024


class OptionError(VibrawatchError):
    pass


def _refuse(option, value, problem, works):
    raise OptionError("%s %s: %s; e.g. %s" % (option, value, problem, works))


def _finite(value):
    return value is not None and math.isfinite(value)


def check_rate(rate):
    if rate is None:
        return
    if not _finite(rate) or rate <= 0:
        _refuse("--rate", "%g" % rate, "the sample rate must be a positive number of hertz",
                "--rate 20000")
    if rate > MAX_RATE_HZ:
        _refuse("--rate", "%g" % rate, "faster than any vibration sensor (at most %g Hz)"
                % MAX_RATE_HZ, "--rate 20000")


def check_channels(channels):
    if channels is None:
        return
    if any(c < 0 for c in channels):
        _refuse("--channels", ",".join(map(str, channels)), "channel numbers start at 0",
                "--channels 0,1,2")
    if len(channels) > MAX_CHANNELS:
        _refuse("--channels", ",".join(map(str, channels)), "a model takes at most %d channels"
                % MAX_CHANNELS, "--channels 0,1,2")


def channels_for(model, args):
    """Refuse --channels other than those ``model`` was fitted on (format v3's channel map)
    unless --channels-override says that is meant; return the fitted ones (a list) to pick from
    recordings with more channels, or None."""
    fitted = getattr(model, "input_channels", None)
    if fitted is None or getattr(args, "channels_override", False):
        return None
    if args.channels is not None and tuple(args.channels) != tuple(fitted):
        raise OptionError("--channels %s: model %s was fitted on input channels %s, and "
                          "scoring others gives wrong scores; leave --channels out (the model's "
                          "are used), or add --channels-override to score these on purpose"
                          % (",".join(map(str, args.channels)), model.model_id,
                             ",".join(map(str, fitted))))
    return list(fitted)


def check_recording_channels(recs, option="--channels"):
    """After loading: a model holds 1 to 8 channels."""
    for rec in recs:
        if rec.channels > MAX_CHANNELS:
            raise OptionError("%s has %d channels, a model takes at most %d: pick some with "
                              "%s, e.g. %s 0,1,2" % (rec.name, rec.channels, MAX_CHANNELS,
                                                     option, option))


def _inputs(*groups):
    return [p for group in groups for p in (group if isinstance(group, list) else [group])
            if p]


def fit_settings(args):
    """`vibrawatch fit`'s options as FitSettings (--rpm becomes --shaft-hz)."""
    return fitsettings.FitSettings(
        window=args.window, hop=args.window // 2 if args.hop is None else args.hop,
        bands=args.bands,
        layout=args.layout, stats=args.stats, estimator=args.estimator, holdout=args.holdout,
        alarm_k=args.alarm_k, alarm_n=args.alarm_n,
        false_alarms_per_hour=args.false_alarms_per_hour,
        threshold_method=args.threshold_method, cost_miss=args.cost_miss,
        cost_false_alarm=args.cost_false_alarm, pca=args.pca, modes=args.modes,
        zoom=args.zoom, zoom_window=args.zoom_window, zoom_bands=args.zoom_bands,
        shaft_hz=args.rpm / 60.0 if args.rpm is not None else args.shaft_hz,
        epsilon=args.epsilon)


def check_fit(args):
    """The recordings' options here; the fit's settings in one table, fitsettings.ALLOWED."""
    check_rate(args.rate)
    check_channels(args.channels)
    check_rpm(args)
    fitsettings.check(fit_settings(args), args.anomalous)
    outputs.check_file(args.output, "-o", _inputs(args.recordings, args.anomalous))


def check_rpm(args):
    """--rpm (the command line's other way to give --shaft-hz): not both, a positive speed, a
    zoom block to place it in. --shaft-hz itself is checked with the fit's settings."""
    shaft_hz, rpm = args.shaft_hz, args.rpm
    if shaft_hz is not None and rpm is not None:
        raise OptionError("--shaft-hz %g and --rpm %g: give the shaft's speed once, e.g. "
                          "--rpm %g" % (shaft_hz, rpm, rpm))
    if rpm is None:
        return
    if not (_finite(rpm) and rpm > 0):
        _refuse("--rpm", rpm, "the shaft's speed is a positive number", "--rpm 600")
    if args.zoom == "off":
        raise OptionError("--rpm %g places the 1x band of the zoom block, and --zoom off "
                          "leaves it out: drop one of them" % rpm)


def check_score(args):
    check_rate(args.rate)
    check_channels(args.channels)
    if args.csv and args.csv != "-":
        outputs.check_file(args.csv, "--csv", _inputs(args.model, args.recordings))


def check_evaluate(args):
    check_rate(args.rate)
    check_channels(args.channels)
    if getattr(args, "run_to_failure", None):
        check_run_to_failure(args)
        return
    if not args.model:
        raise OptionError("give a model file to evaluate (or --run-to-failure FOLDER)")
    if not args.normal and not args.anomalous:
        raise OptionError("nothing to evaluate: give --normal and/or --anomalous recordings")
    if not (_finite(args.onset) and args.onset >= 0):
        _refuse("--onset", args.onset, "the fault's start is a time in seconds from the start "
                "of each anomalous recording, 0 or more", "--onset 0")
    if args.onset and not args.anomalous:
        raise OptionError("--onset %g applies to anomalous recordings: pass them with "
                          "--anomalous REC..., or leave --onset out" % args.onset)
    if args.report:
        inputs = _inputs(args.model, args.normal, args.anomalous)
        outputs.check_folder(args.report, "--report", inputs)
        if Path(args.report).is_dir():  # the files it will replace there
            for name in REPORT_FILES:
                outputs.check_file(Path(args.report) / name, "--report", inputs)


def check_run_to_failure(args):
    """evaluate --run-to-failure fits its own model: no model or labelled recordings."""
    if args.model or args.normal or args.anomalous:
        raise OptionError("--run-to-failure fits its own model on the run's first "
                          "--train-minutes: leave out MODEL.vwm, --normal and --anomalous")
    if not Path(args.run_to_failure).is_dir():
        raise OptionError("--run-to-failure %s: not a folder of snapshots (PRONOSTIA acc_*.csv "
                          "or IMS files)" % args.run_to_failure)
    if args.train_minutes is not None and not (_finite(args.train_minutes)
                                               and args.train_minutes > 0):
        _refuse("--train-minutes", args.train_minutes, "the fit needs some minutes of the run",
                "--train-minutes 60")
    if args.report:
        outputs.check_folder(args.report, "--report", [args.run_to_failure])


def check_onset(onset, faulty):
    """After loading: the onset lies inside every anomalous recording."""
    for rec in faulty:
        if onset >= rec.seconds:
            _refuse("--onset", "%g" % onset, "%s lasts %.3f s, so the fault would start after "
                    "its end" % (rec.name, rec.seconds), "--onset %g" % (0.5 * rec.seconds))


def parse_heap(text):
    """MicroPython's -X heapsize: bytes, or a number with K or M; None if malformed."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", str(text))
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]


def check_emulate(args):
    size = parse_heap(args.heap)
    if size is None or not HEAP_MIN <= size <= HEAP_MAX:
        _refuse("--heap", args.heap, "a heap is bytes or a number with K or M, between 16K and "
                "64M", "--heap 128K")
    outputs.check_folder(args.fs, "--fs", _inputs(args.replay))
    if args.replay:
        if Path(args.replay).suffix.lower() != ".wav":
            raise OptionError("--replay %s: the board replays WAV files (PCM int16 or float32); "
                              "convert the recording to WAV first" % args.replay)
        if not Path(args.replay).is_file():
            raise OptionError("--replay %s: no such file" % args.replay)
    if args.link:
        link = Path(args.link)
        if link.exists() and not link.is_symlink():
            raise OptionError("--link %s exists and is not a link: the emulator would replace "
                              "it; give another name, e.g. --link vboard" % args.link)
        if not link.is_symlink():
            outputs.check_file(link, "--link")


def check_monitor(args):
    if args.windows is not None and args.windows < 1:
        _refuse("--windows", args.windows, "watch at least 1 window", "--windows 100")
    if args.retries < 0:
        _refuse("--retries", args.retries, "0 or more reconnection attempts", "--retries 3")
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not (_finite(timeout) and timeout > 0):
        _refuse("--timeout", timeout, "seconds to wait for the board's next line",
                "--timeout 30")
    if args.csv:
        outputs.check_file(args.csv, "--csv")


def check_record(args):
    if not (_finite(args.seconds) and 0 < args.seconds <= MAX_SECONDS):
        _refuse("--seconds", args.seconds, "record for more than 0 and at most %g seconds"
                % MAX_SECONDS, "--seconds 10")
    outputs.check_file(args.output, "-o")
    if Path(args.output).suffix.lower() != ".wav":
        _refuse("-o", args.output, "record writes a WAV file", "-o %s"
                % Path(args.output).with_suffix(".wav").name)


def check_demo(args):
    from .demo import check_demo_folder

    outputs.check_folder(args.out, "--out")
    if args.port is None:
        check_demo_folder(args.out)
    if args.windows is not None and args.windows < 1:
        _refuse("--windows", args.windows, "watch at least 1 window", "--windows 200")


def check_deploy(args):
    pass  # the model is read and checked against the board before anything is sent


CHECKS = {"fit": check_fit, "score": check_score, "evaluate": check_evaluate,
          "emulate": check_emulate, "monitor": check_monitor, "record": check_record,
          "demo": check_demo, "deploy": check_deploy}


def check(args):
    """Run the checker of ``args.command``, if it has one."""
    checker = CHECKS.get(getattr(args, "command", None))
    if checker is not None:
        checker(args)

"""The `vibrawatch` command line: per command a handler (cmd_<command>) and a parser builder
(argparse_<command>), paired in COMMANDS; errors as clean messages. Options and their
combinations are checked in validate.py before any work."""

import argparse
import contextlib
import csv
import datetime
import signal
import sys
from pathlib import Path

import numpy as np

from . import __version__
from . import features as F
from . import evaluate, fitting, modelfile, modes, outputs, recordings, scoring
from . import thresholds, validate, zoomrule
from .errors import VibrawatchError
from .runtofailure import DEFAULT_TRAIN_MINUTES

SPARKLINE_MIN_WINDOWS = 8  # recordings with more windows get a sparkline of their own

EPILOG = """\
typical session:
  vibrawatch fit normal1.wav normal2.wav -o pump.vwm   # learn normal operation
  vibrawatch info pump.vwm                             # what the model holds
  vibrawatch score pump.vwm today.wav --csv scores.csv # score new data, window by window
  vibrawatch evaluate pump.vwm --normal n3.wav --anomalous fault.wav --report out/

Recordings: WAV (PCM int16 or float32, any channel count, rate from the header), CSV with a
header row (a first column named 'time' gives the rate), NPY/NPZ with --rate, and the Analog
Devices CbM '*.Wfm.csv' files, CWRU bearing '.mat' files (drive end, fan end), IMS bearing
snapshots (files named like 2003.10.22.12.06.24) and PRONOSTIA snapshots (acc_00001.csv). Feature definitions: docs/features.md.
"""


class HelpFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' where a default exists and the help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or action.default in (None, [], False, argparse.SUPPRESS)):
            return text
        return text + " (default: %(default)s)"


def _channels(text):
    try:
        picked = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected channel numbers like 0,1,2") from None
    if not picked or len(set(picked)) != len(picked):
        raise argparse.ArgumentTypeError("expected distinct channel numbers like 0,1,2")
    return picked


def _modes(text):
    try:
        return modes.parse(text)
    except modes.ModesError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[1]) from None


def _stats(text):
    names = {"none": 0, "rms": 1, "kurtosis": 2, "crest": 4, "all": 7}
    bits = 0
    for name in text.split(","):
        if name.strip() not in names:
            raise argparse.ArgumentTypeError("unknown statistic %r: use %s"
                                             % (name, ",".join(names)))
        bits |= names[name.strip()]
    return bits


def _zoom(text):
    if text in ("off", "auto"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected off, auto or a decimation factor like 16"
                                         ) from None


def _load_all(paths, rate, channels, fitted=None):
    return [_pick(recordings.load(p, rate), channels, fitted) for p in paths]


def _pick(rec, channels, fitted=None):
    """The channels asked for, else those the model was fitted on when the recording has more
    (validate.channels_for has refused any other choice)."""
    if channels is None and fitted is not None and rec.channels > len(fitted):
        channels = fitted
    return rec.select(channels)


def _progress_bar(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety; never a reason to fail
        return None
    return tqdm(total=total, desc=desc, unit="win", disable=None, leave=False, file=sys.stderr)


def cmd_fit(args):
    recs = _load_all(args.recordings, args.rate, args.channels)
    validate.check_recording_channels(recs)
    settings = validate.fit_settings(args)
    faulty = _load_all(args.anomalous, args.rate, args.channels)
    total = sum(max(0, (r.frames - settings.window) // settings.hop + 1) for r in recs)
    bar = _progress_bar(total, "features")
    model, report = fitting.fit(recs, settings, progress=bar.update if bar else None,
                                anomalous=faulty)
    if bar:
        bar.close()
    # The input channels it was fitted on (format v3's channel map): scoring others is refused.
    model.input_channels = tuple(args.channels if args.channels is not None
                                 else range(recs[0].channels))
    model.write(args.output)
    for line in report.lines():
        print(line)
    print("wrote %s (%d bytes, model id %s)"
          % (args.output, Path(args.output).stat().st_size, model.model_id))


def cmd_score(args):
    model = modelfile.read(args.model)
    args.fitted_channels = validate.channels_for(model, args)
    cfg = F.FeatureConfig.from_model(model)
    with contextlib.ExitStack() as stack:
        out = None
        if args.csv == "-":
            out = sys.stdout
        elif args.csv:  # replaced only by a complete table: a failure keeps the old one
            out = stack.enter_context(outputs.atomic_open(args.csv))
        _score_all(args, model, cfg, out)


def _score_all(args, model, cfg, out):
    recs = []
    for path in args.recordings:  # every input checked before the first row is written
        rec = _pick(recordings.load(path, args.rate), args.channels, args.fitted_channels)
        evaluate.check_matches_model(rec, model)
        recs.append((path, rec))
    writer = None
    if out is not None:
        writer = csv.writer(out)
        writer.writerow(["file", "window", "start_s", "score", "above", "flags"])
    print_summary = args.csv != "-"
    if print_summary:
        print("%-40s %8s %8s %10s %10s %10s" % ("recording", "windows", "above", "median",
                                                "max score", "threshold"))
    medians = []
    for path, rec in recs:
        scores, above, flags = scoring.score_recording(model, rec, cfg)  # NaN: not scored
        medians.append(evaluate.recording_score(scores[np.isfinite(scores)]))
        if writer is not None:
            for i, (s, a, f) in enumerate(zip(scores, above, flags), cfg.first_window):
                writer.writerow([path, i, "%.6f" % (i * cfg.hop / cfg.sample_rate),
                                 "%.7g" % s, int(a), int(f)])
        if print_summary:
            print("%-40s %8d %8d %10.2f %10.2f %10.2f" % (
                _short(Path(path).name, 40), len(scores), above.sum(), medians[-1],
                np.nanmax(scores, initial=0.0), model.threshold))
            if len(scores) > SPARKLINE_MIN_WINDOWS:  # a snapshot's few windows: no line
                print("  " + sparkline(scores, model.threshold))
            if np.isnan(scores).any():
                print("  %d windows not scored: they hold NaN or infinite samples (flag 2, "
                      "'?' above)" % np.count_nonzero(np.isnan(scores)))
    if print_summary and len(medians) > 1:
        medians = np.array(medians)
        print("per recording (median window score), in the order given: %d of %d above the "
              "threshold" % (int((medians > model.threshold).sum()), len(medians)))
        print("  " + sparkline(medians, model.threshold))


def cmd_evaluate(args):
    if args.run_to_failure:
        return _run_to_failure(args)
    model = modelfile.read(args.model)
    fitted = validate.channels_for(model, args)
    normal = _load_all(args.normal, args.rate, args.channels, fitted)
    faulty = _load_all(args.anomalous, args.rate, args.channels, fitted)
    validate.check_onset(args.onset, faulty)
    ev = evaluate.evaluate(model, normal, faulty, onset=args.onset)
    for line in ev.lines():
        print(line)
    if args.report:
        try:
            path = evaluate.write_report(ev, args.report)
        except ImportError as exc:
            raise VibrawatchError("the report's plots need matplotlib (%s): pip install "
                                  "'vibrawatch[plots]'" % exc) from exc
        print("wrote %s" % path)


def _run_to_failure(args):
    from . import datasets
    from .runtofailure import run_to_failure

    recs = [r.select(args.channels) for r in
            datasets.load_snapshot_folder(args.run_to_failure, args.rate)]
    minutes = DEFAULT_TRAIN_MINUTES if args.train_minutes is None else args.train_minutes
    run = run_to_failure(recs, minutes, name=str(args.run_to_failure))
    for line in run.lines():
        print(line)
    if args.report:
        Path(args.report).mkdir(parents=True, exist_ok=True)
        try:
            path = run.plot(Path(args.report) / "run-to-failure.png")
        except ImportError as exc:
            raise VibrawatchError("the plot needs matplotlib (%s): pip install "
                                  "'vibrawatch[plots]'" % exc) from exc
        print("wrote %s" % path)


def sparkline(scores, threshold, width=60):
    """Scores as a row of bars, scaled to twice the threshold; '!' marks windows above it."""
    bars = "▁▂▃▄▅▆▇█"
    if len(scores) > width:  # the max of each bucket: a spike must stay visible
        edges = np.linspace(0, len(scores), width + 1).astype(int)
        scores = np.array([np.nan if np.isnan(scores[a:b]).all() else np.nanmax(scores[a:b])
                           for a, b in zip(edges[:-1], edges[1:])])
    cells = []
    for s in scores:
        if s != s:  # not scored: the window held NaN or infinite samples
            cells.append("?")
        elif s > threshold:
            cells.append("!")
        else:
            cells.append(bars[min(len(bars) - 1, int(s / (2 * threshold) * len(bars)))])
    return "".join(cells)


def _short(path, width):
    path = str(path)
    return path if len(path) <= width else "…" + path[-(width - 1):]


def cmd_info(args):
    model = modelfile.read(args.model)
    cfg = F.FeatureConfig.from_model(model)
    size = Path(args.model).stat().st_size
    created = datetime.datetime.fromtimestamp(model.created, datetime.timezone.utc)
    hz = model.sample_rate / model.window
    rows = [
        ("file", "%s (%d bytes, format v%d)" % (args.model, size, model.read_version)),
        ("model id", model.model_id),
        ("created", created.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("sample rate", "%g Hz" % model.sample_rate),
        ("window", "%d samples (%.1f ms), bin width %.3g Hz" % (
            model.window, 1000.0 * model.window / model.sample_rate, hz)),
        ("hop", "%d samples (%.1f ms)" % (model.hop, 1000.0 * model.hop / model.sample_rate)),
        ("channels", str(model.channels)),
        ("bands", "%d, edges (bins) %s" % (model.bands, " ".join(map(str, model.edges)))),
        ("statistics", ", ".join(F.STAT_NAMES[b] for b in F.stat_bits(model.stats)) or "none"),
        ("zoom", _zoom_info(cfg)),
        ("features", str(model.n_features)),
        ("modes", "1 Gaussian component" if model.n_modes == 1 else
         "%d Gaussian components (operating modes), %d bytes of arrays each; a window scores "
         "its distance to the nearest" % (model.n_modes, 4 * modelfile.array_floats(
             model.n_features, model.components))),
        ("pca", "%d components: precision diag(w) + A^T diag(g) A" % model.components
         if model.components else "none (p = 0): full precision, packed Cholesky factor"),
        ("arrays", "%d bytes on the board (%d without PCA)" % (
            model.array_bytes, model.array_bytes + 4 * model.n_modes * (
                modelfile.array_floats(model.n_features)
                - modelfile.array_floats(model.n_features, model.components)))
         if model.components else "%d bytes on the board"
         % model.array_bytes),
        ("epsilon", "%.6g" % model.epsilon),
        ("estimator", "%s, %d training windows%s" % (model.estimator, model.n_train,
                                                      ", learned on the board"
                                                      if model.learned else "")),
        ("threshold", "%.6g (clears below %.6g)" % (model.threshold, model.clear_threshold)
         if model.n_train else "none: a template for learning on the board (budget %g false "
         "alarms per hour)" % model.threshold),
        ("alarm rule", "%d of the last %d windows above the threshold" % (
            model.alarm_k, model.alarm_n)),
    ]
    for key, value in rows:
        print("%-12s %s" % (key, value))
    # Per component: residual weights sqrt(w) = 1/(sigma s_i), the scale of what PCA leaves
    # out, or diag L.
    cols, heads = [], []
    for k, mode in enumerate(model.modes):
        tag = "" if model.n_modes == 1 else " %d" % k
        diag = (np.sqrt(mode.w) if model.components
                else np.diag(model.cholesky_factor(k)))
        cols += [mode.mu, diag]
        heads += ["mean" + tag, ("sqrt(w)" if model.components else "1/sd (diag L)") + tag]
    widths = [12, 14] * model.n_modes
    print("\n%-20s" % "feature" + "".join(" %*s" % (w, h) for w, h in zip(widths, heads)))
    for i, name in enumerate(cfg.feature_names()):
        print("%-20s" % name + "".join(" %*.5g" % (w, c[i]) for w, c in zip(widths, cols)))


def _zoom_info(cfg):
    if not cfg.zoom:
        return "none"
    names = cfg.zoom_band_names()
    how, lines = zoomrule.layout_of(cfg.zoom_edges, cfg.zoom_window)
    if how == "1x":  # the 1x band starts a bin below the line (from bin 2)
        edges = [int(e) for e in cfg.zoom_edges]
        ones = [names[edges.index(max(zoomrule.ZOOM_LO_BIN, k - 1))] for k in lines]
        layout = "%s for the shaft's 1x line, the others around it, as fit lays them" % (
            " or ".join(ones))
    else:
        layout = "log layout" if how == "log" else "as the model gives them"
    return ("decimation R = %d, N_z = %d (%.3g Hz bins, %d samples of history); %d bands "
            "(%s): %s" % (cfg.zoom, cfg.zoom_window,
                          cfg.sample_rate / (cfg.zoom * cfg.zoom_window),
                          cfg.zoom * cfg.zoom_window, cfg.zoom_bands, layout, " ".join(names)))


def cmd_emulate(args):
    import shutil

    from .emulator import EmulatedBoard

    if args.replay:
        recordings.load(args.replay)  # refuse an unreadable recording now, not on the board
    fs = outputs.make_folder(args.fs, "--fs")
    if args.replay:
        with outputs.atomic_path(fs / "replay.wav") as tmp:
            shutil.copyfile(args.replay, tmp)
    link = args.link or None
    if link and "/" not in link:
        link = "./" + link  # mpremote takes a bare name for a shortcut, not a path
    board = EmulatedBoard(fs, heap=args.heap, link=link)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a killed emulator tidies up too
    port = board.start()
    print("emulated board on %s (heap %s, filesystem %s%s)" % (
        port, args.heap, fs.resolve(), ", replaying /replay.wav" if args.replay else ""))
    print("try:  mpremote connect %s resume exec \"import sys; print(sys.implementation)\""
          % port)
    print("Ctrl-C stops it.", flush=True)
    try:
        board.wait()
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()


def cmd_deploy(args):
    from .board import Board
    from .deploy import deploy

    bar = None
    try:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="B", unit_scale=True, desc="upload", file=sys.stderr,
                   disable=None, leave=False)
    except ImportError:
        pass
    modelfile.read(args.model)  # a bad model is refused before the port is opened
    settings = _board_settings(args)
    with Board(args.port) as board:
        try:
            report = deploy(board, args.model, compile_mpy=not args.no_compile, progress=bar,
                            settings=settings, umqtt_dir=args.umqtt)
        except BaseException:
            if bar is not None:
                bar.close()
            _leave_detector_running(board, True)  # the old version, untouched or back
            raise
        finally:
            if bar is not None:
                bar.close()
    print("deployed model %s (%d files, %d bytes, %s) to %s" % (
        report.model_id, report.files, report.bytes,
        ".mpy" if report.compiled else "sources", args.port))
    print("board: %s" % report.start_line)


def _board_settings(args):
    """/vwatch.json's contents from deploy's --mqtt/--wifi options; None without --mqtt."""
    if not args.mqtt:
        if args.wifi:
            raise VibrawatchError("--wifi is for reporting over MQTT: give --mqtt URL too")
        return None
    import os

    from .board_settings import mqtt_settings

    wifi = None
    if args.wifi:
        password = os.environ.get("VIBRAWATCH_WIFI_PASSWORD")
        if password is None:
            if not sys.stdin.isatty():
                raise VibrawatchError("the Wi-Fi password for %r: set $VIBRAWATCH_WIFI_PASSWORD"
                                      " (no terminal to ask on)" % args.wifi)
            import getpass

            password = getpass.getpass("Wi-Fi password for %r: " % args.wifi)
        wifi = (args.wifi, password)
    return mqtt_settings(args.mqtt, board_id=args.board_id, wifi=wifi)


def cmd_monitor(args):
    from .monitor import monitor

    code = monitor(args.port, csv_path=args.csv, windows=args.windows, retries=args.retries,
                   idle_timeout=args.timeout)
    if code:
        raise SystemExit(code)


def cmd_demo(args):
    if getattr(args, "fleet", None):
        return _demo_fleet(args)
    from . import demo

    code = demo.main(args)
    if code:
        raise SystemExit(code)


def _demo_fleet(args):
    from . import demo_fleet

    code = demo_fleet.main(args)
    if code:
        raise SystemExit(code)


def cmd_record(args):
    from .board import Board
    from .record import record

    bar = _progress_bar(None, "record")
    if bar is not None:
        bar.unit = "frame"
    with Board(args.port) as board:
        was_running = board.detector_started()  # entering the raw REPL has just stopped it
        try:
            info = record(board, args.seconds, args.output,
                          progress=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
            _leave_detector_running(board, was_running)
    print("wrote %s: %d frames x %d channels at %.6g Hz (in g; scale %.6g g/count), %d samples "
          "dropped by the sensor" % (info.path, info.frames, info.channels, info.rate,
                                     info.scale, info.dropped))


def _leave_detector_running(board, was_running):
    """Restart the board's detector after a command stopped it; say loudly if it is not
    running afterwards (stderr, starting with WARNING)."""
    from .board import BoardError

    if not board.answered:
        print("note: the board never answered, so nothing on it was changed", file=sys.stderr)
        return
    if not was_running:
        print("note: the board's detector was not running before this command; it is still "
              "not (`vibrawatch deploy` or a reset starts it)", file=sys.stderr)
        return
    try:
        ok, line = board.restart_detector()
    except BoardError as exc:
        ok, line = False, str(exc)
    if ok:
        print("board: detector running again: %s" % line, file=sys.stderr)
    else:
        print("WARNING: the board's detector is NOT running: %s; reset the board or deploy "
              "again" % line, file=sys.stderr)


def _template_settings(args):
    return fitting.FitSettings(
        window=args.window, hop=args.hop or args.window // 2, bands=args.bands,
        layout=args.layout, stats=args.stats, estimator="oas", alarm_k=args.alarm_k,
        alarm_n=args.alarm_n, false_alarms_per_hour=args.false_alarms_per_hour)


def cmd_template(args):
    from .learn import template

    model = template(_template_settings(args), args.rate, args.channels)
    model.write(args.output)
    print("wrote template %s: N=%d hop=%d, %d channels at %g Hz, %d bands, %d features, "
          "alarm %d of %d, budget %g false alarms per hour (%d bytes)"
          % (args.output, model.window, model.hop, model.channels, model.sample_rate,
             model.bands, model.n_features, model.alarm_k, model.alarm_n, model.threshold,
             Path(args.output).stat().st_size))


def cmd_learn(args):
    from .board import Board
    from .learn import board_sensor, learn_on_board, template

    with Board(args.port) as board:
        if args.template:
            tpl = modelfile.read(args.template)
        else:
            rate, channels = args.rate, args.channels
            if rate is None or channels is None:
                rate_b, channels_b = board_sensor(board)
                rate, channels = rate or rate_b, channels or channels_b
            tpl = template(_template_settings(args), rate, channels)
        model = learn_on_board(board, args.seconds, tpl, backend=args.backend,
                               idle_timeout=args.idle_timeout)
        model.write(args.output)
        print("wrote %s (%d bytes, model id %s, learned on the board from %d windows)"
              % (args.output, Path(args.output).stat().st_size, model.model_id, model.n_train))
        if not args.no_start:
            lines = board.soft_reset(wait_for="vw1 ", timeout=30)
            print("board: %s" % lines[-1])


def cmd_fleet(args):
    from .fleet_store import FleetStore

    if args.fleet_command == "report":
        from .fleet_report import write_report

        if not Path(args.db).is_file():
            raise VibrawatchError("no fleet database at %s: run `vibrawatch fleet --broker "
                                  "URL --db %s` first" % (args.db, args.db))
        path = write_report(FleetStore(args.db), args.output)
        print("wrote %s" % path)
        return
    if not args.broker:
        raise VibrawatchError("fleet needs --broker mqtt://user:password@host:1883 (or "
                              "`fleet report --db FILE -o DIR`)")
    from . import fleet
    from .broker import parse_url

    url = parse_url(args.broker)
    store = FleetStore(args.db)
    sub = fleet.FleetSubscriber(url, store, client_id=args.client_id, share=args.share)
    sub.connect()
    tty = sys.stdout.isatty()
    print("fleet: subscribed to %s as %s%s, storing in %s" % (
        url, args.client_id, " (shared group %s)" % args.share if args.share else "", args.db),
        flush=True)
    try:
        sub.run(seconds=args.seconds, on_tick=fleet.live_printer(store) if tty else None,
                on_message=None if tty else fleet.event_printer())
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        store.flush()
    print(fleet.render_table(store.boards(), color=tty))
    print("fleet: %d messages, %d rows stored, %d duplicates discarded, %d rejected"
          % (sub.received, store.stored, store.duplicates, store.rejected))
    store.close()


# ---- The parsers: one builder per command (argparse_<command>, as mpremote's), the options
# several commands share in parent parsers, help texts of a line or two; the long explanations
# are in the README.


def _command(sub, name, help, description, parents=()):
    """A command's parser: ``help`` is its line in `vibrawatch --help`."""
    return sub.add_parser(name, help=help, description=description, parents=list(parents),
                          formatter_class=HelpFormatter)


def _recording_options(with_model):
    """--channels and --rate for commands that read recordings; ``with_model``: a model's
    fitted channels are the default, and --channels-override scores others."""
    p = argparse.ArgumentParser(add_help=False)
    if with_model:
        p.add_argument("--channels", type=_channels, metavar="LIST",
                       help="channel numbers to use (default: those the model was fitted on)")
        p.add_argument("--channels-override", action="store_true",
                       help="score --channels other than those the model was fitted on")
    else:
        p.add_argument("--channels", type=_channels, metavar="LIST",
                       help="channel numbers to use, e.g. 0,1,2 (default: all)")
    p.add_argument("--rate", type=float, metavar="HZ",
                   help="sample rate for files without one (NPY/NPZ, CSV without time)")
    return p


def _port_option():
    """--port, for the commands that talk to a board."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--port", required=True,
                   help="the board's serial port, e.g. /dev/ttyACM0 or an emulated ./vboard")
    return p


def _sensor_options(required):
    """The board's sensor, for a template: from the options, or (learn) asked of the board."""
    asked = "" if required else " (default: the board's sensor's)"
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--rate", type=float, required=required, metavar="HZ",
                   help="the sensor's sample rate" + asked)
    p.add_argument("--channels", type=int, required=required,
                   help="the sensor's channel count" + asked)
    return p


def _window_options(bands_help, budget_help):
    """Windows, bands, statistics and the alarm rule: fit's, a template's and learn's."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--window", type=int, default=1024, help="samples per window, a power of two")
    p.add_argument("--hop", type=int, help="samples between window starts (default: window/2)")
    p.add_argument("--bands", type=int, help=bands_help)
    p.add_argument("--layout", choices=("log", "linear"), default="log",
                   help="band widths: log widens with frequency; linear is even")
    p.add_argument("--stats", type=_stats, default=0, metavar="LIST",
                   help="time statistics per channel: none, rms, kurtosis, crest or all "
                   "(comma-separated; default: none)")
    p.add_argument("--alarm-k", type=int, default=3, help="alarm when K of the last N windows")
    p.add_argument("--alarm-n", type=int, default=5, help="... of the last N windows are above")
    p.add_argument("--false-alarms-per-hour", type=float, metavar="X",
                   help=budget_help % thresholds.DEFAULT_FALSE_ALARMS_PER_HOUR)
    return p


def argparse_fit(sub):
    p = _command(sub, "fit", "learn normal operation from recordings, write a model file",
                 "Fit a model of normal vibration; the last --holdout part of the data, in "
                 "time, sets the threshold (README 'The host' and 'Snapshots').",
                 [_recording_options(with_model=False), _window_options(
                     "bands per channel (default: up to %d, at least %d training windows per "
                     "feature)" % (fitting.MAX_AUTO_BANDS, fitting.WINDOWS_PER_FEATURE),
                     "false alarms per hour the threshold allows, out of sample (default %g)")])
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help="normal recordings")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.vwm", help="model file")
    p.add_argument("--estimator", choices=tuple(fitting.ESTIMATORS), default="ledoitwolf",
                   help="covariance: ledoitwolf for few windows, mcd if a few may be bad, "
                   "empirical for many clean ones")
    p.add_argument("--holdout", type=float, default=0.25,
                   help="fraction held out for the threshold, at each recording's end")
    p.add_argument("--threshold-method", choices=("auto", "data", "hotelling", "chi2"),
                   default="auto", help="data (held-out scores), hotelling or chi2 (Gaussian "
                   "theory); auto: data when enough windows are held out")
    p.add_argument("--zoom", type=_zoom, default="auto", metavar="off|auto|R",
                   help="low-frequency zoom block: auto adds one when bins are coarser than "
                   "5 Hz; R decimates by R")
    p.add_argument("--zoom-window", type=int, metavar="NZ",
                   help="zoom spectrum length, a power of two (default: 256)")
    p.add_argument("--zoom-bands", type=int, metavar="BZ",
                   help="zoom bands per channel (default: a third of the bands)")
    p.add_argument("--shaft-hz", type=float, metavar="F",
                   help="the shaft's rotation frequency: the zoom block gives its 1x line a "
                   "band of its own (default: the lowest clear line fit finds in the normal "
                   "data's zoom spectrum, else log bands)")
    p.add_argument("--rpm", type=float, default=None, metavar="RPM",
                   help="the shaft's speed in rpm, instead of --shaft-hz (--rpm 600 is "
                   "--shaft-hz 10)")
    p.add_argument("--anomalous", nargs="+", default=[], metavar="RECORDING",
                   help="faulty recordings: with the costs they choose threshold and k-of-n")
    p.add_argument("--cost-miss", type=float, metavar="C",
                   help="cost of a fault not alarmed within 8 windows (needs --anomalous)")
    p.add_argument("--cost-false-alarm", type=float, metavar="C",
                   help="cost of one false alarm (needs --anomalous)")
    p.add_argument("--pca", type=int, metavar="K",
                   help="keep K principal components plus one noise level: a smaller model "
                   "(README, 'The host': --pca)")
    p.add_argument("--modes", type=_modes, default=modes.AUTO, metavar="auto|K|per-recording",
                   help="operating modes, one Gaussian each (up to %d); default auto (README, "
                   "'Operating modes')" % modes.MAX_MODES)
    p.add_argument("--epsilon", type=float, metavar="E",
                   help="this epsilon instead of docs/features.md's rule (e.g. a board's)")
    return p


def argparse_template(sub):
    p = _command(sub, "template", "write a template: settings for learning on the board",
                 "Write a model file with fit's feature settings and nothing learned, for "
                 "`vibrawatch learn --template` or vwatch.learn(template=) (docs/model-format.md, "
                 "'Templates').", [_sensor_options(required=True), _learning_window_options()])
    p.add_argument("-o", "--output", required=True, metavar="TEMPLATE.vwm")
    return p


def _learning_window_options():
    return _window_options("bands per channel (default 16)",
                           "false-alarm budget the board calibrates for (default %g)")


def argparse_learn(sub):
    p = _command(sub, "learn", "learn normal operation on the board itself",
                 "Run vwatch.learn on a board for --seconds of normal operation, copy the "
                 "learned model back to -o and restart the board on it. A refused or "
                 "interrupted run leaves the board's model as it was.",
                 [_port_option(), _sensor_options(required=False), _learning_window_options()])
    p.add_argument("--seconds", type=float, required=True,
                   help="seconds of normal operation to learn from")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.vwm",
                   help="where the learned model is copied")
    p.add_argument("--template", metavar="TEMPLATE.vwm",
                   help="settings from this template or model (else from the options)")
    p.add_argument("--backend", choices=("ulab", "pure", "q15"),
                   help="feature backend on the board (default: the board's choice)")
    p.add_argument("--no-start", action="store_true",
                   help="do not soft-reset the board into the detector afterwards")
    p.add_argument("--idle-timeout", type=float, default=60.0, metavar="S",
                   help="give up when the board prints nothing for this long")
    return p


def argparse_evaluate(sub):
    p = _command(sub, "evaluate", "measure a model on labelled normal and faulty data",
                 "Score labelled recordings, run the model's alarm rule over each, and print "
                 "ROC-AUC, PR-AUC, recall, false alarms per hour and detection latency. "
                 "--run-to-failure instead fits on the start of a run of snapshots to failure "
                 "(README 'Snapshots and runs to failure').",
                 [_recording_options(with_model=True)])
    p.add_argument("model", metavar="MODEL.vwm", nargs="?")
    p.add_argument("--normal", nargs="+", default=[], metavar="RECORDING",
                   help="recordings of normal operation (not the ones the model was fitted on)")
    p.add_argument("--anomalous", nargs="+", default=[], metavar="RECORDING",
                   help="recordings with a fault")
    p.add_argument("--onset", type=float, default=0.0, metavar="SECONDS",
                   help="when the fault starts in each anomalous recording (latency from here)")
    p.add_argument("--report", metavar="DIR", help="write report.md and PNG plots to DIR "
                   "(with --run-to-failure: run-to-failure.png)")
    p.add_argument("--run-to-failure", metavar="FOLDER",
                   help="a folder of snapshots from new to failed (PRONOSTIA acc_*.csv or IMS "
                   "files): lead time against the RMS and kurtosis baselines")
    p.add_argument("--train-minutes", type=float, metavar="MIN",
                   help="with --run-to-failure: minutes at the start to fit on (default %g)"
                   % DEFAULT_TRAIN_MINUTES)
    return p


def argparse_score(sub):
    p = _command(sub, "score", "score recordings window by window with a model",
                 "Score every window of each recording: the squared Mahalanobis distance to "
                 "normal, and whether it is above the threshold.",
                 [_recording_options(with_model=True)])
    p.add_argument("model", metavar="MODEL.vwm")
    p.add_argument("recordings", nargs="+", metavar="RECORDING")
    p.add_argument("--csv", metavar="OUT", help="write one row per window (file, window, "
                   "start_s, score, above, flags) to OUT; '-' for standard output")
    return p


def argparse_emulate(sub):
    p = _command(sub, "emulate", "run an emulated board that mpremote can talk to",
                 "Start MicroPython's unix port behind a pseudo-terminal, with a board's heap "
                 "cap and a folder as its filesystem; mpremote talks to it as to a board "
                 "(README 'Talking to a board').")
    p.add_argument("--heap", default="128K", help="MicroPython heap size, as on a board")
    p.add_argument("--fs", default="board-fs", metavar="DIR",
                   help="folder that is the board's filesystem (/)")
    p.add_argument("--replay", metavar="REC.wav",
                   help="recording for the board's replay sensor, copied to /replay.wav")
    p.add_argument("--link", default="vboard", metavar="PATH",
                   help="also reach the port through this symlink ('' for none)")
    return p


def argparse_deploy(sub):
    p = _command(sub, "deploy", "put vwatch and a model on a board, verified, atomically",
                 "Upload vwatch (precompiled for the board) and a model, check every file's "
                 "sha256 on the board, swap them into place and check that the board starts. "
                 "A deploy cut off at any point leaves the board on its previous version.",
                 [_port_option()])
    p.add_argument("model", metavar="MODEL.vwm")
    p.add_argument("--no-compile", action="store_true",
                   help="upload .py sources instead of .mpy (the board compiles them: more RAM)")
    p.add_argument("--mqtt", metavar="URL", help="also report over MQTT: mqtt://user:password@"
                   "host:1883 (mqtts:// for TLS; docs/mqtt.md)")
    p.add_argument("--wifi", metavar="SSID", help="Wi-Fi network for boards with network.WLAN "
                   "(password: $VIBRAWATCH_WIFI_PASSWORD or asked)")
    p.add_argument("--board-id", metavar="ID",
                   help="the board's name in topics vibrawatch/<id>/... (default: the MQTT user)")
    p.add_argument("--umqtt", metavar="DIR", help="micropython-lib's umqtt folder, uploaded if "
                   "the board lacks umqtt.simple")
    return p


def argparse_monitor(sub):
    p = _command(sub, "monitor", "watch a board's scores live",
                 "Show a running board's report lines (docs/protocol.md) as bars scaled to "
                 "twice the threshold, alarms highlighted. Exits 1 if the connection is lost "
                 "and does not come back.", [_port_option()])
    p.add_argument("--csv", metavar="LOG", help="also log every window to this CSV file")
    p.add_argument("--windows", type=int, metavar="N",
                   help="stop after N windows (default: run until Ctrl-C)")
    p.add_argument("--retries", type=int, default=3,
                   help="reconnection attempts after the connection is lost")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="a board that prints nothing for this long counts as lost")
    return p


def argparse_demo(sub):
    p = _command(sub, "demo", "the whole pipeline on bundled data, on an emulated board",
                 "Fit on bundled motor data, deploy to an emulated board that replays normal "
                 "running and then a fault, watch its scores and summarise the alarm (PNG "
                 "timeline). Exits 1 if the fault was missed.")
    p.add_argument("--out", default="out/demo", metavar="DIR", help="where files go")
    p.add_argument("--fault", choices=("outer_race", "imbalance"), default="outer_race",
                   help="which bundled fault the replay runs into")
    p.add_argument("--port", help="use this real board (its own sensor) instead")
    p.add_argument("--windows", type=int, default=200,
                   help="with --port: windows to watch before summarising")
    p.add_argument("--fleet", type=int, metavar="N", help="instead: N emulated boards "
                   "reporting over MQTT to a local broker (README 'A fleet of boards')")
    return p


def argparse_record(sub):
    p = _command(sub, "record", "record a board's sensor into a WAV file, losslessly",
                 "Stream raw samples from the board's sensor in checked bursts into a float32 "
                 "WAV in g; a lost or corrupted burst stops with an error, never a damaged file.",
                 [_port_option()])
    p.add_argument("--seconds", type=float, required=True, help="how long to record")
    p.add_argument("-o", "--output", required=True, metavar="REC.wav")
    return p


def argparse_fleet(sub):
    p = _command(sub, "fleet", "gather many boards' scores and alarms over MQTT",
                 "Subscribe to the boards' MQTT reports (docs/mqtt.md), store them in SQLite "
                 "and show a live table; `fleet report` writes score trends and an alarm "
                 "timeline (README 'A fleet of boards').")
    p.add_argument("--broker", metavar="URL", help="mqtt://user:password@host:1883 or mqtts:// "
                   "(password also from $VIBRAWATCH_MQTT_PASSWORD)")
    p.add_argument("--db", default="fleet.db", metavar="FILE", help="SQLite database")
    p.add_argument("--client-id", default="vibrawatch-fleet",
                   help="MQTT client id; its session keeps alarms queued while it is away")
    p.add_argument("--share", metavar="GROUP", help="share the load with this shared-"
                   "subscription group (each member its own --client-id)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    reports = p.add_subparsers(dest="fleet_command", metavar="report")
    r = reports.add_parser("report", help="score trends and alarm timeline of a fleet "
                           "database (PNG + report.md)")
    r.add_argument("--db", required=True, metavar="FILE", help="the fleet's SQLite database")
    r.add_argument("-o", "--output", required=True, metavar="DIR", help="where files go")
    return p


def argparse_info(sub):
    p = _command(sub, "info", "show everything a model file holds",
                 "Print a model file's configuration, threshold and arrays.")
    p.add_argument("model", metavar="MODEL.vwm")
    return p


# Each command: its handler and its parser's builder, in the order `vibrawatch --help` lists.
COMMANDS = {
    "fit": (cmd_fit, argparse_fit),
    "template": (cmd_template, argparse_template),
    "learn": (cmd_learn, argparse_learn),
    "evaluate": (cmd_evaluate, argparse_evaluate),
    "score": (cmd_score, argparse_score),
    "emulate": (cmd_emulate, argparse_emulate),
    "deploy": (cmd_deploy, argparse_deploy),
    "monitor": (cmd_monitor, argparse_monitor),
    "demo": (cmd_demo, argparse_demo),
    "record": (cmd_record, argparse_record),
    "fleet": (cmd_fleet, argparse_fleet),
    "info": (cmd_info, argparse_info),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="vibrawatch", description="Vibration anomaly detection on tiny boards: learn "
        "normal vibration on the host, score it on a MicroPython board.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="vibrawatch " + __version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for handler, build in COMMANDS.values():
        build(sub).set_defaults(handler=handler)
    return parser


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        signal.signal(signal.SIGTERM, _terminated)  # unwind: temporary files go
        validate.check(args)  # every option and combination, before any work
        args.handler(args)
    except VibrawatchError as exc:
        print("vibrawatch: error: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vibrawatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

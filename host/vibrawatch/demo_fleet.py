"""`vibrawatch demo --fleet 3`: three emulated boards report over MQTT to a broker on this
computer; the fleet subscriber stores and shows them; a report is written.

1. a broker on 127.0.0.1: Mosquitto when installed (a user per board, an ACL keeping each
   board under its own topics, a `fleet` reader), else amqtt's embedded broker (anonymous);
2. per board a model of one axis of the bundled normal recording (pump-1 watches X, pump-2 Y,
   pump-3 Z), fitted on its first second, and a replay of the second it did not see (played
   forwards and backwards, so it runs on without a seam); pump-3's replay turns after 5 s,
   over two seconds, into the outer-race fault: the board that develops a fault;
3. each emulated board gets umqtt.simple (from a local micropython-lib or `mip install`) and
   `deploy --mqtt`, and starts reporting; `fleet` stores everything in out/fleet/fleet.db;
4. when pump-3's replay ends (the others run on): the fleet table, the serial lines' drop
   counts (the lines themselves in pump-N-serial.log), and `fleet report`.
"""

import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from . import fitting, modelfile, protocol, recordings
from .board import Board
from .board_settings import mqtt_settings
from .broker import AmqttBroker, Mosquitto, find_mosquitto, parse_url
from .demo import FAULTS, NORMAL
from .deploy import deploy
from .device_files import device_root
from .emulator import EmulatedBoard
from .errors import VibrawatchError
from .fleet import FleetSubscriber, event_printer, render_table
from .fleet_report import write_report
from .fleet_store import FleetStore

TRAIN_S = 1.0
HEALTHY_S = 120.0  # the healthy boards run on after the demo has seen the faulty one end
NORMAL_S = 5.0  # the faulty board's normal running, then its fault develops
FAULT_RAMP_S = 2.0
FAULT_S = 3.0
SETTINGS = dict(window=1024, hop=512, stats=7)
LIB_ENV = "VWATCH_MICROPYTHON_LIB"


def find_umqtt():
    """micropython-lib's umqtt folder on this computer ($VWATCH_MICROPYTHON_LIB, or a
    shared/micropython-lib beside the source checkout), or None."""
    candidates = [os.environ.get(LIB_ENV)]
    root = device_root().parent
    candidates += [root.parent / "shared" / "micropython-lib", root / "shared" / "micropython-lib"]
    for folder in candidates:
        if folder and (Path(folder) / "umqtt" / "simple.py").is_file():
            return Path(folder) / "umqtt"
    return None


def _mirror_loop(x, seconds, rate):
    n = int(seconds * rate)
    parts, forward = [], True
    while sum(len(p) for p in parts) < n:
        parts.append(x if forward else x[::-1])
        forward = not forward
    return np.concatenate(parts)[:n]


def make_board_data(out, index, faulty):
    """(model path, replay path, onset s or None) for board ``index`` (axis = index % 3)."""
    normal = recordings.load(NORMAL)
    axis = index % normal.channels
    x = np.asarray(normal.samples)[:, axis:axis + 1]
    cut = int(TRAIN_S * normal.rate)
    train = recordings.Recording("%s axis %d (first %g s)" % (NORMAL.name, axis, TRAIN_S),
                                 normal.rate, x[:cut])
    model, _ = fitting.fit([train], fitting.FitSettings(**SETTINGS))
    model_path = model.write(out / ("pump-%d.vwm" % (index + 1)))
    replay = _mirror_loop(x[cut:], NORMAL_S if faulty else HEALTHY_S, normal.rate)
    onset = None
    if faulty:
        fault = np.asarray(recordings.load(FAULTS["outer_race"]).samples)[:, axis:axis + 1]
        ramp_n = int(FAULT_RAMP_S * normal.rate)
        base = _mirror_loop(x[cut:], FAULT_RAMP_S, normal.rate)
        a = np.linspace(0, 1, ramp_n)[:, None]
        ramp = (1 - a) * base + a * fault[:ramp_n]
        onset = NORMAL_S
        replay = np.concatenate([replay, ramp, _mirror_loop(fault, FAULT_S, normal.rate)])
    path = out / ("pump-%d.wav" % (index + 1))
    scipy.io.wavfile.write(path, int(normal.rate), replay.astype(np.float32))
    return model_path, path, onset


class SerialLines:
    """Reads an emulated board's serial port in a thread (a pty nobody reads stalls it)."""

    def __init__(self, port):
        self.fd = os.open(port, os.O_RDONLY | os.O_NOCTTY)
        self.lines = []
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        pending = b""
        while not self.done.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                data = os.read(self.fd, 4096) if ready else b""
            except OSError:
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            self.lines += [ln.decode(errors="replace").rstrip("\r") for ln in lines]

    def close(self):
        self.done.set()
        try:
            os.close(self.fd)
        except OSError:
            pass

    def windows(self):
        return [protocol.parse_line(ln)[1] for ln in self.lines if ln.startswith("w,")]


def _install_umqtt(port, fs, say):
    local = find_umqtt()
    if local is not None:
        (fs / "lib" / "umqtt").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local / "simple.py", fs / "lib" / "umqtt" / "simple.py")
        return
    mpremote = Path(sys.executable).parent / "mpremote"
    proc = subprocess.run([str(mpremote if mpremote.exists() else "mpremote"), "connect", port,
                           "mip", "install", "umqtt.simple"], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise VibrawatchError("could not install umqtt.simple on the emulated board (%s): set "
                              "%s to a micropython-lib checkout" % (
                                  proc.stdout.strip().splitlines()[-1:] or proc.stderr, LIB_ENV))
    say("  installed umqtt.simple with mip")


def start_broker(folder, names, say):
    if find_mosquitto():
        users = {n: "pw-" + n + "-" + os.urandom(4).hex() for n in names}
        users["fleet"] = "pw-fleet-" + os.urandom(4).hex()
        broker = Mosquitto(folder, users, readers=["fleet"]).start()
        say("1/4 Mosquitto on 127.0.0.1:%d (a user and an ACL per board; files in %s)"
            % (broker.port, folder))
        return broker, {n: broker.url(n) for n in names}, broker.url("fleet")
    broker = AmqttBroker().start()
    say("1/4 no Mosquitto installed: amqtt's embedded broker on 127.0.0.1:%d (anonymous, "
        "no ACL)" % broker.port)
    return broker, {n: broker.url() for n in names}, broker.url()


def run_fleet_demo(out_dir, count=3, say=print, heap="128K", timeout=120):
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names = ["pump-%d" % (i + 1) for i in range(count)]
    broker, urls, fleet_url = start_broker(out / "broker", names, say)
    boards, readers, onsets = [], [], {}
    store = FleetStore(out / "fleet.db")
    sub = FleetSubscriber(parse_url(fleet_url), store, client_id="vibrawatch-demo-fleet")
    stop = threading.Event()
    events = event_printer()

    def pump_messages():
        while not stop.is_set():
            sub.pump(on_message=events)

    pump = threading.Thread(target=pump_messages, daemon=True)
    try:
        sub.connect()
        pump.start()
        say("2/4 fitting a model per board (pump-N watches axis N of the bundled motor) and "
            "starting %d emulated boards" % count)
        for i, name in enumerate(names):
            model, replay, onset = make_board_data(out, i, faulty=(i == count - 1))
            onsets[name] = onset
            fs = out / (name + "-fs")
            fs.mkdir()
            shutil.copyfile(replay, fs / "replay.wav")
            emu = EmulatedBoard(fs, heap=heap)
            port = emu.start()
            boards.append(emu)
            _install_umqtt(port, fs, say)
            with Board(port) as board:
                say("3/4 deploying to %s (%s)%s" % (name, port, ", which develops a fault at "
                                                    "%g s" % onset if onset else ""))
                deploy(board, model, say=lambda s: say("  " + s),
                       settings=mqtt_settings(urls[name], board_id=name, summary_s=2))
            readers.append(SerialLines(port))
        say("4/4 the boards are running and reporting; live events:")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # until the faulty board's replay ends
            if any(ln.startswith("vw1 stop") for ln in readers[-1].lines):
                break
            time.sleep(0.5)
        time.sleep(1.5)  # the last messages' way to the store
    finally:
        stop.set()
        if pump.is_alive():
            pump.join(timeout=5)
        sub.close()
        store.flush()
        for r in readers:
            r.close()
        for b in boards:
            b.stop()
        broker.stop()
    say("")
    say(render_table(store.boards(), color=sys.stdout.isatty()))
    for n, r in zip(names, readers):
        (out / (n + "-serial.log")).write_text("\n".join(r.lines) + "\n")
    windows = {n: r.windows() for n, r in zip(names, readers)}
    say("serial lines: %s" % ", ".join(
        "%s %d windows, %d samples dropped" % (n, len(w), sum(x.dropped for x in w))
        for n, w in windows.items()))
    report = write_report(store, out / "report")
    say("fleet report: %s; database: %s (%d messages stored, %d duplicates discarded)"
        % (report, store.path, store.stored, store.duplicates))
    raised = {b["id"] for b in store.boards() if any(a[3] for a in store.alarms(b["id"]))}
    store.close()
    return raised, set(names[-1:])


def main(args, say=print):
    started = time.monotonic()
    raised, faulty = run_fleet_demo(Path(args.out) / "fleet", args.fleet, say=say)
    say("boards that raised an alarm: %s (the one with a fault: %s)   (demo took %.0f s)"
        % (", ".join(sorted(raised)) or "none", ", ".join(faulty),
           time.monotonic() - started))
    return 0 if faulty <= raised else 1

"""Emulated boards that report over MQTT, a TCP relay that can lose the network, and a
subscriber thread: what tests/test_mqtt.py builds its scenarios from.

The boards run the real vwatch from device/ and the real umqtt.simple, copied at test time
from micropython-lib beside the project (../shared/micropython-lib, or the folder named by
$VWATCH_MICROPYTHON_LIB) onto the emulated board's filesystem; never into the project.
"""

import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from conftest import ROOT
from device_support import mpy_cross
from vibrawatch import fitting, protocol, recordings
from vibrawatch.emulator import EmulatedBoard

DATA = ROOT / "host" / "vibrawatch" / "data"
LIB_ENV = "VWATCH_MICROPYTHON_LIB"


def micropython_lib():
    """The folder holding umqtt/simple.py, or a pytest skip that says why."""
    for folder in (os.environ.get(LIB_ENV), ROOT.parent / "shared" / "micropython-lib"):
        if folder and (Path(folder) / "umqtt" / "simple.py").is_file():
            return Path(folder)
    pytest.skip("umqtt.simple not found: set %s to a folder holding umqtt/simple.py "
                "(micropython-lib), or put it at ../shared/micropython-lib" % LIB_ENV)


def fit_model(path):
    normal = recordings.load(DATA / "adi_1800rpm_normal.wav")
    train = recordings.Recording("normal", normal.rate, normal.samples[:30000])
    # no zoom block: the window lines are checked from seq 0 (tests/test_zoom.py has the zoom)
    model, _ = fitting.fit([train], fitting.FitSettings(window=512, hop=256, zoom="off"))
    return model.write(path), model


def cycling_replay(path, cycles, fault_frames=8000):
    """Normal running the model never saw (0.5 s) and a fault (0.4 s), ``cycles`` times, then
    normal running again: one alarm raise and one clear per cycle."""
    normal = np.asarray(recordings.load(DATA / "adi_1800rpm_normal.wav").samples)
    fault = np.asarray(recordings.load(DATA / "adi_1800rpm_outer_race.wav").samples)
    parts = []
    for i in range(cycles):
        parts += [normal[30000:], fault[i * 1000:i * 1000 + fault_frames]]
    parts.append(normal[30000:])
    scipy.io.wavfile.write(path, 20000, np.concatenate(parts).astype(np.float32))
    return path


class ReportingBoard:
    """An emulated board running vwatch with /vwatch.json; its serial lines collected."""

    def __init__(self, folder, model, replay, mqtt, mpy_dir, speed=0.25, heap="128K"):
        self.fs = Path(folder)
        lib = self.fs / "lib"
        # precompiled, as `deploy` and `mip install` put them on a board
        shutil.copytree(Path(mpy_dir) / "vwatch", lib / "vwatch")
        (lib / "umqtt").mkdir(parents=True)
        for src in (micropython_lib() / "umqtt").glob("*.py"):
            subprocess.run([mpy_cross(), "-o", str(lib / "umqtt" / (src.stem + ".mpy")),
                            str(src)], check=True)
        shutil.copyfile(model, self.fs / "model.vwm")
        shutil.copyfile(replay, self.fs / "replay.wav")
        (self.fs / "vwatch.json").write_text(json.dumps({"mqtt": mqtt}))
        (self.fs / "main.py").write_text("import vwatch\nvwatch.run(speed=%r)\n" % speed)
        self.board = EmulatedBoard(self.fs, heap=heap)
        self.lines = []
        self._reader = None

    def start(self):
        port = self.board.start()
        self._fd = os.open(port, os.O_RDONLY | os.O_NOCTTY)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        pending = b""
        while True:
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.2)
                if not ready:
                    if self.board._stop.is_set():
                        return
                    continue
                data = os.read(self._fd, 4096)
            except OSError:
                return
            if not data:
                return
            pending += data
            *done, pending = pending.split(b"\n")
            self.lines += [d.decode(errors="replace").rstrip("\r") for d in done]

    def stop(self):
        self.board.stop()
        try:
            os.close(self._fd)
        except OSError:
            pass

    def wait_for(self, text, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        raise AssertionError("the board did not print %r within %g s; it printed:\n%s"
                             % (text, timeout, "\n".join(self.lines[-30:])))

    def windows(self):
        return [protocol.parse_line(ln)[1] for ln in self.lines if ln.startswith("w,")]

    def alarm_events(self):
        """{(seq, 1 or 0)} from the board's own 'vw1 alarm on/off' lines."""
        out = set()
        for ln in self.lines:
            if ln.startswith("vw1 alarm "):
                seq = int(ln.split("seq=")[1].split()[0])
                out.add((seq, 1 if ln.startswith("vw1 alarm on") else 0))
        return out

    def warnings(self):
        return [ln for ln in self.lines if ln.startswith("vw1 warn")]


class Relay:
    """A TCP relay on 127.0.0.1 between boards and the broker that can lose the network.

    cut(): every byte in either direction is swallowed and new connections are accepted
    but never answered, as when a board's Wi-Fi drops (no reset reaches either side);
    restore(): the half-dead connections are closed and new ones relayed again."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.cut_off = False
        self.pairs = []
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def cut(self):
        self.cut_off = True

    def restore(self):
        for a, b in self.pairs:
            for s in (a, b):
                if s is not None:
                    s.close()
        self.pairs = []
        self.cut_off = False

    def close(self):
        self.closed = True
        self.restore()
        self.listener.close()

    def _run(self):
        while not self.closed:
            socks = [self.listener] + [s for pair in self.pairs for s in pair
                                       if s is not None and s.fileno() >= 0]
            try:
                ready, _, _ = select.select(socks, [], [], 0.1)
            except (OSError, ValueError):
                continue
            for s in ready:
                if s is self.listener:
                    try:
                        client, _ = self.listener.accept()
                    except OSError:
                        continue
                    upstream = None
                    if not self.cut_off:
                        upstream = socket.create_connection(("127.0.0.1", self.target))
                    self.pairs.append((client, upstream))
                    continue
                self._forward(s)

    def _forward(self, s):
        for a, b in self.pairs:
            if s is a or s is b:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                other = b if s is a else a
                if not data:
                    for x in (a, b):
                        if x is not None:
                            x.close()
                    self.pairs.remove((a, b))
                elif not self.cut_off and other is not None:
                    try:
                        other.sendall(data)
                    except OSError:
                        pass
                return


class SubscriberThread:
    """A FleetSubscriber pumping into its store in a thread (the in-process `fleet`)."""

    def __init__(self, url, store, **kw):
        from vibrawatch.fleet import FleetSubscriber

        self.sub = FleetSubscriber(url, store, **kw)
        self.store = store
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.sub.connect()
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.sub.pump(wait=0.1)

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=5)
        self.sub.close()
        while self.sub.pump(wait=0.05):
            pass

"""deploy, monitor, record and demo against an emulated board, with the real mpremote."""

import csv
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
import time

import numpy as np
import pytest
import scipy.io.wavfile

from conftest import ROOT
from vibrawatch import fitting, recordings
from vibrawatch.board import Board, BoardError
from vibrawatch.deploy import deploy
from vibrawatch.emulator import EmulatedBoard

DATA = ROOT / "host" / "vibrawatch" / "data"


def vibrawatch_cmd(*args):
    return [sys.executable, "-m", "vibrawatch", *map(str, args)]


def deploy_until_staged(model_path, emulated, files=4, **popen):
    """`vibrawatch deploy` in a child process, frozen (SIGSTOP) just as it asks the board to
    open its file number ``files`` + 1 in the staging folder: ``files`` files are staged and
    the deploy waits on the board, however loaded the machine is. Returns (process, staging
    folder); the caller signals the process and then continues it (SIGCONT)."""
    staged = emulated.fs_dir / "vw.new" / "vwatch"
    opening = b"open('/vw.new/vwatch/"
    frozen = threading.Event()
    seen = {"opened": 0, "tail": b""}
    # Run as a shell's background job, this process ignores SIGINT, and the deploy would
    # inherit that (an ignored signal survives exec): the child gets the default back.
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(vibrawatch_cmd("deploy", model_path, "--port", emulated.port),
                                **popen)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def freeze_at_the_next_file(data):
        # In the emulator's relay, before the board sees ``data``; the tail holds less than
        # one ``opening``, so a request split across two chunks counts once.
        text = seen["tail"] + data
        seen["opened"] += text.count(opening)
        seen["tail"] = text[1 - len(opening):]
        if seen["opened"] > files and not frozen.is_set():
            os.kill(proc.pid, signal.SIGSTOP)
            frozen.set()

    emulated.on_host_input = freeze_at_the_next_file
    deadline = time.monotonic() + 120  # deploy's own waits all end sooner
    try:
        while not frozen.wait(0.1) and proc.poll() is None and time.monotonic() < deadline:
            pass
    finally:
        emulated.on_host_input = None
    if frozen.is_set():
        return proc, staged
    if proc.poll() is None:
        proc.kill()  # two minutes without a fifth file
    out, err = proc.communicate()
    raise AssertionError("the deploy finished (exit %d) before it could be cut off:\n%s%s"
                         % (proc.returncode, out or "", err or ""))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two different models of the bundled normal data: A (N=512) and B (N=256)."""
    folder = tmp_path_factory.mktemp("models")
    normal = recordings.load(DATA / "adi_1800rpm_normal.wav")
    train = recordings.Recording("normal", normal.rate, normal.samples[:30000])
    out = {}
    for name, window in (("A", 512), ("B", 256)):
        model, _ = fitting.fit([train], fitting.FitSettings(window=window, hop=window // 2))
        out[name] = (model.write(folder / ("%s.vwm" % name)), model.model_id)
    return out


@pytest.fixture(scope="module")
def replay_int16(tmp_path_factory):
    """The last 0.5 s of normal running then the outer-race fault, as int16 (full scale 8 g)."""
    normal = recordings.load(DATA / "adi_1800rpm_normal.wav")
    fault = recordings.load(DATA / "adi_1800rpm_outer_race.wav")
    x = np.concatenate([np.asarray(normal.samples[30000:]), np.asarray(fault.samples)])
    pcm = np.clip(np.round(x / 8.0 * 32767), -32768, 32767).astype(np.int16)
    path = tmp_path_factory.mktemp("replay") / "replay.wav"
    scipy.io.wavfile.write(path, 20000, pcm)
    return path


@pytest.fixture
def emulated(tmp_path, tmp_path_factory, replay_int16):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "replay.wav").write_bytes(replay_int16.read_bytes())
    log = tmp_path_factory.mktemp("emulator") / "relay.log"  # not in tmp_path: tests list it
    board = EmulatedBoard(fs, heap="128K", log=log)
    board.start()
    yield board
    board.stop()
    # Shown by pytest only when the test failed: what the relay did last (a silent board),
    # without the lines that only say a write went through
    lines = [ln for ln in log.read_text().splitlines(True)
             if not ln.endswith((" passed on\n", " bytes to the host\n"))]
    print("the emulator's log (%s), last lines:\n%s" % (log, "".join(lines[-100:])))


def start_line(port):
    with Board(port) as board:
        return board.soft_reset(wait_for="vw1 start", timeout=30)[-1]


def test_deploy_installs_verified_files_and_the_board_starts_the_new_model(emulated, models):
    path, model_id = models["A"]
    with Board(emulated.port) as board:
        report = deploy(board, path, say=lambda s: None)
    assert "model=%s" % model_id in report.start_line
    fs = emulated.fs_dir
    assert (fs / "model.vwm").read_bytes() == path.read_bytes()
    assert (fs / "lib" / "vwatch" / "runtime.mpy").is_file()
    # every module precompiled, the sensor drivers' subpackage included (deploy's default)
    lib, pkg = fs / "lib" / "vwatch", ROOT / "device" / "vwatch"
    assert sorted(p.relative_to(lib) for p in lib.rglob("*") if p.is_file()) == sorted(
        p.relative_to(pkg).with_suffix(".mpy") for p in pkg.rglob("*.py"))
    assert "vw_swap.apply()" in (fs / "main.py").read_text()
    assert not (fs / "vw.new").exists() and not (fs / "vw.old").exists()


def test_deploy_cut_off_midway_leaves_the_old_version_running(emulated, models):
    (path_a, id_a), (path_b, id_b) = models["A"], models["B"]
    with Board(emulated.port) as board:
        deploy(board, path_a, say=lambda s: None)
    # Pipes, not DEVNULL: deploy writes a few lines, and a failure must show them.
    proc, staged = deploy_until_staged(path_b, emulated, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    os.kill(proc.pid, signal.SIGKILL)  # the host dies mid-transfer
    proc.wait()
    assert staged.is_dir()  # half an upload is on the board...
    line = start_line(emulated.port)  # ...and the next boot discards it
    assert "model=%s" % id_a in line
    assert not (emulated.fs_dir / "vw.new").exists()
    assert (emulated.fs_dir / "model.vwm").read_bytes() == path_a.read_bytes()
    # And a complete deploy still goes through afterwards.
    out = subprocess.run(vibrawatch_cmd("deploy", path_b, "--port", emulated.port),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "deployed model %s" % id_b in out.stdout and "model=%s" % id_b in out.stdout


def test_deploy_to_a_board_that_disappears_is_a_clear_error(emulated, models):
    path, _ = models["A"]
    errors = []

    def pull_the_plug():
        staged = emulated.fs_dir / "vw.new" / "vwatch"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (staged.is_dir() and any(staged.iterdir())):
            time.sleep(0.01)
        emulated.stop()

    unplug = threading.Thread(target=pull_the_plug)
    unplug.start()
    try:
        with Board(emulated.port) as board:
            deploy(board, path, say=lambda s: None)
    except BoardError as exc:
        errors.append(str(exc))
    unplug.join()
    assert errors and "lost contact with the board" in errors[0]


def test_monitor_shows_scores_and_the_alarm_and_logs_csv(emulated, models, tmp_path):
    # The monitor joins a running board (opening a port drops what was sent before), so the
    # replay is long: 8 s of normal running, then the fault, then the detector stops.
    path, model_id = models["A"]
    normal = recordings.load(DATA / "adi_1800rpm_normal.wav")
    fault = recordings.load(DATA / "adi_1800rpm_outer_race.wav")
    x = np.concatenate([np.asarray(normal.samples)] * 4 + [np.asarray(fault.samples)])
    scipy.io.wavfile.write(emulated.fs_dir / "replay.wav", 20000, x)
    with Board(emulated.port) as board:
        deploy(board, path, say=lambda s: None)
    log = tmp_path / "log.csv"
    out = subprocess.run(vibrawatch_cmd("monitor", "--port", emulated.port, "--csv", log),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ALARM RAISED at window" in out.stdout and "board stopped at window" in out.stdout
    rows = list(csv.DictReader(open(log)))
    seqs = [int(r["seq"]) for r in rows]
    assert len(rows) > 100 and seqs == list(range(seqs[0], seqs[0] + len(rows)))  # no gaps
    # Normal running first, then the fault raises the alarm, which stays up to the end.
    assert int(rows[0]["alarm"]) == 0 and int(rows[-1]["alarm"]) == 1


def test_monitor_exits_nonzero_when_the_board_is_gone(emulated):
    proc = subprocess.Popen(vibrawatch_cmd("monitor", "--port", emulated.port, "--retries",
                                           "1"), stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    emulated.stop()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "gave up after 1 retries" in out


def test_record_returns_exactly_the_samples_of_the_replayed_file(emulated, replay_int16,
                                                                 tmp_path):
    lib = emulated.fs_dir / "lib" / "vwatch"
    lib.mkdir(parents=True)
    for src in (ROOT / "device" / "vwatch").glob("*.py"):
        (lib / src.name).write_bytes(src.read_bytes())
    out = tmp_path / "rec.wav"
    proc = subprocess.run(vibrawatch_cmd("record", "--port", emulated.port, "--seconds", "1.5",
                                         "-o", out), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "30000 frames x 3 channels at 20000 Hz" in proc.stdout
    got = recordings.load(out)
    want = recordings.load(replay_int16)
    assert got.rate == 20000
    np.testing.assert_array_equal(np.asarray(got.samples),
                                  np.asarray(want.samples[:30000]) * np.float32(want.scale))


def test_demo_runs_the_whole_pipeline(tmp_path):
    proc = subprocess.run(vibrawatch_cmd("demo", "--out", tmp_path / "demo"),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ALARM: raised at" in proc.stdout
    assert "false alarms before the fault: 0 windows" in proc.stdout
    assert "heap" in proc.stdout
    assert (tmp_path / "demo" / "timeline.png").stat().st_size > 10_000


def test_mip_installs_the_board_package_from_its_package_json(emulated, tmp_path):
    # Its dependency umqtt.simple (vwatch.mqtt) comes from a package index; here a local one
    # made from micropython-lib beside the project, as no index is reachable from tests.
    from fleet_support import micropython_lib

    index = tmp_path / "index" / "package" / "py" / "umqtt.simple"
    index.mkdir(parents=True)
    (index / "simple.py").write_bytes((micropython_lib() / "umqtt" / "simple.py").read_bytes())
    (index / "latest.json").write_text('{"urls": [["umqtt/simple.py", "simple.py"]]}')
    mpremote = str(Path(sys.executable).parent / "mpremote")
    pkg = ROOT / "device" / "vwatch"
    # The core, then the optional sensor drivers beside it, in one command (README).
    proc = subprocess.run([mpremote, "connect", emulated.port, "mip", "install", "--no-mpy",
                           "--index", str(tmp_path / "index"), str(pkg / "package.json"),
                           str(pkg / "sensors" / "package.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = emulated.fs_dir / "lib" / "vwatch"
    modules = sorted(pkg.rglob("*.py"))
    assert pkg / "sensors" / "lsm9ds1.py" in modules
    for src in modules:
        name = src.relative_to(pkg)
        assert (installed / name).read_bytes() == src.read_bytes(), name
    assert (emulated.fs_dir / "lib" / "umqtt" / "simple.py").is_file()
    # The installed drivers import on the board (their core module, vwatch.sensor, included).
    with Board(emulated.port) as board:
        out = board.exec("from vwatch.sensors.lsm9ds1 import LSM9DS1\n"
                         "from vwatch.sensors.adc import Analog\n"
                         "from vwatch.sensor import Sensor\n"
                         "print(issubclass(LSM9DS1, Sensor), issubclass(Analog, Sensor))")
    assert out.split() == ["True", "True"]

"""The board's side under a user's slips, on an emulated board with the real mpremote: every
wait ends with a message, the detector is left running, a model the board cannot run is
refused before anything changes, a model that fails at start-up gives way to the previous one,
and no user main.py is ever overwritten."""

import os
import subprocess
import time

import numpy as np
import pytest
import scipy.io.wavfile

from conftest import ROOT
from test_board_io import (  # noqa: F401 (fixtures)
    DATA, deploy_until_staged, emulated, models, replay_int16, start_line, vibrawatch_cmd)
from vibrawatch import deploy as deploy_mod
from vibrawatch import fitting, modelfile, recordings
from vibrawatch.board import Board, BoardError, iter_lines
from vibrawatch.deploy import DeployError, deploy
from vibrawatch.emulator import EmulatedBoard


def run(*args, timeout=180):
    return subprocess.run(vibrawatch_cmd(*args), capture_output=True, text=True, timeout=timeout)


def fit_model(path, window=512, channels=None, rate=None, bands=None, hop=None):
    normal = recordings.load(DATA / "adi_1800rpm_normal.wav")
    x = normal.samples[:30000] if channels is None else normal.samples[:30000, channels]
    rec = recordings.Recording("normal", rate or normal.rate, x)
    settings = fitting.FitSettings(window=window, hop=hop or window // 2, bands=bands,
                                   zoom="off")  # the deploy checks, not the zoom block
    model, _ = fitting.fit([rec], settings)
    return model.write(path), model


def windows_arrive(port, within=20.0):
    """Does the board print detector window lines (without being interrupted)?"""
    with Board(port) as board:
        try:
            for line in iter_lines(board, idle_timeout=within):
                if line.startswith("w,"):
                    return True
        except BoardError:
            return False


@pytest.fixture
def mute_port():
    """A serial port whose device never answers: a pseudo-terminal nobody reads."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


# -- every wait ends, and says what the board did last ----------------------------------------

def test_monitor_on_a_silent_board_gives_up_with_what_it_printed_last(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("print('hello from main')\n")  # then the REPL: silence
    with EmulatedBoard(fs, heap="72K") as board:
        time.sleep(1.0)
        proc = run("monitor", "--port", board.port, "--timeout", "2", "--retries", "0",
                   timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "printed nothing for 2 s" in proc.stdout and "gave up" in proc.stdout
    assert "is vwatch running on it?" in proc.stdout


@pytest.mark.parametrize("command", ["deploy", "record"])
def test_a_port_that_never_answers_is_an_error_within_the_timeout(command, mute_port, models,
                                                                  tmp_path):
    args = {"deploy": ("deploy", models["A"][0], "--port", mute_port),
            "record": ("record", "--port", mute_port, "--seconds", "1", "-o",
                       tmp_path / "r.wav")}[command]
    started = time.monotonic()
    proc = run(*args, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "did not answer at the raw REPL within 10 s" in proc.stderr
    assert "it printed nothing" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "r.wav").exists()


# -- the detector is left running -------------------------------------------------------------

def test_record_leaves_the_detector_running(emulated, models, tmp_path):
    path, model_id = models["A"]
    long = np.tile(np.asarray(recordings.load(DATA / "adi_1800rpm_normal.wav").samples), (6, 1))
    scipy.io.wavfile.write(emulated.fs_dir / "replay.wav", 20000, long)  # 12 s of running
    with Board(emulated.port) as board:
        deploy(board, path, say=lambda s: None)
    out = tmp_path / "rec.wav"
    proc = run("record", "--port", emulated.port, "--seconds", "0.5", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "detector running again" in proc.stderr and "model=%s" % model_id in proc.stderr
    assert recordings.load(out).frames == 10000
    assert windows_arrive(emulated.port)


def test_record_says_when_the_detector_was_not_running(emulated, tmp_path):
    lib = emulated.fs_dir / "lib" / "vwatch"
    lib.mkdir(parents=True)
    for src in (ROOT / "device" / "vwatch").glob("*.py"):
        (lib / src.name).write_bytes(src.read_bytes())
    proc = run("record", "--port", emulated.port, "--seconds", "0.2", "-o", tmp_path / "r.wav")
    assert proc.returncode == 0, proc.stderr
    assert "detector was not running before this command; it is still not" in proc.stderr


# -- deploy refuses what the board cannot run, before anything changes ------------------------

@pytest.mark.parametrize("mismatch", ["channels", "rate"])
def test_deploy_refuses_a_model_the_sensor_cannot_feed_and_keeps_the_old_one(
        emulated, models, tmp_path, mismatch):
    path_a, id_a = models["A"]
    with Board(emulated.port) as board:
        deploy(board, path_a, say=lambda s: None)
    if mismatch == "channels":
        bad, _ = fit_model(tmp_path / "two.vwm", channels=[0, 1])
        words = "takes 2 channels but the board's sensor (/replay.wav) delivers 3"
    else:
        bad, _ = fit_model(tmp_path / "slow.vwm", rate=10000.0)
        words = "fitted at 10000 Hz but the board's sensor (/replay.wav) runs at 20000 Hz"
    before = {p: p.read_bytes() for p in emulated.fs_dir.rglob("*") if p.is_file()}
    proc = run("deploy", bad, "--port", emulated.port)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert "nothing was changed on the board" in proc.stderr
    assert "detector running again" in proc.stderr and "model=%s" % id_a in proc.stderr
    after = {p: p.read_bytes() for p in emulated.fs_dir.rglob("*") if p.is_file()}
    assert after == before
    assert "model=%s" % id_a in start_line(emulated.port)


def test_deploy_refuses_a_model_too_big_for_the_heap(tmp_path, replay_int16):  # noqa: F811
    path, model = fit_model(tmp_path / "big.vwm", window=512, bands=48, hop=128)
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "replay.wav").write_bytes(replay_int16.read_bytes())
    with EmulatedBoard(fs, heap="48K") as board:
        proc = run("deploy", path, "--port", board.port)
    assert deploy_mod.heap_need(model, "q15") > 48 * 1024
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "needs about" in proc.stderr and "the board has" in proc.stderr
    assert not (fs / "model.vwm").exists() and not (fs / "vw.new").exists()


# -- a model that fails at start-up gives way to the previous one -----------------------------

def test_a_model_that_fails_at_start_up_falls_back_to_the_previous_one(tmp_path,
                                                                    replay_int16, models):  # noqa: F811
    path_a, id_a = models["A"]
    bad_path, bad = fit_model(tmp_path / "two.vwm", channels=[0, 1])
    fs = tmp_path / "fs"
    (fs / "lib" / "vwatch").mkdir(parents=True)
    for src in (ROOT / "device" / "vwatch").glob("*.py"):
        (fs / "lib" / "vwatch" / src.name).write_bytes(src.read_bytes())
    (fs / "vw_swap.py").write_bytes((ROOT / "device" / "vw_swap.py").read_bytes())
    (fs / "replay.wav").write_bytes(replay_int16.read_bytes())
    (fs / "model.vwm").write_bytes(bad_path.read_bytes())  # as a deploy of it leaves the board
    (fs / "model.prev.vwm").write_bytes(path_a.read_bytes())
    with EmulatedBoard(fs, heap="128K") as board:
        # main.py only now: the first start happens in the soft reset we read.
        (fs / "main.py").write_bytes((ROOT / "device" / "main.py").read_bytes())
        with Board(board.port) as b:
            lines = b.soft_reset(wait_for="vw1 start", timeout=30)
        assert any(ln.startswith("vw1 error") and "2 channels" in ln for ln in lines), lines
        warn = [ln for ln in lines if ln.startswith("vw1 warn model %s failed at start-up"
                                                    % bad.model_id)]
        assert warn and "running the previous model %s" % id_a in warn[0]
        assert lines[-1].endswith("fallback=%s" % bad.model_id)
        assert "model=%s" % id_a in lines[-1]
        assert (fs / "model.vwm").read_bytes() == path_a.read_bytes()
        assert (fs / "model.failed.vwm").read_bytes() == bad_path.read_bytes()
        # The next start runs the previous model directly.
        line = start_line(board.port)
        assert "model=%s" % id_a in line and "fallback" not in line


def test_deploy_reports_a_board_that_fell_back(emulated, models, tmp_path, monkeypatch):
    # A model the host cannot see as bad (here: its check is switched off, as for a sensor the
    # host cannot inspect) fails on the board, which goes back to the previous one by itself.
    path_a, id_a = models["A"]
    with Board(emulated.port) as board:
        deploy(board, path_a, say=lambda s: None)
    bad_path, bad = fit_model(tmp_path / "two.vwm", channels=[0, 1])
    monkeypatch.setattr(deploy_mod, "check_fits_board", lambda *a, **k: None)
    with Board(emulated.port) as board:
        with pytest.raises(DeployError) as err:
            deploy(board, bad_path, say=lambda s: None)
    assert "could not start model %s and went back to its previous model" % bad.model_id \
        in str(err.value)
    assert (emulated.fs_dir / "model.vwm").read_bytes() == path_a.read_bytes()
    assert windows_arrive(emulated.port)


# -- the user's own main.py is never overwritten ----------------------------------------------

def test_a_second_deploy_keeps_the_first_backup_of_the_users_main(emulated, models):
    fs = emulated.fs_dir
    (fs / "main.py").write_text("print('mine 1')\n")
    proc = run("deploy", models["A"][0], "--port", emulated.port)
    assert proc.returncode == 0, proc.stderr
    assert "kept the board's own main.py as /main_before_vibrawatch.py" in proc.stdout
    (fs / "main.py").write_text("print('mine 2')\n")  # the user put their own back
    proc = run("deploy", models["B"][0], "--port", emulated.port)
    assert proc.returncode == 0, proc.stderr
    assert "kept the board's own main.py as /main_before_vibrawatch.2.py" in proc.stdout
    assert (fs / "main_before_vibrawatch.py").read_text() == "print('mine 1')\n"
    assert (fs / "main_before_vibrawatch.2.py").read_text() == "print('mine 2')\n"
    # The model before the last deploy stays on the board for the fallback.
    assert (fs / "model.prev.vwm").read_bytes() == models["A"][0].read_bytes()
    assert modelfile.read(fs / "model.vwm").model_id == models["B"][1]


def test_an_emulated_board_whose_micropython_cannot_start_is_an_error_not_a_dead_port(tmp_path):
    # (`vibrawatch emulate --heap bogus` is refused before this; the emulator checks too.)
    board = EmulatedBoard(tmp_path / "fs", heap="bogus", link=str(tmp_path / "vboard"))
    with pytest.raises(Exception) as err:
        board.start()
    assert "exited at start-up" in str(err.value) and "Invalid command line" in str(err.value)
    assert not os.path.lexists(tmp_path / "vboard")


def test_monitor_replaces_an_old_log_only_when_it_ends(emulated, models, tmp_path):
    path, _ = models["A"]
    long = np.tile(np.asarray(recordings.load(DATA / "adi_1800rpm_normal.wav").samples), (6, 1))
    scipy.io.wavfile.write(emulated.fs_dir / "replay.wav", 20000, long)
    with Board(emulated.port) as board:
        deploy(board, path, say=lambda s: None)
    log = tmp_path / "log.csv"
    log.write_text("the old log\n")
    proc = subprocess.Popen(vibrawatch_cmd("monitor", "--port", emulated.port, "--csv", log,
                                           "--windows", "40"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    seen_old = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if log.read_text() != "the old log\n":  # replaced: only as the monitor ends
            proc.wait(timeout=10)
            break
        seen_old += 1
        time.sleep(0.05)
    assert seen_old > 10  # the old log stayed while windows came in
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    rows = log.read_text().splitlines()
    assert rows[0].startswith("host_time,seq,score") and len(rows) == 41
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fs", "log.csv"]  # no temporary


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_deploy_stopped_midway_leaves_the_old_detector_running(emulated, models, sig):
    import signal

    (path_a, id_a), (path_b, _) = models["A"], models["B"]
    with Board(emulated.port) as board:
        deploy(board, path_a, say=lambda s: None)
    proc, _ = deploy_until_staged(path_b, emulated, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    proc.send_signal(getattr(signal, sig))
    proc.send_signal(signal.SIGCONT)  # it was frozen waiting on the board
    out, err = proc.communicate(timeout=90)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert "detector running again" in err and "model=%s" % id_a in err, err
    assert (emulated.fs_dir / "model.vwm").read_bytes() == path_a.read_bytes()
    assert not (emulated.fs_dir / "vw.new").exists()  # the restart's boot discarded it
    assert windows_arrive(emulated.port)


def test_a_recording_whose_board_falls_silent_ends_with_what_it_printed_last(emulated, tmp_path,
                                                                          monkeypatch):
    from vibrawatch import record as record_mod

    lib = emulated.fs_dir / "lib"
    (lib / "vwatch").mkdir(parents=True)
    for src in (ROOT / "device" / "vwatch").glob("*.py"):
        (lib / "vwatch" / src.name).write_bytes(src.read_bytes())
    # A sensor that announces itself and then never delivers a sample (a hung I2C bus).
    (lib / "stall.py").write_text(
        "class Stall:\n channels = 3\n rate = 1000.0\n scale = 1 / 32768\n dropped = 0\n"
        " def read_into(self, buf, n=None):\n  return 0\n")
    monkeypatch.setattr(record_mod, "IDLE_TIMEOUT_S", 3.0)  # the real one is 20 s
    out = tmp_path / "r.wav"
    with Board(emulated.port) as board:
        with pytest.raises(BoardError) as err:
            record_mod.record(board, 1.0, out, sensor_expr="__import__('stall').Stall()")
    message = str(err.value)
    assert "printed nothing for 3 s" in message and "vw1 rec start rate=1000" in message
    assert not out.exists()
    with Board(emulated.port) as board:  # and the board was interrupted: it answers again
        assert board.eval("1 + 1") == 2

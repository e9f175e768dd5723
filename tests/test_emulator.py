"""The emulated board driven by the real mpremote: its CLI and vibrawatch's adapter."""

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vibrawatch.board import Board, BoardError
from vibrawatch.emulator import HOST_GONE_S, EmulatedBoard

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


@pytest.fixture
def emulated(tmp_path):
    board = EmulatedBoard(tmp_path / "fs", heap="96K")
    board.start()
    yield board
    board.stop()


def mpremote(port, *args, timeout=60):
    proc = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_mpremote_copies_files_into_the_board_folder_with_matching_hashes(emulated, tmp_path):
    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 40)
    mpremote(emulated.port, "resume", "fs", "mkdir", ":/lib")
    mpremote(emulated.port, "resume", "fs", "cp", str(local), ":/lib/payload.bin")
    assert (emulated.fs_dir / "lib" / "payload.bin").read_bytes() == local.read_bytes()
    out = mpremote(emulated.port, "resume", "fs", "sha256sum", ":/lib/payload.bin")
    assert hashlib.sha256(local.read_bytes()).hexdigest() in out
    out = mpremote(emulated.port, "resume", "exec", "import os, sys; print(os.listdir('/'), "
                   "sys.path)")
    assert "['lib']" in out and "'/lib'" in out


def test_soft_reset_starts_a_fresh_interpreter_and_runs_main_py(emulated):
    port = emulated.port
    mpremote(port, "resume", "exec", "import builtins; builtins.marker = 42")
    assert "42" in mpremote(port, "resume", "exec", "print(marker)")
    out = mpremote(port, "resume", "soft-reset", "exec", "print('gone' if 'marker' not in "
                   "dir(__import__('builtins')) else 'kept')")
    assert "gone" in out and emulated.restarts == 1
    # main.py runs after a soft reset in the friendly REPL, as on a board.
    (emulated.fs_dir / "main.py").write_text("print('main says hello')\n")
    with Board(port) as board:
        lines = board.soft_reset(wait_for="main says hello", timeout=20)
    assert any("soft reboot" in line for line in lines)


def test_raw_paste_of_a_large_script(emulated, tmp_path):
    # 40 KB through raw-paste flow control; comments cost the board no heap to compile.
    script = tmp_path / "big.py"
    lines = ["# line %05d of padding that only the transfer has to carry ......\n" % i
             for i in range(600)]
    lines.insert(300, "total = sum(i * i for i in range(2000))\n")
    script.write_text("".join(lines) + "print('total', total)\n")
    assert len(script.read_bytes()) > 40000
    out = mpremote(emulated.port, "resume", "run", str(script), timeout=120)
    assert "total 2664667000" in out


def test_ctrl_c_interrupts_a_busy_board(emulated):
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([MPREMOTE, "connect", emulated.port, "resume", "exec",
                        "while True: pass"], capture_output=True, timeout=5)
    # The next client's Ctrl-C interrupts the loop and gets the raw REPL back.
    assert "alive" in mpremote(emulated.port, "resume", "exec", "print('alive')")


def test_a_board_printing_with_no_host_reading_starts_and_still_answers(tmp_path):
    # A board's USB serial drops what nobody reads and the board runs on. The emulator used
    # to write its output to the host's terminal and wait: a main.py that prints at full speed
    # hung start() itself, and a relay blocked on a full terminal read no Ctrl-C either.
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("i = 0\nwhile True:\n    print('w,%d,12.5,0,0,0,1234' % i)\n"
                                "    i += 1\n")
    board = EmulatedBoard(fs, heap="96K")
    started = threading.Thread(target=board.start, daemon=True)
    started.start()
    started.join(timeout=30)
    try:
        assert not started.is_alive(), "start() did not return"
        time.sleep(HOST_GONE_S + 1)  # nobody reads: the board's output is being dropped
        assert board.dropped > 0
        out = mpremote(board.port, "exec", "print('still', 6 * 7)", timeout=30)
        assert "still 42" in out
        assert board.relay_errors == []
    finally:
        board.stop()


def test_a_board_that_ignores_ctrl_c_is_restarted_at_the_repl(emulated, capfd):
    # The unix port raises KeyboardInterrupt from its SIGINT handler (a longjmp out of any C
    # code); now and then that leaves it alive and silent for good. Frozen (SIGSTOP), the
    # child stands for such a one: it takes the SIGINT and says nothing.
    import os
    import signal
    import time

    (emulated.fs_dir / "main.py").write_text(
        "import time\nwhile True:\n    print('tick')\n    time.sleep(0.05)\n")
    with Board(emulated.port) as board:
        board.soft_reset(wait_for="tick", timeout=20)
    frozen = emulated._child.pid
    os.kill(frozen, signal.SIGSTOP)
    started = time.monotonic()
    with Board(emulated.port) as board:
        assert board.eval("6 * 7") == 42  # within the adapter's 10 s: one retry, a restart
        assert not board.exists("/ticked")
    assert emulated.hung == 1 and emulated._child.pid != frozen
    assert time.monotonic() - started < 10
    assert "the board ignored Ctrl-C" in capfd.readouterr().err
    with pytest.raises(ProcessLookupError):
        os.kill(frozen, 0)  # gone, not left frozen


def test_adapter_runs_code_and_reports_board_errors_clearly(emulated):
    with Board(emulated.port) as board:
        assert board.eval("6 * 7") == 42
        total = board.eval("__import__('gc').mem_free() + __import__('gc').mem_alloc()")
        assert 90_000 < total <= 96 * 1024  # the heap cap is the board's
        with pytest.raises(BoardError, match="MemoryError.*ran out of heap"):
            board.exec("x = bytearray(200000)")
        with pytest.raises(BoardError, match="ZeroDivisionError"):
            board.exec("1/0")
        assert board.eval("1 + 1") == 2  # still usable after errors
        board.makedirs("/lib/vwatch")
        data = b"print('x')\n" * 500
        board.put(data, "/lib/vwatch/x.py")
        assert (emulated.fs_dir / "lib" / "vwatch" / "x.py").read_bytes() == data
        assert board.sha256("/lib/vwatch/x.py") == hashlib.sha256(data).hexdigest()
        board.rename("/lib/vwatch/x.py", "/lib/vwatch/y.py")
        assert board.listdir("/lib/vwatch") == ["y.py"]  # renamed with absolute paths
        assert board.exists("/lib/vwatch/y.py") and not board.exists("/lib/vwatch/x.py")
        board.put(b"VALUE = 7\n", "/lib/vwatch/__init__.py")  # packages import from /lib
        assert board.eval("__import__('vwatch').VALUE") == 7
        version, sub, arch = board.mpy_target()
        assert version == 6 and arch == "x64"


def test_adapter_reports_a_missing_port():
    with pytest.raises(BoardError, match="cannot open /dev/nonexistent"):
        Board("/dev/nonexistent")


def test_emulate_command_serves_until_stopped_and_tidies_up(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "vibrawatch", "emulate", "--fs",
                             str(tmp_path / "fs"), "--heap", "64K", "--link",
                             str(tmp_path / "vboard")], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("emulated board on %s" % (tmp_path / "vboard"))
        out = mpremote(str(tmp_path / "vboard"), "resume", "exec",
                       "import gc; gc.collect(); print(gc.mem_free() + gc.mem_alloc())")
        assert 60_000 < int(out) <= 64 * 1024
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert not (tmp_path / "vboard").exists()

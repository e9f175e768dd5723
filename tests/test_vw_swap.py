"""vw_swap on a (emulated) board: every state a cut-off deploy can leave resolves safely."""

import shutil

import pytest

from conftest import ROOT
from vibrawatch.board import Board
from vibrawatch.emulator import EmulatedBoard


@pytest.fixture
def board(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    shutil.copy(ROOT / "device" / "vw_swap.py", fs / "vw_swap.py")
    emu = EmulatedBoard(fs, heap="64K")
    emu.start()
    with Board(emu.port) as b:
        yield fs, b
    emu.stop()


def install(fs, version, where=""):
    """Lay out one version's files under fs/where (where '' = in place, 'vw.new' = staged)."""
    base = fs / where if where else fs
    code = base / ("vwatch" if where else "lib/vwatch")
    code.mkdir(parents=True)
    (code / "__init__.py").write_text("VERSION = %r\n" % version)
    (base / "model.vwm").write_text("model " + version)
    (base / "main.py").write_text("# main " + version)


def state(fs):
    return ((fs / "lib/vwatch/__init__.py").read_text(), (fs / "model.vwm").read_text(),
            (fs / "main.py").read_text(), (fs / "vw.new").exists(), (fs / "vw.old").exists())


def apply(board):
    return board.eval("__import__('vw_swap').apply()")


def test_nothing_staged_changes_nothing(board):
    fs, b = board
    install(fs, "old")
    assert apply(b) is False
    assert state(fs) == ("VERSION = 'old'\n", "model old", "# main old", False, False)


def test_an_uncommitted_upload_is_thrown_away(board):
    fs, b = board
    install(fs, "old")
    install(fs, "new", "vw.new")  # every file there, but no COMMIT: the upload was cut off
    assert apply(b) is False
    assert state(fs) == ("VERSION = 'old'\n", "model old", "# main old", False, False)


def test_a_committed_upload_replaces_the_old_version(board):
    fs, b = board
    install(fs, "old")
    install(fs, "new", "vw.new")
    (fs / "vw.new" / "COMMIT").write_text("abcd1234")
    assert apply(b) is True
    assert state(fs) == ("VERSION = 'new'\n", "model new", "# main new", False, False)


def test_a_swap_cut_off_halfway_is_completed_on_the_next_run(board):
    fs, b = board
    install(fs, "old")
    install(fs, "new", "vw.new")
    (fs / "vw.new" / "COMMIT").write_text("abcd1234")
    # Power lost after the code moved in and the old model moved out, before the new model
    # moved in: no model in place at all.
    (fs / "vw.old").mkdir()
    (fs / "lib" / "vwatch").rename(fs / "vw.old" / "vwatch")
    (fs / "vw.new" / "vwatch").rename(fs / "lib" / "vwatch")
    (fs / "model.vwm").rename(fs / "vw.old" / "model.vwm")
    assert apply(b) is True
    assert state(fs) == ("VERSION = 'new'\n", "model new", "# main new", False, False)
    assert apply(b) is False  # and running it again is harmless

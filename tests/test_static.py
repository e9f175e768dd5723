"""Static checks, run by mypy as a subprocess (offline, from the test extras):

- device/ against the MicroPython stubs of every port family in pyproject.toml
  ([tool.vibrawatch.micropython-stubs], installed per port by tools/micropython_stubs.py):
  a module, attribute, name or argument that a board lacks fails, as a CPython-only snippet
  proves on every run;
- the board API's stubs (device/vwatch/*.pyi) agree with the code they describe;
- host/ against numpy's own types and the stubs in the test extra ([tool.mypy]).
"""

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUBS_DIR = Path(sys.prefix) / "micropython-stubs"
TYPINGS = ROOT / "typings"  # ulab: it publishes no stubs, so vwatch types what it uses there
CACHE = Path(sys.prefix) / "mypy-cache"

with open(ROOT / "pyproject.toml", "rb") as _f:
    PORTS = sorted(tomllib.load(_f)["tool"]["vibrawatch"]["micropython-stubs"])

DEVICE_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "device").rglob("*.py"))
# Files that cannot run on a port: the unix port has no ADC (its machine.ADC takes no pin).
NOT_ON = {"unix": {"device/vwatch/sensors/adc.py"},
          "nrf": {"device/vwatch/mqtt.py"}}  # nRF52 boards have no network to report over

# What a board lacks fails: a module (import-not-found), an attribute or a name (attr-defined,
# name-defined), an argument (call-arg, call-overload). What mypy guesses about unannotated
# firmware code does not: a variable first set to None, a buffer passed where a stub says
# bytes, a name that takes two types in two branches.
LENIENT = ("assignment", "arg-type", "index", "misc", "union-attr", "var-annotated", "has-type",
           "return-value", "operator")

# Findings in code being written elsewhere, tolerated until it is fixed: (file, error code,
# part of the message). Delete a line when its finding is gone.
KNOWN = [
    ("device/vwatch/sensors/i2c_sensor.py", "attr-defined", '"I2CSensor" has no attribute "_level"'),
    ("device/vwatch/sensors/i2c_sensor.py", "attr-defined", '"I2CSensor" has no attribute "_burst"'),
    # imported only where /vwatch.json names a Wi-Fi network (boards with network.WLAN)
    ("device/vwatch/mqtt.py", "import-not-found", 'module named "network"'),
]

# CPython-only code that a board would only reject when it runs: every line must be reported.
CPYTHON_ONLY = '''\
import os
import time
import math
import subprocess  # expect: import-not-found
import asyncio.subprocess  # expect: import-not-found
import dataclasses  # expect: import-not-found


def f(parts):
    p = os.path.join(*parts)  # expect: attr-defined
    e = os.environ["HOME"]  # expect: attr-defined
    t = time.perf_counter()  # expect: attr-defined
    m = math.prod(parts)  # expect: attr-defined
    return p, e, t, m, time.ticks_ms()
'''

_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<msg>.*?)\s+\[(?P<code>[a-z-]+)\]$")


def _mypy(args, cache=None, env=None):
    # A cache (in the environment, like the stubs) makes the host's second run take seconds;
    # the device runs take two seconds without one (and a cached module may not be reported).
    where = str(CACHE / cache) if cache else os.devnull
    cmd = [sys.executable, "-m", "mypy", "--cache-dir", where,
           "--no-error-summary", "--show-error-codes", "--no-color-output", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (bad flags, crash)
        pytest.fail("mypy exited %d\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def _errors(out, paths):
    # mypy also reports the ports' own stubs (written for pyright); only ours count.
    found = []
    for line in out.splitlines():
        m = _LINE.match(line)
        if m and m["path"] in paths:
            found.append((m["path"], int(m["line"]), m["code"], m["msg"]))
    return found


def mypy_micropython(port, files):
    """mypy's errors in ``files`` (paths relative to the repository) on ``port``'s stubs."""
    stubs = STUBS_DIR / port
    if not (stubs / "stdlib" / "VERSIONS").exists():
        pytest.fail("no MicroPython stubs for %s in %s: run `python tools/micropython_stubs.py` "
                    "(bash tools/dev.sh does it when it sets up .venv)" % (port, stubs))
    # pyproject's [tool.mypy] is the host's; the device's is tests/mypy-device.ini.
    args = ["--config-file", str(ROOT / "tests" / "mypy-device.ini"),
            "--custom-typeshed-dir", str(stubs), *files]
    for code in LENIENT:
        args += ["--disable-error-code", code]
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(stubs), str(TYPINGS)]))
    return _errors(_mypy(args, env=env), set(files))


def _known(err):
    path, _, code, msg = err
    return any(path == p and code == c and part in msg for p, c, part in KNOWN)


@pytest.mark.parametrize("port", PORTS)
def test_device_code_uses_only_what_the_port_has(port, tmp_path):
    # One mypy run per port checks the device code and proves, on a CPython-only snippet in
    # the same run, that the check does catch what a board lacks.
    snippet = tmp_path / "cpython_only.py"
    snippet.write_text(CPYTHON_ONLY)
    files = [f for f in DEVICE_FILES if f not in NOT_ON.get(port, ())]
    found = mypy_micropython(port, files + [str(snippet)])

    real = [e for e in found if e[0] != str(snippet) and not _known(e)]
    assert not real, "device code uses what the %s port lacks:\n%s" % (
        port, "\n".join("%s:%d: %s [%s]" % (p, n, msg, c) for p, n, c, msg in real))

    expected = {(i, line.split("# expect: ")[1])
                for i, line in enumerate(CPYTHON_ONLY.splitlines(), 1) if "# expect: " in line}
    caught = {(n, c) for p, n, c, _ in found if p == str(snippet)}
    assert caught == expected, "on %s, CPython-only lines not caught: %s; unexpected: %s" % (
        port, sorted(expected - caught), sorted(caught - expected))


def test_host_code_type_checks_against_numpy_and_scikit_learn():
    # pyproject.toml [tool.mypy]: host/vibrawatch with numpy's own types, scipy-stubs,
    # scikit-learn-stubs, types-tqdm and types-pyserial from the test extras.
    out = _mypy(["--config-file", str(ROOT / "pyproject.toml")], cache="host")
    assert not out.strip(), "mypy on host/:\n" + out


def _signatures(path):
    # {public top-level function: [(parameter, has a default)]} of a module or a stub
    tree = ast.parse(path.read_text())
    sigs = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            a = node.args
            names = [p.arg for p in a.posonlyargs + a.args]
            defaults = [False] * (len(names) - len(a.defaults)) + [True] * len(a.defaults)
            sigs[node.name] = list(zip(names, defaults))
    return sigs


def test_board_api_stub_matches_the_code():
    # device/vwatch/__init__.pyi is what editors show a board user: every public call of
    # vwatch/__init__.py, with the same parameters and defaults, and nothing it lacks.
    pkg = ROOT / "device" / "vwatch"
    assert _signatures(pkg / "__init__.pyi") == _signatures(pkg / "__init__.py")


def test_board_api_stub_type_checks():
    found = mypy_micropython("rp2", ["device/vwatch/__init__.pyi"])
    assert not found, "device/vwatch/__init__.pyi:\n%s" % "\n".join(map(str, found))

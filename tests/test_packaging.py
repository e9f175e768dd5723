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
    device = {p.name for p in (ROOT / "device" / "vwatch").iterdir() if p.suffix == ".py"}
    assert device and {"vibrawatch/_device/vwatch/" + n for n in device} <= names
    assert "vibrawatch/_device/vwatch/package.json" in names
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


def test_source_checkout_finds_device_folder():
    assert device_files.device_package_dir() == ROOT / "device" / "vwatch"
    assert ROOT / "device" / "vwatch" / "__init__.py" in device_files.device_sources()


def test_mip_package_lists_every_board_module():
    import json

    package = json.loads((ROOT / "device" / "vwatch" / "package.json").read_text())
    listed = {src for _, src in package["urls"]}
    on_disk = {p.name for p in (ROOT / "device" / "vwatch").glob("*.py")}
    assert listed == on_disk
    assert all(dest == "vwatch/" + src for dest, src in package["urls"])

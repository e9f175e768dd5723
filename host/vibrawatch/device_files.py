"""Where the board package `vwatch` lives on this computer, for deploying it to a board.

A wheel carries device/ as data under vibrawatch/_device (vwatch/ with its subpackage
vwatch/sensors/, plus main.py and vw_swap.py that deploy puts at the board's root); a source
checkout (and an editable install) has it at device/ beside host/.
"""

from pathlib import Path

from .errors import VibrawatchError

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (_HERE / "_device", _HERE.parents[1] / "device")


def device_root():
    """The folder holding vwatch/, main.py and vw_swap.py; VibrawatchError when none is found."""
    for folder in _CANDIDATES:
        if (folder / "vwatch" / "__init__.py").is_file() and (folder / "vw_swap.py").is_file():
            return folder
    raise VibrawatchError("the board package vwatch is missing from this installation (looked "
                          "in %s): reinstall vibrawatch" % ", ".join(map(str, _CANDIDATES)))


def device_package_dir():
    """The folder holding vwatch's .py files (and the sensors/ subpackage's folder)."""
    return device_root() / "vwatch"


def device_modules():
    """The board package's modules, the sensors/ subpackage's included, sorted by path."""
    return sorted(device_package_dir().rglob("*.py"))


def device_sources():
    """The board package's source files (modules and mip package.json files), sorted by
    path."""
    return sorted(p for p in device_package_dir().rglob("*") if p.suffix in (".py", ".json"))

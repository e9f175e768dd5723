"""Where the board package `vwatch` lives on this computer, for deploying it to a board.

A wheel carries it as data under vibrawatch/_device/vwatch; a source checkout (and an editable
install) has it at device/vwatch beside host/.
"""

from pathlib import Path

from .errors import VibrawatchError

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (_HERE / "_device" / "vwatch", _HERE.parents[1] / "device" / "vwatch")


def device_package_dir():
    """The folder holding vwatch's .py files; raises VibrawatchError when none is found."""
    for folder in _CANDIDATES:
        if (folder / "__init__.py").is_file():
            return folder
    raise VibrawatchError("the board package vwatch is missing from this installation (looked "
                          "in %s): reinstall vibrawatch" % ", ".join(map(str, _CANDIDATES)))


def device_sources():
    """The board package's source files, sorted by name."""
    return sorted(p for p in device_package_dir().iterdir() if p.suffix in (".py", ".json"))

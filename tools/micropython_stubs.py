"""Install each MicroPython port's type stubs into its own folder, for the static check.

    python tools/micropython_stubs.py          # into <venv>/micropython-stubs/<port>/

The ports' stub packages (pyproject.toml, [tool.vibrawatch.micropython-stubs]) all install
machine.pyi, time.pyi, ... at the top of site-packages, so two of them in one environment
overwrite each other. tools/dev.sh runs this after `pip install`, while PyPI is reachable;
tests/test_static.py then type-checks device/ against every folder without the network.
A folder is reinstalled only when its requirement changes.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUBS_DIR = Path(sys.prefix) / "micropython-stubs"


def wanted():
    """{port: requirement} from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["vibrawatch"]["micropython-stubs"]


def main():
    for port, req in wanted().items():
        target = STUBS_DIR / port
        stamp = target / ".requirement"
        if stamp.exists() and stamp.read_text() == req:
            continue
        print("installing %s into %s" % (req, target), file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
                        "--upgrade", "--target", str(target), req], check=True)
        stamp.write_text(req)


if __name__ == "__main__":
    main()

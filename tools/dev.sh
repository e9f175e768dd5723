#!/usr/bin/env bash
# One entry point for a fresh clone: makes .venv (once, or again when pyproject.toml changes),
# installs vibrawatch with its test extras into it (and the MicroPython ports' type stubs
# beside it, tools/micropython_stubs.py), then runs what you asked for.
#
#   bash tools/dev.sh demo     # the whole pipeline on bundled data and an emulated board
#   bash tools/dev.sh test     # the whole test suite (pytest); extra arguments go to pytest
#   bash tools/dev.sh shell    # a shell with the environment active
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
stamp="$venv/.vibrawatch-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setting up $venv (python3 -m venv; pip install -e '.[test]') ..." >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e ".[test]"
    # Each MicroPython port's type stubs in a folder of their own (see the script)
    "$venv/bin/python" tools/micropython_stubs.py
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)
        # The whole pipeline with no board: fit, emulated board, deploy, alarm, timeline PNG.
        exec vibrawatch demo "$@"
        ;;
    test)
        exec python -m pytest "$@"
        ;;
    shell)
        exec "${SHELL:-bash}" -i
        ;;
    *)
        echo "usage: bash tools/dev.sh demo|test|shell [args...]" >&2
        exit 2
        ;;
esac

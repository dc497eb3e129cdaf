#!/usr/bin/env bash
# Creates the project's virtual environment, after checking that the interpreter can:
# Python 3.11 or newer, with the venv module (Debian and Ubuntu ship it separately).
# As root with apt it installs the missing venv package; otherwise it says the command.
# Usage: bootstrap-venv.sh PYTHON VENV_DIR
set -uo pipefail

python=${1:?usage: bootstrap-venv.sh PYTHON VENV_DIR}
venv=${2:?usage: bootstrap-venv.sh PYTHON VENV_DIR}
need="3.11"
say() { printf 'smicast setup: %s\n' "$*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
    say "no Python interpreter '$python' on PATH. smicast needs Python $need or newer;" \
        "install one (Debian/Ubuntu: apt-get install python3) or name it: make PYTHON=/path/to/python3.12"
    exit 1
fi

version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
if [[ ! $version =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
    say "'$python' did not report a Python version; point PYTHON= at a Python $need or newer:" \
        "make PYTHON=python3.12"
    exit 1
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
if (( major < 3 || (major == 3 && minor < 11) )); then
    say "found Python $version ($python), but smicast needs Python $need or newer." \
        "Install a newer one (for example apt-get install python3.11, or from python.org)" \
        "and point make at it: make run PYTHON=python3.11"
    exit 1
fi

has_venv() { "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; }
package="python${major}.${minor}-venv"  # the versioned package matches any interpreter apt ships
if ! has_venv; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "Python $version has no venv module; installing $package"
        export DEBIAN_FRONTEND=noninteractive
        if ! { apt-get update -qq && apt-get install -y -qq "$package"; } >&2; then
            say "could not install $package; install it by hand: apt-get install $package"
            exit 1
        fi
    fi
    if ! has_venv; then
        say "Python $version ($python) cannot create virtual environments: the venv module" \
            "is missing. Run: sudo apt-get install $package   then run make again."
        exit 1
    fi
fi

# A directory left by an earlier failed attempt has no pip: start it again.
if [[ -d $venv && ! -x $venv/bin/pip ]]; then
    rm -rf -- "$venv"
fi
exec "$python" -m venv "$venv"

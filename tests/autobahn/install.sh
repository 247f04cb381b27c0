#!/usr/bin/env bash
# Install Autobahn|Testsuite (wstest, Python 2.7 only) into a private virtualenv outside the
# repository, with exactly the pinned set in requirements-py27.txt. Idempotent: an install whose
# stamp matches the pins (and whose wstest still runs) is reused. Progress goes to stderr; the
# only line on stdout is the path of the virtualenv's bin directory (holding wstest).
#
# Needs: CPython 2.7 with its headers (found as $GEVENTWS_PYTHON27, python2.7 on PATH, or under
# pyenv), a C compiler (some pins build from sdist), and access to PyPI.
#
# Environment:
#   GEVENTWS_AUTOBAHN_HOME  where to put it (default ~/.cache/geventws/autobahn)
#   GEVENTWS_PYTHON27       the python2.7 interpreter to use
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pins=$here/requirements-py27.txt
home=${GEVENTWS_AUTOBAHN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/geventws/autobahn}
venv=$home/venv
stamp=$venv/.geventws-pins.sha256
virtualenv_pin=virtualenv==16.7.12

# Everything (ours, pip's, virtualenv's) goes to stderr; fd 3 is the real stdout.
exec 3>&1 1>&2

die() {
    echo "autobahn/install.sh: ERROR: $*" >&2
    exit 1
}

say() {
    echo "autobahn/install.sh: $*" >&2
}

[ -f "$pins" ] || die "pins file $pins is missing"
want=$(sha256sum "$pins" | cut -d' ' -f1)

wstest_works() {
    [ -x "$venv/bin/wstest" ] && PYTHONWARNINGS=ignore "$venv/bin/wstest" -a >/dev/null 2>&1
}

mkdir -p "$home" || die "cannot create $home"
# One installer at a time per home (a second one waits, then finds the install done).
if command -v flock >/dev/null 2>&1; then
    exec 4>"$home/.lock"
    flock 4
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && wstest_works; then
    say "reusing $venv (pins ${want:0:12})"
    echo "$venv/bin" >&3
    exit 0
fi

find_python27() {
    local candidate check='import sys; assert sys.version_info[:2] == (2, 7); print(sys.executable)'
    for candidate in \
        "${GEVENTWS_PYTHON27:-}" \
        "$(command -v python2.7 2>/dev/null || true)" \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7.*/bin/python2.7; do
        # The interpreter itself, not a pyenv shim (which fails unless 2.7 is selected, and
        # would make the virtualenv depend on pyenv's selection).
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        if "$candidate" -c "$check" 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

python27=$(find_python27) ||
    die "no CPython 2.7 found (set GEVENTWS_PYTHON27, put python2.7 on PATH, or install it" \
        "with pyenv: pyenv install 2.7.18); Autobahn|Testsuite 0.8.2 runs only on Python 2.7"
say "using $python27"

include=$("$python27" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$include/Python.h" ] ||
    die "$python27 has no headers ($include/Python.h missing); the pins build C extensions" \
        "from sdist (install the python2.7 dev package or use a pyenv-built 2.7)"
cc=${CC:-gcc}
command -v "$cc" >/dev/null 2>&1 ||
    die "no C compiler ($cc) found; the pins build C extensions from sdist (install gcc)"
"$python27" -m pip --version >/dev/null 2>&1 ||
    die "$python27 has no pip (try: $python27 -m ensurepip)"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_USER=0 PYTHONNOUSERSITE=1

# virtualenv 16.x is the last that makes Python 2.7 environments on its own under 2.7; it is
# installed into a private directory of the cache, never into the interpreter's site-packages.
bootstrap=$home/bootstrap
has_virtualenv16='import virtualenv; assert virtualenv.__version__.startswith("16.")'
if ! PYTHONPATH=$bootstrap "$python27" -c "$has_virtualenv16" 2>/dev/null; then
    say "installing $virtualenv_pin into $bootstrap"
    rm -rf "$bootstrap"
    mkdir -p "$bootstrap"
    "$python27" -m pip install --quiet --no-deps --target "$bootstrap" "$virtualenv_pin" ||
        die "could not install $virtualenv_pin for $python27 (is PyPI reachable?)"
fi

say "creating $venv"
rm -rf "$venv"  # a stale or half-made one
PYTHONPATH=$bootstrap "$python27" -m virtualenv --quiet --no-download -p "$python27" "$venv" ||
    die "virtualenv could not create $venv"

say "installing the pinned set ($(grep -c '^[A-Za-z]' "$pins") packages) from $pins"
# --no-deps: exactly the pinned set, nothing resolved on the side; `pip check` then proves the
# set is complete and consistent.
"$venv/bin/python" -m pip install --quiet --no-deps -r "$pins" ||
    die "installing the pinned set failed (see pip's output above)"
"$venv/bin/python" -m pip check || die "the pinned set is inconsistent (pip check)"

wstest_works || die "wstest does not run: $("$venv/bin/wstest" -a 2>&1 | tail -5)"
echo "$want" >"$stamp"
say "installed $(PYTHONWARNINGS=ignore "$venv/bin/wstest" -a 2>&1 | tr '\n' ' ')in $venv"
echo "$venv/bin" >&3

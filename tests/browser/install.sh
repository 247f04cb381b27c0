#!/usr/bin/env bash
# Install what the real-browser tests need, idempotently:
#   * Debian's chromium package (/usr/bin/chromium), through apt-get, when it is missing;
#   * playwright-core, exactly as pinned in package-lock.json, into tests/browser/node_modules
#     (npm ci). Playwright's own browser builds are never downloaded: the tests drive
#     /usr/bin/chromium.
# A second run with everything in place only checks and exits (well under a second). Runs
# without a terminal (CI=true, stdin closed); as root it calls apt-get directly, otherwise
# through `sudo -n`. Everything is reported on stderr; exits non-zero with a message on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
chromium=/usr/bin/chromium
lock=$here/package-lock.json
modules=$here/node_modules
stamp=$modules/.geventws-lock.sha256

exec 1>&2 </dev/null

die() {
    echo "browser/install.sh: ERROR: $*" >&2
    exit 1
}

say() {
    echo "browser/install.sh: $*" >&2
}

# One installer at a time (two test runs starting together: the second waits, then finds the
# install done).
if command -v flock >/dev/null 2>&1; then
    exec 4>"$here/.install.lock"
    flock -w 900 4 || die "another install.sh held $here/.install.lock for 15 minutes"
fi

# --- Chromium, from Debian ---------------------------------------------------------------
if [ ! -x "$chromium" ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "$chromium is missing and there is no apt-get to install Debian's chromium package"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo -n)
    else
        die "$chromium is missing; installing it needs root (or sudo), and neither is available"
    fi
    say "installing Debian's chromium package (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update ||
        die "apt-get update failed"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends chromium ||
        die "apt-get install chromium failed"
    [ -x "$chromium" ] || die "the chromium package is installed but $chromium is not there"
fi
# (Debian's /usr/bin/chromium is a shell wrapper; on some hosts its /dev/shm check prints a
# harmless "[: ...: unexpected operator" on stderr, so only stdout is kept.)
version=$("$chromium" --version 2>/dev/null) ||
    die "$chromium does not run: $("$chromium" --version 2>&1 | tail -5)"
say "using $chromium ($version)"

# --- playwright-core, from npm -----------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not on PATH (Node.js >= 20 is needed)"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
[ -f "$here/package.json" ] || die "$here/package.json is missing"
[ -f "$lock" ] || die "$lock is missing (it is committed; regenerate with" \
    "npm install --package-lock-only in $here)"
want=$(sha256sum "$lock" | cut -d' ' -f1)

playwright_loads() {
    (cd "$here" && node -e 'require("playwright-core").chromium.executablePath' \
        >/dev/null 2>&1)
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && playwright_loads; then
    say "reusing $modules (lock ${want:0:12})"
    exit 0
fi

say "installing playwright-core from $lock (npm ci)"
# playwright-core has no install script that downloads browsers; the variable makes sure
# nothing else does either.
(cd "$here" &&
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) ||
    die "npm ci failed (is the npm registry reachable?)"
playwright_loads || die "playwright-core does not load from $modules after npm ci"
echo "$want" >"$stamp"
say "installed playwright-core $(cd "$here" &&
    node -p 'require("playwright-core/package.json").version') into $modules"

# Shared by scripts/test and scripts/demo: install what is missing, configure, build.
# shellcheck shell=bash

GW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

gw_say() { printf '==> %s\n' "$*" >&2; }

# Install the packages of scripts/packages.txt that are not installed yet.
# apt-get update runs at most once, and only when something is missing.
gw_install_packages() {
    local wanted missing=()
    wanted=$(grep -v '^\s*#' "$GW_ROOT/scripts/packages.txt" | grep -v '^\s*$')
    for p in $wanted; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    gw_say "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The npm packages of tests/unit (lora-packet, the independent LoRaWAN encoder
# that test_lorawan cross-checks against), pinned by tests/unit/package-lock.json.
# Debian's npm conflicts with NodeSource's nodejs (which ships npm itself), so
# the npm package is installed only when the npm command is missing.
gw_install_npm() {
    [ -d "$GW_ROOT/tests/unit/node_modules/lora-packet" ] &&
        [ -d "$GW_ROOT/tests/integration/node_modules/playwright-core" ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        gw_say "installing: npm"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi
    gw_say "installing npm packages of tests/unit (lora-packet)"
    npm ci --prefix "$GW_ROOT/tests/unit" --no-audit --no-fund >/dev/null
    # playwright-core drives Debian's chromium; it downloads no browser of its own
    gw_say "installing npm packages of tests/integration (playwright-core)"
    npm ci --prefix "$GW_ROOT/tests/integration" --no-audit --no-fund >/dev/null
}

# gw_build DIR [cmake args...]
gw_build() {
    local dir=$1
    shift
    cmake -S "$GW_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

# gw_bench_build [cmake args...]: sets $build for a benchmark. Benchmarks build their
# own tree (GW_BENCH_BUILD_DIR, default build/bench); GW_BENCH_PREBUILT=DIR runs the
# binaries already in DIR as they are (scripts/test's smoke run of every benchmark).
gw_bench_build() {
    if [ -n "${GW_BENCH_PREBUILT:-}" ]; then
        build=$GW_BENCH_PREBUILT
        return
    fi
    build=${GW_BENCH_BUILD_DIR:-$GW_ROOT/build/bench}
    gw_build "$build" "$@" >/dev/null
}

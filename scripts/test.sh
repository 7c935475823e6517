#!/usr/bin/env bash
# test.sh - THE test command: lint + the full test suite against real servers.
#
# Usage: scripts/test.sh [--] [CARGO TEST ARGS...]
#   scripts/test.sh                          everything
#   scripts/test.sh -- pop3                  only tests whose name has "pop3"
#   scripts/test.sh -- pop3 -- --nocapture   ...and show their output
#
# Steps: install + start the private Dovecot, Postfix and smtp-sink instances
# (scripts/services.sh, root or sudo), load their POPFERRY_TEST_* variables,
# then cargo fmt --check, clippy with -D warnings, cargo test, and (when no
# test filter is given) the benchmark's ~25 s smoke run against the debug
# build, so bench/ cannot rot, and the fuzz targets' smoke run
# (scripts/fuzz.sh --smoke: 15 s per target, fails on any crash).  The
# services are stopped again on exit, whatever happens.  Exits with the status of the first step that failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$PWD

# One state folder for services.sh and the tests (same default as there).
export POPFERRY_TEST_DIR=${POPFERRY_TEST_DIR:-/var/tmp/popferry-test-$(cksum <<<"$REPO_ROOT" | cut -d" " -f1)}

section() { printf '\n==== %s ====\n' "$*"; }

# services.sh needs root.  Through sudo, pass our POPFERRY_TEST_* overrides
# along explicitly (sudo resets the environment).
SERVICES=("$REPO_ROOT/scripts/services.sh")
if [[ $EUID -ne 0 ]]; then
    keep=()
    while IFS= read -r -d '' kv; do
        [[ $kv == POPFERRY_TEST_* ]] && keep+=("$kv")
    done < <(env -0)
    SERVICES=(sudo env "${keep[@]}" "${SERVICES[@]}")
fi

[[ ${1:-} == -- ]] && shift

section "services: install"
"${SERVICES[@]}" install

stop_services() {
    local rc=$?
    section "services: stop"
    "${SERVICES[@]}" stop || true
    exit "$rc"
}
trap stop_services EXIT

section "services: start"
"${SERVICES[@]}" start
# shellcheck source=/dev/null
. "$POPFERRY_TEST_DIR/env"

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features -- -D warnings

section "cargo test --all-features${*:+ $*}"
cargo test --all-features "$@"

# Every fuzz target for a few seconds (installs cargo-fuzz if missing),
# so the targets keep building and a shallow crash is caught here. Skipped
# with a test filter, like the bench smoke below.
if (($# == 0)); then
    section "scripts/fuzz.sh --smoke"
    "$REPO_ROOT/scripts/fuzz.sh" --smoke
fi

# The scale benchmark's smoke version (bench/README.md): 50 accounts on
# the debug daemon, every check on. `cargo test --bench` builds it in the
# test profile that cargo test has just built, not in release like
# `cargo bench`, which would compile the whole crate a second time.
# The same for the intervals benchmark: a slow server beside a fast one,
# and fixed against adaptive intervals, in seconds.
if (($# == 0)); then
    section "cargo test --bench scale -- --smoke"
    POPFERRY=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/popferry \
        cargo test --all-features --bench scale -- --smoke
    section "cargo test --bench intervals -- --smoke"
    POPFERRY=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/popferry \
        cargo test --all-features --bench intervals -- --smoke
fi

# The benchmark's smoke version (bench/README.md): popferry and the limit
# client on small mailboxes, every run verified. Skipped when cargo test got
# arguments, i.e. when only some tests were asked for. It needs root like
# services.sh, and uses the binary cargo test has just built.
if (($# == 0)); then
    section "bench/run --smoke"
    popferry_bin=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/popferry
    if [[ $EUID -eq 0 ]]; then
        POPFERRY=$popferry_bin "$REPO_ROOT/bench/run" --smoke
    else
        sudo env POPFERRY="$popferry_bin" "$REPO_ROOT/bench/run" --smoke
    fi
fi

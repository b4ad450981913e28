#!/usr/bin/env bash
# Every test, from a fresh machine: installs what the tests need (tests/install-deps.sh, as root),
# checks style, runs the unit and integration tests, checks the unit files and the sysext build,
# then runs the VM suite. The README's test command; CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "install what the tests need"
tests/install-deps.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true
for tool in cargo-fmt cargo-clippy; do
	command -v "$tool" >/dev/null 2>&1 || { echo "run-all: $tool is missing" >&2; exit 2; }
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --locked --workspace

step "systemd-analyze verify (units)"
systemd/verify.sh

step "sysext image (static agent)"
packaging/sysext/build.sh

step "VM test bed"
tests/vm/run.sh "$@"

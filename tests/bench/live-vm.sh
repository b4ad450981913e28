#!/usr/bin/env bash
# Benchmark of the path that matters, on the VM test bed: a compliant `apply` and `check` of the
# full-guide policy on a running guest (systemd, D-Bus, sudo, kmod, SELinux, GRUB), side by side in
# the same boot with the guide's own commands as an idempotent shell script (vm-live/guide.sh),
# the agent's peak memory, and the D-Bus method calls it makes. Boot 1 applies the policy, boot 2
# (SMT off through GRUB) measures. Prints figures and ratios; never fails on timing.
#
#   tests/bench/live-vm.sh [RUNS]        (as root, like tests/vm/run.sh; RUNS defaults to 20)
#
# The agent is the static release build the sysext ships (crt-static glibc, as
# packaging/sysext/build.sh builds it without the musl target); FH_VM_AGENT=PATH measures another.
# Results: target/vm/vm-live/ (artifacts/ holds every run's time in microseconds).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${1:-20}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "live-vm.sh: RUNS must be a positive number" >&2; exit 2; }

if [[ -z ${FH_VM_AGENT:-} ]]; then
	target=x86_64-unknown-linux-gnu
	(cd "$repo" && CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:-} -C target-feature=+crt-static" \
		cargo build --release --locked --target "$target") >&2
	export FH_VM_AGENT=${CARGO_TARGET_DIR:-$repo/target}/$target/release/flatcar-harden
fi
echo "agent: $FH_VM_AGENT ($(stat -c %s "$FH_VM_AGENT") bytes)"

# The scenario, with the policy and the run count, in a directory named after it (run.sh takes the
# scenario's name from the directory): outside tests/vm/scenarios, so CI never runs it.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scenario=$work/vm-live
cp -a "$here/vm-live" "$scenario"
cp "$repo/docs/examples/full-guide.toml" "$scenario/full-guide.toml"
echo "$runs" >"$scenario/runs"

export FH_VM_TIMEOUT=${FH_VM_TIMEOUT:-600}
rc=0
"$repo/tests/vm/run.sh" "$scenario" || rc=$?
out=${CARGO_TARGET_DIR:-$repo/target}/vm/vm-live
if [[ -s $out/guest-phase2.stdout ]]; then
	cat "$out/guest-phase2.stdout"
fi
if ((rc != 0)); then
	echo "live-vm.sh: the bench scenario did not complete (see $out)" >&2
	exit "$rc"
fi

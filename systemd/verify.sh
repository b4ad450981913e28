#!/usr/bin/env bash
# `systemd-analyze verify` on the shipped units (flatcar-harden.service, flatcar-harden-check.service
# and .timer) and their target drop-ins, in a temporary root
# laid out as the sysext lays them out (usr/lib/systemd/system), with the agent at /usr/bin and its
# man pages generated there (`cargo xtask assets`), so that verify's ExecStart= and Documentation=
# checks run for real instead of being switched off.
#
#   systemd/verify.sh [AGENT]   (default: target/debug/flatcar-harden, built if missing)
#
# Clean means: exit status 0 and no output at all. systemd-analyze reports unknown keys, bad values
# and missing dependencies as warnings with exit status 0, so any output counts as a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
agent=${1:-}
if [[ -z $agent ]]; then
	agent=${CARGO_TARGET_DIR:-$repo/target}/debug/flatcar-harden
	[[ -x $agent ]] || (cd "$repo" && cargo build --locked --quiet)
fi
for tool in systemd-analyze man; do
	command -v "$tool" >/dev/null || { echo "verify.sh: $tool not found (apt-get install systemd man-db)" >&2; exit 2; }
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
units=$root/usr/lib/systemd/system
install -D -m 0755 "$agent" "$root/usr/bin/flatcar-harden"
install -D -m 0644 "$here/flatcar-harden.service" "$units/flatcar-harden.service"
install -D -m 0644 "$here/multi-user.target.d/10-flatcar-harden.conf" "$units/multi-user.target.d/10-flatcar-harden.conf"
install -D -m 0644 "$here/flatcar-harden-check.service" "$units/flatcar-harden-check.service"
install -D -m 0644 "$here/flatcar-harden-check.timer" "$units/flatcar-harden-check.timer"
install -D -m 0644 "$here/timers.target.d/10-flatcar-harden.conf" "$units/timers.target.d/10-flatcar-harden.conf"
# The units the unit depends on (sysinit.target, basic.target, dbus.service, …) are the host's: verify
# builds the start transaction and wants them loadable. multi-user.target, which the drop-in
# extends, is a stand-in, so that only our files are judged (not the host's man pages).
for dir in /usr/lib/systemd/system /lib/systemd/system; do
	if [[ -d $dir ]]; then cp -an "$dir/." "$units/"; fi
done
rm -rf "$units/multi-user.target.wants" "$units/timers.target.wants"
printf '[Unit]\nDescription=Multi-User System\n' >"$units/multi-user.target"
printf '[Unit]\nDescription=Timer Units\n' >"$units/timers.target"
(cd "$repo" && cargo xtask assets "$root/usr") >/dev/null

set +e
output=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" flatcar-harden.service \
	flatcar-harden-check.service flatcar-harden-check.timer multi-user.target timers.target 2>&1)
rc=$?
set -e
if ((rc != 0)) || [[ -n $output ]]; then
	printf '%s\n' "$output" >&2
	echo "verify.sh: systemd-analyze verify is not clean (exit $rc)" >&2
	exit 1
fi
echo "verify.sh: systemd-analyze verify: flatcar-harden.service, flatcar-harden-check.service, flatcar-harden-check.timer, multi-user.target.d/ and timers.target.d/10-flatcar-harden.conf are clean"

#!/bin/bash
# Guest side of the flatcar-harden VM test bed. The image's fh-vm.service
# (after multi-user.target) mounts the host's 9p share on /mnt/fh-vm and runs
# this file from it, as root. It is not part of the image, so editing it does
# not rebuild the image.
#
# Share layout (written by tests/vm/run.sh):
#   phase               the boot number, 1, 2, ...
#   flatcar-harden      the agent, installed to /usr/local/bin (if present)
#   scenario/           the scenario's files; guest parts run from a copy
#   ctl/host-wanted-N   a host part runs in boot N: wait for ctl/host-done-N
#   out/                results: phaseN.ready, guest-phaseN.{stdout,stderr,rc},
#                       cmdline-phaseN, journal-phaseN.txt, oem-grub-phaseN.cfg,
#                       artifacts/
set -u
share=/mnt/fh-vm
out=$share/out
work=/var/lib/fh-vm/scenario
phase=$(cat "$share/phase")

say() { echo "fh-vm: $*"; }

mkdir -p "$out/artifacts"
# The command line this boot really got (from GRUB, or QEMU's -append).
cat /proc/cmdline >"$out/cmdline-phase$phase"
if [[ -f $share/flatcar-harden ]]; then
	install -D -m 0755 "$share/flatcar-harden" /usr/local/bin/flatcar-harden
fi
# /run is noexec: run the scenario from a copy on the root file system.
rm -rf "$work"
mkdir -p "$work"
cp -a "$share/scenario/." "$work/"

# Let the boot settle; the scenario may look at the outcome itself.
state=$(timeout 120 systemctl is-system-running --wait 2>/dev/null)
say "phase $phase: system $state"
: >"$out/phase$phase.ready"

if [[ -e $share/ctl/host-wanted-$phase ]]; then
	say "phase $phase: waiting for the host part"
	while [[ ! -e $share/ctl/host-done-$phase ]]; do sleep 0.5; done
fi

part=guest
((phase > 1)) && part=guest-phase$phase
rc=0
if [[ -e $work/$part ]]; then
	say "phase $phase: running $part"
	(
		cd "$work" &&
			exec env HOME=/root USER=root LANG=C.UTF-8 \
				FH_VM_PHASE="$phase" FH_VM_SCENARIO="$(cat "$share/name")" \
				FH_VM_ARTIFACTS="$out/artifacts" FH_VM_LIB="$share/lib" "./$part"
	) </dev/null >"$out/guest-phase$phase.stdout" 2>"$out/guest-phase$phase.stderr" || rc=$?
	say "phase $phase: $part exited $rc"
fi

cp /oem/grub.cfg "$out/oem-grub-phase$phase.cfg" 2>/dev/null || true
journalctl -b --no-pager -o short-monotonic >"$out/journal-phase$phase.txt" 2>&1 || true
echo "$rc" >"$out/guest-phase$phase.rc.tmp"
mv -f "$out/guest-phase$phase.rc.tmp" "$out/guest-phase$phase.rc"
sync
say "phase $phase: done, powering off"
systemctl --no-block poweroff

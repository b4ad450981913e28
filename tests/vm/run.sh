#!/usr/bin/env bash
# Runs flatcar-harden VM scenarios: tests/vm/run.sh [SCENARIO...]
#
# With no argument, every scenario under tests/vm/scenarios/. An argument is
# a scenario name from there, or a path to a scenario directory or to a single
# executable (= a guest part alone). See tests/vm/README.md for the contract.
#
# Prints `PASS name (Ns)` or `FAIL name: reason` per scenario and closes with
# `N passed, N failed`; exits 0 when all passed, 1 when one failed, 2 when
# the bed itself could not be set up. Results: target/vm/<scenario>/.
#
# Environment:
#   FH_VM_ACCEL=tcg|kvm   accelerator (default tcg; see README)
#   FH_VM_TIMEOUT=S       seconds allowed per boot (default 180; a scenario's
#                         `timeout` file overrides)
#   FH_VM_MEM=MiB         guest memory (default 1024)
#   FH_VM_TCG_THREAD=single|multi  TCG threading (default single; see README)
#   FH_VM_AGENT=PATH      use this agent binary instead of building one;
#                         `none` installs no agent
#   FH_VM_KEEP=1          keep each scenario's disk (disk.qcow2, base.img)
#   FH_VM_BOOTLOADER=grub|direct  how scenarios without a `bootloader` file
#                         boot (default grub; see README, Boot)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
results=$target/vm
accel=${FH_VM_ACCEL:-tcg}
boot_timeout=${FH_VM_TIMEOUT:-180}
mem=${FH_VM_MEM:-1024}
tcg_thread=${FH_VM_TCG_THREAD:-single}
default_bootloader=${FH_VM_BOOTLOADER:-grub}
# Kernel arguments. GRUB mode: the guest's /boot/grub/grub.cfg has the root and
# console ones itself and gets the bed's (plus a scenario's cmdline file) from
# the SMBIOS system SKU. Direct mode: all of them go to -append.
root_args="root=/dev/vda rw console=ttyS0"
bed_args="mitigations=off security=selinux panic=-1 fh_vm.share"

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 2
}

# ---------------------------------------------------------------------------
# Processes we start: qemu runs in the background and is killed by its PID.
qemu_pid=""
hook_pid=""
stop_qemu() {
	local pid=$qemu_pid i
	[[ -n $pid ]] || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
	fi
	wait "$pid" 2>/dev/null || true
	qemu_pid=""
}
cleanup() {
	# A host part still running: its `timeout` passes the signal on.
	if [[ -n $hook_pid ]]; then
		kill -TERM "$hook_pid" 2>/dev/null || true
		wait "$hook_pid" 2>/dev/null || true
	fi
	stop_qemu
}

# run_part OUTFILE-PREFIX SECONDS ENV... -- CMD: runs a scenario part from
# the scenario copy, in the background so that a signal reaches run.sh's
# traps at once; returns the part's exit status (124: timed out).
run_part() {
	local prefix=$1 secs=$2 rc=0
	shift 2
	(
		cd "$sdir_copy" && exec env "$@" timeout "$secs" "$part_cmd"
	) </dev/null >"$prefix.stdout" 2>"$prefix.stderr" &
	hook_pid=$!
	wait "$hook_pid" || rc=$?
	hook_pid=""
	return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True while $1 runs (a zombie does not count).
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------------------
# One scenario.

# part_name KIND PHASE: the file name of a phase's host or guest part.
part_name() {
	if (($2 == 1)); then echo "$1"; else echo "$1-phase$2"; fi
}

# Boots the guest once (phase $1); sets `reason` on failure.
boot_phase() {
	local p=$1 port qerr start deadline stop_by host_part rc_file hrc
	local out_sh=$out/share/out
	echo "$p" >"$out/share/phase"
	host_part=$(part_name host "$p")
	if [[ -x $sdir_copy/$host_part ]]; then : >"$out/share/ctl/host-wanted-$p"; fi

	# How the kernel gets started. GRUB reads /oem/grub.cfg itself; nothing
	# here looks at that file.
	local args boot_args
	args=$(echo "$bed_args $extra_cmdline" | tr -s ' ' | sed 's/^ //; s/ $//')
	if [[ $bootloader == grub ]]; then
		# QEMU option values escape a comma by doubling it.
		boot_args=(-kernel "$img/grub.img" -smbios "type=1,sku=${args//,/,,}")
	else
		boot_args=(-kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$root_args $args")
	fi

	local accel_args
	if [[ $accel == kvm ]]; then
		accel_args=(-accel kvm -cpu host)
	else
		# One host thread for both vCPUs: multi-threaded TCG was seen to lose
		# an IPI under load (soft lockup in text_poke_bp_batch at boot).
		accel_args=(-accel "tcg,thread=$tcg_thread" -cpu "qemu64,vendor=GenuineIntel")
	fi

	for _ in 1 2 3; do
		port=$(free_port)
		write_ssh_config "$port"
		qerr=$out/qemu-phase$p.stderr
		qemu-system-x86_64 -name "fh-vm-$name" "${accel_args[@]}" \
			-smp sockets=1,cores=1,threads=2 -m "$mem" \
			-nodefaults -display none -monitor none -no-reboot \
			-serial "file:$out/console-phase$p.log" \
			"${boot_args[@]}" \
			-drive "file=$out/disk.qcow2,format=qcow2,if=virtio" \
			-netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22" \
			-device virtio-net-pci,netdev=net0 \
			-virtfs "local,path=$out/share,mount_tag=fhvm,security_model=none,id=fhvm" \
			-device virtio-rng-pci \
			</dev/null >/dev/null 2>"$qerr" &
		qemu_pid=$!
		sleep 1
		if alive "$qemu_pid"; then break; fi
		wait "$qemu_pid" 2>/dev/null || true
		qemu_pid=""
		if ! grep -q hostfwd "$qerr"; then
			reason="qemu did not start: $(head -n 1 "$qerr")"
			return 1
		fi
	done
	if [[ -z $qemu_pid ]]; then
		reason="qemu did not start: $(head -n 1 "$qerr")"
		return 1
	fi

	start=$SECONDS
	deadline=$((start + timeout))
	rc_file=$out_sh/guest-phase$p.rc

	if [[ -e $out/share/ctl/host-wanted-$p ]]; then
		while [[ ! -e $out_sh/phase$p.ready ]] && alive "$qemu_pid" && ((SECONDS < deadline)); do
			sleep 0.5
		done
		if [[ ! -e $out_sh/phase$p.ready ]]; then
			stop_qemu
			reason="phase $p: guest never got ready for the host part (see console-phase$p.log)"
			return 1
		fi
		hrc=0
		part_cmd=./$host_part
		run_part "$out/host-phase$p" $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)) \
			FH_VM_PHASE="$p" FH_VM_SCENARIO="$name" FH_VM_OUT="$out" FH_VM_LIB="$here/lib" \
			FH_VM_AGENT="$agent" FH_VM_PORT="$port" FH_VM_SSH="$out/ssh" \
			FH_VM_SSH_ROOT="$out/ssh-root" FH_VM_SSH_CORE="$out/ssh-core" \
			FH_VM_SSH_CONFIG="$out/ssh_config" FH_VM_CONSOLE="$out/console-phase$p.log" || hrc=$?
		echo "$hrc" >"$out/host-phase$p.rc"
		: >"$out/share/ctl/host-done-$p"
		if ((hrc != 0)); then
			host_failed="phase $p: $host_part exited $hrc$(last_line "$out/host-phase$p.stderr")"
		fi
	fi

	# Wait for the guest to report and power off.
	stop_by=$deadline
	while alive "$qemu_pid"; do
		if [[ -e $rc_file ]] && ((stop_by > SECONDS + 60)); then stop_by=$((SECONDS + 60)); fi
		if ((SECONDS >= stop_by)); then break; fi
		sleep 0.5
	done
	if alive "$qemu_pid"; then
		stop_qemu
		if [[ ! -e $rc_file ]]; then
			reason="phase $p: timed out after ${timeout}s (see console-phase$p.log)"
			return 1
		fi
		log "$name: phase $p: guest did not power off within 60 s; killed"
		if ((p < phases)); then
			reason="phase $p: guest did not power off (needed for the next boot)"
			return 1
		fi
	fi
	stop_qemu
	log "$name: phase $p: boot and run took $((SECONDS - start)) s"
	# The guest's /proc/cmdline (the harness copies it), else the kernel's
	# own report on the console.
	if [[ ! -s $out_sh/cmdline-phase$p ]]; then
		grep -a -m 1 -o 'Kernel command line: .*' "$out/console-phase$p.log" 2>/dev/null |
			sed 's/^Kernel command line: //; s/\r$//' >"$out/cmdline-phase$p" || true
	fi
	if [[ ! -e $rc_file ]]; then
		reason="phase $p: guest stopped without a result (see console-phase$p.log)"
		return 1
	fi
	guest_rc=$(cat "$rc_file")
	if [[ $guest_rc != 0 ]]; then
		reason="phase $p: $(part_name guest "$p") exited $guest_rc$(last_line "$out_sh/guest-phase$p.stderr" "$out_sh/guest-phase$p.stdout")"
		return 1
	fi
	return 0
}

# ": <last non-empty line>" of the first of the files that has one.
last_line() {
	local f l
	for f in "$@"; do
		[[ -s $f ]] || continue
		l=$(grep -v '^[[:space:]]*$' "$f" | tail -n 1 | cut -c1-200)
		if [[ -n $l ]]; then
			printf ': %s' "$l"
			return
		fi
	done
}

write_ssh_config() {
	cat >"$out/ssh_config" <<-EOF
		Host guest
		  HostName 127.0.0.1
		  Port $1
		  HostKeyAlias flatcar-harden-vm
		  UserKnownHostsFile $img/known_hosts
		  StrictHostKeyChecking yes
		  IdentityFile $img/id_ed25519
		  IdentitiesOnly yes
		  BatchMode yes
		  ConnectTimeout 10
		  ServerAliveInterval 5
		  ServerAliveCountMax 6
		  LogLevel ERROR
	EOF
	printf '#!/bin/sh\nexec ssh -F %q "$@"\n' "$out/ssh_config" >"$out/ssh"
	printf '#!/bin/sh\nexec ssh -F %q root@guest "$@"\n' "$out/ssh_config" >"$out/ssh-root"
	printf '#!/bin/sh\nexec ssh -F %q core@guest "$@"\n' "$out/ssh_config" >"$out/ssh-core"
	chmod 0755 "$out/ssh" "$out/ssh-root" "$out/ssh-core"
}

# run_scenario NAME PATH: prints the PASS/FAIL line; returns 1 on failure.
run_scenario() {
	name=$1
	local src=$2 t0=$SECONDS p
	out=$results/$name
	reason="" host_failed="" extra_cmdline=""
	rm -rf "$out"
	mkdir -p "$out/share/out" "$out/share/ctl" "$out/share/scenario"
	sdir_copy=$out/share/scenario
	if [[ -d $src ]]; then
		cp -a "$src/." "$sdir_copy/"
	else
		cp "$src" "$sdir_copy/guest"
	fi
	cp "$here/lib/guest-harness.sh" "$out/share/harness.sh"
	cp -r "$here/lib" "$out/share/lib"
	echo "$name" >"$out/share/name"
	if [[ -n $agent ]]; then cp "$agent" "$out/share/flatcar-harden"; fi

	if [[ ! -x $sdir_copy/guest && ! -x $sdir_copy/host ]]; then
		finish_scenario "$t0" "no executable guest or host part in $src"
		return 1
	fi
	phases=1
	while [[ -x $sdir_copy/guest-phase$((phases + 1)) || -x $sdir_copy/host-phase$((phases + 1)) ]]; do
		phases=$((phases + 1))
	done
	timeout=$boot_timeout
	if [[ -f $sdir_copy/timeout ]]; then timeout=$(tr -dc 0-9 <"$sdir_copy/timeout"); fi
	if [[ -f $sdir_copy/cmdline ]]; then extra_cmdline=$(grep -v '^#' "$sdir_copy/cmdline" | tr '\n' ' ' || true); fi
	bootloader=$default_bootloader
	if [[ -f $sdir_copy/bootloader ]]; then bootloader=$(grep -v '^#' "$sdir_copy/bootloader" | tr -d '[:space:]' || true); fi
	if [[ $bootloader != grub && $bootloader != direct ]]; then
		finish_scenario "$t0" "bootloader file says '$bootloader'; grub or direct"
		return 1
	fi

	# The scenario's disk: a qcow2 overlay over the cached image, or, with a
	# before-boot part, over an image made from the tree that part changed.
	local backing=$img/disk.img
	if [[ -x $sdir_copy/before-boot ]]; then
		local tree=$out/root brc=0
		mkdir -p "$tree"
		tar -C "$tree" --numeric-owner --xattrs --xattrs-include='*' -xpf "$img/rootfs.tar"
		part_cmd=./before-boot
		run_part "$out/before-boot" "$timeout" FH_VM_ROOT="$tree" FH_VM_SCENARIO="$name" \
			FH_VM_OUT="$out" FH_VM_LIB="$here/lib" FH_VM_AGENT="$agent" || brc=$?
		if ((brc != 0)); then
			rm -rf --one-file-system "$tree"
			finish_scenario "$t0" "before-boot exited $brc$(last_line "$out/before-boot.stderr" "$out/before-boot.stdout")"
			return 1
		fi
		mke2fs -q -t ext4 -L root -d "$tree" "$out/base.img" 2G >/dev/null
		rm -rf --one-file-system "$tree"
		backing=$out/base.img
	fi
	qemu-img create -q -f qcow2 -F raw -b "$backing" "$out/disk.qcow2"

	for ((p = 1; p <= phases; p++)); do
		boot_phase "$p" || break
		if [[ -n $host_failed ]]; then break; fi
	done
	if [[ -z $reason && -n $host_failed ]]; then reason=$host_failed; fi
	finish_scenario "$t0" "$reason"
	[[ -z $reason ]]
}

# Moves the guest's results up, drops the share and disks; prints the line.
finish_scenario() {
	local t0=$1 why=$2 line
	if [[ -d $out/share/out ]]; then
		cp -a "$out/share/out/." "$out/"
	fi
	rm -rf "$out/share"
	if [[ ${FH_VM_KEEP:-} != 1 ]]; then rm -f "$out/disk.qcow2" "$out/base.img"; fi
	if [[ -z $why ]]; then
		line="PASS $name ($((SECONDS - t0))s)"
	else
		line="FAIL $name: $why"
	fi
	echo "$line" >"$out/result"
	echo "$line"
}

# ---------------------------------------------------------------------------

main() {
	local c
	for c in qemu-system-x86_64 qemu-img ssh python3 mke2fs timeout; do
		command -v "$c" >/dev/null || die "$c not found; run tests/install-deps.sh"
	done
	[[ $accel == tcg || $accel == kvm ]] || die "FH_VM_ACCEL must be tcg or kvm"
	[[ $tcg_thread == single || $tcg_thread == multi ]] || die "FH_VM_TCG_THREAD must be single or multi"
	[[ $default_bootloader == grub || $default_bootloader == direct ]] || die "FH_VM_BOOTLOADER must be grub or direct"

	# Scenarios: names under scenarios/ or paths.
	local -a names=() paths=()
	local a n
	if (($# == 0)); then
		for a in "$here"/scenarios/*/; do
			[[ -d $a ]] || continue
			names+=("$(basename "$a")")
			paths+=("${a%/}")
		done
		((${#names[@]} > 0)) || die "no scenarios in $here/scenarios"
	fi
	for a in "$@"; do
		if [[ $a != */* && -d $here/scenarios/$a ]]; then
			names+=("$a")
			paths+=("$here/scenarios/$a")
		elif [[ -d $a ]]; then
			names+=("$(basename "$(cd "$a" && pwd)")")
			paths+=("$(cd "$a" && pwd)")
		elif [[ -f $a && -x $a ]]; then
			n=$(basename "$a")
			names+=("${n%.*}")
			paths+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")")
		else
			die "no scenario $a (neither tests/vm/scenarios/$a nor a directory or executable)"
		fi
	done

	mkdir -p "$results"
	exec 8>"$results/.lock"
	flock -n 8 || die "another run.sh is using $results"

	# The agent.
	agent=""
	if [[ ${FH_VM_AGENT:-} == none ]]; then
		log "no agent (FH_VM_AGENT=none)"
	elif [[ -n ${FH_VM_AGENT:-} ]]; then
		[[ -x $FH_VM_AGENT ]] || die "FH_VM_AGENT=$FH_VM_AGENT is not an executable"
		agent=$(cd "$(dirname "$FH_VM_AGENT")" && pwd)/$(basename "$FH_VM_AGENT")
	else
		log "building the agent: cargo build --release --locked"
		if ! (cd "$repo" && cargo build --release --locked) >&2; then
			log "error: cargo build --release --locked failed; no scenario was run"
			echo "FAIL build: cargo build --release --locked failed"
			echo "0 passed, ${#names[@]} failed"
			exit 2
		fi
		agent=$target/release/flatcar-harden
		[[ -x $agent ]] || die "cargo build succeeded but $agent is missing"
	fi

	# The image (built on first use, then cached).
	local t0=$SECONDS
	img=$("$here/build-image.sh") || die "image build failed"
	[[ -f $img/grub.img ]] || die "$img has no grub.img; delete it to rebuild"
	log "image $img ($((SECONDS - t0)) s), accel $accel"

	local passed=0 failed=0 i
	for i in "${!names[@]}"; do
		if run_scenario "${names[$i]}" "${paths[$i]}"; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
	done
	echo "$passed passed, $failed failed"
	((failed == 0))
}

main "$@"

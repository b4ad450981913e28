#!/bin/bash
# Flatcar's hardening guide as an administrator would script it to run at every boot, each step
# checking first so that a hardened host is left as it is. tests/bench/live-vm.sh times it next to
# `flatcar-harden apply` on the same guest; both end in the same state (the files say what the
# agent writes), so either may run first.
set -eu

# write_if_changed PATH MODE CONTENT: writes PATH only when it differs; true when it wrote.
write_if_changed() {
	local path=$1 mode=$2 content=$3
	if [[ -f $path ]] && printf '%s' "$content" | cmp -s - "$path"; then return 1; fi
	mkdir -p "$(dirname "$path")"
	printf '%s' "$content" >"$path.tmp"
	chmod "$mode" "$path.tmp"
	mv -f "$path.tmp" "$path"
}

# sshd.socket masked and stopped: no SSH.
if [[ $(systemctl is-enabled sshd.socket 2>/dev/null) != masked ]] || systemctl is-active -q sshd.socket; then
	systemctl mask --now sshd.socket
fi

# The docker socket root's alone: the guide's drop-in, then the live socket regrouped.
if write_if_changed /etc/systemd/system/docker.socket.d/10-restrict.conf 0644 $'[Socket]\nSocketGroup=root\n'; then
	systemctl daemon-reload
fi
if [[ -S /run/docker.sock && $(stat -c %G /run/docker.sock) != root ]]; then
	chgrp root /run/docker.sock
fi

# core needs a password for sudo (it has none: no sudo), and cannot log in.
if write_if_changed /etc/sudoers.d/core-passwd 0440 \
	$'# Written by flatcar-harden (core-sudo): core must give a password to use sudo.\n# core has no password on Flatcar, so this takes sudo away from core.\ncore ALL=(ALL) ALL\n'; then
	visudo -c >/dev/null
fi
if [[ $(getent passwd core | cut -d: -f7) != /sbin/nologin ]]; then
	usermod -s /sbin/nologin core
fi

# USB storage never loads.
for line in 'install usb-storage /bin/false' 'blacklist usb-storage' 'install uas /bin/false' 'blacklist uas'; do
	grep -qxF "$line" /etc/modprobe.d/blacklist.conf 2>/dev/null || echo "$line" >>/etc/modprobe.d/blacklist.conf
done

# SMT off now and from the next boot.
case $(</sys/devices/system/cpu/smt/control) in
off | forceoff | notsupported) ;;
*) echo off >/sys/devices/system/cpu/smt/control ;;
esac
grep -q 'nosmt' /oem/grub.cfg || echo 'set linux_append="$linux_append nosmt"' >>/oem/grub.cfg

# SELinux enforcing now and from the next boot.
[[ $(</sys/fs/selinux/enforce) == 1 ]] || setenforce 1
grep -qx 'SELINUX=enforcing' /etc/selinux/config || sed -i --follow-symlinks 's/^SELINUX=.*/SELINUX=enforcing/' /etc/selinux/config

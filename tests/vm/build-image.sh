#!/usr/bin/env bash
# Builds (or finds in the cache) the Flatcar-like Debian bookworm guest image
# of the flatcar-harden VM test bed, and prints the cache directory holding it:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/flatcar-harden/vm/<hash>/
#     disk.img     raw ext4 root file system (2 GiB, sparse)
#     rootfs.tar   the same tree as a tar (for offline, before-boot hooks)
#     vmlinuz      generic Debian kernel (linux-image-amd64)
#     initrd.img   small initramfs (MODULES=list)
#     grub.img     GRUB (i386-pc) as QEMU can load it with -kernel: lnxboot.img
#                  + a core image that boots the disk's /boot/grub/grub.cfg
#     id_ed25519   ssh key authorised for root and core
#     known_hosts  the guest's ssh host key, under the alias flatcar-harden-vm
#
# <hash> covers this script and every file under tests/vm/image/, so editing
# either builds a new image. The build runs in a temporary directory next to
# the final one and is renamed into place only when complete.
#
# Needs root (debootstrap, chroot) and the tools from install-deps.sh.
# Environment: FH_VM_MIRROR overrides the Debian mirror (default: the one
# this machine's apt sources use for bookworm).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=bookworm
disk_size=2G
packages=(
	systemd systemd-sysv dbus libpam-systemd udev kmod
	openssh-server sudo initramfs-tools linux-image-amd64
	iproute2 procps jq less selinux-utils checkpolicy tmux
	# The fleet scenario: a real node_exporter with its textfile collector, and curl to scrape it.
	prometheus-node-exporter curl
	# The auditd control: Flatcar ships auditd disabled, with its own rules.d (image/rootfs).
	auditd
)
# Loaded from the initramfs; everything else comes from the root fs.
initrd_modules=(virtio_pci virtio_blk virtio_net ext4)
# Built into the GRUB core image (grub-mkimage adds their dependencies):
# disk through the BIOS, ext4, the script commands of image/grub/early.cfg and
# image/rootfs/boot/grub/grub.cfg, linux16 (and linux, as Flatcar uses).
grub_modules=(biosdisk ext2 normal configfile test echo serial terminal smbios reboot linux16 linux)
grub_dir=/usr/lib/grub/i386-pc

log() { printf 'build-image: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

image_hash() {
	# The image is a function of this script and the files it copies in.
	tar -C "$here" --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime=@0 --mode='u+rw' -cf - build-image.sh image | sha256sum | cut -c1-16
}

# The Debian mirror this machine's apt uses for $suite (deb822 .sources
# first, then one-line sources.list), else deb.debian.org.
detect_mirror() {
	local uri=""
	if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
		uri=$(awk -v suite="$suite" '
			BEGIN { RS = ""; FS = "\n" }
			{
				types = ""; suites = ""; uri = ""; off = 0
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^Types:/) types = " " substr($i, 7) " "
					else if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
					else if ($i ~ /^Enabled:[ \t]*no/) off = 1
					else if ($i ~ /^URIs:/) {
						s = $i; sub(/^URIs:[ \t]*/, "", s); split(s, a, /[ \t]+/); uri = a[1]
					}
				}
				gsub(/\t/, " ", suites)
				if (!off && types ~ / deb / && suites ~ (" " suite " ") && uri ~ /^https?:\/\//) {
					print uri; exit
				}
			}' /etc/apt/sources.list.d/*.sources)
	fi
	if [[ -z $uri && -r /etc/apt/sources.list ]]; then
		uri=$(awk -v suite="$suite" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
				if ($(i + 1) == suite && $i ~ /^https?:\/\//) { print $i; exit }
			}' /etc/apt/sources.list)
	fi
	echo "${uri:-http://deb.debian.org/debian}"
}

# Everything that makes the debootstrapped tree look like Flatcar where the
# agent can tell. $1 = root directory.
configure_root() {
	local r=$1 key_pub=$2 hash=$3
	in_root() { chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }

	# Files copied verbatim (units, baselayout, OEM, SELinux, update.conf).
	tar -C "$here/image/rootfs" --owner=0 --group=0 --numeric-owner -cf - . |
		tar -C "$r" --no-overwrite-dir -xpf -

	# --- users and groups --------------------------------------------------
	# Debian NSS has no "usrfiles" module, so what Flatcar serves from
	# /usr/share/baselayout/{passwd,group} must be in /etc here. Debian's gid
	# 10 is uucp; Flatcar's is wheel (and uucp is 14), so move uucp first.
	local g
	for g in 14 233 500; do
		if in_root getent group "$g" >/dev/null; then die "gid $g already taken in the Debian tree"; fi
	done
	if in_root getent passwd 500 >/dev/null; then die "uid 500 already taken in the Debian tree"; fi
	in_root groupmod -g 14 uucp
	in_root groupadd -g 10 wheel
	in_root groupadd -g 233 docker
	in_root groupadd -g 500 core
	# As flatcar-tmpfiles leaves it: core in /etc/passwd with bash, shadow '*'.
	in_root useradd -u 500 -g 500 -G wheel,docker -c 'Flatcar Admin' \
		-d /home/core -m -k /dev/null -s /bin/bash -p '*' core 2>/dev/null
	in_root usermod -a -G wheel root
	in_root usermod -p '*' root

	# --- sudo ---------------------------------------------------------------
	# No /etc/sudoers: /etc/sudo.conf -> baselayout sudo.conf -> baselayout
	# sudoers, exactly as on Flatcar.
	rm -f "$r/etc/sudoers" "$r/etc/sudoers.d/README"
	chmod 0440 "$r/usr/share/baselayout/sudoers"
	chmod 0644 "$r/usr/share/baselayout/sudo.conf"
	rm -f "$r/etc/sudo.conf"
	ln -s ../usr/share/baselayout/sudo.conf "$r/etc/sudo.conf"
	install -d -m 0750 -o 0 -g 0 "$r/etc/sudoers.d"
	in_root visudo -c -q -f /usr/share/baselayout/sudoers || die "baselayout sudoers does not parse"

	# --- sshd: socket activated, like Flatcar -------------------------------
	in_root systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
	rm -f "$r/etc/init.d/ssh" "$r"/etc/rc?.d/[SK][0-9][0-9]ssh
	rm -f "$r/etc/systemd/system/sshd.service" \
		"$r/usr/lib/systemd/system/ssh.service" "$r/usr/lib/systemd/system/ssh.socket" \
		"$r/usr/lib/systemd/system/ssh@.service" "$r/usr/lib/systemd/system/rescue-ssh.target"
	install -d -m 0700 "$r/root/.ssh" "$r/home/core/.ssh"
	install -m 0600 "$key_pub" "$r/root/.ssh/authorized_keys"
	install -m 0600 "$key_pub" "$r/home/core/.ssh/authorized_keys"
	chown -R 500:500 "$r/home/core"
	# Flatcar's sshd configuration (image/rootfs/etc/ssh): the Include-only sshd_config and
	# sshd_config.d with Flatcar's and Gentoo's drop-ins, as their ebuilds install them.
	chmod 0600 "$r/etc/ssh/sshd_config" "$r"/etc/ssh/sshd_config.d/*.conf
	chmod 0700 "$r/etc/ssh/sshd_config.d"
	mkdir -p "$r/run/sshd"
	in_root sshd -t || die "the Flatcar-shaped sshd configuration does not parse"
	rmdir "$r/run/sshd"

	# --- auditd: installed, disabled, Flatcar's rules only -------------------
	rm -f "$r/etc/audit/rules.d/audit.rules"
	chmod 0640 "$r"/etc/audit/rules.d/*.rules
	in_root systemctl disable auditd.service >/dev/null 2>&1 || true

	# --- units enabled the way Flatcar does it: wants links in /usr ---------
	local sysd=$r/usr/lib/systemd/system
	mkdir -p "$sysd/sockets.target.wants" "$sysd/multi-user.target.wants"
	ln -sf ../sshd.socket "$sysd/sockets.target.wants/sshd.socket"
	ln -sf ../docker.socket "$sysd/sockets.target.wants/docker.socket"
	ln -sf ../docker.service "$sysd/multi-user.target.wants/docker.service"
	ln -sf ../fh-vm.service "$sysd/multi-user.target.wants/fh-vm.service"
	in_root systemctl enable systemd-networkd.service >/dev/null 2>&1
	# Timers that only cost time in a short-lived guest.
	local t
	for t in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
		dpkg-db-backup.timer logrotate.timer man-db.timer; do
		in_root systemctl disable "$t" >/dev/null 2>&1 || true
	done
	# node_exporter is installed for the fleet scenario, which configures and enables it; off
	# otherwise, so other scenarios boot as before.
	in_root systemctl disable prometheus-node-exporter.service >/dev/null 2>&1 || true

	# --- OEM partition, SELinux ---------------------------------------------
	ln -sfn /oem "$r/usr/share/oem"
	# Config and policy store live in /usr, linked from /etc, as on Flatcar.
	# The policy allows everything (see usr/lib/fh-vm/selinux/policy.conf):
	# a loaded policy keeps systemd working with /etc/selinux/config present,
	# and enforcing mode cannot lock the guest up.
	mkdir -p "$r/etc/selinux" "$r/usr/lib/selinux/mcs/policy"
	in_root checkpolicy -U allow -c 33 -o /usr/lib/selinux/mcs/policy/policy.33 \
		/usr/lib/fh-vm/selinux/policy.conf >/dev/null
	rm -rf "$r/etc/selinux/config" "$r/etc/selinux/mcs"
	ln -s ../../usr/lib/selinux/config "$r/etc/selinux/config"
	ln -s ../../usr/lib/selinux/mcs "$r/etc/selinux/mcs"

	# --- system basics ------------------------------------------------------
	echo fh-vm >"$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tfh-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
	printf '# no DNS in the test bed\n' >"$r/etc/resolv.conf"
	printf '/dev/vda\t/\text4\trw,relatime\t0 0\n' >"$r/etc/fstab"
	echo "$hash" >"$r/usr/lib/fh-vm/image-id"

	# --- small initramfs ----------------------------------------------------
	printf 'MODULES=list\nCOMPRESS=gzip\n' >"$r/etc/initramfs-tools/conf.d/fh-vm.conf"
	printf '%s\n' "${initrd_modules[@]}" >>"$r/etc/initramfs-tools/modules"
	rm -f "$r"/boot/initrd.img-*
	in_root update-initramfs -c -k all >/dev/null

	# --- trim ----------------------------------------------------------------
	rm -rf "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* \
		"$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/* "$r"/var/tmp/*
}

# Unmounts whatever is mounted below $1 (deepest first).
umount_under() {
	local m
	findmnt -rn -o TARGET | awk -v d="$1/" 'index($0, d) == 1' | sort -r |
		while read -r m; do umount -l "$m" || true; done
}

# Removes a build directory without ever descending into a mount.
remove_tree() {
	umount_under "$1"
	rm -rf --one-file-system "$1"
}

build() {
	local out=$1 hash=$2
	local r=$out/root mirror
	mirror=${FH_VM_MIRROR:-$(detect_mirror)}
	mkdir -p "$r"

	log "debootstrap $suite from $mirror (a minute or two)"
	local inc
	inc=$(
		IFS=,
		echo "${packages[*]}"
	)
	if ! debootstrap --variant=minbase --include="$inc" --components=main \
		"$suite" "$r" "$mirror" >"$out/debootstrap.log" 2>&1; then
		tail -n 30 "$out/debootstrap.log" >&2
		die "debootstrap failed (log: $out/debootstrap.log)"
	fi
	# debootstrap may leave pseudo file systems mounted in the tree.
	umount_under "$r"

	log "ssh key"
	ssh-keygen -q -t ed25519 -N '' -C flatcar-harden-vm-test -f "$out/id_ed25519"

	log "configuring the tree"
	configure_root "$r" "$out/id_ed25519.pub" "$hash"
	printf 'flatcar-harden-vm %s\n' "$(cut -d' ' -f1,2 "$r/etc/ssh/ssh_host_ed25519_key.pub")" >"$out/known_hosts"

	local kernels initrds
	kernels=("$r"/boot/vmlinuz-*)
	initrds=("$r"/boot/initrd.img-*)
	((${#kernels[@]} == 1)) || die "expected one kernel, found: ${kernels[*]}"
	((${#initrds[@]} == 1)) || die "expected one initrd, found: ${initrds[*]}"
	cp "${kernels[0]}" "$out/vmlinuz"
	cp "${initrds[0]}" "$out/initrd.img"
	# Stable names for GRUB (boot/grub/grub.cfg loads these).
	ln -sfn "$(basename "${kernels[0]}")" "$r/boot/vmlinuz"
	ln -sfn "$(basename "${initrds[0]}")" "$r/boot/initrd.img"

	log "grub.img"
	grub-mkimage -O i386-pc -d "$grub_dir" -c "$here/image/grub/early.cfg" -p '(hd0)/boot/grub' \
		-o "$out/grub-core.img" "${grub_modules[@]}"
	cat "$grub_dir/lnxboot.img" "$out/grub-core.img" >"$out/grub.img"
	rm -f "$out/grub-core.img"

	log "rootfs.tar and disk.img"
	tar -C "$r" --numeric-owner --xattrs --xattrs-include='*' -cf "$out/rootfs.tar" .
	mke2fs -q -t ext4 -L root -d "$r" "$out/disk.img" "$disk_size" >/dev/null
	remove_tree "$r"
}

main() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot)"
	local c
	for c in debootstrap mke2fs ssh-keygen flock grub-mkimage; do
		command -v "$c" >/dev/null || die "$c not found; run tests/install-deps.sh"
	done
	[[ -f $grub_dir/lnxboot.img ]] || die "$grub_dir/lnxboot.img not found; run tests/install-deps.sh (grub-pc-bin)"

	local base hash dir
	base=${XDG_CACHE_HOME:-$HOME/.cache}/flatcar-harden/vm
	hash=$(image_hash)
	dir=$base/$hash
	mkdir -p "$base"

	exec 9>"$base/.lock"
	flock 9
	if [[ ! -f $dir/disk.img ]]; then
		local tmp start
		start=$SECONDS
		# Leftovers of interrupted builds (we hold the lock).
		for tmp in "$base"/.build-*; do
			if [[ -e $tmp ]]; then remove_tree "$tmp"; fi
		done
		tmp=$(mktemp -d "$base/.build-$hash.XXXXXX")
		# shellcheck disable=SC2064 # expand $tmp now
		trap "umount_under '$tmp'" EXIT
		log "building image $hash in $tmp"
		build "$tmp" "$hash"
		rm -f "$tmp"/debootstrap.log
		rm -rf "$dir"
		mv -T "$tmp" "$dir"
		trap - EXIT
		log "built $dir in $((SECONDS - start)) s"
	fi
	touch "$dir"
	# Images of other build inputs unused for two weeks go.
	find "$base" -mindepth 1 -maxdepth 1 -type d -name '[0-9a-f]*' ! -name "$hash" -mtime +14 \
		-exec rm -rf {} + 2>/dev/null || true
	echo "$dir"
}

main "$@"

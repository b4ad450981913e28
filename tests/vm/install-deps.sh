#!/usr/bin/env bash
# Install what the VM test bed (tests/vm/) needs on a Debian bookworm machine.
# Idempotent: when every tool is already there it returns at once, without
# touching apt.
set -euo pipefail

# command -> Debian package that provides it
declare -A need=(
	[qemu-system-x86_64]=qemu-system-x86
	[qemu-img]=qemu-utils
	[debootstrap]=debootstrap
	[mke2fs]=e2fsprogs
	[ssh]=openssh-client
	[ssh-keygen]=openssh-client
	[timeout]=coreutils
	[flock]=util-linux
	[sha256sum]=coreutils
	[ss]=iproute2
	[python3]=python3
	[grub-mkimage]=grub-pc-bin
)

missing=()
for cmd in "${!need[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		missing+=("${need[$cmd]}")
	fi
done
# debootstrap verifies Release files with this keyring.
if [[ ! -e /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
	missing+=(debian-archive-keyring)
fi
# The GRUB image (build-image.sh) needs the i386-pc modules and lnxboot.img,
# which grub-pc-bin has (grub-mkimage itself is in grub-common, its dependency).
if [[ ! -e /usr/lib/grub/i386-pc/lnxboot.img ]]; then
	missing+=(grub-pc-bin)
fi

if ((${#missing[@]} == 0)); then
	echo "install-deps: everything already installed"
	exit 0
fi

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install-deps: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: must run as root to install packages" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Installs everything the tests need on a Debian machine, in one apt transaction (and the Rust
# musl target with rustup), then checks that every tool is really there. Idempotent: when every tool is already there it does not touch apt.
set -euo pipefail

# command -> Debian package that provides it
declare -A need=(
	# cargo test: visudo checks every generated sudoers file; tests/packaging.rs and
	# packaging/sysext/build.sh use mksquashfs/unsquashfs, systemd-analyze, man/groff, readelf,
	# and script (a terminal) for the colour test.
	[visudo]=sudo
	[sudo]=sudo
	[mksquashfs]=squashfs-tools
	[unsquashfs]=squashfs-tools
	[systemd-analyze]=systemd
	[man]=man-db
	[groff]=groff-base
	[readelf]=binutils
	[script]=bsdutils
	[unshare]=util-linux
	[strace]=strace
	# The VM test bed (tests/vm/).
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
	# tests/fleet.rs: promtool check metrics on the metrics file
	[promtool]=prometheus
	[grub-mkimage]=grub-pc-bin
)
# Files that no command names.
declare -A need_files=(
	# debootstrap verifies Release files with this keyring.
	[/usr/share/keyrings/debian-archive-keyring.gpg]=debian-archive-keyring
	# build-image.sh needs GRUB's i386-pc modules and lnxboot.img.
	[/usr/lib/grub/i386-pc/lnxboot.img]=grub-pc-bin
)

missing_tools() {
	local cmd f
	for cmd in "${!need[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || echo "$cmd"
	done
	for f in "${!need_files[@]}"; do
		[[ -e $f ]] || echo "$f"
	done
}

# qemu-system-x86 and qemu-utils must come from the same source package and version: a machine
# may carry a newer qemu-utils (from backports) than the qemu-system-x86 its apt sources offer, and
# installing one without pinning the other makes apt REMOVE qemu-utils. Pin qemu-utils to the
# qemu-system-x86 version that will be installed.
qemu_pins() {
	local sys utils
	sys=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
	[[ -n $sys ]] || sys=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
	utils=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
	if [[ -n $sys && $sys != "(none)" && $utils != "$sys" ]]; then
		echo "qemu-system-x86=$sys" "qemu-utils=$sys"
	fi
}

# The sysext's static agent is built for musl (packaging/sysext/build.sh takes this target when it
# is installed): a static glibc adds about 0.9 MiB, which puts the agent over its 4 MiB limit
# (docs/design.md, "Packaging and the size of the agent"). rustup's target, not apt's musl-tools:
# Rust's musl target brings its own libc and start files.
musl=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
	echo "install-deps: rustup target add $musl"
	rustup target add "$musl"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
	echo "install-deps: error: the Rust target $musl is not installed (rustup target add $musl)" >&2
	exit 1
fi

mapfile -t missing < <(missing_tools)
if ((${#missing[@]} == 0)); then
	echo "install-deps: every tool is already there"
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
packages=()
for m in "${missing[@]}"; do
	if [[ -n ${need[$m]:-} ]]; then packages+=("${need[$m]}"); else packages+=("${need_files[$m]}"); fi
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u | grep -vx 'qemu-system-x86\|qemu-utils' || true)
read -r -a pins <<<"$(qemu_pins)"
echo "install-deps: installing ${packages[*]} ${pins[*]}"
# One transaction; --allow-downgrades only lets the qemu-utils pin take effect. Refuse any removal.
apt-get install -y -q --no-install-recommends --allow-downgrades --no-remove \
	"${packages[@]}" "${pins[@]}"

mapfile -t still < <(missing_tools)
if ((${#still[@]} > 0)); then
	echo "install-deps: error: still missing after install: ${still[*]}" >&2
	exit 1
fi
qemu-system-x86_64 --version | head -n 1
qemu-img --version | head -n 1
echo "install-deps: every tool is there"

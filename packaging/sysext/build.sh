#!/usr/bin/env bash
# Builds the flatcar-harden systemd-sysext image: OUT/flatcar-harden-VERSION-x86-64.raw (squashfs).
#
#   packaging/sysext/build.sh [--out DIR] [--os flatcar|any] [--binary PATH [--allow-dynamic]]
#                             [--host-agent PATH]
#
#   --out DIR        where the image goes (default: target/sysext under the repository)
#   --os flatcar     extension-release: ID=flatcar, SYSEXT_LEVEL=1.0 (default): merges on any
#                    Flatcar release, nowhere else
#   --os any         extension-release: ID=_any: merges on any OS with systemd-sysext (the VM test
#                    bed's Debian guest uses this)
#   --binary PATH    package this agent binary instead of building one
#   --allow-dynamic  accept a dynamically linked --binary (tests do; an image to ship should not)
#   --host-agent PATH  an agent that runs on this machine, for writing the vendor policy (default:
#                    `cargo run`, a debug build for this machine)
#
# Without --binary the agent is built statically: for x86_64-unknown-linux-musl when that rustup
# target is installed, otherwise for x86_64-unknown-linux-gnu with `-C target-feature=+crt-static`
# (a static-pie glibc binary; the agent makes no NSS lookup, see docs/operations.md). The build
# fails if the result needs a dynamic loader or a shared library.
#
# Install the image on a host as /etc/extensions/flatcar-harden.raw: systemd-sysext takes the
# extension's name from the file name and wants usr/lib/extension-release.d/extension-release.NAME
# to match it. Needs: cargo, mksquashfs (squashfs-tools), readelf (binutils).
#
# The build runs nothing built for the target: the version, man pages and completions come from
# `cargo xtask` (xtask/), the vendor policy from the agent built for the build machine. The size
# of the agent is printed (tests/packaging.rs keeps the release build at most 4 MiB).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=flatcar-harden
arch=x86-64

out=${CARGO_TARGET_DIR:-$repo/target}/sysext
os=flatcar
binary=""
host_agent=""
allow_dynamic=0
while (($#)); do
	case $1 in
	--out) out=$2; shift 2 ;;
	--os) os=$2; shift 2 ;;
	--binary) binary=$2; shift 2 ;;
	--allow-dynamic) allow_dynamic=1; shift ;;
	--host-agent) host_agent=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case $os in
flatcar | any) ;;
*) echo "build.sh: --os must be flatcar or any" >&2; exit 2 ;;
esac
for tool in mksquashfs readelf; do
	command -v "$tool" >/dev/null || {
		echo "build.sh: $tool not found (apt-get install squashfs-tools binutils)" >&2
		exit 2
	}
done
log() { printf 'build.sh: %s\n' "$*" >&2; }

# --- the agent ------------------------------------------------------------------------------
if [[ -z $binary ]]; then
	if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
		target=x86_64-unknown-linux-musl
		log "building $target (static by default)"
		(cd "$repo" && cargo build --release --locked --target "$target") >&2
	else
		target=x86_64-unknown-linux-gnu
		log "no musl target installed: building $target with crt-static"
		# --target keeps build scripts and proc macros dynamic; only the agent is static.
		(cd "$repo" && CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:-} -C target-feature=+crt-static" \
			cargo build --release --locked --target "$target") >&2
	fi
	binary=${CARGO_TARGET_DIR:-$repo/target}/$target/release/$name
fi
[[ -x $binary ]] || { echo "build.sh: $binary is not an executable" >&2; exit 2; }

# Static: no program interpreter (PT_INTERP) and no DT_NEEDED library.
if readelf -lW "$binary" | grep -q 'Requesting program interpreter' || readelf -dW "$binary" | grep -q '(NEEDED)'; then
	if ((allow_dynamic)); then
		log "warning: $binary is dynamically linked (--allow-dynamic)"
	else
		echo "build.sh: $binary is dynamically linked; a sysext must carry a static binary (or pass --allow-dynamic)" >&2
		readelf -dW "$binary" | grep '(NEEDED)' >&2 || true
		exit 1
	fi
fi
size=$(stat -c %s "$binary")
log "agent: $binary, $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.2f MiB", b / 1048576 }'))"

# Nothing below runs $binary: it is built for the target, which need not be this machine. The
# version, man pages and completions come from the xtask (xtask/), the vendor policy from an agent
# for this machine built from the same source.
xtask() { (cd "$repo" && cargo xtask "$@"); }
host_agent() {
	if [[ -n $host_agent ]]; then
		"$host_agent" "$@"
	else
		(cd "$repo" && cargo run --quiet --locked --package "$name" -- "$@")
	fi
}
version=$(xtask version)
[[ -n $version ]] || { echo "build.sh: cannot read the version from the xtask" >&2; exit 1; }

# --- the tree -------------------------------------------------------------------------------
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
usr=$tree/usr
install -D -m 0755 "$binary" "$usr/bin/$name"
install -D -m 0644 "$repo/systemd/$name.service" "$usr/lib/systemd/system/$name.service"
# Enabled by a drop-in for the target it runs before, not by a .wants link (Flatcar's advice for
# sysexts); see the comment in the drop-in and docs/design.md.
install -D -m 0644 "$repo/systemd/multi-user.target.d/10-$name.conf" \
	"$usr/lib/systemd/system/multi-user.target.d/10-$name.conf"
# The generator (docs/design.md, "No window at first boot"): systemd runs the agent by this link
# name at every boot and daemon-reload, before any socket starts; it writes the on-disk policy's
# sshd.socket mask and docker.socket drop-in to /run/systemd/generator.early.
install -d "$usr/lib/systemd/system-generators"
ln -s /usr/bin/$name "$usr/lib/systemd/system-generators/$name-generator"
# The hourly drift check (docs/fleet.md), enabled the same way: timers.target wants the timer.
install -D -m 0644 -t "$usr/lib/systemd/system" "$repo/systemd/$name-check.service" "$repo/systemd/$name-check.timer"
install -D -m 0644 "$repo/systemd/timers.target.d/10-$name.conf" \
	"$usr/lib/systemd/system/timers.target.d/10-$name.conf"

# The vendor policy: the built-in default, written out so that it is documented where operators
# look (/usr/share/flatcar-harden/policy.toml is the first policy source). /etc wins over it.
mkdir -p "$usr/share/$name"
{
	echo "# flatcar-harden $version: the built-in default policy, as \`flatcar-harden policy show"
	echo "# --policy /dev/null\` prints it. This file is part of the sysext (read-only /usr); change the"
	echo "# policy in /etc/flatcar-harden/policy.toml or /etc/flatcar-harden/policy.d/*.toml, which win"
	echo "# key by key. Reference: /usr/share/doc/flatcar-harden/policy.md."
	host_agent policy show --policy /dev/null | sed '1,/^$/{/^#/d}'
} >"$usr/share/$name/policy.toml"
chmod 0644 "$usr/share/$name/policy.toml"
host_agent policy check "$usr/share/$name/policy.toml" >/dev/null

# Man pages and bash, zsh and fish completions, generated from the CLI definition.
xtask assets "$usr" >/dev/null

# The documentation, for a host without a browser.
install -D -m 0644 -t "$usr/share/doc/$name" "$repo/README.md" "$repo"/docs/*.md
install -D -m 0644 -t "$usr/share/doc/$name/examples" "$repo"/docs/examples/*

release=$usr/lib/extension-release.d/extension-release.$name
mkdir -p "$(dirname "$release")"
if [[ $os == flatcar ]]; then
	printf 'ID=flatcar\nSYSEXT_LEVEL=1.0\n' >"$release"
else
	printf 'ID=_any\n' >"$release"
fi
# ARCHITECTURE: never merged on an arm64 host. EXTENSION_RELOAD_MANAGER: systemd >= 255 reloads
# PID 1 after merging, so the unit is seen (systemd 252 ignores it; Flatcar's ensure-sysext.service
# reloads there).
printf 'ARCHITECTURE=%s\nEXTENSION_RELOAD_MANAGER=1\n' "$arch" >>"$release"
chmod 0644 "$release"
find "$tree" -type d -exec chmod 0755 {} +

# --- the image ------------------------------------------------------------------------------
mkdir -p "$out"
image=$out/$name-$version-$arch.raw
# Reproducible: fixed timestamps, every file root's, no build-host xattrs.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}
mksquashfs "$tree" "$image" -noappend -all-root -no-xattrs -quiet -no-progress \
	-mkfs-time "$epoch" -all-time "$epoch" >/dev/null
log "built $image ($(du -h "$image" | cut -f1), $os); install it as /etc/extensions/$name.raw"
echo "$image"

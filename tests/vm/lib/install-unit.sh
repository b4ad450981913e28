#!/bin/bash
# For a scenario's before-boot: flatcar-harden at /usr/bin, its generator link in
# /usr/lib/systemd/system-generators and flatcar-harden.service enabled in the guest's tree
# ($FH_VM_ROOT), the way an image build installs them, with no policy of its own (the built-in
# default applies at boot); the full guide at /root/full-guide.toml for the scenario's parts.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
r=$FH_VM_ROOT
install -D -m 0755 "$FH_VM_AGENT" "$r/usr/bin/flatcar-harden"
install -D -m 0644 "$repo/systemd/flatcar-harden.service" "$r/usr/lib/systemd/system/flatcar-harden.service"
systemctl --root="$r" enable flatcar-harden.service
# The generator: a link systemd runs before any unit starts (docs/design.md).
install -d "$r/usr/lib/systemd/system-generators"
ln -sf /usr/bin/flatcar-harden "$r/usr/lib/systemd/system-generators/flatcar-harden-generator"
install -D -m 0644 "$repo/docs/examples/full-guide.toml" "$r/root/full-guide.toml"

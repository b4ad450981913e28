# Small assertion helpers for scenario parts (guest or host), sourced with
#   . "$FH_VM_LIB/check.sh"
# Each check prints `ok: WHAT` or `not ok: WHAT (details)`; `finish` exits 1
# if one failed, with a last stderr line naming them (run.sh shows that line
# in the FAIL reason).
# shellcheck shell=bash

_fh_failed=()

ok() { echo "ok: $1"; }
not_ok() {
	echo "not ok: $1${2:+ ($2)}" >&2
	_fh_failed+=("$1")
}

# check WHAT COMMAND...: passes when COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what" "failed: $*"; fi
}

# check_eq WHAT EXPECTED ACTUAL
check_eq() {
	if [[ $2 == "$3" ]]; then ok "$1"; else not_ok "$1" "expected '$2', got '$3'"; fi
}

# check_match WHAT REGEX ACTUAL
check_match() {
	if [[ $3 =~ $2 ]]; then ok "$1"; else not_ok "$1" "'$3' does not match /$2/"; fi
}

finish() {
	if ((${#_fh_failed[@]} > 0)); then
		local IFS=';'
		echo "${#_fh_failed[@]} check(s) failed:${_fh_failed[*]}" >&2
		exit 1
	fi
	echo "all checks passed"
	exit 0
}

# wait_ssh USER [SECONDS]: host side; waits until `ssh USER@guest true` works.
wait_ssh() {
	local user=$1 end=$((SECONDS + ${2:-60}))
	until "$FH_VM_SSH" "$user@guest" true 2>/dev/null; do
		((SECONDS < end)) || return 1
		sleep 1
	done
}

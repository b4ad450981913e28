#!/usr/bin/env bash
# Benchmark of the common path: every boot re-applies the policy to a host that is already
# compliant. Prints wall time per run and peak memory, against the targets below. Not a test:
# it never fails on timing (machines differ); read the figures.
#
#   tests/bench/compliant-run.sh [RUNS]
#
# FH_BENCH_AGENT=PATH measures that binary (e.g. the static one of the sysext) instead of a fresh
# `cargo build --release`. live-vm.sh measures the same path on a running guest.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-200}
target_ms=20     # per compliant `apply` of the full guide policy
target_rss_kib=16384

bin=${FH_BENCH_AGENT:-}
if [[ -z $bin ]]; then
	cargo build --release --quiet
	bin=$PWD/target/release/flatcar-harden
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cp -a tests/fixtures/flatcar/. "$root/"
"$bin" apply --root "$root" --policy docs/examples/full-guide.toml >/dev/null

# Peak memory from GNU time (wait4's ru_maxrss): a child of python would report python's own
# resident set, which the forked child carries until it execs the agent.
rss=unknown
if [[ -x /usr/bin/time ]]; then
	/usr/bin/time -o "$root.rss" -f '%M' "$bin" apply --root "$root" --policy docs/examples/full-guide.toml >/dev/null 2>&1
	rss=$(tail -n 1 "$root.rss")
	rm -f "$root.rss"
fi

python3 - "$bin" "$root" "$runs" "$target_ms" "$target_rss_kib" "$rss" <<'PY'
import subprocess, sys, time
binary, root, runs, target_ms, target_rss, rss = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
args = [binary, "apply", "--root", root, "--policy", "docs/examples/full-guide.toml", "--format", "json"]
times = []
for _ in range(runs):
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, check=True)
    times.append((time.perf_counter() - start) * 1000)
assert b'"changed": 0' in out.stdout, "the tree was not compliant: the benchmark measures the wrong path"
times.sort()
median, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
print(f"compliant apply (full guide policy, {runs} runs): median {median:.2f} ms, p95 {p95:.2f} ms, min {times[0]:.2f} ms")
print(f"peak RSS: {rss} KiB (GNU time)" if rss.isdigit() else "peak RSS: not measured (no /usr/bin/time: apt-get install time)")
print(f"target: median <= {target_ms:g} ms: {'met' if median <= target_ms else 'MISSED'}")
if rss.isdigit():
    print(f"target: peak RSS <= {target_rss} KiB: {'met' if int(rss) <= target_rss else 'MISSED'}")
PY

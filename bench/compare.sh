#!/usr/bin/env bash
# Side by side, in one run on one machine: the BEAM reference workloads
# (bench/beam/bench.erl, on one scheduler thread: erl +S 1) and the same workloads
# in this project's `bench` example (one SimpleScheduler on one thread). Prints,
# per workload, both figures, the speed-up (BEAM ns / chronoflow ns) and the
# memory per process where measured.
#
# Usage, from any directory:
#   bench/compare.sh [quick|full] [core|otp|multi]
#   CHRONOFLOW_BENCH_ENGINE=stackless bench/compare.sh ...   # stackless processes
#
# quick divides the sizes by 10. Suites: core (pingpong, ring, spawn, selective
# receive, fan-in; the default), otp (call, named send, monitor, link, supervisor
# restart, timers) and multi (pairs, skynet, fan-in, BEAM with one scheduler per
# core). The bench example runs core and otp (`bench -- SIZE ENGINE SUITE`), each
# with either engine (with CHRONOFLOW_BENCH_ENGINE=stackless, every otp process is
# stackless but restart's supervisor, which is stackful: the toolkit's supervisors
# are). For multi this prints BEAM's figures alone.
#
# Needs cargo (rustup) and Erlang's erl and erlc (Debian/Ubuntu:
# apt-get install -y erlang-base).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
usage="usage: $0 [quick|full] [core|otp|multi]"
size=${1:-full}
suite=${2:-core}
case "$size" in quick|full) ;; *) echo "$usage (got size '$size')" >&2; exit 2;; esac
case "$suite" in core|otp|multi) ;; *) echo "$usage (got suite '$suite')" >&2; exit 2;; esac
engine=${CHRONOFLOW_BENCH_ENGINE:-stackful}
case "$engine" in stackful|stackless) ;; *) echo "CHRONOFLOW_BENCH_ENGINE must be stackful or stackless (got '$engine')" >&2; exit 2;; esac

for tool in erl erlc; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found: the BEAM side needs Erlang (Debian/Ubuntu: apt-get install -y erlang-base)" >&2
        exit 2
    }
done
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 2; }

ours=$(mktemp); beam=$(mktemp); log=$(mktemp)
trap 'rm -f "$ours" "$beam" "$log"' EXIT

echo "building the bench example (cargo build --release --example bench)..." >&2
(cd "$root" && cargo build --release --example bench) >"$log" 2>&1 || {
    cat "$log" >&2
    echo "cannot build the bench example: cargo build --release --example bench" >&2
    exit 2
}
echo "running the BEAM workloads ($size, $suite)..." >&2
"$here/beam/run.sh" "$size" "$suite" >"$beam"
if [ "$suite" = core ] || [ "$suite" = otp ]; then
    echo "running the chronoflow workloads ($size, $engine processes, $suite)..." >&2
    (cd "$root" && cargo run --release --quiet --example bench -- "$size" "$engine" "$suite") >"$ours"
else
    echo "# chronoflow: the bench example has no $suite suite; BEAM's figures only" >"$ours"
fi

awk '
    # workload=NAME param=N ns_per_op=X [bytes_per_proc=B], keyed by NAME and N
    function parse(line, kv,   i, n, f, p) {
        delete kv
        n = split(line, f, " ")
        for (i = 1; i <= n; i++) {
            p = index(f[i], "=")
            if (p > 0) kv[substr(f[i], 1, p - 1)] = substr(f[i], p + 1)
        }
    }
    /^#/ { print; next }
    FILENAME == ARGV[1] {
        if ($0 ~ /^workload=/) {
            parse($0, kv)
            key = kv["workload"] SUBSEP kv["param"]
            ours_ns[key] = kv["ns_per_op"]
            ours_b[key] = ("bytes_per_proc" in kv) ? kv["bytes_per_proc"] : "-"
        }
        next
    }
    $0 ~ /^workload=/ {
        if (!header) {
            printf "%-12s %9s %14s %10s %9s %14s %12s\n", "workload", "param", "chronoflow ns", "BEAM ns", "speed-up", "chronoflow B", "BEAM B"
            header = 1
        }
        parse($0, kv)
        key = kv["workload"] SUBSEP kv["param"]
        bn = kv["ns_per_op"] + 0
        bb = ("bytes_per_proc" in kv) ? kv["bytes_per_proc"] : "-"
        if (key in ours_ns) {
            on = ours_ns[key] + 0
            up = (on > 0) ? sprintf("%.1fx", bn / on) : "-"
            printf "%-12s %9s %14.1f %10.1f %9s %14s %12s\n", kv["workload"], kv["param"], on, bn, up, ours_b[key], bb
        } else {
            printf "%-12s %9s %14s %10.1f %9s %14s %12s\n", kv["workload"], kv["param"], "missing", bn, "-", "-", bb
        }
    }
' "$ours" "$beam"

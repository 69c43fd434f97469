#!/usr/bin/env bash
# Runs the BEAM reference workloads on one scheduler thread (the shape of a
# single-threaded scheduler), printing `workload=... param=... ns_per_op=...`.
# Usage, from any directory: bench/beam/run.sh [quick|full] [core|otp|multi]
# Needs Erlang's erl and erlc (Debian/Ubuntu: apt-get install -y erlang-base).
set -euo pipefail
cd "$(dirname "$0")"
for tool in erl erlc; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found: the BEAM side needs Erlang (Debian/Ubuntu: apt-get install -y erlang-base)" >&2
        exit 2
    }
done
size=${1:-full}
suite=${2:-core}
case "$size" in quick|full) ;; *) echo "usage: $0 [quick|full] [core|otp|multi] (got size '$size')" >&2; exit 2;; esac
case "$suite" in core|otp|multi) ;; *) echo "usage: $0 [quick|full] [core|otp|multi] (got suite '$suite')" >&2; exit 2;; esac
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
erlc -o "$out" bench.erl
case "$suite" in otp|multi) args="$size, $suite";; *) args="$size";; esac
# one scheduler thread, except the multi suite: one per core (or BEAM_SCHEDULERS)
if [ "$suite" = multi ]; then sched=${BEAM_SCHEDULERS:-$(nproc)}; else sched=1; fi
timeout 300 erl -pa "$out" +S "$sched" +P 2000000 -noshell -eval "bench:main([$args]), halt()."

#!/usr/bin/env bash
# Time `make book` (after installation) on this machine.
#
#   bench/bench_book.sh          cold: remove the demo's synthetic data, face-crop cache,
#                                runs, executed notebooks and built book first (what a fresh
#                                clone does after `make install`)
#   bench/bench_book.sh --warm   keep them: every run is reused, only papermill + build
#
# Prints one line per phase and appends it to bench/results/book.tsv (tab-separated:
# date, mode, seconds, cores, cpu, commit).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=cold
[[ "${1:-}" == "--warm" ]] && mode=warm
test -f .venv/.installed || { echo "run make install first (the benchmark excludes installation)" >&2; exit 2; }

if [[ $mode == cold ]]; then
  rm -rf .cache/tsfmicro/synthetic .cache/tsfmicro/prepared .cache/tsfmicro/runs book/notebooks _build
fi

cores=$(nproc)
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || echo unknown)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
start=$(date +%s.%N)
make book
end=$(date +%s.%N)
seconds=$(python3 -c "print(f'{$end - $start:.0f}')")

echo "make book ($mode): ${seconds} s on ${cores} cores (${cpu}), commit ${commit}"
mkdir -p bench/results
printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$mode" "$seconds" "$cores" "$cpu" "$commit" >> bench/results/book.tsv

#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after the
# other on one core, and prints per target: time, executions, corpus size,
# and whether it found a crash (a panic, an overflow, a timeout, an OOM).
#
#   bash fuzz/run.sh [SECONDS] [TARGET…]      (default: 60 s each, all targets)
#   SEED=1 bash fuzz/run.sh 20                 (a fixed libFuzzer seed: CI's smoke run)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain may be
# stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. Targets are
# built without a sanitizer (snapsift's only `unsafe` is libc calls and
# util::newlines' SSE2 loads of whole 16-byte slices; overflow checks and
# debug assertions stay on), which roughly doubles the executions per second.
# Corpora are seeded by fuzz/seed.sh when missing; crashes land in
# fuzz/artifacts/<target>/ (replay: cargo fuzz run -s none <target> <file>).
# Exit status: 0 no crash, 1 some target crashed, 2 a target did not build.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
secs=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
# The targets write each input to a file (formats are opened by path):
# keep that in memory.
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
[ -d corpus ] || bash "$here/seed.sh" >/dev/null
flags=(-s none)
cargo fuzz build "${flags[@]}" || exit 2
# The binaries are run directly, not through `cargo fuzz run`: editing the
# sources during a long run must not rebuild (or break) the targets.
bin=${CARGO_TARGET_DIR:-$here/target}/$(rustc -vV | sed -n 's/^host: //p')/release
status=0
rm -f "$here"/last-crash-*.log
printf '%-18s %6s %12s %8s  %s\n' target seconds executions corpus result > "$here/last-run.txt"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  start=$(date +%s)
  mkdir -p "artifacts/$t"
  "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${SEED:+-seed=$SEED} >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  size=$(ls "corpus/$t" | wc -l)
  if [ $rc -eq 0 ]; then
    result=ok
  else
    status=1
    result="CRASH: $(grep -m1 -E '^(thread .* panicked|==[0-9]+== ERROR|SUMMARY)' "$log" | cut -c1-150) → $(grep -o 'artifacts/[^ ]*' "$log" | tail -1)"
    tail -40 "$log" > "$here/last-crash-$t.log"
  fi
  printf '%-18s %6s %12s %8s  %s\n' "$t" "$took" "${execs:-?}" "$size" "$result" | tee -a "$here/last-run.txt"
  rm -f "$log"
done
exit $status

#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ (the NDJSON, CSV, Arrow IPC and Parquet
# body decoders with the ingest path behind them, and the SQL entry points)
# for a bounded time, then minimizes every crash it found and prints it
# (base64 input and stack). Not part of CI: the sanitizer build of the
# DataFusion stack takes tens of minutes on 2 cores.
#
#   scripts/fuzz.sh                      # every target, FUZZ_SECONDS each
#   FUZZ_SECONDS=600 scripts/fuzz.sh sql # one target, longer
#
# Environment (all optional):
#   FUZZ_SECONDS    time per target (default 60; 0: only re-run and report
#                   the crash inputs found before)
#   FUZZ_SANITIZER  address (default) or none (faster build and runs)
#   FUZZ_HOME       corpus, artifacts and findings (default ~/.cache/silt-fuzz)
#   FUZZ_TARGET_DIR cargo target dir of the fuzz build (default ~/.cache/silt-fuzz-target)
#   FUZZ_MAX_LEN    libFuzzer -max_len (default 65536)
#   FUZZ_STACK_KB   stack of the fuzzing thread (default 2048, the server's)
#   FUZZ_MINIMIZE_SECONDS  time to minimize each distinct crash (default 40)
#   SILT_PYTHON     a Python with pyarrow, for the Parquet/IPC seeds
#                   (default the peer venv of scripts/setup-python.sh)
#
# The machine has one stable toolchain; cargo-fuzz needs nightly flags
# (-Zsanitizer), so RUSTC_BOOTSTRAP=1 is set for this script's builds only.
# cargo-fuzz itself is installed from crates.io into ~/.cache/silt-fuzz-tools.
# Exits 1 when an input crashes, leaks, runs out of memory or times out
# (inputs found by earlier runs count until they pass).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
home="${FUZZ_HOME:-$HOME/.cache/silt-fuzz}"
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/silt-fuzz-target}"
max_len="${FUZZ_MAX_LEN:-65536}"
python="${SILT_PYTHON:-${SILT_VENV:-$HOME/.cache/silt-venv}/bin/python}"
tools="$HOME/.cache/silt-fuzz-tools"
cargo_fuzz_version="0.13.2"
all_targets=(ndjson csv arrow_ipc parquet sql)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

step() { printf '\n== %s\n' "$*" >&2; }
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! PATH="$tools/bin:$PATH" cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
  step "install cargo-fuzz $cargo_fuzz_version into $tools"
  nice -n 19 cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked \
    --root "$tools" --target-dir "$tools/build"
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1

# The same flags for every cargo fuzz call, so nothing is rebuilt.
build_flags=(--fuzz-dir fuzz --target-dir "$target_dir" --sanitizer "$sanitizer" --codegen-units 16)
step "cargo fuzz build (${sanitizer} sanitizer, $target_dir)"
started=$(date +%s)
nice -n 19 cargo fuzz build "${build_flags[@]}"
echo "fuzz build: $(($(date +%s) - started)) s" >&2
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"

# Seeds: written once into each corpus (the corpus then grows run by run).
if [ ! -d "$home/corpus/sql" ]; then
  step "seed corpus ($home/corpus)"
  if [ -x "$python" ]; then
    "$python" fuzz/seeds.py "$home/corpus"
  else
    python3 fuzz/seeds.py "$home/corpus"
  fi
fi

# The server decodes on tokio's blocking threads and checks SQL on its
# worker threads, both with 2 MiB stacks: the fuzzer's thread gets the same,
# so an input that overflows the server's stack overflows here too (frames
# are larger under ASan: an overflow is confirmed with FUZZ_STACK_KB=8192).
stack_kb="${FUZZ_STACK_KB:-2048}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=0:allocator_may_return_null=0}"
export RUST_BACKTRACE=1

summary=()
findings=()
for target in "${targets[@]}"; do
  [ "$seconds" -gt 0 ] || break
  corpus="$home/corpus/$target"
  artifacts="$home/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  dict=()
  if [ -f "fuzz/$target.dict" ]; then dict=("-dict=$root/fuzz/$target.dict"); fi
  step "fuzz $target for ${seconds} s (corpus $corpus)"
  before=$(find "$artifacts" -type f | wc -l)
  log="$home/$target.log"
  started=$(date +%s)
  set +e
  # Fork mode: a crash, out-of-memory or timeout is saved and fuzzing goes
  # on, so one run finds more than its first crash.
  (ulimit -s "$stack_kb" && nice -n 19 "$bin_dir/$target" "$corpus" \
    -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "${dict[@]}") >"$log" 2>&1
  status=$?
  set -e
  took=$(($(date +%s) - started))
  execs=$(grep -oE 'exec/s: [0-9]+|stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  after=$(find "$artifacts" -type f | wc -l)
  summary+=("$target: ${took} s, ${execs} exec/s at the end, cov ${cov}, exit ${status}, $((after - before)) new artifact(s)")
  if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
    tail -n 80 "$log" >&2
    findings+=("$target")
  fi
done

# Every crash input found so far, this run or an earlier one, is run again:
# one that passes now moves to fixed/. The others are grouped by how they
# fail (where they panicked, or the sanitizer's summary); the first of each
# group is minimized (bounded) and shown with its stack, the rest listed.
report="$home/findings.txt"
: >"$report"
signature() {
  grep -m1 -oE 'panicked at [^ ]+|SUMMARY: [A-Za-z]+: [a-z-]+|out-of-memory \(malloc\([0-9]+|ERROR: libFuzzer: [a-z-]+' "$1" ||
    echo unknown
}
run_one() { (ulimit -s "$stack_kb" && "$bin_dir/$1" "$2" -timeout=30 -rss_limit_mb=4096) >"$3" 2>&1; }
for target in "${all_targets[@]}"; do
  artifacts="$home/artifacts/$target"
  [ -d "$artifacts" ] || continue
  declare -A seen=() group=()
  for input in "$artifacts"/crash-* "$artifacts"/oom-* "$artifacts"/timeout-* "$artifacts"/leak-*; do
    [ -f "$input" ] || continue
    case "$input" in *.min | *.log) continue ;; esac
    if run_one "$target" "$input" "$input.log"; then
      mkdir -p "$artifacts/fixed"
      mv "$input" "$artifacts/fixed/"
      rm -f "$input.min" "$input.log"
      echo "fixed: $target $(basename "$input")" >&2
      continue
    fi
    case " ${findings[*]} " in *" $target "*) ;; *) findings+=("$target") ;; esac
    sig="$(signature "$input.log")"
    if [ -n "${seen[$sig]:-}" ]; then
      echo "    also: $(basename "$input")" >>"$report.$target.${group[$sig]}"
      continue
    fi
    seen[$sig]="$(basename "$input")"
    group[$sig]=${#seen[@]}
    # Minimized, it must still fail the same way (libFuzzer keeps any crash).
    min="$input.min"
    if [ ! -f "$min" ]; then
      # libFuzzer's minimizer restarts the target per attempt and does not
      # keep to -max_total_time: timeout bounds it.
      (ulimit -s "$stack_kb" && timeout -k 5 "${FUZZ_MINIMIZE_SECONDS:-40}" nice -n 19 "$bin_dir/$target" "$input" \
        -minimize_crash=1 -max_total_time=30 -timeout=30 -rss_limit_mb=4096 -exact_artifact_path="$min") \
        >"$input.tmin.log" 2>&1 || true
      if [ -f "$min" ] && { run_one "$target" "$min" "$min.log" || [ "$(signature "$min.log")" != "$sig" ]; }; then
        rm -f "$min"
      fi
      rm -f "$min.log"
      [ -f "$min" ] || cp "$input" "$min"
    fi
    {
      echo "=== $target: $sig"
      echo "    $(basename "$input") ($(wc -c <"$input") bytes; $(wc -c <"$min") after minimizing)"
      echo "--- input (base64, minimized)"
      base64 -w 76 "$min"
      echo "--- output (of the input as found)"
      grep -v -e '^INFO:' -e '^MERGE' "$input.log" | head -n 60
      echo
    } >"$report.$target.${group[$sig]}"
  done
  for part in "$report.$target".*; do
    [ -f "$part" ] || continue
    cat "$part" >>"$report"
    rm -f "$part"
  done
  unset seen group
done

step "summary"
printf '%s\n' "${summary[@]}"
if [ -s "$report" ]; then
  echo "findings ($report):"
  cat "$report"
fi
if [ "${#findings[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${findings[*]}"
  exit 1
fi
echo "fuzz: no crash in ${targets[*]}"

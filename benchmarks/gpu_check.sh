#!/usr/bin/env bash
# vidnets on a CUDA machine, in one go (under 8 minutes), ending with one summary table:
#   1. the test suite's CUDA tests (pytest -k "cuda or gpu");
#   2. bf16 and fp16 AMP training steps of res3d18 and tsn_bninception (GradScaler, finite loss);
#   3. SyncBatchNorm under 2-process torchrun, when 2 GPUs are present;
#   4. the vs-torchvision benchmark (python -m benchmarks.vs_torchvision), when torchvision imports.
#
#   bash benchmarks/gpu_check.sh                          # on the CUDA machine, from anywhere
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh     # tiny CPU rehearsal of every step (seconds)
#
# Environment: PYTHON (default .venv/bin/python, else python3), GPU_CHECK_DEVICE (cuda | cpu),
# GPU_CHECK_OUT (folder for the logs and summary.md; default a new temporary folder).
# Exit status: 0 when no step failed (skipped steps say why in the table), 1 otherwise.
set -u -o pipefail

cd "$(dirname "$0")/.."
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT="${GPU_CHECK_OUT:-$(mktemp -d -t vidnets-gpu-check.XXXXXX)}"
mkdir -p "$OUT"
ROWS="$OUT/rows.tsv"
: > "$ROWS"
START=$SECONDS
# Limits per step (s) add up to under 8 minutes. The CPU rehearsal runs tiny models on one thread (about
# 30 CPU seconds in all; its limits allow for a busy machine), and
# only the benchmark tests' folder for the test step.
case "$DEVICE" in
  cuda) TINY=(); TESTS=(tests); TESTS_LIMIT=150; AMP_LIMIT=100; SYNC_LIMIT=60; TV_LIMIT=150 ;;
  cpu)  TINY=(--tiny --steps 2); TESTS=(tests/bench); TESTS_LIMIT=60; AMP_LIMIT=150; SYNC_LIMIT=120; TV_LIMIT=60
        export OMP_NUM_THREADS=1 ;;
  *) echo "gpu_check.sh: GPU_CHECK_DEVICE must be cuda or cpu, found '$DEVICE'" >&2; exit 2 ;;
esac

row() {  # step, status, seconds, detail
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$ROWS"
}

checks() {  # the CHECK lines a Python step printed -> rows
  local log="$1" secs="$2"
  grep $'^CHECK\t' "$log" | while IFS=$'\t' read -r _ name status detail; do
    row "$name" "$status" "$secs" "$detail"
  done
}

run_step() {  # name, limit (s), log, command... -> status code; the output goes to the log
  local name="$1" limit="$2" log="$3"
  shift 3
  echo "== $name (limit ${limit} s)" >&2
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
}

# 0. the device
DEVICE_NAME=$("$PY" -c "
import sys, torch
if '$DEVICE' == 'cuda':
    if not torch.cuda.is_available():
        sys.exit('torch.cuda.is_available() is False (torch ' + torch.__version__ + ')')
    print(f'{torch.cuda.device_count()} × {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}')
else:
    print(f'CPU rehearsal, torch {torch.__version__}')
" 2> "$OUT/device.log") || { echo "gpu_check.sh: no usable device: $(tail -n 1 "$OUT/device.log")" >&2; exit 1; }
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")

# 1. CUDA tests of the suite
t0=$SECONDS
# (this script's own test runs it: never again from inside)
run_step tests "$TESTS_LIMIT" "$OUT/tests.log" "$PY" -m pytest -q -p no:cacheprovider -k "cuda or gpu" \
  --ignore=tests/bench/test_gpu_check.py "${TESTS[@]}"
code=$?
summary_line=$(grep -E '(passed|failed|error|deselected|no tests ran)' "$OUT/tests.log" | tail -n 1)
case $code in
  0) row "test suite: CUDA tests" PASS $((SECONDS - t0)) "$summary_line" ;;
  5) row "test suite: CUDA tests" SKIP $((SECONDS - t0)) "no test is marked for CUDA (pytest -k 'cuda or gpu' selects none)" ;;
  124|137) row "test suite: CUDA tests" FAIL $((SECONDS - t0)) "timed out after ${TESTS_LIMIT} s" ;;
  *) row "test suite: CUDA tests" FAIL $((SECONDS - t0)) "exit $code: $summary_line" ;;
esac

# 2. AMP training steps
t0=$SECONDS
run_step amp "$AMP_LIMIT" "$OUT/amp.log" "$PY" -m benchmarks.gpu_check amp --device "$DEVICE" ${TINY[@]+"${TINY[@]}"}
code=$?
checks "$OUT/amp.log" $((SECONDS - t0))
if [[ $code -ne 0 ]] && ! grep -q $'\tFAIL\t' "$OUT/amp.log"; then
  row "amp" FAIL $((SECONDS - t0)) "exit $code: $(tail -n 1 "$OUT/amp.log")"
fi

# 3. SyncBatchNorm under torchrun (2 GPUs; the CPU rehearsal runs 2 gloo processes)
t0=$SECONDS
if [[ "$DEVICE" == cuda && "$GPUS" -lt 2 ]]; then
  row "syncbn (2-process torchrun)" SKIP 0 "needs 2 GPUs, found $GPUS"
else
  run_step syncbn "$SYNC_LIMIT" "$OUT/syncbn.log" "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 \
    -m benchmarks.gpu_check syncbn --device "$DEVICE" ${TINY[@]+"${TINY[@]}"}
  code=$?
  checks "$OUT/syncbn.log" $((SECONDS - t0))
  if [[ $code -ne 0 ]] && ! grep -q $'\tFAIL\t' "$OUT/syncbn.log"; then
    row "syncbn (2-process torchrun)" FAIL $((SECONDS - t0)) "exit $code: $(grep -v '^ ' "$OUT/syncbn.log" | tail -n 1)"
  fi
fi

# 4. vidnets vs torchvision
t0=$SECONDS
if ! "$PY" -c "import torchvision" > /dev/null 2>&1; then
  row "vs torchvision" SKIP 0 "torchvision does not import in $PY"
else
  if [[ "$DEVICE" == cuda ]]; then TV_ARGS=(--no-write); else TV_ARGS=(--quick --no-write --only "eval 8x112x112 x1"); fi
  run_step vs_torchvision "$TV_LIMIT" "$OUT/vs_torchvision.log" "$PY" -m benchmarks.vs_torchvision "${TV_ARGS[@]}"
  code=$?
  ratios=$(grep -E '^- (eval|train) ' "$OUT/vs_torchvision.log" | sed -E 's/^- //; s/ torchvision default.*//' | paste -sd ';' -)
  if [[ $code -eq 0 ]]; then row "vs torchvision" PASS $((SECONDS - t0)) "vidnets default vs torchvision default: ${ratios:-see log}"
  else row "vs torchvision" FAIL $((SECONDS - t0)) "exit $code: $(tail -n 1 "$OUT/vs_torchvision.log")"; fi
fi

# summary
{
  echo "## GPU check: $DEVICE_NAME"
  echo
  echo "Command: \`GPU_CHECK_DEVICE=$DEVICE bash benchmarks/gpu_check.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $((SECONDS - START)) s in all; logs in $OUT)"
  echo
  echo "| step | status | s | detail |"
  echo "|:---|:---|---:|:---|"
  while IFS=$'\t' read -r name status secs detail; do
    echo "| $name | $status | $secs | ${detail//|//} |"
  done < "$ROWS"
} > "$OUT/summary.md"
cat "$OUT/summary.md"
if grep -q $'\tFAIL\t' "$ROWS"; then exit 1; fi
exit 0

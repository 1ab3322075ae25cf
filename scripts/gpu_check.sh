#!/usr/bin/env bash
# One prepared GPU check (docs/gpu.md, "One prepared GPU check"): on an offline CUDA host whose image has torch,
# transformers, peft and accelerate, install the carried wheels without touching torch, then run, each step's
# result written to OUT/<step>/ as it finishes (result.json: rc, seconds, what it ran; log.txt):
#   1 install     the wheels in WHEELS (transformers, trl, datasets, pydantic, bitsandbytes, ...) with --no-deps
#                 into .site (never a torch wheel); s3ft itself from src/ (PYTHONPATH)
#   2 gpu_tests   the gpu-marked tests (LoRA in bf16, QLoRA with bitsandbytes, the vLLM bf16 variants skip here)
#   3 fsdp2       a one-process FSDP2 training of a tiny model through the train stage (accelerate launch)
#   4 pipeline    a short run of a tiny model on CUDA through every stage, HF backend, then `s3ft status`
#   5 throughput  benchmarks/gpu_throughput.py on a random-initialised Mistral-7B-shaped model
# OUT/summary.json lists the steps. Under 8 minutes on an H100 (each step has its own time limit).
#
# Usage: scripts/gpu_check.sh [--dry-run] [--out DIR] [--wheels DIR]
#   --dry-run   the CPU mode (CI runs it): no install, the gpu tests only collected, FSDP2's config checked by
#               `s3ft validate` instead of trained, the pipeline and the benchmark on the CPU at a tiny size.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=gpu_check_out
WHEELS=.whl
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT=$2; shift ;;
    --wheels) WHEELS=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
[ -x "$ROOT/.venv/bin/python" ] && [ "$DRY" = 1 ] && PY=${PYTHON:-$ROOT/.venv/bin/python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT/.site:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
DEVICE=cuda
[ "$DRY" = 1 ] && DEVICE=cpu
WORK="$OUT/work"
mkdir -p "$WORK"
FAILED=0

# step NAME LIMIT_S COMMAND...: runs it under a time limit, writes OUT/NAME/{log.txt,result.json} at once
step() {
  local name=$1 limit=$2
  shift 2
  mkdir -p "$OUT/$name"
  local start end rc
  start=$(date +%s)
  echo "== $name: $*" >&2
  timeout "$limit" bash -c "$*" >"$OUT/$name/log.txt" 2>&1
  rc=$?
  end=$(date +%s)
  [ "$rc" = 0 ] || FAILED=$((FAILED + 1))
  "$PY" - "$OUT/$name/result.json" "$name" "$rc" "$((end - start))" "$limit" "$DRY" "$*" <<'EOF'
import json, sys
path, name, rc, secs, limit, dry, cmd = sys.argv[1:]
json.dump({"step": name, "rc": int(rc), "ok": rc == "0", "timed_out": rc in ("124", "137"), "seconds": int(secs),
           "limit_s": int(limit), "dry_run": dry == "1", "command": cmd}, open(path, "w"), indent=2)
EOF
  echo "== $name: rc $rc in $((end - start)) s" >&2
  tail -n 5 "$OUT/$name/log.txt" >&2
}

do_install() {
  if [ "$DRY" = 1 ]; then
    echo "dry run: would install $(ls "$WHEELS"/*.whl 2>/dev/null | grep -v '/torch-' | wc -l) wheel(s) from $WHEELS"
    echo "with: $PY -m pip install --no-index --no-deps --target .site <wheels but torch>"
  else
    local wheels
    wheels=$(ls "$WHEELS"/*.whl 2>/dev/null | grep -v '/torch-')
    if [ -n "$wheels" ]; then
      # shellcheck disable=SC2086
      "$PY" -m pip install -q --no-index --no-deps --target "$ROOT/.site" $wheels || return 1
    fi
  fi
  "$PY" -c "import torch, transformers, trl, peft, datasets, pydantic, accelerate, s3ft
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
print('transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__, 's3ft', s3ft.__version__)
assert torch.cuda.is_available() or '$DRY' == '1', 'no CUDA GPU'"
}

do_gpu_tests() {
  if [ "$DRY" = 1 ]; then
    "$PY" -m pytest -q -p no:cacheprovider -m gpu --collect-only tests/test_train.py tests/test_backend_vllm.py
  else
    "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_train.py tests/test_backend_vllm.py -rs
  fi
}

do_tiny_model() {  # a tiny model, built once (s3ft make-tiny: offline)
  [ -f "$WORK/tiny/config.json" ] || "$PY" -m s3ft make-tiny "$WORK/tiny" --hidden-size 64 >/dev/null
}

do_fsdp2() {
  do_tiny_model || return 1
  cat >"$WORK/fsdp2.yaml" <<EOF
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_processes: 1
num_machines: 1
machine_rank: 0
mixed_precision: 'no'
use_cpu: false
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_cpu_ram_efficient_loading: false
  fsdp_reshard_after_forward: true
EOF
  local args=(run_dir="$WORK/fsdp2-run" "method=[sft]" model.path="$WORK/tiny" model.device="$DEVICE"
              train.accelerate_config="$WORK/fsdp2.yaml" train.mode=lora train.max_steps=4 train.batch_size=4)
  if [ "$DRY" = 1 ]; then
    "$PY" -m s3ft validate "$ROOT/configs/tiny.yaml" "${args[@]}"
  else
    "$PY" -m s3ft run "$ROOT/configs/tiny.yaml" "${args[@]}" --until train &&
      "$PY" -c "import json,sys; m=json.load(open('$WORK/fsdp2-run/07_train/sft/train_metrics.json'))
print({k: m[k] for k in ('distributed', 'steps', 'train_loss', 'bf16', 'processes')}); assert m['distributed'] == 'FSDP'"
  fi
}

do_pipeline() {
  do_tiny_model || return 1
  local run="$WORK/pipeline-run"
  "$PY" -m s3ft run "$ROOT/configs/tiny.yaml" run_dir="$run" model.path="$WORK/tiny" model.device="$DEVICE" \
      data.train.limit=16 data.test.limit=8 train.epochs=1 generate.max_new_tokens=24 paraphrase.max_new_tokens=24 &&
    "$PY" -m s3ft status "$run" | tee "$OUT/pipeline/status.txt" &&
    cp "$run/09_report/report.md" "$OUT/pipeline/report.md" &&
    "$PY" -c "import json; m=json.load(open('$run/01_data/manifest.json')); print('versions', m.get('versions'))"
}

do_throughput() {
  if [ "$DRY" = 1 ]; then
    "$PY" benchmarks/gpu_throughput.py --shape tiny --device cpu --prompts 4 --new-tokens 8 --train-tokens 32 \
      --train-steps 10 --results "$OUT/throughput"
  else
    "$PY" benchmarks/gpu_throughput.py --shape mistral-7b --results "$OUT/throughput" --out "$WORK/throughput"
  fi
}

export ROOT OUT WHEELS DRY PY DEVICE WORK
export -f do_install do_gpu_tests do_tiny_model do_fsdp2 do_pipeline do_throughput
step install 120 do_install
step gpu_tests 150 do_gpu_tests
step fsdp2 90 do_fsdp2
step pipeline 120 do_pipeline
step throughput 300 do_throughput
rm -rf "$WORK/throughput/model"   # the random 7B model: 14 GB, not a result
"$PY" - "$OUT" "$FAILED" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
steps = [json.loads((out / s / "result.json").read_text()) for s in ("install", "gpu_tests", "fsdp2", "pipeline", "throughput")
         if (out / s / "result.json").is_file()]
(out / "summary.json").write_text(json.dumps({"failed": int(sys.argv[2]), "steps": steps}, indent=2) + "\n")
print(json.dumps({s["step"]: ("ok" if s["ok"] else f"rc {s['rc']}") + f", {s['seconds']} s" for s in steps}))
EOF
exit $((FAILED > 0))

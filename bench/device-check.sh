#!/usr/bin/env bash
# The device check in one command. On a machine with a GPU (and its Python with torch 2.11.0) it
# runs, within about 8 minutes: nasrob doctor, the CUDA variants of the model and training tests,
# bench train (K = 1, 16 and 64 stacked networks at NB201's size against the same networks one at
# a time, nasrob and PyTorch eager), bench attack on a freshly trained network and bench
# sweep-unit (a group of 16 demo units, one epoch), then writes one JSON summary,
# device-check.json, into $OUT (or ./device-check-out).
#
# It runs prebuilt binaries (the GPU machine has no Rust toolchain): `make device-bundle` builds
# them here, compressed, into bench/device-bin/ (ignored by git), which the call carries.
#
#   DEVICE=cuda (default) or cpu     the device every step uses (cpu: a dry run of the script)
#   PYTHON=python3                   the Python whose torch provides libtorch and the reference
#   QUICK=1                          smaller budgets (for the dry run)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bundle=${NASROB_DEVICE_BIN:-$root/bench/device-bin}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
out=${OUT:-$root/device-check-out}
work=$(mktemp -d)
mkdir -p "$out"

for name in nasrob integration; do
  if [ ! -f "$bundle/$name.xz" ]; then
    echo "device-check: $bundle/$name.xz is missing; run 'make device-bundle' on the build machine first" >&2
    exit 2
  fi
  xz -dc "$bundle/$name.xz" >"$work/$name" && chmod +x "$work/$name"
done
nasrob=$work/nasrob
tests=$work/integration
export NASROB_BIN=$nasrob
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
  echo "device-check: $python has no torch; set PYTHON to the Python with torch 2.11.0" >&2
  exit 2
}
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NASROB_DATA_DIR="$work/data"

if [ "${QUICK:-0}" = 1 ]; then
  stacks=1,4 channels=8 cells=1 steps=2 warmup=1 images=50 batch=64 group=2
else
  stacks=1,16,64 channels=16 cells=5 steps=5 warmup=2 images=1000 batch=256 group=16
fi

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, keeping its output and status.
step() {
  local name=$1 limit=$2
  shift 2
  local started=$SECONDS
  echo "device-check: $name" >&2
  timeout "$limit" "$@" >"$work/$name.out" 2>"$work/$name.err"
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - started))}" >>"$work/steps.jsonl"
  cp "$work/$name.out" "$out/$name.out" 2>/dev/null
  tail -n 20 "$work/$name.err" >"$out/$name.err" 2>/dev/null
  return 0
}

step doctor 60 "$nasrob" doctor --json $([ "$device" = cuda ] && echo --require cuda)
step tests 240 "$tests" --test-threads 4 model:: train::a_stacked_group \
  train::groups_that_cannot
step bench-train 240 "$nasrob" bench train --dataset cifar10 --channels "$channels" --cells "$cells" \
  --batch-size "$batch" --stack "$stacks" --solo-sample 4 --steps "$steps" --warmup "$warmup" \
  --cudnn-benchmark --device "$device" --python "$python" --reference "$root/bench/train_reference.py" --json
step train 120 "$nasrob" train --arch 9930 --dataset fashion-mini --channels 8 --cells 1 --hp 2 \
  --device "$device" --out "$work/network" --json
step bench-attack 150 "$nasrob" bench attack --weights "$work/network/weights.safetensors" \
  --dataset fashion-mini --n-images "$images" --pgd-steps 10 --apgd-iterations 20 --square-queries 200 \
  --device "$device" --json
# The demo's protocol with corruptions that need no downloaded file (the machine may be offline).
sed 's/^names = \["all"\]/names = ["gaussian_noise", "brightness", "jpeg_compression", "fog"]/' \
  "$root/src/sweep/presets/demo.toml" >"$work/demo-offline.toml"
step bench-sweep-unit 150 "$nasrob" bench sweep-unit --config "$work/demo-offline.toml" --group-size "$group" \
  --hp 1 --device "$device" --json

"$python" - "$work" "$out" "$device" <<'PY'
import json, pathlib, subprocess, sys
work, out, device = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
def parsed(name):
    text = (work / f"{name}.out").read_text() if (work / f"{name}.out").exists() else ""
    lines = [l for l in text.splitlines() if l.strip().startswith("{")]
    try:
        return json.loads(lines[-1]) if lines else text[-2000:]
    except json.JSONDecodeError:
        return text[-2000:]
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip()
except Exception as error:
    gpu = f"no nvidia-smi ({error})"
steps = [json.loads(l) for l in (work / "steps.jsonl").read_text().splitlines()]
summary = {
    "device": device,
    "gpu": gpu,
    "steps": steps,
    "doctor": parsed("doctor"),
    "tests": (work / "tests.out").read_text()[-3000:],
    "bench_train": parsed("bench-train"),
    "bench_attack": parsed("bench-attack"),
    "bench_sweep_unit": parsed("bench-sweep-unit"),
}
(out / "device-check.json").write_text(json.dumps(summary, indent=1))
failed = [s["step"] for s in steps if s["rc"] != 0]
print(json.dumps({"failed_steps": failed, "summary": str(out / "device-check.json")}))
sys.exit(1 if failed else 0)
PY

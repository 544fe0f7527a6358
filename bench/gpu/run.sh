#!/usr/bin/env bash
# GPU kit, part 2 (runs ON the GPU machine, from the repository root, after bench/gpu/kit.sh built .gpu/ here and the
# device tool carried it there; kit.sh prints the call). Every stage is bounded by `timeout`, and the whole run by a
# budget (default 510 s), so a hang cannot eat the session's 15 minutes of device time:
#   1. unpack: Node (.gpu/node.xz), node_modules (.gpu/nm.tar.xz, where the tree has none), dist/ and build/
#      (.gpu/app.tar.xz); the Vulkan loader debs (.gpu/debs) into / when no libvulkan.so.1 is there (root only);
#      VK_DRIVER_FILES to the NVIDIA ICD where it exists and none is named, XDG_RUNTIME_DIR (../shared/design/GPU.md)
#   2. the GPU (nvidia-smi), torch's version, the WebGPU adapter (name, features, limits) through dist's device code
#   2b. the f16 path's tensor cores in the backend (bench/lab/webgpu-tensorcore-backend.mjs, 45 s at most, --no-tc
#      skips it): the self-check's verdict (describe()), numerics at GPT-2 shapes against float64 and the emulated f16
#      kernel, x·Wᵀ at M16384 K768 N3072 timed on tensor cores / emulated f16 / f32, into tensorcore-backend.txt
#   3. a correctness smoke: `llmts train` for 4 steps on wasm and on webgpu from the same seed; the losses compared
#   4. bench/train.bench.mjs --backend webgpu --json, one case per command (tiny, tiny-b64, small, then gpt2 if at
#      least 150 s are left), each under its own timeout, against PyTorch fp32 (bench/peers/torch-gpt.py) and TF.js
#      webgpu (gpt2: PyTorch only; TF.js runs out of device memory there, ANCHORS.md); each peer gets 35% of the
#      case's time, and our own figure goes to run.log before the peers start
#   5. labs: host µs a dispatch recording tiny's step, the matmul kernels at M16384 K768 N3072 and at M1 K768 N32000 (bench/lab/webgpu-matmul.mjs),
#      f16 tensor-core tiles at 4096³ (bench/lab/webgpu-tensorcore.mjs), the sample paths against ref
#      (bench/lab/webgpu-sample-check.mjs), tiled
#      (flash) attention against the row kernels at B16 T1024 H12 D64 (bench/lab/webgpu-attention.mjs)
#   6. decode: bench/decode.bench.mjs on webgpu, then on wasm (all cores), stories110M f32 and q8, if 60 s are left
# Writes under $OUT (else .gpu/out): run.log (everything), train.jsonl (the bench's JSON lines), decode.jsonl,
# host.txt, matmul.txt, tensorcore.txt, tensorcore-backend.txt, sample.txt, gemv.txt, attention.txt, summary.txt (one
# line a case: ours, PyTorch's and TF.js's tok/s, the ratios), adapter.txt, smoke.txt.
# usage: bash bench/gpu/run.sh [--quick] [--budget S] [--cases a,b] [--steps N] [--no-smoke] [--no-tc]
#   --quick     a rehearsal on a software adapter (SwiftShader): a 1-layer × 32 smoke model, bench case `micro` only
#   --budget S  seconds the whole run may take (default 510: inside run's 570 s timeout_s)
#   --cases     bench cases (default tiny,tiny-b64,small,gpt2)   --steps N   timed steps per case (default: the bench's)
#   --no-tc     skip stage 2b (the backend's tensor-core check and timing)
set -uo pipefail
t0=$(date +%s)
budget=510 quick=0 smoke=1 tc=1 cases='' steps=''
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --budget) budget=$2; shift ;;
    --cases) cases=$2; shift ;;
    --steps) steps=$2; shift ;;
    --no-smoke) smoke=0 ;;
    --no-tc) tc=0 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$cases" ] || { [ "$quick" = 1 ] && cases=micro || cases=tiny,tiny-b64,small,gpt2; }
out=${OUT:-$PWD/.gpu/out}
mkdir -p "$out"
log=$out/run.log
: > "$log"
left() { echo $((budget - ($(date +%s) - t0))); }
say() { printf '[%4ss] %s\n' "$(($(date +%s) - t0))" "$*" | tee -a "$log"; }
# run a stage under a timeout of $1 seconds (never past the budget), its output into the log
stage() {
  local limit=$1; shift
  local l; l=$(left)
  [ "$limit" -gt "$((l - 5))" ] && limit=$((l - 5))
  if [ "$limit" -lt 5 ]; then say "skipped (budget spent): $*"; return 124; fi
  timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && say "timed out after ${limit}s: $*"
  return "$rc"
}
cd "$(dirname "$0")/../.." || exit 1
say "run.sh in $PWD, budget ${budget}s, cases $cases$([ "$quick" = 1 ] && echo ', quick')"

# 1. unpack
work=/tmp/llmts-gpu
mkdir -p "$work/bin" "$work/xdg" && chmod 700 "$work/xdg"
if ! command -v node >/dev/null 2>&1 || [ "${LLMTS_KIT_NODE:-}" = 1 ]; then
  xz -dc .gpu/node.xz > "$work/bin/node" && chmod +x "$work/bin/node" || { say "no .gpu/node.xz: run bench/gpu/kit.sh first"; exit 1; }
  export PATH=$work/bin:$PATH
fi
say "node $(node --version) at $(command -v node)"
if [ -e node_modules ]; then say "node_modules already here: kept"
else tar xJf .gpu/nm.tar.xz || { say "could not unpack .gpu/nm.tar.xz"; exit 1; }; fi
tar xJf .gpu/app.tar.xz || { say "could not unpack .gpu/app.tar.xz"; exit 1; }
export PATH="$PATH:/sbin:/usr/sbin" # ldconfig
if ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then say "Vulkan loader: the system's"
elif [ "$(id -u)" = 0 ]; then
  for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
  say "Vulkan loader: unpacked from .gpu/debs ($(ls .gpu/debs | wc -l) packages)"
else say "no Vulkan loader and not root: Dawn will find no adapter"; fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  export VK_DRIVER_FILES=$icd
  [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] &&
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work/xdg}
say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset: the system drivers, SwiftShader where Chromium installed it)}"

# 2. what is there
command -v nvidia-smi >/dev/null && stage 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
stage 60 python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' ||
  say "no torch here: the PyTorch peer will be reported absent"
stage 60 node --input-type=module -e '
const { requestWebGpuDevice } = await import("./dist/backend/webgpu/device.js");
const d = await requestWebGpuDevice();
const lim = d.device.limits;
console.log("adapter:", d.adapterName);
console.log("features:", [...d.adapter.features].sort().join(" "));
console.log("limits: maxBufferSize", lim.maxBufferSize, "maxStorageBufferBindingSize", lim.maxStorageBufferBindingSize,
  "workgroup storage", lim.maxComputeWorkgroupStorageSize, "invocations", lim.maxComputeInvocationsPerWorkgroup);
d.device.destroy();
process.exit(0);' > "$out/adapter.txt"
adapter_rc=$?
cat "$out/adapter.txt"
if [ "$adapter_rc" != 0 ] || ! grep -q '^adapter:' "$out/adapter.txt"; then
  say "no WebGPU adapter (see run.log): stopping before the smoke and the bench"
  exit 1
fi

# 2b. the backend's tensor cores (f16 path): verdict, numerics, one timing; 45 s at most, before the long stages
if [ "$tc" = 1 ]; then
  # --quick (a software adapter): the twin kernel stands in for the subgroup-matrix one, so every branch runs
  if [ "$quick" = 1 ]; then tcargs=(256,64,192 1 64); twin=1; else tcargs=(16384,768,3072 3 1024); twin=0; fi
  say "tensor cores in the backend: ${tcargs[*]}$([ "$twin" = 1 ] && echo ', twin kernel (rehearsal)')"
  LLMTS_TC_TWIN=$twin stage 45 node bench/lab/webgpu-tensorcore-backend.mjs "${tcargs[@]}" > "$out/tensorcore-backend.txt"
  tc_rc=$?
  [ "$tc_rc" = 0 ] || say "tensor-core stage exited with $tc_rc (its output so far is in tensorcore-backend.txt)"
else say "tensor-core stage skipped (--no-tc)"; fi

# 3. smoke: the same 4 training steps on wasm and on webgpu
if [ "$smoke" = 1 ]; then
  model=()
  [ "$quick" = 1 ] && model=(--nLayer=1 --nHead=2 --nEmbd=32 --blockSize=32 --batchSize=4)
  for b in wasm webgpu; do
    rm -rf "$work/smoke/$b"
    stage 120 node bin/llmts.js train --input=shakespeare --tokenizer=char "${model[@]}" --maxSteps=4 --warmupSteps=1 \
      --backend="$b" --evalInterval=0 --evalBatches=2 --finalEvalBatches=2 --sampleTokens=8 --samplePrompts= \
      --outDir="$work/smoke" --name="$b" --report=false --quiet >/dev/null
  done
  node -e '
const fs = require("fs");
const read = (b) => { try { return fs.readFileSync(process.argv[1] + "/" + b + "/metrics.jsonl", "utf8").split("\n")
  .filter(Boolean).map(JSON.parse).filter((r) => r.type === "step").map((r) => r.loss); } catch { return []; } };
const w = read("wasm"), g = read("webgpu");
const d = Math.max(...w.map((x, i) => Math.abs(x - (g[i] ?? NaN)) / Math.abs(x)));
const ok = w.length === 4 && g.length === 4 && d < 1e-3;
console.log(`smoke ${ok ? "PASS" : "FAIL"}: losses wasm ${w.map((x) => x.toFixed(5)).join(" ")} | webgpu ${g.map((x) => x.toFixed(5)).join(" ")} | max relative difference ${d.toExponential(2)} (tolerance 1e-3)`);
' "$work/smoke" | tee "$out/smoke.txt" | tee -a "$log"
fi

# 4. the train bench, a case per command
: > "$out/train.jsonl"
IFS=, read -ra list <<< "$cases"
for c in "${list[@]}"; do
  case "$c" in
    gpt2) limit=300 need=150 peers=(--peers torch) ;;
    small) limit=180 need=60 peers=() ;;
    *) limit=120 need=30 peers=() ;;
  esac
  l=$(left)
  if [ "$l" -lt "$need" ]; then
    say "bench $c skipped: ${l}s left, it needs ${need}s"
    echo "{\"case\":\"train-$c\",\"error\":\"skipped by run.sh: ${l} s left of the budget, it needs ${need} s\"}" >> "$out/train.jsonl"
    continue
  fi
  [ "$limit" -gt "$((l - 10))" ] && limit=$((l - 10))
  say "bench $c (limit ${limit}s)"
  timeout -k 5 "$limit" node bench/train.bench.mjs --backend webgpu --cases "$c" --json \
    --peer-timeout "$((limit * 35 / 100))" ${steps:+--steps "$steps"} "${peers[@]}" 2>>"$log" | tee -a "$out/train.jsonl" | tee -a "$log" >/dev/null
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    say "bench $c exited with $rc$([ "$rc" = 124 ] && echo " (timed out after ${limit}s)")"
    grep -q "\"case\":\"train-$c\"" "$out/train.jsonl" ||
      echo "{\"case\":\"train-$c\",\"error\":\"run.sh: the bench exited with $rc$([ "$rc" = 124 ] && echo " (timed out after ${limit} s; our figure, if measured, is in run.log)")\"}" >> "$out/train.jsonl"
  fi
done

# 5. labs, each when at least 40 s are left: the host's cost of recording a tiny training step (µs a dispatch,
#    bench/lab/webgpu-host.mjs) into host.txt; the matmul kernels (32×32, 64×64 and 128×128 blocks;
#    bench/lab/webgpu-matmul.mjs) at GPT-2's MLP up-projection in training (M = B16·T1024, K 768, N 3072) into
#    matmul.txt; the matrix-vector kernel against the 32×32 one at stories110M's head in decode (M 1, K 768, N 32000)
#    into gemv.txt; the tiled (flash) attention kernels against the row kernels (bench/lab/webgpu-attention.mjs) at
#    GPT-2's B16 T1024 H12 D64 into attention.txt; f16 subgroup-matrix (tensor-core) matmuls at 4096³
#    (bench/lab/webgpu-tensorcore.mjs, written without the hardware: compiles? right? TFLOP/s) into tensorcore.txt;
#    the sample paths (greedy, certified temperature draws, top-k candidates, the full row) against ref's ids at
#    V 50257, with each call's time (bench/lab/webgpu-sample-check.mjs) into sample.txt
if [ "$quick" = 1 ]; then labs="host:calls matmul:256,64,192 tensorcore:256,256,256 sample:2000 gemv:1,64,500 attention:1,32,2,16"
else labs="host:tiny matmul:16384,768,3072 tensorcore:4096,4096,4096 sample:50257 gemv:1,768,32000 attention:16,1024,12,64"; fi
for spec in $labs; do
  name=${spec%%:*} shape=${spec#*:}
  l=$(left)
  if [ "$l" -lt 40 ]; then say "$name lab skipped: ${l}s left"; continue; fi
  say "$name lab $shape"
  case "$name" in
    host) stage 45 node --expose-gc bench/lab/webgpu-host.mjs --shape "$shape" --steps 6 --rounds 1 ;;
    gemv) stage 45 node bench/lab/webgpu-matmul.mjs "$shape" 3 ;;
    tensorcore) stage 45 node bench/lab/webgpu-tensorcore.mjs "$shape" 20 ;;
    sample) stage 45 node bench/lab/webgpu-sample-check.mjs "$shape" 100 ;;
    *) stage 45 node "bench/lab/webgpu-$name.mjs" "$shape" 3 ;;
  esac | tee "$out/$name.txt" >/dev/null
done

# 6. decode (issue 13: stories110M on the GPU against the CPU backend), when at least 60 s are left: the decode bench
#    on webgpu, then on wasm with every core, 48 tokens after a 64-token prompt, f32 and q8, one rep each
if [ "$quick" = 1 ]; then dcase=stories15M dtok=4; else dcase=stories110M dtok=48; fi
for be in webgpu wasm; do
  l=$(left)
  if [ "$l" -lt 60 ]; then say "decode on $be skipped: ${l}s left"; continue; fi
  limit=$((l - 10)); [ "$limit" -gt 120 ] && limit=120; [ "$quick" = 1 ] && [ "$limit" -gt 60 ] && limit=60
  say "decode $dcase on $be (limit ${limit}s)"
  timeout -k 5 "$limit" node bench/decode.bench.mjs --backend "$be" --cases "$dcase" --modes prompt --prompt 64 \
    --tokens "$dtok" --weights f32,q8 --no-peer --reps 1 --json 2>>"$log" | tee -a "$out/decode.jsonl" | tee -a "$log" >/dev/null
done

# summary: ours against each peer, per case
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("{")).map(JSON.parse);
const b = rows.find((r) => r.bench === "backend");
console.log(`backend: ${b ? b.describe : "(none)"}`);
for (const r of rows.filter((r) => r.case)) {
  if (r.error) { console.log(`${r.case.padEnd(15)} ${r.B ? `B${r.B} T${r.T}  ` : ""}failed: ${r.error}`); continue; }
  const ps = (r.peers || []).map((p) => p.tok_s ? `${p.peer} ${p.tok_s} tok/s (ours ×${p.ratio_vs})` : `${p.peer}: ${p.error}`);
  console.log(`${r.case.padEnd(15)} B${r.B} T${r.T}  ${r.tok_s} tok/s, ${r.ms_per_step} ms/step, ${r.gflop_s} GFLOP/s, first loss ${r.first_loss}  |  ${ps.join("  |  ") || "no peers"}`);
}' "$out/train.jsonl" | tee "$out/summary.txt" | tee -a "$log"
say "done in $(($(date +%s) - t0))s; results in $out"

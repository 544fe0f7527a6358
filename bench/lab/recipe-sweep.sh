#!/bin/bash
# nanoGPT's shakespeare-char recipe over several seeds, ours next to nanoGPT's (PyTorch) when PyTorch is importable:
# the distribution behind the README's "Learning" figures. Each of our runs uses 2 threads, all run at once, so give it
# 2 cores per seed (the 16-core lent GPU machine ran 7 seeds in 5.5 min; PyTorch ran 10 seeds on the H200 in 3.5 min).
#   usage: bash bench/lab/recipe-sweep.sh [seeds=1337,1,2,3,4,5,6] [data=data/tinyshakespeare.txt] [out=runs/sweep]
set -u
seeds=${1:-1337,1,2,3,4,5,6}; data=${2:-data/tinyshakespeare.txt}; out=${3:-runs/sweep}
here=$(cd "$(dirname "$0")/../.." && pwd); mkdir -p "$out"
for s in ${seeds//,/ }; do
  node "$here/bin/llmts.js" train --preset=shakespeare-char --input="$data" --seed="$s" --threads=2 --outDir="$out" \
    --name="s$s" --cacheDir="$out/.cache-$s" --finalEvalBatches=2000 --sampleInterval=0 --checkpointInterval=0 \
    > "$out/s$s.log" 2>&1 &
done
dev=cpu; python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null && dev=cuda
if python3 -c 'import torch' 2>/dev/null; then
  python3 "$here/bench/peers/nanogpt-shakespeare-char.py" "$data" "$seeds" "$dev" > "$out/nanogpt.jsonl" &
fi
wait
node -e '
const fs = require("fs"), out = process.argv[1];
const stats = (v) => { const m = v.reduce((a, b) => a + b, 0) / v.length; const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, v.length - 1)); return `mean ${m.toFixed(4)} ± ${sd.toFixed(4)} (min ${Math.min(...v).toFixed(4)}, max ${Math.max(...v).toFixed(4)}, n ${v.length})`; };
const ours = fs.readdirSync(out).filter((d) => fs.existsSync(`${out}/${d}/metrics.jsonl`)).map((d) =>
  fs.readFileSync(`${out}/${d}/metrics.jsonl`, "utf8").trim().split("\n").map(JSON.parse).filter((r) => r.type === "eval").pop().valLoss);
console.log("llm.ts  val loss (2000 batches):", stats(ours));
if (fs.existsSync(`${out}/nanogpt.jsonl`)) { const r = fs.readFileSync(`${out}/nanogpt.jsonl`, "utf8").trim().split("\n").filter(Boolean).map(JSON.parse);
  if (r.length) { console.log("nanoGPT val loss (2000 batches):", stats(r.map((x) => x.val2000))); console.log("nanoGPT val loss (its 20-batch estimate):", stats(r.map((x) => x.val20))); } }
' "$out"

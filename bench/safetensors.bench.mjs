// safetensors I/O benchmark: read and write a synthetic float32 checkpoint (~128 MB by default, 64 tensors) with
// src/formats, and the same bytes with plain fs.readFile / fs.writeFile as the peer (the disk/page-cache ceiling: ratio
// = our MB/s ÷ peer MB/s, 1.0 means no overhead beyond the bytes). Also F16 / BF16 conversion speed (F32 ↔ 16-bit).
// usage: node bench/safetensors.bench.mjs [--json] [--mb 128] [--help]
//   --json: one JSON line per figure, after a { bench: "machine" } line.  --mb: the checkpoint's size in MiB.
//   --help, -h: print this and run nothing.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exitIfHelp, printMachine } from './machine.mjs';

exitIfHelp(import.meta.url);

const argv = process.argv.slice(2);
const opt = (/** @type {string} */ k, /** @type {string | number} */ d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const json = argv.includes('--json');
const mb = Number(opt('--mb', 128));
printMachine('safetensors', 1, json);

const io = await import('../dist/formats/index.js');
const { Rng } = await import('../dist/util/rng.js');

const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'llmts-bench-st-'));
const rng = new Rng(1);
const nTensors = 64;
const per = Math.floor((mb * 2 ** 20) / 4 / nTensors);
const tensors = new Map();
for (let i = 0; i < nTensors; i++) {
  const data = new Float32Array(per);
  for (let j = 0; j < per; j += 97) data[j] = rng.random() - 0.5;
  tensors.set(`layers.${i}.weight`, { shape: [per], data });
}
const bytes = nTensors * per * 4;
const MB = bytes / 2 ** 20;

/** @param {() => Promise<unknown>} fn */
async function best(fn, reps = 3) {
  let t = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t / 1000;
}

const ours = path.join(dir, 'model.safetensors');
const peerFile = path.join(dir, 'peer.bin');
const tWrite = await best(() => io.writeSafetensors(ours, tensors, { format: 'pt' }));
const blob = fs.readFileSync(ours);
const tPeerWrite = await best(async () => {
  await fsp.writeFile(peerFile, blob);
  const fh = await fsp.open(peerFile, 'r+');
  await fh.sync(); // our writer fsyncs; so does the peer
  await fh.close();
});
const tRead = await best(() => io.readSafetensors(ours));
const tPeerRead = await best(() => fsp.readFile(peerFile));

const f32 = new Float32Array(8 * 2 ** 20);
for (let i = 0; i < f32.length; i++) f32[i] = (rng.random() - 0.5) * 8;
/** @type {Uint16Array} */
let h16 = new Uint16Array(0);
/** @type {Uint16Array} */
let b16 = new Uint16Array(0);
const tToF16 = await best(async () => void (h16 = io.float32ToF16Array(f32)));
const tFromF16 = await best(async () => void io.f16ArrayToFloat32(h16));
const tToBf16 = await best(async () => void (b16 = io.float32ToBf16Array(f32)));
const tFromBf16 = await best(async () => void io.bf16ArrayToFloat32(b16));
await fsp.rm(dir, { recursive: true, force: true });

const rows = [
  { op: 'write', mb_s: MB / tWrite, peer: 'fs.writeFile + fsync', peer_mb_s: MB / tPeerWrite },
  { op: 'read', mb_s: MB / tRead, peer: 'fs.readFile', peer_mb_s: MB / tPeerRead },
];
const conv = /** @type {[string, number][]} */ ([
  ['f32→f16', tToF16],
  ['f16→f32', tFromF16],
  ['f32→bf16', tToBf16],
  ['bf16→f32', tFromBf16],
]).map(([op, t]) => ({ op, melem_s: f32.length / 1e6 / t }));

for (const r of rows) {
  const row = {
    bench: 'safetensors',
    case: r.op,
    mb: +MB.toFixed(1),
    mb_s: +r.mb_s.toFixed(1),
    peer: r.peer,
    peer_mb_s: +r.peer_mb_s.toFixed(1),
    ratio: +(r.mb_s / r.peer_mb_s).toFixed(3),
  };
  if (json) console.log(JSON.stringify(row));
  else
    console.log(
      `${r.op.padEnd(6)} ${MB.toFixed(0)} MB: ${row.mb_s} MB/s | ${r.peer} ${row.peer_mb_s} MB/s → ratio ${row.ratio}`,
    );
}
for (const c of conv) {
  const row = { bench: 'safetensors', case: c.op, melem_s: +c.melem_s.toFixed(1) };
  if (json) console.log(JSON.stringify(row));
  else console.log(`${c.op.padEnd(9)} ${row.melem_s} M elements/s`);
}

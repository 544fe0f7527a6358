// Rows and an emulated device for the top-p / min-p `sample` tests (./sample_nucleus.test.ts,
// ./webgpu_sample_nucleus.test.ts): what src/backend/webgpu/sample_topk.ts `runSampleTopKTail` writes, in float32
// arithmetic, with WGSL's `exp` as far off as the spec allows (3 + 2|y| ULP), in one direction.
import { nucleusConstants, nucleusStride } from '../src/backend/sample_nucleus.js';
import type { Rng } from '../src/util/rng.js';

const f = Math.fround;

/** Zipf-like rows (N, V): logit of rank r = −s·ln r + noise·normal, ranks in random order (LM-like, peaked for s ≥ 1.5). */
export function zipfRows(rng: Rng, N: number, V: number, s: number, noise = 0.3): Float32Array {
  const x = new Float32Array(N * V);
  for (let n = 0; n < N; n++) {
    const perm = Array.from({ length: V }, (_, i) => i);
    for (let i = V - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    for (let r = 0; r < V; r++) x[n * V + perm[r]!] = -s * Math.log(r + 1) + noise * rng.normal();
  }
  return x;
}

/**
 * The device's slots for rows `x` (N, V): the `cap` largest logits (all ties: count may pass cap) in id order, lse,
 * and the tail sums S̃, Ã over the rest in float32 (256 strided partial sums, then a tree), exp off by
 * dir·(3 + 2|y|)·2^−23 relative.
 */
export function emulateSlots(x: Float32Array, N: number, V: number, cap: number, T: number, dir: number): Int32Array {
  const stride = nucleusStride(cap),
    w = new Int32Array(N * stride),
    b = new Float32Array(w.buffer);
  const c = nucleusConstants(T, V);
  for (let n = 0; n < N; n++) {
    const row = x.subarray(n * V, (n + 1) * V),
      o = n * stride;
    const sorted = Float32Array.from(row).sort().reverse();
    const thr = sorted[Math.min(cap, V) - 1]!,
      mx = sorted[0]!;
    let count = 0,
      e = 0;
    for (let i = 0; i < V; i++) {
      e += Math.exp(row[i]! - mx);
      if (row[i]! >= thr) {
        if (count < cap) {
          w[o + 4 + count] = i;
          b[o + 4 + cap + count] = row[i]!;
        }
        count++;
      }
    }
    w[o] = count;
    b[o + 1] = mx + Math.log(e);
    const ts = new Float32Array(256),
      ta = new Float32Array(256);
    for (let t = 0; t < 256; t++)
      for (let i = t; i < V; i += 256) {
        if (!(row[i]! < thr)) continue;
        const y = f(f(row[i]! - mx) * c.invT);
        if (!(y >= -80)) continue;
        const ew = f(Math.exp(y) * (1 + dir * (3 + 2 * Math.abs(y)) * 2 ** -23));
        ts[t] = f(ts[t]! + ew);
        ta[t] = f(ta[t]! + f(f(c.c0 + f(c.c1 * Math.abs(y))) * ew));
      }
    for (let s = 128; s > 0; s >>= 1)
      for (let t = 0; t < s; t++) {
        ts[t] = f(ts[t]! + ts[t + s]!);
        ta[t] = f(ta[t]! + ta[t + s]!);
      }
    b[o + 2] = ts[0]!;
    b[o + 3] = ta[0]!;
  }
  return w;
}

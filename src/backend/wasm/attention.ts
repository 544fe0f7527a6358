/**
 * The wasm backend's attention kernels (./assembly/attention.ts): rope and rope_qkv (a cos/sin table per shape, kept
 * for the layers of one step; rope_qkv rotates q and k in place of a fused qkv's rows), attention and its backward over separate q, k, v or one fused qkv (row strides let the
 * kernel read q, k and v in place), streaming over keys, split by (batch, head); optional kept probabilities.
 */
import type { Attrs, View } from '../backend.js';
import { ropeFreqKey, ropeInvFreq } from '../rope_freqs.js';
import {
  flag,
  GEMV_PARALLEL_BYTES,
  MIN_PARALLEL_WORK,
  num,
  type WasmBuffer,
  type WasmCore,
  type WasmKernel,
} from './core.js';

/**
 * Chunks per thread of attention: one (batch, head) each up to this many, so a worker that wakes late or shares
 * its core still gets an even share (a chunk costs ~1 µs to hand out; a head ~50 µs at T = 128, D = 32).
 */
const ATTN_CHUNKS_PER_THREAD = 16;

/** Positions the shared rope table grows to (65,536 rows of D/2 cos and sin: 32 MiB at D = 128). */
const MAX_ROPE_ROWS = 1 << 16;

interface Dims {
  B: number;
  T: number;
  S: number;
  Hq: number;
  Hkv: number;
  D: number;
}

/** B, T, S, Hq, Hkv, D of q [B, T, Hq, D] and k [B, S, Hkv, D]. */
function attnDims(q: View, k: View): Dims {
  const [B, T, Hq, D] = q.shape as [number, number, number, number];
  const S = k.shape[1]!,
    Hkv = k.shape[2]!;
  return { B, T, S, Hq, Hkv, D };
}

/** B, T, Hq, Hkv, D of a fused qkv [B, T, (Hq + 2·Hkv)·D] from the heads/kvHeads attributes (S = T). */
function qkvDims(qkv: View, a: Attrs | undefined): Dims {
  const Hq = num(a, 'heads'),
    Hkv = num(a, 'kvHeads', Hq);
  const [B, T, W] = qkv.shape as [number, number, number];
  const D = W / (Hq + 2 * Hkv);
  return { B, T, S: T, Hq, Hkv, D };
}

function attnScratch(be: WasmCore, S: number, D: number): void {
  be.ensureScratch((be.fns.attention_scratch_bytes as unknown as (S: number, D: number) => number)(S, D));
}

/** Attention forward on q/k/v addresses with token row strides qRow (q) and kRow (k, v), in elements. */
function attnForward(
  be: WasmCore,
  pq: number,
  pk: number,
  pv: number,
  o: readonly View[],
  a: Attrs | undefined,
  d: Dims,
  qRow: number,
  kRow: number,
): void {
  const causal = flag(a, 'causal', true),
    qOffset = num(a, 'qOffset', d.S - d.T);
  const prob = probs(be, o[2]);
  attnScratch(be, d.S, d.D);
  // left-padded rows: their first real key per row, as B int32 in the heap (0: no padding anywhere)
  const starts = a?.['rowStart'] as readonly number[] | undefined;
  let startBuf: WasmBuffer | null = null;
  if (starts) {
    startBuf = be.alloc(d.B, 'i32');
    be.refreshViews();
    be.i32.set(starts, startBuf.ptr >>> 2);
  }
  // decoding (T < 4) streams the cached keys and values like a gemv streams weights: split by their bytes (the keys
  // it sees: a preallocated batch cache passes its whole buffer, the causal mask ending at qOffset + T)
  const seen = causal ? Math.max(0, Math.min(d.S, qOffset + d.T)) : d.S;
  const work =
    d.T < 4
      ? d.B * d.Hkv * seen * d.D * 8 >= GEMV_PARALLEL_BYTES
        ? MIN_PARALLEL_WORK * be.threads
        : 0
      : d.B * d.Hq * d.T * d.S * d.D * 4;
  const head = [
    pq,
    pk,
    pv,
    be.p(o[0]!),
    be.p(o[1]!),
    prob,
    d.T,
    d.S,
    d.Hq,
    d.Hkv,
    d.D,
    qRow,
    kRow,
    num(a, 'scale'),
    causal ? 1 : 0,
    qOffset,
    num(a, 'window', 0),
    startBuf ? startBuf.ptr : 0,
  ];
  try {
    be.par('attention', d.B * d.Hq, work, 1, (lo, hi, s) => [...head, s, lo, hi], ATTN_CHUNKS_PER_THREAD);
  } finally {
    if (startBuf) be.free(startBuf);
  }
}

/** Address of the optional kept-probabilities view p [B, Hq, T, S] (0 when absent). */
function probs(be: WasmCore, p: View | undefined): number {
  return p ? be.p(p) : 0;
}

/** Attention backward; dq/dk/dv share the row strides of q and k/v. */
function attnBackward(
  be: WasmCore,
  dO: View,
  pq: number,
  pk: number,
  pv: number,
  out: View,
  lse: View,
  p: View | undefined,
  pdq: number,
  pdk: number,
  pdv: number,
  a: Attrs | undefined,
  d: Dims,
  qRow: number,
  kRow: number,
): void {
  const causal = flag(a, 'causal', true),
    qOffset = num(a, 'qOffset', d.S - d.T);
  const prob = probs(be, p);
  attnScratch(be, d.S, d.D);
  const work = d.B * d.Hq * d.T * d.S * d.D * 10;
  const head = [
    be.p(dO),
    pq,
    pk,
    pv,
    be.p(out),
    be.p(lse),
    prob,
    pdq,
    pdk,
    pdv,
    d.T,
    d.S,
    d.Hq,
    d.Hkv,
    d.D,
    qRow,
    kRow,
    num(a, 'scale'),
    causal ? 1 : 0,
    qOffset,
    num(a, 'window', 0),
  ];
  be.par('attention_backward', d.B * d.Hkv, work, 1, (lo, hi, s) => [...head, s, lo, hi], ATTN_CHUNKS_PER_THREAD);
}

/**
 * The cos/sin tables [Tt, D/2] of a rope call, in float32 as transformers computes them (inv_freq, angle rounded to
 * f32), sin times `sign` (−1: the inverse rotation); returns the kernel's (cos, sin, Tt) arguments. Rows are
 * positions: one table for positions 0 … n − 1 is kept (grown by doubling), and a call at `offset` points into it,
 * so the rope calls of every decode step share one table and none is rebuilt. Left-padded rows (rowStart): a table
 * of one row per (b, t), Tt = B·T rows, so the kernel's row index bt % Tt is the row itself (kept for the layers of
 * one step), and so do positions past MAX_ROPE_ROWS.
 */
function ropeTable(be: WasmCore, a: Attrs | undefined, B: number, T: number, D: number, sign: number): number[] {
  be.hostSide(); // the table is the host's: a captured call would keep pointing at one the next key replaces
  const half = D / 2;
  const freqs = ropeFreqKey(a),
    offset = num(a, 'offset', 0);
  const starts = a?.['rowStart'] as readonly number[] | undefined;
  if (!starts && offset + T <= MAX_ROPE_ROWS) {
    const key = `${freqs}|${D}|${sign}`;
    const kept = be.ropeTable;
    let rows = kept?.key === key ? kept.rows : 0;
    if (offset + T > rows) rows = build(be, key, Math.max(offset + T, 2 * rows, 64), ropeInvFreq(a, D), sign, (r) => r);
    const ptr = be.ropeTable!.buf.ptr + offset * half * 4;
    return [ptr, ptr + rows * half * 4, T];
  }
  // a table for this call alone: its rows' own positions (left padding), or positions past the shared table's
  const key = `${freqs}|${D}|${offset}|${T}|${sign}|${starts ? starts.join(',') : ''}`;
  const Tt = starts ? B * T : T;
  const posOf = starts
    ? (r: number) => Math.max(0, offset + (r % T) - starts[Math.floor(r / T)]!)
    : (r: number) => offset + r;
  if (be.ropeTable?.key !== key) build(be, key, Tt, ropeInvFreq(a, D), sign, posOf);
  const ptr = be.ropeTable!.buf.ptr;
  return [ptr, ptr + Tt * half * 4, Tt];
}

/** Replace the kept rope table by one of `rows` rows (row r at position posOf(r)); returns rows. */
function build(
  be: WasmCore,
  key: string,
  rows: number,
  inv: Float32Array,
  sign: number,
  posOf: (r: number) => number,
): number {
  if (be.ropeTable) be.free(be.ropeTable.buf);
  be.ropeTable = null;
  const half = inv.length;
  const tbl = be.alloc(2 * rows * half, 'f32');
  be.refreshViews();
  const base = tbl.ptr >>> 2;
  for (let t = 0; t < rows; t++) {
    const pos = posOf(t);
    for (let k = 0; k < half; k++) {
      const ang = Math.fround(pos * inv[k]!);
      be.f32[base + t * half + k] = Math.cos(ang);
      be.f32[base + rows * half + t * half + k] = sign * Math.fround(Math.sin(ang));
    }
  }
  be.ropeTable = { key, rows, buf: tbl };
  return rows;
}

/**
 * rope_qkv(_cache): q and k rotated straight from their columns of the fused rows (row stride W), v copied out; with
 * `cache`, k and v go to row b's positions offset … offset + T − 1 of the [B, L, Hkv, D] caches (one rope call per
 * row b then, its table rows and cache rows found by pointer).
 */
function ropeQKV(be: WasmCore, i: readonly View[], o: readonly View[], a: Attrs | undefined, cache: boolean): void {
  const [B, T, W] = i[0]!.shape as [number, number, number];
  const [Hq, D] = [o[0]!.shape[2]!, o[0]!.shape[3]!];
  const [L, Hkv] = [o[1]!.shape[1]!, o[1]!.shape[2]!];
  const [cosT, sinT, Tt] = ropeTable(be, a, B, T, D, 1) as [number, number, number];
  const px = be.p(i[0]!),
    pk = be.p(o[1]!),
    pv = be.p(o[2]!),
    nk = Hkv * D;
  be.range('rope', B * T, B * T * Hq * D * 2, 1, [px, be.p(o[0]!), cosT, sinT, Tt, Hq, D, W]);
  const at = cache ? num(a, 'offset', 0) : 0,
    rowK = cache ? L * nk : T * nk; // elements between two rows b of the k / v outputs
  if (!cache || B === 1) {
    be.range('rope', B * T, B * T * nk * 2, 1, [px + Hq * D * 4, pk + at * nk * 4, cosT, sinT, Tt, Hkv, D, W]);
  } else {
    // rows b are L positions apart in the cache: row by row, each reading its own table rows (Tt = B·T: padded rows)
    const perRow = Tt === T ? 0 : T * (D / 2) * 4;
    for (let b = 0; b < B; b++)
      be.range('rope', T, T * nk * 2, 1, [
        px + (b * T * W + Hq * D) * 4,
        pk + (b * rowK + at * nk) * 4,
        cosT + b * perRow,
        sinT + b * perRow,
        T,
        Hkv,
        D,
        W,
      ]);
  }
  // v: d0 = B rows, d1 = T positions, d3 = Hkv·D contiguous elements
  be.range('strided_copy', B, B * T * nk, 1, [
    px + (Hq + Hkv) * D * 4,
    pv + at * nk * 4,
    T,
    1,
    nk,
    T * W,
    W,
    0,
    1,
    rowK,
    nk,
    0,
    1,
  ]);
}

export const ATTENTION: Record<string, WasmKernel> = {
  rope(be, i, o, a) {
    const x = i[0]!;
    const [B, T, H, D] = x.shape as [number, number, number, number];
    const t = ropeTable(be, a, B, T, D, flag(a, 'inverse', false) ? -1 : 1);
    be.range('rope', B * T, B * T * H * D * 2, 1, [be.p(x), be.p(o[0]!), ...t, H, D, H * D]);
  },
  rope_qkv: (be, i, o, a) => ropeQKV(be, i, o, a, false),
  rope_qkv_cache: (be, i, o, a) => ropeQKV(be, i, o, a, true),
  attention(be, i, o, a) {
    const [q, k, v] = i as [View, View, View];
    const d = attnDims(q, k);
    attnForward(be, be.p(q), be.p(k), be.p(v), o, a, d, d.Hq * d.D, d.Hkv * d.D);
  },
  attention_backward(be, i, o, a) {
    const [dO, q, k, v, out, lse] = i as [View, View, View, View, View, View];
    const d = attnDims(q, k);
    attnBackward(
      be,
      dO,
      be.p(q),
      be.p(k),
      be.p(v),
      out,
      lse,
      i[6],
      be.p(o[0]!),
      be.p(o[1]!),
      be.p(o[2]!),
      a,
      d,
      d.Hq * d.D,
      d.Hkv * d.D,
    );
  },
  attention_qkv(be, i, o, a) {
    const qkv = i[0]!;
    const d = qkvDims(qkv, a);
    const pq = be.p(qkv),
      row = (d.Hq + 2 * d.Hkv) * d.D;
    attnForward(be, pq, pq + d.Hq * d.D * 4, pq + (d.Hq + d.Hkv) * d.D * 4, o, a, d, row, row);
  },
  attention_qkv_backward(be, i, o, a) {
    const [dO, qkv, out, lse] = i as [View, View, View, View];
    const d = qkvDims(qkv, a);
    const pq = be.p(qkv),
      pd = be.p(o[0]!),
      row = (d.Hq + 2 * d.Hkv) * d.D,
      ko = d.Hq * d.D * 4,
      vo = (d.Hq + d.Hkv) * d.D * 4;
    attnBackward(be, dO, pq, pq + ko, pq + vo, out, lse, i[4], pd, pd + ko, pd + vo, a, d, row, row);
  },
};

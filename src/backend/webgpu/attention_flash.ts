/**
 * Tiled ("flash", FlashAttention-2 scheme) attention on WebGPU for prefill and training shapes: no T×S matrix, and each
 * K/V (or Q/dO) row read from global memory once per tile of rows instead of once per row. The parameter block and
 * the q/k/v layouts (separate q, k, v, or the fused qkv read through row stride and base column) are
 * ./attention_params.ts's; grouped-query heads, causal from qOffset, a sliding window, rowStart (forward) as
 * ./attention.ts. The head
 * size D is built into each shader; a thread's own row (q, its accumulator) lives in registers, the shared tiles in
 * `var<workgroup>` memory (at most 16 KiB, WebGPU's guaranteed minimum). Rows are vec4 lanes when D is a multiple of
 * 4 (one workgroup-memory read and one dot() per 4 columns), f32 otherwise.
 * - forward: a workgroup per (b, query head, tile of BR query rows), a thread per query row. Key tiles of `kvTile(D)`
 *   rows: K and V loaded cooperatively, then each row's scores, online softmax (running max m and sum l, the
 *   accumulator rescaled by exp(m_old − m_new)), o = acc / l and lse = m + log l at the end. Causal: the key loop ends
 *   at the tile's last visible key (later tiles never loaded), keys past a row's own limit masked; rowStart[b]: the
 *   loop starts there. A row that sees no key gets o = 0, lse = −∞.
 * - backward: Di = rowsum(dO ∘ O) [B, Hq, T] once (`flashDi`, a thread per query row, into scratch); then
 *   dK/dV a workgroup per (b, kv head, tile of BK key rows), a thread per key row (k, v, dk, dv in registers),
 *   looping over the group's query heads and their query tiles of `qTile(D)` rows (Q, dO, lse, Di staged), causal
 *   tiles wholly before the key tile's first visible query skipped; p = exp(q·k·scale − lse), ds = p·(dO·v − Di);
 *   dQ a workgroup per query tile (as the forward) looping over key tiles, dq = Σ ds·k·scale. No atomics.
 * Kept probabilities (P asked for or given) and decode-sized T stay on ./attention.ts's row kernels.
 */
import { BUILTINS, FLAT_GROUP, type GpuContext, type Params, USAGE, grid, storage } from './core.js';
import { type Dims, HEAD } from './attention_params.js';
import type { GpuBufferLike } from './types.js';
import { wgsl } from './wgsl_memo.js';

/** Query rows per workgroup (forward, dQ) and key rows per workgroup (dK/dV): one thread each. */
export const BR = 64;
export const BK = 64;
/** Threads of the Di kernel. */
const WGD = 64;
/** Floats of workgroup memory a shader may use: 16 KiB, the WebGPU default limit. */
const WG_FLOATS = 4096;

/** Key rows per staged K/V tile (K and V, D floats a row each), at most 32. */
export function kvTile(D: number): number {
  return Math.max(1, Math.min(32, Math.floor(WG_FLOATS / (2 * D))));
}

/** Query rows per staged Q/dO tile of the dK/dV kernel (Q and dO rows plus lse and Di), at most 32. */
export function qTile(D: number): number {
  return Math.max(1, Math.min(32, Math.floor(WG_FLOATS / (2 * D + 2))));
}

/**
 * A row of D floats as DW = D / W lanes of type `ty`: vec4<f32> when D is a multiple of 4 (one shared-memory read
 * and one dot() per 4 columns), else f32. `dot` multiplies two lanes into a scalar; global buffers stay f32 arrays,
 * read and written through `ld<X>` / `st<X>` (functions from `laneIo`).
 */
interface Lanes {
  W: 1 | 4;
  DW: number;
  ty: string;
  dot: (a: string, b: string) => string;
}

function lanesOf(D: number): Lanes {
  return D % 4 === 0
    ? { W: 4, DW: D / 4, ty: 'vec4<f32>', dot: (a, b) => `dot(${a}, ${b})` }
    : { W: 1, DW: D, ty: 'f32', dot: (a, b) => `(${a} * ${b})` };
}

/** WGSL: lane readers `ldX(o)` of the f32 buffers `reads` and writers `stX(o, x)` of `writes` (o: the first float). */
function laneIo(L: Lanes, reads: string[], writes: string[]): string {
  const at = (X: string, k: number) => `${X}[o${k ? ` + ${k}u` : ''}]`;
  const ld = (X: string) =>
    `fn ld${X}(o: u32) -> ${L.ty} { return ${L.W === 4 ? `vec4<f32>(${[0, 1, 2, 3].map((k) => at(X, k)).join(', ')})` : at(X, 0)}; }`;
  const st = (X: string) =>
    `fn st${X}(o: u32, x: ${L.ty}) { ${L.W === 4 ? ['x', 'y', 'z', 'w'].map((c, k) => `${at(X, k)} = x.${c};`).join(' ') : `${at(X, 0)} = x;`} }`;
  return `${[...reads.map(ld), ...writes.map(st)].join('\n')}\n`;
}

/** WGSL: `for` over the DW lanes of a row (i the lane, i·W its first column). */
const cols = (L: Lanes, body: string) => `for (var i = 0u; i < ${L.DW}u; i++) { ${body} }`;

/** WGSL: a query tile's workgroup (b, h, tile), its thread's row t (live: t < T) and the keys [0, hi) the tile sees. */
function queryTile(D: number): string {
  return `
  ${FLAT_GROUP}
  let nt = (T + ${BR - 1}u) / ${BR}u;
  let tile = grp % nt;
  let h = (grp / nt) % Hq;
  let b = grp / (nt * Hq);
  if (b >= B) { return; }
  let kvh = h / group;
  let t0 = tile * ${BR}u;
  let t = t0 + lid;
  let live = t < T;
  let tLast = min(T, t0 + ${BR}u) - 1u;
  // keys the tile sees: [.., hi); this row's: [.., n)
  var hi = i32(S);
  var n = i32(S);
  if (causal) {
    hi = min(i32(S), qOffset + i32(tLast) + 1);
    n = min(i32(S), qOffset + i32(t) + 1);
  }
  // a sliding window: this row's keys start at lo, the tile's at loT (its first row's)
  var lo = 0;
  var loT = 0;
  if (window > 0) {
    lo = qOffset + i32(t) - window + 1;
    loT = max(0, qOffset + i32(t0) - window + 1);
  }
  let r = (b * Hq + h) * T + t; // lse / Di index [B, Hq, T]
  let qo = (b * T + t) * qStride + qBase + h * ${D}u;
  let go = ((b * T + t) * Hq + h) * ${D}u; // o / dO [B, T, Hq, D]`;
}

/** WGSL: K and V rows [kt, kt + BC) ∩ [.., hi) of (b, kvh) into Ks, Vs (zeros past hi), between barriers. */
function loadKV(D: number, L: Lanes, BC: number): string {
  return `
    workgroupBarrier();
    for (var e = lid; e < ${BC * L.DW}u; e += ${BR}u) {
      let s = kt + i32(e / ${L.DW}u);
      var kx = ${L.ty}();
      var vx = ${L.ty}();
      if (s < hi) {
        let ro = (b * S + u32(s)) * kvStride + kvh * ${D}u + (e % ${L.DW}u) * ${L.W}u;
        kx = ldK(ro + kBase);
        vx = ldV(ro + vBase);
      }
      Ks[e] = kx;
      Vs[e] = vx;
    }
    workgroupBarrier();`;
}

/** The forward shader: (Q, K, V) → (O, LSE). */
export function flashForward(D: number): string {
  const BC = kvTile(D),
    L = lanesOf(D);
  return `${storage(1, 'Q', 'f32', false)}${storage(2, 'K', 'f32', false)}${storage(3, 'V', 'f32', false)}${storage(4, 'O', 'f32', true)}${storage(5, 'LSE', 'f32', true)}${laneIo(L, ['Q', 'K', 'V'], ['O'])}
var<workgroup> Ks: array<${L.ty}, ${BC * L.DW}>;
var<workgroup> Vs: array<${L.ty}, ${BC * L.DW}>;
@compute @workgroup_size(${BR}) fn main(${BUILTINS}) {${HEAD}${queryTile(D)}
  let s0 = i32(pu(17u + b)); // rowStart: keys before it are padding
  var q: array<${L.ty}, ${L.DW}>;
  if (live) { ${cols(L, `q[i] = ldQ(qo + i * ${L.W}u);`)} }
  var acc: array<${L.ty}, ${L.DW}>;
  var m = -3.0e38; // finite: WGSL may assume no infinities in arithmetic
  var l = 0.0;
  for (var kt = max(s0, loT); kt < hi; kt += ${BC}) {${loadKV(D, L, BC)}
    if (live) {
      var sc: array<f32, ${BC}>;
      var mt = m;
      for (var j = 0; j < ${BC}; j++) {
        if (kt + j < n && kt + j >= lo) {
          let ko = u32(j) * ${L.DW}u;
          var d = 0.0;
          ${cols(L, `d += ${L.dot('q[i]', 'Ks[ko + i]')};`)}
          sc[j] = d * scale;
          mt = max(mt, sc[j]);
        }
      }
      let alpha = exp(m - mt);
      l *= alpha;
      ${cols(L, 'acc[i] *= alpha;')}
      for (var j = 0; j < ${BC}; j++) {
        if (kt + j < n && kt + j >= lo) {
          let p = exp(sc[j] - mt);
          l += p;
          let vo = u32(j) * ${L.DW}u;
          ${cols(L, 'acc[i] += p * Vs[vo + i];')}
        }
      }
      m = mt;
    }
  }
  if (live) {
    let seen = n > s0;
    LSE[r] = select(pf(15u), m + log(l), seen);
    if (seen) { ${cols(L, `stO(go + i * ${L.W}u, acc[i] / l);`)} } else { ${cols(L, `stO(go + i * ${L.W}u, ${L.ty}());`)} }
  }
}`;
}

/** Di = rowsum(dO ∘ O) per query row, [B, Hq, T]: (DO, O) → DI. */
export function flashDi(D: number): string {
  return `${storage(1, 'DO', 'f32', false)}${storage(2, 'O', 'f32', false)}${storage(3, 'DI', 'f32', true)}
@compute @workgroup_size(${WGD}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let r = grp * ${WGD}u + lid;
  if (r >= pu(9u)) { return; }${HEAD}
  let t = r % T;
  let h = (r / T) % Hq;
  let b = r / (T * Hq);
  let go = ((b * T + t) * Hq + h) * ${D}u;
  var d = 0.0;
  for (var i = 0u; i < ${D}u; i++) { d += DO[go + i] * O[go + i]; }
  DI[r] = d;
}`;
}

const BWD_IN = `${storage(1, 'DO', 'f32', false)}${storage(2, 'Q', 'f32', false)}${storage(3, 'K', 'f32', false)}${storage(4, 'V', 'f32', false)}${storage(5, 'LSE', 'f32', false)}${storage(6, 'DI', 'f32', false)}`;

/** dQ: (DO, Q, K, V, LSE, DI) → DQ, a workgroup per query tile looping over key tiles. */
export function flashDq(D: number): string {
  const BC = kvTile(D),
    L = lanesOf(D);
  return `${BWD_IN}${storage(7, 'DQ', 'f32', true)}${laneIo(L, ['DO', 'Q', 'K', 'V'], ['DQ'])}
var<workgroup> Ks: array<${L.ty}, ${BC * L.DW}>;
var<workgroup> Vs: array<${L.ty}, ${BC * L.DW}>;
@compute @workgroup_size(${BR}) fn main(${BUILTINS}) {${HEAD}${queryTile(D)}
  var q: array<${L.ty}, ${L.DW}>;
  var g: array<${L.ty}, ${L.DW}>;
  var lse = 0.0;
  var di = 0.0;
  if (live) {
    ${cols(L, `q[i] = ldQ(qo + i * ${L.W}u); g[i] = ldDO(go + i * ${L.W}u);`)}
    lse = LSE[r];
    di = DI[r];
  }
  var acc: array<${L.ty}, ${L.DW}>;
  for (var kt = loT; kt < hi; kt += ${BC}) {${loadKV(D, L, BC)}
    if (live) {
      for (var j = 0; j < ${BC}; j++) {
        if (kt + j < n && kt + j >= lo) {
          let ko = u32(j) * ${L.DW}u;
          var qk = 0.0;
          var dp = 0.0;
          ${cols(L, `qk += ${L.dot('q[i]', 'Ks[ko + i]')}; dp += ${L.dot('g[i]', 'Vs[ko + i]')};`)}
          let ds = exp(qk * scale - lse) * (dp - di) * scale;
          ${cols(L, 'acc[i] += ds * Ks[ko + i];')}
        }
      }
    }
  }
  if (live) { ${cols(L, `stDQ(qo + i * ${L.W}u, acc[i]);`)} }
}`;
}

/**
 * dK and dV: (DO, Q, K, V, LSE, DI) → DK, DV (`fused`: one binding DK holding both, the fused qkv gradient), a
 * workgroup per (b, kv head, key tile), a thread per key row, over the group's query heads and their query tiles.
 * `part` 'k' or 'v': only that gradient (one output binding DX), the thread holding 3 rows (k, v, dk) or 2 (k, dv)
 * instead of 4 — a second pass over the tiles for fewer registers (`flashAttention.splitKV`).
 */
export function flashDkv(D: number, fused: boolean, part: 'kv' | 'k' | 'v' = 'kv'): string {
  const BQ = qTile(D),
    L = lanesOf(D);
  const wk = part !== 'v',
    wv = part !== 'k';
  const outs = part === 'kv' ? (fused ? ['DK'] : ['DK', 'DV']) : ['DX'];
  const decl = outs.map((X, n) => storage(7 + n, X, 'f32', true)).join('');
  const [kOut, vOut] = part === 'kv' ? ['DK', fused ? 'DK' : 'DV'] : ['DX', 'DX'];
  return `${BWD_IN}${decl}${laneIo(L, ['DO', 'Q', 'K', 'V'], outs)}
var<workgroup> Qs: array<${L.ty}, ${BQ * L.DW}>;
var<workgroup> Gs: array<${L.ty}, ${BQ * L.DW}>;
var<workgroup> Ls: array<f32, ${BQ}>;
var<workgroup> Ds: array<f32, ${BQ}>;
@compute @workgroup_size(${BK}) fn main(${BUILTINS}) {${HEAD}
  ${wk ? '' : '_ = arrayLength(&V); // bound, unused by dV'}
  ${FLAT_GROUP}
  let nt = (S + ${BK - 1}u) / ${BK}u;
  let tile = grp % nt;
  let kvh = (grp / nt) % Hkv;
  let b = grp / (nt * Hkv);
  if (b >= B) { return; }
  let sA = tile * ${BK}u;
  let s = sA + lid;
  let live = s < S;
  let ko = (b * S + s) * kvStride + kvh * ${D}u;
  var k: array<${L.ty}, ${L.DW}>;
  ${wk ? `var v: array<${L.ty}, ${L.DW}>;` : ''}
  if (live) { ${cols(L, `k[i] = ldK(ko + kBase + i * ${L.W}u);${wk ? ` v[i] = ldV(ko + vBase + i * ${L.W}u);` : ''}`)} }
  ${wk ? `var dk: array<${L.ty}, ${L.DW}>;` : ''}
  ${wv ? `var dv: array<${L.ty}, ${L.DW}>;` : ''}
  // causal: query rows before the tile's first key's first viewer see none of its keys
  var tmin = 0u;
  if (causal) { tmin = u32(clamp(i32(sA) - qOffset, 0, i32(T))); }
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var tq = tmin; tq < T; tq += ${BQ}u) {
      workgroupBarrier();
      for (var e = lid; e < ${BQ * L.DW}u; e += ${BK}u) {
        let t = tq + e / ${L.DW}u;
        let c = (e % ${L.DW}u) * ${L.W}u;
        var qx = ${L.ty}();
        var gx = ${L.ty}();
        if (t < T) {
          qx = ldQ((b * T + t) * qStride + qBase + h * ${D}u + c);
          gx = ldDO(((b * T + t) * Hq + h) * ${D}u + c);
        }
        Qs[e] = qx;
        Gs[e] = gx;
      }
      for (var j = lid; j < ${BQ}u; j += ${BK}u) {
        let t = tq + j;
        var lx = 0.0;
        var dx = 0.0;
        if (t < T) {
          lx = LSE[(b * Hq + h) * T + t];
          dx = DI[(b * Hq + h) * T + t];
        }
        Ls[j] = lx;
        Ds[j] = dx;
      }
      workgroupBarrier();
      if (live) {
        for (var j = 0u; j < ${BQ}u; j++) {
          let t = tq + j;
          if (t >= T) { break; }
          if (causal && i32(s) > qOffset + i32(t)) { continue; }
          if (window > 0 && i32(s) < qOffset + i32(t) - window + 1) { continue; }
          let qo = j * ${L.DW}u;
          var qk = 0.0;
          ${wk ? 'var dp = 0.0;' : ''}
          ${cols(L, `qk += ${L.dot('Qs[qo + i]', 'k[i]')};${wk ? ` dp += ${L.dot('Gs[qo + i]', 'v[i]')};` : ''}`)}
          let p = exp(qk * scale - Ls[j]);
          ${wk ? 'let ds = p * (dp - Ds[j]) * scale;' : ''}
          ${cols(L, `${wv ? 'dv[i] += p * Gs[qo + i];' : ''}${wk ? ' dk[i] += ds * Qs[qo + i];' : ''}`)}
        }
      }
    }
  }
  if (live) {
    ${cols(L, `${wk ? `st${kOut}(ko + kBase + i * ${L.W}u, dk[i]);` : ''}${wv ? ` st${vOut}(ko + vBase + i * ${L.W}u, dv[i]);` : ''}`)}
  }
}`;
}

/** Forward: o and lse of every query row. */
export function runFlashForward(
  ctx: GpuContext,
  d: Dims,
  p: Params,
  q: GpuBufferLike,
  k: GpuBufferLike,
  v: GpuBufferLike,
  o: GpuBufferLike,
  lse: GpuBufferLike,
): void {
  ctx.dispatch(
    wgsl(`flash-fwd:${d.D}`, () => flashForward(d.D)),
    p,
    [q, k, v, o, lse],
    grid(d.B * d.Hq * Math.ceil(d.T / BR)),
  );
}

/**
 * Backward without kept P: Di into scratch, then dQ and dK/dV (`split`: dK, then dV, two passes with fewer registers
 * a thread). `dq`, `dk`, `dv` the same buffer for the fused qkv gradient (its layout in `d`).
 */
export function runFlashBackward(
  ctx: GpuContext,
  d: Dims,
  p: Params,
  ins: {
    dO: GpuBufferLike;
    q: GpuBufferLike;
    k: GpuBufferLike;
    v: GpuBufferLike;
    o: GpuBufferLike;
    lse: GpuBufferLike;
  },
  dq: GpuBufferLike,
  dk: GpuBufferLike,
  dv: GpuBufferLike,
  split = false,
): void {
  const rows = d.B * d.Hq * d.T;
  const di = ctx.createBuffer(rows * 4, USAGE.STORAGE);
  ctx.dispatch(
    wgsl(`flash-di:${d.D}`, () => flashDi(d.D)),
    p,
    [ins.dO, ins.o, di],
    grid(Math.ceil(rows / WGD)),
  );
  const bwd = [ins.dO, ins.q, ins.k, ins.v, ins.lse, di];
  ctx.dispatch(
    wgsl(`flash-dq:${d.D}`, () => flashDq(d.D)),
    p,
    [...bwd, dq],
    grid(d.B * d.Hq * Math.ceil(d.T / BR)),
  );
  const keyTiles = grid(d.B * d.Hkv * Math.ceil(d.S / BK));
  if (split) {
    ctx.dispatch(
      wgsl(`flash-dk:${d.D}`, () => flashDkv(d.D, false, 'k')),
      p,
      [...bwd, dk],
      keyTiles,
    );
    ctx.dispatch(
      wgsl(`flash-dv:${d.D}`, () => flashDkv(d.D, false, 'v')),
      p,
      [...bwd, dv],
      keyTiles,
    );
  } else {
    const fused = dk === dv;
    ctx.dispatch(
      wgsl(`flash-dkv:${d.D}:${fused}`, () => flashDkv(d.D, fused)),
      p,
      [...bwd, dk, ...(fused ? [] : [dv])],
      keyTiles,
    );
  }
  ctx.release(di);
}

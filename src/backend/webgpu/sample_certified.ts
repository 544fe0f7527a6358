/**
 * The device half of `sample` at plain temperature (T ≥ 0.01, no top-k / top-p / min-p, no topN, no penalties): a draw
 * in WGSL that the host certifies equal to ref's float64 draw, or else redraws from the full rows
 * (../sample_certified.ts holds the layout, the bound and the argument; this file is the arithmetic it assumes).
 *
 * One workgroup per row; thread `lid` owns the contiguous ids [lid·chunk, (lid+1)·chunk). m = max l (exact: `max`).
 * Per id: y = (l − m)·invT (f32, invT = f32(1/T)); w = exp(y) (WGSL's builtin; 0 where y < −80 or NaN);
 * s = w·2^31 (exact); q = u32(s), summed as a 64-bit integer (two u32 words with carry): the prefix sums Q_i of q in
 * id order are exact integers, whatever the summation order. Alongside, a = (C0 + C1·|y|)·s, the host's per-term
 * bound on |s − 2^31·exp((l − m)/T)| (exp's accuracy and the exponent's f32 roundings), summed in f32 (the host
 * allows for that sum's own rounding), and exp(l − m) in f32 for lse = m + log Σ exp(l − m) (temperature 1, as
 * ref's). Thread 0 scans the chunks' totals in order (exclusive), and sets the target t̃ = f32(u)·f32(Q_total),
 * floored to a 64-bit integer T; the thread whose chunk holds T (base ≤ T < next base) walks its chunk again to the
 * first id j with Q_j > T and writes j, Q_{j−1}, Q_j and the bound sums there. t̃ only steers the search: the host
 * checks j against u·Q_total in float64.
 *
 * Output per row, CERT_WORDS u32 words: [j (0xffffffff: none), Q_{j−1} hi, lo, Q_j hi, lo, A_{j−1}, A_j (f32 bits),
 * Q_total hi, lo, A_total (f32 bits), prob = s_j / f32(Q_total), logprob = l_j − lse (f32 bits)].
 * Params: V, chunk, invT, C0, C1 (f32 bits), then u of each row (f32 bits).
 */
import { CERT_WORDS } from '../sample_certified.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid } from './core.js';
import type { GpuBufferLike } from './types.js';

/** Largest rows this path takes: chunks ≤ 8192 ids (the f32 bound sums' depth), Q_total < 2^53 (exact on the host). */
export const SAMPLE_CERT_MAX_V = 1 << 21;
/** Lowest temperature this path takes (below it, ref's sampler on the host). */
export const SAMPLE_CERT_MIN_T = 0.01;
/** Most rows one call takes (their u travel in the parameter block). */
export const SAMPLE_CERT_MAX_ROWS = 4096;

const CERT = `@group(0) @binding(1) var<storage, read> L: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<u32>;
var<workgroup> qh: array<u32, ${WG}>;
var<workgroup> ql: array<u32, ${WG}>;
var<workgroup> sa: array<f32, ${WG}>;
var<workgroup> se: array<f32, ${WG}>;
var<workgroup> tgt: vec2<u32>;
var<workgroup> tot: vec2<u32>;
var<workgroup> totf: vec2<f32>; // f32(Q_total), lse
var<workgroup> jw: atomic<u32>;
fn add64(a: vec2<u32>, q: u32) -> vec2<u32> { let l = a.y + q; return vec2<u32>(a.x + select(0u, 1u, l < q), l); }
fn addw(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> { let l = a.y + b.y; return vec2<u32>(a.x + b.x + select(0u, 1u, l < b.y), l); }
fn le64(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x < b.x || (a.x == b.x && a.y <= b.y); }
fn lt64(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x < b.x || (a.x == b.x && a.y < b.y); }
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let V = pu(0u);
  let chunk = pu(1u);
  let invT = pf(2u);
  let C0 = pf(3u);
  let C1 = pf(4u);
  let r = grp * V;
  let o = grp * ${CERT_WORDS}u;
  let lo = min(V, lid * chunk);
  let hi = min(V, lo + chunk);
  // the row's max
  var mx = bitcast<f32>(0xff7fffffu); // −FLT_MAX (a row all −inf: no weight, uncertified)
  for (var i = lo; i < hi; i++) { mx = max(mx, L[r + i]); }
  sa[lid] = mx;
  if (lid == 0u) { atomicStore(&jw, 0xffffffffu); }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) {
    if (lid < s) { sa[lid] = max(sa[lid], sa[lid + s]); }
    workgroupBarrier();
  }
  let m = sa[0];
  workgroupBarrier();
  // the chunk's sums: q (64-bit), the bound terms a, exp(l − m)
  var Q = vec2<u32>(0u, 0u);
  var A = 0.0;
  var E = 0.0;
  for (var i = lo; i < hi; i++) {
    let x = L[r + i];
    let y = (x - m) * invT;
    let ok = y >= -80.0;
    let s = select(0.0, exp(y) * 2147483648.0, ok);
    Q = add64(Q, u32(s));
    A += select(0.0, (C0 + C1 * abs(y)) * s, ok);
    E += exp(x - m);
  }
  qh[lid] = Q.x;
  ql[lid] = Q.y;
  sa[lid] = A;
  se[lid] = E;
  workgroupBarrier();
  if (lid == 0u) {
    var q = vec2<u32>(0u, 0u);
    var a = 0.0;
    var e = 0.0;
    for (var c = 0u; c < ${WG}u; c++) {
      let qc = vec2<u32>(qh[c], ql[c]);
      let ac = sa[c];
      qh[c] = q.x;
      ql[c] = q.y;
      sa[c] = a;
      q = addw(q, qc);
      a += ac;
      e += se[c];
    }
    tot = q;
    let qf = f32(q.x) * 4294967296.0 + f32(q.y);
    let t = pf(5u + grp) * qf;
    let th = floor(t * 2.3283064365386963e-10);
    tgt = vec2<u32>(u32(th), u32(t - th * 4294967296.0));
    totf = vec2<f32>(qf, m + log(e));
    O[o + 7u] = q.x;
    O[o + 8u] = q.y;
    O[o + 9u] = bitcast<u32>(a);
  }
  workgroupBarrier();
  let T = tgt;
  let base = vec2<u32>(qh[lid], ql[lid]);
  let next = select(tot, vec2<u32>(qh[min(lid + 1u, ${WG - 1}u)], ql[min(lid + 1u, ${WG - 1}u)]), lid + 1u < ${WG}u);
  if (lo < hi && le64(base, T) && lt64(T, next)) {
    var acc = base;
    var a = sa[lid];
    for (var i = lo; i < hi; i++) {
      let x = L[r + i];
      let y = (x - m) * invT;
      let ok = y >= -80.0;
      let s = select(0.0, exp(y) * 2147483648.0, ok);
      let prev = acc;
      let pa = a;
      acc = add64(acc, u32(s));
      a += select(0.0, (C0 + C1 * abs(y)) * s, ok);
      if (lt64(T, acc)) {
        atomicStore(&jw, i);
        O[o + 1u] = prev.x;
        O[o + 2u] = prev.y;
        O[o + 3u] = acc.x;
        O[o + 4u] = acc.y;
        O[o + 5u] = bitcast<u32>(pa);
        O[o + 6u] = bitcast<u32>(a);
        O[o + 10u] = bitcast<u32>(s / totf.x);
        O[o + 11u] = bitcast<u32>(x - totf.y);
        break;
      }
    }
  }
  workgroupBarrier();
  if (lid == 0u) { O[o] = atomicLoad(&jw); }
}`;

/**
 * Record the draw: `logits` rows of V (N rows, N ≤ SAMPLE_CERT_MAX_ROWS, V ≤ SAMPLE_CERT_MAX_V), the bound's
 * constants (../sample_certified.ts `certConstants`), each row's u; `out` holds N · CERT_WORDS words.
 */
export function runSampleCertified(
  ctx: GpuContext,
  logits: GpuBufferLike,
  out: GpuBufferLike,
  N: number,
  V: number,
  c: { invT: number; c0: number; c1: number; chunk: number },
  u: readonly number[],
): void {
  if (N === 0 || V === 0) return;
  ctx.dispatch(CERT, new Params().u32(V, c.chunk).f32(c.invT, c.c0, c.c1, ...u), [logits, out], grid(N));
}

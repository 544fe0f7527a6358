/**
 * The `sample` kernel on WebGPU (../kernels.ts): what runs where. Its ids must equal ref's exactly, and ref draws with
 * float64 sums in id order (../sampling.ts), which WGSL (no f64) cannot do; comparisons it can do exactly.
 *
 * - Greedy (temperature 0, no topN, no penalties: a decode step's usual call): all in WGSL, below, so decoding reads
 *   back one id per token. One workgroup per row finds the argmax (the largest logit, the lowest id among equals, as
 *   ref's `argmax`) and lse = max + log Σ exp(l − max) by tree reductions in workgroup memory, then writes ids[n]
 *   and probs[n] = (1, l[id] − lse). Exact for the id (comparisons only, on the logits' bits as order-preserving
 *   keys, so subnormals are not flushed to zero); the log-probability is float32
 *   arithmetic, within the conformance tolerance of ref's float64.
 * - Top-k (temperature > 0, 0 < topK ≤ SAMPLE_TOPK_MAX, topN ≤ topK, no penalties; any top-p and min-p): the device
 *   selects each row's candidates {i : l_i ≥ the k-th largest l} in id order, with the row's float32 lse
 *   (./sample_topk.ts, exact: comparisons on the logits' bits); a host step reads back only those
 *   (`candidateStride(cap)` words a row, cap = min(1024, max(64, 2k)): about 8·cap bytes instead of 4·V) and runs
 *   ref's float64 sampler on them (../sample_candidates.ts, which says why the ids are ref's bit for bit). A row
 *   with more candidates than its slot holds (ties at the threshold) makes that call read the full rows back and
 *   run ref's `sampleKernel` instead. The backend's `counts` say which: sampleCandidateRows / sampleFullRows, and
 *   sampleBytesRead, the bytes these host steps read back.
 * - Plain temperature (temperature ≥ 0.01, topK 0, topP 1, minP 0, no topN, no penalties: the default settings;
 *   rows ≤ SAMPLE_CERT_MAX_V long, ≤ SAMPLE_CERT_MAX_ROWS of them): the draw runs in WGSL on float32 weights with
 *   exact integer prefix sums and a rigorous bound on their distance to ref's float64 sums
 *   (./sample_certified.ts); a host step reads back 48 bytes a row and checks that u·Σ lies farther than the bound
 *   from the drawn id's interval ends (../sample_certified.ts), which makes the id ref's. If any row of the call
 *   is not certified, the call reads the full rows back and runs ref's `sampleKernel`. Counts:
 *   sampleCertifiedRows, sampleCertFallbacks (calls redrawn from the full rows; their rows in sampleFullRows).
 * - Top-p and/or min-p without a top-k the device selects (temperature ≥ 0.01, topK 0 or > SAMPLE_TOPK_MAX, any
 *   topN, no penalties; rows ≤ SAMPLE_CERT_MAX_V): the device selects each row's SAMPLE_TOPK_MAX largest logits as
 *   top-k does, and sums the weights of the rest of the row with a rigorous bound (./sample_topk.ts
 *   `runSampleTopKTail`); a host step reads back only those (8 KiB a row) and certifies that ref's nucleus / min-p
 *   cut lies inside the candidates for every row sum the bound allows, then runs ref's sampler on them
 *   (../sample_nucleus.ts: ids and probabilities ref's bit for bit). If any row of the call is not certified (a
 *   flat row whose nucleus passes the candidates, p too close to a prefix mass, ties at the cap), the call reads
 *   the full rows back and runs ref's `sampleKernel`. Counts: sampleNucleusRows, sampleNucleusFallbacks (calls
 *   redrawn from the full rows; their rows in sampleFullRows).
 * - Penalties (some row with (id, count) pairs): the raw row must stay (the reported logprob and topN are of it), so
 *   the device works on a copy of the logits with each row's seen ids masked to −∞ and their raw logits gathered
 *   (./sample_penalty.ts). Top-k, or temperature 0 (`penaltySelectK`: k = max(topK, topN), or max(1, topN), ≤
 *   SAMPLE_TOPK_MAX; any top-p, min-p, topN): the copy's candidates are selected (./sample_topk.ts) and a host
 *   step reads back them and the gathered logits, and draws with ref's float64 sampler from candidates ∪ seen ids,
 *   the seen ids' logits penalised by `penalizeRow` itself (../sample_penalized.ts says why it is ref's draw): no
 *   extra round trip. Plain temperature (as above): two phases — a host step reads back the masked copy's lse (16
 *   bytes a row) and the gathered logits, writes the penalised ones into the copy, the certified draw runs on it
 *   and a second host step certifies it as above: one extra round trip. Top-p and/or min-p without top-k (topK 0,
 *   temperature ≥ 0.01, topN ≤ SAMPLE_TOPK_MAX, rows ≤ SAMPLE_CERT_MAX_V): the copy's SAMPLE_TOPK_MAX largest and its
 *   tail sums (as 'nucleus' above, on the copy); a host step reads back them and the gathered logits and certifies
 *   ref's nucleus on candidates ∪ seen ids with the seen ids penalised (../sample_penalized_nucleus.ts, bounds
 *   rescaled where a penalised seen id is the new max), else the full rows. Counts: sampleDevicePenaltyRows (and
 *   sampleNucleusRows / sampleNucleusFallbacks as above).
 * - The top alternatives (topN ≥ 1, no penalties) at temperature 0, or at plain temperature (as above, with topN; rows
 *   ≤ SAMPLE_CERT_MAX_V, ≤ SAMPLE_CERT_MAX_ROWS): the device selects each row's candidates for k = topN as top-k
 *   does (ids in id order, the row's float32 lse; a slot of `topNCap(topN)` candidates) and, at plain temperature,
 *   draws as above into the same buffer (the certified words first, the slots after); one host step reads back
 *   both (48 + 8 + 8·cap bytes a row at plain temperature, 8 + 8·cap at temperature 0: 136 and 88 at topN 5, 376
 *   and 328 at topN 20, instead of 4·V), certifies the draw as above and writes ref's alternatives and, at
 *   temperature 0, ref's argmax (../sample_topn.ts says why they are ref's); the drawn id's logprob is l − the
 *   selection's lse where it is among the candidates (then equal to its alternative's, as in ref). A row not
 *   certified, or with ties at the topN-th place past the slot, makes the call read the full rows and run ref's
 *   `sampleKernel`. Counts: sampleCertifiedRows (plain temperature) or sampleCandidateRows (temperature 0);
 *   sampleCertFallbacks (plain-temperature calls redrawn from the full rows).
 * - Everything else (0 < topK ≤ SAMPLE_TOPK_MAX with topN > topK, top-p / min-p below temperature 0.01 or in rows
 *   longer than SAMPLE_CERT_MAX_V, topN at temperatures in (0, 0.01) or in longer rows; with penalties:
 *   topK > SAMPLE_TOPK_MAX, topN without top-k or top-p / min-p, temperatures below 0.01): the logits
 *   are read back and ref's `sampleKernel` runs on the host as a queued host step.
 * All but greedy are host steps of the backend (`counts.hostSteps`); all but the last also one native call (two
 * with penalties at plain temperature).
 */
import type { Attrs } from '../backend.js';
import { penaltySelectK } from '../sample_penalized.js';
import { penaltiesOn, sampleAttrs } from '../sampling.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage } from './core.js';
import type { KView } from './kview.js';
import { SAMPLE_CERT_MAX_ROWS, SAMPLE_CERT_MAX_V, SAMPLE_CERT_MIN_T } from './sample_certified.js';

/** The largest top-k whose candidates the device selects. */
export const SAMPLE_TOPK_MAX = 1024;

/**
 * Where a `sample` call runs (see above): all in WGSL, top-k candidates in WGSL then the draw on the host, the top
 * SAMPLE_TOPK_MAX candidates and the tail's mass in WGSL then a certified draw on the host, a certified draw in WGSL,
 * the top alternatives' candidates in WGSL (with the certified draw, or the argmax at temperature 0: 'topn'), or on
 * the host. `V` and `N`: the row length and count.
 */
export type SamplePlan =
  | 'greedy'
  | 'topk'
  | 'nucleus'
  | 'certified'
  | 'topn'
  | 'penalized'
  | 'penalized-certified'
  | 'penalized-nucleus'
  | 'host';

export function samplePlan(nOutputs: number, a: Attrs, V = 0, N = 0): SamplePlan {
  const { o, topN, penalties } = sampleAttrs(a);
  if (penalties && penaltiesOn(penalties.settings) && penalties.counts.some((c) => c.length > 0)) {
    const k = penaltySelectK(o, topN);
    if (k > 0 && k <= SAMPLE_TOPK_MAX) return 'penalized';
    const filtered = o.topP < 1 || o.minP > 0;
    if (k === 0 && o.topK === 0 && filtered && o.temperature >= SAMPLE_CERT_MIN_T && topN <= SAMPLE_TOPK_MAX)
      if (V > 0 && V <= SAMPLE_CERT_MAX_V) return 'penalized-nucleus';
    const { counts: _c, countOffsets: _o, ...plain } = a;
    return samplePlan(nOutputs, plain, V, N) === 'certified' ? 'penalized-certified' : 'host';
  }
  if (o.temperature === 0) {
    if (topN === 0) return nOutputs === 2 ? 'greedy' : 'host';
    return nOutputs === 4 && V > 0 ? 'topn' : 'host';
  }
  if (o.topK > 0 && o.topK <= SAMPLE_TOPK_MAX) return topN <= o.topK ? 'topk' : 'host';
  const filtered = o.topP < 1 || o.minP > 0;
  if (filtered && o.temperature >= SAMPLE_CERT_MIN_T && V > 0 && V <= SAMPLE_CERT_MAX_V) return 'nucleus';
  if (o.topK > 0) return 'host';
  // T ≥ SAMPLE_CERT_MIN_T: a flushed subnormal (l − m) then moves y by < 2^−126·100, far inside the bound's C0
  const plain = o.temperature >= SAMPLE_CERT_MIN_T && o.topP === 1 && o.minP === 0 && nOutputs === (topN ? 4 : 2);
  if (!(plain && V > 0 && V <= SAMPLE_CERT_MAX_V && N <= SAMPLE_CERT_MAX_ROWS)) return 'host';
  return topN === 0 ? 'certified' : 'topn';
}

/**
 * logits [N, V] → ids [N] i32, probs [N, 2]. One workgroup per row. params: V
 * The logits are read as u32 bits and compared as order-preserving keys (sign set: all bits flipped; else the sign
 * bit set; −0 given +0's key, equal as numbers as in ref): float comparisons would flush subnormals to zero on some
 * adapters (SwiftShader does), making [0, 1e-40]'s argmax id 0 where ref's is 1. NaN keys are 0: never above a number.
 */
const GREEDY = `@group(0) @binding(1) var<storage, read> L: array<u32>;
${storage(2, 'IDS', 'i32', true)}${storage(3, 'PR', 'f32', true)}
var<workgroup> bk: array<u32, ${WG}>;
var<workgroup> bi: array<u32, ${WG}>;
var<workgroup> sm: array<f32, ${WG}>;
fn key(b: u32) -> u32 {
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0u; }
  let k = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
  return select(k, 0x80000000u, k == 0x7fffffffu);
}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let V = pu(0u);
  let r = grp * V;
  var kv = 0u;          // set by the thread's first entry
  var id = 0xffffffffu; // no entry yet: loses every comparison below
  for (var k = lid; k < V; k += ${WG}u) {
    let x = key(L[r + k]);
    if (id == 0xffffffffu || x > kv) { kv = x; id = k; }
  }
  bk[lid] = kv;
  bi[lid] = id;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) {
    if (lid < s) {
      let k2 = bk[lid + s];
      let i2 = bi[lid + s];
      let take = bi[lid] == 0xffffffffu || k2 > bk[lid] || (k2 == bk[lid] && i2 < bi[lid]);
      if (i2 != 0xffffffffu && take) { bk[lid] = k2; bi[lid] = i2; }
    }
    workgroupBarrier();
  }
  let best = bi[0];
  let mx = bitcast<f32>(L[r + best]);
  var acc = 0.0;
  for (var k = lid; k < V; k += ${WG}u) { acc += exp(bitcast<f32>(L[r + k]) - mx); }
  sm[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) {
    if (lid < s) { sm[lid] += sm[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let n = r / V;
    IDS[n] = i32(best);
    PR[2u * n] = 1.0;
    PR[2u * n + 1u] = mx - (mx + log(sm[0]));
  }
}`;

export function runSampleGreedy(ctx: GpuContext, ins: readonly KView[], outs: readonly KView[]): void {
  const shape = ins[0]!.shape,
    V = shape[shape.length - 1]!,
    N = outs[0]!.shape[0]!;
  if (N === 0 || V === 0) return;
  ctx.dispatch(GREEDY, new Params().u32(V), [ins[0]!.b.gpu, outs[0]!.b.gpu, outs[1]!.b.gpu], grid(N));
}

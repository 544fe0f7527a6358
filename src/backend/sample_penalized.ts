/**
 * The `sample` kernel with penalties (repetition / frequency / presence) from candidates selected on the device,
 * without reading the row back and without an extra host round trip: the host half of ./webgpu/sample_penalty.ts.
 *
 * Notation, per row: l the raw row, S the seen ids (those with a pair (id, count > 0), id an integer in [0, V)),
 * l' the penalised row (./sampling.ts `penalizeRow`: l'_i = l_i off S), and C the masked row: C_i = l_i off S,
 * −∞ on S. The device copies the row, masks S to −∞ in the copy, gathers l_S (the raw logits of S) and selects the
 * copy's candidates {i : C_i ≥ θ_C}, θ_C the K-th largest C (./webgpu/sample_topk.ts; K = `penaltySelectK`), with the
 * copy's float32 lse. The host computes l'_S from l_S by `penalizeRow` itself (float64, rounded to float32) and
 * merges: the list L = candidates ∪ S in id order, with l' (and l) values.
 *
 * Why it is exact. C ≤ l' and C ≤ l entrywise, so every order statistic of C is ≤ that of l' and of l.
 * 1. Top-k k ≤ K: θ' (the k-th largest l') ≥ the k-th largest C ≥ θ_C, so every i ∉ S with l'_i ≥ θ' is a
 *    candidate, and every i ∈ S is in L: L ⊇ C' = {i : l'_i ≥ θ'}. `sampleRow` on L (`fromLength` V) takes the
 *    same threshold (L holds the k largest l'; if |L| = k then L = C'), the same max, and gives every entry of
 *    L \ C' (all < θ') weight 0: its float64 sums over positive weights in id order are the full row's, bit for bit
 *    (the argument of ./sample_candidates.ts, which holds for any superset of C'). Temperature 0: the argmax of l'
 *    is ≥ θ_C, every id reaching it is in L, the lowest first.
 * 2. The top alternatives (of the raw row, as ref reports them), n ≤ K: the n-th largest l ≥ the n-th largest
 *    C ≥ θ_C, so every id whose l reaches the n-th largest is in L: `topN` on L's raw values, in id order, picks
 *    ref's ids (lowest id first among equals).
 * 3. The reported logprob is l_id − lse(l) of the RAW row (as ref's `sampleKernel`): lse(l) =
 *    log(exp(lse(C)) + Σ_S exp(l_s)) — a sum of positive terms, no cancellation — from the device's float32 lse(C)
 *    and the gathered l_S in float64; l_id is the gathered raw logit for id ∈ S, else the candidate's own.
 * A row with more candidates than its slot holds, or a non-finite lse: the caller samples the full rows instead.
 *
 * Read back per row: the candidate slot (../sample_candidates.ts layout) and 4 bytes per seen id.
 */
import {
  checkSampleArgs,
  type PenaltySettings,
  penalizeRow,
  type RowSampling,
  rowPenaltyPairs,
  sampleRow,
  type SamplePenalties,
  topN,
} from './sampling.js';
import { candidateStride } from './sample_candidates.js';

type Out = { data: { [i: number]: number } };

/**
 * The top-k the device selects on the masked copy for these settings (it must be ≥ topK and ≥ topN; temperature 0:
 * the argmax, at least 1), or 0 where the settings have no top-k (the candidates then bound nothing).
 */
export function penaltySelectK(o: RowSampling, topN: number): number {
  if (o.temperature === 0) return Math.max(1, topN);
  return o.topK > 0 ? Math.max(o.topK, topN) : 0;
}

/** The seen ids of every row: `flat` = n·V + id, each row's ascending and distinct; row n's are flat[start[n] .. start[n + 1]). */
export interface PenaltyIndex {
  flat: Uint32Array;
  start: Int32Array;
}

/** The seen ids S of each of the N rows of V (ids penalizeRow changes: an integer in [0, V) with a count > 0). */
export function penaltyIndex(p: SamplePenalties | undefined, N: number, V: number): PenaltyIndex {
  const rows: number[][] = [];
  let M = 0;
  for (let n = 0; n < N; n++) {
    const pairs = rowPenaltyPairs(p, n);
    const seen = new Set<number>();
    if (pairs) for (const [id, c] of pairs) if (Number.isInteger(id) && id >= 0 && id < V && c > 0) seen.add(id + 0);
    const ids = [...seen].sort((a, b) => a - b);
    rows.push(ids);
    M += ids.length;
  }
  const flat = new Uint32Array(M),
    start = new Int32Array(N + 1);
  for (let n = 0, at = 0; n < N; n++) {
    start[n] = at;
    for (const id of rows[n]!) flat[at++] = n * V + id;
    start[n + 1] = at;
  }
  return { flat, start };
}

/**
 * The penalised logits of row n's seen ids from their raw ones (`raw`, in index order), by `penalizeRow` itself on a
 * compact row (its pairs, in their order, pointed at the compact positions; a repeated id compounds as in ref).
 */
export function penalizedSeen(
  p: SamplePenalties,
  settings: PenaltySettings,
  index: PenaltyIndex,
  n: number,
  V: number,
  raw: Float32Array,
): Float32Array {
  const s = index.start[n]!,
    e = index.start[n + 1]!;
  const out = Float32Array.from(raw.subarray(s, e));
  const at = new Map<number, number>();
  for (let j = s; j < e; j++) at.set(index.flat[j]! - n * V, j - s);
  const pairs = rowPenaltyPairs(p, n);
  if (!pairs) return out;
  const local = (function* () {
    for (const [id, c] of pairs) yield [at.get(id) ?? -1, c] as const;
  })();
  penalizeRow(out, local, settings);
  return out;
}

/**
 * log(exp(lseC) + Σ exp(v)) in float64: the lse of a row from its masked copy's (lseC; −∞: no mass) and the
 * masked entries' values — positive terms, no cancellation. NaN where there is no mass at all.
 */
export function lseWith(lseC: number, v: ArrayLike<number>): number {
  let mx = lseC;
  for (let j = 0; j < v.length; j++) mx = Math.max(mx, v[j]!);
  if (mx === -Infinity) return NaN;
  let sum = Math.exp(lseC - mx);
  for (let j = 0; j < v.length; j++) sum += Math.exp(v[j]! - mx);
  return mx + Math.log(sum);
}

/** The lse of a masked copy (its slot's word 1, float32 bits), −∞ where the row's every id was seen (no mass). */
function maskedLse(words: Int32Array, base: number, index: PenaltyIndex, n: number, V: number): number {
  if (index.start[n + 1]! - index.start[n]! === V) return -Infinity;
  return new Float32Array(words.buffer, words.byteOffset + (base + 1) * 4, 1)[0]!;
}

/**
 * The first phase of the certified plain-temperature draw with penalties (./webgpu/sample_penalty.ts): from the
 * masked copies' slots (N of `stride` words, the lse at word 1) and the gathered raw logits (at word `gatherAt`),
 * the seen ids' penalised logits (to write into the copy) and each row's raw and penalised lse; null where some
 * row's is not finite (the caller samples the full rows).
 */
export function penalizedSeenAll(
  words: Int32Array,
  stride: number,
  gatherAt: number,
  index: PenaltyIndex,
  p: SamplePenalties,
  N: number,
  V: number,
): { pen: Float32Array; lseRaw: Float64Array; lsePen: Float64Array } | null {
  const bits = new Float32Array(words.buffer, words.byteOffset, words.length);
  const raw = bits.subarray(gatherAt, gatherAt + index.flat.length);
  const pen = new Float32Array(index.flat.length),
    lseRaw = new Float64Array(N),
    lsePen = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const s = index.start[n]!,
      e = index.start[n + 1]!,
      lseC = maskedLse(words, n * stride, index, n, V);
    const pn = penalizedSeen(p, p.settings, index, n, V, raw);
    pen.set(pn, s);
    lseRaw[n] = lseWith(lseC, raw.subarray(s, e));
    lsePen[n] = lseWith(lseC, pn);
    if (!Number.isFinite(lseRaw[n]!) || !Number.isFinite(lsePen[n]!)) return null;
  }
  return { pen, lseRaw, lsePen };
}

/**
 * The reported log-probabilities of a certified draw on the penalised rows made the raw rows' (`probs` (N, 2) as
 * certifyRows wrote them: logprob = l'_j − lse(l') in float32): l_j − lse(l) — the gathered raw logit for a seen
 * j, else l_j = l'_j and the logprob shifts by lse(l') − lse(l) (both from penalizedSeenAll).
 */
export function rawLogprobs(
  ids: { data: { [i: number]: number } },
  probs: Out,
  index: PenaltyIndex,
  raw: Float32Array,
  lse: { lseRaw: Float64Array; lsePen: Float64Array },
  N: number,
  V: number,
): void {
  for (let n = 0; n < N; n++) {
    const j = ids.data[n]!,
      f = n * V + j;
    let lo = index.start[n]!,
      hi = index.start[n + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (index.flat[mid]! < f) lo = mid + 1;
      else hi = mid;
    }
    const seen = lo < index.start[n + 1]! && index.flat[lo] === f;
    probs.data[2 * n + 1] = seen
      ? raw[lo]! - lse.lseRaw[n]!
      : probs.data[2 * n + 1]! + (lse.lsePen[n]! - lse.lseRaw[n]!);
  }
}

/**
 * Sample every row from its masked-copy candidates (`words`: N slots of candidateStride(cap) words, then at word
 * `gatherAt` the raw logits of index.flat, as float32 bits) with the penalties: ids (N), probs (N, 2) =
 * (probability under the penalised distribution, raw logit − raw lse), with `top` the raw row's n largest as
 * log-probabilities — ref's `sampleKernel` on the full rows (lse aside: within float32). false, nothing written,
 * where some row's slot overflowed or its lse is not finite (the caller samples the full rows).
 */
export function sampleCandidatesPenalized(
  words: Int32Array,
  V: number,
  cap: number,
  gatherAt: number,
  index: PenaltyIndex,
  p: SamplePenalties,
  ids: Out,
  probs: Out,
  o: RowSampling,
  u: readonly number[],
  top?: { n: number; ids: Out; logprobs: Out },
): boolean {
  const N = u.length,
    stride = candidateStride(cap);
  checkSampleArgs(N, V, o, u);
  const rows: PenalizedRowDraw[] = [];
  for (let n = 0; n < N; n++) {
    const L = penalizedList(words, n * stride, 2, cap, gatherAt, index, p, n, V);
    if (!L) return false;
    rows.push(penalizedDraw(L, sampleRow(L.lPen, o, u[n]!, V), top));
  }
  writePenalizedRows(rows, ids, probs, top);
  return true;
}

/** One row's draw on L: its id, probability, raw logprob and raw top alternatives (ids of the full row). */
export interface PenalizedRowDraw {
  id: number;
  prob: number;
  lp: number;
  top: { id: number; lp: number }[];
}

/** The draw `r` (an index into L) made the full row's: id, raw logprob l_id − lse(l), the raw row's top alternatives. */
export function penalizedDraw(
  L: PenalizedList,
  r: { id: number; prob: number },
  top?: { n: number },
): PenalizedRowDraw {
  const { lIds, lRaw, lse } = L;
  const t = top && top.n > 0 ? topN(lRaw, top.n) : [];
  return {
    id: lIds[r.id]!,
    prob: r.prob,
    lp: lRaw[r.id]! - lse,
    top: t.map((e) => ({ id: lIds[e.id]!, lp: e.logprob - lse })),
  };
}

/** Every row's draw written to the outputs (ids, probs (N, 2), the top alternatives padded with −1 / −∞). */
export function writePenalizedRows(
  rows: readonly PenalizedRowDraw[],
  ids: Out,
  probs: Out,
  top?: { n: number; ids: Out; logprobs: Out },
): void {
  for (let n = 0; n < rows.length; n++) {
    const r = rows[n]!;
    ids.data[n] = r.id;
    probs.data[2 * n] = r.prob;
    probs.data[2 * n + 1] = r.lp;
    if (top && top.n > 0)
      for (let k = 0; k < top.n; k++) {
        top.ids.data[n * top.n + k] = r.top[k]?.id ?? -1;
        top.logprobs.data[n * top.n + k] = r.top[k]?.lp ?? -Infinity;
      }
  }
}

/** L = the masked copy's candidates ∪ the seen ids S of one row, in id order, with l' and l values; the raw lse. */
export interface PenalizedList {
  lIds: number[];
  lPen: Float32Array;
  lRaw: Float32Array;
  lse: number;
  /** The candidates' count and the smallest candidate logit (the masked copy's threshold). */
  c: number;
  thr: number;
}

/**
 * Row n's L from its slot at word `base` (`H` header words: count, lse, …; then cap ids, cap logits) and the
 * gathered raw logits (from word `gatherAt`), S's values penalised by `penalizedSeen`; null where the slot
 * overflowed or the raw lse is not finite (the caller samples the full rows).
 */
export function penalizedList(
  words: Int32Array,
  base: number,
  H: number,
  cap: number,
  gatherAt: number,
  index: PenaltyIndex,
  p: SamplePenalties,
  n: number,
  V: number,
): PenalizedList | null {
  const bits = new Float32Array(words.buffer, words.byteOffset, words.length);
  const raw = bits.subarray(gatherAt, gatherAt + index.flat.length);
  const c = words[base]!,
    s = index.start[n]!,
    m = index.start[n + 1]! - s;
  // every id seen: the copy is all −∞, its lse NaN (no mass)
  const lseC = maskedLse(words, base, index, n, V);
  if (!(c >= 1 && c <= cap) || !(Number.isFinite(lseC) || m === V)) return null;
  const pen = penalizedSeen(p, p.settings, index, n, V, raw);
  const lse = lseWith(lseC, raw.subarray(s, s + m));
  if (!Number.isFinite(lse)) return null;
  // L: candidates ∪ S in id order (S's values replace a masked candidate's)
  const cIds = words.subarray(base + H, base + H + c),
    cL = bits.subarray(base + H + cap, base + H + cap + c);
  const lIds: number[] = [],
    lPen: number[] = [],
    lRaw: number[] = [];
  let a = 0,
    b = 0,
    thr = Infinity;
  for (let j = 0; j < c; j++) thr = Math.min(thr, cL[j]!);
  while (a < c || b < m) {
    const ca = a < c ? cIds[a]! : Infinity,
      sb = b < m ? index.flat[s + b]! - n * V : Infinity;
    if (sb <= ca) {
      lIds.push(sb);
      lPen.push(pen[b]!);
      lRaw.push(raw[s + b]!);
      b++;
      if (sb === ca) a++;
    } else {
      lIds.push(ca);
      lPen.push(cL[a]!);
      lRaw.push(cL[a]!);
      a++;
    }
  }
  return { lIds, lPen: Float32Array.from(lPen), lRaw: Float32Array.from(lRaw), lse, c, thr };
}

/**
 * The host half of `sample` with penalties and top-p and/or min-p but no top-k (temperature > 0, topK 0): ref's
 * float64 sampler on the penalised row's likely entries, certified as ./sample_nucleus.ts does, without reading the
 * row back. The device (./webgpu/sample_penalty.ts, ./webgpu/sample_topk.ts `runSampleTopKTail`) copies the logits
 * with each row's seen ids S masked to −∞, gathers their raw logits, and on the copy selects the `cap` largest
 * (candidates, ≥ θ_C) and sums the weights of the rest (the tail sums, relative to the copy's max m_c).
 *
 * Why it is ref's draw (notation of ./sample_penalized.ts: l raw, l' penalised, C the masked copy). The list
 * L = candidates ∪ S (./sample_penalized.ts `penalizedList`) holds l' exactly: l'_i = l_i off S, and S's values are
 * `penalizeRow`'s own. Every id outside L is neither seen nor a candidate: its l'_i = l_i = C_i < θ_C, and those ids
 * are exactly the copy's tail (S is −∞ in the copy, so in neither its candidates nor its tail sums, seen ids among
 * the candidates only when the copy has fewer than cap finite entries — then replaced by their l'). So the
 * penalised row is L plus a tail whose every logit is < θ_C = `thr`, whose sums the device bounded relative to m_c;
 * the max m of l' is max(L) ≥ m_c. `certifyNucleus` with `tail = { thr, max: m_c }` (which rescales the bounds by
 * exp((m_c − m)/T), or gives up where that is below e^−600) certifies that ref's nucleus / min-p cut on the full
 * penalised row lies in L, and `sampleRow` on L with the topP' it returns is ref's id and probability bit for bit.
 * Where L is the whole row no certificate is needed. The reported logprob and the top alternatives are the raw
 * row's, as ./sample_penalized.ts computes them (topN ≤ cap: the n-th largest l ≥ the n-th largest C ≥ θ_C).
 * Some row not certified, a slot overflowed (ties at the cap), a non-finite lse: false, the caller reads the full rows.
 *
 * Read back per row: `nucleusStride(cap)` words (../sample_nucleus.ts layout), then 4 bytes per seen id.
 */
import { certifyNucleus, nucleusStride } from './sample_nucleus.js';
import {
  type PenaltyIndex,
  type PenalizedRowDraw,
  penalizedDraw,
  penalizedList,
  writePenalizedRows,
} from './sample_penalized.js';
import { checkSampleArgs, type RowSampling, type SamplePenalties, sampleRow } from './sampling.js';

type Out = { data: { [i: number]: number } };

/**
 * Sample every row with penalties from its masked copy's nucleus slot (`words`: N slots of nucleusStride(cap) words,
 * then at word `gatherAt` the raw logits of index.flat): ids (N), probs (N, 2) = (probability under the penalised
 * row, raw logit − raw lse), `top` the raw row's n largest — ref's `sampleKernel` on the full rows. false, nothing
 * written, where some row is not certified (above). `tailScale`: as certifyNucleus's (tests lower it).
 */
export function sampleNucleusPenalized(
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
  tailScale = 1,
): boolean {
  const N = u.length,
    stride = nucleusStride(cap);
  checkSampleArgs(N, V, o, u);
  if (!(o.topK === 0 && o.temperature > 0 && (!top || top.n <= cap))) return false;
  const bits = new Float32Array(words.buffer, words.byteOffset, words.length);
  const rows: PenalizedRowDraw[] = [];
  for (let n = 0; n < N; n++) {
    const base = n * stride,
      L = penalizedList(words, base, 4, cap, gatherAt, index, p, n, V);
    if (!L) return false;
    let t: number | null = o.topP;
    if (L.lIds.length < V) {
      const tail = {
        thr: L.thr,
        max: bits.subarray(base + 4 + cap, base + 4 + cap + L.c).reduce((a, b) => Math.max(a, b), -Infinity),
      };
      t = certifyNucleus(L.lPen, V, o, bits[base + 2]!, bits[base + 3]!, tailScale, tail);
    }
    if (t === null) return false;
    rows.push(penalizedDraw(L, sampleRow(L.lPen, { ...o, topP: t }, u[n]!, V), top));
  }
  writePenalizedRows(rows, ids, probs, top);
  return true;
}

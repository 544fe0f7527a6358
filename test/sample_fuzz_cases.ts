// The seeded random `sample` calls of test/webgpu_sample_fuzz.test.ts and their check against ref's `sampleKernel`
// (src/backend/sample_rows.ts): `fuzzCase` draws a call (settings, rows, uniform numbers, seen ids), `fuzzCheck` runs it
// on webgpu and ref and lists every difference, with the plan that ran (see the test file's header for what is held
// exactly and what within float32).
import type { Attrs } from '../src/backend/backend.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import { type PenaltySettings, type RowSampling, penalizeRow, rowWeights } from '../src/backend/sampling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { type SamplePlan, samplePlan } from '../src/backend/webgpu/sample.js';
import type { Rng } from '../src/util/rng.js';

export const PENALTY: PenaltySettings = { repetitionPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.1 };

/** One `sample` call: rows x (N, V), the settings, one uniform number a row, n alternatives, each row's seen pairs. */
export interface FuzzCase {
  x: Float32Array;
  N: number;
  V: number;
  o: RowSampling;
  u: number[];
  n: number;
  /** Each row's flat [id, count, …] (penalties on), or undefined (off). */
  seen?: number[][];
}

type Result = { ids: Int32Array; pr: Float32Array; ti: Int32Array; tl: Float32Array };

const pick = <T>(rng: Rng, a: readonly T[]): T => a[rng.int(a.length)]!;

/** The call's attributes, as the backend gets them. */
function attrs(c: FuzzCase): Attrs {
  const a: Record<string, number | readonly number[]> = { ...c.o, u: c.u };
  if (c.n > 0) a['topN'] = c.n;
  if (c.seen) {
    const offs = [0];
    for (const r of c.seen) offs.push(offs[offs.length - 1]! + r.length);
    Object.assign(a, PENALTY, { counts: c.seen.flat(), countOffsets: offs });
  }
  return a;
}

async function onGpu(g: WebGpuBackend, c: FuzzCase): Promise<Result> {
  const { N, V, n } = c;
  const bx = g.alloc(N * V, 'f32'),
    outs = [
      g.alloc(N, 'i32'),
      g.alloc(2 * N, 'f32'),
      g.alloc(Math.max(1, N * n), 'i32'),
      g.alloc(Math.max(1, N * n), 'f32'),
    ];
  try {
    g.write(bx, c.x);
    const shapes = [[N], [N, 2], [N, n], [N, n]];
    g.run(
      'sample',
      [{ buf: bx, shape: [N, V] }],
      outs.slice(0, n > 0 ? 4 : 2).map((buf, i) => ({ buf, shape: shapes[i]! })),
      attrs(c),
    );
    const r = await Promise.all(outs.map((b) => g.read(b)));
    return { ids: r[0] as Int32Array, pr: r[1] as Float32Array, ti: r[2] as Int32Array, tl: r[3] as Float32Array };
  } finally {
    for (const b of [bx, ...outs]) g.free(b);
  }
}

function onRef(c: FuzzCase): Result {
  const { x, N, V, n } = c;
  const r = {
    ids: new Int32Array(N),
    pr: new Float32Array(2 * N),
    ti: new Int32Array(N * n),
    tl: new Float32Array(N * n),
  };
  const top = n > 0 ? { n, ids: { data: r.ti }, logprobs: { data: r.tl } } : undefined;
  const pen = c.seen ? { settings: PENALTY, counts: c.seen } : undefined;
  sampleKernel({ data: x, shape: [N, V] }, { data: r.ids }, { data: r.pr }, c.o, c.u, top, pen);
  return r;
}

/** Plans whose probability is ref's float64 one rounded to float32 (the others': a float32 ratio, certified). */
const EXACT_PROB: ReadonlySet<SamplePlan> = new Set(['topk', 'nucleus', 'penalized', 'penalized-nucleus', 'host']);

const lpTol = (lp: number, V: number) => 1e-5 * Math.max(1, Math.abs(lp)) + 2e-6 * Math.log(V);
const same = (a: number, b: number) => a === b || Object.is(a, b);

/**
 * Run `c` on webgpu and ref; the plan, whether the call read the full rows, and every difference (empty: none).
 */
export async function fuzzCheck(
  g: WebGpuBackend,
  c: FuzzCase,
): Promise<{ plan: SamplePlan; full: boolean; diffs: string[] }> {
  const { N, V, n } = c;
  const plan = samplePlan(n > 0 ? 4 : 2, attrs(c), V, N);
  const before = g.counts.sampleFullRows;
  const got = await onGpu(g, c);
  const full = g.counts.sampleFullRows > before;
  const want = onRef(c);
  const diffs: string[] = [];
  const exactProb = full || EXACT_PROB.has(plan) || c.o.temperature === 0;
  const exactLp = full || plan === 'host';
  for (let r = 0; r < N; r++) {
    if (got.ids[r] !== want.ids[r]) diffs.push(`row ${r}: id ${got.ids[r]}, ref ${want.ids[r]}`);
    const gp = got.pr[2 * r]!,
      wp = want.pr[2 * r]!;
    if (exactProb ? !same(gp, wp) : !(Math.abs(gp - wp) <= wp * (1e-5 + V * 2 ** -31) + 1e-9))
      diffs.push(`row ${r}: prob ${gp}, ref ${wp}`);
    const gl = got.pr[2 * r + 1]!,
      wl = want.pr[2 * r + 1]!;
    const lpOk = exactLp || !Number.isFinite(wl) ? same(gl, wl) : Math.abs(gl - wl) <= lpTol(wl, V);
    if (!lpOk) diffs.push(`row ${r}: logprob ${gl}, ref ${wl}`);
    for (let k = 0; k < n; k++) {
      const i = r * n + k;
      if (got.ti[i] !== want.ti[i]) diffs.push(`row ${r}: alternative ${k} id ${got.ti[i]}, ref ${want.ti[i]}`);
      const a = got.tl[i]!,
        b = want.tl[i]!;
      if (exactLp || !Number.isFinite(b) ? !same(a, b) : !(Math.abs(a - b) <= lpTol(b, V)))
        diffs.push(`row ${r}: alternative ${k} logprob ${a}, ref ${b}`);
    }
  }
  return { plan, full, diffs };
}

/** The k-th largest of a row (1-based), by a sorted copy. */
function kth(row: Float32Array, k: number): number {
  return Float32Array.from(row).sort((a, b) => b - a)[Math.min(k, row.length) - 1]!;
}

/** One random row of V logits (kinds and specials as in the header), given the call's top-k for boundary ties. */
function fuzzRow(rng: Rng, V: number, topK: number): Float32Array {
  const x = new Float32Array(V);
  const kind = pick(rng, ['flat', 'peaked', 'zipf', 'zipf', 'constant'] as const);
  if (kind === 'flat') for (let i = 0; i < V; i++) x[i] = (rng.random() * 2 - 1) * 3;
  else if (kind === 'peaked') {
    for (let i = 0; i < V; i++) x[i] = rng.normal() * 1.5;
    for (let k = 0; k < 1 + rng.int(5); k++) x[rng.int(V)] = 6 + rng.random() * 14;
  } else if (kind === 'zipf') {
    const s = pick(rng, [0.8, 1.1, 1.5, 2.5]);
    const perm = Array.from({ length: V }, (_, i) => i);
    rng.shuffle(perm);
    const noise = pick(rng, [0, 0.05, 0.5]);
    for (let r = 0; r < V; r++) x[perm[r]!] = -s * Math.log(r + 1) + noise * rng.normal();
    if (rng.random() < 0.3) for (let i = 0; i < V; i++) x[i] = Math.round(x[i]! * 4) / 4; // many ties
  } else {
    const c = pick(rng, [0, -2.5, 7]);
    x.fill(c);
    for (let k = 0; k < rng.int(4); k++) x[rng.int(V)] = c - 1;
  }
  const nMod = rng.int(3);
  for (let m = 0; m < nMod; m++) {
    const mod = pick(rng, ['maxTie', 'kTie', 'zeros', 'ninf', 'huge', 'subnormal'] as const);
    const cnt = 1 + rng.int(Math.max(1, Math.min(8, V >> 2)));
    if (mod === 'maxTie') {
      const mx = x.reduce((a, v) => Math.max(a, v), -Infinity);
      for (let j = 0; j < cnt; j++) x[rng.int(V)] = mx;
    } else if (mod === 'kTie' && topK > 0 && topK < V) {
      const t = kth(x, topK);
      for (let j = 0; j < cnt + rng.int(3000); j++) x[rng.int(V)] = t;
    } else if (mod === 'zeros') {
      // ±0 among the largest: shift the row so its max is 0, some entries +0, some −0
      const mx = x.reduce((a, v) => Math.max(a, v), -Infinity);
      if (Number.isFinite(mx)) for (let i = 0; i < V; i++) x[i] = x[i]! - mx;
      for (let j = 0; j < cnt; j++) x[rng.int(V)] = rng.random() < 0.5 ? 0 : -0;
    } else if (mod === 'ninf') {
      for (let j = 0; j < cnt + rng.int(V >> 1); j++) x[rng.int(V)] = -Infinity;
    } else if (mod === 'huge') {
      for (let j = 0; j < cnt; j++) x[rng.int(V)] = rng.random() < 0.6 ? -1e30 : 1e30;
    } else if (mod === 'subnormal') {
      const s = pick(rng, [1e-40, -1e-40, 1e-45, -1e-45, 1.1754942e-38]);
      if (rng.random() < 0.5) {
        // a row of zeros and subnormals: the order among them decides
        for (let i = 0; i < V; i++) x[i] = rng.random() < 0.5 ? 0 : s;
      } else for (let j = 0; j < cnt; j++) x[rng.int(V)] = s;
    }
  }
  if (!x.some((v) => v > -Infinity)) x[rng.int(V)] = 0;
  return x;
}

/** Seen pairs for one row: 1–150 ids (some of the row's largest), counts 1–3, some ids given twice. */
function fuzzSeen(rng: Rng, row: Float32Array): number[] {
  const V = row.length;
  const m = 1 + rng.int(Math.min(150, V));
  const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
  const flat: number[] = [];
  const nTop = rng.int(Math.min(m, 12) + 1);
  for (let j = 0; j < m; j++) {
    const id = j < nTop ? order[j]! : rng.int(V);
    flat.push(id, 1 + rng.int(3));
    if (rng.random() < 0.05) flat.push(id, 1 + rng.int(3));
  }
  return flat;
}

/**
 * A uniform number on (or next to) one of ref's own draw boundaries in row r: Σ_{i<j} w_i / Σ w for a random kept id j
 * (ref's final weights, in id order as its draw sums them), where a certified draw must fall back or still be right.
 */
function onBoundary(rng: Rng, c: FuzzCase, r: number): number {
  const l = Float32Array.from(c.x.subarray(r * c.V, (r + 1) * c.V));
  const pairs = c.seen?.[r];
  if (pairs?.length)
    penalizeRow(
      l,
      Array.from({ length: pairs.length / 2 }, (_, i) => [pairs[2 * i]!, pairs[2 * i + 1]!] as const),
      PENALTY,
    );
  const { w, sum } = rowWeights(l, c.o);
  const kept = [...w.keys()].filter((i) => w[i]! > 0);
  const j = kept[rng.int(kept.length)] ?? 0;
  let acc = 0;
  for (let i = 0; i < j; i++) acc += w[i]!;
  const u = (acc / sum) * pick(rng, [1, 1 - 2 ** -52, 1 + 2 ** -52]);
  return u >= 0 && u < 1 ? u : 0;
}

/** One random call at row length V. */
export function fuzzCase(rng: Rng, V: number): FuzzCase {
  const temperature = rng.random() < 0.18 ? 0 : pick(rng, [0.005, 0.01, 0.3, 0.7, 1, 1, 1.5]);
  const ks = [1, 2, 40, 1000, 1024, 1025, 5000, V].filter((k) => k !== 5000 || k < V);
  // a sixth of the calls take the default settings (plain temperature: the certified plans)
  const plain = rng.random() < 0.17;
  const topK = plain || rng.random() < 0.4 ? 0 : pick(rng, ks);
  const topP = plain || rng.random() < 0.4 ? 1 : pick(rng, [0.5, 0.9, 0.95, 0.999]);
  const minP = plain || rng.random() < 0.6 ? 0 : pick(rng, [0.05, 0.2]);
  const n = rng.random() < 0.55 ? 0 : pick(rng, [1, 5, 20]);
  const N = 1 + rng.int(3);
  const x = new Float32Array(N * V);
  for (let r = 0; r < N; r++) x.set(fuzzRow(rng, V, topK), r * V);
  const u = Array.from({ length: N }, () => (rng.random() < 0.05 ? 0 : rng.random()));
  const c: FuzzCase = { x, N, V, o: { temperature, topK, topP, minP }, u, n };
  if (rng.random() < 0.4)
    c.seen = Array.from({ length: N }, (_, r) =>
      r > 0 && rng.random() < 0.25 ? [] : fuzzSeen(rng, x.subarray(r * V, (r + 1) * V)),
    );
  // on a boundary: a fifth of the rows, half at the default settings (the certified draws' weakest point)
  const pb = plain ? 0.5 : 0.2;
  if (temperature > 0) for (let r = 0; r < N; r++) if (rng.random() < pb) u[r] = onBoundary(rng, c, r);
  return c;
}

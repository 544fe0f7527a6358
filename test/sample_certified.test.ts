// The certificate of webgpu's plain-temperature draw (src/backend/sample_certified.ts), without a GPU: the WGSL
// kernel (src/backend/webgpu/sample_certified.ts) emulated in float32 (Math.fround) by a device whose exp is as bad as
// the WGSL spec allows, 3 + 2|y| ULP, always in the same direction (the worst case for prefix sums), or correctly
// rounded. Every certified row must give ref's id (drawWeighted on ref's float64 weights); u on ref's prefix
// boundaries must not be certified; a bound 10^4 times too small must let wrong ids through.
import { describe, expect, it } from 'vitest';
import { CERT_WORDS, certConstants, certifyRows } from '../src/backend/sample_certified.js';
import { drawWeighted, type RowSampling, rowWeights } from '../src/backend/sampling.js';
import { Rng } from '../src/util/rng.js';

const f = Math.fround;
const WG = 256;

/** ulp of a positive normal float32 value. */
function ulp(w: number): number {
  return 2 ** (Math.floor(Math.log2(w)) - 23);
}

/** The kernel's words for one row (exp off by `bias` × its spec bound in ULP: −1, 0 or +1). */
function deviceRow(l: Float32Array, T: number, u: number, bias: number): Uint32Array {
  const V = l.length,
    c = certConstants(T, V);
  let m = -Infinity;
  for (const x of l) m = Math.max(m, x);
  const term = (x: number) => {
    const y = f(f(x - m) * c.invT);
    if (!(y >= -80)) return { s: 0, q: 0, a: 0 };
    const e = f(Math.exp(y));
    const w = f(e + bias * Math.floor(3 + 2 * Math.abs(y)) * ulp(e));
    const s = w * 2 ** 31;
    return { s, q: Math.trunc(s), a: f(f(f(c.c0 + f(c.c1 * Math.abs(y))) * s)) };
  };
  const base: number[] = [],
    abase: number[] = [];
  let Q = 0,
    A = 0;
  for (let t = 0; t < WG; t++) {
    base.push(Q);
    abase.push(A);
    let q = 0,
      a = 0;
    for (let i = t * c.chunk; i < Math.min(V, (t + 1) * c.chunk); i++) {
      const r = term(l[i]!);
      q += r.q;
      a = f(a + r.a);
    }
    Q += q;
    A = f(A + a);
  }
  const out = new Uint32Array(CERT_WORDS);
  const fo = new Float32Array(out.buffer);
  const hi = Math.floor(Q / 2 ** 32);
  out[7] = hi;
  out[8] = Q - hi * 2 ** 32;
  fo[9] = A;
  const tgt = f(f(u) * f(f(hi * 2 ** 32) + f(out[8]!)));
  const Tint = Math.floor(tgt);
  out[0] = 0xffffffff;
  for (let t = 0; t < WG; t++) {
    const lo = t * c.chunk,
      next = t + 1 < WG ? base[t + 1]! : Q;
    if (!(lo < V && base[t]! <= Tint && Tint < next)) continue;
    let acc = base[t]!,
      a = abase[t]!;
    for (let i = lo; i < Math.min(V, lo + c.chunk); i++) {
      const r = term(l[i]!);
      const prev = acc,
        pa = a;
      acc += r.q;
      a = f(a + r.a);
      if (Tint < acc) {
        out[0] = i;
        [out[1], out[2], out[3], out[4]] = [
          Math.floor(prev / 2 ** 32),
          prev % 2 ** 32,
          Math.floor(acc / 2 ** 32),
          acc % 2 ** 32,
        ];
        fo[5] = pa;
        fo[6] = a;
        break;
      }
    }
  }
  return out;
}

function refId(l: Float32Array, o: RowSampling, u: number): number {
  const d = rowWeights(l, o);
  return drawWeighted(d.w, d.sum, u);
}

const plain = (temperature: number): RowSampling => ({ temperature, topK: 0, topP: 1, minP: 0 });

function row(rng: Rng, V: number, kind: 'flat' | 'peaked'): Float32Array {
  const l = new Float32Array(V);
  for (let i = 0; i < V; i++) l[i] = kind === 'flat' ? (rng.random() * 2 - 1) * 3 : rng.normal() * 1.5;
  if (kind === 'peaked') for (let k = 0; k < 3; k++) l[Math.floor(rng.random() * V)] = 6 + rng.random() * 8;
  return l;
}

/** Certify one row's emulated draw; the id when certified, else -1. */
function certified(l: Float32Array, o: RowSampling, u: number, bias: number, slack = 1): number {
  const w = deviceRow(l, o.temperature, u, bias);
  const ids = { data: [0] },
    probs = { data: [0, 0] };
  return certifyRows(w, l.length, o, [u], ids, probs, slack) ? ids.data[0]! : -1;
}

describe('certified plain-temperature draw (emulated device)', () => {
  it('every certified id is ref’s, with exp at the spec’s worst case either way', () => {
    const rng = new Rng(3);
    let n = 0,
      c = 0;
    for (const V of [50000, 3000, 40])
      for (const kind of ['flat', 'peaked'] as const)
        for (const T of [0.5, 1, 2]) {
          const l = row(rng, V, kind),
            o = plain(T);
          for (let k = 0; k < (V > 10000 ? 6 : 30); k++) {
            const u = rng.random();
            const want = refId(l, o, u);
            for (const bias of [-1, 0, 1]) {
              const got = certified(l, o, u, bias);
              n++;
              if (got >= 0) {
                c++;
                expect(got, `V ${V} ${kind} T ${T} u ${u} bias ${bias}`).toBe(want);
              }
            }
          }
        }
    console.log(`emulated device: ${c}/${n} draws certified`);
    expect(c).toBeGreaterThan(n / 2);
  });

  it('u on ref’s prefix boundaries is never certified', () => {
    const rng = new Rng(4);
    for (const [V, kind] of [
      [20000, 'flat'],
      [2000, 'peaked'],
    ] as const) {
      const l = row(rng, V, kind),
        o = plain(1);
      const { w, sum } = rowWeights(l, o);
      let acc = 0;
      for (let i = 0; i < V - 1; i++) {
        acc += w[i]!;
        if (i % 37 !== 0) continue;
        for (const bias of [-1, 0, 1]) expect(certified(l, o, acc / sum, bias), `i ${i}`).toBe(-1);
      }
    }
  });

  it('a bound 10^4 times too small certifies wrong ids (the bound matters)', () => {
    const rng = new Rng(5);
    const V = 20000,
      l = row(rng, V, 'flat'),
      o = plain(1);
    const { w, sum } = rowWeights(l, o);
    let acc = 0,
      wrong = 0;
    for (let i = 0; i < V - 1; i++) {
      acc += w[i]!;
      if (i % 53 !== 0) continue;
      for (const u of [(acc - w[i]! * 1e-5) / sum, (acc + w[i + 1]! * 1e-5) / sum]) {
        const got = certified(l, o, u, 1, 1e-4);
        if (got >= 0 && got !== refId(l, o, u)) wrong++;
      }
    }
    console.log(`bound × 1e-4, exp at +bound: ${wrong} wrong ids`);
    expect(wrong).toBeGreaterThan(0);
  });
});

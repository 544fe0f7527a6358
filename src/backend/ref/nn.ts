/**
 * Reference kernels: matmul and the Transformer layers (see ../kernels.ts for the exact semantics).
 * Readable loops; accumulations in double (JavaScript numbers), which makes `ref` the accurate oracle.
 */
import type { RefView } from './elementwise.js';
import { hashUniform } from '../../util/rng.js';
import { ConfigError } from '../../util/errors.js';
import { roundBlockQ8K, roundRowQ8 } from '../activation_rounding.js';

/** Batch count, rows and columns of a matrix view [..., r, c]. */
function mat(v: RefView): [number, number, number] {
  const s = v.shape;
  const r = s.length >= 2 ? s[s.length - 2]! : 1;
  const c = s[s.length - 1]!;
  return [v.data.length / (r * c) || 0, r, c];
}

// Q8_0 weights, x rounded per row to integers in [−8191, 8191]: out[m, n] = dx[m]·Σ_b scales[n, b]·Σ_{k in block b} xq[m, k]·q[n, k];
// q = the bytes of wq (4 per i32, little-endian)
export function matmulQ8(x: RefView, wq: RefView, scales: RefView, out: RefView): void {
  const [N, K4] = [wq.shape[0]!, wq.shape[1]!];
  const K = K4 * 4,
    nb = K / 32,
    M = out.data.length / N;
  const X = x.data,
    W = wq.data,
    S = scales.data,
    O = out.data;
  const xq = new Int32Array(K);
  for (let m = 0; m < M; m++) {
    const dx = roundRowQ8(X, m * K, K, xq); // the row rounded to integers in [−8191, 8191], one float32 scale
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let b = 0; b < nb; b++) {
        let d = 0;
        for (let k = b * 32; k < b * 32 + 32; k++) {
          const q = (W[n * K4 + (k >> 2)]! << (24 - 8 * (k & 3))) >> 24; // signed byte k mod 4
          d += xq[k]! * q;
        }
        s += S[n * nb + b]! * d;
      }
      O[m * N + n] = dx * s;
    }
  }
}

// q4k weights (llama.cpp's Q4_K unpacked, src/model/q4k.ts): 38 words per 256 weights: d, dmin, sc[8], mn[8], qs[128]
export function matmulQ4k(x: RefView, wq: RefView, out: RefView): void {
  const [N, W] = [wq.shape[0]!, wq.shape[1]!];
  const nb = W / 38,
    K = nb * 256,
    M = out.data.length / N;
  const X = x.data,
    O = out.data;
  const w32 = Int32Array.from(wq.data as ArrayLike<number>);
  const bytes = new Uint8Array(w32.buffer),
    floats = new Float32Array(w32.buffer);
  const xq = new Int32Array(K),
    dx = new Float64Array(nb);
  for (let m = 0; m < M; m++) {
    // the row rounded per 256 to 8 bits (llama.cpp's Q8_K)
    for (let b = 0; b < nb; b++) dx[b] = roundBlockQ8K(X, m * K + b * 256, xq, b * 256);
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let b = 0; b < nb; b++) {
        const wo = (n * nb + b) * 38;
        const d = floats[wo]!,
          dmin = floats[wo + 1]!,
          o = wo * 4;
        let isum = 0,
          msum = 0;
        for (let sb = 0; sb < 8; sb++) {
          const j = sb >> 1,
            shift = (sb & 1) * 4;
          let dot = 0,
            sx = 0;
          for (let l = 0; l < 32; l++) {
            const q = (bytes[o + 24 + 32 * j + l]! >> shift) & 15,
              v = xq[b * 256 + 32 * sb + l]!;
            dot += q * v;
            sx += v;
          }
          isum += bytes[o + 8 + sb]! * dot;
          msum += bytes[o + 16 + sb]! * sx;
        }
        s += dx[b]! * (d * isum - dmin * msum);
      }
      O[m * N + n] = s;
    }
  }
}

// bf16 weights: w[n, k] = float32 with upper bits u16 (k mod 2) of wb[n, k/2]; out[m, n] = Σ_k x[m, k]·w[n, k]
export function matmulBf16(x: RefView, wb: RefView, out: RefView): void {
  const [N, K2] = [wb.shape[0]!, wb.shape[1]!];
  const K = K2 * 2,
    M = out.data.length / N;
  const X = x.data,
    W = wb.data,
    O = out.data;
  const u = new Uint32Array(1),
    f = new Float32Array(u.buffer);
  const w = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const e = W[n * K2 + (k >> 1)]! >>> 0;
      u[0] = (k & 1 ? e >>> 16 : e & 0xffff) << 16;
      w[k] = f[0]!;
    }
    for (let m = 0; m < M; m++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += X[m * K + k]! * w[k]!;
      O[m * N + n] = s;
    }
  }
}

// out[b] = alpha·op(a[b])·op(b[b]) (+ out[b])
export function matmul(
  a: RefView,
  b: RefView,
  out: RefView,
  transA: boolean,
  transB: boolean,
  accumulate: boolean,
  alpha: number,
): void {
  const [ba, ar, ac] = mat(a);
  const [bb, br, bc] = mat(b);
  const [bo, M, N] = mat(out);
  const K = transA ? ar : ac;
  const A = a.data,
    B = b.data,
    O = out.data;
  for (let p = 0; p < bo; p++) {
    const aOff = (ba === 1 ? 0 : p) * ar * ac;
    const bOff = (bb === 1 ? 0 : p) * br * bc;
    const oOff = p * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? A[aOff + k * ac + i]! : A[aOff + i * ac + k]!;
          const bv = transB ? B[bOff + j * bc + k]! : B[bOff + k * bc + j]!;
          s += av * bv;
        }
        O[oOff + i * N + j] = alpha * s + (accumulate ? O[oOff + i * N + j]! : 0);
      }
    }
  }
}

/** out[r, j] += bias[j] on every row r of out [..., N] (matmul's optional bias). */
export function addBias(out: RefView, bias: RefView): void {
  const N = out.shape[out.shape.length - 1] ?? 1;
  for (let o = 0; o < out.data.length; o += N) for (let j = 0; j < N; j++) out.data[o + j] += bias.data[j]!;
}

export function embedding(w: RefView, ids: RefView, out: RefView): void {
  const C = w.shape[1]!,
    V = w.shape[0]!;
  for (let n = 0; n < ids.data.length; n++) {
    const id = ids.data[n]!;
    if (id < 0 || id >= V) throw new ConfigError('embedding: token id', `${id} at position ${n} is outside [0, ${V})`);
    for (let c = 0; c < C; c++) out.data[n * C + c] = w.data[id * C + c]!;
  }
}

function checkId(id: number, n: number, V: number): void {
  if (!(id >= 0 && id < V)) throw new ConfigError('embedding: token id', `${id} at position ${n} is outside [0, ${V})`);
}

// rows of a Q8_0 table: out[n, c] = q[id, c]·scales[id, ⌊c/32⌋] in float32
export function embeddingQ8(wq: RefView, scales: RefView, ids: RefView, out: RefView): void {
  const [V, C4] = [wq.shape[0]!, wq.shape[1]!];
  const C = C4 * 4;
  for (let n = 0; n < ids.data.length; n++) {
    const id = ids.data[n]!;
    checkId(id, n, V);
    for (let c = 0; c < C; c++) {
      const q = (wq.data[id * C4 + (c >> 2)]! << (24 - 8 * (c & 3))) >> 24; // signed byte c mod 4
      out.data[n * C + c] = Math.fround(q * scales.data[(id * C) / 32 + (c >> 5)]!);
    }
  }
}

// rows of a Q4_K table (src/model/q4k.ts's layout): f32(f32(d·sc)·q) − f32(dmin·mn), in float32
export function embeddingQ4k(wq: RefView, ids: RefView, out: RefView): void {
  const [V, W] = [wq.shape[0]!, wq.shape[1]!];
  const nb = W / 38,
    C = nb * 256;
  const f = Math.fround;
  const word = new Int32Array(1),
    bytes = new Uint8Array(word.buffer),
    float = new Float32Array(word.buffer);
  const w32 = (i: number) => ((word[0] = wq.data[i]!), float[0]!);
  const byte = (o: number, k: number) => ((word[0] = wq.data[o + (k >> 2)]!), bytes[k & 3]!); // byte k of words from o
  for (let n = 0; n < ids.data.length; n++) {
    const id = ids.data[n]!;
    checkId(id, n, V);
    for (let b = 0; b < nb; b++) {
      const o = id * W + b * 38;
      const d = w32(o),
        dmin = w32(o + 1);
      for (let s = 0; s < 8; s++) {
        const ds = f(d * byte(o + 2, s)),
          ms = f(dmin * byte(o + 4, s));
        for (let l = 0; l < 32; l++) {
          const qb = byte(o + 6, 32 * (s >> 1) + l);
          const q = s & 1 ? qb >> 4 : qb & 15;
          out.data[n * C + b * 256 + 32 * s + l] = f(f(ds * q) - ms);
        }
      }
    }
  }
}

// rows of a bfloat16 table, widened exactly
export function embeddingBf16(wb: RefView, ids: RefView, out: RefView): void {
  const [V, C2] = [wb.shape[0]!, wb.shape[1]!];
  const C = C2 * 2;
  const u = new Uint32Array(1),
    f = new Float32Array(u.buffer);
  for (let n = 0; n < ids.data.length; n++) {
    const id = ids.data[n]!;
    checkId(id, n, V);
    for (let c = 0; c < C; c++) {
      const e = wb.data[id * C2 + (c >> 1)]! >>> 0;
      u[0] = (c & 1 ? e >>> 16 : e & 0xffff) << 16;
      out.data[n * C + c] = f[0]!;
    }
  }
}

export function embeddingBackward(dy: RefView, ids: RefView, dw: RefView, accumulate = false): void {
  const C = dw.shape[1]!;
  if (!accumulate) dw.data.fill(0);
  for (let n = 0; n < ids.data.length; n++) {
    const id = ids.data[n]!;
    for (let c = 0; c < C; c++) dw.data[id * C + c] += dy.data[n * C + c]!;
  }
}

export function layernorm(
  x: RefView,
  w: RefView,
  b: RefView,
  y: RefView,
  mean: RefView,
  rstd: RefView,
  eps: number,
): void {
  const C = x.shape[x.shape.length - 1]!,
    N = x.data.length / C;
  const X = x.data;
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += X[o + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (X[o + c]! - m) ** 2;
    v /= C;
    const r = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) y.data[o + c] = (X[o + c]! - m) * r * w.data[c]! + b.data[c]!;
    mean.data[n] = m;
    rstd.data[n] = r;
  }
}

export function layernormBackward(
  dy: RefView,
  x: RefView,
  w: RefView,
  mean: RefView,
  rstd: RefView,
  dx: RefView,
  dw: RefView,
  db: RefView,
  accumulate = false,
): void {
  const C = x.shape[x.shape.length - 1]!,
    N = x.data.length / C;
  dw.data.fill(0);
  db.data.fill(0);
  for (let n = 0; n < N; n++) {
    const o = n * C,
      m = mean.data[n]!,
      r = rstd.data[n]!;
    // dxhat = dy·w; dx = r·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat))
    let s1 = 0,
      s2 = 0;
    for (let c = 0; c < C; c++) {
      const xh = (x.data[o + c]! - m) * r;
      const g = dy.data[o + c]! * w.data[c]!;
      s1 += g;
      s2 += g * xh;
      dw.data[c] += dy.data[o + c]! * xh;
      db.data[c] += dy.data[o + c]!;
    }
    s1 /= C;
    s2 /= C;
    for (let c = 0; c < C; c++) {
      const xh = (x.data[o + c]! - m) * r;
      const d = r * (dy.data[o + c]! * w.data[c]! - s1 - xh * s2);
      dx.data[o + c] = accumulate ? dx.data[o + c]! + d : d;
    }
  }
}

export function rmsnorm(x: RefView, w: RefView, y: RefView, rstd: RefView, eps: number): void {
  const C = x.shape[x.shape.length - 1]!,
    N = x.data.length / C;
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x.data[o + c]! ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    // transformers: weight * (x * rsqrt(...)) — the normalised value is rounded to the storage type first
    for (let c = 0; c < C; c++) y.data[o + c] = w.data[c]! * (x.data[o + c]! * r);
    rstd.data[n] = r;
  }
}

export function rmsnormBackward(
  dy: RefView,
  x: RefView,
  w: RefView,
  rstd: RefView,
  dx: RefView,
  dw: RefView,
  accumulate = false,
): void {
  const C = x.shape[x.shape.length - 1]!,
    N = x.data.length / C;
  dw.data.fill(0);
  for (let n = 0; n < N; n++) {
    const o = n * C,
      r = rstd.data[n]!;
    let s = 0;
    for (let c = 0; c < C; c++) {
      const g = dy.data[o + c]! * w.data[c]!;
      s += g * x.data[o + c]!;
      dw.data[c] += dy.data[o + c]! * x.data[o + c]! * r;
    }
    s /= C;
    for (let c = 0; c < C; c++) {
      const d = r * (dy.data[o + c]! * w.data[c]! - x.data[o + c]! * r * r * s);
      dx.data[o + c] = accumulate ? dx.data[o + c]! + d : d;
    }
  }
}

export function softmax(x: RefView, y: RefView): void {
  const C = x.shape[x.shape.length - 1]!,
    N = x.data.length / C;
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let mx = -Infinity;
    for (let c = 0; c < C; c++) mx = Math.max(mx, x.data[o + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x.data[o + c]! - mx);
    for (let c = 0; c < C; c++) y.data[o + c] = Math.exp(x.data[o + c]! - mx) / s;
  }
}

export function softmaxBackward(y: RefView, dy: RefView, dx: RefView): void {
  const C = y.shape[y.shape.length - 1]!,
    N = y.data.length / C;
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let s = 0;
    for (let c = 0; c < C; c++) s += y.data[o + c]! * dy.data[o + c]!;
    for (let c = 0; c < C; c++) dx.data[o + c] = y.data[o + c]! * (dy.data[o + c]! - s);
  }
}

/** rowStart (left-padded rows): row b's positions count from its first real token, rowStart[b] (padding: 0). */
export function rope(
  x: RefView,
  y: RefView,
  inv: Float32Array,
  offset: number,
  inverse: boolean,
  rowStart?: readonly number[],
): void {
  const [B, T, H, D] = x.shape as [number, number, number, number];
  const half = D / 2;
  const sign = inverse ? -1 : 1;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const p = rowStart ? Math.max(0, offset + t - rowStart[b]!) : offset + t;
      for (let i = 0; i < half; i++) {
        const ang = Math.fround(p * inv[i]!);
        const c = Math.fround(Math.cos(ang)),
          s = sign * Math.fround(Math.sin(ang));
        for (let h = 0; h < H; h++) {
          const o = ((b * T + t) * H + h) * D;
          const x1 = x.data[o + i]!,
            x2 = x.data[o + i + half]!;
          y.data[o + i] = x1 * c - x2 * s;
          y.data[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
}

/**
 * rope_qkv / rope_qkv_cache: the fused rows qkv [B, T, (Hq + 2·Hkv)·D] split into q [B, T, Hq, D] and k, v, q and k
 * rotated. `cache`: k and v go to kc, vc [B, L, Hkv, D] at positions offset … offset + T − 1 of each row; else kc, vc
 * are [B, T, Hkv, D].
 */
export function ropeQKV(
  x: RefView,
  q: RefView,
  kc: RefView,
  vc: RefView,
  inv: Float32Array,
  offset: number,
  cache: boolean,
  rowStart?: readonly number[],
): void {
  const [B, T] = x.shape as [number, number];
  const [, , Hq, D] = q.shape as [number, number, number, number];
  const [, L, Hkv] = kc.shape as [number, number, number];
  const nq = Hq * D,
    nk = Hkv * D,
    W = nq + 2 * nk;
  const k = { data: new Float64Array(B * T * nk), shape: [B, T, Hkv, D] };
  for (let r = 0; r < B * T; r++) {
    q.data.set(x.data.subarray(r * W, r * W + nq), r * nq);
    k.data.set(x.data.subarray(r * W + nq, r * W + nq + nk), r * nk);
  }
  rope(q, q, inv, offset, false, rowStart); // in place: each pair is read before it is written
  rope(k, k, inv, offset, false, rowStart);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const r = b * T + t,
        at = cache ? (b * L + offset + t) * nk : r * nk;
      kc.data.set(k.data.subarray(r * nk, (r + 1) * nk), at);
      vc.data.set(x.data.subarray(r * W + nq + nk, (r + 1) * W), at);
    }
}

interface AttnDims {
  B: number;
  T: number;
  S: number;
  Hq: number;
  Hkv: number;
  D: number;
  group: number;
}
function attnDims(q: RefView, k: RefView): AttnDims {
  const [B, T, Hq, D] = q.shape as [number, number, number, number];
  const S = k.shape[1]!,
    Hkv = k.shape[2]!;
  return { B, T, S, Hq, Hkv, D, group: Hq / Hkv };
}

/**
 * Scores of one query row against every visible key (out[s] for s in [start, n)); returns n, the end of the visible
 * keys. Keys before `start` (a left-padded row's padding) are not visible.
 */
function scoresRow(
  q: RefView,
  k: RefView,
  d: AttnDims,
  b: number,
  t: number,
  h: number,
  scale: number,
  causal: boolean,
  qOffset: number,
  out: Float64Array,
  start = 0,
): number {
  const kvh = Math.floor(h / d.group);
  const qo = ((b * d.T + t) * d.Hq + h) * d.D;
  const visible = causal ? Math.min(d.S, qOffset + t + 1) : d.S;
  for (let s = start; s < visible; s++) {
    const ko = ((b * d.S + s) * d.Hkv + kvh) * d.D;
    let dot = 0;
    for (let i = 0; i < d.D; i++) dot += q.data[qo + i]! * k.data[ko + i]!;
    out[s] = dot * scale;
  }
  return visible;
}

/** The first key query row t sees under a sliding window (0 = none): no more than window − 1 positions back. */
function windowStart(qOffset: number, t: number, window: number): number {
  return window > 0 ? Math.max(0, qOffset + t - window + 1) : 0;
}

export function attention(
  q: RefView,
  k: RefView,
  v: RefView,
  o: RefView,
  lse: RefView,
  scale: number,
  causal: boolean,
  qOffset: number,
  prob?: RefView,
  rowStart?: readonly number[],
  window = 0,
): void {
  const d = attnDims(q, k);
  const sc = new Float64Array(d.S);
  for (let b = 0; b < d.B; b++)
    for (let h = 0; h < d.Hq; h++)
      for (let t = 0; t < d.T; t++) {
        // keys before s0: this row's left padding, or past its sliding window
        const s0 = Math.max(rowStart?.[b] ?? 0, windowStart(qOffset, t, window));
        const n = scoresRow(q, k, d, b, t, h, scale, causal, qOffset, sc, s0);
        const seen = n > s0;
        let mx = -Infinity;
        for (let s = s0; s < n; s++) mx = Math.max(mx, sc[s]!);
        let sum = 0;
        for (let s = s0; s < n; s++) sum += sc[s] = Math.exp(sc[s]! - mx);
        const oo = ((b * d.T + t) * d.Hq + h) * d.D;
        const kvh = Math.floor(h / d.group);
        for (let i = 0; i < d.D; i++) {
          let acc = 0;
          for (let s = s0; s < n; s++) acc += sc[s]! * v.data[((b * d.S + s) * d.Hkv + kvh) * d.D + i]!;
          o.data[oo + i] = seen ? acc / sum : 0;
        }
        lse.data[(b * d.Hq + h) * d.T + t] = seen ? mx + Math.log(sum) : -Infinity;
        if (prob) {
          // the probabilities, kept for the backward pass: P [b, h, t, s], 0 where masked
          const po = ((b * d.Hq + h) * d.T + t) * d.S;
          for (let s = 0; s < d.S; s++) prob.data[po + s] = s >= s0 && s < n ? sc[s]! / sum : 0;
        }
      }
}

export function attentionBackward(
  dO: RefView,
  q: RefView,
  k: RefView,
  v: RefView,
  o: RefView,
  lse: RefView,
  dq: RefView,
  dk: RefView,
  dv: RefView,
  scale: number,
  causal: boolean,
  qOffset: number,
  prob?: RefView,
  window = 0,
): void {
  const d = attnDims(q, k);
  dq.data.fill(0);
  dk.data.fill(0);
  dv.data.fill(0);
  const p = new Float64Array(d.S);
  for (let b = 0; b < d.B; b++)
    for (let h = 0; h < d.Hq; h++) {
      const kvh = Math.floor(h / d.group);
      for (let t = 0; t < d.T; t++) {
        const s0 = windowStart(qOffset, t, window);
        const n = scoresRow(q, k, d, b, t, h, scale, causal, qOffset, p, s0);
        const L = lse.data[(b * d.Hq + h) * d.T + t]!;
        const po = ((b * d.Hq + h) * d.T + t) * d.S;
        for (let s = s0; s < n; s++) p[s] = prob ? prob.data[po + s]! : Math.exp(p[s]! - L);
        const qo = ((b * d.T + t) * d.Hq + h) * d.D;
        // Di = Σ_i dO·O (= Σ_s P·dP)
        let Di = 0;
        for (let i = 0; i < d.D; i++) Di += dO.data[qo + i]! * o.data[qo + i]!;
        for (let s = s0; s < n; s++) {
          const ko = ((b * d.S + s) * d.Hkv + kvh) * d.D;
          let dp = 0;
          for (let i = 0; i < d.D; i++) {
            dp += dO.data[qo + i]! * v.data[ko + i]!;
            dv.data[ko + i] += p[s]! * dO.data[qo + i]!;
          }
          const ds = p[s]! * (dp - Di) * scale;
          for (let i = 0; i < d.D; i++) {
            dq.data[qo + i] += ds * k.data[ko + i]!;
            dk.data[ko + i] += ds * q.data[qo + i]!;
          }
        }
      }
    }
}

/**
 * The q, k, v views of a fused projection qkv [B, T, (Hq + 2·Hkv)·D] (copies: q [B, T, Hq, D], k/v [B, T, Hkv, D]).
 */
function splitQKV(qkv: RefView, Hq: number, Hkv: number): [RefView, RefView, RefView] {
  const [B, T, W] = qkv.shape as [number, number, number];
  const D = W / (Hq + 2 * Hkv);
  const widths = [Hq * D, Hkv * D, Hkv * D];
  let col = 0;
  return widths.map((w, j) => {
    const C = qkv.data.constructor as new (n: number) => RefView['data'];
    const data = new C(B * T * w);
    for (let r = 0; r < B * T; r++) for (let i = 0; i < w; i++) data[r * w + i] = qkv.data[r * W + col + i]!;
    col += w;
    return { data, shape: [B, T, j === 0 ? Hq : Hkv, D] };
  }) as unknown as [RefView, RefView, RefView];
}

/** attention on the q, k, v parts of a fused qkv [B, T, (Hq + 2·Hkv)·D] (keys = the same T positions). */
export function attentionQKV(
  qkv: RefView,
  o: RefView,
  lse: RefView,
  Hq: number,
  Hkv: number,
  scale: number,
  causal: boolean,
  qOffset: number,
  prob?: RefView,
): void {
  const [q, k, v] = splitQKV(qkv, Hq, Hkv);
  attention(q, k, v, o, lse, scale, causal, qOffset, prob);
}

/** attention_backward for attentionQKV: dqkv holds dq, dk, dv side by side in qkv's layout. */
export function attentionQKVBackward(
  dO: RefView,
  qkv: RefView,
  o: RefView,
  lse: RefView,
  dqkv: RefView,
  Hq: number,
  Hkv: number,
  scale: number,
  causal: boolean,
  qOffset: number,
  prob?: RefView,
): void {
  const [q, k, v] = splitQKV(qkv, Hq, Hkv);
  const grads = [q, k, v].map((x) => ({
    data: new (x.data.constructor as new (n: number) => RefView['data'])(x.data.length),
    shape: x.shape,
  }));
  attentionBackward(dO, q, k, v, o, lse, grads[0]!, grads[1]!, grads[2]!, scale, causal, qOffset, prob);
  const W = qkv.shape[2]!,
    rows = qkv.data.length / W;
  let col = 0;
  for (const g of grads) {
    const w = g.data.length / rows;
    for (let r = 0; r < rows; r++) for (let i = 0; i < w; i++) dqkv.data[r * W + col + i] = g.data[r * w + i]!;
    col += w;
  }
}

export function crossEntropy(
  logits: RefView,
  targets: RefView,
  loss: RefView,
  lse: RefView,
  ignoreIndex: number,
): void {
  const V = logits.shape[logits.shape.length - 1]!,
    N = logits.data.length / V;
  for (let n = 0; n < N; n++) {
    const o = n * V;
    let mx = -Infinity;
    for (let c = 0; c < V; c++) mx = Math.max(mx, logits.data[o + c]!);
    let s = 0;
    for (let c = 0; c < V; c++) s += Math.exp(logits.data[o + c]! - mx);
    const l = mx + Math.log(s);
    lse.data[n] = l;
    const t = targets.data[n]!;
    if (t === ignoreIndex) loss.data[n] = 0;
    else {
      if (t < 0 || t >= V) throw new ConfigError('cross_entropy: target', `${t} at position ${n} is outside [0, ${V})`);
      loss.data[n] = l - logits.data[o + t]!;
    }
  }
}

export function crossEntropyBackward(
  logits: RefView,
  targets: RefView,
  lse: RefView,
  dloss: RefView,
  dlogits: RefView,
  ignoreIndex: number,
): void {
  const V = logits.shape[logits.shape.length - 1]!,
    N = logits.data.length / V;
  for (let n = 0; n < N; n++) {
    const o = n * V,
      t = targets.data[n]!;
    if (t === ignoreIndex) {
      for (let c = 0; c < V; c++) dlogits.data[o + c] = 0;
      continue;
    }
    const g = dloss.data[n]!,
      L = lse.data[n]!;
    for (let c = 0; c < V; c++) dlogits.data[o + c] = g * Math.exp(logits.data[o + c]! - L);
    dlogits.data[o + t] -= g;
  }
}

export function dropout(x: RefView, y: RefView, p: number, seed: number): void {
  const scale = 1 / (1 - p);
  for (let i = 0; i < x.data.length; i++) y.data[i] = hashUniform(seed, i) >= p ? x.data[i]! * scale : 0;
}

export function adamw(
  grad: RefView,
  param: RefView,
  m: RefView,
  v: RefView,
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  wd: number,
  step: number,
  gradScale: number,
): void {
  const bc1 = 1 - Math.pow(b1, step),
    bc2 = 1 - Math.pow(b2, step);
  const stepSize = lr / bc1,
    bc2s = Math.sqrt(bc2);
  const P = param.data,
    M = m.data,
    Vv = v.data,
    G = grad.data;
  for (let i = 0; i < P.length; i++) {
    const g = G[i]! * gradScale;
    P[i] = P[i]! * (1 - lr * wd);
    M[i] = b1 * M[i]! + (1 - b1) * g;
    Vv[i] = b2 * Vv[i]! + (1 - b2) * g * g;
    P[i] = P[i]! - stepSize * (M[i]! / (Math.sqrt(Vv[i]!) / bc2s + eps));
  }
}

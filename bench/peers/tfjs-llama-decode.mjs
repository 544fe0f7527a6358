// TensorFlow.js peer for the decode benchmark: batch-1 KV-cached decoding of a Llama (RMSNorm, RoPE, multi-head
// attention over the cached keys/values, SwiGLU MLP, tied head) with float32 weights, written with
// @tensorflow/tfjs 4.22 on one of its backends, the way a JavaScript user would write it today (TensorFlow.js has no
// KV cache or LLM decoding of its own). Each step: one token in, logits out, the next token sampled on the host from
// the logits read back (temperature 1; top-p is not in TensorFlow.js). Random weights (N(0, 0.02)).
// usage: node tfjs-llama-decode.mjs BACKEND L C H F V TOKENS     BACKEND: cpu | wasm
// Prints one JSON line: peer, params, tokens, tok_s (tokens after the first over the time after the first).
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const [backend, ...rest] = process.argv.slice(2);
const [L, C, H, F, V, TOKENS] = rest.map(Number);
const tf = require('@tensorflow/tfjs');
if (backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
await tf.setBackend(backend);
await tf.ready();
const D = C / H;
/** @typedef {import('@tensorflow/tfjs').Tensor} T */
/** @typedef {{ n1: T, wq: T, wk: T, wv: T, wo: T, n2: T, w1: T, w3: T, w2: T }} Layer */
const rn = (/** @type {number[]} */ s) => tf.randomNormal(s, 0, 0.02);
const emb = rn([V, C]);
// the tied head as a transposed copy [C, V]: TensorFlow.js's wasm matMul with transposeB is ~7× slower here
/** @type {{ emb: T, norm: T, head: T, layers: Layer[] }} */
const P = { emb, norm: tf.ones([C]), head: tf.transpose(emb), layers: [] };
for (let l = 0; l < L; l++)
  P.layers.push({
    n1: tf.ones([C]),
    wq: rn([C, C]),
    wk: rn([C, C]),
    wv: rn([C, C]),
    wo: rn([C, C]),
    n2: tf.ones([C]),
    w1: rn([C, F]),
    w3: rn([C, F]),
    w2: rn([F, C]),
  });
const params = V * C + C + L * (2 * C + 4 * C * C + 3 * C * F);
const rms = (/** @type {T} */ x, /** @type {T} */ g) =>
  tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-5))), g);
// RoPE tables for every position: cos/sin [S, D/2]
const maxPos = TOKENS + 1;
const inv = Array.from({ length: D / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / D));
const ang = tf.tensor2d(
  Array.from({ length: maxPos * (D / 2) }, (_, k) => Math.floor(k / (D / 2)) * inv[k % (D / 2)]),
  [maxPos, D / 2],
);
const COS = tf.cos(ang),
  SIN = tf.sin(ang);
/** x [H, D] at position pos (rotate-half pairs, as Hugging Face Llama). @param {T} x @param {number} pos */
function rope(x, pos) {
  const c = tf.slice(COS, [pos, 0], [1, D / 2]),
    s = tf.slice(SIN, [pos, 0], [1, D / 2]);
  const [a, b] = tf.split(x, 2, -1);
  return tf.concat([tf.sub(tf.mul(a, c), tf.mul(b, s)), tf.add(tf.mul(b, c), tf.mul(a, s))], -1);
}
/** @type {{ k: T | null, v: T | null }[]} */
const cache = P.layers.map(() => ({ k: null, v: null })); // [H, S, D]
/** Logits [1, V] for token id at position pos, extending the cache. @param {number} id @param {number} pos */
function step(id, pos) {
  return tf.tidy(() => {
    let x = tf.gather(P.emb, tf.tensor1d([id], 'int32')); // [1, C]
    P.layers.forEach((p, l) => {
      const h = rms(x, p.n1);
      const q = rope(tf.reshape(tf.matMul(h, p.wq), [H, D]), pos);
      const k = rope(tf.reshape(tf.matMul(h, p.wk), [H, D]), pos);
      const v = tf.reshape(tf.matMul(h, p.wv), [H, D]);
      const c = cache[l];
      const k3 = tf.expandDims(k, 1),
        v3 = tf.expandDims(v, 1);
      const nk = c.k ? tf.concat([c.k, k3], 1) : k3,
        nv = c.v ? tf.concat([c.v, v3], 1) : v3;
      if (c.k) {
        c.k.dispose();
        c.v?.dispose();
      }
      c.k = tf.keep(nk);
      c.v = tf.keep(nv);
      const att = tf.softmax(tf.mul(tf.matMul(tf.expandDims(q, 1), nk, false, true), 1 / Math.sqrt(D)), -1); // [H, 1, S]
      const y = tf.reshape(tf.matMul(att, nv), [1, C]);
      x = tf.add(x, tf.matMul(y, p.wo));
      const h2 = rms(x, p.n2);
      const g = tf.matMul(h2, p.w1);
      x = tf.add(x, tf.matMul(tf.mul(tf.mul(g, tf.sigmoid(g)), tf.matMul(h2, p.w3)), p.w2));
    });
    return tf.matMul(rms(x, P.norm), P.head); // [1, V]
  });
}
// sampling on the host, temperature 1 (the logits read back, as a user would)
let seed = 1;
const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296;
/** @param {Iterable<number> & ArrayLike<number>} l */
function sample(l) {
  let m = -Infinity;
  for (const x of l) if (x > m) m = x;
  let s = 0;
  const e = new Float64Array(l.length);
  for (let i = 0; i < l.length; i++) s += e[i] = Math.exp(l[i] - m);
  let u = rnd() * s;
  for (let i = 0; i < l.length; i++) if ((u -= e[i]) < 0) return i;
  return l.length - 1;
}
let id = 1,
  t0 = 0;
for (let pos = 0; pos < TOKENS; pos++) {
  if (pos === 1) t0 = performance.now();
  const logits = step(id, pos);
  const l = await logits.data();
  logits.dispose();
  id = sample(l);
}
const tokS = (TOKENS - 1) / ((performance.now() - t0) / 1000);
console.log(JSON.stringify({ peer: `tfjs-${backend}`, params, tokens: TOKENS, tok_s: +tokS.toFixed(2) }));

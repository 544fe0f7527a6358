// Copied from ../shared/bench/peers/tfjs-gpt.mjs (the project's reference peer) so that it resolves this package's
// node_modules. Keep it identical to the shared copy apart from this header.
// @ts-nocheck: a peer copied verbatim from the shared reference (untyped tfjs code), kept identical to it.
// TensorFlow.js peer for benchmarks: the same GPT training step (LayerNorm, fused qkv, causal attention, GELU-tanh
// MLP x4, tied head, softmax cross-entropy, Adam) written with @tensorflow/tfjs 4.22, on one of its backends.
// usage: node tfjs-gpt.mjs BACKEND L C H V T B [STEPS]     BACKEND: cpu | wasm | webgpu
// Needs @tensorflow/tfjs (+ @tensorflow/tfjs-backend-wasm for wasm, @tensorflow/tfjs-backend-webgpu and the npm
// package `webgpu` for webgpu). Prints one JSON line: peer, shape, params, ms_per_step (median), tok_s, gflop_s.
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const [backend, ...rest] = process.argv.slice(2);
const [L, C, H, V, T, B, STEPS = 5] = rest.map(Number);
if (backend === 'webgpu') {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  globalThis.navigator = { gpu: create([]) };
}
const tf = require('@tensorflow/tfjs');
if (backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
if (backend === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
await tf.setBackend(backend); await tf.ready();
const { add, sub, mul, matMul, reshape, transpose, tanh, pow, rsqrt } = tf;
const rn = (s) => tf.variable(tf.randomNormal(s, 0, 0.02));
const ones = (s) => tf.variable(tf.ones(s)), zeros = (s) => tf.variable(tf.zeros(s));
const P = { wte: rn([V, C]), wpe: rn([T, C]), lnf_g: ones([C]), lnf_b: zeros([C]), blocks: [] };
for (let l = 0; l < L; l++) P.blocks.push({ ln1_g: ones([C]), ln1_b: zeros([C]), qkv: rn([C, 3 * C]), qkv_b: zeros([3 * C]),
  proj: rn([C, C]), proj_b: zeros([C]), ln2_g: ones([C]), ln2_b: zeros([C]), fc: rn([C, 4 * C]), fc_b: zeros([4 * C]),
  fc2: rn([4 * C, C]), fc2_b: zeros([C]) });
const vars = [P.wte, P.wpe, P.lnf_g, P.lnf_b, ...P.blocks.flatMap((b) => Object.values(b))];
const nParams = vars.reduce((s, v) => s + v.size, 0);
const ln = (x, g, b) => { const { mean, variance } = tf.moments(x, -1, true); return add(mul(mul(sub(x, mean), rsqrt(add(variance, 1e-5))), g), b); };
const gelu = (x) => mul(mul(x, 0.5), add(tanh(mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1));
const mask = mul(sub(tf.linalg.bandPart(tf.ones([T, T]), -1, 0), 1), 1e9);
// the wasm backend has no gradient for gather, so it embeds with a one-hot matmul
const embed = (idx) => backend === 'wasm' ? reshape(matMul(tf.oneHot(reshape(idx, [B * T]), V).toFloat(), P.wte), [B, T, C]) : tf.gather(P.wte, idx);
function loss(idx, tgt) {
  let x = add(embed(idx), P.wpe);
  const hd = C / H;
  for (const p of P.blocks) {
    const h = transpose(reshape(add(matMul(reshape(ln(x, p.ln1_g, p.ln1_b), [B * T, C]), p.qkv), p.qkv_b), [B, T, 3, H, hd]), [2, 0, 3, 1, 4]);
    const [q, k, v] = tf.unstack(h, 0);
    const att = tf.softmax(add(mul(matMul(q, k, false, true), 1 / Math.sqrt(hd)), mask), -1);
    const y = reshape(transpose(matMul(att, v), [0, 2, 1, 3]), [B * T, C]);
    x = add(x, reshape(add(matMul(y, p.proj), p.proj_b), [B, T, C]));
    const m = add(matMul(gelu(add(matMul(reshape(ln(x, p.ln2_g, p.ln2_b), [B * T, C]), p.fc), p.fc_b)), p.fc2), p.fc2_b);
    x = add(x, reshape(m, [B, T, C]));
  }
  const logits = matMul(reshape(ln(x, P.lnf_g, P.lnf_b), [B * T, C]), P.wte, false, true);
  return tf.losses.softmaxCrossEntropy(tf.oneHot(reshape(tgt, [B * T]), V), logits);
}
const opt = tf.train.adam(3e-4);
const idx = tf.randomUniform([B, T], 0, V, 'int32'), tgt = tf.randomUniform([B, T], 0, V, 'int32');
const step = async () => { const l = opt.minimize(() => loss(idx, tgt), true, vars); const v = (await l.data())[0]; l.dispose(); return v; };
const firstLoss = await step();
const ts = [];
for (let i = 0; i < STEPS; i++) { const t0 = performance.now(); await step(); ts.push(performance.now() - t0); }
ts.sort((a, b) => a - b);
const ms = ts[ts.length >> 1];
const flopsPerToken = 6 * nParams + 12 * L * C * T;
console.log(JSON.stringify({ peer: `tfjs-${backend}`, L, C, H, V, T, B, params: nParams, steps: STEPS, ms_per_step: +ms.toFixed(1),
  tok_s: Math.round(B * T / ms * 1e3), gflop_s: +(flopsPerToken * B * T / ms / 1e6).toFixed(2), first_loss: +firstLoss.toFixed(4) }));
process.exit(0);

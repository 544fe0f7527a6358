// A fine-tuning step with LoRA against the same step with every weight trained (the peer, run in the same command):
// forward + backward + gradient clipping + AdamW on a GPT of bench/train_shapes.mjs's CPU shapes, each mode in a
// child process of its own so that its peak resident memory is its own. LoRA (src/model/lora.ts) skips the frozen
// weights' gradients (a matmul of the backward per linear), their AdamW moments and their update: it should take
// about 4N of the 6N FLOPs a token, and hold r·(in + out) a layer of gradients and moments instead of N.
// With --decode: greedy KV-cached decoding instead (what RL's rollouts and chat do), with the adapters attached (each
// adapted linear two more kernel calls a token) against the same model merged (W + s·B·A: the plain model's speed).
// usage: npm run build:ts && node bench/lab/lora-step.mjs [--cases small,gpt2] [--steps 3] [--r 16] [--threads N]
//                                                         [--decode [--tokens 64]]
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { exitIfHelp, median, printMachine } from '../machine.mjs';
import { CPU_SHAPES, gptConfig } from '../train_shapes.mjs';

exitIfHelp(import.meta.url);

const argv = process.argv.slice(2);
/** The value after flag k, else d. @param {string} k @param {string} d @returns {string} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const steps = Number(opt('--steps', '3'));
const r = Number(opt('--r', '16'));
const threads = opt('--threads', '');

if (argv.includes('--child')) {
  // one mode of one case: print one JSON line
  const s = CPU_SHAPES[opt('--case', 'small')];
  const mode = opt('--mode', 'full');
  if (mode === 'attached' || mode === 'merged') {
    const { initBackend, initModel, Rng, addLora, mergeLora, generate } = await import(
      new URL('../../dist/index.js', import.meta.url).href
    );
    const backend = await initBackend('wasm', threads ? { threads: Number(threads) } : {});
    const rng = new Rng(1);
    const model = initModel(gptConfig({ ...s, T: Math.max(s.T, 128) }), rng, { backend });
    addLora(model, { r, alpha: 2 * r, dropout: 0, targetModules: ['all-linear'], rslora: false }, rng);
    for (const l of model.lora.values())
      backend.write(
        l.B.buf,
        Float32Array.from({ length: l.B.size }, () => rng.normal() * 0.01),
      );
    if (mode === 'merged') mergeLora(model);
    const n = Number(opt('--tokens', '64'));
    const prompt = Array.from({ length: 8 }, () => rng.int(s.V));
    await generate(model, [prompt], { maxTokens: 8, temperature: 0, stopTokens: [] }); // warm-up
    const times = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await generate(model, [prompt], { maxTokens: n, temperature: 0, stopTokens: [] });
      times.push(performance.now() - t0);
    }
    console.log(JSON.stringify({ ms: median(times), tokens: n, backend: backend.describe() }));
    process.exit(0);
  }
  const dist = (/** @type {string} */ p) => import(new URL(`../../dist/${p}`, import.meta.url).href);
  const { initBackend, initModel, tidy, backward, AdamW, gradNorm, clipCoefficient, Rng, addLora } =
    await dist('index.js');
  const backend = await initBackend('wasm', threads ? { threads: Number(threads) } : {});
  const rng = new Rng(1);
  const model = initModel(gptConfig(s), rng, { backend });
  if (mode === 'lora')
    addLora(model, { r, alpha: 2 * r, dropout: 0, targetModules: ['all-linear'], rslora: false }, rng);
  const trainable = model.trainableParams();
  let nTrain = 0;
  for (const t of trainable.values()) nTrain += t.size;
  const opt2 = new AdamW(trainable, { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
  const ids = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  const tg = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  const times = [];
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    const loss = tidy(() => {
      const l = model.loss(ids, tg, s.B, s.T);
      backward(l);
      return l;
    });
    await loss.item();
    loss.dispose();
    opt2.step({ gradScale: clipCoefficient(await gradNorm(trainable), 1) });
    opt2.zeroGrad();
    await backend.sync();
    if (i > 0) times.push(performance.now() - t0);
  }
  console.log(
    JSON.stringify({
      ms: median(times),
      N: model.numParams(),
      trainable: nTrain,
      rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
      backend: backend.describe(),
    }),
  );
  process.exit(0);
}

printMachine('lora-step', threads ? Number(threads) : os.availableParallelism(), false);
const here = fileURLToPath(import.meta.url);
/** One child run of `mode` on case `name`, its JSON line. @param {string} name @param {string} mode */
const child = (name, mode) => {
  const args = [here, '--child', '--case', name, '--mode', mode, '--steps', String(steps), '--r', String(r)];
  if (threads) args.push('--threads', threads);
  args.push('--tokens', opt('--tokens', '64'));
  const p = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (p.status !== 0) throw new Error(`${name} ${mode}: ${p.stderr.slice(-500)}`);
  return JSON.parse(p.stdout.trim().split('\n').pop() ?? '{}');
};
if (argv.includes('--decode')) {
  for (const name of opt('--cases', 'small,gpt2').split(',')) {
    const s = CPU_SHAPES[name];
    if (!s) throw new Error(`unknown case ${name}; one of ${Object.keys(CPU_SHAPES).join(', ')}`);
    const m = child(name, 'merged'),
      a = child(name, 'attached');
    for (const [k, x] of [
      ['merged', m],
      ['attached', a],
    ])
      console.log(
        `${name.padEnd(5)} decode, LoRA r${r} ${k.padEnd(8)}: ${((x.tokens / x.ms) * 1e3).toFixed(1)} tok/s (${x.backend})`,
      );
    console.log(`${name.padEnd(5)} attached ÷ merged: ${(m.ms / a.ms).toFixed(2)}× the speed`);
  }
  process.exit(0);
}
for (const name of opt('--cases', 'small,gpt2').split(',')) {
  const s = CPU_SHAPES[name];
  if (!s) throw new Error(`unknown case ${name}; one of ${Object.keys(CPU_SHAPES).join(', ')}`);
  /** @type {Record<string, { ms: number, N: number, trainable: number, rss_mib: number, backend: string }>} */
  const res = {};
  for (const mode of ['full', 'lora']) res[mode] = child(name, mode);
  const tokens = s.B * s.T;
  const attn = 12 * s.L * s.C * s.T;
  for (const mode of ['full', 'lora']) {
    const m = res[mode];
    // full: 6N a token; LoRA: 4N (no weight gradients of the frozen matrices) + the adapters' own (small) work
    const flops = (mode === 'full' ? 6 * m.N : 4 * m.N + 6 * m.trainable) + attn;
    const tokS = tokens / (m.ms / 1e3);
    console.log(
      `${name.padEnd(5)} B${s.B} T${s.T} ${mode.padEnd(4)}${mode === 'lora' ? ` r${r}` : '    '}: ${m.ms.toFixed(0)} ms/step, ` +
        `${Math.round(tokS)} tok/s, ${((flops * tokS) / 1e9).toFixed(1)} GFLOP/s; trainable ${(m.trainable / 1e6).toFixed(2)}M ` +
        `of ${(m.N / 1e6).toFixed(1)}M; peak RSS ${m.rss_mib} MiB (${m.backend})`,
    );
  }
  console.log(
    `${name.padEnd(5)} LoRA ÷ full fine-tuning: ${(res.full.ms / res.lora.ms).toFixed(2)}× the speed, ` +
      `${(res.lora.rss_mib / res.full.rss_mib).toFixed(2)}× the peak memory`,
  );
}

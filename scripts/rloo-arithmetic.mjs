// The O4 proof of issue 11: SFT a small model on the `arithmetic` task's demonstrations plus a drill of 60,000 more
// generated problems (arithmeticDrill: never a held-out problem), then RLOO (the `arithmetic` preset) with the task's
// exact-match rater as the reward, and print held-out exact match (the task's 500 held-out prompts, never trained
// on) of both: greedy, and one sample each at temperature 1 (the distribution RLOO trains). CPU only, one run.
// --trainer=grpo runs GRPO's `arithmetic` preset instead (the same SFT, the same reward and evaluation).
//
//   npm run build:ts && node scripts/rloo-arithmetic.mjs [outDir] [--trainer=rloo|grpo] [--drill=60000]
//     [--sftSteps=4000] [--episodes=N (default: the preset's)] [--rlooLr=X] [--sftSeconds=3600] [--rlooSeconds=3600]
//     [--sftFrom=DIR (an SFT checkpoint: skip SFT)] [--rloo.KEY=VALUE (any setting of the trainer)]
//
// Steps and episodes decide the result (the same on any machine); the seconds are only caps.
// The base model is trained from random weights: a byte-level tokenizer (a digit is a token) and a small GPT-2.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
/** @param {string} p */
const dist = (p) => import(path.join(root, 'dist', p));
const { arithmetic, arithmeticDrill } = await dist('align/tasks/arithmetic.js');
const { demonstrationRow } = await dist('align/tasks/task.js');
const { sft } = await dist('align/sft.js');
const { buildSftConfig } = await dist('align/sft_settings.js');
const { rloo } = await dist('align/rloo.js');
const { grpo } = await dist('align/grpo.js');
const { buildGrpoConfig } = await dist('align/grpo_settings.js');
const { stopTokensOf } = await dist('align/rl_data.js');
const { buildRlooConfig } = await dist('align/rloo_settings.js');
const { templateOf } = await dist('align/sft.js');
const { loadRewardFunction } = await dist('align/reward_fn.js');
const { initBackend } = await dist('backend/registry.js');
const { sampleBatch } = await dist('generate/batch.js');
const { loadModel, saveModel } = await dist('model/hf/folder.js');
const { initModel } = await dist('model/init.js');
const { DEFAULTS, toModelConfig } = await dist('pretrain/settings.js');
const { loadTokenizer, saveTokenizer, trainBpe } = await dist('tokenizer/index.js');
const { Rng } = await dist('util/rng.js');

const args = process.argv.slice(2);
/** @type {(k: string, d: number) => number} */
const flag = (k, d) => Number(args.find((a) => a.startsWith(`--${k}=`))?.split('=')[1] ?? d);
const out = path.resolve(args.find((a) => !a.startsWith('--')) ?? 'runs/o4');
const trainer = args.find((a) => a.startsWith('--trainer='))?.split('=')[1] ?? 'rloo';
if (trainer !== 'rloo' && trainer !== 'grpo') throw new Error(`--trainer: expected rloo or grpo, got ${trainer}`);
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const t0 = performance.now();
const quiet = { log: () => {}, handleSigint: false };
/** @type {(file: string, rows: unknown[]) => string} */
const jsonl = (file, rows) => (fs.writeFileSync(file, rows.map((r) => JSON.stringify(r) + '\n').join('')), file);

// data: the task's train demonstrations (SFT), its train prompts (RLOO), its held-out prompts (evaluation only)
// plus `--drill` more generated problems (never a held-out one): a small model does not learn carrying from 2,000
const demos = arithmetic.items('train').map(demonstrationRow);
const drill = arithmeticDrill(flag('drill', 60000), 1).map(demonstrationRow);
const sftFile = jsonl(path.join(out, 'sft.jsonl'), [...demos, ...drill]);
const promptsFile = jsonl(
  path.join(out, 'prompts.jsonl'),
  arithmetic.items('train').map((/** @type {{ prompt: unknown }} */ x) => ({ prompt: x.prompt })),
);
const held = arithmetic.items('heldout').map((/** @type {{ prompt: unknown }} */ x) => x.prompt);

const backend = await initBackend('wasm');
// --rloo.KEY=VALUE: any other RLOO setting (numbers and true/false), e.g. --rloo.rlooK=8 --rloo.normalizeAdvantage=true
const rlooSet = Object.fromEntries(
  args
    .filter((a) => a.startsWith('--rloo.'))
    .map((a) => {
      const [k, v] = a.slice('--rloo.'.length).split('=');
      return [k, v === 'true' ? true : v === 'false' ? false : Number(v)];
    }),
);
const sftFrom = args.find((a) => a.startsWith('--sftFrom='))?.split('=')[1];
/** @type {{ checkpointDir: string; steps: number }} */
const s = sftFrom ? { checkpointDir: path.resolve(sftFrom), steps: 0 } : await trainSft();

/** The base model (random weights) and SFT on the demonstrations + drill. */
async function trainSft() {
  // base model: byte-level tokenizer + small GPT-2 from random weights
  const text = demos
    .map((/** @type {{ messages: { role: string; content: string }[] }} */ r) =>
      r.messages.map((m) => `${m.role}\n${m.content}`).join('\n'),
    )
    .join('\n');
  const tok = trainBpe([text], {
    vocabSize: 259,
    specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    config: { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>' },
  });
  const cfg = toModelConfig({ ...DEFAULTS, nLayer: 3, nHead: 4, nEmbd: 96, blockSize: 64 }, tok.vocabSize, {
    bos: tok.eosId ?? null,
    eos: tok.eosId ?? null,
  });
  const base = path.join(out, 'base');
  fs.mkdirSync(base, { recursive: true });
  await saveModel(initModel(cfg, new Rng(1), { backend }), base);
  await saveTokenizer(tok, base);

  return await sft({
    ...quiet,
    config: buildSftConfig({
      overrides: {
        model: base,
        data: [sftFile],
        outDir: out,
        name: 'sft',
        backend: 'wasm',
        quiet: true,
        batchSize: 32,
        lr: 3e-3,
        minLr: 3e-4,
        warmupSteps: 20,
        epochs: 50,
        maxSteps: flag('sftSteps', 4000),
        timeLimit: flag('sftSeconds', 3600),
        evalInterval: 0,
        checkpointInterval: 0,
        sampleInterval: 0,
      },
    }),
  });
}
const tSft = performance.now();

const reward = await loadRewardFunction(path.join(root, 'raters', 'arithmetic.mjs'));
/** @param {string} dir */
async function exactMatch(dir) {
  const model = await loadModel(dir, { backend });
  const t = await loadTokenizer(dir);
  const { template } = await templateOf(dir, t);
  const encode = (/** @type {string} */ x) => t.encode(x, { allowed: 'all' });
  const stops = stopTokensOf(t, template.stopStrings, encode);
  const ids = held.map((/** @type {unknown} */ p) =>
    Int32Array.from(encode(template.render(p, { addGenerationPrompt: true }))),
  );
  /** @type {Record<string, number>} */
  const res = {};
  for (const [name, temperature] of [
    ['greedy', 0],
    ['sampled', 1],
  ]) {
    const r = await sampleBatch(model, ids, { maxTokens: 24, temperature, stopTokens: stops, seed: 7, batchSize: 64 });
    let right = 0;
    for (let i = 0; i < held.length; i++)
      right += await reward.score(held[i], t.decode(Array.from(r[i].ids).filter((x) => !stops.includes(x))));
    res[name] = right / held.length;
  }
  return res;
}
const before = await exactMatch(s.checkpointDir);
console.error(
  `SFT: ${s.steps} steps in ${Math.round((performance.now() - t0) / 1000)} s, held-out exact match ${JSON.stringify(before)}`,
);
const tEval = performance.now();

const r = await (trainer === 'grpo' ? grpo : rloo)({
  ...quiet,
  config: (trainer === 'grpo' ? buildGrpoConfig : buildRlooConfig)({
    preset: 'arithmetic',
    overrides: {
      model: s.checkpointDir,
      reward: [path.join(root, 'raters', 'arithmetic.mjs')],
      data: [promptsFile],
      outDir: out,
      name: trainer,
      backend: 'wasm',
      quiet: true,
      timeLimit: flag('rlooSeconds', 3600),
      ...(flag('episodes', 0) > 0 ? { totalEpisodes: flag('episodes', 0) } : {}),
      ...(flag('rlooLr', 0) > 0 ? { lr: flag('rlooLr', 0), minLr: flag('rlooLr', 0) } : {}),
      ...rlooSet,
    },
  }),
});
const tRloo = performance.now();
const after = await exactMatch(r.checkpointDir);
/** @type {(a: number, b: number) => number} */
const sec = (a, b) => Math.round((b - a) / 100) / 10;
console.log(
  JSON.stringify(
    {
      heldout_prompts: held.length,
      sft_exact_match: before,
      trainer,
      [`${trainer}_exact_match`]: after,
      sft_steps: s.steps,
      [`${trainer}_steps`]: r.steps,
      [`${trainer}_last_batch`]: r.lastBatch,
      seconds: {
        sft: sec(t0, tSft),
        eval: sec(tSft, tEval),
        [trainer]: sec(tEval, tRloo),
        total: sec(t0, performance.now()),
      },
    },
    null,
    2,
  ),
);

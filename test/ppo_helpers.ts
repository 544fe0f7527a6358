/**
 * Fixtures for the PPO tests: prompt-only JSONL ("color <c>" as a user turn), a tiny SFT policy (test/sft_helpers.ts
 * model fine-tuned to answer "I like <c>."), and a test reward model whose score head favours one reply: a linear
 * probe on the SFT body's last hidden state, w = Δ / |Δ|² · margin with Δ = mean h(prompt + favoured reply) −
 * mean h(prompt + other replies), so the favoured reply scores `margin` more on average (the RM's head "favours"
 * it; the body is the SFT model's, as an 'llmts reward' model's is).
 */
import path from 'node:path';
import { sft } from '../src/align/sft.js';
import { buildSftConfig } from '../src/align/sft_settings.js';
import { getBackend } from '../src/backend/registry.js';
import { chatmlTemplate } from '../src/chat/template.js';
import { loadModel, saveRewardModel } from '../src/model/hf/folder.js';
import { RewardModel, SCORE_WEIGHT } from '../src/model/reward.js';
import { noGrad, tensor } from '../src/tensor/tensor.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { LineProgress } from '../src/train/progress.js';
import { Rng } from '../src/util/rng.js';
import { COLORS, colorRows, makeTinyModel, writeJsonl } from './sft_helpers.js';

export const quiet = { log: () => {}, progress: new LineProgress(1000, () => {}), handleSigint: false };

/** n prompt-only rows, conversational (or plain). */
export function promptRows(n: number, o: { plain?: boolean; offset?: number } = {}): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => {
    const c = COLORS[(i + (o.offset ?? 0)) % COLORS.length]!;
    return o.plain ? { prompt: `color ${c}\n` } : { prompt: [{ role: 'user', content: `color ${c}` }] };
  });
}

/** A tiny SFT checkpoint in `tmp` (base model + SFT on colour conversations); returns its folder. */
export async function makeSftPolicy(tmp: string, steps = 60): Promise<string> {
  const base = path.join(tmp, 'base');
  await makeTinyModel(base);
  const data = writeJsonl(path.join(tmp, 'sft.jsonl'), colorRows(200, 5));
  const r = await sft({
    ...quiet,
    config: buildSftConfig({
      preset: 'tiny',
      overrides: {
        model: base,
        data: [data],
        outDir: path.join(tmp, 'runs'),
        name: 'sft',
        backend: 'ref',
        quiet: true,
        maxSteps: steps,
        lr: 3e-3,
      },
    }),
  });
  return r.checkpointDir;
}

/** The ChatML ids of "color <c>" → reply. */
export async function conversationIds(dir: string, c: string, reply: string): Promise<number[]> {
  const tok = await loadTokenizer(dir);
  const text = chatmlTemplate().render(
    [
      { role: 'user', content: `color ${c}` },
      { role: 'assistant', content: reply },
    ],
    { addGenerationPrompt: false },
  );
  return tok.encode(text.replace(/\n$/, ''), { allowed: 'all' });
}

/**
 * Write the probe reward model (see the header) favouring the reply `good` over "I like <c>." for the other colours;
 * returns its folder and the probe's accuracy on every (prompt, good, other) triple.
 */
export async function makeProbeRewardModel(
  sftDir: string,
  out: string,
  good = 'I like red.',
  margin = 2,
): Promise<{ dir: string; accuracy: number }> {
  const backend = getBackend('ref');
  const rm = RewardModel.fromCausalLM(await loadModel(sftDir, { backend }), new Rng(1));
  const C = rm.config.hiddenSize;
  const last = async (ids: number[]) => {
    const h = noGrad(() => rm.body.hidden(Int32Array.from(ids), 1, ids.length)); // (1, T, C)
    return Array.from((await h.data()).subarray((ids.length - 1) * C, ids.length * C));
  };
  const goods: number[][] = [],
    bads: number[][] = [];
  for (const c of COLORS) {
    goods.push(await last(await conversationIds(sftDir, c, good)));
    for (const o of COLORS)
      if (`I like ${o}.` !== good) bads.push(await last(await conversationIds(sftDir, c, `I like ${o}.`)));
  }
  const mean = (xs: number[][]) => Array.from({ length: C }, (_, k) => xs.reduce((s, x) => s + x[k]!, 0) / xs.length);
  const mg = mean(goods),
    mb = mean(bads);
  const d = mg.map((x, k) => x - mb[k]!);
  const d2 = d.reduce((s, x) => s + x * x, 0);
  const mid = mg.map((x, k) => (x + mb[k]!) / 2);
  const w = d.map((x) => (x / d2) * margin);
  const probe = new RewardModel(
    rm.config,
    new Map([...rm.params, [SCORE_WEIGHT, tensor(Float32Array.from(w), [1, C], { backend })]]),
  );
  const score = (h: number[]) => h.reduce((s, x, k) => s + x * w[k]!, 0) - mid.reduce((s, x, k) => s + x * w[k]!, 0);
  let right = 0,
    n = 0;
  for (let i = 0; i < COLORS.length; i++)
    for (let j = 0; j < 5; j++) {
      n++;
      if (score(goods[i]!) > score(bads[i * 5 + j]!)) right++;
    }
  await saveRewardModel(probe, out);
  return { dir: out, accuracy: right / n };
}

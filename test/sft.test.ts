/**
 * `sft` end to end on a tiny model folder (test/sft_helpers.ts): fine-tuning lowers the held-out assistant-token loss
 * (measured apart from the trainer, on the saved folders); metrics.jsonl carries TRL's names; the checkpoint is a
 * Hugging Face folder with its chat template; an interrupted and resumed run takes bit-for-bit the steps of an
 * uninterrupted one; bad rows and long examples are reported, never silently dropped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sft } from '../src/align/sft.js';
import { buildSftConfig, type SftConfig } from '../src/align/sft_settings.js';
import { encodeSftRow } from '../src/align/sft_data.js';
import { evalBatches } from '../src/align/sft_batches.js';
import { getBackend } from '../src/backend/registry.js';
import { chatmlTemplate, loadChatTemplate } from '../src/chat/template.js';
import { TrlRowError } from '../src/data/trl.js';
import { loadModel } from '../src/model/hf/folder.js';
import { noGrad } from '../src/tensor/tensor.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { LineProgress } from '../src/train/progress.js';
import { readMetrics } from '../src/train/metrics.js';
import { colorRows, makeTinyModel, writeJsonl } from './sft_helpers.js';

let tmp = '';
let modelDir = '';
let data = '';
let heldOut = '';
const quiet = { log: () => {}, progress: new LineProgress(1000, () => {}), handleSigint: false };

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-sft-'));
  modelDir = path.join(tmp, 'base');
  await makeTinyModel(modelDir);
  data = writeJsonl(path.join(tmp, 'train.jsonl'), colorRows(48, 1));
  heldOut = writeJsonl(path.join(tmp, 'eval.jsonl'), colorRows(12, 2));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cfg(over: Partial<SftConfig>): SftConfig {
  return buildSftConfig({
    preset: 'tiny',
    overrides: {
      model: modelDir,
      data: [data],
      evalData: heldOut,
      outDir: path.join(tmp, 'runs'),
      backend: 'ref',
      quiet: true,
      ...over,
    },
  });
}

/**
 * Loss over the assistant tokens of the held-out rows, of the model in `dir` (computed here, not by the trainer):
 * per token, and the mean of batch means (what eval_loss reports, as transformers' Trainer averages batches).
 */
async function assistantLoss(dir: string): Promise<{ perToken: number; batchMean: number }> {
  const tok = await loadTokenizer(dir);
  const model = await loadModel(dir, { backend: getBackend('ref') });
  const rows = colorRows(12, 2);
  const xs = rows.map((r) =>
    encodeSftRow(r, chatmlTemplate(), { encode: (t) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId }),
  );
  let sum = 0,
    n = 0,
    means = 0;
  const batches = evalBatches(xs, 4, 0, 100);
  for (const b of batches) {
    const count = b.targets.filter((t) => t !== -100).length;
    const l = await noGrad(() => model.loss(b.ids, b.targets, b.B, b.T)).item();
    sum += l * count;
    n += count;
    means += l;
  }
  return { perToken: sum / n, batchMean: means / batches.length };
}

describe('sft', () => {
  it('lowers the held-out assistant-token loss; metrics.jsonl has TRL names; the checkpoint chats with its template', async () => {
    const r = await sft({ ...quiet, config: cfg({ name: 'learn', maxSteps: 40, evalInterval: 20 }) });
    expect(r.reason).toBe('done');
    expect(r.steps).toBe(40);
    const before = await assistantLoss(modelDir);
    const after = await assistantLoss(r.checkpointDir);
    expect(after.perToken).toBeLessThan(before.perToken - 1);
    expect(r.finalEvalLoss!).toBeCloseTo(after.batchMean, 4); // the trainer's eval_loss is the same measure

    const recs = readMetrics(path.join(r.runDir, 'metrics.jsonl'));
    const steps = recs.filter((x) => x.type === 'step') as unknown as Record<string, number>[];
    expect(steps.map((s) => s['step'])).toEqual([...Array(40).keys()].map((i) => i + 1));
    for (const s of steps) {
      for (const k of ['loss', 'learning_rate', 'grad_norm', 'epoch', 'num_tokens', 'mean_token_accuracy'])
        expect(typeof s[k], k).toBe('number');
      expect(s['learning_rate']).toBe(s['lr']);
      expect(s['mean_token_accuracy']).toBeGreaterThanOrEqual(0);
      expect(s['mean_token_accuracy']).toBeLessThanOrEqual(1);
    }
    expect(steps[39]!['epoch']).toBeCloseTo((40 * 4) / 48, 10);
    expect(steps[39]!['num_tokens']).toBeGreaterThan(steps[0]!['num_tokens']!);
    expect(steps[39]!['mean_token_accuracy']).toBeGreaterThan(steps[0]!['mean_token_accuracy']!);
    const evals = recs.filter((x) => x.type === 'eval') as unknown as Record<string, number>[];
    expect(evals.map((e) => e['step'])).toEqual([20, 40]);
    expect(evals[1]!['eval_loss']).toBe(evals[1]!['valLoss']);
    expect(evals[1]!['eval_loss']).toBeLessThan(evals[0]!['eval_loss']!);
    expect(typeof evals[1]!['eval_mean_token_accuracy']).toBe('number');

    // a Hugging Face folder with the tokenizer and the template it was tuned with (ChatML, as Jinja)
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'trainer_state.json',
      'optimizer.safetensors',
    ]) {
      expect(fs.existsSync(path.join(r.checkpointDir, f)), f).toBe(true);
    }
    const t = await loadChatTemplate(r.checkpointDir, () => {
      throw new Error('no template saved');
    });
    expect(t.kind).toBe('jinja');
    expect(t.render(colorRows(2)[1]!.messages, { addGenerationPrompt: true })).toBe(
      chatmlTemplate().render(colorRows(2)[1]!.messages, { addGenerationPrompt: true }),
    );
    const html = fs.readFileSync(r.reportPath!, 'utf8');
    for (const k of ['mean_token_accuracy', 'eval_loss (evaluation)', 'grad_norm', 'num_tokens'])
      expect(html).toContain(k);
  });

  it('an interrupted run resumed from its checkpoint takes exactly the steps of an uninterrupted one', async () => {
    const over = { maxSteps: 9, gradAccum: 2, batchSize: 3, evalInterval: 4, warmupSteps: 2, lr: 3e-3 };
    const full = await sft({ ...quiet, config: cfg({ name: 'full', ...over }) });
    const part = await sft({ ...quiet, config: cfg({ name: 'part', ...over }), haltAfterStep: 4 });
    expect(part.reason).toBe('interrupted');
    expect(part.steps).toBe(4);
    const rest = await sft({ ...quiet, resume: part.runDir });
    expect(rest.reason).toBe('done');
    expect([...rest.losses.keys()]).toEqual([4, 5, 6, 7, 8]);
    for (let s = 0; s < 9; s++) expect((s < 4 ? part : rest).losses.get(s), `step ${s}`).toBe(full.losses.get(s));
    expect(rest.finalEvalLoss).toBe(full.finalEvalLoss);
    const strip = (f: string) => readMetrics(f).map((x) => ({ ...x, tokensPerSec: 0, mfu: 0, elapsed: 0 }));
    expect(strip(path.join(rest.runDir, 'metrics.jsonl'))).toEqual(strip(path.join(full.runDir, 'metrics.jsonl')));
  });

  it('a bad row stops the run naming file and line; badRows=skip counts it and trains on the rest', async () => {
    const rows = colorRows(12, 3) as unknown[];
    rows.splice(4, 0, { messages: [{ role: 'tool', content: 'x' }] });
    rows.splice(7, 0, { messages: [{ role: 'user', content: 'no reply' }] });
    const bad = writeJsonl(path.join(tmp, 'bad.jsonl'), rows);
    await expect(sft({ ...quiet, config: cfg({ name: 'bad', data: [bad], maxSteps: 1 }) })).rejects.toThrow(
      /bad\.jsonl \[line 5\]: messages\[0\]\.role: expected "system", "user" or "assistant", got "tool"/,
    );
    const lines: string[] = [];
    const fixed = writeJsonl(
      path.join(tmp, 'noreply.jsonl'),
      rows.filter((_, i) => i !== 4),
    );
    await expect(sft({ ...quiet, config: cfg({ name: 'bad3', data: [fixed], maxSteps: 1 }) })).rejects.toSatisfy(
      (x: unknown) => x instanceof TrlRowError && x.line === 7 && /no assistant message/.test(x.message),
    );
    const r = await sft({
      ...quiet,
      log: (s) => lines.push(s),
      config: cfg({ name: 'bad4', data: [bad], maxSteps: 2, badRows: 'skip' }),
    });
    expect(r.data.skippedRows).toBe(1);
    expect(r.data.train).toBe(12);
    expect(lines.join('\n')).toMatch(/bad\.jsonl: 1 bad row skipped \(badRows=skip\); line 5 \(messages\[0\]\.role\)/);
    expect(lines.join('\n')).toMatch(
      /bad\.jsonl: 1 row with nothing to train on \(or refused by the chat template\) skipped/,
    );
  });

  it("uses the model's own Jinja template; a row the template refuses is named by its line", async () => {
    const own = path.join(tmp, 'own');
    fs.cpSync(modelDir, own, { recursive: true });
    const cfgFile = path.join(own, 'tokenizer_config.json');
    const tc = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    tc['chat_template'] =
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('the first message must be the user') }}{% endif %}" +
      "{% for m in messages %}{{ '### ' + m['role'] + ':\\n' + m['content'] + '<|endoftext|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '### assistant:\\n' }}{% endif %}";
    fs.writeFileSync(cfgFile, JSON.stringify(tc));
    const rows = [
      ...colorRows(6, 6),
      {
        messages: [
          { role: 'assistant', content: 'I start.' },
          { role: 'user', content: 'ok' },
          { role: 'assistant', content: 'fine' },
        ],
      },
    ];
    const f = writeJsonl(path.join(tmp, 'own.jsonl'), rows);
    await expect(sft({ ...quiet, config: cfg({ name: 'own1', model: own, data: [f], maxSteps: 1 }) })).rejects.toThrow(
      /own\.jsonl \[line 7\]: messages: .*first message must be the user/,
    );
    const r = await sft({
      ...quiet,
      config: cfg({ name: 'own2', model: own, data: [f], maxSteps: 1, badRows: 'skip', sampleInterval: 1 }),
    });
    expect(r.data.train).toBe(6);
    const sample = readMetrics(path.join(r.runDir, 'metrics.jsonl')).find((x) => x.type === 'sample');
    expect(sample && sample.type === 'sample' && sample.prompt.endsWith('### assistant:\n')).toBe(true); // the prompt ends at the template's generation prompt
    const saved = JSON.parse(fs.readFileSync(path.join(r.checkpointDir, 'tokenizer_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(saved['chat_template']).toBe(tc['chat_template']);
  });

  it('examples longer than maxLength are truncated and counted; those with no reply left are dropped and counted', async () => {
    const long = writeJsonl(path.join(tmp, 'long.jsonl'), [
      ...colorRows(6, 4),
      {
        messages: [
          { role: 'user', content: 'color red '.repeat(8) },
          { role: 'assistant', content: 'I like red.' },
        ],
      },
      {
        messages: [
          { role: 'user', content: 'color blue' },
          { role: 'assistant', content: 'I like blue. '.repeat(6) },
        ],
      },
    ]);
    const lines: string[] = [];
    const r = await sft({
      ...quiet,
      log: (s) => lines.push(s),
      config: cfg({ name: 'long', data: [long], maxLength: 24, maxSteps: 2 }),
    });
    expect(r.data).toMatchObject({ truncated: 2, dropped: 1, train: 7 });
    expect(lines.join('\n')).toMatch(/2 examples longer than maxLength = 24 tokens truncated/);
    expect(lines.join('\n')).toMatch(/1 example dropped: no assistant \/ completion token left within maxLength = 24/);
  });
});

/**
 * `llmts sft` as a user runs it: `node bin/llmts.js sft …` in a separate process (dist/ rebuilt first when src/ is
 * newer): one short run writes metrics.jsonl with TRL's names, report.html and a checkpoint that `llmts chat` loads;
 * a bad row is one line naming file and line, with no stack trace; --help lists the settings.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGguf } from '../src/formats/gguf.js';
import { readMetrics } from '../src/train/metrics.js';
import { colorRows, makeTinyModel, writeJsonl } from './sft_helpers.js';
import { ensureCliBuilt } from './helpers.js';

const ROOT = path.resolve('.');
const BIN = path.join(ROOT, 'bin', 'llmts.js');
let tmp = '';

function llmts(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: tmp,
    encoding: 'utf8',
    timeout: 120_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-sft-cli-'));
  await makeTinyModel(path.join(tmp, 'base'));
  writeJsonl(path.join(tmp, 'chat.jsonl'), colorRows(24, 1));
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('llmts sft on the command line', () => {
  it('a short run: progress lines, TRL metrics, report, a checkpoint that llmts chat talks to', () => {
    const r = llmts([
      'sft',
      'base',
      'chat.jsonl',
      '--preset=tiny',
      '--max_steps=4',
      '--backend=ref',
      '--outDir=out',
      '--name=run',
      '--learning_rate=2e-3',
    ]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^data: language_modeling \(conversational\) rows → 22 training \/ 2 held-out examples/m);
    expect(r.out).toMatch(/^step 4\/4/m);
    expect(r.out).toMatch(/Fine-tuning finished after 4 of 4 steps/);
    const run = path.join(tmp, 'out', 'run');
    const recs = readMetrics(path.join(run, 'metrics.jsonl')) as unknown as Record<string, unknown>[];
    const last = recs.filter((x) => x['type'] === 'step').pop()!;
    for (const k of ['loss', 'learning_rate', 'grad_norm', 'epoch', 'num_tokens', 'mean_token_accuracy'])
      expect(typeof last[k], k).toBe('number');
    expect(typeof recs.find((x) => x['type'] === 'eval')!['eval_loss']).toBe('number');
    expect(fs.existsSync(path.join(run, 'report.html'))).toBe(true);
    const chat = llmts(
      ['chat', path.join('out', 'run', 'checkpoint'), '--backend', 'ref', '--max-tokens', '4', '--temperature', '0'],
      'color red\n',
    );
    expect(chat.code, chat.out + chat.err).toBe(0);
    expect(chat.err + chat.out).toMatch(/jinja template/);
  });

  it('--use_peft: a LoRA adapter checkpoint that chat, generate and export load (the base merged in)', () => {
    const r = llmts([
      'sft',
      'base',
      'chat.jsonl',
      '--preset=tiny',
      '--max_steps=3',
      '--backend=ref',
      '--outDir=out',
      '--name=lora',
      '--use_peft',
      '--lora_r=4',
      '--lora_target_modules=c_attn,c_fc',
      '--learning_rate=1e-2',
    ]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^LoRA: r 4, α 32, dropout 0\.05 on 2 layers \(c_attn, c_fc\): /m);
    const ck = path.join('out', 'lora', 'checkpoint');
    expect(fs.readdirSync(path.join(tmp, ck)).sort()).toEqual(
      expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors', 'config.json', 'tokenizer.json']),
    );
    expect(fs.existsSync(path.join(tmp, ck, 'model.safetensors'))).toBe(false);
    const chat = llmts(['chat', ck, '--backend', 'ref', '--max-tokens', '4', '--temperature', '0'], 'color red\n');
    expect(chat.code, chat.out + chat.err).toBe(0);
    const gen = llmts(['generate', ck, 'color', '--max-tokens', '3', '--temperature', '0', '--backend', 'ref']);
    expect(gen.code, gen.out + gen.err).toBe(0);
    const gguf = llmts(['export', ck, '--format', 'gguf', '--type', 'f32', '-o', 'lora.gguf']);
    expect(gguf.code, gguf.out + gguf.err).toBe(0);
    expect(fs.statSync(path.join(tmp, 'lora.gguf')).size).toBeGreaterThan(10_000);
    const ad = llmts(['export', ck, '--adapter', '--type', 'f32', '-o', 'adapter.gguf']);
    expect(ad.code, ad.out + ad.err).toBe(0);
    expect(ad.out).toMatch(/wrote adapter\.gguf: a llama\.cpp LoRA adapter \(2 layers, r 4, α 32\), f32/);
    const g = parseGguf(new Uint8Array(fs.readFileSync(path.join(tmp, 'adapter.gguf'))));
    expect(g.metadata.get('general.type')?.value).toBe('adapter');
    expect(g.tensors.map((t) => t.name).sort()).toEqual([
      'blk.0.attn_qkv.weight.lora_a',
      'blk.0.attn_qkv.weight.lora_b',
      'blk.0.ffn_up.weight.lora_a',
      'blk.0.ffn_up.weight.lora_b',
    ]);
    // merged into a Hugging Face folder: the same greedy reply as the adapter folder; a .gguf converted back
    const hf = llmts(['export', ck, '--format', 'hf', '-o', 'merged']);
    expect(hf.code, hf.out + hf.err).toBe(0);
    expect(hf.out).toMatch(
      /wrote merged: a Hugging Face gpt2 folder, \d+ tensors \(LoRA adapters merged\), tokenizer of \d+ ids \+ chat template/,
    );
    expect(fs.existsSync(path.join(tmp, 'merged', 'model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(tmp, 'merged', 'adapter_config.json'))).toBe(false);
    const greedy = (dir: string) => {
      const g = llmts(['generate', dir, 'color', '--max-tokens', '6', '--temperature', '0', '--backend', 'ref']);
      expect(g.code, g.err).toBe(0);
      expect(g.out.length).toBeGreaterThan('color'.length);
      return g.out;
    };
    expect(greedy('merged')).toBe(greedy(ck));
    const back = llmts(['export', 'lora.gguf', '--format', 'hf', '-o', 'from-gguf']);
    expect(back.code, back.out + back.err).toBe(0);
    expect(llmts(['export', ck, '--format', 'hf', '-o', 'merged']).err).toMatch(/merged exists: give a new folder/);
    const notAdapter = llmts(['export', 'base', '--adapter', '-o', 'x.gguf']);
    expect(notAdapter.code).toBe(1);
    expect(notAdapter.err).toMatch(/base is not a LoRA adapter folder \(no adapter_config\.json\)/);
  });

  it('a bad row is one line naming file and line; --help documents the data and the settings', () => {
    writeJsonl(path.join(tmp, 'bad.jsonl'), [...colorRows(3), { messages: [{ role: 'robot', content: 'x' }] }]);
    const r = llmts(['sft', 'base', 'bad.jsonl', '--preset=tiny', '--backend=ref', '--outDir=out', '--name=bad']);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(
      'llmts sft: bad.jsonl [line 4]: messages[0].role: expected "system", "user" or "assistant", got "robot"',
    );
    const h = llmts(['sft', '--help']);
    expect(h.code).toBe(0);
    for (const s of ['--maxLength=', '--epochs=', '--evalData=', '--badRows=', 'mean_token_accuracy', '{"messages"'])
      expect(h.out).toContain(s);
    const none = llmts(['sft']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/model: give the pretrained model folder/);
  });
});

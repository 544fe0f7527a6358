/**
 * The llama.cpp decode peer of the benches (bench/peers/llamacpp-decode.mjs, run as bench/llamacpp.mjs runs it: its
 * own process, a GGUF file written by saveGguf, prompt ids on the command line) decodes what llm.ts decodes: on a tiny
 * random Llama, the same greedy ids as llm.ts from the f32 file and the same first ids from the q8_0 file, with
 * positive prefill and decode rates. Skipped, with the reason printed, where node-llama-cpp's prebuilt binary does
 * not load on this machine.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, initBackend, initModel, Rng, Tokenizer, type CausalLM } from '../src/index.js';
import { getBackend } from '../src/backend/registry.js';
import { fromHfConfig } from '../src/model/hf/config.js';
import { saveGguf } from '../src/model/gguf/file.js';
import { tokenizerToGguf } from '../src/tokenizer/gguf.js';

const PEER = path.join(import.meta.dirname, '..', 'bench', 'peers', 'llamacpp-decode.mjs');
const TOKENS = 24;

/** Whether the prebuilt binary loads here: true, or why not. */
const loads: true | string = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }).then(
  async (l) => {
    await l.dispose();
    return true as const;
  },
  (e: unknown) => String(e instanceof Error ? e.message : e),
);
if (loads !== true)
  console.warn(`test/bench_llamacpp: skipped, node-llama-cpp's prebuilt binary does not load: ${loads}`);

interface PeerRun {
  peer: string;
  tokens: number;
  prefill_tok_s: number;
  decode_tok_s: number;
  ids: number[];
  error?: string;
}

/** The peer script on `file`: its one JSON line. */
function runPeer(file: string, prompt: number[], tokens: number): PeerRun {
  const r = spawnSync(process.execPath, [PEER, file, '1', String(tokens), prompt.join(',')], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`llamacpp-decode printed no result (exit ${r.status}): ${r.stderr.slice(-500)}`);
  return JSON.parse(line) as PeerRun;
}

describe.skipIf(loads !== true)('bench/peers/llamacpp-decode.mjs', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-bench-llamacpp-'));
  let model: CausalLM;
  const tok = new Tokenizer({ tokenBytes: Array.from({ length: 256 }, (_, i) => new Uint8Array([i])), merges: [] });
  const prompt = [5, 17, 200, 33, 91, 4, 250, 60];
  beforeAll(async () => {
    await initBackend('ref');
    const cfg = fromHfConfig(
      {
        model_type: 'llama',
        vocab_size: 256,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 4,
        max_position_embeddings: 64,
      },
      'test config',
    );
    model = initModel(cfg, new Rng(3), { backend: getBackend('ref'), std: 0.15 }); // peaked: no near ties
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const ours = async (): Promise<number[]> =>
    (await generate(model, [prompt], { maxTokens: TOKENS, temperature: 0, stopTokens: [] })).choices[0]!.ids;

  it('f32 file: the same greedy ids as llm.ts, and prefill and decode rates', async () => {
    const file = path.join(tmp, 'tiny-f32.gguf');
    await saveGguf(model, file, { type: 'f32', metadata: tokenizerToGguf(tok, 256, { eos: 2 }) });
    const r = runPeer(file, prompt, TOKENS);
    expect(r.error).toBeUndefined();
    expect(r.ids).toEqual(await ours());
    expect(r.tokens).toBe(TOKENS);
    expect(r.prefill_tok_s).toBeGreaterThan(0);
    expect(r.decode_tok_s).toBeGreaterThan(0);
  }, 60_000);

  it('q8_0 file: the same first greedy ids as llm.ts (llama.cpp also rounds activations to 8 bits)', async () => {
    const file = path.join(tmp, 'tiny-q8_0.gguf');
    await saveGguf(model, file, { type: 'q8_0', metadata: tokenizerToGguf(tok, 256, { eos: 2 }) });
    const r = runPeer(file, prompt, TOKENS);
    expect(r.error).toBeUndefined();
    expect(r.ids.slice(0, 4)).toEqual((await ours()).slice(0, 4));
  }, 60_000);

  it('a file llama.cpp cannot read: an error line, exit 1', () => {
    const file = path.join(tmp, 'not.gguf');
    fs.writeFileSync(file, 'not a gguf file');
    const r = spawnSync(process.execPath, [PEER, file, '1', '4', '1,2'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!).error).toBeTruthy();
  }, 60_000);
});

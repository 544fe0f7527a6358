import path from 'node:path';
import { it } from 'vitest';
import { getLlama } from 'node-llama-cpp';
import { initBackend, loadModel, Tokenizer, generate } from '../src/index.js';
import { saveGguf } from '../src/model/gguf/file.js';
import { tokenizerToGguf } from '../src/tokenizer/gguf.js';
import { HF_FIXTURES } from './helpers.js';

it('scratch', async () => {
  await initBackend('ref');
  const llama = await getLlama({ gpu: false, build: 'never' });
  for (const name of ['gpt2-tiny']) {
    const model = await loadModel(path.join(HF_FIXTURES, name));
    const tok = new Tokenizer({ tokenBytes: Array.from({ length: 256 }, (_, i) => new Uint8Array([i])), merges: [] });
    const c = model.config;
    const meta = tokenizerToGguf(tok, c.vocabSize, { bos: c.bosTokenId, eos: c.eosTokenId as number, pad: c.padTokenId });
    meta.set('general.name', { type: 'string', value: name });
    for (const type of ['f32'] as const) {
      const file = `/tmp/gg/${name}-${type}.gguf`;
      await saveGguf(model, file, { type, metadata: meta });
      console.log('load', Date.now()); const m = await llama.loadModel({ modelPath: file });
      const ctx = await m.createContext({ contextSize: 64, threads: 1 });
      const seq = ctx.getSequence(); console.log('ctx', Date.now());
      const prompt = tok.encode('Hello world');
      const got: number[] = [];
      for await (const t of seq.evaluate(prompt, { temperature: 0 })) {
        got.push(t);
        if (got.length >= 20) break;
      }
      console.log('llama', Date.now()); const ours = await loadModel(file);
      const out = await generate(ours, [prompt], { maxTokens: 20, temperature: 0, stopTokens: [] });
      console.log(name, type, JSON.stringify(got), JSON.stringify(out.choices[0]!.ids));
      await ctx.dispose();
      await m.dispose();
    }
  }
}, 280000);

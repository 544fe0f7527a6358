// The KV cache: logits of incremental decoding (prefill with lastOnly, then one token at a time through the cache)
// equal a full recompute over the whole sequence, at every step, within float32 rounding. Runs on every fixture model.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/hf/folder.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { fixtureDirs, relErr, testBackends } from './helpers.js';

const cases = (await testBackends()).flatMap((b) =>
  fixtureDirs().map((d) => [`${path.basename(d)} (${b.name})`, d, b] as const),
);

describe.each(cases)('KV cache on %s', (_name, dir, backend) => {
  it('cached logits equal the full recompute at every step', async () => {
    const model = await loadModel(dir, { backend });
    const V = model.config.vocabSize;
    const seq = [3, 17, 99, 5, 42, 7];
    const cache = model.newCache(1);
    const fwd = async (ids: number[], withCache: boolean, lastOnly: boolean) => {
      const t = tidy(() =>
        noGrad(() =>
          model.forward(Int32Array.from(ids), 1, ids.length, withCache ? { cache, lastOnly } : { lastOnly }),
        ),
      );
      const d = Float32Array.from((await t.data()) as Float32Array);
      t.dispose();
      return d;
    };
    let cached = await fwd(seq, true, true);
    for (let step = 0; step < 20; step++) {
      const full = await fwd(seq, false, true);
      expect(cached.length).toBe(V);
      expect(relErr(cached, full)).toBeLessThan(1e-5);
      // next token: a fixed but varied choice (not argmax, so the sequence does not collapse into a repeat)
      const next = (step * 37 + 11) % V;
      seq.push(next);
      expect(cache.length).toBe(seq.length - 1);
      cached = await fwd([next], true, false);
    }
    // a multi-token chunk through the cache (T > 1 after a prefix) also matches
    const chunk = [1, 2, 3, 4];
    const t = tidy(() => noGrad(() => model.forward(Int32Array.from(chunk), 1, chunk.length, { cache })));
    const got = Float32Array.from((await t.data()) as Float32Array);
    t.dispose();
    const full = tidy(() =>
      noGrad(() => model.forward(Int32Array.from([...seq, ...chunk]), 1, seq.length + chunk.length)),
    );
    const all = (await full.data()) as Float32Array;
    full.dispose();
    expect(relErr(got, all.subarray(seq.length * V))).toBeLessThan(1e-5);
    cache.reset();
  });
});

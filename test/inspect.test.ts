/**
 * Seeing inside: the captured attention probabilities and residual stream against a float64 forward written from the
 * weights (test/inspect_reference.ts, itself checked against transformers' logits first), on GPT-2 and Llama
 * (grouped-query) fixtures and every backend; KV-cached capture; the logit lens, whose last layer is the model's own
 * distribution; the normal forward unchanged and asking for no probabilities; the page's data safe from its tokens;
 * and `llmts inspect` end to end.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, View, Attrs } from '../src/backend/backend.js';
import { logSumExp } from '../src/backend/sampling.js';
import { ConfigError } from '../src/util/errors.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { inspectIds } from '../src/inspect/inspect.js';
import { inspectionHtml } from '../src/inspect/page.js';
import type { PageData } from '../src/inspect/page_client.js';
import { loadModel } from '../src/model/hf/folder.js';
import type { ForwardCapture } from '../src/model/model.js';
import { noGrad, tidy, type Tensor } from '../src/tensor/tensor.js';
import { ensureCliBuilt, fixtureDirs, itFindsFixtures, relErr, testBackends } from './helpers.js';
import { reference64 } from './inspect_reference.js';
import { makeTinyModel } from './sft_helpers.js';

const dirs = fixtureDirs().filter((d) => ['gpt2-tiny', 'llama-tiny'].includes(path.basename(d)));
const all = await testBackends();

/** The reference ids of a fixture (reference.json: two rows of 16). */
function refIds(dir: string): number[][] {
  return (JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as { input_ids: number[][] }).input_ids;
}

/** Largest |a − b|. */
function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Forward with everything captured, read back. */
async function captured(model: Awaited<ReturnType<typeof loadModel>>, ids: number[][]) {
  const B = ids.length,
    T = ids[0]!.length;
  const got = noGrad(() =>
    tidy(() => {
      const capture: Required<ForwardCapture> = { attention: [], residual: [] };
      const logits = model.forward(Int32Array.from(ids.flat()), B, T, { capture });
      return { logits, ...capture };
    }),
  );
  const read = async (t: Tensor) => ({ shape: t.shape, data: Float32Array.from(await t.data()) });
  const out = {
    logits: await read(got.logits),
    attention: await Promise.all(got.attention.map(read)),
    residual: await Promise.all(got.residual.map(read)),
  };
  for (const t of [got.logits, ...got.attention, ...got.residual]) t.dispose();
  return out;
}

itFindsFixtures(dirs.length, 'gpt2-tiny / llama-tiny fixture folders');

describe.each(dirs.map((d) => [path.basename(d), d] as const))('%s: captured against float64', (_n, dir) => {
  const ids = refIds(dir);
  const refs = Promise.all(ids.map((row) => reference64(dir, row)));

  it('the float64 reference itself reproduces transformers’ logits', async () => {
    const want = (await readSafetensors(path.join(dir, 'reference_logits.safetensors'))).tensors.get('logits')!;
    const got = (await refs).flatMap((r) => Array.from(r.logits));
    expect(relErr(got, want.data)).toBeLessThan(1e-5);
  });

  it.each(all.map((b) => [b.name, b] as const))('on %s: attention probabilities and residuals', async (_b, backend) => {
    const model = await loadModel(dir, { backend });
    const c = model.config;
    const B = ids.length,
      T = ids[0]!.length;
    const got = await captured(model, ids);
    const ref = await refs;
    expect(got.attention.length).toBe(c.numLayers);
    expect(got.residual.length).toBe(c.numLayers + 1);
    for (let l = 0; l < c.numLayers; l++) {
      const a = got.attention[l]!;
      expect(a.shape).toEqual([B, c.numHeads, T, T]);
      const want = ref.flatMap((r) => Array.from(r.attention[l]!)); // (B, H, T, T)
      expect(maxAbs(a.data, want)).toBeLessThan(2e-6);
      // each row a distribution over the keys it may see, exactly 0 after it
      for (let row = 0; row < B * c.numHeads * T; row++) {
        const t = row % T;
        let s = 0;
        for (let k = 0; k < T; k++) {
          const p = a.data[row * T + k]!;
          if (k > t) expect(p).toBe(0);
          s += p;
        }
        expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      }
    }
    for (let l = 0; l <= c.numLayers; l++) {
      expect(got.residual[l]!.shape).toEqual([B, T, c.hiddenSize]);
      expect(
        relErr(
          got.residual[l]!.data,
          ref.flatMap((r) => Array.from(r.residual[l]!)),
        ),
      ).toBeLessThan(1e-5);
    }
    expect(
      relErr(
        got.logits.data,
        ref.flatMap((r) => Array.from(r.logits)),
      ),
    ).toBeLessThan(1e-5);
  });

  it.each(all.map((b) => [b.name, b] as const))(
    'on %s: with a KV cache, the new rows of the full map',
    async (_b, backend) => {
      const model = await loadModel(dir, { backend });
      const row = ids[0]!;
      const T = row.length,
        H = model.config.numHeads,
        split = 10;
      const full = (await captured(model, [row])).attention;
      const cache = model.newCache(1);
      const parts: { shape: readonly number[]; data: Float32Array }[][] = [];
      for (const [from, to] of [
        [0, split],
        [split, split + 1],
        [split + 1, T],
      ] as const) {
        const got = noGrad(() =>
          tidy(() => {
            const capture = { attention: [] as Tensor[] };
            const logits = model.forward(Int32Array.from(row.slice(from, to)), 1, to - from, { cache, capture });
            return { logits, attention: capture.attention };
          }),
        );
        parts.push(
          await Promise.all(
            got.attention.map(async (t) => ({ shape: t.shape, data: Float32Array.from(await t.data()) })),
          ),
        );
        for (const t of [got.logits, ...got.attention]) t.dispose();
      }
      cache.dispose();
      const bounds = [0, split, split + 1, T];
      parts.forEach((layers, i) => {
        const [from, to] = [bounds[i]!, bounds[i + 1]!];
        layers.forEach((a, l) => {
          expect(a.shape).toEqual([1, H, to - from, to]); // queries of this call × every key so far
          for (let h = 0; h < H; h++)
            for (let t = from; t < to; t++)
              for (let s = 0; s < to; s++)
                expect(
                  Math.abs(a.data[(h * (to - from) + t - from) * to + s]! - full[l]!.data[(h * T + t) * T + s]!),
                ).toBeLessThan(1e-6);
        });
      });
    },
  );

  it.each(all.map((b) => [b.name, b] as const))(
    'on %s: the logit lens; its last layer is the model’s own distribution',
    async (_b, backend) => {
      const model = await loadModel(dir, { backend });
      const row = ids[1]!;
      const T = row.length,
        V = model.config.vocabSize,
        L = model.config.numLayers;
      const ins = await inspectIds(model, row, null, { topk: 4 });
      expect(ins.lens.map((r) => r.label)).toEqual([
        'embeddings',
        ...Array.from({ length: L }, (_, l) => `block ${l + 1}`),
      ]);
      const ref = await reference64(dir, row);
      const got = await captured(model, [row]);
      // lensLogits on the last residual is forward()'s logits, bit for bit
      const res = noGrad(() => tidy(() => model.lensLogits(tidyResidual(model, row, L))));
      expect(Array.from(await res.data())).toEqual(Array.from(got.logits.data));
      res.dispose();
      // every row of the lens: the top-k of softmax(head(norm(r_l))) from the float64 residuals, norm and head
      for (let l = 0; l <= L; l++) {
        const logits = lensLogits64(dir, ref.residual[l]!, T, model.config.family, await weightsOf(dir));
        for (let t = 0; t < T; t++) {
          const r = Array.from(logits.subarray(t * V, (t + 1) * V));
          const lse = logSumExp(r);
          const order = r.map((_, i) => i).sort((a, b) => r[b]! - r[a]! || a - b);
          for (let j = 0; j < 4; j++) {
            const p = ins.lens[l]!.probs[t * 4 + j]!;
            expect(Math.abs(p - Math.exp(r[order[j]!]! - lse))).toBeLessThan(1e-5);
            // the same token, unless two are too close to call in float32
            if (
              Math.abs(r[order[j]!]! - r[order[j + 1]!]!) > 1e-4 &&
              (j === 0 || Math.abs(r[order[j - 1]!]! - r[order[j]!]!) > 1e-4)
            )
              expect(ins.lens[l]!.ids[t * 4 + j]).toBe(order[j]);
          }
        }
      }
      // the last row from the model's own logits: the page's next-token distribution is those logits
      expect(Array.from(ins.lastLogits)).toEqual(Array.from(got.logits.data.subarray((T - 1) * V)));
      for (let t = 0; t < T; t++) {
        const r = got.logits.data.subarray(t * V, (t + 1) * V);
        let best = 0;
        for (let i = 1; i < V; i++) if (r[i]! > r[best]!) best = i;
        expect(ins.lens[L]!.ids[t * 4]).toBe(best);
        expect(ins.lens[L]!.probs[t * 4]).toBeCloseTo(Math.exp(r[best]! - logSumExp(r)), 6);
      }
      expect(ins.attention.length).toBe(L);
      expect(ins.tokens).toEqual(row.map((id) => `⟨${id}⟩`));
    },
  );

  it.each(all.map((b) => [b.name, b] as const))(
    'on %s: capture off leaves the forward as it was, asking for no probabilities',
    async (_b, backend) => {
      const model = await loadModel(dir, { backend });
      const B = ids.length,
        T = ids[0]!.length;
      const x = Int32Array.from(ids.flat());
      const calls: { name: string; outputs: number }[] = [];
      const orig = backend.run;
      (backend as { run: Backend['run'] }).run = (name: string, i: readonly View[], o: readonly View[], a?: Attrs) => {
        calls.push({ name, outputs: o.length });
        orig.call(backend, name, i, o, a);
      };
      try {
        const plain = noGrad(() => tidy(() => model.forward(x, B, T)));
        const plainCalls = calls.splice(0);
        const withCap = await captured(model, ids);
        const capCalls = calls.splice(0);
        const attn = (cs: typeof calls) => cs.filter((c) => c.name.startsWith('attention'));
        expect(attn(plainCalls).map((c) => c.outputs)).toEqual(new Array(model.config.numLayers).fill(2)); // o, lse
        expect(attn(capCalls).map((c) => c.outputs)).toEqual(new Array(model.config.numLayers).fill(3)); // o, lse, p
        expect(capCalls.length).toBe(plainCalls.length); // nothing else added
        expect(Array.from(await plain.data())).toEqual(Array.from(withCap.logits.data));
        const want = (await readSafetensors(path.join(dir, 'reference_logits.safetensors'))).tensors.get('logits')!;
        expect(relErr(await plain.data(), want.data)).toBeLessThan(1e-5);
        plain.dispose();
      } finally {
        (backend as { run: Backend['run'] }).run = orig;
      }
    },
  );
});

/** The residual after block `l` of one row, as a tensor (captured, the rest freed). */
function tidyResidual(model: Awaited<ReturnType<typeof loadModel>>, row: number[], l: number): Tensor {
  return noGrad(() =>
    tidy(() => {
      const capture = { residual: [] as Tensor[] };
      model.forward(Int32Array.from(row), 1, row.length, { capture });
      return capture.residual[l]!;
    }),
  );
}

const weightCache = new Map<string, Awaited<ReturnType<typeof import('./inspect_reference.js').weights64>>>();
async function weightsOf(dir: string) {
  if (!weightCache.has(dir)) weightCache.set(dir, await (await import('./inspect_reference.js')).weights64(dir));
  return weightCache.get(dir)!;
}

/** Final norm and head in float64 on a residual (T, C): the logit lens by hand. */
function lensLogits64(
  dir: string,
  r: Float64Array,
  T: number,
  family: string,
  w: Map<string, { shape: number[]; data: Float64Array }>,
): Float64Array {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
  const C = r.length / T;
  const n = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    const x = r.subarray(t * C, (t + 1) * C);
    if (family === 'gpt2') {
      const m = x.reduce((a, b) => a + b, 0) / C;
      const v = x.reduce((a, b) => a + (b - m) ** 2, 0) / C;
      const g = w.get('transformer.ln_f.weight')!.data,
        b = w.get('transformer.ln_f.bias')!.data;
      for (let i = 0; i < C; i++)
        n[t * C + i] = ((x[i]! - m) / Math.sqrt(v + cfg['layer_norm_epsilon']!)) * g[i]! + b[i]!;
    } else {
      const ms = x.reduce((a, b) => a + b * b, 0) / C;
      const g = w.get('model.norm.weight')!.data;
      for (let i = 0; i < C; i++) n[t * C + i] = (x[i]! / Math.sqrt(ms + cfg['rms_norm_eps']!)) * g[i]!;
    }
  }
  const head = w.get('lm_head.weight') ?? w.get('transformer.wte.weight') ?? w.get('model.embed_tokens.weight')!;
  const V = head.shape[0]!;
  const out = new Float64Array(T * V);
  for (let t = 0; t < T; t++)
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < C; i++) s += n[t * C + i]! * head.data[v * C + i]!;
      out[t * V + v] = s;
    }
  return out;
}

describe('the page', () => {
  it('carries its data as JSON no token can break out of, and the script reads it back', async (ctx) => {
    if (!dirs[0]) return ctx.skip('no gpt2-tiny / llama-tiny fixture folder');
    const model = await loadModel(dirs[0]!, { backend: all[0] });
    const ins = await inspectIds(model, refIds(dirs[0]!)[0]!.slice(0, 6), null, { topk: 3 });
    const evil = ['</script><script>window.pwned=1</script>', '<img src=x onerror="window.pwned=1">', '<!--', '\u2028'];
    ins.tokens = ins.tokens.map((t, i) => evil[i % evil.length] ?? t);
    ins.vocab.set(ins.ids[0]!, '</script><b>bold</b>');
    const html = inspectionHtml(ins, { title: '</title><script>x()</script>', text: '</script>' });
    // the only '<' inside the data element is the one that closes it
    const start = html.indexOf('<script type="application/json" id="inspect-data">');
    const end = html.indexOf('</script>', start);
    const json = html.slice(start + '<script type="application/json" id="inspect-data">'.length, end);
    expect(json).not.toMatch(/[<\u2028\u2029]/);
    const data = JSON.parse(json) as PageData;
    expect(data.tokens.slice(0, 4)).toEqual(evil);
    expect(data.title).toBe('</title><script>x()</script>');
    // nothing of the model or the caller reaches the markup outside that element
    expect(html.replace(json, '')).not.toMatch(/pwned|<b>bold|x\(\)/);
    // every page data round-trips: attention within 1/65535, logits exact
    const att = new Uint16Array(Uint8Array.from(Buffer.from(data.attention, 'base64')).buffer);
    const T = 6,
      H = ins.numHeads;
    expect(att.length).toBe(ins.numLayers * H * T * T);
    expect(
      maxAbs(
        Array.from(att.subarray(0, H * T * T), (v) => v / 65535),
        ins.attention[0]!,
      ),
    ).toBeLessThanOrEqual(0.5 / 65535 + 1e-9);
    expect(new Float32Array(Uint8Array.from(Buffer.from(data.logits, 'base64')).buffer)).toEqual(ins.lastLogits);
    // the script is a plain function the page calls: no helper of the test transform leaks into it
    expect(html).toMatch(/<script>\(function inspectPageScript\(\) \{/);
    expect(html).not.toMatch(/__name|__vite|import\(/);
    // a text too long for one page is refused before anything is built, saying how long a text fits
    expect(() => inspectionHtml({ ...ins, numLayers: 1 << 20 })).toThrow(ConfigError);
    expect(() => inspectionHtml({ ...ins, numLayers: 1 << 20 })).toThrow(
      /= 150994944 attention weights.*inspect at most 2 tokens of this model/,
    );
  });
});

describe('llmts inspect', () => {
  let tmp = '';
  beforeAll(async () => {
    ensureCliBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-inspect-'));
    await makeTinyModel(path.join(tmp, 'run', 'checkpoint'), { nLayer: 2 });
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [path.resolve('bin/llmts.js'), 'inspect', ...args], { encoding: 'utf8', cwd: tmp });

  it('--help prints and writes nothing', () => {
    const r = cli('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/llmts inspect/);
    expect(r.stdout).toMatch(/--topk/);
    expect(fs.existsSync(path.join(tmp, 'inspect.html'))).toBe(false);
  });

  it('writes one offline page from a run folder (its checkpoint/)', () => {
    const r = cli('run', 'user\nred <img src=x>', '-o', 'page.html', '--topk', '3', '--backend', 'ref');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/tokens, 2 layers × 2 heads/);
    expect(r.stdout).toMatch(/wrote page\.html/);
    const html = fs.readFileSync(path.join(tmp, 'page.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/\bsrc=["']?https?:|<link /); // nothing fetched
    expect(html).not.toMatch(/<img src=x>/); // the text only as escaped JSON
  });

  it('honours special-token text the person typed, as llmts generate does', () => {
    const r = cli('run', '<|im_start|>', '-o', 'special.html', '--backend', 'ref');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^1 token, 2 layers/);
  });

  it('bad input is one line naming what is wrong', () => {
    for (const [args, want] of [
      [['nowhere', 'hi'], /no config\.json here or in checkpoint/],
      [['run', 'hi', '--topk', '0'], /--topk: expected an integer in 1\.\.50/],
      [['run', ''], /text: the text is empty/],
      [['run', 'hi', '--top-p', '2'], /--top-p: expected a number in \(0, 1\]/],
    ] as const) {
      const r = cli(...args);
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(want);
    }
  });
});

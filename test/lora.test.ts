/**
 * LoRA (src/model/lora.ts, src/model/hf/adapter.ts, src/align/peft.ts), checked against Hugging Face's own numbers:
 * - on the HF fixtures (GPT-2's Conv1D layout and Llama's nn.Linear), a fresh adapter leaves the logits as
 *   transformers computed them, and B's gradient is s·G·Aᵀ with G transformers' gradient of the adapted weight;
 * - with non-zero adapters, A's and B's gradients are the chain rule through the merged weight W + s·B·A, whose
 *   gradient our full model computes (itself HF-checked), and merging gives the same logits;
 * - adapter folders in PEFT's names and config, loaded back exactly (attached) or merged; bad adapter files are
 *   named errors;
 * - `sft`, `dpo` and `kto` with usePeft train only the adapters, write adapter checkpoints that every loader reads,
 *   and resume bit for bit.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpo } from '../src/align/dpo.js';
import { buildDpoConfig } from '../src/align/dpo_settings.js';
import { kto } from '../src/align/kto.js';
import { trainRewardModel } from '../src/align/reward.js';
import { buildRewardConfig } from '../src/align/reward_settings.js';
import { buildKtoConfig } from '../src/align/kto_settings.js';
import { sft } from '../src/align/sft.js';
import { buildSftConfig, type SftConfig } from '../src/align/sft_settings.js';
import { getBackend } from '../src/backend/registry.js';
import { checkpointHash } from '../src/feedback/checkpoint_hash.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, setAdapterBase } from '../src/model/hf/adapter.js';
import { BASE_RECORD } from '../src/model/hf/base_record.js';
import { loadModel, loadRewardModel, saveModel } from '../src/model/hf/folder.js';
import { addLora, linearModules, loraParams, loraScale, mergeLora, type LoraOptions } from '../src/model/lora.js';
import type { CausalLM } from '../src/model/model.js';
import { shiftTargets } from '../src/model/model.js';
import { quantizeModel } from '../src/model/quantize.js';
import { backward } from '../src/tensor/autograd.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { readMetrics } from '../src/train/metrics.js';
import { LineProgress } from '../src/train/progress.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs, itFindsFixtures, relErr } from './helpers.js';
import { prefRows } from './prefs_helpers.js';
import { colorRows, makeTinyModel, writeJsonl } from './sft_helpers.js';

const backend = getBackend('ref');
const OPTS: LoraOptions = { r: 4, alpha: 8, dropout: 0, targetModules: ['all-linear'], rslora: false };

/** The weight's gradient as (out, in), from a gradient stored in the weight's layout. */
function outIn(g: ArrayLike<number>, m: { in: number; out: number; layout: 'out_in' | 'in_out' }): Float64Array {
  const r = new Float64Array(m.out * m.in);
  for (let o = 0; o < m.out; o++)
    for (let i = 0; i < m.in; i++) r[o * m.in + i] = m.layout === 'out_in' ? g[o * m.in + i]! : g[i * m.out + o]!;
  return r;
}

/** C (n, p) = s · X (n, k) · Y (k, p), each row-major; `tx`/`ty` read X or Y transposed from a (k, n) / (p, k) array. */
function mm(
  X: ArrayLike<number>,
  Y: ArrayLike<number>,
  n: number,
  k: number,
  p: number,
  s: number,
  tx = false,
  ty = false,
) {
  const C = new Float64Array(n * p);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < p; b++) {
      let acc = 0;
      for (let j = 0; j < k; j++) acc += (tx ? X[j * n + a]! : X[a * k + j]!) * (ty ? Y[b * k + j]! : Y[j * p + b]!);
      C[a * p + b] = s * acc;
    }
  return C;
}

/** Loss and backward on the fixture's ids; returns the loss. */
async function lossBackward(model: CausalLM, ids: Int32Array, B: number, T: number): Promise<number> {
  const targets = shiftTargets(ids, B, T);
  const l = tidy(() => {
    const x = model.loss(ids, targets, B, T);
    backward(x);
    return x;
  });
  const v = await l.item();
  l.dispose();
  return v;
}

/** Fill every adapter's B with small random values (a trained adapter). */
function randomizeB(model: CausalLM, seed: number): void {
  const rng = new Rng(seed);
  for (const l of model.lora.values()) {
    const b = new Float32Array(l.B.size);
    for (let i = 0; i < b.length; i++) b[i] = (2 * rng.random() - 1) * 0.05;
    backend.write(l.B.buf, b);
  }
}

describe('LoRA against the Hugging Face fixtures', () => {
  const dirs = fixtureDirs();
  itFindsFixtures(dirs.length);
  describe.each(dirs.map((d) => [path.basename(d), d]))('%s', (_n, dir) => {
    const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as { input_ids: number[][] };
    const B = ref.input_ids.length,
      T = ref.input_ids[0]!.length;
    const ids = Int32Array.from(ref.input_ids.flat());

    it("a fresh adapter keeps transformers' logits; B's gradient is s·G·Aᵀ from transformers' weight gradient", async () => {
      const model = await loadModel(dir, { backend });
      addLora(model, OPTS, new Rng(1));
      const want = (await readSafetensors(path.join(dir, 'reference_logits.safetensors'))).tensors.get('logits')!;
      const logits = tidy(() => noGrad(() => model.forward(ids, B, T)));
      expect(relErr(await logits.data(), want.data)).toBeLessThan(1e-5);
      await lossBackward(model, ids, B, T);
      for (const p of model.params.values()) expect(p.grad ?? null, 'a frozen weight gets no gradient').toBeNull();
      const grads = (await readSafetensors(path.join(dir, 'reference_grads.safetensors'))).tensors;
      const s = loraScale(OPTS);
      const mods = linearModules(model.config);
      expect(model.lora.size).toBe(mods.length);
      for (const m of mods) {
        const l = model.lora.get(m.weight)!;
        const G = outIn(grads.get(m.weight)!.data, m); // (out, in)
        const dB = mm(G, await l.A.data(), m.out, m.in, OPTS.r, s, false, true); // (out, r) = s·G·Aᵀ
        expect(relErr(await l.B.grad!.data(), dB), `dB of ${m.module}`).toBeLessThan(1e-4);
        expect(Math.max(...(await l.A.grad!.data()).map(Math.abs)), `dA of ${m.module} (B = 0)`).toBe(0);
      }
    });

    it('with non-zero adapters: the chain rule through the merged weight W + s·B·A, and merging keeps the logits', async () => {
      const o = { ...OPTS, alpha: 6, rslora: true };
      const lora = await loadModel(dir, { backend });
      addLora(lora, o, new Rng(2));
      randomizeB(lora, 3);
      const merged = await loadModel(dir, { backend });
      addLora(merged, o, new Rng(2));
      randomizeB(merged, 3);
      const adapters = new Map([...merged.lora].map(([k, l]) => [k, { A: l.A.dataSync(), B: l.B.dataSync() }]));
      mergeLora(merged);
      expect(merged.lora.size).toBe(0);
      const a = tidy(() => noGrad(() => lora.forward(ids, B, T)));
      const b = tidy(() => noGrad(() => merged.forward(ids, B, T)));
      expect(relErr(await a.data(), await b.data())).toBeLessThan(1e-5);
      const la = await lossBackward(lora, ids, B, T);
      const lb = await lossBackward(merged, ids, B, T);
      expect(Math.abs(la - lb) / lb).toBeLessThan(1e-5);
      const s = loraScale(o);
      for (const m of linearModules(lora.config)) {
        const l = lora.lora.get(m.weight)!;
        const { A, B: Bm } = adapters.get(m.weight)!;
        const G = outIn(await merged.params.get(m.weight)!.grad!.data(), m);
        const dB = mm(G, A, m.out, m.in, o.r, s, false, true); // s·G·Aᵀ (out, r)
        const dA = mm(Bm, G, o.r, m.out, m.in, s, true, false); // s·Bᵀ·G (r, in)
        expect(relErr(await l.B.grad!.data(), dB), `dB of ${m.module}`).toBeLessThan(1e-4);
        expect(relErr(await l.A.grad!.data(), dA), `dA of ${m.module}`).toBeLessThan(1e-4);
      }
    });

    it("saves as a PEFT adapter folder (PEFT's names and config) that loads back exactly, attached or merged", async () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-lora-'));
      try {
        const model = await loadModel(dir, { backend });
        addLora(
          model,
          { ...OPTS, targetModules: model.config.family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'] },
          new Rng(4),
        );
        randomizeB(model, 5);
        setAdapterBase(model, dir);
        const out = path.join(tmp, 'adapter');
        await saveModel(model, out);
        expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(false);
        const cfg = JSON.parse(fs.readFileSync(path.join(out, ADAPTER_CONFIG), 'utf8'));
        expect(cfg).toMatchObject({
          peft_type: 'LORA',
          task_type: 'CAUSAL_LM',
          r: 4,
          lora_alpha: 8,
          bias: 'none',
          fan_in_fan_out: model.config.family === 'gpt2',
          base_model_name_or_path: path.resolve(dir),
        });
        const st = (await readSafetensors(path.join(out, ADAPTER_WEIGHTS))).tensors;
        const L = model.config.numLayers;
        const modules = Array.from({ length: L }, (_, i) =>
          model.config.family === 'gpt2'
            ? [`transformer.h.${i}.attn.c_attn`]
            : [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.self_attn.v_proj`],
        ).flat();
        const want = modules.flatMap((m) => [
          `base_model.model.${m}.lora_A.weight`,
          `base_model.model.${m}.lora_B.weight`,
        ]);
        expect([...st.keys()].sort()).toEqual(want.sort());
        const back = await loadModel(out, { backend, adapters: 'attach' });
        for (const [k, t] of loraParams(model))
          expect(await loraParams(back).get(k)!.data(), k).toEqual(await t.data());
        const plain = await loadModel(out, { backend });
        expect(plain.lora.size).toBe(0);
        const x = tidy(() => noGrad(() => model.forward(ids, B, T)));
        const y = tidy(() => noGrad(() => plain.forward(ids, B, T)));
        expect(relErr(await y.data(), await x.data())).toBeLessThan(1e-5);
        // as Hugging Face PEFT writes it: the two adapter files alone, the config taken from the base
        fs.rmSync(path.join(out, 'config.json'));
        fs.rmSync(path.join(out, 'generation_config.json'));
        const peftOnly = await loadModel(out, { backend });
        const w = tidy(() => noGrad(() => peftOnly.forward(ids, B, T)));
        expect(await w.data()).toEqual(await y.data());
        // target_modules as a regular expression (PEFT matches the whole module name)
        fs.writeFileSync(
          path.join(out, ADAPTER_CONFIG),
          JSON.stringify({ ...cfg, target_modules: '.*\\.(c_attn|q_proj|v_proj)' }),
        );
        const byRegex = await loadModel(out, { backend });
        const v = tidy(() => noGrad(() => byRegex.forward(ids, B, T)));
        expect(await v.data()).toEqual(await y.data());
        // a relative base path counts from the adapter folder
        cfg.base_model_name_or_path = path.relative(out, dir);
        fs.writeFileSync(path.join(out, ADAPTER_CONFIG), JSON.stringify(cfg));
        const rel = await loadModel(out, { backend });
        const z = tidy(() => noGrad(() => rel.forward(ids, B, T)));
        expect(await z.data()).toEqual(await y.data());
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
});

describe('LoRA: bad input', () => {
  let tmp = '';
  let base = '';
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-lora-bad-'));
    base = path.join(tmp, 'base');
    await makeTinyModel(base);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  async function adapterDir(name: string): Promise<string> {
    const model = await loadModel(base, { backend });
    addLora(model, OPTS, new Rng(1));
    setAdapterBase(model, base);
    const d = path.join(tmp, name);
    await saveModel(model, d);
    return d;
  }
  const edit = (d: string, f: (j: Record<string, unknown>) => void) => {
    const file = path.join(d, ADAPTER_CONFIG);
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    f(j);
    fs.writeFileSync(file, JSON.stringify(j));
  };

  it('names the file and field of an adapter config it cannot load right', async () => {
    const d = await adapterDir('dora');
    edit(d, (j) => (j['use_dora'] = true));
    await expect(loadModel(d, { backend })).rejects.toThrow(
      /adapter_config\.json \[use_dora\]: DoRA adapters are not supported/,
    );
    edit(d, (j) => ((j['use_dora'] = false), (j['base_model_name_or_path'] = 'gpt2')));
    await expect(loadModel(d, { backend })).rejects.toThrow(
      /adapter_config\.json \[base_model_name_or_path\]: the base model "gpt2" is not a model folder here/,
    );
    edit(d, (j) => ((j['base_model_name_or_path'] = base), (j['r'] = 8)));
    await expect(loadModel(d, { backend })).rejects.toThrow(
      /adapter_model\.safetensors: .*lora_A\.weight' has shape \[4,32\], expected \[8,32\]/,
    );
    edit(d, (j) => ((j['r'] = 4), (j['target_modules'] = ['c_attn'])));
    await expect(loadModel(d, { backend })).rejects.toThrow(
      /'base_model\.model\.transformer\.h\.0\.attn\.c_proj\.lora_A\.weight' and \d+ more belong to no target module/,
    );
    edit(d, (j) => ((j['target_modules'] = ['c_attn', 'c_proj', 'c_fc']), (j['modules_to_save'] = ['lm_head'])));
    await expect(loadModel(d, { backend })).rejects.toThrow(
      /\[modules_to_save\]: fully trained extra modules are not supported/,
    );
  });

  it('adapters on a base that changed since they were saved are refused by name (llmts_base.json), not applied silently', async () => {
    const d = await adapterDir('moved-base');
    const rec = JSON.parse(fs.readFileSync(path.join(d, BASE_RECORD), 'utf8')) as { base: string; fingerprint: string };
    expect(rec.base).toBe(base);
    expect(rec.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    await expect(loadModel(d, { backend })).resolves.toBeTruthy(); // the same base: loads
    // a copy of the base, changed: one weight moved, as any training step moves them all
    const changed = path.join(tmp, 'base-changed');
    fs.cpSync(base, changed, { recursive: true });
    const m = await loadModel(changed, { backend });
    const w = m.params.get('transformer.wte.weight')!;
    const data = Float32Array.from(w.dataSync() as Float32Array);
    data[0]! += 0.5;
    backend.write(w.buf, data);
    await saveModel(m, changed);
    edit(d, (j) => (j['base_model_name_or_path'] = changed));
    await expect(loadModel(d, { backend })).rejects.toThrow(
      /llmts_base\.json \[fingerprint\]: these adapters were trained on other weights than .*base-changed holds now .*delete llmts_base\.json/,
    );
    // a copy unchanged elsewhere is the same base
    const copy = path.join(tmp, 'base-copy');
    fs.cpSync(base, copy, { recursive: true });
    edit(d, (j) => (j['base_model_name_or_path'] = copy));
    await expect(loadModel(d, { backend })).resolves.toBeTruthy();
    // the record deleted: the user's call
    edit(d, (j) => (j['base_model_name_or_path'] = changed));
    fs.rmSync(path.join(d, BASE_RECORD));
    await expect(loadModel(d, { backend })).resolves.toBeTruthy();
  });

  it("the feedback store's checkpoint identity of an adapter folder covers the base's weights and the adapters", async () => {
    const d = await adapterDir('hashed');
    const want = crypto
      .createHash('sha256')
      .update(fs.readFileSync(path.join(base, 'model.safetensors')))
      .update(fs.readFileSync(path.join(d, ADAPTER_WEIGHTS)))
      .digest('hex');
    expect(checkpointHash(d)).toBe(want);
  });

  it('an unknown target module lists the layers there are; a LoRA model refuses to be quantised', async () => {
    const model = await loadModel(base, { backend });
    expect(() => addLora(model, { ...OPTS, targetModules: ['qq_proj'] }, new Rng(1))).toThrow(
      /loraTargetModules: 'qq_proj' matches no linear layer of this \w+ model; its layers are .*\(or 'all-linear'\)/,
    );
    addLora(model, OPTS, new Rng(1));
    await expect(quantizeModel(model, 'q8')).rejects.toThrow(/merge them into its weights first/);
    mergeLora(model);
    await expect(quantizeModel(model, 'q8')).resolves.toBeTruthy();
  });
});

describe('sft, dpo and kto with usePeft', () => {
  let tmp = '';
  let base = '';
  let data = '';
  let heldOut = '';
  let baseEvalLoss = 0;
  const quiet = { log: () => {}, progress: new LineProgress(1000, () => {}), handleSigint: false };
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-lora-run-'));
    const raw = path.join(tmp, 'raw');
    await makeTinyModel(raw, { nLayer: 2, nEmbd: 64 });
    // the base: the tiny model fully fine-tuned for a few steps (a random model's frozen embeddings would leave a
    // low-rank update little to work with); the adapters then fine-tune it further
    data = writeJsonl(path.join(tmp, 'train.jsonl'), colorRows(48, 1));
    heldOut = writeJsonl(path.join(tmp, 'eval.jsonl'), colorRows(12, 2));
    const pre = await sft({
      ...quiet,
      config: cfg({ model: raw, usePeft: false, lr: 1e-2, maxSteps: 6, name: 'base' }),
    });
    base = path.join(pre.runDir, 'checkpoint');
    baseEvalLoss = pre.finalEvalLoss!;
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cfg = (over: Partial<SftConfig>) =>
    buildSftConfig({
      preset: 'tiny',
      overrides: {
        model: base,
        data: [data],
        evalData: heldOut,
        outDir: path.join(tmp, 'runs'),
        backend: 'ref',
        quiet: true,
        usePeft: true,
        loraR: 4,
        lr: 1e-2,
        ...over,
      },
    });

  it('sft trains only the adapters, writes an adapter checkpoint, and lowers the held-out loss', async () => {
    const lines: string[] = [];
    const r = await sft({ ...quiet, log: (s) => lines.push(s), config: cfg({ name: 'lora', maxSteps: 12 }) });
    // 2 layers, C 64, F 256: r·(in + out) = 4·(256 + 128 + 320 + 320) = 4,096 a layer
    expect(lines.join('\n')).toContain(
      'LoRA: r 4, α 32, dropout 0.05 on 8 layers (c_attn, c_proj, c_fc): 8.2 K trainable parameters of 123.4 K (6.64 %)',
    );
    const ck = path.join(r.runDir, 'checkpoint');
    expect(fs.existsSync(path.join(ck, 'model.safetensors'))).toBe(false);
    expect(fs.existsSync(path.join(ck, ADAPTER_WEIGHTS))).toBe(true);
    const moments = (await readSafetensors(path.join(ck, 'optimizer.safetensors'))).tensors;
    expect([...moments.keys()].every((k) => /\.lora_[AB]\.weight\.exp_avg(_sq)?$/.test(k))).toBe(true);
    // held-out loss 3.20 → 2.95 here (full fine-tuning, every weight, reaches 1.38 in these 12 steps: the frozen
    // embeddings and head of so small a model leave the adapters less to work with)
    expect(r.finalEvalLoss!).toBeLessThan(baseEvalLoss - 0.15);
    // every command's loader reads the checkpoint: the adapters merged into the base
    const merged = await loadModel(ck, { backend });
    const attached = await loadModel(ck, { backend, adapters: 'attach' });
    const baseModel = await loadModel(base, { backend });
    const ids = Int32Array.from([1, 5, 9, 12, 40, 7]);
    const [m, a, b] = [merged, attached, baseModel].map((x) =>
      tidy(() => noGrad(() => x.forward(ids, 1, 6))).dataSync(),
    );
    expect(relErr(m!, a!)).toBeLessThan(1e-5);
    expect(relErr(m!, b!)).toBeGreaterThan(1e-3); // it learned something
  });

  it('an interrupted LoRA run resumed from its checkpoint takes exactly the steps of an uninterrupted one', async () => {
    const over = { maxSteps: 7, gradAccum: 2, batchSize: 3, evalInterval: 3, warmupSteps: 2, loraDropout: 0.1 };
    const full = await sft({ ...quiet, config: cfg({ name: 'lfull', ...over }) });
    const part = await sft({ ...quiet, config: cfg({ name: 'lpart', ...over }), haltAfterStep: 3 });
    const rest = await sft({ ...quiet, resume: part.runDir });
    expect([...rest.losses.keys()]).toEqual([3, 4, 5, 6]);
    for (let s = 0; s < 7; s++) expect((s < 3 ? part : rest).losses.get(s), `step ${s}`).toBe(full.losses.get(s));
    const a = (await readSafetensors(path.join(full.runDir, 'checkpoint', ADAPTER_WEIGHTS))).tensors;
    const b = (await readSafetensors(path.join(rest.runDir, 'checkpoint', ADAPTER_WEIGHTS))).tensors;
    for (const [k, t] of a) expect(b.get(k)!.data, k).toEqual(t.data);
  });

  it('reward with usePeft: the adapters and the score head train; a SEQ_CLS adapter folder that loadRewardModel reads (merged = attached); exact resume', async () => {
    const pairs = writeJsonl(path.join(tmp, 'rm-pairs.jsonl'), prefRows(60, 1));
    const held = writeJsonl(path.join(tmp, 'rm-held.jsonl'), prefRows(24, 2, { offset: 1000 }));
    const rcfg = (over: Record<string, unknown>) =>
      buildRewardConfig({
        preset: 'tiny',
        overrides: {
          model: base,
          data: [pairs],
          evalData: held,
          outDir: path.join(tmp, 'runs'),
          backend: 'ref',
          quiet: true,
          usePeft: true,
          loraR: 4,
          loraDropout: 0,
          lr: 1e-2,
          maxSteps: 8,
          ...over,
        },
      });
    const lines: string[] = [];
    const full = await trainRewardModel({ ...quiet, log: (l) => lines.push(l), config: rcfg({ name: 'lrm' }) });
    expect(lines.join('\n')).toMatch(/^LoRA: r 4, α 32, dropout 0 on 8 layers .*: [\d.]+ K trainable parameters/m);
    const evals = readMetrics(path.join(full.runDir, 'metrics.jsonl')).filter(
      (x) => x.type === 'eval',
    ) as unknown as Record<string, number>[];
    expect(evals.at(-1)!['eval_accuracy']).toBeGreaterThan(0.9); // held-out pairs ranked right
    const ck = path.join(full.runDir, 'checkpoint');
    const cfgJson = JSON.parse(fs.readFileSync(path.join(ck, ADAPTER_CONFIG), 'utf8'));
    expect(cfgJson).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'] });
    const st = (await readSafetensors(path.join(ck, ADAPTER_WEIGHTS))).tensors;
    expect(st.get('base_model.model.score.weight')!.shape).toEqual([1, 64]);
    const moments = (await readSafetensors(path.join(ck, 'optimizer.safetensors'))).tensors;
    expect([...moments.keys()].every((k) => /(\.lora_[AB]\.weight|^score\.weight)\.exp_avg(_sq)?$/.test(k))).toBe(true);
    const seqs = [
      [1, 5, 9, 12],
      [3, 4, 40, 7, 8],
    ];
    const merged = await loadRewardModel(ck, { backend });
    const attached = await loadRewardModel(ck, { backend, adapters: 'attach' });
    expect(merged.body.lora.size).toBe(0);
    const rw = (m: typeof merged) => tidy(() => noGrad(() => m.rewards(seqs))).dataSync();
    expect(relErr(rw(merged), rw(attached))).toBeLessThan(1e-5);
    // a language model's loader refuses it, by name
    await expect(loadModel(ck, { backend })).rejects.toThrow(
      /a reward model's adapters \(task_type SEQ_CLS\): load it with loadRewardModel/,
    );
    const part = await trainRewardModel({ ...quiet, config: rcfg({ name: 'lrm-part' }), haltAfterStep: 3 });
    const rest = await trainRewardModel({ ...quiet, resume: part.runDir });
    for (let i = 0; i < 8; i++) expect((i < 3 ? part : rest).losses.get(i), `step ${i}`).toBe(full.losses.get(i));
  });

  it('dpo and kto train adapters on top of an adapter checkpoint: their first loss is ln 2 (policy = reference)', async () => {
    const sftRun = await sft({ ...quiet, config: cfg({ name: 'lsft', maxSteps: 4 }) });
    const sftCk = path.join(sftRun.runDir, 'checkpoint');
    const pairs = writeJsonl(path.join(tmp, 'pairs.jsonl'), prefRows(40, 1));
    const common = {
      model: sftCk,
      data: [pairs],
      outDir: path.join(tmp, 'runs'),
      backend: 'ref' as const,
      quiet: true,
    };
    const peft = { usePeft: true, loraR: 4, loraDropout: 0, lr: 5e-3, maxSteps: 6 };
    const d = await dpo({
      ...quiet,
      config: buildDpoConfig({ preset: 'tiny', overrides: { ...common, ...peft, name: 'ldpo' } }),
    });
    expect(Math.abs(d.losses.get(0)! - Math.LN2)).toBeLessThan(1e-6);
    const dpoCk = path.join(d.runDir, 'checkpoint');
    const cfgJson = JSON.parse(fs.readFileSync(path.join(dpoCk, ADAPTER_CONFIG), 'utf8'));
    expect(cfgJson.base_model_name_or_path).toBe(path.resolve(sftCk)); // adapters on adapters
    const chained = await loadModel(dpoCk, { backend });
    expect(chained.lora.size).toBe(0);
    const rows = writeJsonl(
      path.join(tmp, 'kto.jsonl'),
      prefRows(40, 1).flatMap((r) => [
        { prompt: r['prompt'], completion: r['chosen'], label: true },
        { prompt: r['prompt'], completion: r['rejected'], label: false },
      ]),
    );
    const k = await kto({
      ...quiet,
      config: buildKtoConfig({ preset: 'tiny', overrides: { ...common, ...peft, data: [rows], name: 'lkto' } }),
    });
    expect([...k.losses.values()].every(Number.isFinite)).toBe(true);
    expect(fs.existsSync(path.join(k.runDir, 'checkpoint', ADAPTER_WEIGHTS))).toBe(true);
  });
});

/**
 * `llmts kto` (src/align/kto*.ts): the KTO loss and its gradient against a float64 formula written here from the
 * paper / TRL's `kto_loss` (central finite differences); the KL reference point (mean log-ratio of mismatched pairs,
 * clamped at 0, detached) and TRL's +1-offset mismatched pairs in fixed batches; the objective on a tiny model
 * against the same formula on log-probs computed apart; an end-to-end tiny run on unpaired thumbs (the desirable
 * reply ends with '.', the undesirable one with '!') that raises the desirable replies' log-probs and lowers the
 * undesirable ones' on held-out prompts, measured on the saved checkpoint; an interrupted and resumed run that takes
 * bit-for-bit the steps of an uninterrupted one; bad rows as named errors.
 */
import fs from 'node:fs';
import { resolveLossSync } from '../src/train/staged_loss.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_LOGPS } from '../src/align/dpo.js';
import { kto } from '../src/align/kto.js';
import {
  assignKlPartners,
  encodeUnpairedSets,
  fixedBatches,
  type KtoRow,
  shuffledOrder,
} from '../src/align/kto_data.js';
import { klReferencePoint, ktoLoss } from '../src/align/kto_loss.js';
import { KtoObjective, ktoReferenceLogps } from '../src/align/kto_objective.js';
import { buildKtoConfig, type KtoConfig } from '../src/align/kto_settings.js';
import { getBackend } from '../src/backend/registry.js';
import { chatmlTemplate } from '../src/chat/template.js';
import { parseTrlJsonl, TrlRowError } from '../src/data/trl.js';
import { loadModel } from '../src/model/hf/folder.js';
import { sequenceLogProbs } from '../src/model/losses.js';
import { backward } from '../src/tensor/autograd.js';
import { noGrad, tensor, tidy } from '../src/tensor/tensor.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { LineProgress } from '../src/train/progress.js';
import { Rng } from '../src/util/rng.js';
import { prefRows } from './prefs_helpers.js';
import { makeTinyModel, writeJsonl } from './sft_helpers.js';

const backend = getBackend('ref');
const sigma = (z: number) => 1 / (1 + Math.exp(-z));

/** TRL kto_loss, float64: KL = max(0, mean(kl log-ratios)); losses λ_D(1−σ(β(r−KL))), λ_U(1−σ(β(KL−r))); mean. */
function ktoRef(
  lp: number[],
  ref: number[],
  desirable: boolean[],
  z0: number,
  beta: number,
  wD: number,
  wU: number,
): number {
  let s = 0;
  lp.forEach((x, i) => {
    const r = x - ref[i]!;
    s += desirable[i] ? wD * (1 - sigma(beta * (r - z0))) : wU * (1 - sigma(beta * (z0 - r)));
  });
  return s / lp.length;
}

function numGrad(f: (x: number[]) => number, x: number[], h = 1e-4): number[] {
  return x.map((_, i) => {
    const a = [...x],
      b = [...x];
    a[i]! += h;
    b[i]! -= h;
    return (f(a) - f(b)) / (2 * h);
  });
}
const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

describe('KTO loss', () => {
  const rng = new Rng(11);
  const draw = (n: number, s: number, m = 0) => f32(Array.from({ length: n }, () => m + rng.normal() * s));
  for (const [name, beta, wD, wU, z0] of [
    ['β 0.1, equal weights, z0 0', 0.1, 1, 1, 0],
    ['β 0.5, λ_D 1.33, z0 0.7', 0.5, 1.33, 1, 0.7],
    ['β 2, λ_U 3, z0 3.2', 2, 1, 3, 3.2],
  ] as const) {
    it(`${name}: value and gradient match the float64 formula`, async () => {
      const lp = draw(7, 3, -20),
        ref = draw(7, 3, -20);
      const desirable = [true, false, true, true, false, false, true];
      const t = tensor(Float32Array.from(lp), [7], { backend, requiresGrad: true });
      const l = tidy(() => {
        const l = ktoLoss(t, ref, desirable, z0, { beta, desirableWeight: wD, undesirableWeight: wU });
        backward(l);
        return l;
      });
      const want = ktoRef(lp, ref, desirable, z0, beta, wD, wU);
      expect(Math.abs((await l.item()) - want)).toBeLessThan(1e-6);
      const g = numGrad((x) => ktoRef(x, ref, desirable, z0, beta, wD, wU), lp);
      const got = await t.grad!.data();
      g.forEach((gi, i) => expect(Math.abs(got[i]! - gi), `d/dlp${i}`).toBeLessThan(1e-6));
      // desirable rows are pushed up, undesirable ones down
      desirable.forEach((d, i) => expect(Math.sign(got[i]!)).toBe(d ? -1 : 1));
    });
  }

  it('at the start (policy = reference, z0 = 0) every row loses half its weight', async () => {
    const lp = [-3, -4, -5];
    const l = await tidy(() =>
      ktoLoss(tensor(Float32Array.from(lp), [3], { backend }), lp, [true, false, false], 0, {
        beta: 0.1,
        desirableWeight: 2,
        undesirableWeight: 1,
      }),
    ).item();
    expect(l).toBeCloseTo((2 * 0.5 + 0.5 + 0.5) / 3, 7);
    expect(() => ktoLoss(tensor(Float32Array.from(lp), [3], { backend }), [1], [true], 0, {} as never)).toThrow(
      /3 policy log-probs, 1 reference/,
    );
  });

  it('the KL reference point: the mean log-ratio of the mismatched pairs, clamped at 0', () => {
    expect(klReferencePoint([-10, -12, -7], [-11, -12.5, -9])).toBeCloseTo((1 + 0.5 + 2) / 3, 12);
    expect(klReferencePoint([-10, -12], [-9, -11.5])).toBe(0); // mean −0.75 → 0
    expect(() => klReferencePoint([], [])).toThrow(/need equal, ≥ 1/);
  });

  it("mismatched pairs: TRL's +1 offset in fixed batches; a last batch of one row joins the one before", () => {
    expect(fixedBatches(7, 3, null)).toEqual([
      [0, 1, 2],
      [3, 4, 5, 6],
    ]);
    expect(fixedBatches(8, 4, null)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(() => fixedBatches(8, 1, null)).toThrow(/batchSize/);
    const order = shuffledOrder(10, 5);
    expect([...order].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(shuffledOrder(10, 5)).toEqual(order);
    const rows: KtoRow[] = [0, 1, 2, 3].map((i) => ({
      prompt: [1, 2 + i],
      completion: [10 + i, 20 + i, 30 + i],
      desirable: i % 2 === 0,
      group: i,
      kl: [],
    }));
    assignKlPartners(rows, [[2, 0, 3, 1]], 4);
    // batch order 2, 0, 3, 1: row 2 gets row 1's completion (the batch's last), 0 gets 2's, 3 gets 0's, 1 gets 3's
    expect(rows.map((r) => r.kl)).toEqual([
      [12, 22], // cut to fit maxLength 4 after a 2-token prompt
      [13, 23],
      [11, 21],
      [10, 20],
    ]);
  });
});

// ------------------------------------------------------------------------- on a tiny model

let tmp = '';
let base = '';
let data = '',
  heldOut = '';
const quiet = { log: () => {}, progress: new LineProgress(1000, () => {}), handleSigint: false };

/** Unpaired thumbs: for each prompt one reply, desirable ('.') or undesirable ('!') at random; `both`: each prompt twice. */
function ktoRows(n: number, seed: number, o: { offset?: number; both?: boolean } = {}): Record<string, unknown>[] {
  const rng = new Rng(seed + 100);
  return prefRows(n, seed, o.offset !== undefined ? { offset: o.offset } : {}).flatMap((r) => {
    const good = { prompt: r['prompt'], completion: r['chosen'], label: true };
    const bad = { prompt: r['prompt'], completion: r['rejected'], label: false };
    return o.both ? [good, bad] : [rng.int(2) ? good : bad];
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-kto-'));
  base = path.join(tmp, 'base');
  await makeTinyModel(base);
  data = writeJsonl(path.join(tmp, 'train.jsonl'), ktoRows(160, 1));
  heldOut = writeJsonl(path.join(tmp, 'eval.jsonl'), ktoRows(30, 2, { offset: 1000, both: true }));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cfg = (o: Partial<KtoConfig>) =>
  buildKtoConfig({
    preset: 'tiny',
    overrides: {
      model: base,
      data: [data],
      evalData: heldOut,
      outDir: path.join(tmp, 'runs'),
      backend: 'ref',
      quiet: true,
      maxSteps: 20,
      ...o,
    },
  });
const steps = (dir: string) =>
  readMetrics(path.join(dir, 'metrics.jsonl')).filter((x) => x.type === 'step') as unknown as Record<string, number>[];

async function encodeRows(dir: string, rows: Record<string, unknown>[]): Promise<KtoRow[]> {
  const tok = await loadTokenizer(dir);
  const codec = { encode: (t: string) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId };
  const ds = parseTrlJsonl<'unpaired_preference'>(rows.map((r) => JSON.stringify(r)).join('\n'), 'rows.jsonl');
  return encodeUnpairedSets([ds], chatmlTemplate(), codec, { maxLength: 64, badRows: 'error' }).rows;
}

describe('the KTO objective', () => {
  it('its loss and kl are the formula on log-probs computed apart: z0 from the mismatched pairs, detached', async () => {
    const rows = await encodeRows(base, ktoRows(4, 3, { both: true }));
    assignKlPartners(rows, [[0, 1, 2, 3, 4, 5, 6, 7]], 64);
    const policy = await loadModel(base, { backend });
    const lp = Array.from(
      await noGrad(() =>
        sequenceLogProbs(
          policy,
          rows.map((r) => r.prompt),
          rows.map((r) => r.completion),
        ),
      ).data(),
    );
    const lk = Array.from(
      await noGrad(() =>
        sequenceLogProbs(
          policy,
          rows.map((r) => r.prompt),
          rows.map((r) => r.kl),
        ),
      ).data(),
    );
    // the reference of the real run is the starting model; here a made-up one, so that r ≠ 0 and z0 > 0
    const ref = {
      completion: Float64Array.from(lp, (x, i) => x - 0.5 + 0.3 * i),
      kl: Float64Array.from(lk, (x, i) => x - 1 - 0.1 * i),
    };
    const ids = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const o = { beta: 0.7, desirableWeight: 1.2, undesirableWeight: 0.8 };
    const obj = new KtoObjective(policy, rows, ref, o);
    const loss = await noGrad(() => resolveLossSync(obj.loss(ids, new Int32Array(8), 8, 1))).item();
    const z0 = Math.max(0, lk.reduce((a, x, i) => a + x - ref.kl[i]!, 0) / 8);
    expect(z0).toBeGreaterThan(1);
    const want = ktoRef(
      lp,
      Array.from(ref.completion),
      rows.map((r) => r.desirable),
      z0,
      0.7,
      1.2,
      0.8,
    );
    expect(Math.abs(loss - want)).toBeLessThan(1e-5);
    const st = obj.takeStats('eval');
    expect(st.kl).toBeCloseTo(z0, 5);
    expect(st.nChosen).toBe(4);
    // with the real reference (the starting model), every mismatched log-ratio is 0: z0 = 0, r = 0, loss = mean(w)/2
    const real = await ktoReferenceLogps(policy, rows);
    expect(Array.from(real.completion)).toEqual(lp);
    const l0 = await noGrad(() =>
      resolveLossSync(new KtoObjective(policy, rows, real, o).loss(ids, new Int32Array(8), 8, 1)),
    ).item();
    expect(l0).toBeCloseTo((4 * 1.2 + 4 * 0.8) / 2 / 8, 6);
  });
});

describe('llmts kto', () => {
  it('learns from thumbs: held-out desirable replies gain log-probability, undesirable ones lose it', async () => {
    const r = await kto({ ...quiet, config: cfg({ name: 'learn', lr: 3e-3 }) });
    expect(r.reason).toBe('done');
    expect(r.data).toMatchObject({ trainPairs: 160, evalPairs: 60, trainPrompts: 160, evalPrompts: 30 });
    expect(r.losses.get(0)).toBeCloseTo(0.5, 5); // step 0: policy = reference, z0 = 0: each row 1 − σ(0)
    expect(Math.abs(steps(r.runDir)[0]!['kl']!)).toBeLessThan(1e-4); // …and the mismatched pairs' log-ratio is 0
    const rows = await encodeRows(r.checkpointDir, ktoRows(30, 2, { offset: 1000, both: true }));
    const logps = async (dir: string) =>
      noGrad(() =>
        sequenceLogProbs(
          models.get(dir)!,
          rows.map((x) => x.prompt),
          rows.map((x) => x.completion),
        ),
      ).data();
    const models = new Map([
      [base, await loadModel(base, { backend })],
      [r.checkpointDir, await loadModel(r.checkpointDir, { backend })],
    ]);
    const before = await logps(base),
      after = await logps(r.checkpointDir);
    const mean = (want: boolean) => {
      const d = rows.flatMap((x, i) => (x.desirable === want ? [after[i]! - before[i]!] : []));
      return d.reduce((a, b) => a + b, 0) / d.length;
    };
    const up = mean(true),
      down = mean(false);
    expect(up).toBeGreaterThan(0);
    expect(down).toBeLessThan(0);
    // per prompt, the desirable reply now wins against the undesirable one relative to the start
    let wins = 0;
    for (let i = 0; i < rows.length; i += 2) if (after[i]! - before[i]! > after[i + 1]! - before[i + 1]!) wins++;
    expect(wins / 30).toBeGreaterThan(0.9);
    const ev = r.finalEval!;
    expect(ev['eval_rewards/chosen']).toBeCloseTo(0.1 * up, 4); // the trainer's measure is the same one
    expect(ev['eval_rewards/rejected']).toBeCloseTo(0.1 * down, 4);
    expect(ev['eval_rewards/margins']).toBeGreaterThan(0);
    expect(ev['eval_kl']).toBeGreaterThanOrEqual(0);
    for (const s of steps(r.runDir))
      for (const k of [
        'loss',
        'learning_rate',
        'grad_norm',
        'epoch',
        'num_tokens',
        'rewards/chosen',
        'rewards/rejected',
        'rewards/margins',
        'logps/chosen',
        'logps/rejected',
        'kl',
        'count/chosen',
        'count/rejected',
      ])
        expect(typeof s[k], k).toBe('number');
    // the reference log-probs kept in the checkpoint are the starting model's
    const saved = JSON.parse(fs.readFileSync(path.join(r.checkpointDir, REFERENCE_LOGPS), 'utf8'));
    expect(saved.completion.slice(160)).toEqual(Array.from(before));
    expect(saved.kl).toHaveLength(220);
  }, 180_000);

  it('an interrupted and resumed run takes bit-for-bit the steps of an uninterrupted one', async () => {
    const full = await kto({ ...quiet, config: cfg({ name: 'full', maxSteps: 8, lr: 3e-3 }) });
    const part = await kto({ ...quiet, config: cfg({ name: 'part', maxSteps: 8, lr: 3e-3 }), haltAfterStep: 3 });
    expect(part.reason).toBe('interrupted');
    const rest = await kto({ ...quiet, resume: part.runDir });
    expect(rest.steps).toBe(8);
    for (let s = 3; s < 8; s++) expect(rest.losses.get(s), `step ${s}`).toBe(full.losses.get(s));
    const a = await loadModel(full.checkpointDir, { backend }),
      b = await loadModel(rest.checkpointDir, { backend });
    for (const [name, p] of a.params) expect(await b.params.get(name)!.data(), name).toEqual(await p.data());
    const ms = (d: string) => steps(d).map((x) => [x['step'], x['loss'], x['kl'], x['rewards/margins']]);
    expect(ms(rest.runDir)).toEqual(ms(full.runDir));
    // a KTO checkpoint without its reference file cannot resume
    fs.rmSync(path.join(part.checkpointDir, REFERENCE_LOGPS));
    await expect(kto({ ...quiet, resume: part.runDir })).rejects.toThrow(/not written by llmts kto/);
  }, 180_000);

  it('bad input: a bad label names file, line and field; batchSize 1 is refused; preference rows are unpaired', async () => {
    const bad = writeJsonl(path.join(tmp, 'bad.jsonl'), [
      ...ktoRows(3, 1),
      { prompt: [{ role: 'user', content: 'x' }], completion: [{ role: 'assistant', content: 'y' }], label: 'yes' },
    ]);
    await expect(kto({ ...quiet, config: cfg({ name: 'bad', data: [bad] }) })).rejects.toThrow(TrlRowError);
    await expect(kto({ ...quiet, config: cfg({ name: 'bad2', data: [bad] }) })).rejects.toThrow(
      /bad\.jsonl.*line 4.*label/,
    );
    expect(() => cfg({ batchSize: 1 })).toThrow(/batchSize.*≥ 2/);
    const pairs = writeJsonl(path.join(tmp, 'pairs.jsonl'), prefRows(20, 4));
    const logs: string[] = [];
    const r = await kto({
      ...quiet,
      log: (s) => logs.push(s),
      config: cfg({ name: 'pairs', data: [pairs], maxSteps: 1 }),
    });
    expect(r.data.trainPairs).toBe(40);
    expect(logs.join('\n')).toMatch(
      /preference \(conversational\) rows → 40 training rows \(20 desirable, 20 undesirable/,
    );
  }, 120_000);
});

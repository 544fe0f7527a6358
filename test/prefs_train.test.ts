/**
 * `llmts reward` and `llmts dpo` end to end on a tiny model folder (test/sft_helpers.ts) and a synthetic preference
 * set whose preferred reply ends with '.' and the other with '!' (test/prefs_helpers.ts): held-out accuracy rises
 * well above 50 %, measured again here on the saved checkpoints; a shuffled-label control stays near 50 %; the
 * reward checkpoint is a *ForSequenceClassification folder; DPO's first step sees policy = reference (loss ln 2),
 * its reference log-probs are the starting model's, and an interrupted, resumed DPO run takes bit-for-bit the steps
 * of an uninterrupted one. Ranking rows put all their pairs in one batch; bad rows are named errors.
 */
import fs from 'node:fs';
import { resolveLossSync } from '../src/train/staged_loss.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpo, REFERENCE_LOGPS } from '../src/align/dpo.js';
import { DpoObjective, referenceLogps } from '../src/align/dpo_objective.js';
import { buildDpoConfig, type DpoConfig } from '../src/align/dpo_settings.js';
import { PrefBatcher } from '../src/align/pref_batches.js';
import { encodePreferenceRow, encodePreferenceSets, type PrefPair } from '../src/align/pref_data.js';
import { trainRewardModel } from '../src/align/reward.js';
import { RewardObjective } from '../src/align/reward_objective.js';
import { buildRewardConfig, type RewardConfig } from '../src/align/reward_settings.js';
import { getBackend } from '../src/backend/registry.js';
import { chatmlTemplate } from '../src/chat/template.js';
import { parseTrlJsonl, TrlRowError, type PreferenceRow } from '../src/data/trl.js';
import { loadModel, loadRewardModel } from '../src/model/hf/folder.js';
import { sequenceLogProbs } from '../src/model/losses.js';
import { RewardModel } from '../src/model/reward.js';
import { Rng } from '../src/util/rng.js';
import { noGrad } from '../src/tensor/tensor.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { LineProgress } from '../src/train/progress.js';
import { prefRows } from './prefs_helpers.js';
import { makeTinyModel, writeJsonl } from './sft_helpers.js';

let tmp = '';
let base = '';
let data = '',
  heldOut = '',
  shuffled = '',
  shuffledHeldOut = '';
const quiet = { log: () => {}, progress: new LineProgress(1000, () => {}), handleSigint: false };
const backend = getBackend('ref');

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-prefs-'));
  base = path.join(tmp, 'base');
  await makeTinyModel(base);
  data = writeJsonl(path.join(tmp, 'train.jsonl'), prefRows(120, 1));
  heldOut = writeJsonl(path.join(tmp, 'eval.jsonl'), prefRows(60, 2, { offset: 1000 }));
  shuffled = writeJsonl(path.join(tmp, 'train-shuffled.jsonl'), prefRows(120, 1, { shuffled: true }));
  shuffledHeldOut = writeJsonl(
    path.join(tmp, 'eval-shuffled.jsonl'),
    prefRows(60, 2, { offset: 1000, shuffled: true }),
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const common = () => ({
  model: base,
  data: [data],
  evalData: heldOut,
  outDir: path.join(tmp, 'runs'),
  backend: 'ref' as const,
  quiet: true,
});
const rmCfg = (o: Partial<RewardConfig>) =>
  buildRewardConfig({ preset: 'tiny', overrides: { ...common(), maxSteps: 40, ...o } });
const dpoCfg = (o: Partial<DpoConfig>) =>
  buildDpoConfig({ preset: 'tiny', overrides: { ...common(), maxSteps: 40, ...o } });

/** The held-out pairs in ids, encoded here (ChatML, as the tiny model has no template). */
async function heldOutPairs(dir: string, rows = prefRows(60, 2, { offset: 1000 })): Promise<PrefPair[]> {
  const tok = await loadTokenizer(dir);
  const codec = { encode: (t: string) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId };
  return rows.map((r) => encodePreferenceRow(r as unknown as PreferenceRow, chatmlTemplate(), codec));
}

/** Fraction of pairs whose chosen reply has the higher score. */
function accuracy(c: ArrayLike<number>, r: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < c.length; i++) if (c[i]! > r[i]!) n++;
  return n / c.length;
}

const steps = (dir: string) =>
  readMetrics(path.join(dir, 'metrics.jsonl')).filter((x) => x.type === 'step') as unknown as Record<string, number>[];
const evals = (dir: string) =>
  readMetrics(path.join(dir, 'metrics.jsonl')).filter((x) => x.type === 'eval') as unknown as Record<string, number>[];

describe('llmts reward', () => {
  it('learns the preference: held-out accuracy well above 50 %, measured again on the saved *ForSequenceClassification folder', async () => {
    const r = await trainRewardModel({ ...quiet, config: rmCfg({ name: 'learn' }) });
    expect(r.reason).toBe('done');
    expect(r.data).toMatchObject({ trainPairs: 120, evalPairs: 60, trainPrompts: 120, evalPrompts: 60 });
    const cfg = JSON.parse(fs.readFileSync(path.join(r.checkpointDir, 'config.json'), 'utf8'));
    expect(cfg.architectures[0]).toMatch(/ForSequenceClassification$/);
    const rm = await loadRewardModel(r.checkpointDir, { backend });
    const pairs = await heldOutPairs(r.checkpointDir);
    const rc = await noGrad(() => rm.rewards(pairs.map((p) => [...p.prompt, ...p.chosen]))).data();
    const rr = await noGrad(() => rm.rewards(pairs.map((p) => [...p.prompt, ...p.rejected]))).data();
    const acc = accuracy(rc, rr);
    expect(acc).toBeGreaterThan(0.9);
    const ev = r.finalEval!;
    expect(ev['eval_accuracy']).toBeCloseTo(acc, 10); // the trainer's metric is the same measure
    expect(ev['eval_rewards/margins']).toBeGreaterThan(0);
    expect(Math.abs(ev['eval_reward_length_correlation']!)).toBeLessThan(0.5); // the '.' preference is not about length
    for (const s of steps(r.runDir)) {
      for (const k of [
        'loss',
        'learning_rate',
        'grad_norm',
        'epoch',
        'num_tokens',
        'accuracy',
        'rewards/chosen',
        'rewards/rejected',
        'rewards/margins',
      ])
        expect(typeof s[k], k).toBe('number');
    }
  }, 120_000);

  it('shuffled labels (a control): held-out accuracy stays near 50 %', async () => {
    const r = await trainRewardModel({
      ...quiet,
      config: rmCfg({ name: 'shuffled', data: [shuffled], evalData: shuffledHeldOut }),
    });
    const acc = r.finalEval!['eval_accuracy']!;
    expect(acc).toBeGreaterThan(0.3);
    expect(acc).toBeLessThan(0.7);
  }, 120_000);

  it('reward vs length: a reward model trained to prefer longer replies shows it on the held-out replies', async () => {
    const long = writeJsonl(path.join(tmp, 'train-long.jsonl'), prefRows(120, 1, { longer: true }));
    const longEval = writeJsonl(path.join(tmp, 'eval-long.jsonl'), prefRows(60, 2, { offset: 1000, longer: true }));
    const r = await trainRewardModel({ ...quiet, config: rmCfg({ name: 'long', data: [long], evalData: longEval }) });
    expect(r.finalEval!['eval_reward_length_correlation']).toBeGreaterThan(0.6);
  }, 120_000);

  it('margins are read from the rows; ranking rows keep all their pairs in one batch', async () => {
    const tok = await loadTokenizer(base);
    const codec = { encode: (t: string) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId };
    const ranking = parseTrlJsonl<'ranking'>(
      ['a', 'b', 'c', 'd']
        .map((p) =>
          JSON.stringify({
            prompt: `color ${p}`,
            completions: [' I like red.', ' I like red!', ' red'],
            ranking: [0, 2, 1],
          }),
        )
        .join('\n'),
      'rank.jsonl',
    );
    const set = encodePreferenceSets([ranking], chatmlTemplate(), codec, { maxLength: 64, badRows: 'error' });
    expect(set.groups).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
      [9, 10, 11],
    ]);
    const b = new PrefBatcher(set.pairs, set.groups, 1, 3);
    for (let i = 0; i < 4; i++) {
      const ids = Array.from(b.next().ids);
      expect(ids.length).toBe(3);
      expect(new Set(ids.map((k) => set.pairs[k]!.group)).size).toBe(1);
    }
    const pref = parseTrlJsonl<'preference'>(
      JSON.stringify({ prompt: 'x', chosen: ' a.', rejected: ' a!', margin: 1.5 }),
      'm.jsonl',
    );
    expect(
      encodePreferenceSets([pref], chatmlTemplate(), codec, { maxLength: 64, badRows: 'error' }).pairs[0]!.margin,
    ).toBe(1.5);
    const p0 = set.pairs[0]!;
    const limit = p0.prompt.length + Math.max(p0.chosen.length, p0.rejected.length) - 1; // pair 0 no longer fits
    const short = encodePreferenceSets([ranking], chatmlTemplate(), codec, { maxLength: limit, badRows: 'error' });
    const fits = set.pairs.filter(
      (p) => p.prompt.length + Math.max(p.chosen.length, p.rejected.length) <= limit,
    ).length;
    expect(fits).toBeGreaterThan(0);
    expect(fits).toBeLessThan(set.pairs.length);
    expect(short.dropped).toBe(set.pairs.length - fits);
    expect(short.pairs.length).toBe(fits);
  });

  it('the objectives: margins and centring reach the reward loss; IPO uses per-token means of policy and reference', async () => {
    const rows = prefRows(3, 9);
    rows[1]!['margin'] = 2;
    rows[2]!['margin'] = -0.5;
    const pairs = (await heldOutPairs(base, rows)).map((p, i) => ({ ...p, group: i, margin: [0, 2, -0.5][i]! }));
    const lm = await loadModel(base, { backend });
    const rm = RewardModel.fromCausalLM(lm, new Rng(4));
    const ids = Int32Array.from([0, 1, 2]);
    const got = await noGrad(() =>
      resolveLossSync(new RewardObjective(rm, pairs, 0.3).loss(ids, new Int32Array(3), 3, 1)),
    ).item();
    const rc = await noGrad(() => rm.rewards(pairs.map((p) => [...p.prompt, ...p.chosen]))).data();
    const rr = await noGrad(() => rm.rewards(pairs.map((p) => [...p.prompt, ...p.rejected]))).data();
    const ls = (z: number) => -Math.log1p(Math.exp(-z));
    const want = [0, 1, 2].reduce(
      (a, i) => a - ls(rc[i]! - rr[i]! - pairs[i]!.margin) / 3 + (0.3 * (rc[i]! + rr[i]!) ** 2) / 3,
      0,
    );
    expect(Math.abs(got - want)).toBeLessThan(1e-5);

    const policy = await loadModel(base, { backend });
    const ref = { chosen: [-20, -21, -22], rejected: [-25, -19, -30] };
    const ipo = await noGrad(() =>
      resolveLossSync(
        new DpoObjective(policy, pairs, ref, { beta: 0.5, lossType: 'ipo', labelSmoothing: 0 }).loss(
          ids,
          new Int32Array(3),
          3,
          1,
        ),
      ),
    ).item();
    const lp = await noGrad(() =>
      sequenceLogProbs(
        policy,
        [...pairs.map((p) => p.prompt), ...pairs.map((p) => p.prompt)],
        [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)],
      ),
    ).data();
    const wantIpo = [0, 1, 2].reduce((a, i) => {
      const nc = pairs[i]!.chosen.length,
        nr = pairs[i]!.rejected.length;
      const x = (lp[i]! - ref.chosen[i]!) / nc - (lp[3 + i]! - ref.rejected[i]!) / nr;
      return a + (x - 1 / (2 * 0.5)) ** 2 / 3;
    }, 0);
    expect(Math.abs(ipo - wantIpo)).toBeLessThan(1e-5);
  });

  it('bad input: a bad row names file and line; an SFT file is not preference data', async () => {
    const bad = writeJsonl(path.join(tmp, 'bad.jsonl'), [
      ...prefRows(3, 1),
      { prompt: [{ role: 'user', content: 'x' }], chosen: [{ role: 'assistant', content: 'y' }] },
    ]);
    await expect(trainRewardModel({ ...quiet, config: rmCfg({ name: 'bad', data: [bad] }) })).rejects.toThrow(
      TrlRowError,
    );
    await expect(trainRewardModel({ ...quiet, config: rmCfg({ name: 'bad2', data: [bad] }) })).rejects.toThrow(
      /bad\.jsonl.*line 4.*rejected/,
    );
    const sftFile = writeJsonl(path.join(tmp, 'sft.jsonl'), [
      {
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      },
    ]);
    await expect(trainRewardModel({ ...quiet, config: rmCfg({ name: 'bad3', data: [sftFile] }) })).rejects.toThrow(
      /needs preference or ranking rows/,
    );
  });
});

describe('llmts dpo', () => {
  it('learns the preference: held-out rewards/accuracies well above 50 %; the reference is the starting model', async () => {
    const r = await dpo({ ...quiet, config: dpoCfg({ name: 'dpo-learn', lr: 3e-3 }) });
    expect(r.reason).toBe('done');
    expect(r.losses.get(0)).toBeCloseTo(Math.LN2, 5); // step 0: policy = reference, so β·x = 0
    const ev = r.finalEval!;
    expect(ev['eval_rewards/accuracies']).toBeGreaterThan(0.9);
    // measured here on the folders: the policy's log-ratio chosen vs rejected moved towards the chosen replies
    const pairs = await heldOutPairs(r.checkpointDir);
    const margins = async (dir: string) => {
      const m = await loadModel(dir, { backend });
      const lp = await noGrad(() =>
        sequenceLogProbs(
          m,
          [...pairs.map((p) => p.prompt), ...pairs.map((p) => p.prompt)],
          [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)],
        ),
      ).data();
      return pairs.map((_, i) => lp[i]! - lp[pairs.length + i]!);
    };
    const before = await margins(base),
      after = await margins(r.checkpointDir);
    const implicit = after.map((a, i) => 0.1 * (a - before[i]!)); // β·((πc − πr) − (refc − refr))
    expect(
      accuracy(
        implicit,
        implicit.map(() => 0),
      ),
    ).toBeCloseTo(ev['eval_rewards/accuracies']!, 10);
    // the reference log-probs the run kept are the starting model's
    const saved = JSON.parse(fs.readFileSync(path.join(r.checkpointDir, REFERENCE_LOGPS), 'utf8'));
    const ref = await referenceLogps(await loadModel(base, { backend }), pairs);
    expect(saved.chosen.slice(120)).toEqual(Array.from(ref.chosen));
    expect(saved.rejected.slice(120)).toEqual(Array.from(ref.rejected));
    for (const s of steps(r.runDir)) {
      for (const k of [
        'loss',
        'learning_rate',
        'grad_norm',
        'epoch',
        'num_tokens',
        'rewards/chosen',
        'rewards/rejected',
        'rewards/accuracies',
        'rewards/margins',
        'logps/chosen',
        'logps/rejected',
      ])
        expect(typeof s[k], k).toBe('number');
    }
    for (const k of [
      'eval_loss',
      'eval_rewards/chosen',
      'eval_rewards/rejected',
      'eval_rewards/margins',
      'eval_logps/chosen',
      'eval_logps/rejected',
    ])
      expect(typeof evals(r.runDir)[0]![k], k).toBe('number');
  }, 120_000);

  it('shuffled labels (a control): held-out rewards/accuracies stay near 50 %', async () => {
    const r = await dpo({
      ...quiet,
      config: dpoCfg({ name: 'dpo-shuffled', lr: 3e-3, data: [shuffled], evalData: shuffledHeldOut }),
    });
    const acc = r.finalEval!['eval_rewards/accuracies']!;
    expect(acc).toBeGreaterThan(0.3);
    expect(acc).toBeLessThan(0.7);
  }, 120_000);

  for (const lossType of ['ipo', 'hinge', 'robust'] as const) {
    it(`${lossType}: trains and learns the preference`, async () => {
      const r = await dpo({
        ...quiet,
        config: dpoCfg({
          name: `loss-${lossType}`,
          lossType,
          lr: 3e-3,
          ...(lossType === 'robust' ? { labelSmoothing: 0.1 } : {}),
          ...(lossType === 'ipo' ? { beta: 0.5 } : {}),
        }),
      });
      expect(r.finalEval!['eval_rewards/accuracies']).toBeGreaterThan(0.8);
    }, 120_000);
  }

  it('an interrupted and resumed run takes bit-for-bit the steps of an uninterrupted one', async () => {
    const full = await dpo({ ...quiet, config: dpoCfg({ name: 'full', maxSteps: 12, lr: 3e-3 }) });
    const part = await dpo({ ...quiet, config: dpoCfg({ name: 'part', maxSteps: 12, lr: 3e-3 }), haltAfterStep: 5 });
    expect(part.reason).toBe('interrupted');
    expect(part.steps).toBe(5);
    const rest = await dpo({ ...quiet, resume: part.runDir });
    expect(rest.steps).toBe(12);
    for (let s = 5; s < 12; s++) expect(rest.losses.get(s), `step ${s}`).toBe(full.losses.get(s));
    const a = await loadModel(full.checkpointDir, { backend }),
      b = await loadModel(rest.checkpointDir, { backend });
    for (const [name, p] of a.params) expect(await b.params.get(name)!.data(), name).toEqual(await p.data());
    const ms = (d: string) => steps(d).map((x) => [x['step'], x['loss'], x['rewards/margins']]);
    expect(ms(rest.runDir)).toEqual(ms(full.runDir));
    // a reward run cannot be resumed as DPO
    const rm = await trainRewardModel({ ...quiet, config: rmCfg({ name: 'short', maxSteps: 1 }) });
    await expect(dpo({ ...quiet, resume: rm.runDir })).rejects.toThrow(/not a 'dpo' run \(an 'reward' run\)/);
  }, 120_000);

  it('referenceFrom: another run’s reference log-probabilities give the same steps bit for bit; other data or another model is refused', async () => {
    const a = await dpo({ ...quiet, config: dpoCfg({ name: 'ref-a', maxSteps: 4, lr: 3e-3 }) });
    // β 0.5 with a's reference, and computed afresh: the same losses, the same reference file
    const b = await dpo({
      ...quiet,
      config: dpoCfg({ name: 'ref-b', maxSteps: 4, lr: 3e-3, beta: 0.5, referenceFrom: a.checkpointDir }),
    });
    const c = await dpo({ ...quiet, config: dpoCfg({ name: 'ref-c', maxSteps: 4, lr: 3e-3, beta: 0.5 }) });
    expect(b.losses.size).toBe(4);
    for (let s = 0; s < 4; s++) expect(b.losses.get(s), `step ${s}`).toBe(c.losses.get(s));
    expect(b.losses.get(3)).not.toBe(a.losses.get(3)); // β mattered (at step 0 the loss is ln 2 for any β)
    const refFile = (r: { checkpointDir: string }) =>
      fs.readFileSync(path.join(r.checkpointDir, REFERENCE_LOGPS), 'utf8');
    expect(refFile(b)).toBe(refFile(c));
    const refuse = (o: Partial<DpoConfig>) =>
      dpo({ ...quiet, config: dpoCfg({ name: 'ref-bad', maxSteps: 1, referenceFrom: a.checkpointDir, ...o }) });
    await expect(refuse({ data: [shuffled] })).rejects.toThrow(/referenceFrom.*other data/);
    await expect(refuse({ model: a.checkpointDir })).rejects.toThrow(/referenceFrom.*its reference is/);
  }, 120_000);
});

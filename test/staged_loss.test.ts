/**
 * Staged losses (src/train/staged_loss.ts): the trainers that decide on the host inside a step — PPO's and RLOO's
 * clipping, KTO's reference point, DPO's hinge mask, the reward model's, DPO's and SFT's metrics (SFT's token
 * accuracy from argmaxes taken on the device) — run on a backend that cannot read synchronously, and take exactly the
 * steps they take on ref, with the same metrics.
 *
 * The backend is test/async_backend.ts's with `allKernels` ('async-all' here): no `readSync`, reads only through
 * `await`, every kernel ref's own code (so the comparison is bit for bit: a GPU's differences are rounding, this
 * test is about the host's decisions and the loop). The settings accept only the shipped backend names, so
 * `initBackend` is wrapped to hand out 'async-all' for 'ref' while `onAsync` is set. Before staging, PPO and RLOO
 * refused such a backend, KTO's objective threw, DPO's hinge threw at its read, and SFT, DPO and the reward model
 * reported no accuracy or rewards there.
 *
 * Also the pieces: a Scope keeps the tape across runs and frees what it did not return; resolveLossSync names the
 * backend it cannot read; a loss may stage twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dpo } from '../src/align/dpo.js';
import { buildDpoConfig } from '../src/align/dpo_settings.js';
import { grpo } from '../src/align/grpo.js';
import { buildGrpoConfig } from '../src/align/grpo_settings.js';
import { kto } from '../src/align/kto.js';
import { buildKtoConfig } from '../src/align/kto_settings.js';
import { ppo } from '../src/align/ppo.js';
import { buildPpoConfig } from '../src/align/ppo_settings.js';
import { trainRewardModel } from '../src/align/reward.js';
import { buildRewardConfig } from '../src/align/reward_settings.js';
import { rloo } from '../src/align/rloo.js';
import { buildRlooConfig } from '../src/align/rloo_settings.js';
import { sft } from '../src/align/sft.js';
import { buildSftConfig } from '../src/align/sft_settings.js';
import { getBackend, registerBackend } from '../src/backend/registry.js';
import { backward } from '../src/tensor/autograd.js';
import * as O from '../src/tensor/ops.js';
import { Scope, tensor } from '../src/tensor/tensor.js';
import { readMetrics } from '../src/train/metrics.js';
import { resolveLoss, resolveLossSync, staged } from '../src/train/staged_loss.js';
import { AsyncTestBackend } from './async_backend.js';
import { quiet } from './ppo_helpers.js';
import { makeTrainerFixtures, type TrainerFixtures } from './trainer_fixtures.js';

const swap = vi.hoisted(() => ({ onAsync: false, calls: 0 }));
vi.mock('../src/backend/registry.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/backend/registry.js')>();
  return {
    ...m,
    initBackend: (name: string, opts?: Record<string, unknown>) => {
      if (swap.onAsync && name === 'ref') {
        swap.calls++;
        return m.initBackend('async-all', opts);
      }
      return m.initBackend(name, opts);
    },
  };
});

const ref = getBackend('ref');
registerBackend({ name: 'async-all', create: async () => new AsyncTestBackend({ allKernels: true }) });

describe('the pieces', () => {
  it('a Scope keeps the tape across its runs (a read between them) and frees what close does not return', async () => {
    const x = tensor(Float32Array.from([1, -2, 3]), [3], { backend: ref, requiresGrad: true });
    const scope = new Scope();
    const y = scope.run(() => O.mul(x, x)); // (3,) on the tape
    const v = await y.data();
    const l = scope.run(() =>
      O.sum(
        O.mul(
          y,
          tensor(
            Float32Array.from(v, (a) => (a > 2 ? 1 : 0)),
            [3],
            { backend: ref },
          ),
        ),
      ),
    );
    scope.run(() => backward(l));
    expect(Array.from(await x.grad!.data())).toEqual([0, -4, 6]); // d/dx Σ x²·[x² > 2]
    scope.close(l);
    expect(() => y.dataSync()).toThrow(/freed|disposed/);
    expect(await l.item()).toBe(13);
    expect(() => scope.run(() => 0)).toThrow(/after close/);
    l.dispose();
    x.grad!.dispose();
  });

  it('resolveLossSync reads on ref and names a backend that cannot read synchronously; a loss may stage twice', async () => {
    const a = tensor(Float32Array.from([2, 5]), [2], { backend: ref });
    const seen: number[][] = [];
    const r = staged([a], ([v]) => {
      seen.push(Array.from(v!));
      const l = O.sum(a);
      return staged([l], ([s]) => O.scale(l, s![0]!));
    });
    expect(await resolveLossSync(r).item()).toBe(49);
    expect(seen).toEqual([[2, 5]]);
    const be = new AsyncTestBackend();
    const b = tensor(Float32Array.from([2, 5]), [2], { backend: be });
    expect(() => resolveLossSync(staged([b], () => b))).toThrow(/async-test cannot read synchronously.*resolveLoss/);
    const scope = new Scope();
    const got = await resolveLoss(
      staged([b], ([v]) => O.scale(O.sum(b), v![1]!)),
      scope,
    );
    expect(await scope.close(got).item()).toBe(35);
  });
});

// ------------------------------------------------------------------------- every trainer, on ref and without readSync

let f: TrainerFixtures;
beforeAll(async () => {
  f = await makeTrainerFixtures('staged', 24);
}, 60000);
afterAll(() => fs.rmSync(f.tmp, { recursive: true, force: true }));

/** The run's metrics without the clock's fields. */
const records = (dir: string) =>
  readMetrics(path.join(dir, 'metrics.jsonl')).map((x) => ({ ...x, tokensPerSec: 0, mfu: 0, elapsed: 0, seconds: 0 }));

/** Run `go` on ref, then on async-test; the same losses and records, bit for bit. */
async function both(
  name: string,
  go: (run: string) => Promise<{ losses: Map<number, number>; runDir: string }>,
): Promise<Record<string, unknown>[]> {
  const a = await go(`${name}-ref`);
  swap.onAsync = true;
  const before = swap.calls;
  let b: Awaited<ReturnType<typeof go>>;
  try {
    b = await go(`${name}-async`);
  } finally {
    swap.onAsync = false;
  }
  expect(swap.calls).toBeGreaterThan(before); // it did run on async-test
  expect(a.losses.size).toBeGreaterThan(1);
  expect([...b.losses]).toEqual([...a.losses]);
  const ra = records(a.runDir);
  expect(records(b.runDir)).toEqual(ra);
  return ra;
}

const common = () => ({ outDir: path.join(f.tmp, 'runs'), backend: 'ref' as const, quiet: true });
const metric = (rs: Record<string, unknown>[], key: string) =>
  rs.filter((r) => r['type'] === 'step' && typeof r[key] === 'number').map((r) => r[key] as number);

describe('trainers that read back inside a step, on a backend without readSync', () => {
  it("SFT: mean_token_accuracy from each row's argmax taken on the device, as the host counts it", async () => {
    const rs = await both('sft', (name) =>
      sft({
        ...quiet,
        config: buildSftConfig({
          preset: 'tiny',
          overrides: { ...common(), name, model: f.base, data: [f.chats], maxSteps: 6, evalInterval: 3 },
        }),
      }),
    );
    const acc = metric(rs, 'mean_token_accuracy');
    expect(acc.length).toBe(6);
    expect(new Set(acc).size).toBeGreaterThan(1);
    expect(rs.some((r) => typeof r['eval_mean_token_accuracy'] === 'number')).toBe(true);
  }, 60000);

  it('PPO: the same clipping decisions, losses and TRL metrics as on ref', async () => {
    const rs = await both('ppo', (name) =>
      ppo({
        ...quiet,
        config: buildPpoConfig({
          preset: 'tiny',
          overrides: { ...common(), name, model: f.sftDir, rewardModel: f.rmDir, data: [f.prompts], totalEpisodes: 16 },
        }),
      }),
    );
    expect(metric(rs, 'policy/clipfrac_avg').length).toBeGreaterThan(0);
  }, 60000);

  it('RLOO: the same', async () => {
    await both('rloo', (name) =>
      rloo({
        ...quiet,
        config: buildRlooConfig({
          preset: 'tiny',
          overrides: { ...common(), name, model: f.sftDir, rewardModel: f.rmDir, data: [f.prompts], totalEpisodes: 16 },
        }),
      }),
    );
  }, 60000);

  it('GRPO (β > 0): the same', async () => {
    const rs = await both('grpo', (name) =>
      grpo({
        ...quiet,
        config: buildGrpoConfig({
          preset: 'tiny',
          overrides: {
            ...common(),
            name,
            model: f.sftDir,
            rewardModel: f.rmDir,
            data: [f.prompts],
            totalEpisodes: 16,
            beta: 0.04,
          },
        }),
      }),
    );
    expect(metric(rs, 'clip_ratio/region_mean').length).toBeGreaterThan(0);
  }, 60000);

  it('KTO: the same reference point z0 (read back each step), losses and metrics', async () => {
    const rs = await both('kto', (name) =>
      kto({
        ...quiet,
        config: buildKtoConfig({
          preset: 'tiny',
          overrides: { ...common(), name, model: f.base, data: [f.thumbs], maxSteps: 4 },
        }),
      }),
    );
    expect(metric(rs, 'kl').length).toBeGreaterThan(0);
  }, 60000);

  it("DPO's hinge (its mask read back) and the reward model's metrics", async () => {
    const rs = await both('dpo', (name) =>
      dpo({
        ...quiet,
        config: buildDpoConfig({
          preset: 'tiny',
          overrides: {
            ...common(),
            name,
            model: f.base,
            data: [f.pairs],
            evalData: f.pairsEval,
            maxSteps: 4,
            lossType: 'hinge',
            beta: 2,
          },
        }),
      }),
    );
    expect(metric(rs, 'rewards/accuracies').length).toBeGreaterThan(0);
    const rm = await both('rm', (name) =>
      trainRewardModel({
        ...quiet,
        config: buildRewardConfig({
          preset: 'tiny',
          overrides: { ...common(), name, model: f.base, data: [f.pairs], evalData: f.pairsEval, maxSteps: 4 },
        }),
      }),
    );
    expect(metric(rm, 'accuracy').length).toBeGreaterThan(0);
  }, 60000);
});

/**
 * The trainers that decide on the host inside a step — PPO, RLOO and GRPO (clipping, on rollouts sampled on the device),
 * KTO (its reference point z0), DPO's hinge, SFT's token accuracy (argmaxes on the device) — run with `--backend webgpu` through their commands' functions, and take the
 * steps they take on ref: the same losses to float32 rounding (relative 1e-4; measured ≤ 1e-6), the same clip
 * fractions. Until staged losses (src/train/staged_loss.ts) PPO and RLOO refused webgpu by name and KTO's objective
 * threw. Skipped where Node finds no WebGPU adapter (SwiftShader here: slow, so the runs are a few steps).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpo } from '../src/align/dpo.js';
import { buildDpoConfig } from '../src/align/dpo_settings.js';
import { grpo } from '../src/align/grpo.js';
import { buildGrpoConfig } from '../src/align/grpo_settings.js';
import { kto } from '../src/align/kto.js';
import { buildKtoConfig } from '../src/align/kto_settings.js';
import { ppo } from '../src/align/ppo.js';
import { buildPpoConfig } from '../src/align/ppo_settings.js';
import { rloo } from '../src/align/rloo.js';
import { buildRlooConfig } from '../src/align/rloo_settings.js';
import { sft } from '../src/align/sft.js';
import { buildSftConfig } from '../src/align/sft_settings.js';
import { readMetrics } from '../src/train/metrics.js';
import { quiet } from './ppo_helpers.js';
import { makeTrainerFixtures, type TrainerFixtures } from './trainer_fixtures.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpu = webgpuMaker('webgpu RLHF trainers');
const have = (await gpu.make()) !== null;
const itGpu = have ? it : it.skip;

let f: TrainerFixtures | null = null;
beforeAll(async () => {
  if (have) f = await makeTrainerFixtures('webgpu-rlhf', 16);
}, 60000);
afterAll(() => {
  if (f) fs.rmSync(f.tmp, { recursive: true, force: true });
});

const steps = (dir: string) =>
  readMetrics(path.join(dir, 'metrics.jsonl')).filter((x) => x.type === 'step') as unknown as Record<string, number>[];

/** `go` on ref then on webgpu: the same steps, losses within float32 rounding; returns both runs' step records. */
async function onBoth(
  go: (backend: 'ref' | 'webgpu') => Promise<{ losses: Map<number, number>; runDir: string }>,
): Promise<[Record<string, number>[], Record<string, number>[]]> {
  const a = await go('ref'),
    b = await go('webgpu');
  expect([...b.losses.keys()]).toEqual([...a.losses.keys()]);
  expect(a.losses.size).toBeGreaterThan(1);
  let worst = 0;
  for (const [k, la] of a.losses) worst = Math.max(worst, Math.abs(b.losses.get(k)! - la) / Math.max(1, Math.abs(la)));
  expect(worst).toBeLessThan(1e-4);
  return [steps(a.runDir), steps(b.runDir)];
}

let runs = 0;
const common = (backend: 'ref' | 'webgpu') => ({
  outDir: path.join(f!.tmp, 'runs'),
  name: `${backend}-${runs++}`,
  backend,
  quiet: true,
});

describe('RLHF trainers on webgpu', () => {
  /** The RL trainers' shared settings over their `tiny` presets: 8 episodes from the SFT policy and probe RM. */
  const rl = (backend: 'ref' | 'webgpu') => ({
    preset: 'tiny',
    overrides: { ...common(backend), model: f!.sftDir, rewardModel: f!.rmDir, data: [f!.prompts], totalEpisodes: 8 },
  });

  itGpu(
    'PPO, RLOO and GRPO: rollouts sampled on the device, the clipping decided from values read back; the steps of ref',
    async () => {
      const [a, b] = await onBoth((backend) => ppo({ ...quiet, config: buildPpoConfig(rl(backend)) }));
      expect(b.map((r) => r['policy/clipfrac_avg'])).toEqual(a.map((r) => r['policy/clipfrac_avg']));
      expect(b.map((r) => r['val/clipfrac_avg'])).toEqual(a.map((r) => r['val/clipfrac_avg']));
      const [c, d] = await onBoth((backend) => rloo({ ...quiet, config: buildRlooConfig(rl(backend)) }));
      expect(d.map((r) => r['policy/clipfrac_avg'])).toEqual(c.map((r) => r['policy/clipfrac_avg']));
      const [e, g] = await onBoth((backend) =>
        grpo({
          ...quiet,
          config: buildGrpoConfig({ ...rl(backend), overrides: { ...rl(backend).overrides, beta: 0.04 } }),
        }),
      );
      expect(g.map((r) => r['clip_ratio/region_mean'])).toEqual(e.map((r) => r['clip_ratio/region_mean']));
    },
    300000,
  );

  itGpu(
    'SFT: mean_token_accuracy from the argmaxes taken on the device (no B·T·V read-back)',
    async () => {
      const [a, b] = await onBoth((backend) =>
        sft({
          ...quiet,
          config: buildSftConfig({
            preset: 'tiny',
            overrides: { ...common(backend), model: f!.base, data: [f!.chats], maxSteps: 3 },
          }),
        }),
      );
      const acc = (rs: Record<string, number>[]) => rs.map((r) => r['mean_token_accuracy']);
      expect(acc(b).every((x) => typeof x === 'number')).toBe(true);
      acc(b).forEach((x, i) => expect(Math.abs(x! - acc(a)[i]!)).toBeLessThan(0.02)); // an argmax tie may round apart
    },
    300000,
  );

  itGpu(
    'LoRA (usePeft): SFT with adapter dropout and GRPO with the reference as the policy without adapters; the steps of ref',
    async () => {
      const peft = { usePeft: true, loraR: 4, loraDropout: 0.1, lr: 1e-2 };
      await onBoth((backend) =>
        sft({
          ...quiet,
          config: buildSftConfig({
            preset: 'tiny',
            overrides: { ...common(backend), model: f!.base, data: [f!.chats], maxSteps: 3, ...peft },
          }),
        }),
      );
      await onBoth((backend) =>
        grpo({
          ...quiet,
          config: buildGrpoConfig({ ...rl(backend), overrides: { ...rl(backend).overrides, beta: 0.04, ...peft } }),
        }),
      );
    },
    300000,
  );

  itGpu(
    'KTO: z0 read back each step; the steps of ref',
    async () => {
      const [a, b] = await onBoth((backend) =>
        kto({
          ...quiet,
          config: buildKtoConfig({
            preset: 'tiny',
            overrides: { ...common(backend), model: f!.base, data: [f!.thumbs], maxSteps: 3 },
          }),
        }),
      );
      b.forEach((r, i) => expect(Math.abs(r['kl']! - a[i]!['kl']!)).toBeLessThan(1e-4));
    },
    300000,
  );

  itGpu(
    "DPO's hinge: the mask from values read back; the steps of ref",
    async () => {
      const [a, b] = await onBoth((backend) =>
        dpo({
          ...quiet,
          config: buildDpoConfig({
            preset: 'tiny',
            overrides: {
              ...common(backend),
              model: f!.base,
              data: [f!.pairs],
              maxSteps: 3,
              lossType: 'hinge',
              beta: 2,
            },
          }),
        }),
      );
      // (not accuracies: at step 1 the policy is the reference, every reward 0 on ref and ±rounding on webgpu)
      b.forEach((r, i) => expect(Math.abs(r['rewards/margins']! - a[i]!['rewards/margins']!)).toBeLessThan(1e-4));
      expect(a.some((r) => r['loss']! > 0 && r['loss']! < 1)).toBe(true); // some pairs past the hinge, some not
    },
    300000,
  );
});

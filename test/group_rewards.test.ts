/**
 * GRPO and RLOO with a reward model and reward functions together (TRL's reward_funcs may mix models and functions,
 * weighted by reward_weights): each batch's raw score is the weighted sum of every source's, each source reports its
 * own mean (rewards/<name>/mean), and the weights are checked against the sources, functions first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpo } from '../src/align/grpo.js';
import { buildGrpoConfig } from '../src/align/grpo_settings.js';
import { rloo } from '../src/align/rloo.js';
import { buildRlooConfig } from '../src/align/rloo_settings.js';
import { readMetrics } from '../src/train/metrics.js';
import { quiet } from './ppo_helpers.js';
import { makeTrainerFixtures, type TrainerFixtures } from './trainer_fixtures.js';

let f: TrainerFixtures;
let fn = '';
beforeAll(async () => {
  f = await makeTrainerFixtures('mixed-rewards', 16);
  // a verifiable reward that varies: the reply's length, in characters, modulo 5
  fn = path.join(f.tmp, 'length_mod5.mjs');
  fs.writeFileSync(fn, 'export function reward(prompt, reply) { return reply.length % 5; }\n');
}, 60000);
afterAll(() => fs.rmSync(f.tmp, { recursive: true, force: true }));

const common = (name: string) => ({
  name,
  model: f.sftDir,
  data: [f.prompts],
  outDir: path.join(f.tmp, 'runs'),
  backend: 'ref' as const,
  quiet: true,
  totalEpisodes: 16,
});

/** The step records of a run. */
const steps = (runDir: string) =>
  readMetrics(path.join(runDir, 'metrics.jsonl')).filter((x) => x['type'] === 'step') as unknown as Record<
    string,
    number
  >[];

describe('a reward model and reward functions together', () => {
  it("GRPO: the raw score is 2 × the function's mean + 0.5 × the model's, each reported by name", async () => {
    const lines: string[] = [];
    const r = await grpo({
      ...quiet,
      log: (s) => lines.push(s),
      config: buildGrpoConfig({
        preset: 'tiny',
        overrides: { ...common('grpo-mixed'), reward: [fn], rewardModel: f.rmDir, rewardWeights: [2, 0.5] },
      }),
    });
    const rs = steps(r.runDir);
    expect(rs.length).toBeGreaterThan(0);
    const rm = path.basename(f.rmDir);
    for (const s of rs) {
      const fnMean = s['rewards/length_mod5.mjs/mean'];
      const rmMean = s[`rewards/${rm}/mean`];
      expect(typeof fnMean, JSON.stringify(Object.keys(s))).toBe('number');
      expect(typeof rmMean).toBe('number');
      expect(s[`rewards/${rm}/std`]).toBeGreaterThan(0); // the model scores replies differently
      expect(Math.abs(s['objective/raw_scores']! - (2 * fnMean! + 0.5 * rmMean!))).toBeLessThan(1e-5);
    }
    expect(lines.join('\n')).toMatch(/reward .*length_mod5\.mjs, weight 2\) \+ model \(.*rm, weight 0\.5\)/);
  }, 120000);

  it('RLOO takes the same mix; a weight count that is not functions + model is a named error', async () => {
    const r = await rloo({
      ...quiet,
      config: buildRlooConfig({
        preset: 'tiny',
        overrides: { ...common('rloo-mixed'), reward: [fn], rewardModel: f.rmDir },
      }),
    });
    const s = steps(r.runDir).at(-1)!;
    const rm = path.basename(f.rmDir);
    expect(typeof s[`rewards/${rm}/mean`]).toBe('number');
    expect(() =>
      buildRlooConfig({
        preset: 'tiny',
        overrides: { ...common('bad'), reward: [fn], rewardModel: f.rmDir, rewardWeights: [1] },
      }),
    ).toThrow(/rewardWeights.*one weight per reward \(1 function, then the reward model: 2\), got 1 weight/);
  }, 120000);
});

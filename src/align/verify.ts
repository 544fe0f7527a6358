/**
 * `llmts align verify`: the whole alignment proof in one command (issue 11), on a tiny model trained from scratch:
 *
 *   1. SFT on the task's train demonstrations (verify_models.ts builds the BPE and GPT-2), cached under a hash of
 *      everything it depends on (task rows, settings, seed);
 *   2. `perPrompt` replies per train prompt from SFT at temperature 1 → samples.jsonl;
 *   3. the rater, in its own process (oracle_process.ts), rates them as `llmts rate --type preference` does
 *      (rate.ts) → feedback.jsonl. The trainers read only that file: they never call the rater;
 *   4. the reward model (`llmts reward`), PPO (`llmts ppo`) against it, DPO (`llmts dpo`) on the same pairs — the
 *      library functions of those commands, with the fixed settings of verify_settings.ts;
 *   5. the controls: feedback with each pair's labels flipped at random (p ½) → a second reward model and PPO run;
 *   6. evaluation on held-out prompts the trainers never saw: one reply each from SFT, PPO, DPO, flipped-PPO, SFT
 *      under another sampling seed (A/A), and best-of-n SFT replies under the reward model, each judged against SFT's
 *      reply by the rater's `compare` (eval/judge.ts: order drawn per pair, ties half, Wilson interval), with the
 *      KL of each trained policy from SFT on its own replies, distinct-reply ratios and EOS rates;
 *   7. the curves: the PPO run's intermediate checkpoints (`ppo.curvePoints`) and DPO at the further β of
 *      `dpo.extraBetas` (trained after the controls) evaluated the same way — gold win rate against √KL — and the
 *      reward model's calibration on its held-out pairs (predicted P(chosen ≻ rejected) = σ(r_c − r_r) in bins
 *      against the observed frequency, with the expected calibration error). Their judgements come after every
 *      other call to the rater, so a rater with randomness of its own gives the other figures unchanged.
 *
 * Every random draw comes from `seed` (derivedSeed streams); the same seed gives the same figures bit for bit (the
 * seconds aside). Output folder: verify.json, report.html, heldout-replies.jsonl (each policy's reply to each held-out
 * prompt), and the stages' run folders.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../backend/registry.js';
import { type PreferenceRow, type TrlMessage, writeTrlDataset } from '../data/trl.js';
import { loadRewardModel } from '../model/hf/folder.js';
import { OPTIMIZER_STATE } from '../train/checkpoint.js';
import { LineProgress } from '../train/progress.js';
import { ConfigError } from '../util/errors.js';
import { writeFileAtomicSync } from '../util/fs.js';
import { Rng } from '../util/rng.js';
import { dpo } from './dpo.js';
import { buildDpoConfig } from './dpo_settings.js';
import { bestIndex, bestOfNKl, calibrationBins, distinctRatio, eosRate, preferenceProbability } from './eval/stats.js';
import { type Judge, judgePairs, type PairJudgement } from './eval/judge.js';
import type { CompareMeta } from './oracle.js';
import { OracleProcess } from './oracle_process.js';
import { PPO_STATE, ppo, VALUE_MODEL_DIR } from './ppo.js';
import { derivedSeed } from './ppo_batches.js';
import { buildPpoConfig } from './ppo_settings.js';
import { rateSamples, readSamples } from './rate.js';
import { trainRewardModel } from './reward.js';
import { buildRewardConfig } from './reward_settings.js';
import { sft } from './sft.js';
import { buildSftConfig } from './sft_settings.js';
import { type AlignTask, demonstrationRow, getTask, type TaskItem } from './tasks/index.js';
import {
  closePolicy,
  heldOutPairRewards,
  openPolicy,
  type OpenPolicy,
  promptIds,
  replyLogRatios,
  rewardScores,
  sampleReplies,
  type TextReply,
  writeBaseModel,
} from './verify_models.js';
import { writeVerifyReport } from './verify_report.js';
import { FULL, QUICK, type VerifySettings } from './verify_settings.js';

export interface VerifyOptions {
  /** The task (a name of tasks/index.ts, or a task object). */
  task: string | AlignTask;
  /** The rater module (raters/*.mjs). */
  oracle: string;
  seed: number;
  /** The output folder (its stage folders are replaced). */
  out: string;
  /** QUICK settings instead of FULL. */
  quick?: boolean;
  /** Settings other than FULL / QUICK (tests). */
  settings?: VerifySettings;
  /** Where cached SFT runs live (default: `<out>/../sft-cache`). */
  cacheDir?: string;
  log?: (line: string) => void;
}

/** How one policy's held-out replies fared. */
export interface PolicyFigures {
  /** Win rate against SFT's reply (ties half), with its 95 % Wilson interval; absent for SFT itself. */
  win_rate?: number;
  win_rate_ci_low?: number;
  win_rate_ci_high?: number;
  /** KL(π ‖ SFT) on π's own replies, nats per reply (trained policies). */
  kl?: number;
  /** Mean of the rater's score of its replies. */
  gold_score: number;
  distinct_ratio: number;
  eos_rate: number;
  mean_words: number;
}

/** One bin of the reward model's calibration: pairs whose predicted probability fell in [low, high). */
export interface CalibrationFigure {
  low: number;
  high: number;
  /** Mean predicted probability, observed frequency, predictions in the bin. */
  p_mean: number;
  freq: number;
  n: number;
}

/** A policy on the win rate against √KL curve. */
export interface CurvePoint {
  kl: number;
  sqrt_kl: number;
  win_rate: number;
  win_rate_ci_low: number;
  win_rate_ci_high: number;
}

/** What `align verify --json` prints (snake_case, as the issue names them). */
export interface VerifyFigures {
  task: string;
  oracle: string;
  seed: number;
  mode: 'full' | 'quick';
  train_prompts: number;
  heldout_prompts: number;
  samples: number;
  pairs: number;
  tied_pairs: number;
  rm_accuracy: number;
  ppo_win_rate: number;
  ppo_win_rate_ci_low: number;
  ppo_kl: number;
  dpo_win_rate: number;
  dpo_win_rate_ci_low: number;
  dpo_kl: number;
  dpo_rewards_accuracy: number;
  bon_win_rate: number;
  bon_kl_bound: number;
  aa_win_rate: number;
  shuffled_rm_accuracy: number;
  shuffled_ppo_win_rate: number;
  /** PPO's distinct-reply ratio and EOS rate (the collapse checks), and SFT's for comparison. */
  distinct_ratio: number;
  distinct_ratio_sft: number;
  eos_rate: number;
  eos_rate_sft: number;
  policies: Record<string, PolicyFigures>;
  /**
   * The reward model on its held-out pairs: each pair counted in both orders — predicted σ(r_c − r_r) with outcome 1
   * and σ(r_r − r_c) with outcome 0 (the rater chose the first reply; its ties are not in the feedback), so the
   * bins are mirror images and the ECE is that of the model's confidence in the reply it ranks higher. Empty bins
   * are left out; `pairs` held-out pairs, `accuracy` the share with r_c > r_r.
   */
  rm_calibration: { bins: CalibrationFigure[]; ece: number; pairs: number; accuracy: number };
  /**
   * The reward model's held-out accuracy by how strongly the rater preferred: the pairs sorted by their feedback
   * `margin` (the rater's score difference) and cut into up to 3 groups of near-equal size (weak, middle, strong
   * preferences), pairs of equal margin always in one group (`accuracyByMargin`). A reward model that reads only
   * some of what the rater scores shows it here (sotu-desk: chance on the pairs the right answer alone decides).
   */
  rm_accuracy_by_margin: MarginGroup[];
  /** PPO's checkpoints along the run (the last is the final policy, `ppo`), judged against SFT as it is. */
  ppo_curve: (CurvePoint & { step: number })[];
  /** DPO at each β (the main run's and `dpo.extraBetas`), by β; rewards_accuracy on its held-out pairs. */
  dpo_betas: (CurvePoint & { beta: number; rewards_accuracy: number })[];
  wall_s: number;
  /** Seconds per stage (sft is ~0 when cached). */
  seconds: Record<string, number>;
  sft_cached: boolean;
}

export interface VerifyResult {
  figures: VerifyFigures;
  /** The fixed-prompt table: the first prompts with each policy's reply. */
  table: { prompt: string; replies: Record<string, string> }[];
  dirs: { sft: string; reward: string; ppo: string; dpo: string; shuffledReward: string; shuffledPpo: string };
  jsonPath: string;
  reportPath: string;
}

/** Fields of the figures that are timings: everything else is a function of (task, rater, settings, seed). */
export const TIMING_FIELDS = ['wall_s', 'seconds', 'sft_cached'] as const;

/** `k` of `items` evenly spread (a fixed choice: the task's order groups related prompts). */
export function spread<T>(items: readonly T[], k: number): T[] {
  if (k >= items.length) return [...items];
  return Array.from({ length: k }, (_, i) => items[Math.floor((i * items.length) / k)]!);
}

/**
 * The label-flip control: each pair's chosen and rejected swapped with probability p (the margin kept), drawn from
 * `rng` pair by pair in order. Returns the rows and which were flipped.
 */
export function flipPreferences(
  rows: readonly PreferenceRow[],
  rng: Rng,
  p = 0.5,
): { rows: PreferenceRow[]; flipped: boolean[] } {
  const flipped = rows.map(() => rng.random() < p);
  return {
    rows: rows.map((r, i) => (flipped[i] ? { ...r, chosen: r.rejected, rejected: r.chosen } : r)),
    flipped,
  };
}

/** A rater process as the evaluation's judge: replies matched to their finish reasons (the rater reads EOS). */
function processJudge(proc: OracleProcess): Judge<TrlMessage[]> {
  const fr = (r: TextReply) => ({ finishReason: r.ended ? ('stop' as const) : ('length' as const) });
  return {
    async compare(prompt, a, b, meta) {
      // meta: the pair's two replies; the judge may be shown them in either order, so each is found by its text
      const m = meta as { A: TextReply; B: TextReply } | undefined;
      let cm: CompareMeta | undefined;
      if (m) {
        const of = (s: string) => (s === m.A.text ? m.A : m.B);
        cm = { a: fr(of(a)), b: fr(of(b)) };
      }
      return (await proc.compare([{ prompt, a, b, ...(cm ? { meta: cm } : {}) }]))[0]!;
    },
    async score(prompt, reply) {
      return (await proc.score([{ prompt, reply }]))[0]!;
    },
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

/** A policy's point on the win rate against √KL plot. */
function curvePoint(kl: number, j: PairJudgement): CurvePoint {
  return {
    kl,
    sqrt_kl: Math.sqrt(Math.max(0, kl)),
    win_rate: j.winRate,
    win_rate_ci_low: j.ci.low,
    win_rate_ci_high: j.ci.high,
  };
}

/** Held-out pairs whose feedback margin lies in [low, high]: `n` of them, `accuracy` the share with r_c > r_r. */
export interface MarginGroup {
  low: number;
  high: number;
  n: number;
  accuracy: number;
}

/**
 * Pairs scored (r_c, r_r) with margins m, grouped by margin: sorted by m, cut into up to `groups` runs of
 * ⌈n / groups⌉ pairs, each cut moved past the pairs that share the margin at it (a margin is never split).
 */
export function accuracyByMargin(
  chosen: readonly number[],
  rejected: readonly number[],
  margin: readonly number[],
  groups = 3,
): MarginGroup[] {
  const order = margin.map((_, i) => i).sort((a, b) => margin[a]! - margin[b]! || a - b);
  const size = Math.ceil(order.length / groups);
  const out: MarginGroup[] = [];
  for (let s = 0; s < order.length; ) {
    let e = Math.min(order.length, s + size);
    while (e < order.length && margin[order[e]!] === margin[order[e - 1]!]) e++;
    const idx = order.slice(s, e);
    out.push({
      low: margin[idx[0]!]!,
      high: margin[idx.at(-1)!]!,
      n: idx.length,
      accuracy: idx.filter((i) => chosen[i]! > rejected[i]!).length / idx.length,
    });
    s = e;
  }
  return out;
}

/** The reward model's calibration on pairs scored (r_c, r_r): see `VerifyFigures.rm_calibration`. */
export function rmCalibration(
  chosen: readonly number[],
  rejected: readonly number[],
  bins: number,
): VerifyFigures['rm_calibration'] {
  const p = chosen.map((c, i) => preferenceProbability(c, rejected[i]!));
  const cal = calibrationBins(
    [...p, ...rejected.map((r, i) => preferenceProbability(r, chosen[i]!))],
    [...p.map(() => 1), ...p.map(() => 0)],
    bins,
  );
  return {
    bins: cal.bins
      .filter((b) => b.n > 0)
      .map((b) => ({ low: b.low, high: b.high, p_mean: b.predicted, freq: b.observed, n: b.n })),
    ece: cal.ece,
    pairs: p.length,
    accuracy: chosen.filter((c, i) => c > rejected[i]!).length / chosen.length,
  };
}

/** Run the proof (see the header). */
export async function alignVerify(o: VerifyOptions): Promise<VerifyResult> {
  const t0 = performance.now();
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const S = o.settings ?? (o.quick ? QUICK : FULL);
  const task = typeof o.task === 'string' ? getTask(o.task, '--task') : o.task;
  if (!fs.existsSync(o.oracle)) throw new ConfigError('--oracle', `${o.oracle}: no such rater file`);
  if (!Number.isInteger(o.seed) || o.seed < 0)
    throw new ConfigError('--seed', `expected a whole number ≥ 0, got ${o.seed}`);
  const out = path.resolve(o.out);
  fs.mkdirSync(out, { recursive: true });
  const seconds: Record<string, number> = {};
  let mark = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    seconds[name] = round((now - mark) / 1000);
    mark = now;
    log(`align verify: ${name} done in ${seconds[name]} s`);
  };
  const progress = new LineProgress(1e9, () => {});
  const quietRun = { progress, handleSigint: false, log: (s: string) => log(`  ${s}`) };
  const common = { backend: S.backend, seed: o.seed, quiet: true, outDir: out, checkpointInterval: 0 } as const;
  const dpoName = (beta: number) => `dpo-beta${beta}`;
  for (const d of ['reward', 'ppo', 'dpo', 'reward-flipped', 'ppo-flipped', 'ppo-curve'])
    fs.rmSync(path.join(out, d), { recursive: true, force: true });
  for (const e of fs.readdirSync(out))
    if (e.startsWith('dpo-beta')) fs.rmSync(path.join(out, e), { recursive: true, force: true });

  const train = spread(task.items('train'), S.sample.prompts);
  const heldout: TaskItem[] = spread(task.items('heldout'), S.evaluate.prompts);
  if (train.length < 4 || heldout.length < 2)
    throw new ConfigError(
      '--task',
      `${task.name}: ${train.length} train / ${heldout.length} held-out prompts; too few`,
    );

  // ---- 1. SFT, cached by a hash of its inputs
  const demos = spread(task.items('train'), S.sft.rows).map(demonstrationRow);
  const key = crypto
    .createHash('sha256')
    .update(
      JSON.stringify({ v: 1, task: task.name, seed: o.seed, model: S.model, backend: S.backend, sft: S.sft, demos }),
    )
    .digest('hex')
    .slice(0, 16);
  const cache = path.resolve(o.cacheDir ?? path.join(path.dirname(out), 'sft-cache'), `${task.name}-${key}`);
  const sftDir = path.join(cache, 'sft', 'checkpoint');
  const doneFile = path.join(cache, 'done');
  const sftCached = fs.existsSync(doneFile);
  if (sftCached) log(`align verify: SFT from the cache (${cache})`);
  else {
    fs.rmSync(cache, { recursive: true, force: true });
    const backend = await initBackend(S.backend);
    const texts = demos.map((r) => r.messages.map((m) => `${m.role}\n${m.content}`).join('\n'));
    await writeBaseModel(path.join(cache, 'base'), texts, S.model, backend, o.seed);
    const data = path.join(cache, 'sft.jsonl');
    writeTrlDataset(data, demos);
    log(`align verify: SFT on ${demos.length} demonstrations of ${task.name}`);
    const r = await sft({
      ...quietRun,
      config: buildSftConfig({
        overrides: {
          ...common,
          outDir: cache,
          name: 'sft',
          model: path.join(cache, 'base'),
          data: [data],
          evalFraction: 0.05,
          maxLength: S.model.context,
          epochs: S.sft.epochs,
          batchSize: S.sft.batchSize,
          lr: S.sft.lr,
          minLr: S.sft.minLr,
          warmupSteps: S.sft.warmupSteps,
          evalInterval: 0,
          sampleInterval: 0,
        },
      }),
    });
    if (path.resolve(r.checkpointDir) !== sftDir)
      throw new Error(`SFT checkpoint at ${r.checkpointDir}, not ${sftDir}`);
    fs.writeFileSync(doneFile, `${new Date().toISOString()}\n`);
  }
  lap('sft');

  // ---- 2. replies to the train prompts
  const ref = await openPolicy(sftDir, S.backend);
  const fits = (ids: number[]) => ids.length + S.sample.maxTokens <= S.model.context;
  const trainIds = train.map((t) => promptIds(ref, t.prompt));
  const trainKept = train.filter((_, i) => fits(trainIds[i]!));
  const trainKeptIds = trainIds.filter(fits);
  const K = S.sample.perPrompt;
  const sampled = await sampleReplies(
    ref,
    trainKeptIds.flatMap((ids) => Array.from({ length: K }, () => ids)),
    S.sample.maxTokens,
    (k) => derivedSeed(o.seed, 11, k),
  );
  const samplesFile = path.join(out, 'samples.jsonl');
  writeFileAtomicSync(
    samplesFile,
    trainKept
      .map((t, i) => {
        const rs = sampled.slice(i * K, (i + 1) * K);
        return `${JSON.stringify({
          prompt: t.prompt,
          completions: rs.map((r) => r.text),
          finish_reasons: rs.map((r) => (r.ended ? 'stop' : 'length')),
        })}\n`;
      })
      .join(''),
  );
  const promptsFile = path.join(out, 'prompts.jsonl');
  writeFileAtomicSync(promptsFile, trainKept.map((t) => `${JSON.stringify({ prompt: t.prompt })}\n`).join(''));
  lap('sample');

  // ---- 3. the rater ranks them, in its own process, into the feedback file
  const rater = await OracleProcess.start(o.oracle, { seed: o.seed });
  let rated: Awaited<ReturnType<typeof rateSamples>>;
  try {
    rated = await rateSamples(rater, readSamples(samplesFile), { type: 'preference' });
  } finally {
    await rater.close();
  }
  const pairs = rated.rows as PreferenceRow[];
  if (pairs.length < 8)
    throw new ConfigError(
      '--oracle',
      `${o.oracle}: only ${pairs.length} non-tied pairs from ${rated.prompts} prompts; the rater must prefer something`,
    );
  const feedback = path.join(out, 'feedback.jsonl');
  writeTrlDataset(feedback, pairs);
  const flip = flipPreferences(pairs, new Rng(derivedSeed(o.seed, 12, 0)));
  const flippedFile = path.join(out, 'feedback-flipped.jsonl');
  writeTrlDataset(flippedFile, flip.rows);
  log(
    `align verify: ${rater.name}: ${pairs.length} pairs (${rated.skipped} tied) from ${rated.prompts} prompts × ${K} replies; mean score ${rated.meanScore.toFixed(3)}`,
  );
  lap('rate');

  // ---- 4. reward model, PPO, DPO (and the flipped-label controls)
  const rewardRun = (name: string, data: string) =>
    trainRewardModel({
      ...quietRun,
      config: buildRewardConfig({
        overrides: {
          ...common,
          name,
          model: sftDir,
          data: [data],
          maxLength: S.model.context,
          evalFraction: S.reward.evalFraction,
          epochs: S.reward.epochs,
          batchSize: S.reward.batchSize,
          lr: S.reward.lr,
          minLr: S.reward.minLr,
          evalInterval: 0,
          sampleInterval: 0,
        },
      }),
    });
  const { curvePoints, ...ppoSettings } = S.ppo;
  const { extraBetas, ...dpoSettings } = S.dpo;
  // the main PPO run checkpoints every ⌈steps / curvePoints⌉ steps; each checkpoint's policy is copied aside
  const ppoSteps =
    Math.ceil(S.ppo.totalEpisodes / S.ppo.batchSize) * ((S.ppo.ppoEpochs * S.ppo.batchSize) / S.ppo.miniBatchSize);
  const curveInterval = curvePoints > 1 ? Math.ceil(ppoSteps / curvePoints) : 0;
  const curveDir = path.join(out, 'ppo-curve');
  const curveCheckpoints: { step: number; dir: string }[] = [];
  const keepCheckpoint = (dir: string, step: number) => {
    if (step >= ppoSteps) return; // the final policy is the run's own checkpoint
    const to = path.join(curveDir, `step-${String(step).padStart(6, '0')}`);
    fs.rmSync(to, { recursive: true, force: true });
    // the policy alone: not its value model, AdamW moments or batch of rollouts
    const skip = new Set([VALUE_MODEL_DIR, OPTIMIZER_STATE, PPO_STATE]);
    fs.cpSync(dir, to, { recursive: true, filter: (f) => f === dir || !skip.has(path.basename(f)) });
    curveCheckpoints.push({ step, dir: to });
  };
  const ppoRun = (name: string, rewardModel: string, curve = false) =>
    ppo({
      ...quietRun,
      ...(curve ? { onCheckpoint: keepCheckpoint } : {}),
      config: buildPpoConfig({
        overrides: {
          ...common,
          name,
          model: sftDir,
          rewardModel,
          data: [promptsFile],
          responseLength: S.sample.maxTokens,
          temperature: 1,
          ...ppoSettings,
          minLr: S.ppo.lr,
          evalInterval: 0,
          sampleInterval: 0,
          ...(curve ? { checkpointInterval: curveInterval } : {}),
        },
      }),
    });
  const dpoRun = (name: string, beta: number, referenceFrom = '') =>
    dpo({
      ...quietRun,
      config: buildDpoConfig({
        overrides: {
          ...common,
          name,
          model: sftDir,
          data: [feedback],
          maxLength: S.model.context,
          evalFraction: S.reward.evalFraction,
          lossType: 'sigmoid',
          ...dpoSettings,
          beta,
          referenceFrom,
          evalInterval: 0,
          sampleInterval: 0,
        },
      }),
    });
  const rm = await rewardRun('reward', feedback);
  const rmAccuracy = rm.finalEval?.['eval_accuracy'] ?? NaN;
  lap('reward');
  const ppoR = await ppoRun('ppo', rm.checkpointDir, true);
  lap('ppo');
  const dpoR = await dpoRun('dpo', S.dpo.beta);
  lap('dpo');
  const rmFlipped = await rewardRun('reward-flipped', flippedFile);
  const ppoFlipped = await ppoRun('ppo-flipped', rmFlipped.checkpointDir);
  lap('controls');
  // DPO at the further β, after everything the other figures come from
  const dpoExtra: { beta: number; dir: string; rewardsAccuracy: number }[] = [];
  for (const beta of extraBetas) {
    const r = await dpoRun(dpoName(beta), beta, dpoR.checkpointDir); // the main run's reference log-probabilities
    dpoExtra.push({ beta, dir: r.checkpointDir, rewardsAccuracy: r.finalEval?.['eval_rewards/accuracies'] ?? NaN });
  }
  lap('dpo_betas');

  // ---- 5. evaluation on the held-out prompts
  const hIds = heldout.map((t) => promptIds(ref, t.prompt));
  const held = heldout.filter((_, i) => fits(hIds[i]!));
  const heldIds = hIds.filter(fits);
  const prompts = held.map((t) => t.prompt);
  const N = S.sample.maxTokens;
  const replies: Record<string, TextReply[]> = {};
  const kls: Record<string, number> = {};
  const evalSeed = (k: number) => derivedSeed(o.seed, 21, k);
  replies['sft'] = await sampleReplies(ref, heldIds, N, (k) => evalSeed(1000 + k));
  replies['sft_aa'] = await sampleReplies(ref, heldIds, N, (k) => evalSeed(2000 + k));
  const B = S.evaluate.bestOf;
  const many = await sampleReplies(
    ref,
    heldIds.flatMap((ids) => Array.from({ length: B }, () => ids)),
    N,
    (k) => evalSeed(3000 + k),
  );
  const rmModel = await loadRewardModel(rm.checkpointDir, { backend: ref.backend });
  const scores = await rewardScores(
    rmModel,
    ref,
    prompts.flatMap((m) => Array.from({ length: B }, () => m)),
    heldIds.flatMap((ids) => Array.from({ length: B }, () => ids)),
    many,
  );
  const best = bestIndex(heldIds.map((_, i) => scores.slice(i * B, (i + 1) * B)));
  replies['bon'] = best.map((b, i) => many[i * B + b]!);
  const policies: [string, string][] = [
    ['ppo', ppoR.checkpointDir],
    ['dpo', dpoR.checkpointDir],
    ['ppo_flipped', ppoFlipped.checkpointDir],
  ];
  // a policy's replies (the same sampling seeds for every policy) and its KL from SFT on them
  const evalPolicy = async (dir: string): Promise<{ replies: TextReply[]; kl: number }> => {
    const p: OpenPolicy = await openPolicy(dir, S.backend);
    const rs = await sampleReplies(p, heldIds, N, (k) => evalSeed(1000 + k));
    const lr = await replyLogRatios(p, ref.model, heldIds, rs);
    closePolicy(p);
    return { replies: rs, kl: lr.reduce((a, b) => a + b, 0) / lr.length };
  };
  for (const [name, dir] of policies) {
    const e = await evalPolicy(dir);
    replies[name] = e.replies;
    kls[name] = e.kl;
  }
  // the curves' policies: PPO's checkpoints before its last step, DPO at the further β
  const curveEvals: { step: number; replies: TextReply[]; kl: number }[] = [];
  for (const c of curveCheckpoints)
    if (c.step < ppoR.steps) curveEvals.push({ step: c.step, ...(await evalPolicy(c.dir)) });
  const betaEvals: { beta: number; rewardsAccuracy: number; replies: TextReply[]; kl: number }[] = [];
  for (const d of dpoExtra)
    betaEvals.push({ beta: d.beta, rewardsAccuracy: d.rewardsAccuracy, ...(await evalPolicy(d.dir)) });
  // the reward model's held-out pairs, for its calibration
  const heldPairs = await heldOutPairRewards(rmModel, ref, feedback, {
    maxLength: S.model.context,
    evalFraction: S.reward.evalFraction,
  });
  for (const t of rmModel.params.values()) t.dispose();
  const judgeProc = await OracleProcess.start(o.oracle, { seed: derivedSeed(o.seed, 22, 0) });
  const judged: Record<string, PairJudgement> = {};
  const curveJudged: PairJudgement[] = [],
    betaJudged: PairJudgement[] = [];
  const gold: Record<string, number> = {};
  try {
    const judge = processJudge(judgeProc);
    const vs = ['ppo', 'dpo', 'bon', 'sft_aa', 'ppo_flipped'];
    for (const [k, name] of vs.entries()) {
      const a = replies[name]!,
        b = replies['sft']!;
      judged[name] = await judgePairs(
        judge,
        prompts,
        a.map((r) => r.text),
        b.map((r) => r.text),
        new Rng(derivedSeed(o.seed, 23, k)),
        { meta: (i) => ({ A: a[i]!, B: b[i]! }) },
      );
    }
    for (const [name, rs] of Object.entries(replies)) {
      const s = await judgeProc.score(
        rs.map((r, i) => ({ prompt: prompts[i]!, reply: r.text, meta: { finishReason: r.ended ? 'stop' : 'length' } })),
      );
      gold[name] = s.reduce((a, b) => a + b, 0) / s.length;
    }
    // the curves' judgements, after every other call to the rater (see the header)
    const vsSft = (a: TextReply[], rng: Rng) =>
      judgePairs(
        judge,
        prompts,
        a.map((r) => r.text),
        replies['sft']!.map((r) => r.text),
        rng,
        { meta: (i) => ({ A: a[i]!, B: replies['sft']![i]! }) },
      );
    for (const [i, c] of curveEvals.entries())
      curveJudged.push(await vsSft(c.replies, new Rng(derivedSeed(o.seed, 24, i))));
    for (const [i, c] of betaEvals.entries())
      betaJudged.push(await vsSft(c.replies, new Rng(derivedSeed(o.seed, 25, i))));
  } finally {
    await judgeProc.close();
  }
  lap('evaluate');

  const pf: Record<string, PolicyFigures> = {};
  for (const [name, rs] of Object.entries(replies)) {
    const j = judged[name];
    pf[name] = {
      ...(j ? { win_rate: j.winRate, win_rate_ci_low: j.ci.low, win_rate_ci_high: j.ci.high } : {}),
      ...(name in kls ? { kl: kls[name]! } : {}),
      gold_score: gold[name]!,
      distinct_ratio: distinctRatio(rs.map((r) => r.text)),
      eos_rate: eosRate(rs.map((r) => r.ended)),
      mean_words: rs.reduce((n, r) => n + (r.text.trim() ? r.text.trim().split(/\s+/).length : 0), 0) / rs.length,
    };
  }
  const figures: VerifyFigures = {
    task: task.name,
    oracle: rater.name,
    seed: o.seed,
    mode: o.quick ? 'quick' : 'full',
    train_prompts: trainKept.length,
    heldout_prompts: held.length,
    samples: rated.replies,
    pairs: pairs.length,
    tied_pairs: rated.skipped,
    rm_accuracy: rmAccuracy,
    ppo_win_rate: judged['ppo']!.winRate,
    ppo_win_rate_ci_low: judged['ppo']!.ci.low,
    ppo_kl: kls['ppo']!,
    dpo_win_rate: judged['dpo']!.winRate,
    dpo_win_rate_ci_low: judged['dpo']!.ci.low,
    dpo_kl: kls['dpo']!,
    dpo_rewards_accuracy: dpoR.finalEval?.['eval_rewards/accuracies'] ?? NaN,
    bon_win_rate: judged['bon']!.winRate,
    bon_kl_bound: bestOfNKl(B),
    aa_win_rate: judged['sft_aa']!.winRate,
    shuffled_rm_accuracy: rmFlipped.finalEval?.['eval_accuracy'] ?? NaN,
    shuffled_ppo_win_rate: judged['ppo_flipped']!.winRate,
    distinct_ratio: pf['ppo']!.distinct_ratio,
    distinct_ratio_sft: pf['sft']!.distinct_ratio,
    eos_rate: pf['ppo']!.eos_rate,
    eos_rate_sft: pf['sft']!.eos_rate,
    policies: pf,
    rm_calibration: rmCalibration(heldPairs.chosen, heldPairs.rejected, S.reward.calibrationBins),
    rm_accuracy_by_margin: accuracyByMargin(heldPairs.chosen, heldPairs.rejected, heldPairs.margin),
    ppo_curve: [
      ...curveEvals.map((c, i) => ({ step: c.step, ...curvePoint(c.kl, curveJudged[i]!) })),
      { step: ppoR.steps, ...curvePoint(kls['ppo']!, judged['ppo']!) },
    ],
    dpo_betas: [
      {
        beta: S.dpo.beta,
        ...curvePoint(kls['dpo']!, judged['dpo']!),
        rewards_accuracy: dpoR.finalEval?.['eval_rewards/accuracies'] ?? NaN,
      },
      ...betaEvals.map((b, i) => ({
        beta: b.beta,
        ...curvePoint(b.kl, betaJudged[i]!),
        rewards_accuracy: b.rewardsAccuracy,
      })),
    ].sort((a, b) => a.beta - b.beta),
    wall_s: 0,
    seconds,
    sft_cached: sftCached,
  };
  const table = held.slice(0, S.tablePrompts).map((t, i) => ({
    prompt: t.prompt.map((m) => `${m.role}: ${m.content}`).join('\n'),
    replies: Object.fromEntries(Object.entries(replies).map(([k, rs]) => [k, rs[i]!.text])),
  }));
  const jsonPath = path.join(out, 'verify.json');
  const reportPath = path.join(out, 'report.html');
  figures.wall_s = round((performance.now() - t0) / 1000);
  // every held-out reply of every policy, for reading the judgements behind the figures
  writeFileAtomicSync(
    path.join(out, 'heldout-replies.jsonl'),
    held
      .map(
        (t, i) =>
          `${JSON.stringify({ prompt: t.prompt, replies: Object.fromEntries(Object.entries(replies).map(([k, rs]) => [k, { text: rs[i]!.text, ended: rs[i]!.ended }])) })}\n`,
      )
      .join(''),
  );
  writeVerifyReport(reportPath, { figures, table, ppoRunDir: ppoR.runDir, settings: S });
  writeFileAtomicSync(jsonPath, `${JSON.stringify(figures, null, 2)}\n`);
  return {
    figures,
    table,
    dirs: {
      sft: sftDir,
      reward: rm.checkpointDir,
      ppo: ppoR.checkpointDir,
      dpo: dpoR.checkpointDir,
      shuffledReward: rmFlipped.checkpointDir,
      shuffledPpo: ppoFlipped.checkpointDir,
    },
    jsonPath,
    reportPath,
  };
}

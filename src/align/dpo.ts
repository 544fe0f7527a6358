/**
 * Direct Preference Optimization (what `llmts dpo` runs), TRL's DPOTrainer on the shared preference run
 * (pref_run.ts): the policy starts as the fine-tuned model; the reference is that same starting model, frozen, and
 * its log-probabilities of every pair's chosen and rejected completion are computed once before training and kept
 * (in each checkpoint's reference_logps.json, so a resumed run uses the very same numbers). Losses sigmoid, IPO,
 * hinge and robust (pref_losses.ts) on completion tokens only. Metrics: loss, rewards/chosen, rewards/rejected,
 * rewards/accuracies, rewards/margins, logps/chosen, logps/rejected and their eval_ forms. The checkpoint is a
 * causal-LM folder with its chat template, which `llmts chat` loads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { saveModel } from '../model/hf/folder.js';
import { loadPolicy } from './peft.js';
import type { CausalLM } from '../model/model.js';
import type { TextTokenizer } from '../tokenizer/index.js';
import { sampleIds } from '../train/sample.js';
import { readTrainerState } from '../train/checkpoint.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { DpoObjective, referenceLogps } from './dpo_objective.js';
import { DPO_DEFAULTS, validateDpoConfig, type DpoConfig } from './dpo_settings.js';
import { loadPairData, runPreference, type PrefOptions, type PrefRecipe, type PrefResult } from './pref_run.js';
import { statMetrics } from './pref_stats.js';

/** The reference log-probabilities' file in a DPO checkpoint. */
export const REFERENCE_LOGPS = 'reference_logps.json';

/**
 * Read the reference log-probabilities a checkpoint keeps (REFERENCE_LOGPS): one list of `n` numbers per key
 * (DPO: chosen, rejected; KTO: completion, kl), computed for the data whose fingerprint is `fingerprint`.
 */
export function readReferenceLogps<K extends string>(
  dir: string,
  fingerprint: string,
  n: number,
  keys: readonly K[],
  command: string,
): Record<K, Float64Array> {
  const file = path.join(dir, REFERENCE_LOGPS);
  if (!fs.existsSync(file))
    throw new FileFormatError(
      'E_FILE_MISSING',
      file,
      `no reference log-probabilities: this checkpoint was not written by llmts ${command}, so the run cannot resume`,
    );
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new FileFormatError('E_JSON', file, `not valid JSON (${(e as Error).message})`);
  }
  for (const k of keys) {
    const v = j[k];
    if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== 'number'))
      throw new FileFormatError(
        'E_REFERENCE',
        file,
        `expected ${keys.map((x) => `"${x}"`).join(' and ')} lists of ${n} log-probabilities, one per ${command === 'dpo' ? 'pair' : 'row'}`,
        k,
      );
  }
  if (j['fingerprint'] !== fingerprint)
    throw new FileFormatError(
      'E_REFERENCE',
      file,
      'computed for other data than the run has now: resume with the data the run started with',
      'fingerprint',
    );
  return Object.fromEntries(keys.map((k) => [k, Float64Array.from(j[k] as number[])])) as Record<K, Float64Array>;
}

/**
 * The reference log-probabilities of another DPO run's checkpoint (`referenceFrom`): that run must have started from
 * `model` (the reference is the starting model) and read the same pairs (the fingerprint); anything else is a
 * ConfigError naming the setting.
 */
export function reusedReferenceLogps(
  dir: string,
  model: string,
  fingerprint: string,
  n: number,
): { chosen: Float64Array; rejected: Float64Array } {
  try {
    const saved = readTrainerState(dir).config as { command?: unknown; model?: unknown };
    if (saved.command !== 'dpo') throw new Error(`not an 'llmts dpo' checkpoint (a ${String(saved.command)} run)`);
    if (typeof saved.model !== 'string' || path.resolve(saved.model) !== path.resolve(model))
      throw new Error(`its reference is ${String(saved.model)}, not ${model}`);
    return readReferenceLogps(dir, fingerprint, n, ['chosen', 'rejected'], 'dpo');
  } catch (e) {
    throw new ConfigError('referenceFrom', `${dir}: ${(e as Error).message}`);
  }
}

/** A greedy reply of the policy to a prompt (ids), for the training log. */
export async function greedyReply(
  policy: CausalLM,
  tok: TextTokenizer,
  prompt: number[],
  seed: number,
): Promise<{ prompt: string; text: string }[]> {
  const stopId = tok.specialTokens.get('<|im_end|>') ?? tok.eosId;
  const ids = await sampleIds(policy, prompt, {
    maxTokens: 32,
    temperature: 0,
    topK: 0,
    seed,
    ...(stopId !== undefined ? { stopId } : {}),
  });
  return [{ prompt: tok.decode(prompt), text: tok.decode(ids, { continuation: true }) }];
}

export const DPO_RECIPE: PrefRecipe<DpoConfig> = {
  command: 'dpo',
  defaults: DPO_DEFAULTS,
  validate: validateDpoConfig,
  loadData: loadPairData,
  async prepare({ c, resumeDir, backend, tok, items: pairs, nTrain, fingerprint, log }) {
    const policy = await loadPolicy(c, c.model, resumeDir, backend, log);
    let ref: { chosen: Float64Array; rejected: Float64Array };
    if (resumeDir) ref = readReferenceLogps(resumeDir, fingerprint, pairs.length, ['chosen', 'rejected'], 'dpo');
    else if (c.referenceFrom) {
      ref = reusedReferenceLogps(c.referenceFrom, c.model, fingerprint, pairs.length);
      log(`reference: log-probabilities of ${pairs.length} pairs from ${c.referenceFrom}`);
    } else {
      const t0 = performance.now();
      ref = await referenceLogps(policy, pairs); // the starting model is the reference: computed once, here
      log(
        `reference: log-probabilities of ${pairs.length} pairs computed in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    const refJson = JSON.stringify({
      fingerprint,
      chosen: Array.from(ref.chosen),
      rejected: Array.from(ref.rejected),
    });
    const first = pairs[nTrain] ?? pairs[0]!;
    const objective = new DpoObjective(policy, pairs, ref, {
      beta: c.beta,
      lossType: c.lossType,
      labelSmoothing: c.labelSmoothing,
    });
    return {
      objective,
      metrics: (which, prefix) => statMetrics(objective.takeStats(which), prefix, 'dpo'),
      config: policy.config,
      save: async (d) => {
        await saveModel(policy, d);
        await writeFileAtomic(path.join(d, REFERENCE_LOGPS), refJson + '\n');
      },
      sample: () => greedyReply(policy, tok, first.prompt, c.seed),
      describe: `${policy.config.family} policy, β ${c.beta}, ${c.lossType} loss`,
      models: [policy],
    };
  },
};

export type DpoOptions = PrefOptions<DpoConfig>;
export type DpoResult = PrefResult<DpoConfig>;

/** Run (or resume) DPO. */
export function dpo(o: DpoOptions): Promise<DpoResult> {
  return runPreference(DPO_RECIPE, o);
}

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
import { loadModel, saveModel } from '../model/hf/folder.js';
import { sampleIds } from '../train/sample.js';
import { FileFormatError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { DpoObjective, referenceLogps } from './dpo_objective.js';
import { DPO_DEFAULTS, validateDpoConfig, type DpoConfig } from './dpo_settings.js';
import { runPreference, type PrefOptions, type PrefRecipe, type PrefResult } from './pref_run.js';

/** The reference log-probabilities' file in a DPO checkpoint. */
export const REFERENCE_LOGPS = 'reference_logps.json';

interface RefFile {
  fingerprint: string;
  chosen: number[];
  rejected: number[];
}

function readRef(dir: string, fingerprint: string, n: number): { chosen: Float64Array; rejected: Float64Array } {
  const file = path.join(dir, REFERENCE_LOGPS);
  if (!fs.existsSync(file))
    throw new FileFormatError(
      'E_FILE_MISSING',
      file,
      'no reference log-probabilities: this checkpoint was not written by llmts dpo, so the run cannot resume',
    );
  let j: RefFile;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8')) as RefFile;
  } catch (e) {
    throw new FileFormatError('E_JSON', file, `not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(j.chosen) || !Array.isArray(j.rejected) || j.chosen.length !== n || j.rejected.length !== n)
    throw new FileFormatError(
      'E_REFERENCE',
      file,
      `expected "chosen" and "rejected" lists of ${n} log-probabilities, one per pair`,
      'chosen',
    );
  if (j.fingerprint !== fingerprint)
    throw new FileFormatError(
      'E_REFERENCE',
      file,
      'computed for other data than the run has now: resume with the data the run started with',
      'fingerprint',
    );
  return { chosen: Float64Array.from(j.chosen), rejected: Float64Array.from(j.rejected) };
}

export const DPO_RECIPE: PrefRecipe<DpoConfig> = {
  command: 'dpo',
  defaults: DPO_DEFAULTS,
  validate: validateDpoConfig,
  async prepare({ c, modelDir, resumeDir, backend, tok, pairs, nTrain, fingerprint, log }) {
    const policy = await loadModel(modelDir, { backend });
    let ref: { chosen: Float64Array; rejected: Float64Array };
    if (resumeDir) ref = readRef(resumeDir, fingerprint, pairs.length);
    else {
      const t0 = performance.now();
      ref = await referenceLogps(policy, pairs); // the starting model is the reference: computed once, here
      log(
        `reference: log-probabilities of ${pairs.length} pairs computed in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    for (const p of policy.params.values()) p.requiresGrad = true;
    const refJson = JSON.stringify({
      fingerprint,
      chosen: Array.from(ref.chosen),
      rejected: Array.from(ref.rejected),
    } satisfies RefFile);
    const stopId = tok.specialTokens.get('<|im_end|>') ?? tok.eosId;
    const first = pairs[nTrain] ?? pairs[0]!;
    return {
      objective: new DpoObjective(policy, pairs, ref, {
        beta: c.beta,
        lossType: c.lossType,
        labelSmoothing: c.labelSmoothing,
      }),
      config: policy.config,
      save: async (d) => {
        await saveModel(policy, d);
        await writeFileAtomic(path.join(d, REFERENCE_LOGPS), refJson + '\n');
      },
      sample: async () => {
        const ids = await sampleIds(policy, first.prompt, {
          maxTokens: 32,
          temperature: 0,
          topK: 0,
          seed: c.seed,
          ...(stopId !== undefined ? { stopId } : {}),
        });
        return [{ prompt: tok.decode(first.prompt), text: tok.decode(ids) }];
      },
      describe: `${policy.config.family} policy, β ${c.beta}, ${c.lossType} loss`,
    };
  },
};

export type DpoOptions = PrefOptions<DpoConfig>;
export type DpoResult = PrefResult<DpoConfig>;

/** Run (or resume) DPO. */
export function dpo(o: DpoOptions): Promise<DpoResult> {
  return runPreference(DPO_RECIPE, o);
}

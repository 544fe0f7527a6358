/**
 * Kahneman–Tversky Optimization (what `llmts kto` runs; Ethayarajh et al. 2024), TRL's KTOTrainer on the shared
 * preference run (pref_run.ts): unpaired thumbs up / down (kto_data.ts) instead of pairs. The policy starts as the
 * fine-tuned model; the reference is that same starting model, frozen, and its log-probabilities of every row's
 * completion and of every row's mismatched KL pair are computed once before training and kept (in each
 * checkpoint's reference_logps.json, so a resumed run uses the very same numbers). Loss kto_loss.ts on completion
 * tokens only. Metrics: loss, rewards/chosen, rewards/rejected, rewards/margins, logps/chosen, logps/rejected, kl,
 * count/chosen, count/rejected and their eval_ forms. The checkpoint is a causal-LM folder with its chat template,
 * which `llmts chat` loads.
 */
import path from 'node:path';
import { saveModel } from '../model/hf/folder.js';
import { loadPolicy } from './peft.js';
import { writeFileAtomic } from '../util/fs.js';
import { greedyReply, readReferenceLogps, REFERENCE_LOGPS } from './dpo.js';
import { loadKtoData, type KtoRow } from './kto_data.js';
import { KtoObjective, ktoReferenceLogps, type KtoReference } from './kto_objective.js';
import { KTO_DEFAULTS, validateKtoConfig, type KtoConfig } from './kto_settings.js';
import { runPreference, type PrefOptions, type PrefRecipe, type PrefResult } from './pref_run.js';
import { ktoMetrics } from './pref_stats.js';

export const KTO_RECIPE: PrefRecipe<KtoConfig, KtoRow> = {
  command: 'kto',
  defaults: KTO_DEFAULTS,
  validate: validateKtoConfig,
  loadData: loadKtoData,
  async prepare({ c, resumeDir, backend, tok, items: rows, nTrain, fingerprint, log }) {
    const policy = await loadPolicy(c, c.model, resumeDir, backend, log);
    let ref: KtoReference;
    if (resumeDir) ref = readReferenceLogps(resumeDir, fingerprint, rows.length, ['completion', 'kl'], 'kto');
    else {
      const t0 = performance.now();
      ref = await ktoReferenceLogps(policy, rows); // the starting model is the reference: computed once, here
      log(
        `reference: log-probabilities of ${rows.length} rows and their ${rows.length} KL pairs computed in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    const refJson = JSON.stringify({
      fingerprint,
      completion: Array.from(ref.completion),
      kl: Array.from(ref.kl),
    });
    const first = rows[nTrain] ?? rows[0]!;
    const objective = new KtoObjective(policy, rows, ref, {
      beta: c.beta,
      desirableWeight: c.desirableWeight,
      undesirableWeight: c.undesirableWeight,
    });
    return {
      objective,
      metrics: (which, prefix) => ktoMetrics(objective.takeStats(which), prefix),
      config: policy.config,
      save: async (d) => {
        await saveModel(policy, d);
        await writeFileAtomic(path.join(d, REFERENCE_LOGPS), refJson + '\n');
      },
      sample: () => greedyReply(policy, tok, first.prompt, c.seed),
      describe: `${policy.config.family} policy, β ${c.beta}, λ_D ${c.desirableWeight}, λ_U ${c.undesirableWeight}`,
      models: [policy],
    };
  },
};

export type KtoOptions = PrefOptions<KtoConfig>;
export type KtoResult = PrefResult<KtoConfig>;

/** Run (or resume) KTO. */
export function kto(o: KtoOptions): Promise<KtoResult> {
  return runPreference(KTO_RECIPE, o);
}

/**
 * A `ReplySampler` (rollout.ts) on the batched, KV-cached sampler of src/generate/batch.ts: prompts of any lengths
 * decode together, left-padded, `batchSize` rows per forward, finished rows dropped from the cache as they end. What
 * RLOO samples its k replies per prompt with (and PPO may: same interface, same draws as `engineReplySampler` — row r
 * draws with the r-th fork of the seeded Rng either way).
 *
 * The draws are temperature-only (softmax(logits / T), no top-k / top-p / penalties), exactly the distribution the
 * trainers score the replies under; a reply ended by a stop token keeps it as its last id.
 */
import { sampleBatch } from '../generate/batch.js';
import type { CausalLM } from '../model/model.js';
import { ConfigError } from '../util/errors.js';
import type { ReplySampler } from './rollout.js';

/** Replies from `sampleBatch` on `model`, `batchSize` rows per forward. */
export function batchReplySampler(model: CausalLM, batchSize = 16): ReplySampler {
  return {
    async sample(prompts, o) {
      if (!(o.temperature > 0))
        throw new ConfigError('temperature', `rollouts sample with a temperature > 0, got ${o.temperature}`);
      const out = await sampleBatch(
        model,
        prompts.map((p) => Int32Array.from(p)),
        { maxTokens: o.maxTokens, temperature: o.temperature, stopTokens: o.stopTokens, seed: o.seed, batchSize },
      );
      return out.map((r) => ({ ids: Array.from(r.ids), ended: r.finishReason === 'stop' }));
    },
  };
}

/**
 * Switching the model a running server serves (after "Improve the model"): in the generation queue, so the request
 * generating now finishes on the old weights and the next one starts on the new; the old prompt caches are dropped
 * (they hold the old weights' keys and values). Clients keep the model's name; `system_fingerprint` names the new
 * weights.
 */
import { PromptCachePool } from './cache_pool.js';
import type { ServedModel } from './served_model.js';
import type { ServerState } from './server_state.js';

/** Serve `next` from the next request on; resolves once it is in place. `slots`: its prompt caches. */
export async function switchServedModel(state: ServerState, next: ServedModel, slots: number): Promise<void> {
  await state.queue.run(new AbortController().signal, async () => {
    state.pool.dispose();
    state.served = next;
    state.pool = new PromptCachePool(next.model, slots);
  });
}

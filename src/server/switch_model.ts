/**
 * Switching the model a running server serves (after "Improve the model"): in the generation queue, so the request
 * generating now finishes on the old weights and the next one starts on the new; the old prompt caches are dropped
 * (they hold the old weights' keys and values). Clients keep the model's name; `system_fingerprint` names the new
 * weights.
 */
import { PromptCachePool } from './cache_pool.js';
import { HttpError } from './routes.js';
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

/**
 * A request that read the served model before it waited for its turn checks here, at its turn, that the model was
 * not switched meanwhile (its prompt was built for the old one, the prompt caches now hold the new one's): 503.
 */
export function checkStillServed(state: ServerState, served: ServedModel): void {
  if (state.served !== served)
    throw new HttpError(
      503,
      'the served model was switched while this request waited; send it again',
      'server_error',
      null,
      'model_switched',
    );
}

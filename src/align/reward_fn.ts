/**
 * A verifiable reward for RLOO (`llmts rloo --reward FILE.mjs`): an ES module run in this process, exporting either
 *
 *   reward(prompt, reply, meta?) → number            (may return a Promise)
 *   makeOracle(options) → { name, score, compare }   (a rater, oracle.ts: its score is the reward)
 *
 * `prompt` is the conversation so far (`[{role, content}, …]`, ending with the user turn), `reply` the decoded reply
 * without its stop token, `meta.finishReason` 'stop' or 'length'. A module of neither shape, one that cannot be
 * imported, or a call that throws or returns no finite number is a RewardFunctionError naming the file.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TrlMessage } from '../data/trl.js';
import { LlmtsError } from '../util/errors.js';
import { loadOracle, OracleError, type ReplyMeta } from './oracle.js';

/** A reward module that breaks its contract: which file, what was wrong. */
export class RewardFunctionError extends LlmtsError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('E_REWARD_FN', `reward function ${file}: ${message}`, options);
    this.file = file;
  }
}

/** A loaded reward function. */
export interface RewardFunction {
  /** The module file (absolute) and what it is called in logs. */
  file: string;
  name: string;
  score(prompt: TrlMessage[], reply: string, meta?: ReplyMeta): Promise<number>;
}

const SHAPE =
  'a reward module exports reward(prompt, reply) → number, or makeOracle(options) → { name, score, compare }';

/** Import a reward module (see the header) and check its shape. `seed` goes to makeOracle. */
export async function loadRewardFunction(file: string, o: { seed?: number } = {}): Promise<RewardFunction> {
  const abs = path.resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RewardFunctionError(
      file,
      code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(abs)
        ? 'no such file'
        : `cannot import it: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
  const fn = mod['reward'];
  if (typeof fn === 'function') {
    const f = fn as (p: TrlMessage[], r: string, m?: ReplyMeta) => unknown;
    return {
      file: abs,
      name: path.basename(abs),
      async score(prompt, reply, meta) {
        let v: unknown;
        try {
          v = await f(prompt, reply, meta);
        } catch (e) {
          throw new RewardFunctionError(file, `reward threw: ${(e as Error).message ?? String(e)}`, { cause: e });
        }
        if (typeof v !== 'number' || !Number.isFinite(v))
          throw new RewardFunctionError(file, `reward returned ${JSON.stringify(v) ?? String(v)}, not a finite number`);
        return v;
      },
    };
  }
  if (typeof mod['makeOracle'] !== 'function') throw new RewardFunctionError(file, `exports neither (${SHAPE})`);
  try {
    const o2 = await loadOracle(abs, o.seed !== undefined ? { seed: o.seed } : {});
    return {
      file: abs,
      name: o2.name,
      async score(prompt, reply, meta) {
        try {
          return await o2.score(prompt, reply, meta);
        } catch (e) {
          throw e instanceof OracleError
            ? new RewardFunctionError(file, e.message.replace(/^rater [^:]*: /, ''), { cause: e })
            : e;
        }
      },
    };
  } catch (e) {
    throw e instanceof OracleError
      ? new RewardFunctionError(file, e.message.replace(/^rater [^:]*: /, ''), { cause: e })
      : e;
  }
}

/**
 * Speculative-decoding flags, spelled as llama.cpp's: `--model-draft <dir|gguf>` (a small model with the same
 * tokenizer drafts), `--lookup` (prompt lookup drafts: no second model), `--draft-max <n>` (most drafted tokens per
 * check, default 8), `--draft-p-min <p>` (a draft model stops drafting below this probability, default 0.75). The
 * result is the engine's `speculative` option (src/generate/speculative.ts): the output is the same as without it.
 * A draft model whose tokenizer differs from the model's is refused, naming the first id where they part.
 */
import path from 'node:path';
import { type Command, Option } from 'commander';
import { DraftModel, PromptLookup, type SpeculativeOptions } from '../generate/speculative.js';
import { ConfigError } from '../util/errors.js';
import type { TextTokenizer } from '../tokenizer/index.js';
import type { CausalLM } from '../model/model.js';

export interface SpeculativeFlags {
  modelDraft?: string;
  lookup?: boolean;
  draftMax?: number;
  draftPMin?: number;
}

/** A number flag's value; a bad one is a ConfigError naming the flag (generate.ts's numberFlag, kept apart: no cycle). */
function numberFlag(flag: string, integer = false): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x)))
      throw new ConfigError(flag, `expected ${integer ? 'an integer' : 'a number'}, got '${v}'`);
    return x;
  };
}

/** The default of --draft-p-min (llama.cpp's). */
export const DRAFT_P_MIN = 0.75;

/** Add the four flags to a command. */
export function addSpeculativeFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--model-draft <dir>',
        'speculative decoding: a small model with the same tokenizer drafts tokens that the model checks in one step',
      ),
    )
    .addOption(new Option('--lookup', "speculative decoding: draft by looking the text's last tokens up earlier in it"))
    .addOption(
      new Option('--draft-max <n>', 'most drafted tokens per check (1..64; default 8)').argParser(
        numberFlag('--draft-max', true),
      ),
    )
    .addOption(
      new Option(
        '--draft-p-min <p>',
        `--model-draft stops drafting below this probability (default ${DRAFT_P_MIN})`,
      ).argParser(numberFlag('--draft-p-min')),
    );
}

/** The flags checked before anything is loaded: which drafter, and settings that belong to it. */
export function checkSpeculativeFlags(f: SpeculativeFlags): void {
  if (f.modelDraft !== undefined && f.lookup)
    throw new ConfigError('--lookup', 'give one drafter: --model-draft or --lookup, not both');
  const drafter = f.modelDraft !== undefined || !!f.lookup;
  if (f.draftMax !== undefined && !drafter)
    throw new ConfigError('--draft-max', 'needs a drafter: --model-draft <dir> or --lookup');
  if (f.draftMax !== undefined && !(f.draftMax >= 1 && f.draftMax <= 64))
    throw new ConfigError('--draft-max', `expected an integer in 1..64, got ${f.draftMax}`);
  if (f.draftPMin !== undefined && f.modelDraft === undefined)
    throw new ConfigError('--draft-p-min', 'applies to --model-draft only');
  if (f.draftPMin !== undefined && !(f.draftPMin >= 0 && f.draftPMin <= 1))
    throw new ConfigError('--draft-p-min', `expected a probability in [0, 1], got ${f.draftPMin}`);
}

/**
 * Refuse a draft tokenizer that is not the model's: the same ids must spell the same bytes (llama.cpp checks the
 * same before it drafts). Both without a tokenizer (ids only) is allowed.
 */
export function checkDraftTokenizer(target: TextTokenizer | null, draft: TextTokenizer | null, draftDir: string): void {
  const file = path.join(draftDir, 'tokenizer.json');
  if (!target || !draft) {
    if (target || draft)
      throw new ConfigError(
        '--model-draft',
        `${target ? 'the draft model has no tokenizer' : 'the model has no tokenizer'}; both need the same one`,
        file,
      );
    return;
  }
  if (target.vocabSize !== draft.vocabSize)
    throw new ConfigError(
      '--model-draft',
      `the draft model's tokenizer has ${draft.vocabSize} ids, the model's ${target.vocabSize}: they must be the same tokenizer`,
      file,
    );
  const bytes = (t: TextTokenizer, id: number): Uint8Array | null => {
    try {
      return t.tokenBytes(id);
    } catch {
      return null; // an id with no token (a gap in the vocabulary)
    }
  };
  for (let id = 0; id < target.vocabSize; id++) {
    const a = bytes(target, id),
      b = bytes(draft, id);
    const same = a === null || b === null ? a === b : a.length === b.length && a.every((x, i) => x === b[i]);
    if (!same || target.isSpecial(id) !== draft.isSpecial(id))
      throw new ConfigError(
        '--model-draft',
        `the draft model's tokenizer differs from the model's at id ${id} (${JSON.stringify(draft.decode([id]))} vs ` +
          `${JSON.stringify(target.decode([id]))}): they must be the same tokenizer`,
        file,
      );
  }
}

/** The `speculative` option the flags ask for (after checkSpeculativeFlags), with the draft model loaded, or undefined. */
export function speculativeFromFlags(f: SpeculativeFlags, draftModel: CausalLM | null): SpeculativeOptions | undefined {
  const maxDraft = f.draftMax !== undefined ? { maxDraft: f.draftMax } : {};
  if (f.lookup) return { drafter: new PromptLookup(), ...maxDraft };
  if (draftModel) return { drafter: new DraftModel(draftModel, { pMin: f.draftPMin ?? DRAFT_P_MIN }), ...maxDraft };
  return undefined;
}

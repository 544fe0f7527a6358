/**
 * Preference data for `llmts reward` and `llmts dpo`: TRL preference rows (plain or conversational, optional
 * `margin`) and ranking rows (expanded into their C(K,2) pairs, src/data/trl.ts `rankingToPairs`) → token-id pairs
 * grouped by prompt.
 *
 * A pair is encoded as SFT encodes a prompt/completion row (sft_data.ts `encodeSftRow`): prompt + chosen and
 * prompt + rejected, each rendered with the model's chat template (conversational) or concatenated with EOS appended
 * (plain), as TRL does. The prompt ids run up to the first reply token; a completion runs from there through its
 * last loss token (the end-of-turn marker, or EOS), so the reward is read at that token and DPO's log-probabilities
 * sum exactly the reply's tokens. Pairs longer than maxLength are dropped and counted (TRL filters them too).
 *
 * Every pair of one prompt (the same prompt text or messages) belongs to one group; batches take whole groups, and
 * the held-out split takes whole groups, so no prompt is on both sides.
 */
import type { ChatTemplate } from '../chat/template.js';
import {
  rankingToPairs,
  readTrlDataset,
  TrlRowError,
  type PreferenceRow,
  type PromptCompletionRow,
  type RankingRow,
  type TrlDataset,
  type TrlKind,
} from '../data/trl.js';
import { ConfigError } from '../util/errors.js';
import { encodeSftRow, type SftCodec } from './sft_data.js';

/** One preference pair in token ids. */
export interface PrefPair {
  /** The prompt, through the template's generation prompt (≥ 1 token). */
  prompt: number[];
  /** The preferred reply (through its end-of-turn marker / EOS). */
  chosen: number[];
  rejected: number[];
  /** How much better chosen is (TRL's `margin`; 0 when the row has none). */
  margin: number;
  /** Index of the pair's prompt group. */
  group: number;
}

/** Pairs and their groups (pair indices of each prompt, in file order). */
export interface PrefSet {
  pairs: PrefPair[];
  groups: number[][];
  /** Pairs dropped as longer than maxLength. */
  dropped: number;
}

/** Prompt ids and completion ids of prompt + completion (see the header; KTO's rows are encoded the same way). */
export function splitReply(
  prompt: PreferenceRow['prompt'],
  reply: PreferenceRow['chosen'],
  template: ChatTemplate,
  codec: SftCodec,
  field: string,
): { prompt: number[]; completion: number[] } {
  const x = encodeSftRow({ prompt, completion: reply } satisfies PromptCompletionRow, template, codec);
  const first = x.mask.indexOf(1);
  const last = x.mask.lastIndexOf(1);
  if (first < 0) throw new ConfigError(field, 'no reply tokens: nothing to compare');
  if (first === 0) throw new ConfigError('prompt', 'empty: the reply needs at least one prompt token before it');
  return { prompt: x.ids.slice(0, first), completion: x.ids.slice(first, last + 1) };
}

/** Encode one preference row into a pair (group −1; the caller assigns it). */
export function encodePreferenceRow(row: PreferenceRow, template: ChatTemplate, codec: SftCodec): PrefPair {
  const c = splitReply(row.prompt, row.chosen, template, codec, 'chosen');
  const r = splitReply(row.prompt, row.rejected, template, codec, 'rejected');
  if (c.prompt.length !== r.prompt.length || c.prompt.some((t, i) => t !== r.prompt[i]))
    throw new ConfigError(
      'prompt',
      'the prompt encodes differently before the chosen and the rejected reply (the chat template renders them apart)',
    );
  return { prompt: c.prompt, chosen: c.completion, rejected: r.completion, margin: row.margin ?? 0, group: -1 };
}

/** Read a preference or ranking JSONL file (bad rows: a TrlRowError, or skipped and logged with badRows = 'skip'). */
export function readPreferenceFile(
  file: string,
  badRows: 'error' | 'skip',
  log: (s: string) => void,
): TrlDataset<'preference' | 'ranking'> {
  return readTrlFile(file, ['preference', 'ranking'], badRows, log);
}

/** Read a TRL JSONL file of the types `expect`, logging skipped bad rows and ignored fields. */
export function readTrlFile<K extends TrlKind>(
  file: string,
  expect: readonly K[],
  badRows: 'error' | 'skip',
  log: (s: string) => void,
): TrlDataset<K> {
  const ds = readTrlDataset<K>(file, { expect, onBadRow: badRows });
  if (ds.skipped.length) {
    const first = ds.skipped.slice(0, 3).map((s) => `line ${s.line}${s.field ? ` (${s.field})` : ''}: ${s.message}`);
    log(
      `warning: ${file}: ${ds.skipped.length} bad row${ds.skipped.length === 1 ? '' : 's'} skipped (badRows=skip); ${first.join('; ')}${ds.skipped.length > 3 ? '; …' : ''}`,
    );
  }
  const ignored = Object.entries(ds.ignoredFields);
  if (ignored.length)
    log(
      `note: ${file}: fields outside the ${ds.kind} type ignored: ${ignored.map(([k, n]) => `"${k}" (${n} rows)`).join(', ')}`,
    );
  return ds;
}

/**
 * Encode the rows of datasets into grouped pairs. A row that cannot be encoded is a TrlRowError naming its file and
 * line (badRows = 'skip': skipped and counted in `skipped`). Pairs whose prompt + longer reply exceed maxLength are
 * dropped and counted.
 */
export function encodePreferenceSets(
  sets: readonly TrlDataset<'preference' | 'ranking'>[],
  template: ChatTemplate,
  codec: SftCodec,
  o: { maxLength: number; badRows: 'error' | 'skip' },
): PrefSet & { skipped: number } {
  const out: PrefSet & { skipped: number } = { pairs: [], groups: [], dropped: 0, skipped: 0 };
  const byPrompt = new Map<string, number>();
  for (const ds of sets) {
    ds.rows.forEach((row, i) => {
      const rows = ds.kind === 'ranking' ? rankingToPairs(row as RankingRow) : [row as PreferenceRow];
      let pairs: PrefPair[];
      try {
        pairs = rows.map((r) => encodePreferenceRow(r, template, codec));
      } catch (e) {
        if (!(e instanceof ConfigError) || e.field === 'chat_template') throw e;
        if (o.badRows === 'error')
          throw new TrlRowError(ds.file, ds.lines[i]!, e.field, e.message.replace(/^[^:]*: /, ''));
        out.skipped++;
        return;
      }
      const key = JSON.stringify(rows[0]!.prompt);
      let g = byPrompt.get(key);
      for (const p of pairs) {
        if (p.prompt.length + Math.max(p.chosen.length, p.rejected.length) > o.maxLength) {
          out.dropped++;
          continue;
        }
        if (g === undefined) {
          g = out.groups.length;
          byPrompt.set(key, g);
          out.groups.push([]);
        }
        p.group = g;
        out.groups[g]!.push(out.pairs.length);
        out.pairs.push(p);
      }
    });
  }
  return out;
}

/** How many of G prompt groups the held-out split takes: the last `fraction` (at least one, leaving at least one). */
export function heldOutGroupCount(G: number, fraction: number): number {
  if (G < 2)
    throw new ConfigError(
      'evalFraction',
      `${G} prompt${G === 1 ? '' : 's'}: too few to hold any out; give more rows or --evalData`,
    );
  return Math.min(G - 1, Math.max(1, Math.round(G * fraction)));
}

/**
 * Split grouped pairs into training and held-out sets: the last `fraction` of the groups (at least one, and at
 * least one left to train on), whole groups only. Indices in the returned sets are renumbered from 0.
 */
export function splitByGroup(set: PrefSet, fraction: number): { train: PrefSet; eval: PrefSet } {
  const G = set.groups.length;
  const nEval = heldOutGroupCount(G, fraction);
  const take = (gs: number[][]): PrefSet => {
    const pairs: PrefPair[] = [];
    const groups = gs.map((g, gi) => g.map((i) => (pairs.push({ ...set.pairs[i]!, group: gi }), pairs.length - 1)));
    return { pairs, groups, dropped: 0 };
  };
  return { train: take(set.groups.slice(0, G - nEval)), eval: take(set.groups.slice(G - nEval)) };
}

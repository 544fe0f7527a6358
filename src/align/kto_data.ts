/**
 * KTO's data (what `llmts kto` trains on), as TRL's KTOTrainer prepares them: unpaired preference rows
 * `{"prompt", "completion", "label": true|false}` (thumbs up / down; plain or conversational), and preference rows
 * `{"prompt", "chosen", "rejected"}` unpaired into a desirable and an undesirable row each (TRL's
 * `unpair_preference_dataset`). A row is encoded as a preference pair's reply is (pref_data.ts `splitReply`: the
 * chat template, or EOS appended to plain text); rows longer than maxLength are dropped and counted.
 *
 * The reference point needs mismatched pairs: TRL shuffles the rows once, cuts them into batches of
 * `per_device_train_batch_size` and gives row j of a batch the completion of row j − 1 (the batch's last row for
 * j = 0: `_get_kl_dataset`, a +1 offset), so the mismatched completions of a batch are the batch's own completions,
 * each paired with another prompt. Here too: the training rows are shuffled once from the seed and cut into fixed
 * batches of `batchSize` rows (a last batch of one row joins the one before: a row cannot be its own partner), and
 * each row carries its partner's completion (cut to fit maxLength after its prompt). The batches are fixed, so the
 * reference log-probabilities of every matched and mismatched pair are computed once before training; each epoch
 * visits the fixed batches in a new order (pref_batches.ts, one batch a group). The held-out rows are cut the same
 * way, in file order. The split holds out whole prompts (the last evalFraction of them) unless evalData is given.
 */
import crypto from 'node:crypto';
import type { ChatTemplate } from '../chat/template.js';
import { TrlRowError, type PreferenceRow, type TrlDataset, type UnpairedPreferenceRow } from '../data/trl.js';
import { ConfigError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { PrefBatcher, prefEvalBatches } from './pref_batches.js';
import { heldOutGroupCount, readTrlFile, splitReply } from './pref_data.js';
import type { PrefDataArgs, PrefRunData } from './pref_run.js';
import type { SftCodec } from './sft_data.js';
import type { KtoConfig } from './kto_settings.js';

/** One unpaired row in token ids. */
export interface KtoRow {
  /** The prompt, through the template's generation prompt (≥ 1 token). */
  prompt: number[];
  /** The reply (through its end-of-turn marker / EOS). */
  completion: number[];
  /** Thumbs up (TRL's label true) or down. */
  desirable: boolean;
  /** Index of the row's prompt group. */
  group: number;
  /** The completion of this row's partner in its fixed batch (the mismatched pair of the KL estimate). */
  kl: number[];
}

/** Rows and their prompt groups (row indices of each prompt, in file order). */
export interface KtoSet {
  rows: KtoRow[];
  groups: number[][];
  /** Rows dropped as longer than maxLength. */
  dropped: number;
  /** Rows that could not be encoded (badRows = 'skip'). */
  skipped: number;
}

/** Tokens of a row as the objective computes them: prompt + completion, prompt + the partner's completion. */
export function rowTokens(r: KtoRow): number {
  return 2 * r.prompt.length + r.completion.length + r.kl.length;
}

/** A row as unpaired rows: itself, or a preference row's chosen (desirable) and rejected (undesirable) reply. */
export function unpairRow(row: UnpairedPreferenceRow | PreferenceRow): UnpairedPreferenceRow[] {
  if ('label' in row) return [row];
  return [
    { prompt: row.prompt, completion: row.chosen, label: true },
    { prompt: row.prompt, completion: row.rejected, label: false },
  ];
}

/** Read an unpaired preference (or preference) JSONL file; bad rows as readTrlFile (pref_data.ts). */
export function readUnpairedFile(
  file: string,
  badRows: 'error' | 'skip',
  log: (s: string) => void,
): TrlDataset<'unpaired_preference' | 'preference'> {
  return readTrlFile(file, ['unpaired_preference', 'preference'], badRows, log);
}

/**
 * Encode the rows of datasets, grouped by prompt (`kl` left empty: `assignKlPartners` fills it). A row that cannot
 * be encoded is a TrlRowError naming its file and line (badRows = 'skip': counted); rows whose prompt + completion
 * exceed maxLength are dropped and counted.
 */
export function encodeUnpairedSets(
  sets: readonly TrlDataset<'unpaired_preference' | 'preference'>[],
  template: ChatTemplate,
  codec: SftCodec,
  o: { maxLength: number; badRows: 'error' | 'skip' },
): KtoSet {
  const out: KtoSet = { rows: [], groups: [], dropped: 0, skipped: 0 };
  const byPrompt = new Map<string, number>();
  for (const ds of sets) {
    ds.rows.forEach((row, i) => {
      const rows = unpairRow(row);
      let enc: { prompt: number[]; completion: number[]; desirable: boolean }[];
      try {
        enc = rows.map((r) => ({
          ...splitReply(r.prompt, r.completion, template, codec, 'label' in row ? 'completion' : 'chosen'),
          desirable: r.label,
        }));
      } catch (e) {
        if (!(e instanceof ConfigError) || e.field === 'chat_template') throw e;
        if (o.badRows === 'error')
          throw new TrlRowError(ds.file, ds.lines[i]!, e.field, e.message.replace(/^[^:]*: /, ''));
        out.skipped++;
        return;
      }
      const key = JSON.stringify(row.prompt);
      for (const r of enc) {
        if (r.prompt.length + r.completion.length > o.maxLength) {
          out.dropped++;
          continue;
        }
        let g = byPrompt.get(key);
        if (g === undefined) {
          g = out.groups.length;
          byPrompt.set(key, g);
          out.groups.push([]);
        }
        out.groups[g]!.push(out.rows.length);
        out.rows.push({ ...r, group: g, kl: [] });
      }
    });
  }
  return out;
}

/**
 * Fixed batches of `n` rows, `size` rows each (≥ 2), in the order `order` (a permutation of 0..n−1; identity when
 * null): cut in order, and a last batch of one row joins the batch before it.
 */
export function fixedBatches(n: number, size: number, order: readonly number[] | null): number[][] {
  if (size < 2) throw new ConfigError('batchSize', `must be ≥ 2 for KTO (the KL estimate pairs rows), got ${size}`);
  const idx = order ? [...order] : Array.from({ length: n }, (_, i) => i);
  const out: number[][] = [];
  for (let s = 0; s < n; s += size) out.push(idx.slice(s, s + size));
  if (out.length > 1 && out[out.length - 1]!.length === 1) out[out.length - 2]!.push(...out.pop()!);
  return out;
}

/** A permutation of 0..n−1 drawn from `seed` (Fisher–Yates). */
export function shuffledOrder(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Give each row of each batch its partner's completion: row j of a batch gets row j − 1's (the first row the last
 * row's), TRL's +1 offset; cut to fit after the row's prompt in maxLength tokens.
 */
export function assignKlPartners(rows: KtoRow[], batches: readonly number[][], maxLength: number): void {
  for (const b of batches) {
    if (b.length < 2) throw new ConfigError('data', 'a KTO batch needs at least 2 rows (the KL estimate pairs rows)');
    b.forEach((i, j) => {
      const r = rows[i]!;
      r.kl = rows[b[(j - 1 + b.length) % b.length]!]!.completion.slice(0, maxLength - r.prompt.length);
    });
  }
}

/** Rows of whole groups, renumbered (rows and groups) from 0. */
function take(set: KtoSet, groups: readonly number[][]): KtoSet {
  const rows: KtoRow[] = [];
  const gs = groups.map((g, gi) => g.map((i) => (rows.push({ ...set.rows[i]!, group: gi }), rows.length - 1)));
  return { rows, groups: gs, dropped: 0, skipped: 0 };
}

function labelCounts(rows: readonly KtoRow[]): { d: number; u: number } {
  const d = rows.filter((r) => r.desirable).length;
  return { d, u: rows.length - d };
}

/** The data of `llmts kto` (see the header) for the preference runner (pref_run.ts). */
export function loadKtoData(a: PrefDataArgs<KtoConfig>): PrefRunData<KtoRow> {
  const { c, template, codec, maxLength, log } = a;
  const sets = c.data.map((f) => readUnpairedFile(f, c.badRows, log));
  const enc = encodeUnpairedSets(sets, template, codec, { maxLength, badRows: c.badRows });
  let train: KtoSet, held: KtoSet;
  let skippedRows = sets.reduce((n, d) => n + d.skipped.length, 0) + enc.skipped;
  let dropped = enc.dropped;
  if (c.evalData) {
    const e = encodeUnpairedSets([readUnpairedFile(c.evalData, c.badRows, log)], template, codec, {
      maxLength,
      badRows: c.badRows,
    });
    train = enc;
    held = e;
    skippedRows += e.skipped;
    dropped += e.dropped;
  } else {
    const G = enc.groups.length;
    const nEval = heldOutGroupCount(G, c.evalFraction);
    train = take(enc, enc.groups.slice(0, G - nEval));
    held = take(enc, enc.groups.slice(G - nEval));
  }
  if (train.rows.length < 2)
    throw new ConfigError('data', `${c.data.join(', ')}: ${train.rows.length} usable rows; KTO needs at least 2`);
  if (held.rows.length < 2)
    throw new ConfigError(
      'evalData',
      `${c.evalData || 'the held-out prompts'}: ${held.rows.length} usable rows; KTO needs at least 2 to evaluate on`,
    );
  if (dropped)
    log(`warning: ${dropped} row${dropped === 1 ? '' : 's'} longer than maxLength = ${maxLength} tokens dropped`);
  const unencodable = skippedRows - sets.reduce((n, d) => n + d.skipped.length, 0);
  if (unencodable)
    log(`warning: ${unencodable} row${unencodable === 1 ? '' : 's'} that could not be encoded skipped (badRows=skip)`);

  const trainBatches = fixedBatches(train.rows.length, c.batchSize, shuffledOrder(train.rows.length, c.seed));
  const evalGroups = fixedBatches(held.rows.length, c.batchSize, null);
  assignKlPartners(train.rows, trainBatches, maxLength);
  assignKlPartners(held.rows, evalGroups, maxLength);
  const rows = [...train.rows, ...held.rows];
  const fingerprint = crypto
    .createHash('sha256')
    .update(JSON.stringify(rows.map((r) => [r.prompt, r.completion, r.desirable, r.kl, r.group])))
    .digest('hex');

  const tc = labelCounts(train.rows),
    hc = labelCounts(held.rows);
  if (tc.d === 0 || tc.u === 0)
    log(`warning: the training rows are all ${tc.d ? 'desirable' : 'undesirable'}: KTO learns from both kinds`);
  // TRL's advice: λ_D·n_D / (λ_U·n_U) within [1, 4/3]
  const ratio = (c.desirableWeight * tc.d) / (c.undesirableWeight * tc.u);
  if (tc.d && tc.u && (ratio < 1 || ratio > 4 / 3))
    log(
      `note: desirableWeight·desirable / (undesirableWeight·undesirable) = ${ratio.toFixed(2)}; TRL advises weights that bring it within [1, 4/3]`,
    );
  const evalBatches = prefEvalBatches(held.rows, evalGroups, 1, train.rows.length, c.evalBatches, rowTokens);
  const finalEvalBatches =
    c.finalEvalBatches > c.evalBatches
      ? prefEvalBatches(held.rows, evalGroups, 1, train.rows.length, c.finalEvalBatches, rowTokens)
      : undefined;
  return {
    items: rows,
    nTrain: train.rows.length,
    fingerprint,
    batcher: new PrefBatcher(train.rows, trainBatches, 1, c.seed, rowTokens),
    evalBatches,
    ...(finalEvalBatches ? { finalEvalBatches } : {}),
    epochUnits: trainBatches.length,
    unitsPerBatch: 1,
    unit: 'rows',
    noun: 'rows',
    counts: {
      trainPairs: train.rows.length,
      evalPairs: held.rows.length,
      trainPrompts: train.groups.length,
      evalPrompts: held.groups.length,
      skippedRows,
      dropped,
    },
    describe: `data: ${sets[0]!.kind} (${sets[0]!.form}) rows → ${train.rows.length} training rows (${tc.d} desirable, ${tc.u} undesirable; ${train.groups.length} prompts, ${trainBatches.length} fixed batches) / ${held.rows.length} held-out rows (${hc.d} desirable, ${hc.u} undesirable; ${held.groups.length} prompts)`,
  };
}

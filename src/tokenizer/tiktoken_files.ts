/**
 * tiktoken rank files (`cl100k_base.tiktoken`, …): one "base64-of-token-bytes rank" per line, the rank being the
 * token id; no merges and no special tokens (those come separately). Merges are recovered the way tiktoken's
 * `_educational.py` does: a token of rank r is what BPE with only the ranks below r makes of its bytes, which must
 * be exactly two earlier tokens; that pair is merge r. Also reads js-tiktoken's bundled rank format
 * (`js-tiktoken/ranks/*`: lines "<tag> <first rank> <base64> <base64> …").
 */
import * as fsp from 'node:fs/promises';
import { FileFormatError } from '../util/errors.js';
import { bytesKey } from './bytes.js';
import { PairTable } from './pair_table.js';
import type { PatternName } from './patterns.js';
import { Tokenizer, type BpeTokenizerSpec } from './tokenizer.js';
import type { SpecialToken, TokenizerConfig } from './types.js';

export interface RankedToken {
  bytes: Uint8Array;
  rank: number;
}

function fromBase64(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Parse the text of a tiktoken rank file. */
export function parseTiktokenRanks(text: string, file = 'ranks.tiktoken'): RankedToken[] {
  const out: RankedToken[] = [];
  const lines = text.split('\n');
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!.trim();
    if (line === '') continue;
    const parts = line.split(' ');
    const bytes = parts.length === 2 ? fromBase64(parts[0]!) : null;
    const rank = parts.length === 2 ? Number(parts[1]) : NaN;
    if (bytes === null || bytes.length === 0 || !Number.isInteger(rank) || rank < 0) {
      throw new FileFormatError(
        'E_TOKENIZER_FILE',
        file,
        `expected "<base64 token> <rank>", got ${JSON.stringify(line.slice(0, 80))}`,
        `line ${ln + 1}`,
      );
    }
    out.push({ bytes, rank });
  }
  return out;
}

/** Parse js-tiktoken's compressed `bpe_ranks` string. */
export function parseJsTiktokenRanks(bpeRanks: string, file = 'js-tiktoken ranks'): RankedToken[] {
  const out: RankedToken[] = [];
  const lines = bpeRanks.split('\n');
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!;
    if (line === '') continue;
    const [, offsetStr, ...tokens] = line.split(' ');
    const offset = Number(offsetStr);
    if (!Number.isInteger(offset))
      throw new FileFormatError('E_TOKENIZER_FILE', file, 'expected "<tag> <first rank> <base64>…"', `line ${ln + 1}`);
    tokens.forEach((t, i) => {
      const bytes = fromBase64(t);
      if (bytes === null || bytes.length === 0)
        throw new FileFormatError('E_TOKENIZER_FILE', file, `bad base64 token ${JSON.stringify(t)}`, `line ${ln + 1}`);
      out.push({ bytes, rank: offset + i });
    });
  }
  return out;
}

/** Write ranks in the tiktoken file format. */
export function formatTiktokenRanks(ranks: readonly RankedToken[]): string {
  return ranks.map((r) => `${Buffer.from(r.bytes).toString('base64')} ${r.rank}`).join('\n') + '\n';
}

export interface TiktokenOptions {
  pattern?: PatternName | { patterns: readonly string[] };
  /** Special token text → id (tiktoken keeps these outside the rank file). */
  specialTokens?: Record<string, number>;
  config?: TokenizerConfig;
  file?: string;
}

/** Build a BPE spec from ranked tokens (ranks are the ids). */
export function specFromRanks(ranks: readonly RankedToken[], options: TiktokenOptions = {}): BpeTokenizerSpec {
  const file = options.file ?? 'ranks.tiktoken';
  const bad = (field: string, msg: string): never => {
    throw new FileFormatError('E_TOKENIZER_FILE', file, msg, field);
  };
  const sorted = [...ranks].sort((a, b) => a.rank - b.rank);
  const rankOf = new Map<string, number>();
  const tokenBytes: (Uint8Array | undefined)[] = [];
  for (const t of sorted) {
    if (tokenBytes[t.rank] !== undefined) bad(`rank ${t.rank}`, 'two tokens have this rank');
    const key = bytesKey(t.bytes);
    if (rankOf.has(key)) bad(`rank ${t.rank}`, `the same bytes as rank ${rankOf.get(key)}`);
    rankOf.set(key, t.rank);
    tokenBytes[t.rank] = t.bytes;
  }
  const byteId = new Int32Array(256).fill(-1);
  for (const t of sorted) if (t.bytes.length === 1) byteId[t.bytes[0]!] = t.rank;
  for (let b = 0; b < 256; b++)
    if (byteId[b]! < 0)
      bad(
        'ranks',
        `no token for the single byte 0x${b.toString(16).padStart(2, '0')}; a byte-level vocabulary needs all 256`,
      );
  // Fast path: merge with the pair table built so far (ids, no strings); a token must come out as exactly two
  // earlier tokens. Where it does not, fall back to tiktoken's own rule (ranks of concatenations).
  const table = new PairTable(sorted.length);
  const merges: [number, number][] = [];
  const mergeResult: number[] = [];
  const ids: number[] = [];
  for (const t of sorted) {
    if (t.bytes.length < 2) continue;
    ids.length = 0;
    for (const b of t.bytes) ids.push(byteId[b]!);
    for (;;) {
      let best = -1;
      let bestRank = 0x7fffffff;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = table.get(ids[i]!, ids[i + 1]!);
        if (r >= 0 && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      ids.splice(best, 2, mergeResult[bestRank]!);
    }
    let pair: [number, number];
    if (ids.length === 2) pair = [ids[0]!, ids[1]!];
    else {
      const parts = bpeBelowRank(t.bytes, t.rank, rankOf);
      if (parts.length !== 2)
        bad(
          `rank ${t.rank}`,
          `token cannot be made by merging two lower-ranked tokens (BPE gives ${parts.length} parts)`,
        );
      pair = [rankOf.get(parts[0]!)!, rankOf.get(parts[1]!)!];
    }
    if (table.get(pair[0], pair[1]) < 0) table.set(pair[0], pair[1], merges.length);
    merges.push(pair);
    mergeResult.push(t.rank);
  }
  const specialTokens: SpecialToken[] = Object.entries(options.specialTokens ?? {}).map(([content, id]) => ({
    id,
    content,
    special: true,
  }));
  return {
    tokenBytes,
    merges,
    specialTokens,
    pattern: options.pattern ?? 'gpt2',
    ...(options.config ? { config: options.config } : {}),
    fail: (field, msg) => bad(field, msg),
  };
}

/** tiktoken's byte-pair merge restricted to ranks below `maxRank`; returns the parts as Latin-1 keys. */
function bpeBelowRank(bytes: Uint8Array, maxRank: number, rankOf: Map<string, number>): string[] {
  const parts: string[] = Array.from(bytes, (b) => String.fromCharCode(b));
  for (;;) {
    let best = -1;
    let bestRank = maxRank;
    for (let i = 0; i < parts.length - 1; i++) {
      const r = rankOf.get(parts[i]! + parts[i + 1]!);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return parts;
    parts.splice(best, 2, parts[best]! + parts[best + 1]!);
  }
}

/** Import a tiktoken rank file. */
export async function importTiktokenFile(
  file: string,
  options: Omit<TiktokenOptions, 'file'> = {},
): Promise<Tokenizer> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(
      code === 'ENOENT' ? 'E_FILE_MISSING' : 'E_FILE_READ',
      file,
      `cannot read tiktoken rank file: ${(e as Error).message}`,
    );
  }
  return new Tokenizer(specFromRanks(parseTiktokenRanks(text, file), { ...options, file }));
}

/**
 * A byte-level BPE tokenizer in GGUF metadata, as llama.cpp reads it (llama.cpp src/llama-vocab.cpp; written as
 * convert_hf_to_gguf.py's `_set_vocab_gpt2` writes it):
 *
 *   tokenizer.ggml.model        "gpt2" (byte-level BPE) or "llama" (SentencePiece-style BPE: ./gguf_spm.ts)
 *   tokenizer.ggml.pre          the pre-tokenizer (split pattern): "gpt-2" ⇄ our 'gpt2'; "llama-bpe" ⇄ 'llama3'
 *                               (cl100k's pattern with ignore_merges); "dbrx" ⇄ 'cl100k' (the same pattern, merges
 *                               always applied); "qwen2" ⇄ Qwen2's pattern (cl100k's with single digits)
 *   tokenizer.ggml.tokens       string[]: byte-level strings ('Ġthe') for ordinary tokens, the text of special tokens
 *   tokenizer.ggml.token_type   i32[]: 1 normal, 3 control (special), 4 user-defined (added, not special), 5 unused
 *   tokenizer.ggml.merges       string[] "left right" in priority order
 *   tokenizer.ggml.bos_token_id / eos_token_id / padding_token_id   u32
 *   tokenizer.ggml.add_bos_token   bool: whether a BOS goes before a text (./leading_bos.ts: add_bos_token, or Llama 3's
 *                               TemplateProcessing); read back as tokenizer_config's add_bos_token
 *   tokenizer.ggml.add_eos_token   bool false
 *   tokenizer.chat_template     the Jinja chat template
 *
 * The token list is padded to the model's vocabulary with unused `[PAD{id}]` tokens (a model may have more rows
 * than its tokenizer has ids, as convert_hf_to_gguf.py does). A character-level tokenizer has no GGUF form llama.cpp
 * can run, so it is refused with a named error.
 */
import { FileFormatError, UnsupportedError } from '../util/errors.js';
import type { GgufFile, GgufValue } from '../formats/gguf.js';
import { byteLevelToBytes, bytesToByteLevel, decodeUtf8 } from './bytes.js';
import type { PatternName } from './patterns.js';
import { Tokenizer } from './tokenizer.js';
import { leadingBos } from './leading_bos.js';
import { spmTokenizerFromGguf, spmTokenizerToGguf } from './gguf_spm.js';
import { SpmTokenizer } from './spm_tokenizer.js';
import type { SpecialToken, TextTokenizer, TokenizerConfig } from './types.js';

import { TOKEN_TYPE } from './gguf_token_type.js';

export { TOKEN_TYPE } from './gguf_token_type.js';

/** Qwen2's split pattern (its tokenizer.json): cl100k's, with digits one by one. llama.cpp's pre "qwen2". */
export const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** tokenizer.ggml.pre for each of our patterns (cl100k = Llama 3's pattern; llama.cpp's llama3 also ignores merges). */
function preOf(pattern: PatternName | null, ignoreMerges: boolean, split: readonly string[]): string | null {
  if (pattern === null) return split.length === 1 && split[0] === QWEN2_PATTERN && !ignoreMerges ? 'qwen2' : null;
  if (pattern === 'gpt2') return ignoreMerges ? null : 'gpt-2';
  if (pattern === 'cl100k' || pattern === 'llama3') return ignoreMerges ? 'llama-bpe' : 'dbrx';
  return null;
}

/** Our pattern and ignore_merges for a tokenizer.ggml.pre. */
const PRE: Readonly<Record<string, { pattern: PatternName | { patterns: string[] }; ignoreMerges: boolean }>> = {
  qwen2: { pattern: { patterns: [QWEN2_PATTERN] }, ignoreMerges: false },
  'gpt-2': { pattern: 'gpt2', ignoreMerges: false },
  'llama-bpe': { pattern: 'llama3', ignoreMerges: true },
  llama3: { pattern: 'llama3', ignoreMerges: true },
  dbrx: { pattern: 'cl100k', ignoreMerges: false },
};

/**
 * The GGUF metadata of a tokenizer (keys `tokenizer.*`) for a model of `vocabSize` rows. `ids` gives the special
 * token ids to write when the tokenizer has none of its own (a model config's bos/eos/pad ids).
 */
export function tokenizerToGguf(
  tok: TextTokenizer,
  vocabSize: number,
  ids: { bos?: number | null; eos?: number | null; pad?: number | null } = {},
): Map<string, GgufValue> {
  if (tok instanceof SpmTokenizer) return withCommonKeys(spmTokenizerToGguf(tok, vocabSize), tok, vocabSize, ids);
  if (!(tok instanceof Tokenizer))
    throw new UnsupportedError(
      'a character-level tokenizer cannot go into a GGUF file: llama.cpp reads byte-level BPE ("gpt2") vocabularies; train the model with a BPE tokenizer (llmts tokenizer train) to export it',
    );
  const pre = preOf(tok.patternName, tok.model.ignoreMerges, tok.splitPatterns);
  if (pre === null)
    throw new UnsupportedError(
      `the tokenizer's split pattern (${tok.patternName ?? 'from a file'}${tok.model.ignoreMerges ? ', ignore_merges' : ''}) has no llama.cpp pre-tokenizer; GPT-2's and Llama 3's (cl100k) are exported`,
    );
  if (tok.addPrefixSpace || tok.normalizer)
    throw new UnsupportedError('a tokenizer with add_prefix_space or a normalizer has no llama.cpp equivalent here');
  if (tok.vocabSize > vocabSize)
    throw new UnsupportedError(`the tokenizer has ${tok.vocabSize} ids but the model only ${vocabSize} rows`);
  const tokens: string[] = [];
  const types: number[] = [];
  const specials = new Map(tok.specialTokenList.map((s) => [s.id, s]));
  for (let id = 0; id < vocabSize; id++) {
    const sp = specials.get(id);
    const b = id < tok.vocabSize ? tok.model.tokenBytes[id] : undefined;
    if (sp) {
      tokens.push(sp.content);
      types.push(sp.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined);
    } else if (b) {
      tokens.push(bytesToByteLevel(b));
      types.push(TOKEN_TYPE.normal);
    } else {
      tokens.push(`[PAD${id}]`);
      types.push(TOKEN_TYPE.unused);
    }
  }
  const m = tok.model;
  const merges: string[] = [];
  for (let r = 0; r < m.mergeCount; r++) merges.push(`${tokens[m.mergeLeft[r]!]} ${tokens[m.mergeRight[r]!]}`);
  const out = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: pre }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }],
  ]);
  return withCommonKeys(out, tok, vocabSize, ids);
}

/** The keys both vocabulary kinds write: special token ids, add_bos_token / add_eos_token, the chat template. */
function withCommonKeys(
  out: Map<string, GgufValue>,
  tok: TextTokenizer,
  vocabSize: number,
  ids: { bos?: number | null; eos?: number | null; pad?: number | null },
): Map<string, GgufValue> {
  const id = (own: number | undefined, fallback: number | null | undefined) => {
    const v = own ?? fallback ?? undefined;
    return v !== undefined && v >= 0 && v < vocabSize ? v : undefined;
  };
  const first = leadingBos(tok); // a BOS the tokenizer's owner puts before a text (add_bos_token, Llama 3's template)
  const bos = id(first ?? tok.bosId, ids.bos),
    eos = id(tok.eosId, ids.eos),
    pad = id(tok.padId, ids.pad);
  if (bos !== undefined) out.set('tokenizer.ggml.bos_token_id', { type: 'u32', value: bos });
  if (eos !== undefined) out.set('tokenizer.ggml.eos_token_id', { type: 'u32', value: eos });
  if (pad !== undefined) out.set('tokenizer.ggml.padding_token_id', { type: 'u32', value: pad });
  out.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: first !== undefined && first === bos });
  out.set('tokenizer.ggml.add_eos_token', { type: 'bool', value: false });
  let tpl = tok.config.chatTemplate;
  if (Array.isArray(tpl)) tpl = (tpl.find((t) => t.name === 'default') ?? tpl[0])?.template;
  if (typeof tpl === 'string') out.set('tokenizer.chat_template', { type: 'string', value: tpl });
  return out;
}

/** The tokenizer of a GGUF file (its `tokenizer.*` metadata), with its chat template and special tokens in `config`. */
export function tokenizerFromGguf(g: Pick<GgufFile, 'metadata' | 'file'>): Tokenizer | SpmTokenizer {
  const file = g.file;
  const bad = (key: string, msg: string): never => {
    throw new FileFormatError('E_GGUF_TOKENIZER', file, msg, key);
  };
  const get = (key: string) => g.metadata.get(key);
  const str = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    return v.type === 'string' ? (v.value as string) : bad(key, `expected a string, got ${v.type}`);
  };
  const arr = (key: string, item: 'string' | 'int'): GgufValue['value'][] | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (v.type !== 'array' || (item === 'string') !== (v.itemType === 'string'))
      return bad(key, `expected an array of ${item === 'string' ? 'strings' : 'integers'}`);
    return v.value as GgufValue['value'][];
  };
  const model = str('tokenizer.ggml.model');
  if (model === undefined) return bad('tokenizer.ggml.model', 'this GGUF file holds no tokenizer');
  if (model !== 'gpt2' && model !== 'llama')
    throw new UnsupportedError(
      `${file} [tokenizer.ggml.model]: tokenizer "${model}" is not supported; byte-level BPE ("gpt2") and SentencePiece-style BPE ("llama") are`,
    );
  if (model === 'llama') return spmTokenizerFromGguf(g, bad, (text) => ggufTokenizerConfig(g, bad, text));
  const preName = str('tokenizer.ggml.pre') ?? 'gpt-2';
  const pre = PRE[preName];
  if (!pre)
    throw new UnsupportedError(
      `${file} [tokenizer.ggml.pre]: pre-tokenizer "${preName}" is not supported (${Object.keys(PRE).join(', ')} are)`,
    );
  const tokens = (arr('tokenizer.ggml.tokens', 'string') ?? bad('tokenizer.ggml.tokens', 'missing')) as string[];
  const types = arr('tokenizer.ggml.token_type', 'int');
  if (types && types.length !== tokens.length)
    bad('tokenizer.ggml.token_type', `${types.length} types for ${tokens.length} tokens`);
  const tokenBytes: (Uint8Array | undefined)[] = new Array(tokens.length);
  const specials: SpecialToken[] = [];
  const idOf = new Map<string, number>();
  tokens.forEach((t, id) => {
    const type = types ? Number(types[id]) : TOKEN_TYPE.normal;
    if (type === TOKEN_TYPE.control || type === TOKEN_TYPE.userDefined || type === TOKEN_TYPE.unknown) {
      specials.push({ id, content: t, special: type !== TOKEN_TYPE.userDefined });
      return;
    }
    if (type === TOKEN_TYPE.unused) return;
    const b = byteLevelToBytes(t);
    if (b === null || b.length === 0)
      bad(`tokenizer.ggml.tokens[${id}]`, `${JSON.stringify(t.slice(0, 40))} is not a byte-level token string`);
    tokenBytes[id] = b!;
    if (!idOf.has(t)) idOf.set(t, id);
  });
  const mergesRaw = (arr('tokenizer.ggml.merges', 'string') ?? []) as string[];
  const merges: [number, number][] = mergesRaw.map((m, i) => {
    const sp = m.indexOf(' ');
    const a = idOf.get(m.slice(0, sp)),
      b = idOf.get(m.slice(sp + 1));
    if (sp < 0 || a === undefined || b === undefined)
      return bad(
        `tokenizer.ggml.merges[${i}]`,
        `${JSON.stringify(m.slice(0, 40))} is not two tokens of the vocabulary`,
      );
    return [a, b];
  });
  const config = ggufTokenizerConfig(g, bad, (id) => {
    const b = tokenBytes[id];
    return b ? decodeUtf8(b) : tokens[id]!;
  });
  return new Tokenizer({
    tokenBytes,
    merges,
    specialTokens: specials,
    pattern: pre.pattern,
    ignoreMerges: pre.ignoreMerges,
    config,
    fail: (field, message) => bad(`tokenizer.ggml (${field})`, message),
  });
}

/** tokenizer_config fields from a GGUF file: special tokens, the chat template, add_bos_token, add_eos_token. */
export function ggufTokenizerConfig(
  g: Pick<GgufFile, 'metadata' | 'file'>,
  bad: (key: string, msg: string) => never,
  tokenText: (id: number) => string,
): TokenizerConfig {
  const tokensV = g.metadata.get('tokenizer.ggml.tokens');
  const count = tokensV?.type === 'array' ? tokensV.value.length : 0;
  const str = (key: string): string | undefined => {
    const v = g.metadata.get(key);
    if (v === undefined) return undefined;
    return v.type === 'string' ? (v.value as string) : bad(key, `expected a string, got ${v.type}`);
  };
  const config: TokenizerConfig = {};
  const textOf = (key: string): string | undefined => {
    const v = g.metadata.get(key);
    if (v === undefined) return undefined;
    const id = v.value;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= count)
      return bad(key, `expected a token id below ${count}, got ${String(id)}`);
    return tokenText(id);
  };
  const bos = textOf('tokenizer.ggml.bos_token_id'),
    eos = textOf('tokenizer.ggml.eos_token_id'),
    pad = textOf('tokenizer.ggml.padding_token_id');
  if (bos !== undefined) config.bosToken = bos;
  if (eos !== undefined) config.eosToken = eos;
  if (pad !== undefined) config.padToken = pad;
  const tpl = str('tokenizer.chat_template');
  if (tpl !== undefined) config.chatTemplate = tpl;
  const addBos = g.metadata.get('tokenizer.ggml.add_bos_token')?.value;
  if (addBos === true && bos !== undefined) config.extra = { ...config.extra, add_bos_token: true };
  // an embedding model's tokenizer appends eos (Qwen3-Embedding's GGUF): embeddings pool over it (leading_bos.ts)
  const addEos = g.metadata.get('tokenizer.ggml.add_eos_token')?.value;
  if (addEos === true && eos !== undefined) config.extra = { ...config.extra, add_eos_token: true };
  return config;
}

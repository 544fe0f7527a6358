/**
 * Hugging Face `tokenizer.json` and `tokenizer_config.json` ↔ our tokenizers (no file access here; io.ts reads
 * and writes the files).
 *
 * tokenizer.json, byte-level BPE (what GPT-2, GPT-4-style and Llama 3 tokenizers use):
 *   model: { type: "BPE", vocab: { "Ġthe": 262, … }, merges: ["Ġ t", …] or [["Ġ","t"], …], ignore_merges }
 *   pre_tokenizer: ByteLevel (use_regex: GPT-2's pattern) or Sequence[Split(Regex, Isolated)…, ByteLevel]
 *   added_tokens: [{ id, content, special, … }]   decoder: ByteLevel
 * We write merges as pairs by default (`mergesFormat: 'strings'` for the legacy "a b" form) and read both.
 * Character-level tokenizers are written as model type "WordLevel" with a one-character Split pre-tokenizer.
 * SentencePiece-style BPE (byte_fallback, "▁" for spaces: Llama 2, Mistral, Gemma) is read and written by
 * spm_json.ts. Anything we cannot honour exactly (another normalizer, another model type) is refused with a
 * FileFormatError naming the field, rather than encoded differently.
 */
import { FileFormatError } from '../util/errors.js';
import { byteLevelToBytes, bytesToByteLevel } from './bytes.js';
import { CharTokenizer } from './char_tokenizer.js';
import { isSpmStyleJson, spmFromTokenizerJson, spmToTokenizerJson } from './spm_json.js';
import { SpmTokenizer } from './spm_tokenizer.js';
import { CL100K_PATTERN, GPT2_PATTERN, type PatternName } from './patterns.js';
import { Tokenizer, type BpeTokenizerSpec, type UnicodeNormalization } from './tokenizer.js';
import type { SpecialToken, TextTokenizer, TokenizerConfig } from './types.js';

/** The Split pattern our character-level tokenizer.json uses. */
export const CHAR_SPLIT_PATTERN = '[\\s\\S]';

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function addedTokenJson(t: SpecialToken): Json {
  return {
    id: t.id,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: t.special,
  };
}

export interface WriteOptions {
  /** Merge list form: 'pairs' ([["a","b"]], default) or 'strings' (["a b"], the older form). */
  mergesFormat?: 'pairs' | 'strings';
}

/** tokenizer.json content for a tokenizer. */
export function toTokenizerJson(tok: TextTokenizer, options: WriteOptions = {}): Json {
  if (tok instanceof CharTokenizer) return charToJson(tok);
  if (tok instanceof SpmTokenizer)
    return spmToTokenizerJson(
      tok,
      [...tok.specialTokenList].sort((a, b) => a.id - b.id).map(addedTokenJson),
      options.mergesFormat,
    );
  if (!(tok instanceof Tokenizer)) throw new TypeError('toTokenizerJson: unknown tokenizer class');
  const m = tok.model;
  // a prototype-free object: tokens such as "toString" or "__proto__" are ordinary keys
  const vocab = Object.create(null) as Record<string, number>;
  for (let id = 0; id < m.tokenBytes.length; id++) {
    const b = m.tokenBytes[id];
    if (b) {
      const s = bytesToByteLevel(b);
      if (!Object.hasOwn(vocab, s)) vocab[s] = id;
    }
  }
  for (const s of tok.specialTokenList) if (!Object.hasOwn(vocab, s.content)) vocab[s.content] = s.id;
  const str = (id: number): string => bytesToByteLevel(m.tokenBytes[id]!);
  const merges: unknown[] = [];
  for (let r = 0; r < m.mergeCount; r++) {
    const a = str(m.mergeLeft[r]!);
    const b = str(m.mergeRight[r]!);
    merges.push(options.mergesFormat === 'strings' ? `${a} ${b}` : [a, b]);
  }
  const gpt2Only = tok.splitPatterns.length === 1 && tok.splitPatterns[0] === GPT2_PATTERN;
  const byteLevel = (useRegex: boolean): Json => ({
    type: 'ByteLevel',
    add_prefix_space: tok.addPrefixSpace,
    trim_offsets: true,
    use_regex: useRegex,
  });
  const preTokenizer = gpt2Only
    ? byteLevel(true)
    : {
        type: 'Sequence',
        pretokenizers: [
          ...tok.splitPatterns.map((p) => ({
            type: 'Split',
            pattern: { Regex: p },
            behavior: 'Isolated',
            invert: false,
          })),
          byteLevel(false),
        ],
      };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...tok.specialTokenList].sort((a, b) => a.id - b.id).map(addedTokenJson),
    normalizer: tok.normalizer ? { type: tok.normalizer } : null,
    pre_tokenizer: preTokenizer,
    post_processor:
      tok.postProcessor !== undefined
        ? tok.postProcessor
        : { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: m.ignoreMerges,
      vocab,
      merges,
    },
  };
}

function charToJson(tok: CharTokenizer): Json {
  const vocab = Object.create(null) as Record<string, number>;
  tok.chars.forEach((c, i) => {
    vocab[c] = i;
  });
  for (const s of tok.specialTokenList) vocab[s.content] = s.id;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tok.specialTokenList.map(addedTokenJson),
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: CHAR_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
}

/** Read a parsed tokenizer.json. `file` names the file in errors. */
export function fromTokenizerJson(
  json: unknown,
  file = 'tokenizer.json',
  config: TokenizerConfig = {},
): Tokenizer | SpmTokenizer | CharTokenizer {
  const bad = (field: string, msg: string): never => {
    throw new FileFormatError('E_TOKENIZER_FILE', file, msg, field);
  };
  const unsupported = (field: string, msg: string): never => {
    throw new FileFormatError('E_TOKENIZER_UNSUPPORTED', file, msg, field);
  };
  if (!isObj(json)) return bad('(root)', 'expected a JSON object');
  const model = json.model;
  if (!isObj(model)) return bad('model', 'missing or not an object');
  const added = readAddedTokens(json.added_tokens, bad);
  const type = model.type ?? (model.merges !== undefined ? 'BPE' : undefined);
  if (type === 'BPE' && isSpmStyleJson(json)) return spmFromTokenizerJson(json, added, config, bad, unsupported);
  const normalizer = readNormalizer(json.normalizer, unsupported);
  if (type === 'WordLevel') return charFromJson(json, model, added, file, config, bad, unsupported);
  if (type !== 'BPE')
    return unsupported('model.type', `model type ${JSON.stringify(model.type)} is not supported (expected "BPE")`);

  for (const f of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
    const v = model[f];
    if (v !== null && v !== undefined && v !== '') unsupported(`model.${f}`, `${JSON.stringify(v)} is not supported`);
  }
  if (model.dropout !== null && model.dropout !== undefined && model.dropout !== 0)
    unsupported('model.dropout', 'BPE dropout is not supported');
  const vocab = model.vocab;
  if (!isObj(vocab)) return bad('model.vocab', 'expected an object mapping token strings to ids');
  const specialIds = new Map(added.map((t) => [t.id, t]));
  const tokenBytes: (Uint8Array | undefined)[] = [];
  const idOf = new Map<string, number>();
  for (const [s, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
      bad(`model.vocab[${JSON.stringify(s)}]`, `id ${JSON.stringify(id)} is not a non-negative integer`);
    }
    const n = id as number;
    idOf.set(s, n);
    if (specialIds.has(n)) continue;
    const b = byteLevelToBytes(s);
    if (b === null || b.length === 0) {
      bad(
        `model.vocab[${JSON.stringify(s)}]`,
        'not a byte-level token string (GPT-2 byte-to-character table) and not an added token',
      );
    }
    if (tokenBytes[n] !== undefined) bad(`model.vocab[${JSON.stringify(s)}]`, `id ${n} is used twice`);
    tokenBytes[n] = b!;
  }
  const mergesRaw = model.merges;
  if (!Array.isArray(mergesRaw)) return bad('model.merges', 'expected an array');
  const merges: [number, number][] = [];
  mergesRaw.forEach((mg, i) => {
    let pair: unknown[];
    if (typeof mg === 'string') pair = mg.split(' ');
    else if (Array.isArray(mg)) pair = mg;
    else return bad(`model.merges[${i}]`, `expected "a b" or ["a", "b"], got ${JSON.stringify(mg)}`);
    if (pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return bad(`model.merges[${i}]`, `expected "a b" or ["a", "b"], got ${JSON.stringify(mg)}`);
    }
    const a = idOf.get(pair[0]);
    const b = idOf.get(pair[1]);
    if (a === undefined || b === undefined) {
      return bad(
        `model.merges[${i}]`,
        `token ${JSON.stringify(a === undefined ? pair[0] : pair[1])} is not in model.vocab`,
      );
    }
    merges.push([a, b]);
  });
  const { patterns, addPrefixSpace } = readPreTokenizer(json.pre_tokenizer, bad, unsupported);
  let pattern: PatternName | { patterns: readonly string[] } = { patterns };
  if (patterns.length === 1 && patterns[0] === GPT2_PATTERN) pattern = 'gpt2';
  else if (patterns.length === 1 && patterns[0] === CL100K_PATTERN) pattern = 'cl100k';
  const spec: BpeTokenizerSpec = {
    tokenBytes,
    merges,
    specialTokens: added,
    pattern,
    addPrefixSpace,
    ...(normalizer ? { normalizer } : {}),
    ignoreMerges: model.ignore_merges === true,
    // keep a post-processor that does more than the default ByteLevel one (e.g. adds a BOS token)
    ...(isObj(json.post_processor) && json.post_processor.type !== 'ByteLevel'
      ? { postProcessor: json.post_processor }
      : {}),
    config,
    fail: (field, msg) => bad(field, msg),
  };
  return new Tokenizer(spec);
}

const NORMALIZERS = ['NFC', 'NFD', 'NFKC', 'NFKD'] as const;

/** null, or a Unicode normalization form (alone or as the only entry of a Sequence). */
function readNormalizer(n: unknown, unsupported: (f: string, m: string) => never): UnicodeNormalization | undefined {
  if (n === null || n === undefined) return undefined;
  let v = n;
  if (isObj(v) && v.type === 'Sequence' && Array.isArray(v.normalizers) && v.normalizers.length <= 1)
    v = v.normalizers[0] ?? null;
  if (v === null) return undefined;
  const type = isObj(v) ? v.type : undefined;
  if (typeof type === 'string' && (NORMALIZERS as readonly string[]).includes(type))
    return type as UnicodeNormalization;
  return unsupported(
    'normalizer',
    `normalizer ${JSON.stringify(type ?? n)} is not supported (only none, NFC, NFD, NFKC, NFKD)`,
  );
}

function readAddedTokens(v: unknown, bad: (f: string, m: string) => never): SpecialToken[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return bad('added_tokens', 'expected an array');
  return v.map((t, i) => {
    if (!isObj(t)) return bad(`added_tokens[${i}]`, 'expected an object');
    if (typeof t.id !== 'number' || !Number.isInteger(t.id) || t.id < 0)
      return bad(`added_tokens[${i}].id`, `expected a non-negative integer, got ${JSON.stringify(t.id)}`);
    if (typeof t.content !== 'string' || t.content === '')
      return bad(`added_tokens[${i}].content`, 'expected a non-empty string');
    return { id: t.id, content: t.content, special: t.special !== false };
  });
}

function readPreTokenizer(
  pt: unknown,
  bad: (f: string, m: string) => never,
  unsupported: (f: string, m: string) => never,
): { patterns: string[]; addPrefixSpace: boolean } {
  if (!isObj(pt)) return unsupported('pre_tokenizer', 'a byte-level BPE tokenizer needs a ByteLevel pre-tokenizer');
  const list: { v: unknown; field: string }[] =
    pt.type === 'Sequence'
      ? Array.isArray(pt.pretokenizers)
        ? pt.pretokenizers.map((v, i) => ({ v, field: `pre_tokenizer.pretokenizers[${i}]` }))
        : bad('pre_tokenizer.pretokenizers', 'expected an array')
      : [{ v: pt, field: 'pre_tokenizer' }];
  const patterns: string[] = [];
  let byteLevelSeen = false;
  let addPrefixSpace = false;
  list.forEach(({ v, field }, i) => {
    if (!isObj(v)) return bad(field, 'expected an object');
    if (byteLevelSeen) return unsupported(field, 'a pre-tokenizer after ByteLevel is not supported');
    if (v.type === 'ByteLevel') {
      byteLevelSeen = true;
      if (v.use_regex !== false) patterns.push(GPT2_PATTERN);
      if (v.add_prefix_space === true) {
        if (i > 0) unsupported(`${field}.add_prefix_space`, 'add_prefix_space after a Split is not supported');
        addPrefixSpace = true;
      }
      return;
    }
    if (v.type === 'Split') {
      const p = v.pattern;
      let src: string;
      if (isObj(p) && typeof p.Regex === 'string') src = p.Regex;
      else if (isObj(p) && typeof p.String === 'string') src = p.String.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
      else return bad(`${field}.pattern`, 'expected {"Regex": "..."} or {"String": "..."}');
      if (v.behavior !== 'Isolated')
        unsupported(
          `${field}.behavior`,
          `Split behavior ${JSON.stringify(v.behavior)} is not supported (only "Isolated")`,
        );
      if (v.invert === true) unsupported(`${field}.invert`, 'inverted Split is not supported');
      patterns.push(src);
      return;
    }
    return unsupported(
      `${field}.type`,
      `pre-tokenizer ${JSON.stringify(v.type)} is not supported (expected ByteLevel or Split)`,
    );
  });
  if (!byteLevelSeen) unsupported('pre_tokenizer', 'no ByteLevel pre-tokenizer: only byte-level BPE is supported');
  return { patterns, addPrefixSpace };
}

function charFromJson(
  json: Json,
  model: Json,
  added: SpecialToken[],
  _file: string,
  config: TokenizerConfig,
  bad: (f: string, m: string) => never,
  unsupported: (f: string, m: string) => never,
): CharTokenizer {
  const pt = json.pre_tokenizer;
  if (!isObj(pt) || pt.type !== 'Split' || !isObj(pt.pattern) || pt.pattern.Regex !== CHAR_SPLIT_PATTERN) {
    unsupported(
      'pre_tokenizer',
      `a WordLevel model is only read as a character-level tokenizer (Split on ${JSON.stringify(CHAR_SPLIT_PATTERN)})`,
    );
  }
  const vocab = model.vocab;
  if (!isObj(vocab)) return bad('model.vocab', 'expected an object mapping characters to ids');
  const specialIds = new Map(added.map((t) => [t.id, t]));
  const chars: string[] = [];
  for (const [c, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      bad(`model.vocab[${JSON.stringify(c)}]`, `id ${JSON.stringify(id)} is not a non-negative integer`);
    if (specialIds.has(id as number)) continue;
    if (Array.from(c).length !== 1)
      bad(`model.vocab[${JSON.stringify(c)}]`, 'a character-level vocabulary entry must be one character');
    chars[id as number] = c;
  }
  for (let i = 0; i < chars.length; i++)
    if (chars[i] === undefined)
      bad('model.vocab', `character ids must be 0..${chars.length - 1} without gaps; ${i} is missing`);
  const specials = [...added].sort((a, b) => a.id - b.id);
  specials.forEach((s, k) => {
    if (s.id !== chars.length + k)
      bad(
        `added_tokens`,
        `special token ${JSON.stringify(s.content)} has id ${s.id}; expected ${chars.length + k} (right after the characters)`,
      );
  });
  return new CharTokenizer(
    chars,
    specials.map((s) => s.content),
    config,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// tokenizer_config.json

function tokenField(v: unknown, field: string, bad: (f: string, m: string) => never): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v.content === 'string') return v.content;
  return bad(field, `expected a string or {"content": "..."}, got ${JSON.stringify(v)}`);
}

const CONFIG_KEYS = new Set([
  'bos_token',
  'eos_token',
  'pad_token',
  'unk_token',
  'chat_template',
  'model_max_length',
  'added_tokens_decoder',
]);

/** Read a parsed tokenizer_config.json. */
export function fromTokenizerConfigJson(json: unknown, file = 'tokenizer_config.json'): TokenizerConfig {
  const bad = (field: string, msg: string): never => {
    throw new FileFormatError('E_TOKENIZER_FILE', file, msg, field);
  };
  if (!isObj(json)) return bad('(root)', 'expected a JSON object');
  const cfg: TokenizerConfig = {};
  const bos = tokenField(json.bos_token, 'bos_token', bad);
  const eos = tokenField(json.eos_token, 'eos_token', bad);
  const pad = tokenField(json.pad_token, 'pad_token', bad);
  const unk = tokenField(json.unk_token, 'unk_token', bad);
  if (bos !== undefined) cfg.bosToken = bos;
  if (eos !== undefined) cfg.eosToken = eos;
  if (pad !== undefined) cfg.padToken = pad;
  if (unk !== undefined) cfg.unkToken = unk;
  const ct = json.chat_template;
  if (ct !== undefined && ct !== null) {
    if (typeof ct === 'string') cfg.chatTemplate = ct;
    else if (
      Array.isArray(ct) &&
      ct.every((t) => isObj(t) && typeof t.name === 'string' && typeof t.template === 'string')
    ) {
      cfg.chatTemplate = ct.map((t) => ({
        name: (t as Json).name as string,
        template: (t as Json).template as string,
      }));
    } else bad('chat_template', 'expected a string or a list of {"name", "template"}');
  }
  const mml = json.model_max_length;
  if (mml !== undefined && mml !== null) {
    if (typeof mml !== 'number' || !(mml > 0))
      bad('model_max_length', `expected a positive number, got ${JSON.stringify(mml)}`);
    // Hugging Face writes 1e30 for "no limit"
    if ((mml as number) < 2 ** 53) cfg.modelMaxLength = mml as number;
  }
  const extra = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(json)) if (!CONFIG_KEYS.has(k)) extra[k] = v;
  if (Object.keys(extra).length) cfg.extra = extra;
  return cfg;
}

/** tokenizer_config.json content for a tokenizer. */
export function toTokenizerConfigJson(tok: TextTokenizer & { specialTokenList?: readonly SpecialToken[] }): Json {
  const c = tok.config;
  const out = Object.create(null) as Json;
  for (const [k, v] of Object.entries(c.extra ?? {})) out[k] = v;
  const decoder = Object.create(null) as Json;
  for (const s of tok.specialTokenList ?? []) {
    decoder[String(s.id)] = {
      content: s.content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: s.special,
    };
  }
  out.added_tokens_decoder = decoder;
  if (c.bosToken !== undefined) out.bos_token = c.bosToken;
  if (c.eosToken !== undefined) out.eos_token = c.eosToken;
  if (c.padToken !== undefined) out.pad_token = c.padToken;
  if (c.unkToken !== undefined) out.unk_token = c.unkToken;
  if (c.chatTemplate !== undefined) out.chat_template = c.chatTemplate;
  out.model_max_length = c.modelMaxLength ?? 1e30;
  if (out.clean_up_tokenization_spaces === undefined) out.clean_up_tokenization_spaces = false;
  if (out.tokenizer_class === undefined) out.tokenizer_class = 'PreTrainedTokenizerFast';
  return out;
}

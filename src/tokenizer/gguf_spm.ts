/**
 * A SentencePiece-style tokenizer (`SpmTokenizer`) in GGUF metadata, as llama.cpp's SPM vocabulary reads it
 * (llama.cpp src/llama-vocab.cpp, `llm_tokenizer_spm`; written as convert_hf_to_gguf.py's `_set_vocab_sentencepiece`):
 *
 *   tokenizer.ggml.model            "llama"
 *   tokenizer.ggml.tokens           the pieces ("▁the", "<0x0A>"), special tokens' text, `[PAD{id}]` for unused rows
 *   tokenizer.ggml.scores           f32[]: llama.cpp merges the adjacent pair whose joined piece scores highest
 *   tokenizer.ggml.token_type       1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (<0xXX>)
 *   tokenizer.ggml.add_space_prefix whether "▁" goes before a text (and after each special token), and one leading
 *                                   space is stripped when decoding (Llama: true; Gemma: false)
 *   tokenizer.ggml.unknown_token_id the unk token
 *
 * llama.cpp has no merge list here: it joins any two adjacent symbols whose text is a piece, best score first. So a
 * piece's score is minus the rank of the first merge that makes it (earlier merges score higher), and reading a file
 * back derives the merges the other way: every split of a piece into two pieces, ordered by the whole piece's score.
 * For a merge list that lists every such pair (as Hugging Face's converter writes for SentencePiece models) the two
 * rules give the same tokens; the llama.cpp test checks it on Llama 2's vocabulary.
 */
import { FileFormatError, UnsupportedError } from '../util/errors.js';
import type { GgufFile, GgufValue } from '../formats/gguf.js';
import { TOKEN_TYPE } from './gguf_token_type.js';
import { llamaSpmLayout, SpmTokenizer } from './spm_tokenizer.js';
import type { SpecialToken, TokenizerConfig } from './types.js';

const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

/** Whether the tokenizer normalizes as llama.cpp's SPM vocabulary can (Llama's or Gemma's layout), and which. */
function spacePrefixOf(tok: SpmTokenizer): boolean | null {
  for (const prefix of [true, false]) {
    const want = llamaSpmLayout(prefix);
    if (
      JSON.stringify(tok.steps) === JSON.stringify(want.steps) &&
      JSON.stringify(tok.decodeReplace) === JSON.stringify(want.decodeReplace) &&
      tok.leadingSpaceStrip === want.stripLeft
    )
      return prefix;
  }
  return null;
}

/** The `tokenizer.ggml.*` vocabulary keys of a SentencePiece-style tokenizer (the caller adds ids and the template). */
export function spmTokenizerToGguf(tok: SpmTokenizer, vocabSize: number): Map<string, GgufValue> {
  const prefix = spacePrefixOf(tok);
  if (prefix === null)
    throw new UnsupportedError(
      `the tokenizer's normalization (${JSON.stringify(tok.steps)}) has no llama.cpp equivalent: Llama's ("▁" first, " " → "▁", one space stripped when decoding) and Gemma's (" " → "▁") are exported`,
    );
  if (tok.vocabSize > vocabSize)
    throw new UnsupportedError(`the tokenizer has ${tok.vocabSize} ids but the model only ${vocabSize} rows`);
  const score = new Float32Array(vocabSize);
  const made = new Uint8Array(vocabSize);
  const m = tok.merges;
  for (let r = 0; r < m.length; r++) {
    const id = m.result[r]!;
    if (!made[id]) score[id] = -(r + 1);
    made[id] = 1;
  }
  const specials = new Map(tok.specialTokenList.map((s) => [s.id, s]));
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const sp = specials.get(id);
    const piece = id < tok.pieces.length ? tok.pieces[id] : undefined;
    if (sp) {
      tokens.push(sp.content);
      types.push(id === tok.unkId ? TOKEN_TYPE.unknown : sp.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined);
    } else if (piece !== undefined) {
      tokens.push(piece);
      types.push(
        id === tok.unkId
          ? TOKEN_TYPE.unknown
          : tok.byteFallback && BYTE_PIECE.test(piece)
            ? TOKEN_TYPE.byte
            : TOKEN_TYPE.normal,
      );
      // a piece no merge makes (a single character) must not outrank merged ones: it is only ever a starting symbol
      if (!made[id]) score[id] = -(m.length + 1 + id);
    } else {
      tokens.push(`[PAD${id}]`);
      types.push(TOKEN_TYPE.unused);
    }
  }
  const out = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: Array.from(score) }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }],
    ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: prefix }],
  ]);
  if (tok.unkId !== undefined) out.set('tokenizer.ggml.unknown_token_id', { type: 'u32', value: tok.unkId });
  return out;
}

/** The SentencePiece-style tokenizer of a GGUF file whose tokenizer.ggml.model is "llama". */
export function spmTokenizerFromGguf(
  g: Pick<GgufFile, 'metadata' | 'file'>,
  bad: (key: string, msg: string) => never,
  readConfig: (tokenText: (id: number) => string) => TokenizerConfig,
): SpmTokenizer {
  const get = (key: string) => g.metadata.get(key);
  const tokensV = get('tokenizer.ggml.tokens');
  if (tokensV?.type !== 'array' || tokensV.itemType !== 'string')
    return bad('tokenizer.ggml.tokens', 'missing, or not an array of strings');
  const tokens = tokensV.value as string[];
  const numbers = (key: string): number[] | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (v.type !== 'array' || v.itemType === 'string' || v.value.length !== tokens.length)
      return bad(key, `expected ${tokens.length} numbers, one per token`);
    return (v.value as (number | bigint)[]).map(Number);
  };
  const types = numbers('tokenizer.ggml.token_type');
  const scores = numbers('tokenizer.ggml.scores') ?? bad('tokenizer.ggml.scores', 'missing: llama.cpp merges by score');
  const pieces: (string | undefined)[] = new Array(tokens.length);
  const specials: SpecialToken[] = [];
  let unkId: number | undefined;
  let byteFallback = false;
  tokens.forEach((t, id) => {
    const type = types ? types[id]! : TOKEN_TYPE.normal;
    if (type === TOKEN_TYPE.unknown) unkId = id;
    if (type === TOKEN_TYPE.control || type === TOKEN_TYPE.userDefined || type === TOKEN_TYPE.unknown) {
      specials.push({ id, content: t, special: type !== TOKEN_TYPE.userDefined });
      return;
    }
    if (type === TOKEN_TYPE.unused) return;
    if (t === '') bad(`tokenizer.ggml.tokens[${id}]`, 'an empty token');
    if (type === TOKEN_TYPE.byte) {
      if (!BYTE_PIECE.test(t))
        bad(`tokenizer.ggml.tokens[${id}]`, `a byte token must read <0xXX>, got ${JSON.stringify(t)}`);
      byteFallback = true;
    }
    pieces[id] = t;
  });
  const unkKey = get('tokenizer.ggml.unknown_token_id')?.value;
  if (typeof unkKey === 'number' && Number.isInteger(unkKey) && unkKey >= 0 && unkKey < tokens.length) unkId = unkKey;
  // the merges llama.cpp's rule implies: each split of a piece into two pieces, the whole piece's score deciding
  const idOf = new Map<string, number>();
  pieces.forEach((p, id) => {
    if (p !== undefined && types?.[id] !== TOKEN_TYPE.byte && !idOf.has(p)) idOf.set(p, id);
  });
  const cands: { a: number; b: number; score: number; id: number; at: number }[] = [];
  pieces.forEach((p, id) => {
    if (p === undefined || types?.[id] === TOKEN_TYPE.byte) return;
    const chars = Array.from(p);
    let left = '';
    for (let k = 1; k < chars.length; k++) {
      left += chars[k - 1];
      const a = idOf.get(left);
      const b = a === undefined ? undefined : idOf.get(chars.slice(k).join(''));
      if (a !== undefined && b !== undefined) cands.push({ a, b, score: scores[id]!, id, at: k });
    }
  });
  cands.sort((x, y) => y.score - x.score || x.id - y.id || x.at - y.at);
  const addPrefix = get('tokenizer.ggml.add_space_prefix')?.value !== false;
  const config = readConfig((id) => tokens[id]!);
  try {
    return new SpmTokenizer({
      pieces,
      merges: cands.map((c) => [c.a, c.b] as const),
      byteFallback,
      ...(unkId !== undefined ? { unkId } : {}),
      fuseUnk: true,
      ...llamaSpmLayout(addPrefix),
      specialTokens: specials,
      config,
      fail: (field, message) => bad(`tokenizer.ggml (${field})`, message),
    });
  } catch (e) {
    if (e instanceof FileFormatError) throw e;
    throw new FileFormatError('E_GGUF_TOKENIZER', g.file, (e as Error).message, 'tokenizer.ggml.tokens');
  }
}

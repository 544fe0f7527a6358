/**
 * tokenizer.json ↔ `SpmTokenizer` (SentencePiece-style BPE: Llama 1/2, Mistral, TinyLlama, Gemma). The shapes read
 * are the ones Hugging Face's converters write (transformers convert_slow_tokenizer.py):
 *   model:         { type: "BPE", vocab: { "▁the": 278, "<0x0A>": 13, … }, merges, byte_fallback: true,
 *                    unk_token: "<unk>", fuse_unk: true }
 *   normalizer:    Sequence[Prepend "▁", Replace " " → "▁"] (Llama legacy), Replace " " → "▁" (Gemma), NFC…, or null
 *   pre_tokenizer: null, Metaspace { replacement "▁", prepend_scheme "first" | "always" | "never", split: false },
 *                  or Gemma's Split on " " (a no-op once the normalizer has replaced every space)
 *   decoder:       Sequence[Replace "▁" → " ", ByteFallback, Fuse, Strip " " 1 0] or Metaspace
 * Anything else (a Regex Replace, Metaspace with split, a Strip on the right, BPE dropout) is refused by name.
 * The normalizer, pre-tokenizer and decoder are written back as they were read.
 */
import type { ModelErrorFn } from './bpe_merge.js';
import { SPACE_MARK, SpmTokenizer, type SpmStep, type SpmTokenizerSpec } from './spm_tokenizer.js';
import type { UnicodeNormalization } from './tokenizer.js';
import type { SpecialToken, TokenizerConfig } from './types.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const UNICODE_FORMS = ['NFC', 'NFD', 'NFKC', 'NFKD'];

/** Whether a tokenizer.json's BPE model is SentencePiece-style (rather than byte-level). */
export function isSpmStyleJson(json: Json): boolean {
  const model = json.model;
  if (!isObj(model)) return false;
  if (model.byte_fallback === true) return true;
  const pt = json.pre_tokenizer;
  const types = (v: unknown): unknown[] =>
    isObj(v)
      ? v.type === 'Sequence'
        ? [...((v.pretokenizers ?? v.normalizers ?? []) as unknown[])].flatMap(types)
        : [v.type]
      : [];
  if (types(pt).includes('Metaspace')) return true;
  return (pt === null || pt === undefined) && types(json.normalizer).some((t) => t === 'Prepend' || t === 'Replace');
}

function stringPattern(v: unknown, field: string, unsupported: ModelErrorFn): string {
  if (isObj(v) && typeof v.String === 'string') return v.String;
  return unsupported(field, `only {"String": …} patterns are supported here, got ${JSON.stringify(v)}`);
}

function metaspaceScheme(v: Json, field: string, unsupported: ModelErrorFn): 'always' | 'first' | 'never' {
  const s = v.prepend_scheme;
  if (s === 'always' || s === 'first' || s === 'never') return s;
  if (s === undefined) return v.add_prefix_space === false ? 'never' : 'always';
  return unsupported(`${field}.prepend_scheme`, `${JSON.stringify(s)} is not one of "always", "first", "never"`);
}

function readSteps(json: Json, unsupported: ModelErrorFn): SpmStep[] {
  const steps: SpmStep[] = [];
  const norm = (v: unknown, field: string): void => {
    if (v === null || v === undefined) return;
    if (!isObj(v)) unsupported(field, 'expected an object');
    if (v.type === 'Sequence' && Array.isArray(v.normalizers)) {
      v.normalizers.forEach((n, i) => norm(n, `${field}.normalizers[${i}]`));
      return;
    }
    if (typeof v.type === 'string' && UNICODE_FORMS.includes(v.type)) {
      steps.push({ kind: 'unicode', form: v.type as UnicodeNormalization });
      return;
    }
    if (v.type === 'Prepend' && typeof v.prepend === 'string') {
      steps.push({ kind: 'prepend', text: v.prepend });
      return;
    }
    if (v.type === 'Replace' && typeof v.content === 'string') {
      steps.push({ kind: 'replace', from: stringPattern(v.pattern, `${field}.pattern`, unsupported), to: v.content });
      return;
    }
    unsupported(
      field,
      `normalizer ${JSON.stringify(v.type)} is not supported for a SentencePiece-style tokenizer (Prepend, Replace, NFC, NFD, NFKC, NFKD)`,
    );
  };
  norm(json.normalizer, 'normalizer');
  const pre = (v: unknown, field: string): void => {
    if (v === null || v === undefined) return;
    if (!isObj(v)) unsupported(field, 'expected an object');
    if (v.type === 'Sequence' && Array.isArray(v.pretokenizers)) {
      v.pretokenizers.forEach((p, i) => pre(p, `${field}.pretokenizers[${i}]`));
      return;
    }
    if (v.type === 'Metaspace') {
      // an older Metaspace (no "split" field) always split at spaces
      if (v.split !== false) unsupported(`${field}.split`, 'Metaspace with split is not supported (split: false is)');
      const replacement = typeof v.replacement === 'string' ? v.replacement : SPACE_MARK;
      steps.push({ kind: 'metaspace', replacement, scheme: metaspaceScheme(v, field, unsupported) });
      return;
    }
    if (v.type === 'Split') {
      const p = stringPattern(v.pattern, `${field}.pattern`, unsupported);
      // Gemma splits on " " after its normalizer turned every " " into "▁": nothing is left to split
      const spacesGone = steps.some((s) => s.kind === 'replace' && s.from === p && !s.to.includes(p));
      if (spacesGone) return;
      unsupported(`${field}.pattern`, `a Split on ${JSON.stringify(p)} is not supported here`);
    }
    unsupported(
      `${field}.type`,
      `pre-tokenizer ${JSON.stringify(v.type)} is not supported for a SentencePiece-style tokenizer`,
    );
  };
  pre(json.pre_tokenizer, 'pre_tokenizer');
  return steps;
}

function readDecoder(d: unknown, unsupported: ModelErrorFn): Pick<SpmTokenizerSpec, 'decodeReplace' | 'stripLeft'> {
  const decodeReplace: { from: string; to: string }[] = [];
  let stripLeft = 0;
  const one = (v: unknown, field: string): void => {
    if (!isObj(v)) unsupported(field, 'expected an object');
    if (v.type === 'Sequence' && Array.isArray(v.decoders)) {
      v.decoders.forEach((x, i) => one(x, `${field}.decoders[${i}]`));
      return;
    }
    if (v.type === 'Replace' && typeof v.content === 'string') {
      decodeReplace.push({ from: stringPattern(v.pattern, `${field}.pattern`, unsupported), to: v.content });
      return;
    }
    if (v.type === 'ByteFallback' || v.type === 'Fuse') return;
    if (v.type === 'Strip') {
      if (v.content !== ' ' || (v.stop ?? 0) !== 0 || !Number.isInteger(v.start))
        unsupported(field, 'only a Strip of leading spaces (content " ", stop 0) is supported');
      stripLeft += v.start as number;
      return;
    }
    if (v.type === 'Metaspace') {
      const rep = typeof v.replacement === 'string' ? v.replacement : SPACE_MARK;
      decodeReplace.push({ from: rep, to: ' ' });
      if (metaspaceScheme(v, field, unsupported) !== 'never') stripLeft += 1;
      return;
    }
    unsupported(
      `${field}.type`,
      `decoder ${JSON.stringify(v.type)} is not supported for a SentencePiece-style tokenizer`,
    );
  };
  if (d !== null && d !== undefined) one(d, 'decoder');
  return { decodeReplace, stripLeft };
}

/** Read a SentencePiece-style tokenizer.json (see isSpmStyleJson). */
export function spmFromTokenizerJson(
  json: Json,
  added: readonly SpecialToken[],
  config: TokenizerConfig,
  bad: ModelErrorFn,
  unsupported: ModelErrorFn,
): SpmTokenizer {
  const model = json.model as Json;
  if (model.dropout !== null && model.dropout !== undefined && model.dropout !== 0)
    unsupported('model.dropout', 'BPE dropout is not supported');
  if (model.ignore_merges === true)
    unsupported('model.ignore_merges', 'ignore_merges with byte fallback is not supported');
  for (const f of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
    const v = model[f];
    if (v !== null && v !== undefined && v !== '') unsupported(`model.${f}`, `${JSON.stringify(v)} is not supported`);
  }
  const vocab = model.vocab;
  if (!isObj(vocab)) return bad('model.vocab', 'expected an object mapping token strings to ids');
  const specialIds = new Set(added.map((t) => t.id));
  const pieces: (string | undefined)[] = [];
  const idOf = new Map<string, number>();
  for (const [s, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff)
      bad(`model.vocab[${JSON.stringify(s)}]`, `id ${JSON.stringify(id)} is not a non-negative integer`);
    idOf.set(s, id as number);
    if (specialIds.has(id as number)) continue;
    if (pieces[id as number] !== undefined) bad(`model.vocab[${JSON.stringify(s)}]`, `id ${id} is used twice`);
    pieces[id as number] = s;
  }
  const mergesRaw = model.merges;
  if (!Array.isArray(mergesRaw)) return bad('model.merges', 'expected an array');
  const merges: [number, number][] = mergesRaw.map((mg, i) => {
    const pair: unknown = typeof mg === 'string' ? mg.split(' ') : mg;
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string')
      return bad(`model.merges[${i}]`, `expected "a b" or ["a", "b"], got ${JSON.stringify(mg)}`);
    const a = idOf.get(pair[0]);
    const b = idOf.get(pair[1]);
    if (a === undefined || b === undefined)
      return bad(
        `model.merges[${i}]`,
        `token ${JSON.stringify(a === undefined ? pair[0] : pair[1])} is not in model.vocab`,
      );
    return [a, b];
  });
  let unkId: number | undefined;
  if (typeof model.unk_token === 'string') {
    unkId = idOf.get(model.unk_token);
    if (unkId === undefined) bad('model.unk_token', `${JSON.stringify(model.unk_token)} is not in model.vocab`);
  }
  return new SpmTokenizer({
    pieces,
    merges,
    byteFallback: model.byte_fallback === true,
    ...(unkId !== undefined ? { unkId } : {}),
    fuseUnk: model.fuse_unk === true,
    steps: readSteps(json, unsupported),
    ...readDecoder(json.decoder, unsupported),
    specialTokens: added,
    ...(isObj(json.post_processor) ? { postProcessor: json.post_processor } : {}),
    json: {
      normalizer: json.normalizer ?? null,
      pre_tokenizer: json.pre_tokenizer ?? null,
      decoder: json.decoder ?? null,
    },
    config,
    fail: bad,
  });
}

/** The tokenizer.json parts for a tokenizer built without them (from a GGUF file, say). */
function jsonParts(tok: SpmTokenizer): { normalizer: unknown; pre_tokenizer: unknown; decoder: unknown } {
  const normalizers: Json[] = [];
  let pre: Json | null = null;
  for (const s of tok.steps) {
    if (s.kind === 'unicode') normalizers.push({ type: s.form });
    else if (s.kind === 'prepend') normalizers.push({ type: 'Prepend', prepend: s.text });
    else if (s.kind === 'replace') normalizers.push({ type: 'Replace', pattern: { String: s.from }, content: s.to });
    else pre = { type: 'Metaspace', replacement: s.replacement, prepend_scheme: s.scheme, split: false };
  }
  const decoders: Json[] = tok.decodeReplace.map((r) => ({
    type: 'Replace',
    pattern: { String: r.from },
    content: r.to,
  }));
  if (tok.byteFallback) decoders.push({ type: 'ByteFallback' });
  decoders.push({ type: 'Fuse' });
  if (tok.leadingSpaceStrip > 0) decoders.push({ type: 'Strip', content: ' ', start: tok.leadingSpaceStrip, stop: 0 });
  return {
    normalizer: normalizers.length ? { type: 'Sequence', normalizers } : null,
    pre_tokenizer: pre,
    decoder: { type: 'Sequence', decoders },
  };
}

/** tokenizer.json content for a SentencePiece-style tokenizer. */
export function spmToTokenizerJson(
  tok: SpmTokenizer,
  addedTokens: Json[],
  mergesFormat: 'pairs' | 'strings' = 'pairs',
): Json {
  const vocab = Object.create(null) as Record<string, number>;
  tok.pieces.forEach((p, id) => {
    if (p !== undefined && !Object.hasOwn(vocab, p)) vocab[p] = id;
  });
  for (const s of tok.specialTokenList) if (!Object.hasOwn(vocab, s.content)) vocab[s.content] = s.id;
  const m = tok.merges;
  const merges: unknown[] = [];
  for (let r = 0; r < m.length; r++) {
    const a = tok.tokenString(m.left[r]!);
    const b = tok.tokenString(m.right[r]!);
    merges.push(mergesFormat === 'strings' ? `${a} ${b}` : [a, b]);
  }
  const parts = tok.json ?? jsonParts(tok);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: parts.normalizer,
    pre_tokenizer: parts.pre_tokenizer,
    post_processor: tok.postProcessor ?? null,
    decoder: parts.decoder,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: tok.unkId !== undefined ? tok.tokenString(tok.unkId) : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: tok.fuseUnk,
      byte_fallback: tok.byteFallback,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

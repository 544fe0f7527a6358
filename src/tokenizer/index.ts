/**
 * Public API of the tokenizer layer: byte-level BPE (train, encode, decode, special tokens, streaming decode,
 * Hugging Face / GPT-2 / tiktoken files), SentencePiece-style BPE as Llama 2, Mistral and Gemma ship it (read from
 * their tokenizer.json or a GGUF file), and a character-level tokenizer for teaching runs.
 *
 *   const tok = await loadTokenizer('gpt2');                      // or 'cl100k_base', 'o200k_base', or a folder
 *   const ids = tok.encode(userText, { special: 'refuse' });      // SpecialTokenError on '<|endoftext|>' in text
 *   const all = tok.encode(template, { allowed: 'all' });        // trusted text: special tokens honoured
 *   const bpe = trainBpe(corpus, { vocabSize: 8192, pattern: 'gpt2', specialTokens: ['<|endoftext|>'] });
 *   await saveTokenizer(bpe, 'out/tok');
 *   const sd = new StreamDecoder(tok); for (const id of ids) process.stdout.write(sd.push(id)); sd.flush();
 */
export type {
  DecodeOptions,
  EncodeOptions,
  SpecialPolicy,
  SpecialToken,
  TextTokenizer,
  TokenizerConfig,
} from './types.js';
export { Tokenizer, type BpeTokenizerSpec, type UnicodeNormalization } from './tokenizer.js';
export { CharTokenizer } from './char_tokenizer.js';
export { SpmTokenizer, llamaSpmLayout, SPACE_MARK, type SpmStep, type SpmTokenizerSpec } from './spm_tokenizer.js';
export { StreamDecoder, type TokenBytesSource } from './stream_decoder.js';
export { trainBpe, trainBpeWithStats, countWords, type TrainBpeOptions, type TrainStats } from './trainer.js';
export { loadTokenizer, saveTokenizer, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE } from './io.js';
export {
  loadPretrained,
  fromJsTiktoken,
  isPretrainedName,
  PRETRAINED_NAMES,
  gpt2Config,
  type PretrainedName,
} from './pretrained.js';
export { importVocabAndMerges, specFromVocabAndMerges } from './gpt2_files.js';
export {
  importTiktokenFile,
  parseTiktokenRanks,
  parseJsTiktokenRanks,
  formatTiktokenRanks,
  specFromRanks,
  type RankedToken,
} from './tiktoken_files.js';
export {
  toTokenizerJson,
  fromTokenizerJson,
  toTokenizerConfigJson,
  fromTokenizerConfigJson,
  type WriteOptions,
} from './hf_json.js';
export {
  PATTERN_NAMES,
  GPT2_PATTERN,
  CL100K_PATTERN,
  LLAMA3_PATTERN,
  parsePatternName,
  compilePattern,
  type PatternName,
} from './patterns.js';
export { encodeUtf8, decodeUtf8, BYTE_TO_CHAR } from './bytes.js';
export { SpecialTokenError, VocabularyError } from '../util/errors.js';
export { leadingBos } from './leading_bos.js';

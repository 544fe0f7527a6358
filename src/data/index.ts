/** Data: corpus input, token shards with a deterministic split, and seeded batching. No tensors here. */
export {
  loadCorpus,
  defaultCorpus,
  defaultCorpusDir,
  readJsonl,
  expandGlob,
  globToRegExp,
  isGlob,
  sniffText,
  utf8Bytes,
  DEFAULT_CORPUS,
  SHAKESPEARE_CORPUS,
  shakespeareFile,
  type Document,
  type CorpusOptions,
} from './corpus.js';
export {
  prepareTokens,
  splitCorpus,
  corpusFingerprint,
  idDType,
  type TokenData,
  type TokenSplit,
  type ShardMeta,
  type PrepareOptions,
  type TokenEncoder,
  type IdArray,
  type IdDType,
} from './shards.js';
export { Batcher, fixedBatches, checkSplitSize, type Batch, type BatcherState } from './batcher.js';

/**
 * The settings of `llmts train` (GPT pretraining), each declared once: the loop's groups (src/train/settings.ts) and
 * the recipe's own (data and tokenizer, model shape, samples). From this one table come the `TrainConfig` type, the
 * defaults, the `--help` lines and the checks of every field; `validateConfig` adds the checks between fields.
 * Layers, as nanoGPT's `configurator.py`: defaults ← preset (presets.ts) ← JSON file ← command line.
 */
import { ConfigError } from '../util/errors.js';
import { f16NeedsWebGpu } from '../backend/registry.js';
import { bool, defineSettings, float, group, int, oneOf, str, strings, type Values } from '../util/settings.js';
import { DISPLAY_SETTINGS, EVAL_SETTINGS, OPTIM_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import type { ModelConfig } from '../model/config.js';

const DATA = group('data', {
  input: strings(
    [],
    "Corpus: text files, folders (recursively), glob patterns or JSONL files; [] = the embedded State of the Union corpus; 'shakespeare' = the shipped tinyshakespeare.",
    { aliases: ['data', 'corpus'] },
  ),
  textField: str('text', 'JSONL field holding the text.'),
  maxCorpusBytes: int(0, 'Use only the first this many characters of the corpus (0 = all).', { min: 0 }),
  valFraction: float(
    0.1,
    'Fraction held out for validation (the last 10% of a single text, as nanoGPT splits tinyshakespeare).',
    { gt: 0, max: 0.9 },
  ),
  tokenizer: str(
    'bpe',
    "Tokenizer: 'bpe' (train a byte-level BPE on the corpus), 'char' (one id per character), 'gpt2', or a folder with tokenizer.json.",
  ),
  vocabSize: int(2048, "Vocabulary size of a BPE trained on the corpus (ignored for 'char', 'gpt2' and folders).", {
    min: 257,
    max: 1 << 20,
    aliases: ['vocab_size'],
  }),
  tokenizerTrainBytes: int(2_000_000, 'Characters of the corpus used to train the BPE (0 = all; a few MB is plenty).', {
    min: 0,
  }),
  cacheDir: str('', "Folder of the tokenizer and token-shard cache ('' = `<outDir>/.cache`)."),
});

const MODEL = group('model', {
  family: oneOf(
    ['gpt2', 'llama', 'gemma3'],
    'gpt2',
    "Architecture family: 'gpt2' (LayerNorm, GELU, learned positions), 'llama' (RMSNorm, SwiGLU, RoPE) or 'gemma3' " +
      '(Gemma 3: sliding-window layers with a full one every sixth, sandwich norms, GeGLU, q/k norms).',
  ),
  nLayer: int(4, 'Number of Transformer blocks.', { min: 1, max: 1000, aliases: ['n_layer', 'layers'] }),
  nHead: int(4, 'Number of attention (query) heads.', { min: 1, aliases: ['n_head', 'heads'] }),
  nKvHead: int(0, 'Key/value heads for grouped-query attention (0 = nHead; llama only).', {
    min: 0,
    aliases: ['n_kv_head'],
  }),
  nEmbd: int(128, 'Width of the residual stream.', { min: 1, aliases: ['n_embd', 'width'] }),
  intermediateSize: int(0, 'Hidden width of the MLP (0 = 4·nEmbd for gpt2, ≈ 8/3·nEmbd rounded up to 32 for llama).', {
    min: 0,
  }),
  blockSize: int(128, 'Context length: tokens per training sequence (T).', {
    min: 1,
    aliases: ['block_size', 'context'],
  }),
  maxPositions: int(0, 'Positions the model accepts (0 = blockSize).', { min: 0 }),
  dropout: float(0, 'Dropout probability while training (0 = off).', { min: 0, max: 0.99 }),
  tieEmbeddings: bool(true, 'Output head tied to the token embedding (always for gpt2).'),
  bias: bool(
    true,
    "Train biases; false = nanoGPT's bias=False (biases stay zero, no gradient, still a standard GPT-2 folder).",
  ),
  ropeTheta: float(10000, 'RoPE base (llama, gemma3: its full layers; the sliding ones rotate by 10000).', { gt: 0 }),
  slidingWindow: int(0, 'Keys a sliding-window layer sees (gemma3; 0 = 512, as Gemma 3 270M/1B).', { min: 0 }),
  qkNorm: bool(
    false,
    'RMSNorm on each query and key head before RoPE, as Qwen3 (llama only; saved as a qwen3 folder).',
  ),
  initFrom: str('', "Start from this Hugging Face folder's weights instead of random ones ('' = from scratch).", {
    aliases: ['init_from'],
  }),
});

const SAMPLES = group('samples', {
  sampleTokens: int(120, 'Tokens generated per sample.', { min: 0, aliases: ['max_new_tokens'] }),
  samplePrompts: strings(
    ['The', 'Fellow-Citizens of the Senate and House of Representatives:'],
    "Prompts of the samples ('' starts from the vocabulary's separator).",
  ),
  temperature: float(0.8, 'Sampling temperature (0 = greedy).', { min: 0 }),
  topK: int(40, 'Keep only the k most likely tokens when sampling (0 = all).', { min: 0, aliases: ['top_k'] }),
});

const PRECISION = group('precision', {
  precision: oneOf(
    ['f32', 'f16'],
    'f32',
    "Matmul precision: 'f32', or 'f16' (webgpu only: the linear layers' products take f16-rounded operands with f32 " +
      'accumulation, f32 master weights, dynamic loss scaling; docs/BACKENDS.md).',
  ),
});

/** Every setting of `llmts train` / `llmts plan`, in --help order. */
export const TRAIN_SETTINGS = defineSettings(
  {
    ...RUN_SETTINGS,
    ...PRECISION,
    ...DATA,
    ...MODEL,
    ...OPTIM_SETTINGS,
    ...EVAL_SETTINGS,
    ...SAMPLES,
    ...DISPLAY_SETTINGS,
  },
  'llmts train',
);

/** A pretraining run's settings: one field per row of the table above (see there for what each means). */
export type TrainConfig = Values<typeof TRAIN_SETTINGS.table>;

/** The defaults: a few-minute model on the embedded corpus. */
export const DEFAULTS: Readonly<TrainConfig> = Object.freeze(TRAIN_SETTINGS.defaults());

/** Where the tokenizer and token shards are cached: `cacheDir`, or `<outDir>/.cache`. */
export function cacheDirOf(c: Pick<TrainConfig, 'cacheDir' | 'outDir'>): string {
  return c.cacheDir || `${c.outDir.replace(/[\\/]+$/, '') || '.'}/.cache`;
}

function largestDivisor(n: number, atMost: number): number {
  for (let d = atMost; d >= 1; d--) if (n % d === 0) return d;
  return 1;
}

/** Type and range of every field (from the table), then the checks between fields; throws the first ConfigError. */
export function validateConfig(c: TrainConfig): TrainConfig {
  TRAIN_SETTINGS.checkRanges(c);
  if (c.nEmbd % c.nHead !== 0)
    throw new ConfigError(
      'nHead',
      `nEmbd (${c.nEmbd}) must be divisible by nHead (${c.nHead}); try nHead=${largestDivisor(c.nEmbd, c.nHead)}`,
    );
  const kv = c.nKvHead || c.nHead;
  if (c.nHead % kv !== 0) throw new ConfigError('nKvHead', `nHead (${c.nHead}) must be a multiple of nKvHead (${kv})`);
  if (c.family === 'gpt2' && c.nKvHead && c.nKvHead !== c.nHead)
    throw new ConfigError('nKvHead', `the gpt2 family has no grouped-query attention; use family=llama or nKvHead=0`);
  if (c.family === 'gpt2' && !c.tieEmbeddings)
    throw new ConfigError(
      'tieEmbeddings',
      'the gpt2 family always ties its head to the embedding; use family=llama for an untied head',
    );
  if (c.family !== 'gpt2' && (c.nEmbd / c.nHead) % 2 !== 0)
    throw new ConfigError('nHead', `RoPE needs an even head width; nEmbd/nHead = ${c.nEmbd / c.nHead}`);
  if (c.family === 'gpt2' && c.qkNorm)
    throw new ConfigError('qkNorm', 'the gpt2 family has no q/k norms; use family=llama (a Qwen3-style model)');
  if (c.family !== 'gemma3' && c.slidingWindow)
    throw new ConfigError('slidingWindow', 'sliding-window layers are part of family=gemma3');
  if (c.maxPositions && c.blockSize > c.maxPositions)
    throw new ConfigError(
      'blockSize',
      `blockSize (${c.blockSize}) must be ≤ maxPositions (${c.maxPositions}), the positions the model has`,
    );
  if (c.minLr > c.lr) throw new ConfigError('minLr', `must be ≤ lr (${c.lr}), got ${c.minLr}`);
  if (c.precision === 'f16' && (c.backend === 'wasm' || c.backend === 'ref')) throw f16NeedsWebGpu(c.backend);
  return c;
}

/** The model's ModelConfig for a training config and a vocabulary. */
export function toModelConfig(
  c: TrainConfig,
  vocabSize: number,
  special: { bos?: number | null; eos?: number | null } = {},
): ModelConfig {
  const headDim = c.nEmbd / c.nHead;
  const gemma = c.family === 'gemma3';
  const llama = c.family === 'llama' || gemma;
  const inter =
    c.intermediateSize ||
    (gemma ? 4 * c.nEmbd : llama ? 32 * Math.ceil(Math.round((8 * c.nEmbd) / 3) / 32) : 4 * c.nEmbd);
  // Gemma 3's layout (src/model/config.ts): five sliding-window layers then a full one, θ 10000 on the sliding ones
  const gemmaLayout: Partial<ModelConfig> = gemma
    ? {
        qkNorm: true,
        slidingWindow: c.slidingWindow || 512,
        layerTypes: Array.from({ length: c.nLayer }, (_, i) => ((i + 1) % 6 ? 'sliding' : 'full')),
        ropeLocalTheta: 10000,
        embedScale: true,
        sandwichNorms: true,
        mlpActivation: 'gelu_tanh',
        attnScale: 1 / Math.sqrt(headDim),
        normOffset: 1,
      }
    : {};
  return {
    family: llama ? 'llama' : 'gpt2',
    vocabSize,
    hiddenSize: c.nEmbd,
    numLayers: c.nLayer,
    numHeads: c.nHead,
    numKvHeads: c.nKvHead || c.nHead,
    headDim,
    intermediateSize: inter,
    maxPositions: c.maxPositions || c.blockSize,
    normEps: llama ? 1e-6 : 1e-5,
    ropeTheta: c.ropeTheta,
    ...(llama && c.qkNorm ? { qkNorm: true } : {}),
    ...gemmaLayout,
    tieWordEmbeddings: llama ? c.tieEmbeddings : true,
    attentionBias: !llama,
    attentionOutBias: !llama,
    mlpBias: !llama,
    dropout: c.dropout,
    bosTokenId: special.bos ?? null,
    eosTokenId: special.eos ?? null,
    padTokenId: null,
  };
}

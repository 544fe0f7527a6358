/**
 * Training configuration: one typed object with a comment on every field, named presets (from a few-minute CPU model
 * up to GPT-2 124M), a JSON config file, and `--key=value` overrides that reject unknown keys (suggesting the closest
 * one) and values of the wrong type, then range checks. Follows nanoGPT's `configurator.py` + `config/*.py`: defaults,
 * then a preset, then a file, then the command line, each layer overriding the one before.
 *
 * Names are camelCase; kebab-case (`--batch-size`) and nanoGPT's snake_case names (`--n_layer`, `--max_iters`,
 * `--learning_rate`, …) are accepted as aliases.
 */
import fs from 'node:fs';
import { ConfigError } from '../util/errors.js';
import type { ModelConfig, ModelFamily } from '../model/config.js';

export interface TrainConfig {
  // ---- run ----
  /** Name of the run folder under `outDir` ('' = a timestamp). */
  name: string;
  /** Folder holding run folders. */
  outDir: string;
  /** Seed of everything random: initialisation, batches, dropout masks, samples. */
  seed: number;
  /** Compute backend: 'auto' (WASM SIMD when it works, else the plain TypeScript reference), 'wasm' or 'ref'. */
  backend: 'auto' | 'wasm' | 'ref';
  /** Worker threads for the WASM backend (0 = one per core). */
  threads: number;

  // ---- data ----
  /** Corpus: text files, folders (recursively), glob patterns or JSONL files; [] = the embedded State of the Union corpus. */
  input: string[];
  /** JSONL field holding the text. */
  textField: string;
  /** Use only the first this many characters of the corpus (0 = all). */
  maxCorpusBytes: number;
  /** Fraction held out for validation (the last 10% of a single text, as nanoGPT splits tinyshakespeare). */
  valFraction: number;
  /** Tokenizer: 'bpe' (train a byte-level BPE on the corpus), 'char' (one id per character), 'gpt2', or a folder with tokenizer.json. */
  tokenizer: string;
  /** Vocabulary size of a BPE trained on the corpus (ignored for 'char', 'gpt2' and folders). */
  vocabSize: number;
  /** Characters of the corpus used to train the BPE (0 = all; a few MB is plenty). */
  tokenizerTrainBytes: number;
  /** Folder of the token-shard cache. */
  cacheDir: string;

  // ---- model (maps onto ModelConfig) ----
  /** Architecture family: 'gpt2' (LayerNorm, GELU, learned positions) or 'llama' (RMSNorm, SwiGLU, RoPE). */
  family: ModelFamily;
  /** Number of Transformer blocks. */
  nLayer: number;
  /** Number of attention (query) heads. */
  nHead: number;
  /** Key/value heads for grouped-query attention (0 = nHead; llama only). */
  nKvHead: number;
  /** Width of the residual stream. */
  nEmbd: number;
  /** Hidden width of the MLP (0 = 4·nEmbd for gpt2, ≈ 8/3·nEmbd rounded up to 32 for llama). */
  intermediateSize: number;
  /** Context length: tokens per training sequence (T). */
  blockSize: number;
  /** Positions the model accepts (0 = blockSize). */
  maxPositions: number;
  /** Dropout probability while training (0 = off). */
  dropout: number;
  /** Output head tied to the token embedding (always for gpt2). */
  tieEmbeddings: boolean;
  /**
   * Train biases (linear and LayerNorm). false = nanoGPT's `bias=False`: biases stay at zero and get no gradient,
   * so the checkpoint is still a standard GPT-2 folder (with zero biases) that transformers loads.
   */
  bias: boolean;
  /** RoPE base (llama only). */
  ropeTheta: number;
  /** Start from this Hugging Face folder's weights instead of random ones ('' = from scratch). */
  initFrom: string;

  // ---- optimisation ----
  /** Sequences per micro-batch (B). */
  batchSize: number;
  /** Micro-batches accumulated per optimizer step (tokens per step = gradAccum · batchSize · blockSize). */
  gradAccum: number;
  /** Optimizer steps to take. */
  maxSteps: number;
  /** Peak learning rate (after warmup). */
  lr: number;
  /** Learning rate at the end of the cosine decay. */
  minLr: number;
  /** Steps of linear warmup: lr(s) = lr·(s+1)/warmupSteps for s < warmupSteps. */
  warmupSteps: number;
  /** Step where the cosine decay reaches minLr (0 = maxSteps); minLr afterwards. */
  decaySteps: number;
  /** Learning-rate schedule: 'cosine' (warmup + cosine) or 'constant' (warmup then lr). */
  schedule: 'cosine' | 'constant';
  /** AdamW β1. */
  beta1: number;
  /** AdamW β2. */
  beta2: number;
  /** AdamW ε. */
  eps: number;
  /** AdamW decoupled weight decay. */
  weightDecay: number;
  /** Which parameters decay: 'matrices' (2-D weights only, as nanoGPT) or 'all' (torch.optim.AdamW on every parameter). */
  decayOn: 'matrices' | 'all';
  /** Clip the global gradient norm to this (0 = no clipping). */
  gradClip: number;

  // ---- evaluation, samples, checkpoints ----
  /** Evaluate (validation loss, bits per byte) every this many steps, and at the end (0 = only at the end). */
  evalInterval: number;
  /** Validation batches per evaluation (a fixed set, the same every time). */
  evalBatches: number;
  /** Validation batches of the evaluation after the last step (0 = evalBatches); more batches, a more precise final figure. */
  finalEvalBatches: number;
  /** Print samples from the prompts every this many steps, and at the end (0 = only at the end). */
  sampleInterval: number;
  /** Tokens generated per sample. */
  sampleTokens: number;
  /** Prompts of the samples ('' starts from the first token of the vocabulary's separator). */
  samplePrompts: string[];
  /** Sampling temperature (0 = greedy). */
  temperature: number;
  /** Keep only the k most likely tokens when sampling (0 = all). */
  topK: number;
  /** Write a checkpoint every this many steps, and at the end (0 = only at the end / on Ctrl-C). */
  checkpointInterval: number;
  /** Continue the run in this folder exactly where it stopped ('' = new run). */
  resume: string;

  // ---- display ----
  /** Print a progress line every this many steps when not on a terminal. */
  logInterval: number;
  /** Plain lines, no progress bar. */
  quiet: boolean;
  /** Peak FLOP/s of this machine for MFU (default 330e9: 2-core sgemm peak). */
  peakFlops: number;
  /** Stop (with a checkpoint) after this many seconds of training (0 = no limit). */
  timeLimit: number;
  /** Write report.html at the end. */
  report: boolean;
}

/** The defaults: a few-minute model on the embedded corpus. */
export const DEFAULTS: TrainConfig = {
  name: '',
  outDir: 'runs',
  seed: 1337,
  backend: 'auto',
  threads: 0,
  input: [],
  textField: 'text',
  maxCorpusBytes: 0,
  valFraction: 0.1,
  tokenizer: 'bpe',
  vocabSize: 2048,
  tokenizerTrainBytes: 2_000_000,
  cacheDir: 'runs/.cache',
  family: 'gpt2',
  nLayer: 4,
  nHead: 4,
  nKvHead: 0,
  nEmbd: 128,
  intermediateSize: 0,
  blockSize: 128,
  maxPositions: 0,
  dropout: 0,
  tieEmbeddings: true,
  bias: true,
  ropeTheta: 10000,
  initFrom: '',
  batchSize: 8,
  gradAccum: 1,
  maxSteps: 1000,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 100,
  decaySteps: 0,
  schedule: 'cosine',
  beta1: 0.9,
  beta2: 0.99,
  eps: 1e-8,
  weightDecay: 0.1,
  decayOn: 'matrices',
  gradClip: 1.0,
  evalInterval: 250,
  evalBatches: 20,
  finalEvalBatches: 100,
  sampleInterval: 200,
  sampleTokens: 120,
  samplePrompts: ['The', 'Fellow-Citizens of the Senate and House of Representatives:'],
  temperature: 0.8,
  topK: 40,
  checkpointInterval: 500,
  resume: '',
  logInterval: 10,
  quiet: false,
  peakFlops: 330e9,
  timeLimit: 0,
  report: true,
};

/** Named presets: partial configs applied over the defaults. */
export const PRESETS: Record<string, { help: string; config: Partial<TrainConfig> }> = {
  tiny: {
    help: 'a few minutes on 2 CPU cores: 4 layers × 128 wide, context 128, BPE 2048 on the embedded corpus (the `npm start` run)',
    config: {},
  },
  'shakespeare-char': {
    help: "nanoGPT's CPU recipe: char-level tinyshakespeare, 4 layers × 4 heads × 128, context 64, batch 12, 2,000 steps (val loss ≈ 1.90, as nanoGPT measured the same way)",
    config: {
      input: ['shakespeare'],
      tokenizer: 'char',
      valFraction: 0.1,
      nLayer: 4,
      nHead: 4,
      nEmbd: 128,
      blockSize: 64,
      batchSize: 12,
      gradAccum: 1,
      maxSteps: 2000,
      lr: 1e-3,
      minLr: 1e-4,
      warmupSteps: 100,
      decaySteps: 2000,
      beta1: 0.9,
      beta2: 0.99,
      weightDecay: 0.1,
      gradClip: 1.0,
      dropout: 0,
      bias: false,
      evalInterval: 250,
      evalBatches: 20,
      finalEvalBatches: 200,
      sampleInterval: 1000,
      checkpointInterval: 1000,
      samplePrompts: ['\n', 'ROMEO:'],
      sampleTokens: 200,
      name: 'shakespeare-char',
    },
  },
  small: {
    help: '12M parameters: 6 layers × 384 wide, 6 heads, context 256, BPE 4096 (an hour or more on a CPU)',
    config: { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, batchSize: 4, gradAccum: 4, vocabSize: 4096, lr: 6e-4, minLr: 6e-5, warmupSteps: 200, maxSteps: 5000, dropout: 0.1 },
  },
  'llama-tiny': {
    help: 'the tiny run with the Llama block: RMSNorm, SwiGLU, RoPE, 2 key/value heads',
    config: { family: 'llama', nKvHead: 2, tieEmbeddings: false },
  },
  gpt2: {
    help: 'GPT-2 124M: 12 layers × 768 wide, 12 heads, context 1024, the GPT-2 tokenizer (a GPU job: ~0.5M tokens per step)',
    config: {
      tokenizer: 'gpt2',
      nLayer: 12,
      nHead: 12,
      nEmbd: 768,
      blockSize: 1024,
      batchSize: 16,
      gradAccum: 32,
      maxSteps: 600000,
      lr: 6e-4,
      minLr: 6e-5,
      warmupSteps: 2000,
      decaySteps: 600000,
      beta1: 0.9,
      beta2: 0.95,
      weightDecay: 0.1,
      evalInterval: 1000,
      sampleInterval: 5000,
      checkpointInterval: 2000,
    },
  },
};

/** One line of help per field (the comments above, for --help). */
export const FIELD_HELP: Record<keyof TrainConfig, string> = {
  name: "Name of the run folder under `outDir` ('' = a timestamp).",
  outDir: "Folder holding run folders.",
  seed: "Seed of everything random: initialisation, batches, dropout masks, samples.",
  backend: "Compute backend: 'auto' (WASM SIMD when it works, else the plain TypeScript reference), 'wasm' or 'ref'.",
  threads: "Worker threads for the WASM backend (0 = one per core).",
  input: "Corpus: text files, folders (recursively), glob patterns or JSONL files; [] = the embedded State of the Union corpus; 'shakespeare' = the shipped tinyshakespeare.",
  textField: "JSONL field holding the text.",
  maxCorpusBytes: "Use only the first this many characters of the corpus (0 = all).",
  valFraction: "Fraction held out for validation (the last 10% of a single text, as nanoGPT splits tinyshakespeare).",
  tokenizer: "Tokenizer: 'bpe' (train a byte-level BPE on the corpus), 'char' (one id per character), 'gpt2', or a folder with tokenizer.json.",
  vocabSize: "Vocabulary size of a BPE trained on the corpus (ignored for 'char', 'gpt2' and folders).",
  tokenizerTrainBytes: "Characters of the corpus used to train the BPE (0 = all; a few MB is plenty).",
  cacheDir: "Folder of the token-shard cache.",
  family: "Architecture family: 'gpt2' (LayerNorm, GELU, learned positions) or 'llama' (RMSNorm, SwiGLU, RoPE).",
  nLayer: "Number of Transformer blocks.",
  nHead: "Number of attention (query) heads.",
  nKvHead: "Key/value heads for grouped-query attention (0 = nHead; llama only).",
  nEmbd: "Width of the residual stream.",
  intermediateSize: "Hidden width of the MLP (0 = 4·nEmbd for gpt2, ≈ 8/3·nEmbd rounded up to 32 for llama).",
  blockSize: "Context length: tokens per training sequence (T).",
  maxPositions: "Positions the model accepts (0 = blockSize).",
  dropout: "Dropout probability while training (0 = off).",
  tieEmbeddings: "Output head tied to the token embedding (always for gpt2).",
  bias: "Train biases; false = nanoGPT's bias=False (biases stay zero, no gradient).",
  ropeTheta: "RoPE base (llama only).",
  initFrom: "Start from this Hugging Face folder's weights instead of random ones ('' = from scratch).",
  batchSize: "Sequences per micro-batch (B).",
  gradAccum: "Micro-batches accumulated per optimizer step (tokens per step = gradAccum · batchSize · blockSize).",
  maxSteps: "Optimizer steps to take.",
  lr: "Peak learning rate (after warmup).",
  minLr: "Learning rate at the end of the cosine decay.",
  warmupSteps: "Steps of linear warmup: lr(s) = lr·(s+1)/warmupSteps for s < warmupSteps.",
  decaySteps: "Step where the cosine decay reaches minLr (0 = maxSteps); minLr afterwards.",
  schedule: "Learning-rate schedule: 'cosine' (warmup + cosine) or 'constant' (warmup then lr).",
  beta1: "AdamW β1.",
  beta2: "AdamW β2.",
  eps: "AdamW ε.",
  weightDecay: "AdamW decoupled weight decay.",
  decayOn: "Which parameters decay: 'matrices' (2-D weights only, as nanoGPT) or 'all' (torch.optim.AdamW on every parameter).",
  gradClip: "Clip the global gradient norm to this (0 = no clipping).",
  evalInterval: "Evaluate (validation loss, bits per byte) every this many steps, and at the end (0 = only at the end).",
  evalBatches: "Validation batches per evaluation (a fixed set, the same every time).",
  finalEvalBatches: "Validation batches of the evaluation after the last step (0 = evalBatches); more batches, a more precise final figure.",
  sampleInterval: "Print samples from the prompts every this many steps, and at the end (0 = only at the end).",
  sampleTokens: "Tokens generated per sample.",
  samplePrompts: "Prompts of the samples ('' starts from the first token of the vocabulary's separator).",
  temperature: "Sampling temperature (0 = greedy).",
  topK: "Keep only the k most likely tokens when sampling (0 = all).",
  checkpointInterval: "Write a checkpoint every this many steps, and at the end (0 = only at the end / on Ctrl-C).",
  resume: "Continue the run in this folder exactly where it stopped ('' = new run).",
  logInterval: "Print a progress line every this many steps when not on a terminal.",
  quiet: "Plain lines, no progress bar.",
  peakFlops: "Peak FLOP/s of this machine for MFU (default 330e9: 2-core sgemm peak).",
  timeLimit: "Stop (with a checkpoint) after this many seconds of training (0 = no limit).",
  report: "Write report.html at the end.",
};

type Kind = 'int' | 'float' | 'bool' | 'string' | 'strings' | readonly string[];
interface FieldSpec {
  kind: Kind;
  min?: number;
  max?: number;
  /** Strict lower bound (value must be > gt). */
  gt?: number;
}

/** Type and range of every field (complete: checked by the compiler). */
export const SCHEMA: Record<keyof TrainConfig, FieldSpec> = {
  name: { kind: 'string' },
  outDir: { kind: 'string' },
  seed: { kind: 'int', min: 0 },
  backend: { kind: ['auto', 'wasm', 'ref'] },
  threads: { kind: 'int', min: 0, max: 256 },
  input: { kind: 'strings' },
  textField: { kind: 'string' },
  maxCorpusBytes: { kind: 'int', min: 0 },
  valFraction: { kind: 'float', gt: 0, max: 0.9 },
  tokenizer: { kind: 'string' },
  vocabSize: { kind: 'int', min: 257, max: 1 << 20 },
  tokenizerTrainBytes: { kind: 'int', min: 0 },
  cacheDir: { kind: 'string' },
  family: { kind: ['gpt2', 'llama'] },
  nLayer: { kind: 'int', min: 1, max: 1000 },
  nHead: { kind: 'int', min: 1 },
  nKvHead: { kind: 'int', min: 0 },
  nEmbd: { kind: 'int', min: 1 },
  intermediateSize: { kind: 'int', min: 0 },
  blockSize: { kind: 'int', min: 1 },
  maxPositions: { kind: 'int', min: 0 },
  dropout: { kind: 'float', min: 0, max: 0.99 },
  tieEmbeddings: { kind: 'bool' },
  bias: { kind: 'bool' },
  ropeTheta: { kind: 'float', gt: 0 },
  initFrom: { kind: 'string' },
  batchSize: { kind: 'int', min: 1 },
  gradAccum: { kind: 'int', min: 1 },
  maxSteps: { kind: 'int', min: 1 },
  lr: { kind: 'float', gt: 0, max: 10 },
  minLr: { kind: 'float', min: 0 },
  warmupSteps: { kind: 'int', min: 0 },
  decaySteps: { kind: 'int', min: 0 },
  schedule: { kind: ['cosine', 'constant'] },
  beta1: { kind: 'float', min: 0, max: 0.999999 },
  beta2: { kind: 'float', min: 0, max: 0.999999 },
  eps: { kind: 'float', gt: 0 },
  weightDecay: { kind: 'float', min: 0 },
  decayOn: { kind: ['matrices', 'all'] },
  gradClip: { kind: 'float', min: 0 },
  evalInterval: { kind: 'int', min: 0 },
  evalBatches: { kind: 'int', min: 1 },
  finalEvalBatches: { kind: 'int', min: 0 },
  sampleInterval: { kind: 'int', min: 0 },
  sampleTokens: { kind: 'int', min: 0 },
  samplePrompts: { kind: 'strings' },
  temperature: { kind: 'float', min: 0 },
  topK: { kind: 'int', min: 0 },
  checkpointInterval: { kind: 'int', min: 0 },
  resume: { kind: 'string' },
  logInterval: { kind: 'int', min: 1 },
  quiet: { kind: 'bool' },
  peakFlops: { kind: 'float', gt: 0 },
  timeLimit: { kind: 'float', min: 0 },
  report: { kind: 'bool' },
};

/** nanoGPT / snake_case names accepted for our fields. */
const ALIASES: Record<string, keyof TrainConfig> = {
  n_layer: 'nLayer',
  n_head: 'nHead',
  n_kv_head: 'nKvHead',
  n_embd: 'nEmbd',
  block_size: 'blockSize',
  batch_size: 'batchSize',
  gradient_accumulation_steps: 'gradAccum',
  max_iters: 'maxSteps',
  learning_rate: 'lr',
  min_lr: 'minLr',
  warmup_iters: 'warmupSteps',
  lr_decay_iters: 'decaySteps',
  weight_decay: 'weightDecay',
  grad_clip: 'gradClip',
  eval_interval: 'evalInterval',
  eval_iters: 'evalBatches',
  out_dir: 'outDir',
  init_from: 'initFrom',
  vocab_size: 'vocabSize',
  max_new_tokens: 'sampleTokens',
  top_k: 'topK',
  steps: 'maxSteps',
  iters: 'maxSteps',
  layers: 'nLayer',
  heads: 'nHead',
  width: 'nEmbd',
  context: 'blockSize',
  data: 'input',
  corpus: 'input',
};

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** The closest known key to `key`. */
export function closestKey(key: string, keys: readonly string[] = [...Object.keys(SCHEMA), ...Object.keys(ALIASES)]): string {
  let best = keys[0]!, bestD = Infinity;
  const k = key.toLowerCase();
  for (const c of keys) {
    const d = editDistance(k, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

/** Map a user-written key (camelCase, kebab-case, snake_case alias) to a TrainConfig key, or throw with a suggestion. */
export function resolveKey(raw: string, file?: string): keyof TrainConfig {
  if (raw in SCHEMA) return raw as keyof TrainConfig;
  if (raw in ALIASES) return ALIASES[raw]!;
  const camel = raw.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  if (camel in SCHEMA) return camel as keyof TrainConfig;
  const s = closestKey(raw);
  throw new ConfigError(raw, `unknown setting. Did you mean '${ALIASES[s] ?? s}'? ('llmts train --help' lists them all)`, file);
}

function kindName(kind: Kind): string {
  if (typeof kind !== 'string') return `one of ${kind.map((k) => `'${k}'`).join(', ')}`;
  return { int: 'an integer', float: 'a number', bool: 'true or false', string: 'a string', strings: 'a list of strings' }[kind];
}

/**
 * Convert a value (a string from the command line, or a JSON value from a file) to the field's type, or throw a
 * ConfigError naming the key and the expected type.
 */
export function coerce(key: keyof TrainConfig, value: unknown, file?: string, json = false): unknown {
  const spec = SCHEMA[key];
  const bad = (): never => {
    throw new ConfigError(key, `expected ${kindName(spec.kind)}, got ${JSON.stringify(value)}`, file);
  };
  const kind = spec.kind;
  if (typeof kind !== 'string') {
    if (typeof value !== 'string' || !kind.includes(value)) bad();
    return value;
  }
  switch (kind) {
    case 'int':
    case 'float': {
      let n: number;
      if (typeof value === 'number') n = value;
      else if (typeof value === 'string' && !json && value.trim() !== '' && /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(value.trim().replace(/_/g, ''))) n = Number(value.trim().replace(/_/g, ''));
      else return bad();
      if (!Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n))) bad();
      return n;
    }
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (json) return bad();
      if (value === 'true' || value === '1' || value === 'yes') return true;
      if (value === 'false' || value === '0' || value === 'no') return false;
      return bad();
    case 'string':
      if (typeof value !== 'string') bad();
      return value;
    case 'strings':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
      if (typeof value === 'string' && !json) {
        if (value.trim().startsWith('[')) {
          try {
            const a = JSON.parse(value) as unknown;
            if (Array.isArray(a) && a.every((v) => typeof v === 'string')) return a;
          } catch {
            /* fall through */
          }
          return bad();
        }
        return value === '' ? [] : value.split(',');
      }
      return bad();
  }
}

/** Apply a preset by name (ConfigError with the list when unknown). */
export function presetConfig(name: string): Partial<TrainConfig> {
  const p = PRESETS[name];
  if (!p) throw new ConfigError('preset', `unknown preset '${name}'. Presets: ${Object.keys(PRESETS).join(', ')} (closest: '${closestKey(name, Object.keys(PRESETS))}')`);
  return p.config;
}

/** Read a JSON config file: an object of settings (same names and types as the command line). */
export function readConfigFile(file: string): Partial<TrainConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError('config', `cannot read '${file}' as JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('config', `'${file}' must hold a JSON object of settings`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k === 'preset' || k === '$schema' || k.startsWith('//')) continue;
    const key = resolveKey(k, file);
    out[key] = coerce(key, v, file, true);
  }
  return out as Partial<TrainConfig>;
}

/** Apply overrides given as key → value strings (from `--key=value`). */
export function parseOverrides(pairs: ReadonlyArray<readonly [string, string]>): Partial<TrainConfig> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of pairs) {
    const key = resolveKey(k);
    out[key] = coerce(key, v);
  }
  return out as Partial<TrainConfig>;
}

/** Range checks of every field and of their combinations; throws the first ConfigError found. */
export function validateConfig(c: TrainConfig): TrainConfig {
  for (const key of Object.keys(SCHEMA) as (keyof TrainConfig)[]) {
    const spec = SCHEMA[key];
    const v = c[key];
    coerce(key, v);
    if (typeof v === 'number') {
      if (spec.gt !== undefined && !(v > spec.gt)) throw new ConfigError(key, `must be > ${spec.gt}, got ${v}`);
      if (spec.min !== undefined && v < spec.min) throw new ConfigError(key, `must be ≥ ${spec.min}, got ${v}`);
      if (spec.max !== undefined && v > spec.max) throw new ConfigError(key, `must be ≤ ${spec.max}, got ${v}`);
    }
  }
  if (c.nEmbd % c.nHead !== 0) throw new ConfigError('nHead', `nEmbd (${c.nEmbd}) must be divisible by nHead (${c.nHead}); try nHead=${largestDivisor(c.nEmbd, c.nHead)}`);
  const kv = c.nKvHead || c.nHead;
  if (c.nHead % kv !== 0) throw new ConfigError('nKvHead', `nHead (${c.nHead}) must be a multiple of nKvHead (${kv})`);
  if (c.family === 'gpt2' && c.nKvHead && c.nKvHead !== c.nHead) throw new ConfigError('nKvHead', `the gpt2 family has no grouped-query attention; use family=llama or nKvHead=0`);
  if (c.family === 'gpt2' && !c.tieEmbeddings) throw new ConfigError('tieEmbeddings', 'the gpt2 family always ties its head to the embedding; use family=llama for an untied head');
  if (c.family === 'llama' && (c.nEmbd / c.nHead) % 2 !== 0) throw new ConfigError('nHead', `RoPE needs an even head width; nEmbd/nHead = ${c.nEmbd / c.nHead}`);
  if (c.maxPositions && c.blockSize > c.maxPositions) throw new ConfigError('blockSize', `blockSize (${c.blockSize}) must be ≤ maxPositions (${c.maxPositions}), the positions the model has`);
  if (c.minLr > c.lr) throw new ConfigError('minLr', `must be ≤ lr (${c.lr}), got ${c.minLr}`);
  if (c.temperature > 0 && c.topK < 0) throw new ConfigError('topK', 'must be ≥ 0');
  return c;
}

function largestDivisor(n: number, atMost: number): number {
  for (let d = atMost; d >= 1; d--) if (n % d === 0) return d;
  return 1;
}

/** Build a config: defaults ← preset ← file ← overrides, then validate. */
export function buildConfig(o: { preset?: string; file?: string; overrides?: Partial<TrainConfig> } = {}): TrainConfig {
  let c: TrainConfig = { ...DEFAULTS };
  const fromFile = o.file ? readConfigFile(o.file) : {};
  let presetName = o.preset;
  if (!presetName && o.file) {
    const raw = JSON.parse(fs.readFileSync(o.file, 'utf8')) as { preset?: unknown };
    if (typeof raw.preset === 'string') presetName = raw.preset;
  }
  if (presetName) c = { ...c, ...presetConfig(presetName) };
  c = { ...c, ...fromFile, ...(o.overrides ?? {}) };
  return validateConfig(c);
}

/** The model's ModelConfig for a training config and a vocabulary. */
export function toModelConfig(c: TrainConfig, vocabSize: number, special: { bos?: number | null; eos?: number | null } = {}): ModelConfig {
  const headDim = c.nEmbd / c.nHead;
  const llama = c.family === 'llama';
  const inter = c.intermediateSize || (llama ? 32 * Math.ceil(Math.round((8 * c.nEmbd) / 3) / 32) : 4 * c.nEmbd);
  return {
    family: c.family,
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

/** One line per field, for --help: name, type, default. */
export function describeFields(): string {
  return (Object.keys(SCHEMA) as (keyof TrainConfig)[])
    .map((k) => `  --${k}=<${kindName(SCHEMA[k].kind).replace(/^an? /, '')}>  ${FIELD_HELP[k]} (default ${JSON.stringify(DEFAULTS[k])})`)
    .join('\n');
}

/** What a `llmts train` / `llmts plan` command line holds. */
export interface CommandLine {
  preset?: string;
  file?: string;
  /** `--key=value` settings, in order. */
  pairs: [string, string][];
  /** Positional arguments (corpus inputs). */
  positionals: string[];
  /** Flags the command handles itself (e.g. resume, report, help), with their value ('' when bare). */
  flags: Map<string, string>;
}

/**
 * Split a command line: `--preset=x`, `--config=file.json`, `--key=value` (or `--key value`, or a bare `--flag` for
 * true/false settings), the command's own flags (`own`, e.g. ['resume', 'report', 'help']) and positionals.
 */
export function parseCommandLine(argv: readonly string[], own: readonly string[] = []): CommandLine {
  const out: CommandLine = { pairs: [], positionals: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.positionals.push(a);
      continue;
    }
    if (a === '-h') {
      out.flags.set('help', '');
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const key = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    const next = argv[i + 1];
    const takeNext = () => {
      if (value === undefined && next !== undefined && !next.startsWith('--')) {
        value = next;
        i++;
      }
    };
    if (own.includes(key)) {
      if (key !== 'help' && key !== 'resume') takeNext();
      else if (key === 'resume' && next !== undefined && !next.startsWith('-') && (fs.existsSync(next) || value !== undefined)) takeNext();
      out.flags.set(key, value ?? '');
      continue;
    }
    if (key === 'preset' || key === 'config') {
      takeNext();
      if (!value) throw new ConfigError(key, `needs a value: --${key}=${key === 'preset' ? Object.keys(PRESETS).join('|') : 'file.json'}`);
      if (key === 'preset') out.preset = value;
      else out.file = value;
      continue;
    }
    const k = resolveKey(key);
    if (value === undefined) {
      if (SCHEMA[k].kind === 'bool') value = 'true';
      else {
        takeNext();
        if (value === undefined) throw new ConfigError(k, `needs a value: --${k}=<${kindName(SCHEMA[k].kind)}>`);
      }
    }
    out.pairs.push([k, value]);
  }
  return out;
}

/** The config of a parsed command line (positionals become `input` unless --input is given). */
export function configFromCommandLine(cl: CommandLine): TrainConfig {
  const overrides = parseOverrides(cl.pairs);
  if (cl.positionals.length && !overrides.input) overrides.input = cl.positionals;
  return buildConfig({ ...(cl.preset ? { preset: cl.preset } : {}), ...(cl.file ? { file: cl.file } : {}), overrides });
}

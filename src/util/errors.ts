/**
 * Named error classes. Every error a user can trigger with bad input is one of these, with typed fields saying
 * which file, which field and what was expected, so a CLI can print one clear line instead of a stack trace.
 */

/** Base class of every error this package throws on purpose. `code` is stable and machine-readable. */
export class LlmtsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Tensor shapes that do not fit an operation. */
export class ShapeError extends LlmtsError {
  constructor(message: string) {
    super('E_SHAPE', message);
  }
}

/** A value (argument, config field, CLI flag) out of range or of the wrong type. */
export class ConfigError extends LlmtsError {
  readonly field: string;
  readonly file: string | undefined;
  constructor(field: string, message: string, file?: string) {
    super('E_CONFIG', `${file ? `${file}: ` : ''}${field}: ${message}`);
    this.field = field;
    this.file = file;
  }
}

/** A model architecture or config feature this package does not implement. */
export class UnsupportedError extends LlmtsError {
  constructor(message: string) {
    super('E_UNSUPPORTED', message);
  }
}

/** A malformed file: which file, which part of it (tensor, field), and what was wrong. */
export class FileFormatError extends LlmtsError {
  readonly file: string;
  readonly part: string | undefined;
  constructor(code: string, file: string, message: string, part?: string) {
    super(code, `${file}${part ? ` [${part}]` : ''}: ${message}`);
    this.file = file;
    this.part = part;
  }
}

/** A backend cannot run what it was asked to (missing kernel, out of memory, wrong buffer). */
export class BackendError extends LlmtsError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** Out of memory in a backend; says how much was needed and how much there is. */
export class OutOfMemoryError extends BackendError {
  readonly requestedBytes: number;
  readonly inUseBytes: number;
  readonly limitBytes: number;
  /** Bytes a caching allocator held idle when this was thrown (webgpu's buffer pool), 0 where there is none. */
  readonly pooledBytes: number;
  /**
   * `detail`: what the cache held (`pooledBytes`, said in the message where given) and which limit it is (`limitName`,
   * e.g. 'maxBufferSize').
   */
  constructor(
    backend: string,
    requestedBytes: number,
    inUseBytes: number,
    limitBytes: number,
    detail: { pooledBytes?: number; limitName?: string } = {},
  ) {
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const pooled = detail.pooledBytes !== undefined ? `, ${mb(detail.pooledBytes)} pooled` : '';
    const name = detail.limitName ? ` (${detail.limitName})` : '';
    super(
      'E_OOM',
      `${backend} backend: out of memory allocating ${mb(requestedBytes)} (${requestedBytes} bytes; ${mb(inUseBytes)} in use${pooled}, limit ${mb(limitBytes)}${name}). ` +
        'Reduce the batch size, the context length or the model size.',
    );
    this.requestedBytes = requestedBytes;
    this.inUseBytes = inUseBytes;
    this.limitBytes = limitBytes;
    this.pooledBytes = detail.pooledBytes ?? 0;
  }
}

/** Throw a ShapeError unless `cond` holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new ShapeError(typeof message === 'function' ? message() : message);
}

/** A prompt (or a conversation) that does not fit the model's context window. */
export class ContextOverflowError extends LlmtsError {
  readonly tokens: number;
  readonly limit: number;
  constructor(tokens: number, limit: number, what = 'prompt') {
    super('E_CONTEXT', `${what} is ${tokens} tokens but the model's context window is ${limit} tokens; shorten it`);
    this.tokens = tokens;
    this.limit = limit;
  }
}

/** Tokenizer: a special-token string (e.g. `<|im_start|>`) found in text whose policy is 'refuse'. */
export class SpecialTokenError extends LlmtsError {
  readonly token: string;
  readonly index: number;
  constructor(token: string, index: number) {
    super(
      'E_SPECIAL_TOKEN',
      `text contains the special token ${JSON.stringify(token)} at index ${index}; ` +
        "pass { special: 'plain' } to encode it as ordinary text, or { allowed: [...] } for trusted text",
    );
    this.token = token;
    this.index = index;
  }
}

/** Tokenizer: an id outside the vocabulary, a character a character-level vocabulary lacks, an unknown token name. */
export class VocabularyError extends LlmtsError {
  constructor(message: string) {
    super('E_VOCAB', message);
  }
}

/**
 * A model whose linear weights were quantised, or fused by fuseModel, for inference (src/model/quantize.ts) was used
 * for training.
 */
export class QuantizedModelError extends LlmtsError {
  readonly kind: string;
  constructor(kind: string, what = 'training') {
    super(
      'E_QUANTIZED',
      kind === 'f32'
        ? `this model's linear weights are fused copies (fuseModel) for inference only; ${what} needs the plain float32 model (dequantizeModel, or load it again)`
        : `this model's linear weights are quantised (${kind}) for inference only; ${what} needs the float32 model (load it again with --quantize f32, or loadModel without vacantLinears)`,
    );
    this.kind = kind;
  }
}

/**
 * Training produced a non-finite loss, gradient norm or weights. The run stopped before writing a checkpoint of the
 * bad weights; `lastGoodStep` is the step of the last checkpoint it wrote (or resumed from), null if none.
 */
export class TrainingDivergedError extends LlmtsError {
  readonly step: number;
  readonly lastGoodStep: number | null;
  /** The run folder (where metrics.jsonl is), when the trainer logs metrics. */
  readonly runDir: string | undefined;
  constructor(step: number, what: string, lastGoodStep: number | null, runDir?: string) {
    super(
      'E_DIVERGED',
      `training diverged at step ${step} (${what}); ` +
        (lastGoodStep === null
          ? 'no checkpoint was written. '
          : `the last good checkpoint (step ${lastGoodStep}) is kept. `) +
        'Try a lower learning rate (--lr), gradient clipping (--gradClip=1) or more warmup (--warmupSteps).',
    );
    this.step = step;
    this.lastGoodStep = lastGoodStep;
    this.runDir = runDir;
  }
}

/**
 * `llmts generate <model-dir> [prompt | -]`: continue a prompt with a model and stream the text.
 *
 *   llmts generate ./my-model "Once upon a time" --max-tokens 100 --temperature 0.8 --top-p 0.95 --seed 1
 *   echo "Once upon a time" | llmts generate ./my-model -
 *   llmts generate ./my-model --prompt-ids 1,2,3 --json          (works without a tokenizer)
 *   llmts generate ./my-model "Hi" --show-probs --top-logprobs 3  (colour by probability, list alternatives)
 *
 * Read top to bottom: defaults, parse, validate, load, run, print. Also exports the pieces `llmts chat` shares
 * (sampler flags, model + tokenizer loading, probability colours).
 */
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getBackend, initBackend, type BackendName, BACKEND_CHOICES } from '../backend/registry.js';
import { fuseModel, quantizationOfTypes, quantizeModel, type QuantizeReport } from '../model/quantize.js';
import { readGgufHeader } from '../formats/gguf_file.js';
import { type QuantizeFlag, quantizeOption } from './quantize_flag.js';
import { loadConfig, loadModel } from '../model/hf/folder.js';
import { checkpointEntries } from '../formats/checkpoint.js';
import { paramSpecs } from '../model/params.js';
import { formatDuration } from '../train/progress.js';
import { isGgufPath } from '../model/gguf/file.js';
import type { CausalLM } from '../model/model.js';
import { tokenizerCodec } from '../chat/codec.js';
import { generate, stream, type GenerateOptions, type StreamEvent } from '../generate/engine.js';
import type { TextCodec } from '../generate/interfaces.js';
import type { DraftStats } from '../generate/speculative.js';
import { resolveSamplerOptions, type SamplerOptions } from '../generate/sampler.js';
import { loadTokenizer } from '../tokenizer/io.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { readJsonFileSync } from '../util/fs.js';
import { leadingBos } from '../tokenizer/leading_bos.js';
import { readStdin } from './stdin.js';
import { addGrammarFlags, type GrammarFlags, grammarFromFlags } from './grammar_flags.js';
import {
  addSpeculativeFlags,
  checkDraftTokenizer,
  checkSpeculativeFlags,
  type SpeculativeFlags,
  speculativeFromFlags,
} from './speculative_flags.js';

// ---------------------------------------------------------------- shared with chat.ts

/** Parse a number flag; a bad value is a ConfigError naming the flag. */
export function numberFlag(flag: string, opts: { integer?: boolean } = {}): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || (opts.integer && !Number.isInteger(x)))
      throw new ConfigError(flag, `expected ${opts.integer ? 'an integer' : 'a number'}, got '${v}'`);
    return x;
  };
}

/** Add the sampler flags to a command. */
export function addSamplerFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--temperature <t>',
        'sampling temperature; 0 = greedy (default: generation_config.json, else 1)',
      ).argParser(numberFlag('--temperature')),
    )
    .addOption(
      new Option('--top-k <k>', 'keep the k most likely tokens (0 = off)').argParser(
        numberFlag('--top-k', { integer: true }),
      ),
    )
    .addOption(
      new Option('--top-p <p>', 'nucleus sampling: keep the most likely tokens up to mass p (1 = off)').argParser(
        numberFlag('--top-p'),
      ),
    )
    .addOption(
      new Option('--min-p <p>', 'drop tokens below p × the top probability (0 = off)').argParser(numberFlag('--min-p')),
    )
    .addOption(
      new Option('--repetition-penalty <r>', 'HF/CTRL repetition penalty (1 = off)').argParser(
        numberFlag('--repetition-penalty'),
      ),
    )
    .addOption(
      new Option('--frequency-penalty <f>', 'OpenAI frequency penalty (0 = off)').argParser(
        numberFlag('--frequency-penalty'),
      ),
    )
    .addOption(
      new Option('--presence-penalty <p>', 'OpenAI presence penalty (0 = off)').argParser(
        numberFlag('--presence-penalty'),
      ),
    )
    .addOption(
      new Option('--max-tokens <n>', 'most new tokens').argParser(numberFlag('--max-tokens', { integer: true })),
    )
    .addOption(
      new Option(
        '--seed <n>',
        'seed of the sampler (default: a fresh one, printed so the run can be repeated)',
      ).argParser(numberFlag('--seed', { integer: true })),
    )
    .addOption(
      new Option('--stop <text>', 'stop when this text is generated (repeatable)').argParser(
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
      ),
    )
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .addOption(
      new Option('--threads <n>', 'worker threads of the wasm backend').argParser(
        numberFlag('--threads', { integer: true }),
      ),
    )
    .addOption(quantizeOption('store the linear weights for faster decoding as'));
}

/** The sampler's own settings (documented in src/generate/sampler.ts) plus the command's. */
export interface SamplerFlags
  extends Pick<
    SamplerOptions,
    'temperature' | 'topK' | 'topP' | 'minP' | 'repetitionPenalty' | 'frequencyPenalty' | 'presencePenalty'
  > {
  maxTokens?: number;
  seed?: number;
  stop?: string[];
  backend: 'auto' | BackendName;
  threads?: number;
  /** Quantise the linear weights for inference (src/model/quantize.ts). */
  quantize?: QuantizeFlag;
}

/**
 * Sampler defaults from generation_config.json, as transformers reads it: `do_sample: false` is greedy
 * (temperature 0); `do_sample: true` samples with its temperature / top_k / top_p / min_p. Without `do_sample`, a
 * training checkpoint (trainer_state.json) samples as its training samples did (temperature, topK of the run).
 * A generation_config.json that is not JSON, or a field of the wrong type, is an error naming the file and field.
 * `source` says where the settings came from, for the line the CLI prints.
 */
export function generationDefaults(dir: string): SamplerOptions & { eos: number[]; source: string } {
  const file = path.join(dir, 'generation_config.json');
  const out: SamplerOptions & { eos: number[]; source: string } = { eos: [], source: 'built-in defaults' };
  let g: Record<string, unknown> = {};
  if (fs.existsSync(file)) {
    const raw = readJsonFileSync(file, 'a Hugging Face generation_config.json');
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw new FileFormatError('E_GENERATION_CONFIG', file, 'expected a JSON object');
    g = raw as Record<string, unknown>;
  }
  const num = (k: string, integer = false): number | undefined => {
    const v = g[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v)))
      throw new ConfigError(k, `expected a ${integer ? 'whole ' : ''}number ≥ 0, got ${JSON.stringify(v)}`, file);
    return v;
  };
  const eos = g['eos_token_id'];
  if (typeof eos === 'number') out.eos = [eos];
  else if (Array.isArray(eos)) out.eos = eos.filter((x): x is number => typeof x === 'number');
  const doSample = g['do_sample'];
  if (doSample !== undefined && doSample !== null && typeof doSample !== 'boolean')
    throw new ConfigError('do_sample', `expected true or false, got ${JSON.stringify(doSample)}`, file);
  const temperature = num('temperature'),
    topK = num('top_k', true),
    topP = num('top_p'),
    minP = num('min_p'),
    rep = num('repetition_penalty');
  if (doSample === true) {
    if (temperature !== undefined) out.temperature = temperature;
    if (topK !== undefined) out.topK = topK;
    if (topP !== undefined) out.topP = topP;
    if (minP !== undefined) out.minP = minP;
    out.source = 'generation_config.json (do_sample: true)';
  } else if (doSample === false) {
    out.temperature = 0;
    out.source = 'generation_config.json (do_sample: false: greedy)';
  } else {
    const state = path.join(dir, 'trainer_state.json');
    if (fs.existsSync(state)) {
      try {
        const c = (JSON.parse(fs.readFileSync(state, 'utf8')) as { config?: { temperature?: unknown; topK?: unknown } })
          .config;
        if (typeof c?.temperature === 'number' && c.temperature >= 0) out.temperature = c.temperature;
        if (typeof c?.topK === 'number' && Number.isInteger(c.topK) && c.topK >= 0) out.topK = c.topK;
        out.source = 'the training run (trainer_state.json: the settings of its samples)';
      } catch {
        /* an unreadable trainer state only loses these defaults; resuming reports it */
      }
    }
  }
  if (rep !== undefined) out.repetitionPenalty = rep;
  return out;
}

/** Sampler settings from flags over generation_config.json defaults. */
export function samplerFromFlags(f: SamplerFlags, defaults: SamplerOptions): SamplerOptions {
  const o: SamplerOptions = { ...defaults };
  const set = <K extends keyof SamplerOptions>(k: K, v: SamplerOptions[K] | undefined) => {
    if (v !== undefined) o[k] = v;
  };
  set('temperature', f.temperature);
  set('topK', f.topK);
  set('topP', f.topP);
  set('minP', f.minP);
  set('repetitionPenalty', f.repetitionPenalty);
  set('frequencyPenalty', f.frequencyPenalty);
  set('presencePenalty', f.presencePenalty);
  delete (o as Record<string, unknown>)['eos'];
  delete (o as Record<string, unknown>)['source'];
  return o;
}

/** Tokenizer files a model folder may hold. */
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'tokenizer.model', 'tiktoken.model'];

/** Whether a model folder holds a tokenizer (a GGUF file: whether it has tokenizer metadata is known on reading). */
export function hasTokenizer(dir: string): boolean {
  if (isGgufPath(dir)) return true;
  return TOKENIZER_FILES.some((f) => fs.existsSync(path.join(dir, f)));
}

/** The folder's tokenizer, or null when it has none. */
export async function loadTokenizerIfAny(dir: string): Promise<TextTokenizer | null> {
  if (!hasTokenizer(dir)) return null;
  try {
    return await loadTokenizer(dir);
  } catch (e) {
    // a GGUF file without tokenizer metadata (the weights alone)
    if (e instanceof FileFormatError && e.code === 'E_GGUF_TOKENIZER' && e.part === 'tokenizer.ggml.model') return null;
    throw e;
  }
}

export interface Loaded {
  model: CausalLM;
  /** How the linear weights are stored (quantizeModel's or fuseModel's report). */
  weights: QuantizeReport;
  tokenizer: TextTokenizer | null;
  codec: TextCodec | null;
  defaults: SamplerOptions & { eos: number[]; source: string };
  /** Token ids that end generation: generation_config / config eos, and the tokenizer's eos. */
  stopTokens: number[];
}

/** Load the model folder: backend, weights, tokenizer (if any), generation defaults. */
export async function loadForGeneration(
  dir: string,
  f: { backend: 'auto' | BackendName; threads?: number; quantize?: QuantizeFlag },
): Promise<Loaded> {
  if (!isGgufPath(dir) && !fs.existsSync(path.join(dir, 'config.json')))
    throw new ConfigError('model-dir', `${dir} is not a model folder (no config.json) nor a .gguf file`);
  await initBackend(f.backend, f.threads !== undefined ? { threads: f.threads } : {});
  // a file's matrices keep their precision unless asked otherwise (a GGUF Q4_K_M as q4k, Q8_0 as q8, a bfloat16
  // checkpoint as bf16); a model that will be quantised is read without a float32 copy of its linears and embedding
  // (each decoded as it is stored)
  const kind =
    f.quantize === 'f32'
      ? undefined
      : (f.quantize ?? (isGgufPath(dir) ? await ggufQuantization(dir) : await checkpointQuantization(dir)));
  if (!kind && getBackend().name === 'wasm') await checkFloatFits(dir);
  const model = await loadModel(dir, kind ? { vacantLinears: true } : {});
  await checkFiniteWeights(model, dir);
  const weights = kind
    ? await quantizeModel(model, kind, { dropFloat: true, onProgress: quantizeBar(kind) }) // float32 copies freed
    : await fuseModel(model, { dropFloat: true }); // float32: q/k/v and gate/up as one matmul each (fewer kernels)
  const tokenizer = await loadTokenizerIfAny(dir);
  const defaults = generationDefaults(dir);
  const V = model.config.vocabSize;
  // a model may pad its vocabulary past the tokenizer's (nanoGPT: 50304 for 50257); a much smaller tokenizer is the
  // wrong one, and would fail only when the model first samples an id it cannot decode
  if (tokenizer && tokenizer.vocabSize < V && V - tokenizer.vocabSize > Math.max(64, 0.01 * V)) {
    throw new ConfigError(
      'tokenizer',
      `the tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary has ${V} (config.json vocab_size): ` +
        'they do not belong together; put the tokenizer the model was trained with in the folder',
      path.join(dir, 'tokenizer.json'),
    );
  }
  const stop = new Set<number>(defaults.eos);
  const cfgEos = model.config.eosTokenId;
  for (const e of cfgEos === null ? [] : Array.isArray(cfgEos) ? cfgEos : [cfgEos]) stop.add(e);
  if (tokenizer?.eosId !== undefined) stop.add(tokenizer.eosId);
  return {
    model,
    weights,
    tokenizer,
    codec: tokenizer ? tokenizerCodec(tokenizer) : null,
    defaults,
    stopTokens: [...stop].filter((x) => Number.isInteger(x) && x >= 0 && x < V),
  };
}

/** The quantisation that keeps a GGUF file's linear matrices as it stores them (its header only is read). */
async function ggufQuantization(file: string) {
  const g = await readGgufHeader(file);
  return quantizationOfTypes(
    g.tensors
      .filter((t) => t.shape.length === 2 && t.name !== 'token_embd.weight' && t.name !== 'position_embd.weight')
      .map((t) => t.type),
  );
}

/**
 * On a terminal, a bar while the weights are stored (stderr; gone when done): from float weights a 1B model's q4k
 * search takes minutes. Shown once the work has taken a second, so a quick load stays quiet.
 */
function quantizeBar(kind: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const t0 = performance.now();
  let bar: cliProgress.SingleBar | null = null;
  return (done, total) => {
    const s = (performance.now() - t0) / 1000;
    if (!bar && done < total && s > 1) {
      bar = new cliProgress.SingleBar(
        {
          format: ` storing the weights as ${kind} {bar} {value}/{total} matrices | ETA {etaS}`,
          barsize: 24,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, done, { etaS: '?' });
    }
    bar?.update(done, { etaS: done > 0 ? formatDuration(((total - done) * s) / done) : '?' });
    if (done === total) bar?.stop();
  };
}

/** A safetensors folder's matrices (but the embeddings) by dtype: 'bf16' for a bfloat16 checkpoint. */
async function checkpointQuantization(dir: string) {
  const entries = await checkpointEntries(dir);
  return quantizationOfTypes(
    [...entries]
      .filter(([name, e]) => e.shape.length === 2 && !/(embed_tokens|wte|wpe)\.weight$/.test(name))
      .map(([, e]) => e.dtype),
  );
}

/** WebAssembly's memory ends at 4 GiB; the float32 weights must leave room for the KV cache and activations. */
const WASM_FLOAT_LIMIT = 3.5 * 2 ** 30;

/** Refuse, before reading it, a model whose float32 weights cannot fit in WebAssembly's memory: name the way out. */
async function checkFloatFits(dir: string): Promise<void> {
  const config = await loadConfig(dir);
  const n = paramSpecs(config).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  if (n * 4 <= WASM_FLOAT_LIMIT) return;
  const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;
  throw new ConfigError(
    'quantize',
    `${dir}: ${(n / 1e9).toFixed(2)} B parameters are ${gb(n * 4)} as float32, past what WebAssembly's 4 GiB of ` +
      `memory holds with room to run; run it with --quantize bf16 (${gb(n * 2)}), q8 (${gb(n * 1.0625)}) or q4k ` +
      `(${gb(n * 0.5625)}), read from the file without a float32 copy`,
  );
}

/** Refuse weights holding NaN or ±Infinity (a diverged training run): they would generate garbage silently. */
async function checkFiniteWeights(model: CausalLM, dir: string): Promise<void> {
  for (const [name, p] of model.params) {
    if (p.storage.gone) continue; // a vacant matrix (quantised from the file as it loads)
    const d = await p.data();
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i]!)) {
        throw new FileFormatError(
          'E_WEIGHTS_NOT_FINITE',
          path.join(dir, 'model.safetensors'),
          `holds ${d[i]} at element ${i}: the model is broken (a diverged training run?); use an earlier checkpoint`,
          name,
        );
      }
    }
  }
}

/** Whether to write ANSI colours. */
export function useColour(): boolean {
  if (process.env['NO_COLOR']) return false;
  return !!process.stdout.isTTY || !!process.env['FORCE_COLOR'];
}

/** Colour a piece of text by probability: green ≥ 0.5, yellow ≥ 0.2, red below. Without colours: text⟨p⟩. */
export function colourByProb(text: string, p: number, colour: boolean): string {
  if (!colour) return `${text}⟨${p.toFixed(2)}⟩`;
  const code = p >= 0.5 ? 32 : p >= 0.2 ? 33 : 31;
  return `\x1b[${code}m${text}\x1b[0m`;
}

/** Run a commander program with our error conventions; returns the exit code, or null to continue. */
export function parseOrExit(program: Command, argv: string[]): number | null {
  program.exitOverride();
  try {
    program.parse(argv, { from: 'user' });
    return null;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
}

function parseIds(s: string): number[] {
  const parts = s.split(/[\s,]+/).filter((x) => x !== '');
  const ids = parts.map(Number);
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0))
    throw new ConfigError('--prompt-ids', `expected comma-separated non-negative integers, got '${s}'`);
  return ids;
}

// ---------------------------------------------------------------- the command

interface GenerateFlags extends SamplerFlags, GrammarFlags, SpeculativeFlags {
  promptIds?: string;
  showProbs?: boolean;
  topLogprobs?: number;
  json?: boolean;
  eos: boolean;
  logitBias?: Map<number, number>;
}

/** One `--logit-bias` value, llama.cpp's spelling TOKEN_ID(+|-)BIAS (e.g. 15043+1, 198-100), added to the map so far. */
function logitBiasFlag(v: string, prev: Map<number, number> | undefined): Map<number, number> {
  const m = /^(\d+)([+-]\d+(?:\.\d+)?)$/.exec(v.trim());
  if (!m) throw new ConfigError('--logit-bias', `expected TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 198-100), got '${v}'`);
  return new Map([...(prev ?? []), [Number(m[1]), Number(m[2])]]);
}

/** The speculative decoding the flags ask for: a draft model loaded as the model is (same backend and weights), or lookup. */
export async function loadSpeculative(f: SpeculativeFlags & Parameters<typeof loadForGeneration>[1], L: Loaded) {
  if (f.modelDraft === undefined) return speculativeFromFlags(f, null);
  const D = await loadForGeneration(f.modelDraft, f);
  checkDraftTokenizer(L.tokenizer, D.tokenizer, f.modelDraft);
  return speculativeFromFlags(f, D.model);
}

export async function main(argv: string[]): Promise<number> {
  // parse
  const program = addSpeculativeFlags(
    addGrammarFlags(
      addSamplerFlags(
        new Command('llmts generate')
          .description('continue a prompt with a model (streams the text)')
          .argument('<model-dir>', 'model folder (config.json, model.safetensors, tokenizer.json) or .gguf file')
          .argument('[prompt]', "prompt text, or '-' to read it from stdin"),
      ),
    ),
  )
    .option('--prompt-ids <ids>', 'prompt as token ids, e.g. 1,2,3 (works without a tokenizer)')
    .option('--show-probs', 'colour each token by its probability (green ≥ 0.5, yellow ≥ 0.2, red below)')
    .addOption(
      new Option('--top-logprobs <n>', 'report the n most likely alternatives per token (0..20)').argParser(
        numberFlag('--top-logprobs', { integer: true }),
      ),
    )
    .option('--json', 'print one JSON object: text, ids, seed, finish_reason, logprobs')
    .option('--no-eos', 'do not stop at the end-of-sequence token')
    .addOption(
      new Option(
        '--logit-bias <id±bias>',
        "add a bias to a token's logit before sampling, e.g. 198-100 (all but bans id 198), 42+5; repeatable",
      ).argParser(logitBiasFlag),
    );
  const code = parseOrExit(program, argv);
  if (code !== null) return code;
  const [dir, promptArg] = program.processedArgs as [string, string | undefined];
  const f = program.opts<GenerateFlags>();

  // validate the prompt source before loading anything heavy
  if (f.promptIds !== undefined && promptArg !== undefined)
    throw new ConfigError('prompt', 'give either a prompt text or --prompt-ids, not both');
  let ids = f.promptIds !== undefined ? parseIds(f.promptIds) : null;
  let promptText: string | null = null;
  if (ids === null) {
    // from stdin: one trailing newline (as `echo` adds) is not part of the prompt
    if (promptArg === '-' || (promptArg === undefined && !process.stdin.isTTY))
      promptText = (await readStdin()).replace(/\r?\n$/, '');
    else if (promptArg !== undefined) promptText = promptArg;
    else throw new ConfigError('prompt', 'no prompt: give a text, - for stdin, or --prompt-ids 1,2,3');
  }

  resolveSamplerOptions({
    ...samplerFromFlags(f, {}),
    ...(f.topLogprobs !== undefined ? { topLogprobs: f.topLogprobs } : {}),
  }); // bad values fail before loading
  const grammar = grammarFromFlags(f);
  checkSpeculativeFlags(f);
  const noTokenizer = () =>
    new ConfigError(
      'prompt',
      `${dir} has no tokenizer (tokenizer.json), so a text prompt cannot be encoded; give token ids with --prompt-ids 1,2,3`,
    );
  if (promptText !== null && fs.existsSync(path.join(dir, 'config.json')) && !hasTokenizer(dir)) throw noTokenizer();

  // load
  const L = await loadForGeneration(dir, f);
  const speculative = await loadSpeculative(f, L);
  if (promptText !== null) {
    if (!L.codec) throw noTokenizer();
    ids = L.codec.encode(promptText);
    const bos = L.tokenizer ? leadingBos(L.tokenizer) : undefined;
    if (bos !== undefined && ids[0] !== bos) ids.unshift(bos);
  }
  if (!f.json) {
    const used = samplerFromFlags(f, L.defaults);
    const t = used.temperature ?? 1;
    process.stderr.write(
      `[sampling: ${t === 0 ? 'greedy' : `temperature ${t}${used.topK ? `, top-k ${used.topK}` : ''}${used.topP !== undefined && used.topP < 1 ? `, top-p ${used.topP}` : ''}`}; defaults from ${L.defaults.source}]\n`,
    );
  }
  const opts: GenerateOptions = {
    ...samplerFromFlags(f, L.defaults),
    maxTokens: f.maxTokens ?? 128,
    stopTokens: f.eos ? L.stopTokens : [],
  };
  if (f.stop?.length) opts.stop = f.stop;
  if (f.seed !== undefined) opts.seed = f.seed;
  if (f.topLogprobs !== undefined) opts.topLogprobs = f.topLogprobs;
  else if (f.json) opts.topLogprobs = 0;
  if (L.codec) opts.tokenizer = L.codec;
  if (speculative) opts.speculative = speculative;
  if (f.logitBias) opts.logitBias = f.logitBias;
  if (grammar) {
    if (!L.codec)
      throw new ConfigError('--grammar', `${dir} has no tokenizer, so a grammar cannot be matched to tokens`);
    opts.grammar = grammar;
  }
  if (f.stop?.length && !L.codec)
    throw new ConfigError(
      '--stop',
      `${dir} has no tokenizer, so stop strings cannot be matched; use the eos token instead`,
    );

  // Ctrl-C stops generation and keeps what was produced
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  opts.signal = ac.signal;
  try {
    if (f.json) {
      const r = await generate(L.model, [ids!], opts);
      const c = r.choices[0]!;
      const out = {
        text: c.text,
        ids: c.ids,
        prompt_ids: ids,
        seed: r.seed,
        finish_reason: c.finish_reason,
        stopped_by: c.stopped_by,
        usage: c.usage,
        timings: c.timings,
        ...(c.draft ? { draft: c.draft } : {}),
        logprobs: c.logprobs,
      };
      process.stdout.write(JSON.stringify(out) + '\n');
      return 0;
    }
    return await streamToTerminal(L, ids!, opts, f, promptText);
  } catch (e) {
    if (ac.signal.aborted) {
      process.stderr.write('\n[stopped]\n');
      return 130;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

async function streamToTerminal(
  L: Loaded,
  ids: number[],
  opts: GenerateOptions,
  f: GenerateFlags,
  promptText: string | null,
): Promise<number> {
  const colour = useColour();
  const events: StreamEvent[] = [];
  const t0 = performance.now();
  if (promptText !== null) process.stdout.write(promptText);
  let seed: number;
  let finish: string | null;
  let draft: DraftStats | null | undefined = null;
  if (L.codec) {
    const { tokenizer: _t, ...rest } = opts;
    const s = stream(L.model, L.codec, ids, rest);
    seed = s.seed;
    for await (const ev of s) {
      events.push(ev);
      const p = Math.exp(ev.logprob);
      if (!ev.isStopToken) process.stdout.write(f.showProbs && ev.text ? colourByProb(ev.text, p, colour) : ev.text);
      else process.stdout.write(ev.text);
    }
    finish = s.finishReason;
    draft = s.draft;
  } else {
    // no tokenizer: print the ids as they come (generate() with one token per step is the same loop)
    const r = await generate(L.model, [ids], opts);
    seed = r.seed;
    const c = r.choices[0]!;
    process.stdout.write(c.ids.join(' '));
    for (const e of c.logprobs.content) events.push({ text: String(e.id), id: e.id, logprob: e.logprob, prob: e.prob });
    finish = c.finish_reason;
    draft = c.draft;
  }
  process.stdout.write('\n');
  const ms = performance.now() - t0;
  const n = events.filter((e) => !e.isStopToken).length;
  if (f.showProbs && (f.topLogprobs ?? 0) > 0 && L.codec) {
    process.stderr.write('\ntoken                 prob    alternatives\n');
    for (const e of events) {
      if (e.isStopToken) continue;
      const tok = JSON.stringify(L.codec.decode([e.id])).padEnd(20);
      const alts = (e.top ?? []).map((a) => `${JSON.stringify(a.token)} ${Math.exp(a.logprob).toFixed(3)}`).join('  ');
      process.stderr.write(
        `${tok}  ${colourByProb(Math.exp(e.logprob).toFixed(3), Math.exp(e.logprob), colour)}  ${alts}\n`,
      );
    }
  }
  const drafted = draft
    ? `, ${draft.accepted} of ${draft.drafted} drafted tokens taken (${draft.drafted ? Math.round((100 * draft.accepted) / draft.drafted) : 0}%)`
    : '';
  process.stderr.write(
    `[seed ${seed}, ${n} tokens, finish ${finish ?? '?'}, ${(n / (ms / 1000)).toFixed(1)} tok/s${drafted}]\n`,
  );
  return 0;
}

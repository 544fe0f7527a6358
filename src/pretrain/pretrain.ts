/**
 * Pretraining, top to bottom (what `llmts train` runs): defaults → parse → validate → build → run → clean up.
 *   1. the run folder (`runs/<name>`), or the checkpoint being resumed;
 *   2. the corpus (files, folders, globs, JSONL, or the embedded one) and the tokenizer (BPE trained on the corpus
 *      and cached, character-level, GPT-2's, or a folder's);
 *   3. token shards (cached by corpus fingerprint + tokenizer hash) and the train/validation split;
 *   4. the model (fresh from the seed, from --initFrom, or the checkpoint), the batcher and the fixed validation batches;
 *   5. the loop (src/train/run.ts) with the recipe's hooks: samples, checkpoints (also on Ctrl-C), metrics.jsonl,
 *      report.html;
 *   6. a summary: samples, where the checkpoint is.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../backend/registry.js';
import { defaultGenerationConfig, loadConfig, loadModel, saveModel } from '../model/hf/folder.js';
import type { ModelConfig } from '../model/config.js';
import { initModel } from '../model/init.js';
import type { CausalLM } from '../model/model.js';
import { CharTokenizer, loadTokenizer, saveTokenizer, trainBpe, type TextTokenizer } from '../tokenizer/index.js';
import { toTokenizerJson } from '../tokenizer/hf_json.js';
import { ConfigError, LlmtsError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { loadCorpus, type Document } from '../data/corpus.js';
import { corpusFingerprint, prepareTokens, type TokenData } from '../data/shards.js';
import { Batcher, checkSplitSize, fixedBatches } from '../data/batcher.js';
import { cacheDirOf, validateConfig, toModelConfig, type TrainConfig } from './settings.js';
import { checkSameShape, saveTrainingCheckpoint, type TrainerStateFile } from '../train/checkpoint.js';
import {
  loopSummary,
  modelShape,
  openRun,
  recipeResult,
  type RecipeOptions,
  type RecipeResult,
} from '../train/recipe.js';
import { countParams, flopsPerToken, formatCount } from './estimate.js';
import { runTraining } from '../train/run.js';
import { sampleIds } from '../train/sample.js';
import type { Trainer } from '../train/trainer.js';

const EOT = '<|endoftext|>';

export type PretrainOptions = RecipeOptions<TrainConfig>;

export interface PretrainResult extends RecipeResult<TrainConfig> {
  /** The last validation loss, and the step of that evaluation. */
  finalValLoss: number | null;
  finalValStep: number | null;
  samples: { prompt: string; text: string }[];
}

/** sha256 of a tokenizer's tokenizer.json (what its ids mean). */
export function tokenizerHash(tok: TextTokenizer): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify(toTokenizerJson(tok)))
    .digest('hex');
}

/** Build (or load from the cache) the tokenizer a config asks for. */
async function makeTokenizer(
  c: TrainConfig,
  docs: Document[],
  fp: string,
  log: (s: string) => void,
): Promise<TextTokenizer> {
  if (c.tokenizer === 'char') {
    // '\n' is always in: documents are joined with '\n\n' in the token shards, even a corpus of one line
    return CharTokenizer.fromText(`${docs.map((d) => d.text).join('\n\n')}\n`);
  }
  if (c.tokenizer !== 'bpe') return loadTokenizer(c.tokenizer);
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify({ fp, v: c.vocabSize, b: c.tokenizerTrainBytes, eot: EOT }))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(cacheDirOf(c), 'tokenizers', key);
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return loadTokenizer(dir);
  const texts: string[] = [];
  let n = 0;
  for (const d of docs) {
    if (c.tokenizerTrainBytes && n >= c.tokenizerTrainBytes) break;
    const t = c.tokenizerTrainBytes ? d.text.slice(0, c.tokenizerTrainBytes - n) : d.text;
    texts.push(t);
    n += t.length;
  }
  const t0 = performance.now();
  const tok = trainBpe(texts, {
    vocabSize: c.vocabSize,
    specialTokens: [EOT],
    config: { bosToken: EOT, eosToken: EOT },
  });
  log(
    `trained a BPE tokenizer: ${tok.vocabSize} tokens on ${(n / 1e6).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  await saveTokenizer(tok, dir);
  return tok;
}

/** Run (or resume) a pretraining run. */
export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const log = o.log ?? ((s: string) => console.log(s));

  // ---- 1. run folder and config
  const run = openRun(o, { command: 'pretrain', defaultOutDir: 'runs', stampPrefix: '', validate: validateConfig });
  const { config: c, runDir, resumeDir, saved, checkpointDir: ckDir } = run;
  fs.mkdirSync(runDir, { recursive: true });

  // ---- 2. backend, corpus, tokenizer
  const backend = await initBackend(c.backend, {
    ...(c.threads ? { threads: c.threads } : {}),
    ...(c.precision === 'f16' ? { matmulPrecision: 'f16' as const } : {}),
  });
  const docs = loadCorpus(c.input, {
    textField: c.textField,
    maxBytes: c.maxCorpusBytes,
    onInvalidUtf8: (file, n) =>
      log(
        `warning: ${file}: ${n} bytes are not valid UTF-8 and were read as U+FFFD (a Latin-1 file? convert it: iconv -f latin1 -t utf-8)`,
      ),
  });
  const fp = corpusFingerprint(docs);
  if (saved && saved.corpusFingerprint !== fp) {
    log(
      `warning: the corpus differs from the one this run started with; the resumed run will not match an uninterrupted one`,
    );
  }
  const initDir = resumeDir ?? (c.initFrom ? c.initFrom : null);
  const tok: TextTokenizer = initDir ? await loadTokenizer(initDir) : await makeTokenizer(c, docs, fp, log);
  for (const p of c.samplePrompts) {
    try {
      tok.encode(p, { special: 'plain' });
    } catch (e) {
      // a char-level vocabulary has only the corpus's characters: say so now, not at the first samples
      if (e instanceof LlmtsError)
        throw new ConfigError(
          'samplePrompts',
          `the prompt ${JSON.stringify(p)} cannot be encoded: ${e.message}; set --samplePrompts to prompts in the corpus's alphabet`,
        );
      throw e;
    }
  }
  const tokHash = tokenizerHash(tok);
  const bytes = docs.reduce((n, d) => n + d.text.length, 0);
  log(
    `corpus: ${docs.length} document${docs.length === 1 ? '' : 's'}, ${(bytes / 1e6).toFixed(2)} M characters${c.input.length ? '' : ' (the embedded State of the Union addresses)'}; tokenizer: ${tok.kind}, ${tok.vocabSize} ids`,
  );

  // ---- 3. token shards
  const sep = tok.eosId !== undefined ? [tok.eosId] : undefined;
  const t0 = performance.now();
  const data: TokenData = prepareTokens({
    docs,
    tokenizer: { encode: (s: string) => tok.encode(s, { special: 'plain' }) },
    tokenizerHash: tokHash,
    vocabSize: tok.vocabSize,
    valFraction: c.valFraction,
    cacheDir: cacheDirOf(c),
    ...(sep ? { separator: sep } : {}),
  });
  log(
    `tokens: ${formatCount(data.train.tokens)} train / ${formatCount(data.val.tokens)} validation (${data.meta.splitMode} split, ` +
      `${(data.train.bytes / Math.max(1, data.train.tokens)).toFixed(2)} bytes/token) ${data.reused ? 'from the cache' : `in ${((performance.now() - t0) / 1000).toFixed(1)} s`}`,
  );
  checkSplitSize(data.train, c.batchSize, c.blockSize, 'train');

  // ---- 4. model, batches
  const want: ModelConfig = toModelConfig(c, tok.vocabSize, { bos: tok.bosId ?? null, eos: tok.eosId ?? null });
  let model: CausalLM;
  if (initDir) {
    const found = await loadConfig(initDir);
    checkSameShape(found, want, initDir);
    model = await loadModel(initDir, { backend });
    if (c.dropout !== model.config.dropout) (model.config as { dropout: number }).dropout = c.dropout;
  } else model = initModel(want, new Rng(c.seed), { backend });
  if (!c.bias) {
    // nanoGPT's bias=False: zero biases that never train (no gradient, so AdamW and the clipping norm skip them)
    for (const [name, p] of model.params) if (name.endsWith('.bias')) p.requiresGrad = false;
  }
  if (c.blockSize > model.config.maxPositions)
    throw new ConfigError('blockSize', `must be ≤ the model's ${model.config.maxPositions} positions`);
  const batcher = new Batcher(data.train, c.batchSize, c.blockSize, new Rng(c.seed).fork(), 'train');
  const evalSeed = (c.seed ^ 0x5f3759df) >>> 0;
  const evalBatches = fixedBatches(data.val, c.batchSize, c.blockSize, c.evalBatches, evalSeed, 'validation');
  // The final evaluation's batches start with the interval ones (same seed), so its figure extends theirs.
  const finalEvalBatches =
    c.finalEvalBatches > c.evalBatches
      ? fixedBatches(data.val, c.batchSize, c.blockSize, c.finalEvalBatches, evalSeed, 'validation')
      : undefined;
  const fpt = flopsPerToken(model.config, c.blockSize);
  const nParams = countParams(model.config).total;
  log(
    `model: ${model.config.family}, ${c.nLayer} layers × ${c.nEmbd} wide, ${c.nHead} heads, context ${c.blockSize}: ${formatCount(nParams)} parameters; ` +
      `backend ${backend.describe()}`,
  );

  // ---- 5. the loop (src/train/run.ts: metrics.jsonl, progress, Ctrl-C, checkpoints, report)
  const sampleSeed = (step: number, i: number) => (Math.imul(c.seed ^ 0x2545f491, 31) + step * 131 + i) >>> 0;
  const prompts = c.samplePrompts.length ? c.samplePrompts : [''];
  let lastSamples: { prompt: string; text: string }[] = [];
  const sample = async (step: number) => {
    if (c.sampleTokens === 0) return [];
    const out: { prompt: string; text: string }[] = [];
    for (let i = 0; i < prompts.length; i++) {
      const p = prompts[i]!;
      let ids = tok.encode(p, { special: 'plain' });
      if (!ids.length) ids = sep ?? tok.encode('\n');
      const newIds = await sampleIds(model, ids, {
        maxTokens: c.sampleTokens,
        temperature: c.temperature,
        topK: c.topK,
        seed: sampleSeed(step, i),
        ...(tok.eosId !== undefined ? { stopId: tok.eosId } : {}),
      });
      out.push({ prompt: p, text: tok.decode(newIds, { continuation: true }) }); // read after the prompt
    }
    lastSamples = out;
    return out;
  };
  const writeCheckpoint = async (t: Trainer): Promise<string> => {
    const state: TrainerStateFile<TrainConfig> = {
      version: 1,
      ...t.state,
      config: { ...c, resume: '' },
      model: modelShape(model.config),
      tokenizerHash: tokHash,
      corpusFingerprint: fp,
      savedAt: new Date().toISOString(),
    };
    await saveTrainingCheckpoint({
      dir: ckDir,
      // the run's sample settings become the checkpoint's defaults (`llmts generate`/`chat`, transformers' generate)
      saveModel: (d) =>
        saveModel(model, d, {
          generationConfig: {
            ...defaultGenerationConfig(model.config),
            do_sample: c.temperature > 0,
            ...(c.temperature > 0 ? { temperature: c.temperature, top_k: c.topK } : {}),
          },
        }),
      saveTokenizer: (d) => saveTokenizer(tok, d),
      state,
      moments: await t.optimizer.stateDict(),
    });
    return ckDir;
  };
  if (saved) log(`resuming ${runDir} at step ${saved.step} of ${c.maxSteps}`);
  const done = await runTraining({
    runDir,
    trainer: {
      model,
      batcher,
      evalBatches,
      ...(finalEvalBatches ? { finalEvalBatches } : {}),
      valBytesPerToken: data.val.bytes / Math.max(1, data.val.tokens),
      config: c,
      flopsPerToken: fpt,
      vocabSize: tok.vocabSize,
    },
    display: c,
    ...(saved ? { resume: { state: saved, dir: resumeDir! } } : {}),
    saveCheckpoint: writeCheckpoint,
    sample,
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.haltAfterStep !== undefined ? { haltAfterStep: o.haltAfterStep } : {}),
    ...(o.handleSigint !== undefined ? { handleSigint: o.handleSigint } : {}),
    // One measure of training time, here, on the console and in `--report-only`: seconds in optimizer steps, summed over the run's parts.
    summary: (t, why) => ({
      parameters: `${formatCount(nParams)} (${model.config.family}, ${c.nLayer}×${c.nEmbd}, ${c.nHead} heads, context ${c.blockSize})`,
      tokenizer: `${tok.kind}, ${tok.vocabSize} ids`,
      corpus: `${c.input.length ? c.input.join(', ') : 'State of the Union addresses (embedded)'}: ${formatCount(data.train.tokens)} train / ${formatCount(data.val.tokens)} validation tokens`,
      steps: `${t.state.step} of ${c.maxSteps} (${why})`,
      'tokens seen': formatCount(t.state.tokensSeen),
      ...loopSummary(t, ckDir, backend, 'validation'),
    }),
  });

  // ---- 6. summary
  const lastEval = done.trainer.state.evals[done.trainer.state.evals.length - 1];
  return {
    ...recipeResult(run, done, c),
    finalValLoss: lastEval ? lastEval.valLoss : null,
    finalValStep: lastEval ? lastEval.step : null,
    samples: lastSamples,
  };
}

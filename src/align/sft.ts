/**
 * Supervised fine-tuning (what `llmts sft` runs), TRL's SFTTrainer on the shared loop (src/train/run.ts):
 *   1. the run folder (`runs/<name>`), or the checkpoint being resumed;
 *   2. the pretrained model folder: weights, tokenizer, chat template (its own, else ChatML);
 *   3. the data (src/data/trl.ts): TRL JSONL rows → ids and loss masks (sft_data.ts: assistant / completion tokens
 *      only), long ones truncated and counted, the held-out split;
 *   4. padded batches in a per-epoch shuffled order (sft_batches.ts) and fixed evaluation batches;
 *   5. the loop with TRL's metric names in metrics.jsonl (loss, learning_rate, grad_norm, epoch, num_tokens,
 *      mean_token_accuracy, eval_loss, eval_mean_token_accuracy), checkpoints as Hugging Face folders that
 *      `llmts chat` loads (the chat template written into tokenizer_config.json), Ctrl-C and exact resume, report.html.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../backend/registry.js';
import type { Backend } from '../backend/backend.js';
import { jinjaTemplate, type ChatTemplate } from '../chat/template.js';
import { readTrlDataset, TrlRowError, type TrlDataset } from '../data/trl.js';
import { saveModel } from '../model/hf/folder.js';
import { loadPolicy } from './peft.js';
import { countParams, flopsPerToken, formatCount } from '../pretrain/estimate.js';
import { loadTokenizer, saveTokenizer, type TextTokenizer } from '../tokenizer/index.js';
import { saveTrainingCheckpoint, type TrainerStateFile } from '../train/checkpoint.js';
import {
  loopSummary,
  modelShape,
  openRun,
  recipeResult,
  releaseRun,
  type RecipeOptions,
  type RecipeResult,
} from '../train/recipe.js';
import { runTraining } from '../train/run.js';
import { sampleIds } from '../train/sample.js';
import type { Trainer } from '../train/trainer.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { encodeSftRow, truncateExample, type SftExample, type SftRow } from './sft_data.js';
import { evalBatches, SftBatcher } from './sft_batches.js';
import { SftObjective } from './sft_objective.js';
import { SFT_DEFAULTS, validateSftConfig, type SftConfig } from './sft_settings.js';

/** ChatML as a Jinja chat_template: what a checkpoint of a model without a template of its own is trained with. */
export const CHATML_JINJA =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export type SftOptions = RecipeOptions<SftConfig>;

export interface SftResult extends RecipeResult<SftConfig> {
  maxSteps: number;
  finalEvalLoss: number | null;
  /** Training examples, and what was done to the rows. */
  data: { train: number; eval: number; skippedRows: number; truncated: number; dropped: number };
}

/** What the data step made: examples, and counts for the log. */
interface Encoded {
  examples: SftExample[];
  truncated: number;
  /** Examples with no loss token left within maxLength. */
  dropped: number;
  /** The first conversation prefix of each example, for samples: the prompt ids up to the first reply. */
  prompts: { text: string; ids: number[] }[];
}

/** The chat template of a model folder and its Jinja source (ChatML when the folder has none). */
export async function templateOf(dir: string, tok: TextTokenizer): Promise<{ template: ChatTemplate; source: string }> {
  let src = tok.config.chatTemplate;
  if (Array.isArray(src)) src = (src.find((t) => t.name === 'default') ?? src[0])?.template;
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  if (src === undefined && fs.existsSync(jinjaFile)) src = fs.readFileSync(jinjaFile, 'utf8');
  const source = typeof src === 'string' ? src : CHATML_JINJA;
  const o = {
    source: src === undefined ? 'ChatML (the model folder has no chat_template)' : dir,
    ...(tok.config.bosToken ? { bosToken: tok.config.bosToken } : {}),
    ...(tok.config.eosToken ? { eosToken: tok.config.eosToken } : {}),
  };
  return { template: jinjaTemplate(source, o), source };
}

/** Save the tokenizer into a checkpoint folder with the chat template the run used (`source`) as its template. */
export async function saveTokenizerWithTemplate(tok: TextTokenizer, source: string, dir: string): Promise<void> {
  const before = tok.config.chatTemplate;
  tok.config.chatTemplate = source;
  try {
    await saveTokenizer(tok, dir);
  } finally {
    tok.config.chatTemplate = before;
  }
}

/**
 * What an alignment run starts from: the backend, and the model folder (the starting model of a new run, or the
 * checkpoint being resumed) with its tokenizer and chat template.
 */
export async function openModelFolder(
  c: { backend: SftConfig['backend']; threads: number; model: string },
  resumeDir: string | null,
): Promise<{ backend: Backend; modelDir: string; tok: TextTokenizer; template: ChatTemplate; source: string }> {
  const backend = await initBackend(c.backend, c.threads ? { threads: c.threads } : {});
  const modelDir = resumeDir ?? c.model;
  if (!modelDir.toLowerCase().endsWith('.gguf') && !fs.existsSync(path.join(modelDir, 'config.json')))
    throw new FileFormatError(
      'E_FILE_MISSING',
      modelDir,
      'no config.json here: expected a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)',
    );
  const tok = await loadTokenizer(modelDir);
  return { backend, modelDir, tok, ...(await templateOf(modelDir, tok)) };
}

/** Encode the rows of a dataset; a row SFT cannot use is a TrlRowError with its line (or skipped and counted). */
function encodeRows(
  ds: TrlDataset<'language_modeling' | 'prompt_completion'>,
  template: ChatTemplate,
  tok: TextTokenizer,
  c: SftConfig,
  maxLength: number,
  log: (s: string) => void,
): Encoded {
  const codec = { encode: (t: string) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId };
  const out: Encoded = { examples: [], truncated: 0, dropped: 0, prompts: [] };
  let skipped = 0;
  ds.rows.forEach((row, i) => {
    let x: SftExample;
    try {
      x = encodeSftRow(row as SftRow, template, codec);
    } catch (e) {
      // a row the template refuses (raise_exception: roles out of order, say) is that row's fault, named by its line
      const refused = e instanceof FileFormatError && e.code === 'E_TEMPLATE';
      if (!refused && (!(e instanceof ConfigError) || e.field === 'chat_template')) throw e;
      const field = e instanceof ConfigError ? e.field : 'messages';
      if (c.badRows === 'error')
        throw new TrlRowError(
          ds.file,
          ds.lines[i]!,
          field,
          refused ? (e as Error).message : (e as Error).message.replace(/^[^:]*: /, ''),
        );
      skipped++;
      return;
    }
    if (!c.completionOnly) x.mask.fill(1);
    const t = truncateExample(x, maxLength);
    if (t.truncated) out.truncated++;
    if (!t.example) {
      out.dropped++;
      return;
    }
    out.examples.push(t.example);
    const first = t.example.mask.indexOf(1, 1);
    out.prompts.push({ text: tok.decode(t.example.ids.slice(0, first)), ids: t.example.ids.slice(0, first) });
  });
  if (skipped)
    log(
      `warning: ${ds.file}: ${skipped} row${skipped === 1 ? '' : 's'} with nothing to train on (or refused by the chat template) skipped (badRows=skip)`,
    );
  return out;
}

function readData(
  file: string,
  c: SftConfig,
  log: (s: string) => void,
): TrlDataset<'language_modeling' | 'prompt_completion'> {
  const ds = readTrlDataset<'language_modeling' | 'prompt_completion'>(file, {
    expect: ['language_modeling', 'prompt_completion'],
    onBadRow: c.badRows,
  });
  if (ds.skipped.length) {
    const first = ds.skipped.slice(0, 3).map((s) => `line ${s.line}${s.field ? ` (${s.field})` : ''}: ${s.message}`);
    log(
      `warning: ${file}: ${ds.skipped.length} bad row${ds.skipped.length === 1 ? '' : 's'} skipped (badRows=skip); ${first.join('; ')}${ds.skipped.length > 3 ? '; …' : ''}`,
    );
  }
  const ignored = Object.entries(ds.ignoredFields);
  if (ignored.length)
    log(
      `note: ${file}: fields outside the ${ds.kind} type ignored: ${ignored.map(([k, n]) => `"${k}" (${n} rows)`).join(', ')}`,
    );
  return ds;
}

/** Run (or resume) a fine-tuning run. */
export async function sft(o: SftOptions): Promise<SftResult> {
  const log = o.log ?? ((s: string) => console.log(s));

  // ---- 1. run folder and config
  const run = openRun(o, {
    command: 'sft',
    defaultOutDir: SFT_DEFAULTS.outDir,
    stampPrefix: 'sft-',
    validate: (c) => validateSftConfig({ ...SFT_DEFAULTS, ...c }),
    checkSaved: (saved, file) => {
      if (typeof saved.config.model !== 'string' || !Array.isArray(saved.config.data))
        throw new FileFormatError(
          'E_TRAINER_STATE',
          file,
          "not an SFT run (its config has no model and data): resume it with 'llmts train --resume'",
          'config',
        );
    },
  });
  const { config: c, runDir, resumeDir, saved, checkpointDir: ckDir } = run;

  // ---- 2. backend, model, tokenizer, chat template (from the checkpoint when resuming)
  const { backend, tok, template, source } = await openModelFolder(c, resumeDir);
  const model = await loadPolicy(c, c.model, resumeDir, backend, log);
  const maxLength = c.maxLength || model.config.maxPositions;
  if (maxLength > model.config.maxPositions)
    throw new ConfigError(
      'maxLength',
      `must be ≤ ${model.config.maxPositions}, the positions the model ${c.model} has (0 = all of them)`,
    );

  // ---- 3. data
  const train = readData(c.data[0]!, c, log);
  const more = c.data.slice(1).map((f) => readData(f, c, log));
  const enc = [train, ...more].map((ds) => encodeRows(ds, template, tok, c, maxLength, log));
  let trainEx = enc.flatMap((e) => e.examples);
  let prompts = enc.flatMap((e) => e.prompts);
  let evalEx: SftExample[];
  let evalPrompts: { text: string; ids: number[] }[];
  let evalEnc: Encoded | null = null;
  if (c.evalData) {
    evalEnc = encodeRows(readData(c.evalData, c, log), template, tok, c, maxLength, log);
    evalEx = evalEnc.examples;
    evalPrompts = evalEnc.prompts;
  } else {
    if (trainEx.length < 2)
      throw new ConfigError(
        'evalFraction',
        `${trainEx.length} usable row${trainEx.length === 1 ? '' : 's'}: too few to hold any out; give more rows or --evalData`,
      );
    const nEval = Math.min(trainEx.length - 1, Math.max(1, Math.round(trainEx.length * c.evalFraction)));
    evalEx = trainEx.slice(trainEx.length - nEval); // the last rows, as a file's tail: the same split every run
    evalPrompts = prompts.slice(prompts.length - nEval);
    trainEx = trainEx.slice(0, trainEx.length - nEval);
    prompts = prompts.slice(0, prompts.length - nEval);
  }
  if (!evalEx.length) throw new ConfigError('evalData', `${c.evalData}: no usable rows to evaluate on`);
  const truncated = enc.reduce((n, e) => n + e.truncated, 0) + (evalEnc?.truncated ?? 0);
  const dropped = enc.reduce((n, e) => n + e.dropped, 0) + (evalEnc?.dropped ?? 0);
  if (truncated)
    log(
      `warning: ${truncated} example${truncated === 1 ? '' : 's'} longer than maxLength = ${maxLength} tokens truncated (kept from the start)`,
    );
  if (dropped)
    log(
      `warning: ${dropped} example${dropped === 1 ? '' : 's'} dropped: no ${c.completionOnly ? 'assistant / completion ' : ''}token left within maxLength = ${maxLength}`,
    );
  const skippedRows = [train, ...more].reduce((n, d) => n + d.skipped.length, 0);
  const fp = crypto
    .createHash('sha256')
    .update(JSON.stringify([trainEx.map((x) => x.ids), evalEx.map((x) => x.ids)]))
    .digest('hex');
  if (saved && saved.corpusFingerprint !== fp)
    log(
      'warning: the data differ from those this run started with; the resumed run will not match an uninterrupted one',
    );
  const targetsOf = (xs: SftExample[]) =>
    xs.reduce((n, x) => n + x.mask.reduce((a, m, t) => a + (t > 0 ? m : 0), 0), 0);
  log(
    `data: ${train.kind} (${train.form}) rows → ${trainEx.length} training / ${evalEx.length} held-out examples, ` +
      `${formatCount(targetsOf(trainEx))} training targets of ${formatCount(trainEx.reduce((n, x) => n + x.ids.length - 1, 0))} tokens; template ${template.kind}${source === CHATML_JINJA ? ' (ChatML)' : ''}`,
  );

  // ---- 4. batches
  const G = c.gradAccum;
  const maxSteps = c.maxSteps || Math.max(1, Math.ceil((c.epochs * trainEx.length) / (c.batchSize * G)));
  const loopConfig = { ...c, maxSteps };
  const padId = tok.eosId ?? 0;
  const batcher = new SftBatcher(trainEx, c.batchSize, maxLength, c.seed, padId);
  const evalSet = evalBatches(evalEx, c.batchSize, padId, c.evalBatches);
  const finalSet =
    c.finalEvalBatches > c.evalBatches ? evalBatches(evalEx, c.batchSize, padId, c.finalEvalBatches) : undefined;
  let evalBytes = 0,
    evalTargets = 0;
  for (const b of evalSet)
    for (const t of b.targets) if (t !== -100) (evalBytes += tok.tokenBytes(t).length), evalTargets++;
  const objective = new SftObjective(model);
  const nParams = countParams(model.config).total;
  log(
    `model: ${c.model}: ${model.config.family}, ${formatCount(nParams)} parameters, context ${model.config.maxPositions}; ${maxSteps} steps of ${c.batchSize}×${G} examples; backend ${backend.describe()}`,
  );

  // ---- 5. the loop
  let lastSamples: { prompt: string; text: string }[] = [];
  const stopId = tok.specialTokens.get('<|im_end|>') ?? tok.eosId;
  const sample = async () => {
    const p = evalPrompts[0] ?? prompts[0];
    if (!p) return [];
    const ids = await sampleIds(model, p.ids, {
      maxTokens: 48,
      temperature: 0,
      topK: 0,
      seed: c.seed,
      ...(stopId !== undefined ? { stopId } : {}),
    });
    lastSamples = [{ prompt: p.text, text: tok.decode(ids, { continuation: true }) }];
    return lastSamples;
  };
  const writeCheckpoint = async (t: Trainer): Promise<string> => {
    const state: TrainerStateFile<SftConfig> = {
      version: 1,
      ...t.state,
      config: { ...c, resume: '' },
      model: modelShape(model.config),
      corpusFingerprint: fp,
      savedAt: new Date().toISOString(),
    };
    await saveTrainingCheckpoint({
      dir: ckDir,
      saveModel: (d) => saveModel(model, d),
      // the template the model was tuned with travels with it: `llmts chat` and transformers render the same prompt
      saveTokenizer: (d) => saveTokenizerWithTemplate(tok, source, d),
      state,
      moments: await t.optimizer.stateDict(),
    });
    return ckDir;
  };
  if (saved) log(`resuming ${runDir} at step ${saved.step} of ${maxSteps}`);
  fs.mkdirSync(runDir, { recursive: true });
  const done = await runTraining({
    runDir,
    trainer: {
      model: objective,
      batcher,
      evalBatches: evalSet,
      ...(finalSet ? { finalEvalBatches: finalSet } : {}),
      valBytesPerToken: evalTargets ? evalBytes / evalTargets : 1,
      config: loopConfig,
      flopsPerToken: flopsPerToken(model.config, maxLength - 1),
      vocabSize: model.config.vocabSize,
    },
    display: c,
    ...(saved ? { resume: { state: saved, dir: resumeDir! } } : {}),
    saveCheckpoint: writeCheckpoint,
    sample,
    // TRL's names (SFTTrainer's logs), beside the loop's own
    stepMetrics: (_t, r) => {
      const m: Record<string, number> = {
        learning_rate: r.lr,
        grad_norm: r.gradNorm,
        epoch: batcher.epoch,
        num_tokens: batcher.numTokens,
      };
      const acc = objective.takeAccuracy('train');
      if (Number.isFinite(acc)) m['mean_token_accuracy'] = acc;
      return m;
    },
    evalMetrics: (_t, rec) => {
      const m: Record<string, number> = { eval_loss: rec.valLoss };
      const acc = objective.takeAccuracy('eval');
      if (Number.isFinite(acc)) m['eval_mean_token_accuracy'] = acc;
      return m;
    },
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.haltAfterStep !== undefined ? { haltAfterStep: o.haltAfterStep } : {}),
    ...(o.handleSigint !== undefined ? { handleSigint: o.handleSigint } : {}),
    summary: (t, why) => ({
      model: `${c.model} (${model.config.family}, ${formatCount(nParams)} parameters)`,
      data: `${c.data.join(', ')}: ${trainEx.length} training / ${evalEx.length} held-out examples (${train.kind}, ${train.form}); ${skippedRows} bad rows skipped, ${truncated} truncated, ${dropped} dropped`,
      'chat template': source === CHATML_JINJA ? 'ChatML' : template.kind,
      steps: `${t.state.step} of ${maxSteps} (${why}), epoch ${batcher.epoch.toFixed(2)}`,
      'tokens seen': formatCount(t.state.tokensSeen),
      ...loopSummary(t, ckDir, backend),
    }),
  });

  const { trainer } = done;
  const lastEval = trainer.state.evals[trainer.state.evals.length - 1];
  const result = {
    ...recipeResult(run, done, c),
    maxSteps,
    finalEvalLoss: lastEval ? lastEval.valLoss : null,
    data: { train: trainEx.length, eval: evalEx.length, skippedRows, truncated, dropped },
  };
  releaseRun(done, [model]);
  return result;
}

/**
 * Training checkpoints. A checkpoint is a Hugging Face model folder (config.json, generation_config.json,
 * model.safetensors, tokenizer files) plus what an exact resume needs:
 *   trainer_state.json       step, seeds, batcher RNG state and data position, best validation loss, evaluations,
 *                            the training config, the tokenizer and corpus fingerprints
 *   optimizer.safetensors    AdamW moments by parameter name (`<name>.exp_avg`, `<name>.exp_avg_sq`, float32)
 * The whole folder is built under a temporary name next to its target and renamed into place, so a crash (or a
 * second Ctrl-C) leaves the previous checkpoint or the new one, never a mix.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { buildDirAtomic, readJsonFileSync, writeFileAtomic } from '../util/fs.js';
import { readSafetensors, writeSafetensors } from '../formats/safetensors.js';
import type { ModelConfig } from '../model/config.js';
import type { LoopState } from './trainer.js';

export const TRAINER_STATE = 'trainer_state.json';
export const OPTIMIZER_STATE = 'optimizer.safetensors';

/** Contents of trainer_state.json. */
export interface TrainerStateFile<C extends object = Record<string, unknown>> extends LoopState {
  version: 1;
  /** The settings of the run (the recipe's config object). */
  config: C;
  /** The model config the checkpoint holds (compact copy, for shape checks before loading weights; recipes with a ModelConfig). */
  model?: Pick<
    ModelConfig,
    | 'family'
    | 'vocabSize'
    | 'hiddenSize'
    | 'numLayers'
    | 'numHeads'
    | 'numKvHeads'
    | 'intermediateSize'
    | 'maxPositions'
  >;
  /** sha256 of the tokenizer (recipes with one). */
  tokenizerHash?: string;
  /** Fingerprint of the training data (recipes that read a corpus). */
  corpusFingerprint?: string;
  savedAt: string;
}

export interface SaveCheckpointArgs {
  dir: string;
  /** Writes the model folder (saveModel) into the given folder. */
  saveModel: (dir: string) => Promise<void>;
  /** Writes the tokenizer files into the given folder. */
  saveTokenizer?: (dir: string) => Promise<void>;
  state: TrainerStateFile;
  /** AdamW moments by `<param>.exp_avg` / `<param>.exp_avg_sq`. */
  moments: Record<string, Float32Array>;
}

/** Write a checkpoint folder atomically. */
export async function saveTrainingCheckpoint(a: SaveCheckpointArgs): Promise<void> {
  await buildDirAtomic(a.dir, async (tmp) => {
    await a.saveModel(tmp);
    if (a.saveTokenizer) await a.saveTokenizer(tmp);
    await writeFileAtomic(path.join(tmp, TRAINER_STATE), JSON.stringify(a.state, null, 1) + '\n');
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [k, v] of Object.entries(a.moments)) tensors[k] = { shape: [v.length], data: v };
    await writeSafetensors(path.join(tmp, OPTIMIZER_STATE), tensors, {
      format: 'pt',
      step: String(a.state.optimizerStep),
    });
  });
}

/**
 * Recover a checkpoint folder `dir` after a crash during `buildDirAtomic`: remove `.checkpoint.building-*` folders
 * (a checkpoint being written when the process died), and if `dir` is missing because the process died between the
 * two renames of the swap, rename the newest complete `.checkpoint.old-*` (one holding trainer_state.json) back into
 * place. Leftover `.old-*` folders are removed once `dir` is whole. Returns a line per action, for the log.
 */
export function recoverCheckpointDir(dir: string): string[] {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const n of names.filter((n) => n.startsWith(`.${base}.building-`))) {
    fs.rmSync(path.join(parent, n), { recursive: true, force: true });
    done.push(`removed an unfinished checkpoint ${path.join(parent, n)}`);
  }
  const olds = names
    .filter((n) => n.startsWith(`.${base}.old-`) && fs.existsSync(path.join(parent, n, TRAINER_STATE)))
    .map((n) => ({ n, t: fs.statSync(path.join(parent, n, TRAINER_STATE)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  if (!fs.existsSync(path.join(dir, TRAINER_STATE)) && olds.length) {
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(path.join(parent, olds[0]!.n), dir);
    done.push(`restored the checkpoint ${dir} from ${olds[0]!.n} (a crash interrupted the previous save)`);
  }
  for (const n of names.filter((n) => n.startsWith(`.${base}.old-`))) {
    if (fs.existsSync(path.join(parent, n))) fs.rmSync(path.join(parent, n), { recursive: true, force: true });
  }
  return done;
}

/** The checkpoint folder of a run folder (`<run>/checkpoint`), or the folder itself if it is one. */
export function resolveCheckpointDir(p: string): string {
  if (fs.existsSync(path.join(p, TRAINER_STATE))) {
    recoverCheckpointDir(p); // leftovers beside it
    return p;
  }
  const sub = path.join(p, 'checkpoint');
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) recoverCheckpointDir(sub);
  if (fs.existsSync(path.join(sub, TRAINER_STATE))) return sub;
  throw new FileFormatError(
    'E_NO_CHECKPOINT',
    p,
    `no ${TRAINER_STATE} here or in ${path.join(p, 'checkpoint')}: --resume needs a run folder written by 'llmts train' (runs/<name>)`,
  );
}

/** Read trainer_state.json of a checkpoint folder. */
export function readTrainerState(ckDir: string): TrainerStateFile {
  const file = path.join(ckDir, TRAINER_STATE);
  const s = readJsonFileSync(file, 'a trainer_state.json written by llmts train') as Partial<TrainerStateFile>;
  if (s.version !== 1 || typeof s.step !== 'number' || !s.batcher || !s.config)
    throw new FileFormatError(
      'E_TRAINER_STATE',
      file,
      'not a trainer state of this version (expected version 1 with step, batcher and config)',
    );
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const bad = (field: string, want: string, v: unknown) =>
    new FileFormatError('E_TRAINER_STATE', file, `${want}, got ${JSON.stringify(v)}`, field);
  for (const k of ['step', 'optimizerStep', 'seed', 'tokensSeen'] as const)
    if (!count(s[k])) throw bad(k, 'expected a whole number ≥ 0', s[k]);
  if (s.optimizerStep !== s.step) throw bad('optimizerStep', `expected the same as step (${s.step})`, s.optimizerStep);
  if (typeof s.trainSeconds !== 'number' || !(s.trainSeconds >= 0))
    throw bad('trainSeconds', 'expected a number ≥ 0', s.trainSeconds);
  const b = s.batcher as unknown as Record<string, unknown>;
  if (!count(b['drawn'])) throw bad('batcher.drawn', 'expected a whole number ≥ 0', b['drawn']);
  const rng = b['rng'] as Record<string, unknown> | null;
  if (typeof rng !== 'object' || rng === null || typeof rng['hi'] !== 'number' || typeof rng['lo'] !== 'number')
    throw bad('batcher.rng', 'expected the batcher RNG state {hi, lo, spare}', rng);
  if (!Array.isArray(s.evals)) throw bad('evals', 'expected a list', s.evals);
  if (!Array.isArray(s.recentLosses)) throw bad('recentLosses', 'expected a list', s.recentLosses);
  if (s.lossScale !== undefined) {
    const ls = s.lossScale as unknown as Record<string, unknown> | null;
    if (typeof ls !== 'object' || ls === null || typeof ls['scale'] !== 'number' || !(ls['scale'] > 0))
      throw bad('lossScale', 'expected the loss scaler state {scale > 0, goodSteps}', ls);
    if (!count(ls['goodSteps'])) throw bad('lossScale.goodSteps', 'expected a whole number ≥ 0', ls['goodSteps']);
  }
  if (s.bestValLoss !== null && typeof s.bestValLoss !== 'number')
    throw bad('bestValLoss', 'expected a number or null', s.bestValLoss);
  if (typeof s.config !== 'object' || Array.isArray(s.config)) throw bad('config', 'expected an object', s.config);
  return s as TrainerStateFile;
}

/** Read optimizer.safetensors as moments by name. */
export async function readOptimizerState(ckDir: string): Promise<Record<string, Float32Array>> {
  const file = path.join(ckDir, OPTIMIZER_STATE);
  if (!fs.existsSync(file))
    throw new FileFormatError(
      'E_FILE_MISSING',
      file,
      'optimizer state missing: the checkpoint cannot resume exactly (use --initFrom to start a new run from its weights)',
    );
  const st = await readSafetensors(file);
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of st.tensors) {
    if (!(t.data instanceof Float32Array))
      throw new FileFormatError('E_OPTIMIZER_STATE', file, 'moments must be F32', name);
    out[name] = t.data;
  }
  return out;
}

/**
 * Check that a checkpoint's model has the shape the config asks for; a ConfigError naming the first field that
 * differs and what to change otherwise.
 */
export function checkSameShape(found: ModelConfig, want: ModelConfig, source: string): void {
  const fields: [keyof ModelConfig, string][] = [
    ['family', 'family'],
    ['vocabSize', 'vocabSize / tokenizer'],
    ['hiddenSize', 'nEmbd'],
    ['numLayers', 'nLayer'],
    ['numHeads', 'nHead'],
    ['numKvHeads', 'nKvHead'],
    ['intermediateSize', 'intermediateSize'],
  ];
  for (const [k, flag] of fields) {
    if (found[k] !== want[k]) {
      throw new ConfigError(
        flag.split(' ')[0]!,
        `the checkpoint ${source} has ${k} = ${String(found[k])} but this run's config asks for ${String(want[k])}. ` +
          `Pass --${flag.split(' ')[0]}=${String(found[k])} (or the preset it was trained with), or start a new run without it.`,
      );
    }
  }
  if (want.maxPositions > found.maxPositions) {
    throw new ConfigError(
      'blockSize',
      `the checkpoint ${source} has ${found.maxPositions} positions; blockSize must be ≤ ${found.maxPositions}`,
    );
  }
}

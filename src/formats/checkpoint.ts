/**
 * The weights of a Hugging Face model folder: either one `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor name: shard file}}`).
 * `loadCheckpointTensors` reads either layout (the single file wins when both exist, as in transformers);
 * `saveCheckpointTensors` writes one file, or shards plus an index when the tensors exceed `maxShardBytes`.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError, FileFormatError, UnsupportedError } from '../util/errors.js';
import { isFile, makeDirSync, readJsonFile, writeFileAtomic } from '../util/fs.js';
import {
  dtypeSize,
  isSafetensorsDtype,
  readSafetensors,
  readSafetensorsHeader,
  type ReadSafetensorsOptions,
  writeSafetensors,
  type StoredTensor,
  type TensorToWrite,
  type TensorsToWrite,
} from './safetensors.js';

export const SAFE_WEIGHTS_NAME = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';

/** A parsed `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  /** Path of the index file. */
  file: string;
  /** Its `metadata` object (e.g. `total_size`), unchecked; {} when absent. */
  metadata: Record<string, unknown>;
  /** Tensor name → shard file name (relative to the folder). */
  weightMap: Map<string, string>;
  /** Distinct shard files, in order of first appearance. */
  shards: string[];
}

/** Read and validate `dir/model.safetensors.index.json` (FileFormatError `E_INDEX` on a malformed index). */
export async function readSafetensorsIndex(dir: string): Promise<SafetensorsIndex> {
  const file = path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
  const json = await readJsonFile(file, 'a safetensors index {"weight_map": {tensor: shard file}}');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FileFormatError('E_INDEX', file, 'must be a JSON object with a "weight_map"');
  }
  const { metadata, weight_map: wm } = json as Record<string, unknown>;
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
    throw new FileFormatError('E_INDEX', file, 'metadata must be an object', 'metadata');
  }
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new FileFormatError('E_INDEX', file, 'weight_map must be an object {tensor name: shard file}', 'weight_map');
  }
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string') {
      throw new FileFormatError('E_INDEX', file, `shard must be a file name, got ${JSON.stringify(shard)}`, name);
    }
    if (shard === '' || shard.includes('/') || shard.includes('\\') || shard === '.' || shard === '..') {
      throw new FileFormatError(
        'E_INDEX',
        file,
        `shard ${JSON.stringify(shard)} must be a plain file name in the folder`,
        name,
      );
    }
    weightMap.set(name, shard);
    if (!shards.includes(shard)) shards.push(shard);
  }
  if (weightMap.size === 0) throw new FileFormatError('E_INDEX', file, 'weight_map lists no tensors', 'weight_map');
  return { file, metadata: (metadata as Record<string, unknown> | undefined) ?? {}, weightMap, shards };
}

/**
 * Load every tensor listed by a sharded index. A shard that is missing → `E_INDEX_SHARD_MISSING`; a tensor listed
 * for a shard that lacks it → `E_INDEX_TENSOR_MISSING` (both FileFormatErrors naming the shard and tensor).
 * Tensors present in a shard but not listed in the index are not loaded.
 */
export async function loadShardedTensors(
  dir: string,
  index?: SafetensorsIndex,
  opts: Pick<ReadSafetensorsOptions, 'undecoded'> = {},
): Promise<Map<string, StoredTensor>> {
  const idx = index ?? (await readSafetensorsIndex(dir));
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of idx.weightMap) {
    const list = byShard.get(shard);
    if (list) list.push(name);
    else byShard.set(shard, [name]);
  }
  const out = new Map<string, StoredTensor>();
  for (const shard of idx.shards) {
    const names = byShard.get(shard)!;
    const shardFile = path.join(dir, shard);
    if (!(await isFile(shardFile))) {
      throw new FileFormatError(
        'E_INDEX_SHARD_MISSING',
        idx.file,
        `shard ${shard} is missing from ${dir} (it should hold ${names.length} tensor(s), e.g. ${JSON.stringify(names[0])})`,
        names[0],
      );
    }
    let loaded: Awaited<ReturnType<typeof readSafetensors>>;
    try {
      loaded = await readSafetensors(shardFile, { names, ...opts });
    } catch (e) {
      if (e instanceof FileFormatError && e.code === 'E_SAFETENSORS_MISSING_TENSOR') {
        throw new FileFormatError(
          'E_INDEX_TENSOR_MISSING',
          shardFile,
          `tensor is listed in ${SAFE_WEIGHTS_INDEX_NAME} for shard ${shard} but the shard does not contain it`,
          e.part,
        );
      }
      throw e;
    }
    for (const [name, t] of loaded.tensors) out.set(name, t);
  }
  // Keep the index's order, which is the order a reader expects (sorted by name in transformers' indexes).
  const ordered = new Map<string, StoredTensor>();
  for (const name of idx.weightMap.keys()) ordered.set(name, out.get(name)!);
  return ordered;
}

/**
 * Load the weights of a Hugging Face folder: `model.safetensors` if present, else the shards of
 * `model.safetensors.index.json`. PyTorch pickles (`pytorch_model.bin`) are refused with UnsupportedError;
 * a folder with no weights at all → FileFormatError `E_FILE_MISSING`.
 */
export async function loadCheckpointTensors(
  dir: string,
  opts: Pick<ReadSafetensorsOptions, 'undecoded'> = {},
): Promise<Map<string, StoredTensor>> {
  const single = path.join(dir, SAFE_WEIGHTS_NAME);
  if (await isFile(single)) return (await readSafetensors(single, opts)).tensors;
  if (await isFile(path.join(dir, SAFE_WEIGHTS_INDEX_NAME))) return loadShardedTensors(dir, undefined, opts);
  for (const pickle of ['pytorch_model.bin', 'pytorch_model.bin.index.json']) {
    if (await isFile(path.join(dir, pickle))) {
      throw new UnsupportedError(
        `${path.join(dir, pickle)}: PyTorch pickle weights are not supported; convert the folder to safetensors ` +
          '(e.g. in Python: model.save_pretrained(dir, safe_serialization=True))',
      );
    }
  }
  throw new FileFormatError(
    'E_FILE_MISSING',
    dir,
    `no model weights: expected ${SAFE_WEIGHTS_NAME} or ${SAFE_WEIGHTS_INDEX_NAME} in the folder`,
  );
}

/** The dtype and shape of every tensor of a folder's checkpoint (one file or shards), from the headers alone. */
export async function checkpointEntries(dir: string): Promise<Map<string, { dtype: string; shape: number[] }>> {
  const out = new Map<string, { dtype: string; shape: number[] }>();
  const single = path.join(dir, SAFE_WEIGHTS_NAME);
  const files = (await isFile(single))
    ? [single]
    : (await isFile(path.join(dir, SAFE_WEIGHTS_INDEX_NAME)))
      ? (await readSafetensorsIndex(dir)).shards.map((s) => path.join(dir, s))
      : [];
  for (const f of files)
    for (const e of (await readSafetensorsHeader(f)).entries) out.set(e.name, { dtype: e.dtype, shape: e.shape });
  return out;
}

export interface SaveCheckpointOptions {
  /**
   * Largest shard in bytes. When all tensors together exceed it, they are split (in the order given; a tensor
   * larger than the limit gets a shard of its own) into `model-0000i-of-0000n.safetensors` plus an index.
   * Default: Infinity (always one `model.safetensors`). transformers' default is 5 GB (`5e9`).
   */
  maxShardBytes?: number;
  /** `__metadata__` of each file; default {format: 'pt'} as transformers writes (and checks on load). */
  metadata?: Record<string, string>;
}

function byteSizeOf(t: TensorToWrite): number {
  let numel = 1;
  for (const d of t.shape) numel *= d;
  const dtype = t.dtype ?? (t.data instanceof Float64Array ? 'F64' : t.data instanceof Int32Array ? 'I32' : 'F32');
  if (!isSafetensorsDtype(dtype)) return t.raw?.byteLength ?? 0; // encodeTensor reports the bad dtype
  return numel * dtypeSize(dtype);
}

const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;

/**
 * Save tensors into `dir` (created if needed) as one `model.safetensors` or as shards with an index (see
 * `SaveCheckpointOptions.maxShardBytes`). Each file is written atomically; weight files of the other layout left
 * by an earlier save (an old index and its shards, or an old single file) are removed afterwards. For a whole
 * folder that appears at once, call this inside `buildDirAtomic`. Returns the names of the files written.
 */
export async function saveCheckpointTensors(
  dir: string,
  tensors: TensorsToWrite,
  options: SaveCheckpointOptions = {},
): Promise<string[]> {
  const max = options.maxShardBytes ?? Infinity;
  if (!(max > 0)) throw new ConfigError('maxShardBytes', `expected a positive number of bytes, got ${max}`);
  const metadata = options.metadata ?? { format: 'pt' };
  const list: [string, TensorToWrite][] =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, TensorToWrite>);
  makeDirSync(dir);

  // Split like huggingface_hub's split_state_dict_into_shards: fill a shard until the next tensor would overflow it.
  const shards: [string, TensorToWrite][][] = [];
  let current: [string, TensorToWrite][] = [];
  let currentBytes = 0;
  let totalBytes = 0;
  let totalParams = 0;
  for (const [name, t] of list) {
    const bytes = byteSizeOf(t);
    totalBytes += bytes;
    totalParams += t.shape.reduce((a, b) => a * b, 1);
    if (bytes > max) {
      shards.push([[name, t]]);
      continue;
    }
    if (currentBytes + bytes > max && current.length > 0) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push([name, t]);
    currentBytes += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);

  const written: string[] = [];
  if (shards.length === 1) {
    await writeSafetensors(path.join(dir, SAFE_WEIGHTS_NAME), new Map(shards[0]), metadata);
    written.push(SAFE_WEIGHTS_NAME);
  } else {
    const n = shards.length;
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < n; i++) {
      const name = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      await writeSafetensors(path.join(dir, name), new Map(shards[i]), metadata);
      for (const [t] of shards[i]!) weightMap[t] = name;
      written.push(name);
    }
    const sortedMap: Record<string, string> = {};
    for (const k of Object.keys(weightMap).sort()) sortedMap[k] = weightMap[k]!;
    // json.dumps(index, indent=2, sort_keys=True) + "\n", as transformers writes it
    const index = { metadata: { total_parameters: totalParams, total_size: totalBytes }, weight_map: sortedMap };
    await writeFileAtomic(path.join(dir, SAFE_WEIGHTS_INDEX_NAME), JSON.stringify(index, null, 2) + '\n');
    written.push(SAFE_WEIGHTS_INDEX_NAME);
  }

  // Remove weight files of an earlier save that this one did not write.
  const keep = new Set(written);
  for (const entry of await fsp.readdir(dir)) {
    if (keep.has(entry)) continue;
    if (entry === SAFE_WEIGHTS_NAME || entry === SAFE_WEIGHTS_INDEX_NAME || SHARD_RE.test(entry)) {
      await fsp.rm(path.join(dir, entry), { force: true });
    }
  }
  return written;
}

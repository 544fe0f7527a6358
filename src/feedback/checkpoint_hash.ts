/**
 * A checkpoint's identity in the feedback store: the sha256 (hex) of its weights, `model.safetensors` (a sharded
 * checkpoint: its shards in the order of `model.safetensors.index.json`, hashed as one stream; a LoRA adapter folder:
 * its base model's weight files, then adapter_model.safetensors). Computed once per
 * checkpoint and process: the result is remembered under the file's path, size, modification time and inode, so the
 * server hashes a 500 MB model at start-up, not at every reply, and a checkpoint rewritten in place is hashed again.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ADAPTER_WEIGHTS, isAdapterFolder, readAdapterConfig } from '../model/hf/adapter.js';
import { FileFormatError } from '../util/errors.js';
import { readJsonFileSync } from '../util/fs.js';

const memo = new Map<string, string>();

/** The weight files of a checkpoint folder (or a single .safetensors file), in hashing order. */
export function weightFiles(checkpoint: string): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(checkpoint);
  } catch {
    throw new FileFormatError('E_FILE_MISSING', checkpoint, 'no such checkpoint folder or weights file');
  }
  if (st.isFile()) return [checkpoint];
  // a LoRA adapter folder: the base model's weights, then the adapters (both make the model that replies)
  const adapter = path.join(checkpoint, ADAPTER_WEIGHTS);
  if (isAdapterFolder(checkpoint) && fs.existsSync(adapter))
    return [...weightFiles(readAdapterConfig(checkpoint).base), adapter];
  const single = path.join(checkpoint, 'model.safetensors');
  if (fs.existsSync(single)) return [single];
  const index = path.join(checkpoint, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    const j = readJsonFileSync(index, 'a sharded checkpoint index') as { weight_map?: Record<string, string> };
    if (typeof j.weight_map !== 'object' || j.weight_map === null)
      throw new FileFormatError('E_CHECKPOINT', index, 'expected a "weight_map" object', 'weight_map');
    const shards = [...new Set(Object.values(j.weight_map))].sort();
    return shards.map((s) => path.join(checkpoint, s));
  }
  throw new FileFormatError(
    'E_FILE_MISSING',
    checkpoint,
    'no model.safetensors (or model.safetensors.index.json) in this folder: not a model checkpoint',
  );
}

/** sha256 (hex) of a checkpoint's weights; see the header. */
export function checkpointHash(checkpoint: string): string {
  const files = weightFiles(checkpoint);
  const key = files
    .map((f) => {
      const s = fs.statSync(f);
      return `${path.resolve(f)}:${s.size}:${s.mtimeMs}:${s.ino}`;
    })
    .join('|');
  const known = memo.get(key);
  if (known) return known;
  const h = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    try {
      for (let n: number; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
  }
  const hex = h.digest('hex');
  memo.set(key, hex);
  return hex;
}

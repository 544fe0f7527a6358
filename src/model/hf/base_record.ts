/**
 * Which base weights a LoRA adapter folder was trained on. PEFT names the base by path only, so a base folder that
 * changed since (an SFT run resumed over it, a checkpoint overwritten) would carry the adapters silently, computing
 * something nobody trained. An adapter folder written here also holds `llmts_base.json`
 * `{ "base": <path as written>, "fingerprint": "<hex>" }` (a file of its own: PEFT reads adapter_config.json strictly
 * and ignores other files); loading the adapters fingerprints the base again and refuses a changed one by name.
 *
 * The fingerprint samples the base's weight files (model*.safetensors, adapter_model.safetensors for adapters on
 * adapters, or the .gguf file): each file's name and size, and 64 KiB at 18 evenly spaced places, hashed with
 * SHA-256. Training changes every tensor, so a changed base is caught, at the cost of ~1 MiB read whatever its size.
 * Node only (node:fs).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FileFormatError } from '../../util/errors.js';
import { readJsonFileSync, writeFileAtomic } from '../../util/fs.js';

export const BASE_RECORD = 'llmts_base.json';
const CHUNK = 64 * 1024;
const PLACES = 18;

/** The weight files of a base: a .gguf file itself; a folder's model*.safetensors and adapter_model.safetensors. */
function weightFiles(base: string): string[] {
  if (base.toLowerCase().endsWith('.gguf')) return [base];
  return fs
    .readdirSync(base)
    .filter((n) => /^model.*\.safetensors$/.test(n) || n === 'adapter_model.safetensors')
    .sort()
    .map((n) => path.join(base, n));
}

/** The sampled fingerprint of a base's weights (hex), or null when it has no weight files to sample. */
export function baseFingerprint(base: string): string | null {
  const files = weightFiles(base);
  if (!files.length) return null;
  const h = crypto.createHash('sha256');
  const buf = Buffer.alloc(CHUNK);
  for (const f of files) {
    const size = fs.statSync(f).size;
    h.update(`${path.basename(f)}\0${size}\0`);
    const fd = fs.openSync(f, 'r');
    try {
      for (let k = 0; k < PLACES; k++) {
        const at = Math.floor((k * Math.max(0, size - CHUNK)) / (PLACES - 1));
        const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, size), at);
        h.update(buf.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return h.digest('hex');
}

/** Write `llmts_base.json` into an adapter folder being built (`base`: the base as adapter_config.json names it). */
export async function writeBaseRecord(dir: string, base: string): Promise<void> {
  const fingerprint = baseFingerprint(base);
  if (fingerprint === null) return;
  await writeFileAtomic(path.join(dir, BASE_RECORD), JSON.stringify({ base, fingerprint }, null, 2) + '\n');
}

/** Refuse an adapter folder whose base (resolved to `base`) is not the one it was trained on; no record: no check. */
export function checkBaseRecord(dir: string, base: string): void {
  const file = path.join(dir, BASE_RECORD);
  if (!fs.existsSync(file)) return;
  const rec = readJsonFileSync(file, 'an adapter folder\'s base record {"base", "fingerprint"}') as Record<
    string,
    unknown
  >;
  if (typeof rec !== 'object' || rec === null || typeof rec['fingerprint'] !== 'string')
    throw new FileFormatError('E_ADAPTER_BASE', file, 'expected {"base": path, "fingerprint": hex}', 'fingerprint');
  const now = baseFingerprint(base);
  if (now !== null && now !== rec['fingerprint'])
    throw new FileFormatError(
      'E_ADAPTER_BASE',
      file,
      `these adapters were trained on other weights than ${base} holds now (fingerprint ${String(rec['fingerprint']).slice(0, 12)}…, ` +
        `now ${now.slice(0, 12)}…: the base changed since they were saved). Load them on the base they were trained on, ` +
        `or delete ${BASE_RECORD} to put them on this one anyway`,
      'fingerprint',
    );
}

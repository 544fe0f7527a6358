/**
 * How a model folder says its embeddings are pooled: sentence-transformers' `modules.json` (the module list) with
 * its Pooling module's `config.json` (`pooling_mode_lasttoken`, `pooling_mode_mean_tokens`, `pooling_mode_cls_token`)
 * and whether a Normalize module follows. A GGUF file says it in `<arch>.pooling_type` (llama.cpp's: 1 mean, 2 cls,
 * 3 last; normalised, as llama-server's embeddings are). A folder or file without them (a plain causal LM) pools the
 * last token and normalises: what decoder embedding models do. A pooling this cannot do (max, weighted mean,
 * several at once, rank) is a named error, never a silently different vector.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FileFormatError } from '../../util/errors.js';
import { readJsonFileSync } from '../../util/fs.js';
import type { Pooling } from '../embed.js';
import { readGgufHeader } from '../../formats/gguf_file.js';
import { isGgufPath } from '../gguf/file.js';

export interface PoolingConfig {
  pooling: Pooling;
  normalize: boolean;
  /** Where it was read ('default' when the folder says nothing). */
  source: string;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** llama.cpp's pooling_type values this can do. */
const GGUF_POOLING: Record<number, Pooling> = { 1: 'mean', 2: 'cls', 3: 'last' };

/** A GGUF file's pooling (its `<arch>.pooling_type`; 0, none, or absent: the last token). */
async function ggufPooling(file: string): Promise<PoolingConfig> {
  const g = await readGgufHeader(file);
  const arch = g.metadata.get('general.architecture')?.value;
  const key = `${String(arch)}.pooling_type`;
  const v = g.metadata.get(key)?.value;
  if (v === undefined || v === 0) return { pooling: 'last', normalize: true, source: 'default' };
  const pooling = typeof v === 'number' ? GGUF_POOLING[v] : undefined;
  if (!pooling)
    throw new FileFormatError(
      'E_POOLING',
      file,
      `pooling_type ${String(v)} is not supported; 1 (mean), 2 (cls) or 3 (last) is`,
      key,
    );
  return { pooling, normalize: true, source: file };
}

/** The folder's (or GGUF file's) pooling (see the top of this file). */
export async function readPooling(dir: string): Promise<PoolingConfig> {
  if (isGgufPath(dir)) return ggufPooling(dir);
  const modulesFile = path.join(dir, 'modules.json');
  if (!fs.existsSync(modulesFile)) return { pooling: 'last', normalize: true, source: 'default' };
  const modules = readJsonFileSync(modulesFile, 'sentence-transformers modules') as unknown;
  if (!Array.isArray(modules))
    throw new FileFormatError('E_POOLING', modulesFile, 'expected a list of sentence-transformers modules');
  const typeOf = (m: unknown) => (isObj(m) && typeof m['type'] === 'string' ? m['type'] : '');
  const poolMod = modules.find((m) => typeOf(m).endsWith('.Pooling'));
  const normalize = modules.some((m) => typeOf(m).endsWith('.Normalize'));
  if (!isObj(poolMod)) return { pooling: 'last', normalize, source: modulesFile };
  const file = path.join(dir, typeof poolMod['path'] === 'string' ? poolMod['path'] : '', 'config.json');
  const cfg = readJsonFileSync(file, 'the Pooling module config') as unknown;
  if (!isObj(cfg)) throw new FileFormatError('E_POOLING', file, 'expected a JSON object');
  const modes = Object.entries(cfg)
    .filter(([k, v]) => k.startsWith('pooling_mode_') && v === true)
    .map(([k]) => k);
  const known: Record<string, Pooling> = {
    pooling_mode_lasttoken: 'last',
    pooling_mode_mean_tokens: 'mean',
    pooling_mode_cls_token: 'cls',
  };
  if (modes.length !== 1 || !known[modes[0]!])
    throw new FileFormatError(
      'E_POOLING',
      file,
      `pooling ${modes.length ? modes.join(' + ') : '(none set)'} is not supported; one of ${Object.keys(known).join(', ')} is`,
      modes[0] ?? 'pooling_mode_*',
    );
  return { pooling: known[modes[0]!]!, normalize, source: file };
}

/**
 * Safetensors files: read (whole, or only the header, or chosen tensors) and write atomically. The format, the
 * validation and the byte-level encoder/decoder live in ./safetensors_bytes.ts (no Node built-ins, browser-safe),
 * re-exported here so existing imports keep working.
 */
import * as fsp from 'node:fs/promises';
import { FileFormatError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { decodeTensorBytes, encodeSafetensors, headerLengthOf, parseSafetensorsHeader } from './safetensors_bytes.js';
import type { SafetensorsFile, SafetensorsHeader, StoredTensor, TensorsToWrite } from './safetensors_bytes.js';

export * from './safetensors_bytes.js';

function fmt(code: string, file: string, message: string, part?: string): FileFormatError {
  return new FileFormatError(code, file, message, part);
}

async function readExactly(fh: fsp.FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let off = 0;
  while (off < into.byteLength) {
    const len = Math.min(1 << 30, into.byteLength - off);
    const { bytesRead } = await fh.read(into, off, len, position + off);
    if (bytesRead === 0)
      throw fmt('E_SAFETENSORS_TRUNCATED', file, 'file ended early while reading (changed on disk?)');
    off += bytesRead;
  }
}

async function openForRead(file: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw fmt('E_FILE_MISSING', file, 'file not found (expected a safetensors file)');
    throw fmt('E_FILE_READ', file, `cannot read: ${(e as Error).message}`);
  }
}

async function readHeaderFrom(fh: fsp.FileHandle, file: string): Promise<SafetensorsHeader> {
  const size = (await fh.stat()).size;
  const first8 = new Uint8Array(8);
  if (size >= 8) await readExactly(fh, first8, 0, file);
  const n = headerLengthOf(first8, size, file);
  const headerBytes = new Uint8Array(n);
  await readExactly(fh, headerBytes, 8, file);
  return parseSafetensorsHeader(headerBytes, size, file);
}

/** Read and validate only the header of a safetensors file (no tensor data is read). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await openForRead(file);
  try {
    return await readHeaderFrom(fh, file);
  } finally {
    await fh.close();
  }
}

export interface ReadSafetensorsOptions {
  /** Read only these tensors (each must be in the file, else FileFormatError `E_SAFETENSORS_MISSING_TENSOR`). */
  names?: Iterable<string>;
  /**
   * Tensors to read but not decode: their `data` is empty and `raw` holds the bytes (a loader that will decode them
   * later, a slice at a time, and so never holds a whole float32 copy).
   */
  undecoded?: (name: string, shape: readonly number[]) => boolean;
}

/**
 * Read a safetensors file: validate the header, then read each tensor into its own (aligned) buffer and decode it.
 * The map keeps the file's data order (or the order of `options.names`).
 */
export async function readSafetensors(file: string, options: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const fh = await openForRead(file);
  try {
    const header = await readHeaderFrom(fh, file);
    let wanted = header.entries;
    if (options.names) {
      const byName = new Map(header.entries.map((e) => [e.name, e]));
      wanted = [];
      for (const name of options.names) {
        const e = byName.get(name);
        if (!e) throw fmt('E_SAFETENSORS_MISSING_TENSOR', file, 'tensor not found in this file', name);
        wanted.push(e);
      }
    }
    const tensors = new Map<string, StoredTensor>();
    for (const e of wanted) {
      const raw = new Uint8Array(e.end - e.begin);
      await readExactly(fh, raw, header.dataStart + e.begin, file);
      tensors.set(e.name, {
        dtype: e.dtype,
        shape: e.shape.slice(),
        data: options.undecoded?.(e.name, e.shape)
          ? new Float32Array(0)
          : decodeTensorBytes(e.dtype, raw, file, e.name),
        raw,
      });
    }
    return { file, metadata: header.metadata, tensors };
  } finally {
    await fh.close();
  }
}

/** Write a safetensors file atomically (temp file + fsync + rename). */
export async function writeSafetensors(
  file: string,
  tensors: TensorsToWrite,
  metadata: Readonly<Record<string, string>> | null = null,
): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata, file));
}

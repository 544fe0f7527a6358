/**
 * GGUF files on disk (Node): the whole file (for the tensors), or only its header (metadata and tensor infos: what a
 * tokenizer or a config needs), read from the start in growing pieces so a multi-gigabyte model is not read for its
 * vocabulary. Reads go through a file handle, so files past Node's 2 GiB readFile limit load too.
 */
import fsp from 'node:fs/promises';
import { FileFormatError } from '../util/errors.js';
import { NeedMoreBytes, parseGguf, parseGgufHeader, type GgufFile } from './gguf.js';

async function open(file: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, 'r');
  } catch (e) {
    throw new FileFormatError('E_FILE_MISSING', file, `cannot read the GGUF file: ${(e as Error).message}`);
  }
}

/** `n` bytes from `at` (fewer at the end of the file). */
async function readAt(fh: fsp.FileHandle, at: number, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(out, got, Math.min(n - got, 1 << 30), at + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === n ? out : out.subarray(0, got);
}

/** Read and check a whole GGUF file. */
export async function readGgufFile(file: string): Promise<GgufFile> {
  const fh = await open(file);
  try {
    const size = (await fh.stat()).size;
    return parseGguf(await readAt(fh, 0, size), file);
  } finally {
    await fh.close();
  }
}

/** Read and check the header of a GGUF file (no tensor data: `bytes` holds only the header). */
export async function readGgufHeader(file: string): Promise<GgufFile> {
  const fh = await open(file);
  try {
    const size = (await fh.stat()).size;
    let n = Math.min(size, 1 << 20);
    for (;;) {
      const prefix = await readAt(fh, 0, n);
      try {
        return parseGgufHeader(prefix, size, file);
      } catch (e) {
        if (!(e instanceof NeedMoreBytes) || n >= size) throw e;
        n = Math.min(size, Math.max(2 * n, e.atLeast));
      }
    }
  } finally {
    await fh.close();
  }
}

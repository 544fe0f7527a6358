/**
 * File-system helpers with crash-safe semantics. Every file this package writes goes through `writeFileAtomic`
 * (write a temp file in the same folder, fsync it, rename it over the target, fsync the folder), so a crash leaves
 * either the old file or the new one, never half of one. Whole folders (a saved model) are built under a temp name
 * next to the target and renamed into place by `buildDirAtomic` / `writeDirAtomic`. `readJsonFile` turns a missing
 * file or bad JSON into a FileFormatError that names the file and what it should have held.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError, FileFormatError } from './errors.js';

/** File contents: bytes, UTF-8 text, or a list of byte chunks written one after another (no concatenation). */
export type FileData = Uint8Array | string | readonly Uint8Array[];

let tempCounter = 0;

/** A fresh hidden name next to `target` (same folder, so a rename is atomic): `.name.tag-<pid>-<n>-<time>`. */
export function tempSibling(target: string, tag = 'tmp'): string {
  tempCounter += 1;
  const stamp = process.hrtime.bigint().toString(36);
  return path.join(path.dirname(target), `.${path.basename(target)}.${tag}-${process.pid}-${tempCounter}-${stamp}`);
}

/**
 * `mkdir -p`, one level at a time. Node's `mkdir(…, { recursive: true })` spins forever where mkdir fails with ENOENT
 * under an existing folder (`/proc/nope`); here every error surfaces (ENOTDIR for a file in the path, ENOENT, EACCES).
 */
export function makeDirSync(dir: string): void {
  const missing: string[] = [];
  for (let p = path.resolve(dir); ; ) {
    if (fs.existsSync(p)) break;
    missing.push(p);
    const up = path.dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const m of missing.reverse()) {
    try {
      fs.mkdirSync(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** Largest single write() we issue (Linux caps one write at ~2 GiB). */
const MAX_WRITE = 1 << 30;

async function writeAllAsync(fh: fsp.FileHandle, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) {
    const len = Math.min(MAX_WRITE, bytes.byteLength - off);
    const { bytesWritten } = await fh.write(bytes, off, len);
    off += bytesWritten;
  }
}

function writeAllSync(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) {
    const len = Math.min(MAX_WRITE, bytes.byteLength - off);
    off += fs.writeSync(fd, bytes, off, len);
  }
}

function chunksOf(data: FileData): readonly Uint8Array[] {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  if (data instanceof Uint8Array) return [data];
  return data;
}

/** fsync a folder so a rename inside it is durable. Best effort: some platforms cannot open folders. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // not supported here (e.g. Windows); the rename itself is still atomic
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort, see fsyncDir
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Write `data` to `file` atomically: temp file in the same folder, fsync, rename over `file`, fsync the folder.
 * Creates the parent folder if needed. On failure the temp file is removed and `file` is untouched.
 */
export async function writeFileAtomic(file: string, data: FileData): Promise<void> {
  makeDirSync(path.dirname(file));
  const tmp = tempSibling(file);
  const fh = await fsp.open(tmp, 'wx');
  try {
    for (const chunk of chunksOf(data)) await writeAllAsync(fh, chunk);
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

/** Synchronous `writeFileAtomic` (for exit handlers and other places that cannot await). */
export function writeFileAtomicSync(file: string, data: FileData): void {
  makeDirSync(path.dirname(file));
  const tmp = tempSibling(file);
  const fd = fs.openSync(tmp, 'wx');
  let closed = false;
  try {
    for (const chunk of chunksOf(data)) writeAllSync(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    closed = true;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (!closed) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing
      }
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDirSync(path.dirname(file));
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

export interface BuildDirOptions {
  /**
   * When the target folder already exists: entries of the old folder (top level) that the new one lacks and for
   * which `keep(name)` is true are copied into the new folder before it replaces the old one (e.g. keep
   * `tokenizer.json` when only the weights are rewritten). Default: keep nothing.
   */
  keep?: (name: string) => boolean;
}

/**
 * Build a folder atomically: `build(tmpDir)` fills a fresh temp folder next to `dir`; then the temp folder replaces
 * `dir` (an existing `dir` is renamed away, the new one renamed in, the old one removed; if the second rename fails
 * the old folder is put back). If `build` throws, the temp folder is removed and `dir` is untouched.
 */
export async function buildDirAtomic(
  dir: string,
  build: (tmpDir: string) => Promise<void>,
  options: BuildDirOptions = {},
): Promise<void> {
  const target = path.resolve(dir);
  makeDirSync(path.dirname(target));
  const tmp = tempSibling(target, 'building');
  await fsp.mkdir(tmp);
  const had = await exists(target);
  try {
    await build(tmp);
    if (had && options.keep) {
      const st = await fsp.stat(target);
      if (st.isDirectory()) {
        const fresh = new Set(await fsp.readdir(tmp));
        for (const name of await fsp.readdir(target)) {
          if (fresh.has(name) || !options.keep(name)) continue;
          await fsp.cp(path.join(target, name), path.join(tmp, name), { recursive: true, preserveTimestamps: true });
        }
      }
    }
    await fsyncDir(tmp);
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  if (!had) {
    await fsp.rename(tmp, target);
  } else {
    const old = tempSibling(target, 'old');
    await fsp.rename(target, old);
    try {
      await fsp.rename(tmp, target);
    } catch (e) {
      await fsp.rename(old, target).catch(() => undefined);
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
    await fsp.rm(old, { recursive: true, force: true });
  }
  await fsyncDir(path.dirname(target));
}

/** Check that a relative file name stays inside its folder (no absolute paths, no `..`). */
export function checkRelativeName(name: string, field: string, file?: string): void {
  const parts = name.split(/[\\/]/);
  if (name === '' || path.isAbsolute(name) || /^[a-zA-Z]:/.test(name) || parts.some((p) => p === '..' || p === '')) {
    throw new ConfigError(field, `file name ${JSON.stringify(name)} must be a relative path inside the folder`, file);
  }
}

/**
 * Write a whole folder atomically: `files` maps relative names (sub-folders allowed: `a/b.json`) to contents.
 * See `buildDirAtomic` for how an existing folder is replaced, and for `options.keep`.
 */
export async function writeDirAtomic(
  dir: string,
  files: Record<string, FileData>,
  options: BuildDirOptions = {},
): Promise<void> {
  for (const name of Object.keys(files)) checkRelativeName(name, 'files', dir);
  await buildDirAtomic(
    dir,
    async (tmp) => {
      for (const [name, data] of Object.entries(files)) await writeFileAtomic(path.join(tmp, name), data);
    },
    options,
  );
}

function parseJsonText(text: string, file: string, what: string): unknown {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(
      'E_JSON',
      file,
      `not valid JSON (expected ${what}): ${(e as Error).message.replace(/\s+/g, ' ')}`,
    );
  }
}

function readError(e: unknown, file: string, what: string): FileFormatError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new FileFormatError('E_FILE_MISSING', file, `file not found (expected ${what})`);
  if (code === 'EISDIR') return new FileFormatError('E_FILE_READ', file, `is a folder, not a file (expected ${what})`);
  return new FileFormatError('E_FILE_READ', file, `cannot read ${what}: ${(e as Error).message}`);
}

/**
 * Read and parse a JSON file. `what` says what the file should hold ("a Hugging Face config.json") and appears in
 * the error: FileFormatError `E_FILE_MISSING` (no such file), `E_FILE_READ` (unreadable) or `E_JSON` (bad JSON).
 * Returns the parsed value unchecked (`unknown`); the caller validates its shape.
 */
export async function readJsonFile(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw readError(e, file, what);
  }
  return parseJsonText(text, file, what);
}

/** Synchronous `readJsonFile`. */
export function readJsonFileSync(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw readError(e, file, what);
  }
  return parseJsonText(text, file, what);
}

/** True if `file` exists and is a regular file (following links). */
export async function isFile(file: string): Promise<boolean> {
  try {
    return (await fsp.stat(file)).isFile();
  } catch {
    return false;
  }
}

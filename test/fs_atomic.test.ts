/** src/util/fs.ts: atomic file and folder writes, and named errors from readJsonFile. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  buildDirAtomic,
  readJsonFile,
  readJsonFileSync,
  writeDirAtomic,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../src/util/fs.js';
import { ConfigError, FileFormatError } from '../src/util/errors.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'llmts-fs-'));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const leftovers = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.startsWith('.'));

describe('writeFileAtomic', () => {
  it('writes bytes, text and chunks, replaces an existing file, leaves no temp files', async () => {
    const f = path.join(tmp, 'sub', 'a.bin');
    await writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    await writeFileAtomic(f, 'héllo');
    expect(fs.readFileSync(f, 'utf8')).toBe('héllo');
    await writeFileAtomic(f, [new Uint8Array([9]), new Uint8Array(0), new Uint8Array([8, 7])]);
    expect([...fs.readFileSync(f)]).toEqual([9, 8, 7]);
    writeFileAtomicSync(f, 'sync');
    expect(fs.readFileSync(f, 'utf8')).toBe('sync');
    expect(leftovers(path.dirname(f))).toEqual([]);
  });

  it('on failure leaves the old file and no temp file', async () => {
    const dir = path.join(tmp, 'fail');
    const f = path.join(dir, 'x');
    await writeFileAtomic(f, 'old');
    // renaming a file over a non-empty folder fails
    const target = path.join(dir, 'folder');
    fs.mkdirSync(path.join(target, 'inner'), { recursive: true });
    await expect(writeFileAtomic(target, 'new')).rejects.toThrow();
    expect(fs.readFileSync(f, 'utf8')).toBe('old');
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('writeDirAtomic / buildDirAtomic', () => {
  it('creates a folder, replaces an existing one, keeps chosen old entries', async () => {
    const d = path.join(tmp, 'model');
    await writeDirAtomic(d, { 'config.json': '{}', 'tokenizer.json': 'tok', 'nested/x.txt': 'x' });
    expect(fs.readdirSync(d).sort()).toEqual(['config.json', 'nested', 'tokenizer.json']);
    await writeDirAtomic(
      d,
      { 'config.json': '{"a":1}', 'model.safetensors': new Uint8Array([1]) },
      { keep: (n) => n === 'tokenizer.json' },
    );
    expect(fs.readdirSync(d).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(fs.readFileSync(path.join(d, 'config.json'), 'utf8')).toBe('{"a":1}');
    expect(fs.readFileSync(path.join(d, 'tokenizer.json'), 'utf8')).toBe('tok');
    expect(leftovers(tmp)).toEqual([]);
  });

  it('a failing build leaves the old folder untouched and no temp folder', async () => {
    const d = path.join(tmp, 'keepme');
    await writeDirAtomic(d, { a: '1' });
    await expect(
      buildDirAtomic(d, async (t) => {
        fs.writeFileSync(path.join(t, 'b'), '2');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(fs.readdirSync(d)).toEqual(['a']);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('refuses file names that leave the folder', async () => {
    await expect(writeDirAtomic(path.join(tmp, 'bad'), { '../x': '1' })).rejects.toBeInstanceOf(ConfigError);
    await expect(writeDirAtomic(path.join(tmp, 'bad'), { '/etc/x': '1' })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('readJsonFile', () => {
  it('parses JSON (with a BOM)', async () => {
    const f = path.join(tmp, 'ok.json');
    fs.writeFileSync(f, '\ufeff{"a": [1, 2]}');
    expect(await readJsonFile(f, 'a test file')).toEqual({ a: [1, 2] });
    expect(readJsonFileSync(f, 'a test file')).toEqual({ a: [1, 2] });
  });

  it('missing file and bad JSON are named errors with the file and what was expected', async () => {
    const missing = path.join(tmp, 'missing.json');
    const e1 = await readJsonFile(missing, 'a Hugging Face config.json').catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(FileFormatError);
    expect((e1 as FileFormatError).code).toBe('E_FILE_MISSING');
    expect((e1 as Error).message).toContain(missing);
    expect((e1 as Error).message).toContain('a Hugging Face config.json');
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(bad, '{"a": 1,}');
    const e2 = await readJsonFile(bad, 'a tokenizer.json').catch((e: unknown) => e);
    expect((e2 as FileFormatError).code).toBe('E_JSON');
    expect((e2 as Error).message).toContain(bad);
    expect((e2 as Error).message).toContain('a tokenizer.json');
    expect(() => readJsonFileSync(tmp, 'a folder?')).toThrow(/is a folder/);
  });
});

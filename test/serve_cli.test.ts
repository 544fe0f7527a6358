// `llmts serve` as a process: --help prints and runs nothing; a run folder is served from its checkpoint/, the URL is
// printed, the official client talks to it, and Ctrl-C (SIGINT) closes it cleanly (exit 0); a bad folder is one line.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCliBuilt } from './helpers.js';
import { makeTinyModel } from './sft_helpers.js';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'llmts.js');
let tmp: string;

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-cli-'));
  await makeTinyModel(path.join(tmp, 'my-run', 'checkpoint'), { context: 128 });
}, 120_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('llmts serve (the command)', () => {
  it('--help prints the options and runs nothing', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    for (const f of ['--host', '--port', '--api-key', '--model-name', '--max-queue', '--max-tokens', '--backend'])
      expect(r.stdout).toContain(f);
  });

  it('a folder that is no model is one error line', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', tmp], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/neither a model folder .* nor a run folder/);
  });

  it('serves a run folder (drafting by prompt lookup), prints the URL, answers the client, and closes on Ctrl-C', async () => {
    const args = [BIN, 'serve', path.join(tmp, 'my-run'), '--port', '0', '--backend', 'ref', '--lookup'];
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    p.stderr.on('data', (d) => (err += String(d)));
    const url = await new Promise<string>((resolve, reject) => {
      p.stdout.on('data', (d) => {
        out += String(d);
        const m = /llmts serve: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
        if (m) resolve(m[1]!);
      });
      p.on('exit', (c) => reject(new Error(`exited with ${c}: ${err}`)));
    });
    const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    try {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
      expect((await client.models.list()).data[0]!.id).toBe('my-run');
      const r = await client.chat.completions.create({
        model: 'my-run',
        messages: [{ role: 'user', content: 'color red' }],
        max_tokens: 5,
      });
      expect(r.choices[0]!.message.role).toBe('assistant');
      expect(r.usage!.completion_tokens_details).toBeDefined(); // the lookup drafter's counts
      expect(out).toContain('speculative decoding: prompt lookup, drafts up to 8 tokens per check');
    } finally {
      p.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(err).toMatch(/POST \/v1\/chat\/completions 200/);
    expect(err).toContain('closing');
  });
});

/**
 * The GPU kit (bench/gpu/): what it carries and how it is called, checked without a GPU. The train bench's GPU shapes
 * must be the ones the PyTorch peer knows by the same names (bench/peers/torch-gpt.py is asked for a shape by name:
 * a mismatch would compare different work), and ANCHORS.md's; runtime-deps.mjs must find a package's dependencies as
 * Node does (nested copies first, optional ones that are missing skipped, dev dependencies never); the scripts parse,
 * print their usage and refuse unknown flags; the bench refuses a bad --backend before loading anything.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CPU_SHAPES, GPU_SHAPES } from '../bench/train_shapes.mjs';

/** torch-gpt.py's SHAPES: name → (layers, width, heads, vocab, T, B). */
function torchShapes(): Record<string, number[]> {
  const py = fs.readFileSync('bench/peers/torch-gpt.py', 'utf8');
  const block = /SHAPES = \{([\s\S]*?)\n\}/.exec(py)?.[1] ?? '';
  const out: Record<string, number[]> = {};
  for (const m of block.matchAll(/"([\w-]+)": \(([\d, ]+)\)/g)) out[m[1]!] = m[2]!.split(',').map(Number);
  return out;
}

describe('GPU kit', () => {
  it('the GPU shapes are torch-gpt.py’s, name for name', () => {
    const torch = torchShapes();
    expect(Object.keys(torch).sort()).toEqual(['gpt2', 'small', 'tiny', 'tiny-b64']);
    for (const [name, dims] of Object.entries(torch)) {
      const s = GPU_SHAPES[name];
      expect(s, name).toBeDefined();
      expect([s!.L, s!.C, s!.H, s!.V, s!.T, s!.B], name).toEqual(dims);
    }
    // ANCHORS.md: small runs B64 on the GPU and B4 on a CPU; GPT-2 B16 T1024 on the GPU, B4 T64 on a CPU
    expect([GPU_SHAPES.small!.B, CPU_SHAPES.small!.B]).toEqual([64, 4]);
    expect([GPU_SHAPES.gpt2!.B, GPU_SHAPES.gpt2!.T, CPU_SHAPES.gpt2!.B, CPU_SHAPES.gpt2!.T]).toEqual([16, 1024, 4, 64]);
  });

  it('runtime-deps.mjs resolves as Node does', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-deps-'));
    const pkg = (dir: string, json: object) => {
      fs.mkdirSync(path.join(root, dir), { recursive: true });
      fs.writeFileSync(path.join(root, dir, 'package.json'), JSON.stringify(json));
    };
    pkg('.', { dependencies: { a: '1' }, optionalDependencies: { gone: '1', o: '1' }, devDependencies: { dev: '1' } });
    pkg('node_modules/a', { dependencies: { b: '1', c: '1' } });
    pkg('node_modules/a/node_modules/b', { dependencies: { c: '1' } }); // a's own copy of b
    pkg('node_modules/b', { dependencies: { never: '1' } }); // the hoisted b: nobody resolves to it
    pkg('node_modules/c', {});
    pkg('node_modules/o', { peerDependencies: { p: '1' } });
    pkg('node_modules/p', {});
    pkg('node_modules/dev', {});
    pkg('node_modules/t', { dependencies: { c: '1' } });
    try {
      const r = spawnSync(process.execPath, ['bench/gpu/runtime-deps.mjs', root, '.', 't', 'missing'], {
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual([
        'node_modules/a',
        'node_modules/a/node_modules/b',
        'node_modules/c',
        'node_modules/o',
        'node_modules/p',
        'node_modules/t',
      ]);
      expect(r.stderr).toMatch(/missing is not installed/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('the scripts parse, print their usage and refuse unknown flags', () => {
    for (const f of ['bench/gpu/kit.sh', 'bench/gpu/run.sh']) {
      expect(spawnSync('bash', ['-n', f]).status, f).toBe(0);
      const help = spawnSync('bash', [f, '--help'], { encoding: 'utf8' });
      expect(help.status, f).toBe(0);
      expect(help.stdout, f).toMatch(/^GPU kit, part [12]/);
      expect(help.stdout, f).toMatch(/usage: bash bench\/gpu\//);
      expect(spawnSync('bash', [f, '--bogus'], { encoding: 'utf8' }).status, f).toBe(2);
    }
    // the call kit.sh prints carries what run.sh unpacks
    const kit = fs.readFileSync('bench/gpu/kit.sh', 'utf8');
    const run = fs.readFileSync('bench/gpu/run.sh', 'utf8');
    const carry = JSON.parse(/carry: (\[[^\]]*\])/.exec(kit)![1]!) as string[];
    for (const c of carry) expect(run, c).toContain(c);
    expect(fs.readFileSync('.gitignore', 'utf8').split('\n')).toContain('/.gpu/');
  });

  it('train.bench.mjs: --help runs nothing; a bad --backend or case is a usage error', () => {
    const help = spawnSync(process.execPath, ['bench/train.bench.mjs', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--backend {4}auto/);
    expect(help.stdout).not.toMatch(/"bench":"machine"|machine:/);
    const bad = spawnSync(process.execPath, ['bench/train.bench.mjs', '--backend', 'cuda'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--backend: expected auto, ref, wasm or webgpu, got cuda/);
  });
});

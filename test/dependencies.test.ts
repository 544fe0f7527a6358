/**
 * What the library reaches at run time is installed with it: every package that src/ imports, dynamically imports or
 * resolves is one of package.json's `dependencies` (a devDependency such as gpt-3-encoder is for tests and benches only);
 * the one optional dependency, `webgpu` (Dawn, a native binding of 132 MB), is loaded by name and checked apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(import.meta.dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};

/** Every .ts / .js file under dir, AssemblyScript kernels excepted (they import nothing from npm). */
function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && /\.(ts|js|mjs)$/.test(d.name))
    .map((d) => path.join(d.parentPath, d.name))
    .filter((f) => !f.includes(`${path.sep}assembly${path.sep}`));
}

/** 'a/b/c' → 'a', '@s/a/b' → '@s/a'. */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Bare specifiers in import / export … from / import() / require() / require.resolve(), comments removed. */
function bareSpecifiers(code: string): string[] {
  const text = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom|\bimport|\brequire|\.resolve)\s*\(?\s*(['"])([^'"]+)\1/g)) {
    const spec = m[2]!;
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:')) continue;
    out.push(spec);
  }
  return out;
}

describe('run-time dependencies', () => {
  it('finds bare specifiers, and only those', () => {
    const code = [
      "import a from 'js-tiktoken/ranks/gpt2';",
      "const b = await import('@scope/pkg/deep');",
      "require.resolve('gpt-3-encoder/package.json');",
      "import { c } from './local.js';",
      "import fs from 'node:fs';",
      "// import d from 'in-a-comment';",
      "/* require('also-a-comment') */",
    ].join('\n');
    expect(bareSpecifiers(code).map(packageOf)).toEqual(['js-tiktoken', '@scope/pkg', 'gpt-3-encoder']);
  });

  it('every package src/ reaches is a dependency, not a devDependency', () => {
    const deps = new Set(Object.keys(pkg.dependencies ?? {}));
    const files = sources(path.join(ROOT, 'src'));
    expect(files.length).toBeGreaterThan(50);
    const missing: string[] = [];
    for (const f of files) {
      for (const spec of bareSpecifiers(fs.readFileSync(f, 'utf8'))) {
        const name = packageOf(spec);
        if (name !== pkg.name && !deps.has(name)) missing.push(`${path.relative(ROOT, f)}: ${spec}`);
      }
    }
    expect(missing).toEqual([]);
  });

  // The webgpu backend loads Dawn in Node by a variable name (browser bundlers must not follow it), so the scan
  // above cannot see it: src/backend/webgpu/node_gpu.ts names the package and version, package.json must agree.
  it("the webgpu package that Node's webgpu backend loads is an optional dependency, at the version it names", async () => {
    const { NODE_WEBGPU_PACKAGE, NODE_WEBGPU_VERSION } = await import('../src/backend/webgpu/node_gpu.js');
    expect(pkg.optionalDependencies?.[NODE_WEBGPU_PACKAGE]).toBe(NODE_WEBGPU_VERSION);
    expect(pkg.dependencies?.[NODE_WEBGPU_PACKAGE]).toBeUndefined();
  });
});

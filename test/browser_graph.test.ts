/**
 * The browser entry point (dist/browser.js, and src/browser.ts before a build) imports no Node built-in anywhere in
 * its static import graph: every `import … from` / `export … from` / `import '…'` is followed through relative
 * files, packages (their ESM entry) and the worker script the wasm pool starts (`new URL('./worker.js',
 * import.meta.url)`), and any `node:` specifier or bare built-in name (fs, path, …) fails with the chain that
 * reaches it. Relative dynamic `import('./…')` is followed too (the registry loads the wasm backend so), unless
 * marked `import(/* node-only *\/ '…')`: file loaders load their helpers that way, on call. A dynamic import of a
 * built-in is allowed: Node-only code paths load that way, behind a runtime check.
 */
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = process.cwd();
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]));

interface Edge {
  spec: string;
  kind: 'static' | 'dynamic' | 'url';
}

/**
 * Static import/export specifiers of a module, relative `import('./…')` (our own modules, loaded on call: their
 * static imports count too), and `new URL('<literal>.js', import.meta.url)` script references (the pool's worker).
 */
function edgesOf(file: string): Edge[] {
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Edge[] = [];
  for (const st of src.statements) {
    if (
      (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) &&
      st.moduleSpecifier &&
      ts.isStringLiteral(st.moduleSpecifier)
    ) {
      // `import type` / `export type` vanish in JavaScript
      const typeOnly = ts.isImportDeclaration(st) ? !!st.importClause?.isTypeOnly : st.isTypeOnly;
      if (!typeOnly) out.push({ spec: st.moduleSpecifier.text, kind: 'static' });
    }
  }
  const visit = (n: ts.Node): void => {
    if (
      ts.isNewExpression(n) &&
      ts.isIdentifier(n.expression) &&
      n.expression.text === 'URL' &&
      n.arguments?.length === 2
    ) {
      const [a, b] = n.arguments;
      if (a && ts.isStringLiteral(a) && /\.m?js$/.test(a.text) && b && b.getText(src) === 'import.meta.url')
        out.push({ spec: a.text, kind: 'url' });
    }
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = n.arguments[0];
      const nodeOnly = !!a && src.text.slice(a.pos, a.getStart(src)).includes('node-only'); // import(/* node-only */ '…')
      if (a && ts.isStringLiteral(a) && a.text.startsWith('.') && !nodeOnly)
        out.push({ spec: a.text, kind: 'dynamic' });
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

/** The ESM entry file of an installed package (exports["."].import/default, module, main). */
function packageEntry(spec: string, from: string): string | null {
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const sub = spec.slice(name.length);
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(pkgDir, 'package.json'))) {
      if (sub) return path.join(pkgDir, sub);
      const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as Record<string, unknown>;
      const exp = (pkg['exports'] as Record<string, unknown> | string | undefined) ?? undefined;
      const dot = typeof exp === 'string' ? exp : (exp?.['.'] as Record<string, unknown> | string | undefined);
      const pick =
        typeof dot === 'string'
          ? dot
          : ((dot?.['import'] ?? dot?.['browser'] ?? dot?.['default']) as string | undefined);
      const entry = pick ?? (pkg['module'] as string | undefined) ?? (pkg['main'] as string | undefined) ?? 'index.js';
      return path.join(pkgDir, typeof entry === 'string' ? entry : 'index.js');
    }
    if (dir === path.dirname(dir)) return null;
  }
}

/** Resolve a relative specifier; under src/ a `.js` import names the `.ts` source. */
function resolveRelative(spec: string, from: string): string {
  const p = path.resolve(path.dirname(from), spec);
  if (!fs.existsSync(p) && p.endsWith('.js') && fs.existsSync(p.slice(0, -3) + '.ts')) return p.slice(0, -3) + '.ts';
  return p;
}

/** Walk the graph from `entry`; returns the files reached and every Node built-in found, with the chain to it. */
function nodeImports(entry: string): { files: string[]; violations: string[]; unresolved: string[] } {
  const seen = new Set<string>();
  const violations: string[] = [];
  const unresolved: string[] = [];
  const stack: { file: string; chain: string[] }[] = [{ file: entry, chain: [path.relative(ROOT, entry)] }];
  while (stack.length) {
    const { file, chain } = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const e of edgesOf(file)) {
      const s = e.spec;
      if (s.startsWith('node:') || BUILTINS.has(s) || BUILTINS.has(s.split('/')[0]!)) {
        violations.push(`${s} ← ${chain.slice().reverse().join(' ← ')}`);
        continue;
      }
      const target = s.startsWith('.') || s.startsWith('/') ? resolveRelative(s, file) : packageEntry(s, file);
      if (!target || !fs.existsSync(target)) {
        unresolved.push(`${s} (from ${path.relative(ROOT, file)})`);
        continue;
      }
      stack.push({
        file: target,
        chain: [
          ...chain,
          `${e.kind === 'url' ? 'worker ' : e.kind === 'dynamic' ? 'import() ' : ''}${path.relative(ROOT, target)}`,
        ],
      });
    }
  }
  return { files: [...seen].map((f) => path.relative(ROOT, f)), violations, unresolved };
}

describe('browser entry point: no Node built-in in the static import graph', () => {
  it('dist/browser.js (run `npm run build` first)', () => {
    const entry = path.join(ROOT, 'dist/browser.js');
    expect(fs.existsSync(entry), 'dist/browser.js is missing: run `npm run build`').toBe(true);
    const g = nodeImports(entry);
    expect(g.violations).toEqual([]);
    expect(g.unresolved).toEqual([]);
    // the graph really spans the library, the pool's worker script and the jinja package
    expect(g.files).toContain('dist/backend/registry.js');
    expect(g.files).toContain('dist/model/model.js');
    expect(g.files).toContain('dist/formats/safetensors_bytes.js');
    expect(g.files).toContain('dist/backend/wasm/worker.js');
    expect(g.files.some((f) => f.includes('@huggingface/jinja'))).toBe(true);
  });

  it('src/browser.ts (the same graph before a build)', () => {
    const g = nodeImports(path.join(ROOT, 'src/browser.ts'));
    expect(g.violations).toEqual([]);
    expect(g.unresolved).toEqual([]);
    expect(g.files).toContain('src/backend/wasm/worker.js');
  });

  it('catches a Node built-in where there is one (the Node entry point)', () => {
    const g = nodeImports(path.join(ROOT, 'src/index.ts'));
    expect(g.violations.some((v) => v.startsWith('node:fs'))).toBe(true);
    expect(g.violations.some((v) => v.includes('src/formats/safetensors.ts'))).toBe(true);
  });
});

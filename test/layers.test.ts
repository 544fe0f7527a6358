/**
 * The architecture of docs/ARCHITECTURE.md, held by scanning the import lines of src/: each layer imports only the
 * layers it sits on (and, through them, what those sit on), with no exceptions; and no file-level import cycle.
 *
 *   util ─▶ backend (contract, kernel catalogue, sampling math, registry) ─▶ backend/{ref, wasm, webgpu}
 *           (siblings never import each other; of the backend root only registry.ts imports them, and nothing above
 *           the backend layer imports a backend's own folder: code picks a backend through the registry)
 *   util ─▶ formats (bytes ⇄ named arrays)     util + formats (GGUF metadata) ─▶ tokenizer ─▶ data
 *   backend ─▶ tensor ─▶ model (+ formats: the Hugging Face mapping lives in model/hf) ─▶ optim
 *   model ─▶ generate (ids and a codec interface only: no tokenizer) ─▶ chat (+ tokenizer)
 *   model + optim + data + generate ─▶ train;   train + generate + chat ─▶ align (rlhf today) ─▶ feedback
 *   chat ─▶ inspect (attention maps, logit lens, the inspection page) ─▶ server
 *   everything ─▶ server ─▶ cli;   src/index.ts and src/browser.ts (the entry points) re-export the library
 *
 * A folder under src/ that is not in the table fails the test: a new layer is placed here on purpose.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve('src');

/** What each layer sits on (directly); a layer may import these and everything they may import. */
const SITS_ON: Record<string, readonly string[]> = {
  util: [],
  backend: ['util'],
  'backend/ref': ['backend'],
  'backend/wasm': ['backend'],
  'backend/webgpu': ['backend'],
  formats: ['util'],
  // a tokenizer can live in a GGUF file's metadata (tokenizer/gguf.ts reads it with formats/gguf.ts)
  tokenizer: ['util', 'formats'],
  data: ['tokenizer'],
  tensor: ['backend'],
  model: ['tensor', 'formats'],
  optim: ['tensor'],
  generate: ['model'],
  chat: ['generate', 'tokenizer'],
  train: ['model', 'optim', 'data', 'generate'],
  // the GPT pretraining recipe on the model-agnostic loop
  pretrain: ['train'],
  align: ['pretrain', 'generate', 'chat'],
  // today's name of the align layer (DPO); it becomes align/
  rlhf: ['pretrain', 'generate', 'chat'],
  feedback: ['align'],
  // seeing inside a model: attention maps, the logit lens, the offline page of `llmts inspect`
  inspect: ['chat'],
  server: ['align', 'rlhf', 'feedback', 'inspect'],
  cli: ['server'],
  // src/index.ts, src/browser.ts: the package's entry points
  entry: ['server'],
};

/** The backends' own folders: imported only from inside themselves and by the registry. */
const BACKEND_CHILDREN = ['backend/ref', 'backend/wasm', 'backend/webgpu'];
const REGISTRY = 'backend/registry.ts';

function closure(layer: string, seen = new Set<string>()): Set<string> {
  for (const d of SITS_ON[layer] ?? []) {
    if (!seen.has(d)) {
      seen.add(d);
      closure(d, seen);
    }
  }
  return seen;
}
const MAY_IMPORT = new Map(Object.keys(SITS_ON).map((l) => [l, closure(l)]));

/** The layer of a file (path relative to src/, '/'-separated): its top folder, backend's children apart. */
function layerOf(rel: string): string {
  const parts = rel.split('/');
  if (parts.length === 1) return 'entry';
  if (parts[0] === 'backend' && parts.length > 2) return `backend/${parts[1]}`;
  return parts[0]!;
}

interface ImportLine {
  /** The importing file, relative to src/. */
  file: string;
  /** The imported file, relative to src/. */
  target: string;
  /** `import type` / `export type`: erased by the compiler. */
  typeOnly: boolean;
}

/** The rule broken by one import, or null. */
function violation(i: ImportLine): string | null {
  const from = layerOf(i.file),
    to = layerOf(i.target);
  if (!SITS_ON[from]) return `${i.file}: folder '${from}' has no place in the layer table`;
  if (!SITS_ON[to]) return `${i.file} imports ${i.target}: folder '${to}' has no place in the layer table`;
  if (from === to) return null;
  const what = `${i.file} imports ${i.target} (${from} → ${to}`;
  if (BACKEND_CHILDREN.includes(to)) {
    return i.file === REGISTRY ? null : `${what}: only ${REGISTRY} imports a backend's own folder)`;
  }
  const may = MAY_IMPORT.get(from)!;
  return may.has(to) ? null : `${what}: ${from} sits on ${[...may].join(', ') || 'nothing'})`;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    // assembly/ is compiled apart (AssemblyScript), into the .wasm the wasm backend loads
    if (e.isDirectory()) return e.name === 'assembly' ? [] : sourceFiles(p);
    return /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

/** The file a relative specifier names ('./x.js' → x.ts when that is the source), relative to src/. */
function resolve(from: string, spec: string): string {
  const abs = path.resolve(path.dirname(from), spec);
  const ts = abs.replace(/\.js$/, '.ts');
  return path
    .relative(SRC, fs.existsSync(ts) ? ts : abs)
    .split(path.sep)
    .join('/');
}

/** Every relative import of every file under src/: static (import/export … from), side-effect, and dynamic. */
function importLines(): ImportLine[] {
  const out: ImportLine[] = [];
  const patterns = [
    /^\s*(import|export)\s+(type\s+)?[^;'"]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/gm,
    /^\s*(import)()\s*['"](\.{1,2}\/[^'"]+)['"]/gm,
    /\b(import)()\(\s*(?:\/\*[^*]*\*\/\s*)?['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
  ];
  for (const f of sourceFiles(SRC)) {
    const file = path.relative(SRC, f).split(path.sep).join('/');
    const text = fs.readFileSync(f, 'utf8');
    for (const re of patterns) {
      for (const m of text.matchAll(re)) out.push({ file, target: resolve(f, m[3]!), typeOnly: Boolean(m[2]) });
    }
  }
  return out;
}

/** Import cycles among files (each once, as a path a → … → a), by depth-first search over the given edges. */
function cycles(edges: readonly ImportLine[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.file, [...(next.get(e.file) ?? []), e.target]);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of next.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d].join(' → '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...next.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

describe('layers', () => {
  const lines = importLines();

  it('scans the real import graph (static, side-effect and dynamic imports)', () => {
    expect(lines.length).toBeGreaterThan(200);
    const has = (file: string, target: string) => lines.some((l) => l.file === file && l.target === target);
    expect(has('backend/registry.ts', 'backend/wasm/backend.ts')).toBe(true); // dynamic import
    expect(has('tensor/ops.ts', 'tensor/grad_rules.ts')).toBe(true); // side-effect import
    expect(has('model/hf/config.ts', 'util/fs.ts')).toBe(true); // dynamic import behind a comment
    expect(lines.some((l) => l.typeOnly)).toBe(true);
  });

  it('every folder of src/ has a place in the layer table', () => {
    const dirs = (d: string) =>
      fs.readdirSync(path.join(SRC, d), { withFileTypes: true }).filter((x) => x.isDirectory());
    const folders = [...dirs('').map((e) => e.name), ...dirs('backend').map((e) => `backend/${e.name}`)];
    expect(folders.filter((f) => !(f in SITS_ON))).toEqual([]);
  });

  it('every import goes down the layer table, with no exceptions', () => {
    expect(lines.map(violation).filter((v) => v !== null)).toEqual([]);
  });

  it('no file-level import cycle inside src/ (type-only imports aside: the compiler erases them)', () => {
    expect(cycles(lines.filter((l) => !l.typeOnly))).toEqual([]);
  });

  it('the rules catch what they are for', () => {
    const bad = (file: string, target: string) => violation({ file, target, typeOnly: false });
    // backends: siblings never import each other; the root imports them only from registry.ts; nothing above does
    expect(bad('backend/wasm/backend.ts', 'backend/ref/sample.ts')).toMatch(/only backend\/registry\.ts/);
    expect(bad('backend/webgpu/backend.ts', 'backend/wasm/pool.ts')).toMatch(/only backend\/registry\.ts/);
    expect(bad('backend/kernels.ts', 'backend/ref/nn.ts')).toMatch(/only backend\/registry\.ts/);
    expect(bad('tensor/record.ts', 'backend/ref/backend.ts')).toMatch(/only backend\/registry\.ts/);
    expect(bad('backend/registry.ts', 'backend/webgpu/backend.ts')).toBeNull();
    expect(bad('backend/wasm/backend.ts', 'backend/sampling.ts')).toBeNull();
    expect(bad('backend/ref/sample.ts', 'tensor/tensor.ts')).toMatch(/backend\/ref → tensor/);
    // formats know no model; generate knows no tokenizer; lower layers never reach up
    expect(bad('formats/safetensors.ts', 'model/config.ts')).toMatch(/formats → model/);
    expect(bad('formats/gguf.ts', 'tensor/tensor.ts')).toMatch(/formats → tensor/);
    expect(bad('generate/engine.ts', 'tokenizer/types.ts')).toMatch(/generate → tokenizer/);
    expect(bad('generate/engine.ts', 'chat/codec.ts')).toMatch(/generate → chat/);
    expect(bad('tensor/ops.ts', 'model/model.ts')).toMatch(/tensor → model/);
    expect(bad('model/model.ts', 'optim/adamw.ts')).toMatch(/model → optim/);
    expect(bad('tokenizer/tokenizer.ts', 'data/corpus.ts')).toMatch(/tokenizer → data/);
    expect(bad('train/trainer.ts', 'chat/session.ts')).toMatch(/train → chat/);
    expect(bad('align/dpo.ts', 'feedback/store.ts')).toMatch(/align → feedback/);
    expect(bad('server/app.ts', 'cli/main.ts')).toMatch(/server → cli/);
    expect(bad('browser.ts', 'cli/main.ts')).toMatch(/entry → cli/);
    expect(bad('webgpu/device.ts', 'util/rng.ts')).toMatch(/no place in the layer table/);
    // what the table allows, through the layers in between
    expect(bad('model/hf/weights.ts', 'formats/safetensors_bytes.ts')).toBeNull();
    expect(bad('chat/codec.ts', 'tokenizer/stream_decoder.ts')).toBeNull();
    expect(bad('train/pretrain.ts', 'tokenizer/index.ts')).toBeNull();
    expect(bad('cli/generate.ts', 'backend/registry.ts')).toBeNull();
    // cycles
    const e = (file: string, target: string) => ({ file, target, typeOnly: false });
    expect(cycles([e('a', 'b'), e('b', 'c'), e('c', 'a'), e('c', 'd')])).toEqual(['a → b → c → a']);
    expect(cycles([e('a', 'b'), e('a', 'c'), e('b', 'c')])).toEqual([]);
  });
});

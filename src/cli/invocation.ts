/**
 * How to run `llmts` from where the user is, for the "Next:" hints commands print: `node bin/llmts.js` (relative to
 * the current folder) when this package is a clone or a checkout, where `llmts` is not on PATH; `npx llmts` when it is
 * installed as a dependency (inside node_modules), where npx finds its bin.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root folder (this file is in src/cli/ or dist/cli/). */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The command that runs `llmts` from `cwd` (default: the current folder). */
export function llmtsCommand(cwd: string = process.cwd(), root: string = packageRoot()): string {
  if (root.split(path.sep).includes('node_modules')) return 'npx llmts';
  const bin = path.relative(cwd, path.join(root, 'bin', 'llmts.js'));
  return `node ${bin.includes(' ') ? JSON.stringify(bin) : bin}`;
}

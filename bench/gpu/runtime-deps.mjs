// The package folders a set of packages needs at run time, found as Node finds them (a package's own node_modules
// first, then each folder above it): the packages named, their `dependencies`, `optionalDependencies` and
// `peerDependencies`, recursively. Used by bench/gpu/kit.sh to carry only those to the GPU machine.
// usage: node bench/gpu/runtime-deps.mjs ROOT NAME ...   prints one folder a line, relative to ROOT (node_modules/...);
//        a NAME that is not installed is skipped (a line on stderr), as is an optional dependency that is not.
//        NAME `.` is ROOT's package.json: its dependencies and optionalDependencies.
import fs from 'node:fs';
import path from 'node:path';

const [root, ...names] = process.argv.slice(2);
if (!root || !names.length) {
  console.error('usage: node bench/gpu/runtime-deps.mjs ROOT NAME ...');
  process.exit(2);
}
const top = path.resolve(root);
/** @type {Set<string>} folders found, relative to ROOT */
const found = new Set();

/** The folder of package `name` as seen from folder `from` (a package folder or ROOT), else null. */
/** @param {string} name @param {string} from @returns {string | null} */
function resolve(name, from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const cand = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(cand, 'package.json'))) return cand;
    if (dir === top || !dir.startsWith(top)) return null;
  }
}

/** @param {string} dir a package folder (or ROOT) */
function walk(dir, withPeers = true) {
  /** @type {{ dependencies?: Record<string, string>, optionalDependencies?: Record<string, string>, peerDependencies?: Record<string, string> }} */
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const deps = [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...(withPeers ? Object.keys(pkg.peerDependencies ?? {}) : []),
  ];
  for (const d of deps) {
    const at = resolve(d, dir);
    if (!at) continue; // an optional one not installed here
    const rel = path.relative(top, at);
    if (found.has(rel)) continue;
    found.add(rel);
    walk(at);
  }
}

for (const name of names) {
  if (name === '.') {
    walk(top, false);
    continue;
  }
  const at = resolve(name, top);
  if (!at) {
    console.error(`runtime-deps: ${name} is not installed under ${top}`);
    continue;
  }
  found.add(path.relative(top, at));
  walk(at);
}
for (const f of [...found].sort()) console.log(f);

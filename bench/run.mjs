#!/usr/bin/env node
// Runs every bench/*.bench.mjs in turn (or those named first: `npm run bench -- train decode --json`), passing the
// flags after the names through to each (`--json`: one JSON object per line; `--cases tiny` and the like).
// Benchmarks are never part of `npm test`. Each bench prints the processor, threads used and Node version first, and
// divides by a C figure of ANCHORS.md only when it was measured on the same processor model (bench/anchors.mjs).
// usage: node bench/run.mjs [name ...] [flags]     (npm run bench -- [name ...] [flags] builds first)
//   --help, -h   alone: print this and the benches' names, run nothing; after names (`npm run bench -- decode
//                --help`): each named bench prints its own usage and flags, and runs nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitIfHelp } from './machine.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
// bench names come first; everything from the first flag on goes to each bench (flags with values: --cases tiny)
const firstFlag = args.findIndex((a) => a.startsWith('-'));
const names = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
const all = fs
  .readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .sort();
if (!names.length) exitIfHelp(import.meta.url, `benches: ${all.map((f) => f.replace('.bench.mjs', '')).join(', ')}`);
const chosen = names.length ? all.filter((f) => names.some((n) => f.startsWith(n))) : all;
if (!chosen.length) {
  console.error(
    `no benchmark matches ${names.join(', ')}; available: ${all.map((f) => f.replace('.bench.mjs', '')).join(', ')}`,
  );
  process.exit(2);
}
let failed = 0;
for (const f of chosen) {
  if (!flags.includes('--json')) console.log(`\n=== ${f.replace('.bench.mjs', '')} ===`);
  const r = spawnSync(process.execPath, [path.join(here, f), ...flags], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`${f} exited with ${r.status}`);
  }
}
process.exit(failed ? 1 : 0);

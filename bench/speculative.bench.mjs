#!/usr/bin/env node
// Speculative decoding (src/generate/speculative.ts): what it buys per generated token, at llama2.c's stories shapes
// (random weights: speed does not depend on the values), float32 (fused, as `llmts generate` decodes) and q8, batch 1,
// greedy, in one command. Every row checks that the tokens equal the plain run's.
//   forward  the price of a check: one KV-cached forward of T = 1, 2, 5, 9 positions at position ~P, in ms, and its
//            cost relative to T = 1 (what drafting k tokens costs the target when none of them stands).
//   oracle   the engine against a drafter that knows the plain run's tokens and gets each one right with
//            probability α (α = 0: always wrong; the draft is cut at its first wrong token, as a real one would be
//            refuted there): tok/s and speedup over plain decoding as the acceptance falls. The schedule
//            (DraftSchedule) adapts the draft length and pauses drafting after misses, which bounds the α = 0 loss.
//   lookup   PromptLookup on a prompt whose end the model goes on repeating (a random model's greedy output falls
//            into a loop; the prompt is 64 random ids and 64 tokens of that loop), against llama.cpp on the same
//            weights (GGUF, node-llama-cpp's prebuilt CPU binary in its own process, bench/peers/llamacpp-
//            speculative.mjs) with node-llama-cpp's prompt-lookup drafter (InputLookupTokenPredictor, same draft
//            length): each side's speedup over its own plain decode, and tok/s ratio llm.ts / llama.cpp.
// FLOPs: 2 per weight + attention per generated token (useful work; a refuted draft's work is not counted), against
// the sgemm peak of ANCHORS.md where it was measured on this processor.
// usage: node bench/speculative.bench.mjs [--cases stories15M,stories110M] [--weights f32,q8] [--tokens 128]
//          [--draft 8] [--alphas 0,0.5,0.8,0.95,1] [--reps 3] [--threads N] [--no-peer] [--json]   (after `npm run build`)
// --reps: plain and speculative runs alternate this many times per row; each side's best is kept.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { exitIfHelp, printMachine, sgemmPeak } from './machine.mjs';
import { STORIES, storiesConfig } from './stories.mjs';

exitIfHelp(import.meta.url);
const argv = process.argv.slice(2);
/** @param {string} k @param {string} d */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? /** @type {string} */ (argv[i + 1]) : d;
};
const json = argv.includes('--json');
const cases = opt('--cases', 'stories15M,stories110M').split(',');
const weights = opt('--weights', 'f32,q8').split(',');
const tokens = Number(opt('--tokens', '128'));
const maxDraft = Number(opt('--draft', '8'));
const alphas = opt('--alphas', '0,0.5,0.8,0.95,1').split(',').map(Number);
const reps = Number(opt('--reps', '3'));
const threadsOpt = opt('--threads', '');
const withPeer = !argv.includes('--no-peer');

const { initBackend } = await import('../dist/backend/registry.js');
const { initModel } = await import('../dist/model/init.js');
const { generate } = await import('../dist/generate/engine.js');
const { PromptLookup } = await import('../dist/generate/speculative.js');
const { Rng } = await import('../dist/util/rng.js');
const { fuseModel, quantizeModel } = await import('../dist/model/quantize.js');
const { noGrad, tidy } = await import('../dist/tensor/tensor.js');
const { writeGgufForPeer } = await import('./peers/llamacpp.mjs');

const backend = await initBackend('auto', threadsOpt ? { threads: Number(threadsOpt) } : {});
const threads = /** @type {{ threads?: number }} */ (backend).threads ?? 1;
printMachine('speculative', threads, json);
const sgemm = sgemmPeak(threads);

/** @param {{ L: number, C: number, F: number, V: number }} s @param {number} pos */
const flopsPerToken = (s, pos) => 2 * (s.L * (4 * s.C * s.C + 3 * s.C * s.F) + s.V * s.C) + 4 * s.L * s.C * (pos + 1);

/** @param {Record<string, unknown>} row @param {string} text */
function report(row, text) {
  if (json) console.log(JSON.stringify({ bench: 'speculative', ...row }));
  else console.log(text);
}

/**
 * A drafter that knows the plain run's tokens `truth` (after `P` prompt ids) and gets each right with probability
 * α (its own seeded coin per position, so every run drafts the same); the draft ends at its first wrong token.
 * @param {number[]} truth @param {number} P @param {number} alpha @param {number} V
 */
function oracle(truth, P, alpha, V) {
  const right = truth.map((_, i) => new Rng(1000 + i).random() < alpha);
  return {
    session: () => ({
      /** @param {readonly number[]} c @param {number} n */
      draft(c, n) {
        const out = [];
        for (let j = c.length - P; j < truth.length && out.length < n; j++) {
          if (!right[j]) {
            out.push((truth[j] + 1) % V);
            break;
          }
          out.push(truth[j]);
        }
        return out;
      },
      dispose() {},
    }),
  };
}

/**
 * Plain and speculative greedy decodes of `prompt`, alternating `reps` times: each side's best tok/s (decode span:
 * after the first token), the draft counts, and whether the tokens agree.
 * @param {any} model @param {number[]} prompt @param {any} drafter
 */
async function abRun(model, prompt, drafter) {
  const o = { temperature: 0, maxTokens: tokens, seed: 1 };
  /** @param {any} c */
  const rate = (c) => (c.ids.length - 1) / ((c.timings.decode_ms + c.timings.prefill_ms - c.timings.ttft_ms) / 1000);
  let plain = 0,
    spec = 0,
    same = true,
    draft = { rounds: 0, drafted: 0, accepted: 0 };
  for (let r = 0; r < reps; r++) {
    const a = (await generate(model, [prompt], o)).choices[0];
    const b = (await generate(model, [prompt], { ...o, speculative: { drafter, maxDraft } })).choices[0];
    plain = Math.max(plain, rate(a));
    spec = Math.max(spec, rate(b));
    same &&= a.ids.join() === b.ids.join();
    draft = b.draft ?? draft;
  }
  return { plain, spec, same, draft };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-spec-bench-'));
try {
  for (const name of cases) {
    const s = STORIES[name];
    if (!s) throw new Error(`--cases: unknown case ${name} (known: ${Object.keys(STORIES).join(', ')})`);
    for (const kind of weights) {
      const rng = new Rng(1);
      const model = initModel(storiesConfig(s), rng, { backend });
      const gguf = path.join(tmp, `${name}-${kind}.gguf`);
      if (withPeer) await writeGgufForPeer(model, gguf, kind === 'q8' ? 'q8_0' : 'f32');
      if (kind === 'q8') await quantizeModel(model, 'q8', { dropFloat: true });
      else await fuseModel(model, { dropFloat: true });
      const label = `${name} ${kind}`;
      const prompt = Array.from({ length: 64 }, () => 3 + rng.int(s.V - 3));
      const P = prompt.length;

      // the price of a check: (1, T) forwards at position P
      const cache = model.newCache(1, P + 64);
      const pre = tidy(() => noGrad(() => model.forward(Int32Array.from(prompt), 1, P, { cache, lastOnly: true })));
      await pre.data();
      pre.dispose();
      /** @type {Record<number, number>} */
      const ms = {};
      for (const T of [1, 2, 5, 9]) {
        let best = Infinity;
        for (let r = 0; r < 6; r++) {
          const ids = Int32Array.from({ length: T }, (_, i) => 7 + i);
          const t0 = performance.now();
          const l = tidy(() => noGrad(() => model.forward(ids, 1, T, { cache })));
          await l.data();
          l.dispose();
          best = Math.min(best, performance.now() - t0);
          cache.truncate(P);
        }
        ms[T] = best;
      }
      cache.reset();
      const rel = Object.fromEntries(Object.entries(ms).map(([T, v]) => [T, +(v / ms[1]).toFixed(2)]));
      report(
        {
          case: label,
          mode: 'forward',
          threads,
          ms: Object.fromEntries(Object.entries(ms).map(([T, v]) => [T, +v.toFixed(2)])),
          cost_vs_t1: rel,
        },
        `${label}: a check of T positions costs ${Object.entries(rel)
          .map(([T, r]) => `T=${T} ×${r}`)
          .join(', ')} of one decode step (${ms[1].toFixed(1)} ms)`,
      );

      // the oracle curve
      const truth = (await generate(model, [prompt], { temperature: 0, maxTokens: tokens })).choices[0].ids;
      for (const alpha of alphas) {
        const r = await abRun(model, prompt, oracle(truth, P, alpha, s.V));
        const gflop = (flopsPerToken(s, P + tokens / 2) * r.spec) / 1e9;
        const row = {
          case: label,
          mode: 'oracle',
          alpha,
          threads,
          plain_tok_s: +r.plain.toFixed(2),
          tok_s: +r.spec.toFixed(2),
          speedup: +(r.spec / r.plain).toFixed(3),
          accepted: r.draft.accepted,
          drafted: r.draft.drafted,
          rounds: r.draft.rounds,
          same_ids: r.same,
          gflop_s: +gflop.toFixed(2),
          pct_peak: sgemm ? +((100 * gflop) / sgemm.gflop_s).toFixed(2) : null,
        };
        report(
          row,
          `${label}: oracle α=${alpha}: ${row.tok_s} tok/s vs plain ${row.plain_tok_s} → ×${row.speedup}` +
            ` (${r.draft.accepted}/${r.draft.drafted} drafted tokens taken in ${r.draft.rounds} checks; same tokens: ${r.same}; ${row.gflop_s} GFLOP/s${sgemm ? `, ${row.pct_peak}% of peak` : ''})`,
        );
      }

      // prompt lookup on a repeating continuation, against llama.cpp's
      const loop = (await generate(model, [prompt], { temperature: 0, maxTokens: 64 })).choices[0].ids;
      const lp = [...prompt, ...loop];
      const r = await abRun(model, lp, new PromptLookup());
      /** @type {any} */
      let peer = null;
      if (withPeer) {
        const out = spawnSync(
          process.execPath,
          [
            path.join(import.meta.dirname, 'peers', 'llamacpp-speculative.mjs'),
            gguf,
            String(threads),
            String(tokens),
            lp.join(','),
            String(maxDraft),
            String(reps),
          ],
          { encoding: 'utf8', timeout: 900_000 },
        );
        const line = (out.stdout ?? '')
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .pop();
        peer = line ? JSON.parse(line) : { error: (out.stderr || `exit ${out.status}`).slice(-300) };
      }
      const row = {
        case: label,
        mode: 'lookup',
        threads,
        distinct_tokens: new Set(loop).size,
        plain_tok_s: +r.plain.toFixed(2),
        tok_s: +r.spec.toFixed(2),
        speedup: +(r.spec / r.plain).toFixed(3),
        accepted: r.draft.accepted,
        drafted: r.draft.drafted,
        same_ids: r.same,
        peer: peer && !peer.error ? 'llama.cpp InputLookupTokenPredictor' : null,
        peer_plain_tok_s: peer?.plain_tok_s ?? null,
        peer_tok_s: peer?.lookup_tok_s ?? null,
        peer_speedup: peer?.speedup ?? null,
        peer_validated: peer?.validated ?? null,
        peer_refuted: peer?.refuted ?? null,
        peer_error: peer?.error ?? null,
        ratio: peer?.lookup_tok_s ? +(r.spec / peer.lookup_tok_s).toFixed(3) : null,
      };
      report(
        row,
        `${label}: prompt lookup on a ${row.distinct_tokens}-token loop: ${row.tok_s} tok/s vs plain ${row.plain_tok_s} → ×${row.speedup}` +
          ` (${r.draft.accepted}/${r.draft.drafted} taken; same tokens: ${r.same})` +
          (peer
            ? peer.error
              ? `\n    llama.cpp: error ${peer.error}`
              : `\n    llama.cpp (same GGUF, InputLookupTokenPredictor): ${peer.lookup_tok_s} tok/s vs plain ${peer.plain_tok_s} → ×${peer.speedup}` +
                ` (${peer.validated} validated, ${peer.refuted} refuted) · llm.ts / llama.cpp: ×${row.ratio}`
            : ''),
      );
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
// worker threads of a backend must not keep the script alive
process.exit(0);

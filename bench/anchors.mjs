// The C figures of ../shared/design/ANCHORS.md (C is not run by the benches), each with the processor it was measured
// on and its conditions (threads, top-p, flags), and how a bench may use one: divided by only when it was measured on
// this processor model under the bench's conditions; otherwise printed as "measured on <processor>" with no ratio. A
// ratio against a figure from another processor says nothing about this one (ANCHORS.md, 2026-12-03).
//   anchorFor(work, processorKey, query)  the anchor measured on that processor under those conditions, or null
//   compareToAnchor(work, processorKey, query, mine)  { anchor, comparable, ratio, text } for a bench's row
// Processor keys are "vendor/family/model" from /proc/cpuinfo (bench/machine.mjs `processor()`).

/** The processors ANCHORS.md has figures for, by key, with the name a bench prints. */
export const PROCESSORS = {
  /** 2026-12-03: /proc/cpuinfo of this project's machine says AuthenticAMD, cpu family 26, model 2, "AMD EPYC". */
  'AuthenticAMD/26/2': 'AMD EPYC (Zen 5, AVX-512, 2 vCPU)',
  // 2026-11-28: ANCHORS.md names it only "Sapphire Rapids (2 cores, AVX-512)". Assumed identity: GenuineIntel family 6
  // model 143 (0x8F), the model number of Sapphire Rapids Xeons; a Sapphire Rapids reporting another model misses.
  // (llm.c measured 2026-12-05 on GenuineIntel/6/167 agrees with its figures within 5 %: probably the same kind of
  // machine, but its identity was not read, so its figures stay keyed here.)
  'GenuineIntel/6/143': 'Sapphire Rapids (2 cores, AVX-512)',
  /** 2026-12-05: /proc/cpuinfo says GenuineIntel, cpu family 6, model 167, "Intel(R) Xeon(R) Processor" (under KVM). */
  'GenuineIntel/6/167': 'Intel Xeon (family 6 model 167, AVX-512, VNNI, AMX, 2 vCPU)',
};
const EPYC = 'AuthenticAMD/26/2';
const SPR = 'GenuineIntel/6/143';
const XEON = 'GenuineIntel/6/167';

/**
 * One C figure. work: what was measured ("train-tiny", "decode-stories15M", "sgemm-peak"); peer: who ran it; value:
 * the figure (the midpoint where ANCHORS.md gives a range, kept in `range`); conditions: what a bench's query must
 * match (threads, top_p, weights, ...); about: the rest of how it was run, printed, never matched.
 * @typedef {{ work: string, peer: string, processor: string, date: string, value: number, range?: [number, number],
 *   unit: string, conditions: Record<string, string | number>, about: string }} Anchor
 * @typedef {Record<string, string | number>} Query conditions to match; `peer` matches Anchor.peer, the rest conditions
 */

const LLMC = 'llm.c (C, -Ofast -march=native, OpenMP)';
/** @type {Anchor[]} */
const ANCHORS = [];

/** @param {number} lo @param {number} hi @returns {{ value: number, range: [number, number] }} */
const mid = (lo, hi) => ({ value: (lo + hi) / 2, range: [lo, hi] });

// Training step, tokens/s (forward + backward + AdamW, the shapes of ANCHORS.md).
/** @type {[string, number, number, { value: number, range?: [number, number] }][]} */
const TRAIN = [
  // work, B, T, EPYC 2 threads (measured side by side with llm.ts, interleaved)
  ['train-tiny', 8, 128, mid(5847, 6340)],
  ['train-small', 4, 256, mid(551, 563)],
  ['train-gpt2', 4, 64, mid(63.8, 66.4)],
];
for (const [work, B, T, fig] of TRAIN)
  ANCHORS.push({
    work,
    peer: 'llm.c',
    processor: EPYC,
    date: '2026-12-03',
    ...fig,
    unit: 'tok/s',
    conditions: { threads: 2, B, T },
    about: LLMC,
  });
/** @type {[string, number, number, number, number][]} */
const TRAIN_SPR = [
  // work, B, T, 2 threads, 1 thread
  ['train-tiny', 8, 128, 4593, 3098],
  ['train-small', 4, 256, 397, 226],
  ['train-gpt2', 4, 64, 44, 21],
];
for (const [work, B, T, two, one] of TRAIN_SPR)
  for (const [threads, value] of [
    [2, two],
    [1, one],
  ])
    ANCHORS.push({
      work,
      peer: 'llm.c',
      processor: SPR,
      date: '2026-11-28',
      value,
      unit: 'tok/s',
      conditions: { threads, B, T },
      about: LLMC,
    });

/** @type {[string, number, number, [number, number], [number, number]][]} */
const TRAIN_XEON = [
  // work, B, T, 2 threads, 1 thread: the range of the per-run medians over 3 runs, interleaved with llm.ts (2026-12-05)
  ['train-tiny', 8, 128, [4525, 4893], [3082, 3331]],
  ['train-small', 4, 256, [395, 410], [242, 255]],
  ['train-gpt2', 4, 64, [44.2, 44.8], [22.1, 23.4]],
];
for (const [work, B, T, two, one] of TRAIN_XEON)
  for (const [threads, range] of /** @type {[number, [number, number]][]} */ ([
    [2, two],
    [1, one],
  ]))
    ANCHORS.push({
      work,
      peer: 'llm.c',
      processor: XEON,
      date: '2026-12-05',
      ...mid(...range),
      unit: 'tok/s',
      conditions: { threads, B, T },
      about: `${LLMC}, random-init checkpoint, steps 2+ of "took X ms"`,
    });

// Decode, batch 1, float32 weights, tokens/s: llama2.c's run.c (OpenMP) from BOS, 256 steps, temperature 1.
/** @type {[string, number, { value: number, range?: [number, number] }, string][]} */
const RUNC_EPYC = [
  ['decode-stories15M', 1, mid(636, 671), 'run.c -p 1.0: no top-p, the same sampler work as ours'],
  ['decode-stories110M', 1, mid(81, 88), 'run.c -p 1.0: no top-p, the same sampler work as ours'],
  ['decode-stories15M', 0.9, mid(152, 176), "run.c's default top-p 0.9: it sorts ~30k candidates per token"],
  ['decode-stories110M', 0.9, mid(49, 62), "run.c's default top-p 0.9: it sorts ~30k candidates per token"],
];
for (const [work, topP, fig, about] of RUNC_EPYC)
  ANCHORS.push({
    work,
    peer: 'run.c',
    processor: EPYC,
    date: '2026-12-03',
    ...fig,
    unit: 'tok/s',
    conditions: { threads: 2, top_p: topP, weights: 'f32', model: 'random' },
    about: `llama2.c ${about}, random weights, OpenMP`,
  });
/** @type {[string, [number, number], [number, number]][]} */
const RUNC_XEON = [
  // work, 2 threads, 1 thread: run.c -t 1.0 -p 1.0 -n 256, its "achieved tok/s", 9 runs in 3 rounds (2026-12-05)
  ['decode-stories15M', [741, 797], [362, 405]],
  ['decode-stories110M', [50.7, 62.5], [27.6, 29.9]],
];
for (const [work, two, one] of RUNC_XEON)
  for (const [threads, range] of /** @type {[number, [number, number]][]} */ ([
    [2, two],
    [1, one],
  ]))
    ANCHORS.push({
      work,
      peer: 'run.c',
      processor: XEON,
      date: '2026-12-05',
      ...mid(...range),
      unit: 'tok/s',
      conditions: { threads, top_p: 1, weights: 'f32', model: 'random' },
      about: 'llama2.c run.c -p 1.0: no top-p, the same sampler work as ours, random weights, OpenMP',
    });
/** @type {[string, number, number][]} */
const RUNC_SPR = [
  // work, 2 threads, 1 thread
  ['decode-stories15M', 214, 154],
  ['decode-stories110M', 41.7, 23.6],
];
for (const [work, two, one] of RUNC_SPR)
  for (const [threads, value] of [
    [2, two],
    [1, one],
  ])
    ANCHORS.push({
      work,
      peer: 'run.c',
      processor: SPR,
      date: '2026-11-28',
      value,
      unit: 'tok/s',
      conditions: { threads, top_p: 0.9, weights: 'f32', model: 'trained' },
      about: "llama2.c run.c's default run (top-p 0.9), trained stories weights, OpenMP",
    });

// Decode through llama.cpp (node-llama-cpp 3.21.1, GGUF), greedy, batch 1.
/** @type {[string, string, number, number, string, string][]} */
const LLAMACPP = [
  // work, weights, threads, tok/s, processor, date
  ['decode-stories15M', 'Q8_0', 2, 800, EPYC, '2026-12-03'],
  ['decode-stories110M', 'Q8_0', 2, 209, EPYC, '2026-12-03'],
  ['decode-stories15M', 'F32', 2, 373, EPYC, '2026-12-03'],
  ['decode-stories110M', 'F32', 2, 87, EPYC, '2026-12-03'],
  ['decode-stories15M', 'Q8_0', 1, 554, EPYC, '2026-12-03'],
  ['decode-stories110M', 'Q8_0', 1, 178, EPYC, '2026-12-03'],
  ['decode-stories15M', 'F32', 1, 245, EPYC, '2026-12-03'],
  ['decode-stories110M', 'F32', 1, 59, EPYC, '2026-12-03'],
  ['decode-stories15M', 'F32', 2, 70, SPR, '2026-11-28'],
  ['decode-stories110M', 'F32', 2, 32.8, SPR, '2026-11-28'],
  ['decode-stories15M', 'F32', 1, 162, SPR, '2026-11-28'],
  ['decode-stories110M', 'F32', 1, 27.5, SPR, '2026-11-28'],
];
for (const [work, weights, threads, value, processor, date] of LLAMACPP)
  ANCHORS.push({
    work,
    peer: 'llama.cpp',
    processor,
    date,
    value,
    unit: 'tok/s',
    conditions: { threads, weights },
    about:
      processor === EPYC
        ? 'node-llama-cpp 3.21.1, UV_THREADPOOL_SIZE=1, greedy'
        : 'node-llama-cpp 3.21.1 (without UV_THREADPOOL_SIZE=1: 2–4× slow), greedy',
  });

// float32 sgemm peak, OpenBLAS SkylakeX kernel: the "% of peak" columns' denominator, on its processor only.
ANCHORS.push(
  {
    work: 'sgemm-peak',
    peer: 'OpenBLAS',
    processor: SPR,
    date: '2026-11-28',
    value: 169,
    unit: 'GFLOP/s',
    conditions: { threads: 1 },
    about: 'OpenBLAS sgemm, SkylakeX kernel',
  },
  {
    work: 'sgemm-peak',
    peer: 'OpenBLAS',
    processor: SPR,
    date: '2026-11-28',
    value: 330,
    range: [323, 330],
    unit: 'GFLOP/s',
    conditions: { threads: 2 },
    about: 'OpenBLAS sgemm, SkylakeX kernel (the top of the measured range)',
  },
);

/** Every anchor (read-only use). */
export const ALL_ANCHORS = /** @type {readonly Anchor[]} */ (ANCHORS);

/** The name a bench prints for a processor key: ANCHORS.md's name, else the key itself. @param {string} key */
export function processorName(key) {
  return /** @type {Record<string, string>} */ (PROCESSORS)[key] ?? key;
}

/** Whether anchor a is work `work` and matches every condition of `query`. @param {Anchor} a @param {string} work @param {Query} query */
function matches(a, work, query) {
  if (a.work !== work) return false;
  for (const [k, v] of Object.entries(query)) if ((k === 'peer' ? a.peer : a.conditions[k]) !== v) return false;
  return true;
}

/**
 * The anchor for `work` measured on processor `processorKey` under the conditions of `query`, or null.
 * @param {string} work @param {string} processorKey @param {Query} query @returns {Anchor | null}
 */
export function anchorFor(work, processorKey, query) {
  return ANCHORS.find((a) => a.processor === processorKey && matches(a, work, query)) ?? null;
}

/** Every anchor for `work` under `query`, on any processor, newest first. @param {string} work @param {Query} query */
export function anchorsFor(work, query) {
  return ANCHORS.filter((a) => matches(a, work, query)).sort((a, b) => b.date.localeCompare(a.date));
}

/** 4,593 / 6,094 / 41.7 / 65.1. @param {number} x */
export function fmtFigure(x) {
  return x.toLocaleString('en-US', { maximumFractionDigits: x < 100 ? 1 : 0 });
}

/** "llm.c 6,094 tok/s (5,847–6,340)". @param {Anchor} a */
export function fmtAnchorValue(a) {
  const range = a.range ? ` (${fmtFigure(a.range[0])}–${fmtFigure(a.range[1])})` : '';
  return `${a.peer} ${fmtFigure(a.value)} ${a.unit}${range}`;
}

/**
 * A bench's figure `mine` against the C figure for (work, query): the ratio when an anchor was measured on this
 * processor (`processorKey`) under the same conditions; else the newest one measured on another processor under those
 * conditions, printed as "measured on <processor>" with ratio null; else none (anchor null). `text` is what a bench
 * prints: "llm.c 6,094 tok/s (5,847–6,340) → ×1.93", or "llm.c 4,593 tok/s measured on Sapphire Rapids (2 cores,
 * AVX-512) (no ratio: another processor)", or "no llm.c figure for threads 1, B 8, T 128".
 * @param {string} work @param {string} processorKey @param {Query} query @param {number | null} mine
 * @returns {{ anchor: Anchor | null, comparable: boolean, ratio: number | null, processor: string | null, text: string }}
 */
export function compareToAnchor(work, processorKey, query, mine) {
  const same = anchorFor(work, processorKey, query);
  if (same) {
    const ratio = mine == null ? null : mine / same.value;
    return {
      anchor: same,
      comparable: true,
      ratio,
      processor: processorName(same.processor),
      text: `${fmtAnchorValue(same)}${ratio == null ? ' (this processor)' : ` → ×${ratio.toFixed(2)}`}`,
    };
  }
  const other = anchorsFor(work, query)[0];
  if (other)
    return {
      anchor: other,
      comparable: false,
      ratio: null,
      processor: processorName(other.processor),
      text: `${fmtAnchorValue(other)} measured on ${processorName(other.processor)} (no ratio: another processor)`,
    };
  const { peer, ...conds } = query;
  const said = Object.entries(conds)
    .map(([k, v]) => `${k.replace('_', '-')} ${v}`)
    .join(', ');
  return {
    anchor: null,
    comparable: false,
    ratio: null,
    processor: null,
    text: `no ${peer ?? 'C'} figure${said ? ` for ${said}` : ''} in ANCHORS.md`,
  };
}

/**
 * The tiled (flash) attention kernels of src/backend/webgpu/attention_flash.ts against ref in float64, at the
 * conformance tolerance (./conformance_cases.ts): shapes with several query and key tiles and ragged last tiles for the
 * head sizes that change the tile sizes (D = 5, 12, 16, 24, 48, 64, 128), causal with qOffset = S − T, an explicit
 * qOffset, a negative one (rows that see no key: o = 0, lse = −∞), rowStart (left padding, alone and with qOffset),
 * not causal, GQA and MQA, separate q, k, v and the fused qkv, forward and backward. Scale 1 in a few cases: scores of
 * several units, so a tile's running max moves and the rescaling of the accumulator matters. Each case also runs on
 * the row kernels (flashAttention.minT = Infinity), which must pass the same check (the case itself is sound),
 * and each backward case also with dK and dV in two passes (flashAttention.splitKV).
 *
 * Skipped where Node finds no WebGPU adapter (as ./webgpu_node.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Attrs, HostArray } from '../src/backend/backend.js';
import { flashAttention } from '../src/backend/webgpu/attention.js';
import { BR, kvTile, qTile } from '../src/backend/webgpu/attention_flash.js';
import { Rng } from '../src/util/rng.js';
import { type Case, f, generate, ref64, runOn, worst } from './conformance_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpu = webgpuMaker('webgpu tiled attention');
const be = await gpu.make();

// [B, T, S, Hq, Hkv, D, causal, qOffset?, rowStart?, scale?]
type Shape = [number, number, number, number, number, number, boolean, number?, number[]?, number?];
const separate: Shape[] = [
  [2, 100, 100, 4, 2, 64, true], // GPT-2 head size: 2 query tiles (64 + 36), keys 3·32 + 4, dK/dV query tiles of 31
  [1, 70, 90, 6, 2, 16, true], // KV cache: qOffset = S − T = 20, group 3
  [1, 40, 75, 3, 3, 12, true, 5], // explicit qOffset: keys past qOffset + T never seen
  [2, 50, 50, 2, 1, 128, false], // D = 128 (key tiles of 16, query tiles of 15), MQA, not causal
  [1, 33, 33, 2, 2, 5, true, -3, undefined, 1], // rows 0..2 see no key; odd D; scale 1
  [2, 130, 130, 2, 1, 48, true], // 3 query tiles, stories15M head size
  [1, 16, 200, 2, 2, 24, false, undefined, undefined, 1], // few queries, many key tiles, not causal
];
const padded: Shape[] = [
  [3, 80, 80, 4, 2, 32, true, undefined, [0, 33, 79]], // rowStart inside, at a tile edge − 1, at the last key
  [2, 20, 20, 2, 1, 8, false, undefined, [5, 0]],
  [2, 24, 60, 2, 2, 16, true, 30, [10, 40]], // rowStart past the first rows' last key: rows that see nothing
];
// fused qkv: [B, T, Hq, Hkv, D, causal, scale?]
const fused: [number, number, number, number, number, boolean, number?][] = [
  [2, 100, 4, 2, 64, true],
  [1, 45, 3, 1, 48, false],
  [1, 130, 2, 2, 24, true, 1],
];

const label = ([B, T, S, Hq, Hkv, D, causal, qOffset, rowStart, scale]: Shape) =>
  `B${B} T${T} S${S} Hq${Hq} Hkv${Hkv} D${D}${causal ? '' : ' full'}${qOffset !== undefined ? ` qOffset ${qOffset}` : ''}${rowStart ? ` rowStart [${rowStart}]` : ''}${scale ? ` scale ${scale}` : ''}`;

function attrsOf([, , , , , D, causal, qOffset, rowStart, scale]: Shape): Attrs {
  return {
    scale: scale ?? 1 / Math.sqrt(D),
    causal,
    ...(qOffset !== undefined ? { qOffset } : {}),
    ...(rowStart ? { rowStart } : {}),
  };
}

/** The forward case and, without rowStart (ref's backward has none), the backward case fed ref's o and lse. */
function casesOf(s: Shape): Case[] {
  const [B, T, S, Hq, Hkv, D, , , rowStart] = s;
  const attrs = attrsOf(s);
  const q = f([B, T, Hq, D]),
    kv = f([B, S, Hkv, D]);
  const fwd: Case = {
    name: `attention ${label(s)}`,
    kernel: 'attention',
    inputs: [q, kv, kv],
    outputs: [f([B, T, Hq, D]), f([B, Hq, T])],
    attrs,
  };
  if (rowStart) return [fwd];
  const bwd: Case = {
    name: `attention_backward ${label(s)}`,
    kernel: 'attention_backward',
    inputs: [f([B, T, Hq, D]), q, kv, kv, f([B, T, Hq, D]), f([B, Hq, T])],
    outputs: [f([B, T, Hq, D]), f([B, S, Hkv, D]), f([B, S, Hkv, D])],
    attrs,
    prep: async (ins) => {
      const [o, lse] = await runOn(ref64, fwd, [ins[1]!, ins[2]!, ins[3]!], [null, null], true);
      return [ins[0]!, ins[1]!, ins[2]!, ins[3]!, Float32Array.from(o!), Float32Array.from(lse!)];
    },
  };
  return [fwd, bwd];
}

function fusedCases([B, T, Hq, Hkv, D, causal, scale]: (typeof fused)[number]): Case[] {
  const attrs: Attrs = { heads: Hq, kvHeads: Hkv, scale: scale ?? 1 / Math.sqrt(D), causal };
  const name = `[B${B} T${T} Hq${Hq} Hkv${Hkv} D${D}${causal ? '' : ' full'}${scale ? ` scale ${scale}` : ''}]`;
  const qkv = f([B, T, (Hq + 2 * Hkv) * D]);
  const fwd: Case = {
    name: `attention_qkv ${name}`,
    kernel: 'attention_qkv',
    inputs: [qkv],
    outputs: [f([B, T, Hq, D]), f([B, Hq, T])],
    attrs,
  };
  const bwd: Case = {
    name: `attention_qkv_backward ${name}`,
    kernel: 'attention_qkv_backward',
    inputs: [f([B, T, Hq, D]), qkv, f([B, T, Hq, D]), f([B, Hq, T])],
    outputs: [f([B, T, (Hq + 2 * Hkv) * D])],
    attrs,
    prep: async (ins) => {
      const [o, lse] = await runOn(ref64, fwd, [ins[1]!], [null, null], true);
      return [ins[0]!, ins[1]!, Float32Array.from(o!), Float32Array.from(lse!)];
    },
  };
  return [fwd, bwd];
}

const all = [...separate.flatMap(casesOf), ...padded.flatMap(casesOf), ...fused.flatMap(fusedCases)];

/** Outputs of `c` on the webgpu backend (tiled kernels, tiled with dK/dV split, or the row kernels) and on ref in float64. */
async function run(
  c: Case,
  i: number,
  mode: 'tiled' | 'split' | 'rows',
): Promise<{ got: HostArray[]; want: HostArray[] }> {
  const rng = new Rng(3000 + i);
  let ins = c.inputs.map((s) => generate(s, rng));
  if (c.prep) ins = await c.prep(ins);
  const inits = c.outputs.map(() => null);
  const want = await runOn(ref64, c, ins, inits, true);
  const before = { ...flashAttention };
  if (mode === 'rows') flashAttention.minT = Number.POSITIVE_INFINITY;
  flashAttention.splitKV = mode === 'split';
  try {
    return { got: await runOn(be!, c, ins, inits, false), want };
  } finally {
    Object.assign(flashAttention, before);
  }
}

describe('webgpu tiled attention', () => {
  it('tile sizes fit 16 KiB of workgroup memory and every shape here is on the tiled path', () => {
    for (const D of [5, 8, 12, 16, 24, 32, 48, 64, 80, 96, 128, 256]) {
      expect(2 * kvTile(D) * D * 4).toBeLessThanOrEqual(16384);
      expect((2 * qTile(D) * D + 2 * qTile(D)) * 4).toBeLessThanOrEqual(16384);
    }
    expect(kvTile(64)).toBe(32);
    expect(kvTile(128)).toBe(16);
    expect(BR).toBe(64);
    for (const s of [...separate, ...padded]) expect(s[1]).toBeGreaterThanOrEqual(flashAttention.minT);
    for (const s of fused) expect(s[1]).toBeGreaterThanOrEqual(flashAttention.minT);
  });

  it.for(all.map((c, i) => [c.name, i] as const))(
    '%s: ref within tolerance (tiled and row kernels)',
    async ([, i], ctx) => {
      if (!be) return ctx.skip(gpu.why);
      const c = all[i]!;
      const modes = c.kernel.endsWith('_backward')
        ? (['tiled', 'split', 'rows'] as const)
        : (['tiled', 'rows'] as const);
      for (const mode of modes) {
        const { got, want } = await run(c, i, mode);
        for (let o = 0; o < want.length; o++) {
          const w = worst(got[o]!, want[o]!, false);
          expect(w.ratio, `${mode}, output ${o} at ${w.at}: ${got[o]![w.at]} vs ${want[o]![w.at]}`).toBeLessThanOrEqual(
            1,
          );
        }
      }
    },
  );
});

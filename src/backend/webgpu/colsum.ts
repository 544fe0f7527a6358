/**
 * Column sums on WebGPU: out_k[c] = Σ_n term_k(n, c) over N rows of C columns — the weight gradients of the norms
 * (dw, db) and the bias gradients (sum_to onto the last axes). One thread per column walking all N rows is what a
 * deterministic sum asks for, but at training shapes (C = 768 columns, N = B·T = 16,384 rows) that is 768 threads
 * each waiting on 16,384 loads in turn: a GPU left nearly idle for milliseconds, many times a step. So, past
 * 2·CHUNK rows, two passes, still in a fixed order (the same floats every run):
 *
 *   pass 1: a thread per (chunk, column): part_k[chunk, c] = Σ_{n in chunk} term_k(n, c)   (chunks of CHUNK rows)
 *   pass 2: a thread per column:          out_k[c] = Σ_chunk part_k[chunk, c]              (chunks in order)
 *
 * `terms` are WGSL expressions in n (row), c (column) and o = n·C + c over the input bindings 1 … nIn that `inputs`
 * declares; the outputs are bound after them. `key` names the terms and inputs (the shaders are built once per key:
 * ./wgsl_memo.ts). The floats differ from a sequential sum's by rounding only.
 */
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, USAGE, WG, grid, storage } from './core.js';
import type { GpuBufferLike } from './types.js';
import { wgsl } from './wgsl_memo.js';

/** Rows a first-pass thread sums. */
export const CHUNK = 128;

/** Column sums of `terms` over N rows into `outs` (one f32 buffer of C per term). */
export function columnSums(
  ctx: GpuContext,
  key: string,
  inputs: string,
  nIn: number,
  terms: readonly string[],
  ins: readonly GpuBufferLike[],
  outs: readonly GpuBufferLike[],
  N: number,
  C: number,
): void {
  const sums = (from: string, to: string) => `${terms.map((_, k) => `var s${k} = 0.0;`).join('\n  ')}
  for (var n = ${from}; n < ${to}; n++) {
    let o = n * C + c;
    ${terms.map((t, k) => `s${k} += ${t};`).join('\n    ')}
  }`;
  const outDecls = terms.map((_, k) => storage(nIn + 1 + k, `OUT${k}`, 'f32', true)).join('');
  if (N <= 2 * CHUNK) {
    const code = wgsl(
      `${key}:one`,
      () => `${inputs}${outDecls}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let c = grp * ${WG}u + lid;
  let C = pu(1u);
  if (c >= C) { return; }
  ${sums('0u', 'pu(0u)')}
  ${terms.map((_, k) => `OUT${k}[c] = s${k};`).join('\n  ')}
}`,
    );
    ctx.dispatch(code, new Params().u32(N, C), [...ins, ...outs], grid(Math.ceil(C / WG)));
    return;
  }
  const chunks = Math.ceil(N / CHUNK);
  const part = ctx.createBuffer(terms.length * chunks * C * 4, USAGE.STORAGE);
  const first = wgsl(
    `${key}:first`,
    () => `${inputs}${storage(nIn + 1, 'PART', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let e = grp * ${WG}u + lid;
  let N = pu(0u);
  let C = pu(1u);
  let chunks = pu(2u);
  if (e >= chunks * C) { return; }
  let c = e % C;
  let ch = e / C;
  ${sums(`ch * ${CHUNK}u`, `min(N, (ch + 1u) * ${CHUNK}u)`)}
  ${terms.map((_, k) => `PART[(${k}u * chunks + ch) * C + c] = s${k};`).join('\n  ')}
}`,
  );
  const p = new Params().u32(N, C, chunks);
  ctx.dispatch(first, p, [...ins, part], grid(Math.ceil((chunks * C) / WG)));
  const second = wgsl(
    `${key}:second`,
    () => `${storage(1, 'PART', 'f32', false)}${terms.map((_, k) => storage(2 + k, `OUT${k}`, 'f32', true)).join('')}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let c = grp * ${WG}u + lid;
  let C = pu(1u);
  let chunks = pu(2u);
  if (c >= C) { return; }
  ${terms
    .map(
      (_, k) => `var s${k} = 0.0;
  for (var ch = 0u; ch < chunks; ch++) { s${k} += PART[(${k}u * chunks + ch) * C + c]; }
  OUT${k}[c] = s${k};`,
    )
    .join('\n  ')}
}`,
  );
  ctx.dispatch(second, p, [part, ...outs], grid(Math.ceil(C / WG)));
  ctx.release(part);
}

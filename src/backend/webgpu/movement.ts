/**
 * Data movement on WebGPU (../kernels.ts): slice, pad_slice, concat, write_at, and the embedding lookup and its
 * gradient. The first four are one strided copy (`boxCopy`): for each index of a box, dst[dstBase + Σ idx·dstStride]
 * = src[srcBase + Σ idx·srcStride], any dtype. embedding_backward gives each thread one column of one class of rows
 * (v mod G) and adds the rows of dy in order (ref's order: no atomics, deterministic).
 */
import type { Attrs } from '../backend.js';
import { size } from '../../util/shape.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage, wgslType } from './core.js';
import { MAX_RANK, runElementwise } from './elementwise.js';
import type { KView } from './kview.js';
import { wgsl } from './wgsl_memo.js';

export const MOVEMENT_KERNELS = [
  'slice',
  'pad_slice',
  'concat',
  'write_at',
  'embedding',
  'embedding_q8',
  'embedding_q4k',
  'embedding_bf16',
  'embedding_backward',
] as const;

/**
 * The WGSL that gives element c of row `id` of a quantised table in `W` (i32 words, `R` words a row) as `v`: the
 * matmul_q8 / matmul_q4k / matmul_bf16 weight layouts (../kernels.ts), q8's scales in `S`.
 */
const QUANT_ROW: Record<'embedding_q8' | 'embedding_q4k' | 'embedding_bf16', string> = {
  // signed byte c of the row, times its block's scale
  embedding_q8: `let q = (W[id * R + c / 4u] << (24u - 8u * (c % 4u))) >> 24u;
  let v = f32(q) * S[(id * R * 4u + c) / 32u];`,
  // super-block b = c / 256: f32 d, f32 dmin, u8 sc[8], u8 mn[8], u8 qs[128] (38 words)
  embedding_q4k: `let o = id * R + (c / 256u) * 38u;
  let k = c % 256u;
  let s = k / 32u;
  let qi = 32u * (s / 2u) + k % 32u;
  let qb = (u32(W[o + 6u + qi / 4u]) >> (8u * (qi % 4u))) & 255u;
  let q = select(qb & 15u, qb >> 4u, s % 2u == 1u);
  let sc = (u32(W[o + 2u + s / 4u]) >> (8u * (s % 4u))) & 255u;
  let mn = (u32(W[o + 4u + s / 4u]) >> (8u * (s % 4u))) & 255u;
  let ds = bitcast<f32>(W[o]) * f32(sc);
  let ms = bitcast<f32>(W[o + 1u]) * f32(mn);
  let v = ds * f32(q) - ms;`,
  // u16 c of the row as the upper half of a float32
  embedding_bf16: `let e = u32(W[id * R + c / 2u]);
  let v = bitcast<f32>(select(e << 16u, e & 0xffff0000u, c % 2u == 1u));`,
};

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let k = shape.length - 1, acc = 1; k >= 0; k--) {
    s[k] = acc;
    acc *= shape[k]!;
  }
  return s;
}

const pad = (xs: readonly number[], fill: number) => [...new Array<number>(MAX_RANK - xs.length).fill(fill), ...xs];

/** dst[dstBase + Σ idx·dstSt] = src[srcBase + Σ idx·srcSt] over the box `shape`. */
function boxCopy(
  ctx: GpuContext,
  src: KView,
  dst: KView,
  shape: readonly number[],
  srcSt: readonly number[],
  srcBase: number,
  dstSt: readonly number[],
  dstBase: number,
): void {
  const n = size(shape);
  if (n === 0) return;
  if (shape.length > MAX_RANK) throw new Error(`webgpu: rank ${shape.length} > ${MAX_RANK}`);
  const t = wgslType(dst.b.dtype);
  const p = new Params()
    .u32(n, srcBase, dstBase)
    .u32(...pad(shape, 1))
    .u32(...pad(srcSt, 0))
    .u32(...pad(dstSt, 0));
  const code = wgsl(
    `box:${t}`,
    () => `${storage(1, 'X', t, false)}${storage(2, 'Y', t, true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let i = grp * ${WG}u + lid;
  if (i >= pu(0u)) { return; }
  var rem = i;
  var so = pu(1u);
  var d = pu(2u);
  for (var k = ${MAX_RANK - 1}; k >= 0; k--) {
    let e = pu(3u + u32(k));
    let idx = rem % e;
    rem = rem / e;
    so += idx * pu(${3 + MAX_RANK}u + u32(k));
    d += idx * pu(${3 + 2 * MAX_RANK}u + u32(k));
  }
  Y[d] = X[so];
}`,
  );
  ctx.dispatch(code, p, [src.b.gpu, dst.b.gpu], grid(Math.ceil(n / WG)));
}

const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, k) => s + x * b[k]!, 0);

export function runMovement(
  ctx: GpuContext,
  name: string,
  ins: readonly KView[],
  outs: readonly KView[],
  a: Attrs,
): void {
  const out = outs[0]!;
  switch (name) {
    case 'slice': {
      const x = ins[0]!,
        st = stridesOf(x.shape),
        begin = a['begin'] as readonly number[];
      boxCopy(ctx, x, out, out.shape, st, dot(begin, st), stridesOf(out.shape), 0);
      return;
    }
    case 'pad_slice': {
      const x = ins[0]!,
        st = stridesOf(out.shape),
        begin = a['begin'] as readonly number[];
      runElementwise(ctx, 'fill', [], [out], { value: 0 });
      boxCopy(ctx, x, out, x.shape, stridesOf(x.shape), 0, st, dot(begin, st));
      return;
    }
    case 'concat': {
      const axis = a['axis'] as number,
        st = stridesOf(out.shape);
      let pos = 0;
      for (const x of ins) {
        boxCopy(ctx, x, out, x.shape, stridesOf(x.shape), 0, st, pos * st[axis]!);
        pos += x.shape[axis]!;
      }
      return;
    }
    case 'write_at': {
      const x = ins[0]!,
        n = size(x.shape),
        blocks = (a['blocks'] as number | undefined) ?? 1,
        per = n / blocks,
        stride = (a['blockStride'] as number | undefined) ?? per;
      boxCopy(ctx, x, out, [blocks, per], [per, 1], 0, [stride, 1], a['offset'] as number);
      return;
    }
    case 'embedding': {
      // an id outside [0, V) gives a row of NaN (ref throws; the model checks ids before the kernel)
      const w = ins[0]!,
        idv = ins[1]!,
        V = w.shape[0]!,
        C = w.shape[1]!,
        n = size(idv.shape) * C;
      if (n === 0) return;
      const code = wgsl(
        'embedding',
        () => `${storage(1, 'W', 'f32', false)}${storage(2, 'IDS', 'i32', false)}${storage(3, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let i = grp * ${WG}u + lid;
  if (i >= pu(0u)) { return; }
  let C = pu(1u);
  let id = IDS[i / C];
  if (id < 0 || u32(id) >= pu(2u)) { Y[i] = pf(3u); return; }
  Y[i] = W[u32(id) * C + i % C];
}`,
      );
      const p = new Params().u32(n, C, V).f32(Number.NaN);
      ctx.dispatch(code, p, [w.b.gpu, idv.b.gpu, out.b.gpu], grid(Math.ceil(n / WG)));
      return;
    }
    case 'embedding_q8':
    case 'embedding_q4k':
    case 'embedding_bf16': {
      // a thread per output element; an id outside [0, V) gives NaN, as embedding's
      const w = ins[0]!,
        idv = ins[ins.length - 1]!,
        V = w.shape[0]!,
        R = w.shape[1]!,
        C = out.shape[out.shape.length - 1]!,
        n = size(idv.shape) * C;
      if (n === 0) return;
      const q8 = name === 'embedding_q8';
      const code = wgsl(
        name,
        () => `${storage(1, 'W', 'i32', false)}${q8 ? storage(2, 'S', 'f32', false) : ''}${storage(q8 ? 3 : 2, 'IDS', 'i32', false)}${storage(q8 ? 4 : 3, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let i = grp * ${WG}u + lid;
  if (i >= pu(0u)) { return; }
  let C = pu(1u);
  let R = pu(3u);
  let sid = IDS[i / C];
  if (sid < 0 || u32(sid) >= pu(2u)) { Y[i] = pf(4u); return; }
  let id = u32(sid);
  let c = i % C;
  ${QUANT_ROW[name]}
  Y[i] = v;
}`,
      );
      const p = new Params().u32(n, C, V, R).f32(Number.NaN);
      const bufs = q8 ? [w.b.gpu, ins[1]!.b.gpu, idv.b.gpu, out.b.gpu] : [w.b.gpu, idv.b.gpu, out.b.gpu];
      ctx.dispatch(code, p, bufs, grid(Math.ceil(n / WG)));
      return;
    }
    case 'embedding_backward': {
      const dy = ins[0]!,
        idv = ins[1]!,
        V = out.shape[0]!,
        C = out.shape[1]!,
        N = size(idv.shape);
      if (V * C === 0) return;
      const acc = a['accumulate'] === true;
      // a thread per (column c, id class g): the rows v ≡ g (mod G) of column c, each token's dy added in token order
      // (ref's order), so no two threads touch one element; G classes make ~64k threads (a thread per column alone
      // would leave a GPU idle, each waiting on N loads in turn). ids outside [0, V) are skipped (ref would index
      // past dw).
      const G = Math.max(1, Math.min(V, Math.ceil(65536 / C)));
      const code = wgsl(
        `embedding_backward:${acc}`,
        () => `${storage(1, 'DY', 'f32', false)}${storage(2, 'IDS', 'i32', false)}${storage(3, 'DW', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let e = grp * ${WG}u + lid;
  let C = pu(1u);
  let V = pu(2u);
  let G = pu(3u);
  if (e >= C * G) { return; }
  let c = e % C;
  let g = e / C;
  ${acc ? '' : 'for (var v = g; v < V; v += G) { DW[v * C + c] = 0.0; }'}
  for (var n = 0u; n < pu(0u); n++) {
    let id = IDS[n];
    if (id >= 0 && u32(id) < V && u32(id) % G == g) { DW[u32(id) * C + c] += DY[n * C + c]; }
  }
}`,
      );
      ctx.dispatch(code, new Params().u32(N, C, V, G), [dy.b.gpu, idv.b.gpu, out.b.gpu], grid(Math.ceil((C * G) / WG)));
      return;
    }
  }
  throw new Error(`webgpu movement: no kernel ${name}`);
}

/**
 * The parameter block every attention shader reads (./attention.ts, ./attention_flash.ts): the dimensions of a call,
 * the q/k/v layout (row stride and base column, so that the fused projection qkv [B, T, (Hq + 2·Hkv)·D] is read in
 * place), causal/qOffset/scale, the sliding window, and the per-batch rowStart (left padding) from word 17 on.
 *   words: 0 B, 1 T, 2 S, 3 Hq, 4 Hkv, 5 group = Hq/Hkv, 6 scale (f32), 7 causal, 8 qOffset (i32), 9 B·Hq·T (query rows),
 *          10 qStride, 11 kvStride, 12 qBase, 13 kBase, 14 vBase, 15 −∞ (f32), 16 window (i32, 0 = none),
 *          17 + b rowStart[b]
 */
import type { Attrs } from '../backend.js';
import { Params } from './core.js';
import type { KView } from './kview.js';

/** WGSL: the shared parameter names (see `params`) and the q/k/v element offsets of a row. */
export const HEAD = `
  let B = pu(0u);
  let T = pu(1u);
  let S = pu(2u);
  let Hq = pu(3u);
  let Hkv = pu(4u);
  let group = pu(5u);
  let scale = pf(6u);
  let causal = pu(7u) != 0u;
  let qOffset = pi(8u);
  let qStride = pu(10u);
  let kvStride = pu(11u);
  let qBase = pu(12u);
  let kBase = pu(13u);
  let vBase = pu(14u);
  let window = pi(16u);`;

export interface Dims {
  B: number;
  T: number;
  S: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** Row strides and base columns of q and of k/v in their buffers. */
  qStride: number;
  kvStride: number;
  qBase: number;
  kBase: number;
  vBase: number;
}

export function params(d: Dims, a: Attrs, defaultOffset: number, rowStart?: readonly number[]): Params {
  const causal = a['causal'] !== false,
    qOffset = (a['qOffset'] as number | undefined) ?? defaultOffset;
  return new Params()
    .u32(d.B, d.T, d.S, d.Hq, d.Hkv, d.Hq / d.Hkv)
    .f32(a['scale'] as number)
    .u32(causal ? 1 : 0)
    .i32(qOffset)
    .u32(d.B * d.Hq * d.T, d.qStride, d.kvStride, d.qBase, d.kBase, d.vBase)
    .f32(Number.NEGATIVE_INFINITY)
    .i32((a['window'] as number | undefined) ?? 0)
    .u32(...(rowStart ?? new Array<number>(d.B).fill(0)));
}

export function dimsOf(name: string, ins: readonly KView[], a: Attrs): Dims {
  if (name.startsWith('attention_qkv')) {
    const qkv = ins[name === 'attention_qkv' ? 0 : 1]!;
    const [B, T, W] = qkv.shape as [number, number, number];
    const Hq = a['heads'] as number,
      Hkv = (a['kvHeads'] as number | undefined) ?? Hq,
      D = W / (Hq + 2 * Hkv);
    return { B, T, S: T, Hq, Hkv, D, qStride: W, kvStride: W, qBase: 0, kBase: Hq * D, vBase: (Hq + Hkv) * D };
  }
  const q = ins[name === 'attention' ? 0 : 1]!,
    k = ins[name === 'attention' ? 1 : 2]!;
  const [B, T, Hq, D] = q.shape as [number, number, number, number];
  const S = k.shape[1]!,
    Hkv = k.shape[2]!;
  return { B, T, S, Hq, Hkv, D, qStride: Hq * D, kvStride: Hkv * D, qBase: 0, kBase: 0, vBase: 0 };
}

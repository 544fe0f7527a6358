/**
 * Phi-3's checkpoints fuse what the model holds apart: `self_attn.qkv_proj.weight` [(H + 2·Hkv)·D, C] is q, k and v
 * stacked by rows, `mlp.gate_up_proj.weight` [2·F, C] the gate then the up projection (transformers' Phi3Attention
 * slices q, k, v in that order; Phi3MLP's `chunk(2)` takes the gate first). `splitFused` turns a checkpoint's tensors
 * into the model's names on the way in; `fuseForCheckpoint` stacks them back on the way out (config `fusedProjections`).
 */
import { FileFormatError } from '../../util/errors.js';
import type { StoredTensor } from '../../formats/safetensors_bytes.js';
import type { TensorToWrite } from '../../formats/safetensors.js';
import type { ModelConfig } from '../config.js';

/** Per layer: each fused tensor's name and its parts' names, in row order, with their row counts. */
function groups(c: ModelConfig): { fused: string; parts: [string, number][] }[] {
  const D = c.headDim,
    F = c.intermediateSize;
  const out: { fused: string; parts: [string, number][] }[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push({
      fused: `${p}self_attn.qkv_proj.weight`,
      parts: [
        [`${p}self_attn.q_proj.weight`, c.numHeads * D],
        [`${p}self_attn.k_proj.weight`, c.numKvHeads * D],
        [`${p}self_attn.v_proj.weight`, c.numKvHeads * D],
      ],
    });
    out.push({
      fused: `${p}mlp.gate_up_proj.weight`,
      parts: [
        [`${p}mlp.gate_proj.weight`, F],
        [`${p}mlp.up_proj.weight`, F],
      ],
    });
  }
  return out;
}

/** A checkpoint's tensors with the fused projections split into the model's parameters. */
export function splitFused(
  stored: ReadonlyMap<string, StoredTensor>,
  c: ModelConfig,
  where: string,
): Map<string, StoredTensor> {
  const out = new Map(stored);
  for (const g of groups(c)) {
    const t = stored.get(g.fused);
    if (!t)
      throw new FileFormatError(
        'E_MISSING_TENSOR',
        where,
        `tensor '${g.fused}' is missing (a phi3 model needs it)`,
        g.fused,
      );
    const rows = g.parts.reduce((n, [, r]) => n + r, 0);
    if (t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== c.hiddenSize)
      throw new FileFormatError(
        'E_TENSOR_SHAPE',
        where,
        `shape [${t.shape}] but config.json implies [${rows},${c.hiddenSize}]`,
        g.fused,
      );
    out.delete(g.fused);
    let r0 = 0;
    for (const [name, r] of g.parts) {
      const data = t.data.slice(r0 * c.hiddenSize, (r0 + r) * c.hiddenSize);
      out.set(name, { dtype: t.dtype, shape: [r, c.hiddenSize], data, raw: new Uint8Array(data.buffer) });
      r0 += r;
    }
  }
  return out;
}

/** The model's tensors (about to be written) with q/k/v and gate/up stacked as the checkpoint holds them. */
export function fuseForCheckpoint(tensors: Map<string, TensorToWrite>, c: ModelConfig): void {
  for (const g of groups(c)) {
    const parts = g.parts.map(([name]) => tensors.get(name)!);
    const rows = g.parts.reduce((n, [, r]) => n + r, 0);
    const data = new Float32Array(rows * c.hiddenSize);
    let at = 0;
    for (const p of parts) {
      data.set(p.data as Float32Array, at);
      at += (p.data as Float32Array).length;
    }
    for (const [name] of g.parts) tensors.delete(name);
    tensors.set(g.fused, { dtype: parts[0]!.dtype ?? 'F32', shape: [rows, c.hiddenSize], data });
  }
}

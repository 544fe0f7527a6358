/**
 * A model's LoRA adapters (../lora.ts) as a llama.cpp LoRA adapter file — what `llama-cli -m base.gguf --lora
 * adapter.gguf` (and llama-server, node-llama-cpp's `lora`) load on top of the base model's GGUF, as
 * convert_lora_to_gguf.py writes it:
 *
 *   general.type = 'adapter', general.architecture = the base's, adapter.type = 'lora', adapter.lora.alpha = α
 *   <base tensor>.lora_a   A (r, in)     e.g. blk.0.attn_q.weight.lora_a
 *   <base tensor>.lora_b   B (out, r)
 *
 * llama.cpp scales the update by α / r (r from the tensors): rsLoRA's α / √r is written as the α that gives it,
 * α·√r. A and B need no transposition, GPT-2's Conv1D included (they are nn.Linear's in PEFT too); only where the base
 * tensor's rows are permuted for llama.cpp's RoPE (Llama's q and k) are B's rows permuted the same way, so that
 * B·A is the permuted ΔW. Browser-safe (no file access).
 */
import { serializeGguf, type GgufTensorToWrite, type GgufValue } from '../../formats/gguf.js';
import { encodeGgml } from '../../formats/gguf_types.js';
import { ConfigError } from '../../util/errors.js';
import { loraScale } from '../lora.js';
import type { CausalLM } from '../model.js';
import { ggufArchitecture, relayout, tensorMappings } from './tensors.js';

/** The chunks of a llama.cpp LoRA adapter file of `model`'s adapters; A and B in F32, or F16 with `type: 'f16'`. */
export async function ggufFromLora(
  model: CausalLM,
  opts: { type?: 'f32' | 'f16'; metadata?: ReadonlyMap<string, GgufValue> } = {},
): Promise<Uint8Array[]> {
  const o = model.loraOptions;
  if (!model.lora.size || !o)
    throw new ConfigError('adapter', 'the model has no LoRA adapters to write (an adapter folder, loaded attached)');
  const byHf = new Map(tensorMappings(model.config).map((m) => [m.hf, m]));
  const type = opts.type === 'f16' ? 'F16' : 'F32';
  const tensors: GgufTensorToWrite[] = [];
  for (const [weight, l] of model.lora) {
    const m = byHf.get(weight)!;
    const a = (await l.A.data()) as Float32Array,
      b = (await l.B.data()) as Float32Array;
    // B's rows are ΔW's rows: permuted as the weight's rows are (rope); a transposed weight's are not ΔW's rows
    const bOut = m.layout.kind === 'rope' ? relayout(b, l.B.shape, m.layout, true) : b;
    tensors.push({ name: `${m.gguf}.lora_a`, shape: l.A.shape, type, raw: encodeGgml(type, a) });
    tensors.push({ name: `${m.gguf}.lora_b`, shape: l.B.shape, type, raw: encodeGgml(type, bOut) });
  }
  const meta = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: ggufArchitecture(model.config) }],
    ['general.type', { type: 'string', value: 'adapter' }],
    ['adapter.type', { type: 'string', value: 'lora' }],
    // llama.cpp multiplies by alpha / r: the alpha that makes it our scale s
    ['adapter.lora.alpha', { type: 'f32', value: loraScale(o) * o.r }],
  ]);
  for (const [k, v] of opts.metadata ?? []) meta.set(k, v);
  return serializeGguf(meta, tensors);
}

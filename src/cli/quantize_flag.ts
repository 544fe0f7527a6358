/**
 * `--quantize <kind>` of the commands that run a model (generate, chat, serve, embed, eval, perplexity): how its
 * linear weights are stored for inference (src/model/quantize.ts). Without the flag a model's matrices keep the
 * precision its file holds them in (a Q4_K_M GGUF runs as q4k, a Q8_0 one as q8, a bfloat16 safetensors checkpoint
 * as bf16; quantizationOfTypes), and anything else runs in float32; `f32` asks for float32 regardless.
 */
import { Option } from 'commander';
import { QUANT_KINDS, type QuantKind } from '../model/quantize.js';

export type QuantizeFlag = QuantKind | 'f32';

export function quantizeOption(purpose: string): Option {
  return new Option(
    '--quantize <kind>',
    `${purpose}: q8 (int8 blocks, 3.6× smaller than f32), q4k (llama.cpp's Q4_K, 6.7× smaller), bf16, or f32 ` +
      "(default: the file's own precision — a .gguf's quantisation, a bfloat16 checkpoint's bf16 — else f32)",
  ).choices([...QUANT_KINDS, 'f32']);
}

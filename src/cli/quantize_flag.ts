/**
 * `--quantize <kind>` of the commands that run a model (generate, chat, serve, embed, eval, perplexity): how its
 * linear weights are stored for inference (src/model/quantize.ts). Without the flag a GGUF file's quantised matrices
 * stay quantised as the file holds them (a Q4_K_M file runs as q4k, a Q8_0 one as q8; fileQuantization), and
 * anything else runs in float32; `f32` asks for float32 regardless.
 */
import { Option } from 'commander';
import { QUANT_KINDS, type QuantKind } from '../model/quantize.js';

export type QuantizeFlag = QuantKind | 'f32';

export function quantizeOption(purpose: string): Option {
  return new Option(
    '--quantize <kind>',
    `${purpose}: q8 (int8 blocks, 3.6× smaller than f32), q4k (llama.cpp's Q4_K, 6.7× smaller), bf16, or f32 ` +
      "(default: a .gguf file's own quantisation, else f32)",
  ).choices([...QUANT_KINDS, 'f32']);
}

/**
 * GGUF files on disk (Node): read one into a model, or just its config; write a model as one, atomically.
 * `loadModel('model.gguf')` (../hf/folder.ts) comes here, so every command that takes a model folder takes a GGUF
 * file too (its tokenizer: `loadTokenizer('model.gguf')`, src/tokenizer/io.ts).
 */
import { readGgufFile, readGgufHeader } from '../../formats/gguf_file.js';
import { writeFileAtomic } from '../../util/fs.js';
import type { ModelConfig } from '../config.js';
import type { CausalLM } from '../model.js';
import { hparamsFromGguf } from './hparams.js';
import { ggufFromModel, modelFromGguf, type FromGgufOptions, type ToGgufOptions } from './weights.js';
import { ggufFromLora } from './lora.js';
import type { GgufValue } from '../../formats/gguf.js';

/** Whether a path names a GGUF file (by its extension). */
export function isGgufPath(p: string): boolean {
  return p.toLowerCase().endsWith('.gguf');
}

/** A CausalLM from a GGUF file. */
export async function loadGgufModel(file: string, opts: FromGgufOptions = {}): Promise<CausalLM> {
  return modelFromGguf(await readGgufFile(file), opts);
}

/** The ModelConfig of a GGUF file (its header only is read). */
export async function loadGgufConfig(file: string): Promise<ModelConfig> {
  const g = await readGgufHeader(file);
  const embd = g.tensors.find((t) => t.name === 'token_embd.weight');
  return hparamsFromGguf(g.metadata, file, new Set(g.tensors.map((t) => t.name)), embd?.shape[0] ?? 0);
}

/** Write `model` as a GGUF file, atomically (temp file + rename). */
export async function saveGguf(model: CausalLM, file: string, opts: ToGgufOptions): Promise<void> {
  await writeFileAtomic(file, await ggufFromModel(model, opts));
}

/** Write `model`'s LoRA adapters as a llama.cpp adapter file (`--lora`), atomically (./lora.ts). */
export async function saveGgufLora(
  model: CausalLM,
  file: string,
  opts: { type?: 'f32' | 'f16'; metadata?: ReadonlyMap<string, GgufValue> } = {},
): Promise<void> {
  await writeFileAtomic(file, await ggufFromLora(model, opts));
}

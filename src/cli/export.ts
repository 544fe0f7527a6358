/**
 * `llmts export`: a model folder (or a GGUF file) as a GGUF file that llama.cpp, ollama and LM Studio run.
 *
 *   llmts export runs/<name>/checkpoint --format gguf --type q8_0 -o model.gguf
 *
 * The file holds llama.cpp's tensor names and layouts for its `llama`, `qwen2`, `qwen3`, `gemma3` or `gpt2`
 * architecture, the hyper-parameters, the tokenizer (byte-level BPE: tokens, merges, token types, special ids; or a
 * SentencePiece-style vocabulary with scores) and the chat template (src/model/gguf/,
 * src/tokenizer/gguf.ts). A model without a tokenizer, or with a character-level one, is refused: llama.cpp could
 * not run it. The file is written atomically (temp file + rename). A LoRA adapter folder (a `--usePeft` run) is exported
 * with its adapters merged; with `--adapter`, its adapters alone as llama.cpp's adapter file (src/model/gguf/lora.ts):
 *
 *   llmts export runs/<lora-run>/checkpoint --adapter --type f32 -o adapter.gguf   # llama-cli -m base.gguf --lora adapter.gguf
 *
 * `--format hf` writes a Hugging Face folder instead: an adapter folder merged (PEFT's merge_and_unload), a .gguf
 * converted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { initBackend } from '../backend/registry.js';
import { loadModel, saveModel } from '../model/hf/folder.js';
import { isGgufPath, saveGguf, saveGgufLora } from '../model/gguf/file.js';
import { isAdapterFolder, readAdapterConfig } from '../model/hf/adapter.js';
import { GGUF_EXPORT_TYPES, type GgufExportType } from '../model/gguf/weights.js';
import { ggufArchitecture } from '../model/gguf/tensors.js';
import { loadTokenizer, saveTokenizer } from '../tokenizer/io.js';
import { tokenizerToGguf } from '../tokenizer/gguf.js';
import { ConfigError } from '../util/errors.js';
import { readJsonFileSync } from '../util/fs.js';
import { hasTokenizer } from './generate.js';
import { parseCommand } from './parse.js';

interface Flags {
  format: 'gguf' | 'hf';
  type: GgufExportType;
  output?: string;
  tokenizer?: string;
  name?: string;
  adapter?: boolean;
}

/** `--adapter`: an adapter folder's LoRA adapters alone, as llama.cpp's adapter file (`llama-cli --lora`). */
async function runAdapter(model: string, f: Flags): Promise<number> {
  const t0 = performance.now();
  if (!isAdapterFolder(model))
    throw new ConfigError(
      '--adapter',
      `${model} is not a LoRA adapter folder (no adapter_config.json): --adapter writes a run's adapters, trained with --usePeft`,
    );
  if (f.type !== 'f32' && f.type !== 'f16')
    throw new ConfigError('--type', `an adapter file is written in f32 or f16, not ${f.type}`);
  await initBackend('ref');
  const m = await loadModel(model, { adapters: 'attach' });
  const name = f.name ?? path.basename(path.resolve(model));
  const out = f.output ?? `${name}-lora-${f.type}.gguf`;
  await saveGgufLora(m, out, {
    type: f.type,
    metadata: new Map([['general.name', { type: 'string', value: name }]]),
  });
  const o = m.loraOptions!;
  console.log(
    `wrote ${out}: a llama.cpp LoRA adapter (${m.lora.size} layers, r ${o.r}, α ${o.alpha}${o.rslora ? ', rsLoRA' : ''}), ${f.type}, ` +
      `${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MiB (${((performance.now() - t0) / 1000).toFixed(1)} s); ` +
      `its base: export ${readAdapterConfig(model).base} and load both (llama-cli -m base.gguf --lora ${out})`,
  );
  return 0;
}

/**
 * `--format hf`: the model as a Hugging Face folder — a LoRA adapter folder merged into its base (PEFT's
 * merge_and_unload + save_pretrained), or a .gguf file converted — with its tokenizer, chat template and generation
 * config.
 */
async function runHf(model: string, f: Flags): Promise<number> {
  const t0 = performance.now();
  if (!f.output) throw new ConfigError('--output', 'the folder to write the Hugging Face model into (-o <folder>)');
  if (fs.existsSync(f.output))
    throw new ConfigError('--output', `${f.output} exists: give a new folder (nothing is overwritten)`);
  if (f.adapter) throw new ConfigError('--adapter', "writes llama.cpp's adapter file: use it with --format gguf");
  await initBackend('ref');
  const m = await loadModel(model); // an adapter folder: merged into its base
  const gen = path.join(model, 'generation_config.json');
  const generationConfig =
    !isGgufPath(model) && fs.existsSync(gen)
      ? (readJsonFileSync(gen, 'a Hugging Face generation_config.json') as Record<string, unknown>)
      : undefined;
  await saveModel(m, f.output, generationConfig ? { generationConfig } : {});
  const tokSource = f.tokenizer ?? model;
  let tokLine = 'no tokenizer';
  if (f.tokenizer || hasTokenizer(model)) {
    const tok = await loadTokenizer(tokSource);
    const jinja = path.join(isGgufPath(tokSource) ? path.dirname(tokSource) : tokSource, 'chat_template.jinja');
    if (tok.config.chatTemplate === undefined && fs.existsSync(jinja))
      tok.config.chatTemplate = fs.readFileSync(jinja, 'utf8');
    await saveTokenizer(tok, f.output);
    tokLine = `tokenizer of ${tok.vocabSize} ids${tok.config.chatTemplate ? ' + chat template' : ''}`;
  }
  console.log(
    `wrote ${f.output}: a Hugging Face ${m.config.family} folder, ${m.params.size} tensors${isAdapterFolder(model) ? ' (LoRA adapters merged)' : ''}, ` +
      `${tokLine} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return 0;
}

async function run(model: string, f: Flags): Promise<number> {
  if (f.format === 'hf') return runHf(model, f);
  if (f.adapter) return runAdapter(model, f);
  const t0 = performance.now();
  if (!fs.existsSync(model)) throw new ConfigError('model', `${model} does not exist (a model folder or a .gguf file)`);
  const gguf = isGgufPath(model);
  if (!gguf && !fs.existsSync(path.join(model, 'config.json')))
    throw new ConfigError('model', `${model} is not a model folder (no config.json) nor a .gguf file`);
  const tokSource = f.tokenizer ?? model;
  if (!f.tokenizer && !gguf && !hasTokenizer(model))
    throw new ConfigError(
      'tokenizer',
      `${model} has no tokenizer (tokenizer.json): a GGUF file must carry one for llama.cpp; add it to the folder or pass --tokenizer <folder|gpt2>`,
    );
  if (f.type === 'source' && !gguf) throw new ConfigError('--type', "'source' keeps the types of a .gguf input");
  await initBackend('ref'); // the weights are only read and re-encoded
  // the matrices stay the file's bytes until each is encoded (a 1B checkpoint is never float32 whole)
  const m = await loadModel(model, { vacantLinears: true });
  const tok = await loadTokenizer(tokSource);
  const jinja = path.join(gguf ? path.dirname(tokSource) : tokSource, 'chat_template.jinja');
  if (tok.config.chatTemplate === undefined && !gguf && fs.existsSync(jinja))
    tok.config.chatTemplate = fs.readFileSync(jinja, 'utf8');
  const c = m.config;
  const meta = tokenizerToGguf(tok, c.vocabSize, {
    bos: c.bosTokenId,
    eos: Array.isArray(c.eosTokenId) ? (c.eosTokenId[0] ?? null) : c.eosTokenId,
    pad: c.padTokenId,
  });
  const name = f.name ?? path.basename(path.resolve(model)).replace(/\.gguf$/i, '');
  meta.set('general.name', { type: 'string', value: name });
  const out = f.output ?? `${name}-${f.type}.gguf`;
  await saveGguf(m, out, { type: f.type, metadata: meta });
  const mb = fs.statSync(out).size / 2 ** 20;
  console.log(
    `wrote ${out}: ${ggufArchitecture(c)} architecture, ${m.params.size} tensors, ${f.type}, ` +
      `${mb.toFixed(1)} MiB, tokenizer of ${tok.vocabSize} ids${tok.config.chatTemplate ? ' + chat template' : ''} ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('llmts export')
    .description(
      'write a model as a GGUF file for llama.cpp, ollama and LM Studio (or as a Hugging Face folder: --format hf)',
    )
    .argument('<model>', 'a model folder (config.json, model.safetensors, tokenizer.json) or a .gguf file')
    .addOption(
      new Option(
        '--format <format>',
        'gguf (a file for llama.cpp), or hf: a Hugging Face folder (-o <folder>; a LoRA adapter folder merged into its base, a .gguf converted)',
      )
        .choices(['gguf', 'hf'])
        .default('gguf'),
    )
    .addOption(
      new Option(
        '--type <type>',
        "matrix type: f32, f16, q8_0, q4_k (llama.cpp's Q4_K; the output head q8_0; vectors stay f32); 'source' keeps a .gguf input's types",
      )
        .choices(GGUF_EXPORT_TYPES as string[])
        .default('f16'),
    )
    .option('-o, --output <file>', 'the GGUF file to write (default: <model name>-<type>.gguf here)')
    .option('--tokenizer <dir|name>', "the tokenizer to embed (default: the model's own)")
    .option('--name <name>', 'general.name (default: the model folder name)')
    .option(
      '--adapter',
      "a LoRA adapter folder (--usePeft runs): write only its adapters, as llama.cpp's adapter file for --lora (--type f32 or f16); without it the adapters are merged into a whole model",
    )
    .exitOverride()
    .action(async (model: string, flags: Flags) => {
      code = await run(model, flags);
    });
  return (await parseCommand(program, argv)) ?? code;
}

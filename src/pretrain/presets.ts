/**
 * Named presets of `llmts train`: partial settings applied over the defaults (settings.ts), from a few-minute CPU
 * model up to GPT-2 124M, as nanoGPT's `config/*.py`. Typed against the settings table, so a misspelt key or a
 * wrong type is a compile error.
 */
import type { TrainConfig } from './settings.js';

/** Named presets: partial configs applied over the defaults. */
export const PRESETS: Record<string, { help: string; config: Partial<TrainConfig> }> = {
  tiny: {
    help: 'a few minutes on 2 CPU cores: 4 layers × 128 wide, context 128, BPE 2048 on the embedded corpus (the `npm start` run)',
    config: {},
  },
  'shakespeare-char': {
    help: "nanoGPT's CPU recipe: char-level tinyshakespeare, 4 layers × 4 heads × 128, context 64, batch 12, 2,000 steps (val loss ≈ 1.90, as nanoGPT measured the same way)",
    config: {
      input: ['shakespeare'],
      tokenizer: 'char',
      valFraction: 0.1,
      nLayer: 4,
      nHead: 4,
      nEmbd: 128,
      blockSize: 64,
      batchSize: 12,
      gradAccum: 1,
      maxSteps: 2000,
      lr: 1e-3,
      minLr: 1e-4,
      warmupSteps: 100,
      decaySteps: 2000,
      beta1: 0.9,
      beta2: 0.99,
      weightDecay: 0.1,
      gradClip: 1.0,
      dropout: 0,
      bias: false,
      evalInterval: 250,
      evalBatches: 20,
      finalEvalBatches: 200,
      sampleInterval: 1000,
      checkpointInterval: 1000,
      samplePrompts: ['\n', 'ROMEO:'],
      sampleTokens: 200,
      name: 'shakespeare-char',
    },
  },
  small: {
    help: '12M parameters: 6 layers × 384 wide, 6 heads, context 256, BPE 4096 (an hour or more on a CPU)',
    config: {
      nLayer: 6,
      nHead: 6,
      nEmbd: 384,
      blockSize: 256,
      batchSize: 4,
      gradAccum: 4,
      vocabSize: 4096,
      lr: 6e-4,
      minLr: 6e-5,
      warmupSteps: 200,
      maxSteps: 5000,
      dropout: 0.1,
    },
  },
  'llama-tiny': {
    help: 'the tiny run with the Llama block: RMSNorm, SwiGLU, RoPE, 2 key/value heads',
    config: { family: 'llama', nKvHead: 2, tieEmbeddings: false },
  },
  gpt2: {
    help: 'GPT-2 124M: 12 layers × 768 wide, 12 heads, context 1024, the GPT-2 tokenizer (a GPU job: ~0.5M tokens per step)',
    config: {
      tokenizer: 'gpt2',
      nLayer: 12,
      nHead: 12,
      nEmbd: 768,
      blockSize: 1024,
      batchSize: 16,
      gradAccum: 32,
      maxSteps: 600000,
      lr: 6e-4,
      minLr: 6e-5,
      warmupSteps: 2000,
      decaySteps: 600000,
      beta1: 0.9,
      beta2: 0.95,
      weightDecay: 0.1,
      evalInterval: 1000,
      sampleInterval: 5000,
      checkpointInterval: 2000,
    },
  },
};

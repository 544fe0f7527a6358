/**
 * Fresh parameters for a config: GPT-2's initialisation (weights N(0, 0.02), residual output projections
 * N(0, 0.02/√(2L)), biases 0, norm gains 1), drawn from the Rng passed in, so a seed fixes the model.
 */
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/registry.js';
import type { Rng } from '../util/rng.js';
import { tensor } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ModelConfig } from './config.js';
import { CausalLM } from './model.js';
import { paramSpecs } from './params.js';

export interface InitOptions {
  /** Standard deviation of the weights (transformers' initializer_range). */
  std?: number;
  backend?: Backend;
}

export function initModel(config: ModelConfig, rng: Rng, opts: InitOptions = {}): CausalLM {
  const std = opts.std ?? 0.02;
  const backend = opts.backend ?? getBackend();
  const params = new Map<string, Tensor>();
  for (const s of paramSpecs(config)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (s.init === 'ones') data.fill(1);
    else if (s.init === 'normal') {
      const sd = s.residual ? std / Math.sqrt(2 * config.numLayers) : std;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * sd;
    }
    params.set(s.name, tensor(data, s.shape, { backend, requiresGrad: true, name: s.name }));
  }
  return new CausalLM(config, params);
}

/**
 * Scaled rotary embeddings: the inverse frequencies a RoPE variant rotates by (the rope kernels take them as the
 * `invFreq` attr; src/backend/rope_freqs.ts).
 *
 * - `llama3` (Llama 3.1, 3.2, 3.3: transformers' `_compute_llama3_parameters`): frequencies whose wavelength is
 *   shorter than original_max_position_embeddings / high_freq_factor are kept, those longer than
 *   original / low_freq_factor are divided by `factor`, and the ones between are blended smoothly. Computed in
 *   float32 step by step, as transformers computes it in torch.
 * - `linear` (position interpolation): every frequency divided by `factor`.
 * - `factors`: llama.cpp's `rope_freqs.weight` of a GGUF file, one divisor per frequency (what llama.cpp's converter
 *   writes for a llama3-scaled model).
 *
 * `ropeFactors` goes the other way for a GGUF export: the divisors llama.cpp's converter writes for a scaling.
 */
import { ropeInvFreq } from '../backend/rope_freqs.js';
import type { RopeFreqs } from '../tensor/ops_forward.js';
import type { ModelConfig } from './config.js';

/** A scaled RoPE. */
export type RopeScaling =
  | { readonly type: 'linear'; readonly factor: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      /** The context length the model was pretrained at (original_max_position_embeddings). */
      readonly originalMaxPositions: number;
    }
  | { readonly type: 'factors'; readonly factors: readonly number[] };

const f32 = Math.fround;

/** inv_freq[i] = 1 / θ^(2i/D) in float32, as transformers computes it (the unscaled RoPE: the kernels' own). */
export function defaultInvFreq(theta: number, D: number): Float32Array {
  return ropeInvFreq({ theta }, D);
}

/** The inverse frequencies [D/2] of a scaled RoPE (float32). */
export function scaledInvFreq(theta: number, D: number, s: RopeScaling): Float32Array {
  const inv = defaultInvFreq(theta, D);
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  if (s.type === 'factors') return inv.map((f, i) => f / s.factors[i]!);
  const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositions: L } = s;
  const lowWavelen = f32(L / lo),
    highWavelen = f32(L / hi);
  return inv.map((f) => {
    const wavelen = f32((2 * Math.PI) / f);
    if (wavelen < highWavelen) return f; // high frequency: kept
    const divided = f32(f / factor);
    if (wavelen > lowWavelen) return divided; // low frequency: interpolated by `factor`
    const smooth = f32(f32(f32(L / wavelen) - lo) / (hi - lo));
    return f32(f32(f32(f32(1 - smooth) * f) / factor) + f32(smooth * f));
  });
}

/**
 * The divisors of each frequency llama.cpp applies (its `rope_freqs.weight`), as its converter
 * (convert_hf_to_gguf.py) computes them for a scaling; null for an unscaled RoPE. Linear scaling has its own GGUF
 * keys (rope.scaling.type / factor) and no tensor, so null too.
 */
export function ropeFactors(c: ModelConfig): Float32Array | null {
  const s = c.ropeScaling;
  if (!s || s.type === 'linear') return null;
  if (s.type === 'factors') return Float32Array.from(s.factors);
  const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositions: L } = s;
  return defaultInvFreq(c.ropeTheta, c.headDim).map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < L / hi) return 1;
    if (wavelen > L / lo) return factor;
    const smooth = (L / wavelen - lo) / (hi - lo);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

/** What a model's rope calls pass: θ, and the scaled inverse frequencies when the config scales its RoPE. */
export function ropeFreqsOf(c: ModelConfig): RopeFreqs {
  if (!c.ropeScaling) return c.ropeTheta;
  return { theta: c.ropeTheta, invFreq: Array.from(scaledInvFreq(c.ropeTheta, c.headDim, c.ropeScaling)) };
}

/** Checks a scaling's fields (ConfigError-worthy message, or null when valid). */
export function ropeScalingProblem(s: RopeScaling, D: number): string | null {
  const pos = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
  if (s.type === 'linear') return pos(s.factor) ? null : `factor must be a positive number, got ${s.factor}`;
  if (s.type === 'factors') {
    if (s.factors.length !== D / 2) return `factors must hold headDim/2 = ${D / 2} numbers, got ${s.factors.length}`;
    return s.factors.every(pos) ? null : 'factors must be positive numbers';
  }
  if (!pos(s.factor)) return `factor must be a positive number, got ${s.factor}`;
  if (!pos(s.lowFreqFactor) || !pos(s.highFreqFactor) || !(s.highFreqFactor > s.lowFreqFactor))
    return `needs 0 < low_freq_factor < high_freq_factor, got ${s.lowFreqFactor} and ${s.highFreqFactor}`;
  if (!Number.isSafeInteger(s.originalMaxPositions) || s.originalMaxPositions < 1)
    return `original_max_position_embeddings must be a positive integer, got ${s.originalMaxPositions}`;
  return null;
}

/** The pretraining context Llama 3 models state (original_max_position_embeddings of every Llama 3.1–3.3 config). */
const LLAMA3_ORIGINAL_CONTEXT = 8192;

/**
 * The llama3 scaling that a GGUF's rope_freqs divisors describe, or null when they are no llama3 curve. The curve
 * fixes `factor` (the largest divisor) and the two ends of the blend in units of original_max_position_embeddings,
 * not the context itself: that is taken as Llama 3's 8192, and the factors recomputed from the result must match.
 * A model converted from a Llama 3.x checkpoint gets its config.json's values back (factor, low 1, high 4, 8192).
 */
export function llama3FromFactors(factors: readonly number[], theta: number, D: number): RopeScaling | null {
  const factor = Math.max(...factors);
  if (!(factor > 1) || factors.length !== D / 2) return null;
  const orig = defaultInvFreq(theta, D);
  // blended frequencies: s = (1/f − 1/factor) / (1 − 1/factor) is linear in 1/wavelength: s = a/λ − b
  const mid: [invWavelen: number, s: number][] = [];
  factors.forEach((f, i) => {
    if (f > 1 + 1e-6 && f < factor * (1 - 1e-6))
      mid.push([orig[i]! / (2 * Math.PI), (1 / f - 1 / factor) / (1 - 1 / factor)]);
  });
  if (mid.length < 2) return null;
  const [x0, s0] = mid[0]!,
    [x1, s1] = mid[mid.length - 1]!;
  const a = (s1 - s0) / (x1 - x0),
    b = a * x0 - s0;
  if (!(a > 0) || !(b > 0)) return null;
  const L = LLAMA3_ORIGINAL_CONTEXT;
  const round = (x: number) => Number(x.toPrecision(6));
  const lo = round((b * L) / a),
    hi = round((b * L) / a + L / a);
  const scaling: RopeScaling = {
    type: 'llama3',
    factor: round(factor),
    lowFreqFactor: lo,
    highFreqFactor: hi,
    originalMaxPositions: L,
  };
  if (ropeScalingProblem(scaling, D)) return null;
  const again = ropeFactors({ ropeTheta: theta, headDim: D, ropeScaling: scaling } as ModelConfig)!;
  return again.every((f, i) => Math.abs(f - factors[i]!) <= 1e-5 * factors[i]!) ? scaling : null;
}

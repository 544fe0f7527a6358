/**
 * Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: norm = √Σ‖g‖², and gradients are scaled by
 * min(1, maxNorm / (norm + 1e-6)). The scale is handed to AdamW (gradScale) so clipping costs no extra pass.
 */
import { sumSquares } from '../tensor/ops.js';
import { noGrad } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';

/** Global L2 norm of every parameter's gradient: one sum-of-squares kernel over all of them, one read. */
export async function gradNorm(params: Map<string, Tensor>): Promise<number> {
  const grads = [...params.values()].filter((p) => p.grad).map((p) => p.grad!);
  if (grads.length === 0) return 0;
  const t = noGrad(() => sumSquares(grads));
  try {
    return Math.sqrt(await t.item());
  } finally {
    t.dispose();
  }
}

/** The factor clip_grad_norm_ multiplies gradients by. */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

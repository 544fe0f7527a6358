/**
 * Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: norm = √Σ‖g‖², and gradients are scaled by
 * min(1, maxNorm / (norm + 1e-6)). The scale is handed to AdamW (gradScale) so clipping costs no extra pass.
 */
import { sumSquares } from '../tensor/ops.js';
import { noGrad } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';

/** Global L2 norm of every parameter's gradient. */
export async function gradNorm(params: Map<string, Tensor>): Promise<number> {
  const parts = noGrad(() => [...params.values()].filter((p) => p.grad).map((p) => sumSquares(p.grad!)));
  let s = 0;
  for (const t of parts) {
    s += await t.item();
    t.dispose();
  }
  return Math.sqrt(s);
}

/** The factor clip_grad_norm_ multiplies gradients by. */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

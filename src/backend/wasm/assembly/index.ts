/**
 * Entry point of the WebAssembly kernel module (AssemblyScript). Every export takes raw byte addresses (usize)
 * into the imported shared memory and sizes; splittable kernels end with (scratch, lo, hi). Built twice by
 * scripts/build-wasm.mjs: plain SIMD128 and relaxed SIMD (fused multiply-add).
 */
export { unary, fill32, cast, binary, swiglu_backward, dropout, adamw } from './elementwise';
export { sum_to, sum_f64, col_sum } from './reduce';
export { strided_copy, transpose2d, embedding, embedding_q8, embedding_q4k, embedding_bf16, embedding_backward } from './movement';
export { layernorm, layernorm_backward, layernorm_dw, rmsnorm, rmsnorm_backward, rmsnorm_dw, softmax, softmax_backward, cross_entropy,
  cross_entropy_backward, rope } from './norm';
export { attention, attention_backward, attention_scratch_bytes } from './attention';
export { matmul } from './matmul';
export { gemv_nt, matmul_q8, matmul_q4k, matmul_bf16, round_rows } from './gemv';
export { sample_row, sample_scratch_bytes } from './sample';

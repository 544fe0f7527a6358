/**
 * The kernel catalogue: every kernel a backend may implement, with its exact semantics. The `ref` backend
 * implements all of them in plain TypeScript and is the oracle; other backends are tested against it by the
 * conformance suite (test/conformance.test.ts), which runs the same cases on every registered backend. Each kernel's
 * signature (operands, dtypes, ranks, attributes with defaults and ranges, shape rules, which outputs it reads) is
 * declared once in ./signatures.ts and checked by ./validate.ts; a backend may implement any subset (docs/BACKENDS.md).
 *
 * Conventions
 * - Buffers are dense, row-major, contiguous. Shapes come with each View. "N" is the product of leading axes.
 * - Outputs are pre-allocated with their final shapes and are fully overwritten, unless a kernel says it reads its
 *   output (in-place / accumulate).
 * - Float arithmetic may be reordered (SIMD, threads) but results must stay within float32 rounding of `ref`.
 *
 * Catalogue (inputs → outputs; attrs):
 *
 * Elementwise and data movement
 * - fill:        () → (out); {value}                          out[i] = value
 * - copy:        (a) → (out)                                   out = a (same length; dtype may differ: a cast)
 * - add|sub|mul|div: (a, b) → (out)                            NumPy broadcasting of a and b to out's shape
 * - scale:       (a) → (out); {alpha, beta=0}                  out = alpha·a + beta
 * - exp|log|neg|sqrt|rsqrt|square: (a) → (out)                 elementwise
 * - gelu:        (x) → (y)                                     GELU, tanh form (GPT-2 'gelu_new'):
 *                                                              0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
 * - gelu_backward: (x, dy) → (dx)
 * - silu:        (x) → (y)                                     x·σ(x)
 * - silu_backward: (x, dy) → (dx)
 * - swiglu:      (gate, up) → (y)                              silu(gate)·up (Llama MLP)
 * - swiglu_backward: (gate, up, dy) → (dgate, dup)
 * - swiglu_fused: (gu [..., 2F]) → (y [..., F])                 y = silu(gu[..., :F])·gu[..., F:]: the output of one
 *                                                              matmul over the gate and up weights stacked by rows
 *                                                              (a fused gate/up linear), no split
 * - geglu_fused: (gu [..., 2F]) → (y [..., F])                 y = gelu(gu[..., :F])·gu[..., F:] (GELU's tanh form):
 *                                                              Gemma's MLP over a fused gate/up linear
 * - sum_to:      (a) → (out)                                   out has a's rank, each axis equal to a's or 1;
 *                                                              sums a over the axes where out is 1 (reduction
 *                                                              for `sum(axes)` and for broadcast gradients)
 * - transpose:   (a) → (out); {perm}                           out[i_perm[0],…] = a[i_0,…]: out.shape[k] = a.shape[perm[k]]
 * - slice:       (a) → (out); {begin}                          out = a[begin_k : begin_k + out.shape[k]] per axis
 * - pad_slice:   (a) → (out); {begin}                          out = 0, then out[begin : begin + a.shape] = a
 *                                                              (the gradient of slice)
 * - concat:      (a_0, …, a_n) → (out); {axis}                 concatenation along axis
 * - write_at:    (a) → (out) read-modify-write; {offset}       out[offset : offset + a.length] = a (flat element
 *                                                              offset; the rest of out is untouched: KV caches)
 *                {blocks = n > 1, blockStride}: a is n equal blocks of m = a.length / n elements; block j goes to
 *                out[offset + j·blockStride : … + m] (a batch of rows into a preallocated [B, maxLen, …] cache)
 *
 * Linear algebra
 * - matmul:      (a, b[, bias]) → (out); {transA=false, transB=false, accumulate=false, alpha=1}
 *                a: [..., M, K] (or [..., K, M] if transA), b: [..., K, N] (or [..., N, K] if transB),
 *                out: [..., M, N]. Leading axes are flattened to a batch count; a's and b's batch count must each
 *                equal out's or be 1 (a shared matrix, e.g. a weight). out = alpha·op(a)·op(b) (+ out if accumulate)
 *                (+ bias [N] on every row when given: a linear layer's bias, with no separate add pass).
 *                The three matmuls of a linear layer: forward y = x·Wᵀ (transB), input gradient dx = dy·W,
 *                weight gradient dW = dyᵀ·x (transA, both flattened to 2-D).
 *
 * Quantised linear layers (inference only: no gradient; weights quantised by src/model/quantize.ts)
 * - matmul_q8:   (x [..., M, K] f32, wq i32 [N, K/4], scales f32 [N, K/32]) → (out [..., M, N])
 *                int8 weights in blocks of 32 along K with one scale per block (llama.cpp's Q8_0 layout); K % 32 = 0.
 *                Four int8 per i32 element, little-endian: q[n, k] = signed byte (k mod 4) of wq[n, ⌊k/4⌋], i.e.
 *                the bytes of wq are the row-major int8 matrix [N, K]. Each row of x is rounded to integers in
 *                [−8191, 8191] (14 bits: the wasm kernel sums 256·q·xq in int32 lanes) with one scale per row, all
 *                in float32: dx[m] = max_k |x[m, k]| / 8191, id = (dx = 0 ? 0 : 1/dx),
 *                xq[m, k] = round-half-even(x[m, k]·id) clamped to [−8191, 8191]; then (block sums exact integers)
 *                out[m, n] = dx[m] · Σ_b scales[n, b] · Σ_{k = 32b}^{32b+31} xq[m, k]·q[n, k]   (≈ x·Wᵀ, W ≈ q·scale)
 * - matmul_q4k:  (x [..., M, K] f32, wq i32 [N, K/256·38]) → (out [..., M, N])   K % 256 = 0.
 *                llama.cpp's Q4_K unpacked (src/model/q4k.ts): per row, K/256 super-blocks of 38 words: f32 d,
 *                f32 dmin, u8 sc[8], u8 mn[8], u8 qs[128]; weight 32s + l of a super-block (sub-block s = 2j + h,
 *                l < 32) is q = h ? qs[32j + l] >> 4 : qs[32j + l] & 15, standing for d·sc[s]·q − dmin·mn[s].
 *                x is rounded per super-block b of 256 to 8 bits, as llama.cpp's Q8_K (all in float32):
 *                amax = max |x[m, 256b …]|, dx[m, b] = amax/127, xq = round-half-even(x·(amax = 0 ? 0 : 127/amax))
 *                clamped to [−127, 127]; then, the sums over l exact integers,
 *                out[m, n] = Σ_b dx[m, b]·(d·Σ_s sc[s]·Σ_l xq·q − dmin·Σ_s mn[s]·Σ_l xq)
 * - matmul_bf16: (x [..., M, K] f32, wb i32 [N, K/2]) → (out [..., M, N])       K even.
 *                bfloat16 weights, two per i32 element, low half first: w[n, k] = the float32 whose upper 16 bits
 *                are u16 (k mod 2) of wb[n, ⌊k/2⌋] and lower 16 bits zero (exact widening).
 *                out[m, n] = Σ_k x[m, k]·w[n, k]
 *
 * Transformer layers
 * - embedding:   (weight [V, C], ids i32 [...]) → (out [..., C])        out[n] = weight[ids[n]]
 * - embedding_q8:   (wq i32 [V, C/4], scales f32 [V, C/32], ids i32 [...]) → (out [..., C])   C % 32 = 0.
 *                The lookup in a table stored as matmul_q8's weight: out[n, c] = q[ids[n], c]·scales[ids[n], ⌊c/32⌋]
 *                (the product rounded to float32): a quantised model's token embedding (tied: the head's matrix).
 * - embedding_q4k:  (wq i32 [V, C/256·38], ids i32 [...]) → (out [..., C])   the table as matmul_q4k's weight:
 *                out[n, 32s + l] (super-block b, sub-block s) = f32(f32(d·sc[s])·q) − f32(dmin·mn[s]), in float32.
 * - embedding_bf16: (wb i32 [V, C/2], ids i32 [...]) → (out [..., C])   the table as matmul_bf16's weight (exact).
 *                All three check the ids as embedding does.
 * - embedding_backward: (dy [..., C], ids i32 [...]) → (dweight [V, C]); {accumulate=false}
 *                dweight = 0 (unless accumulate: dweight is read-modify-write and keeps what it holds, e.g. a tied
 *                head's gradient), then scatter-add rows of dy
 * - layernorm:   (x [N, C], w [C], b [C]) → (y [N, C], mean [N], rstd [N]); {eps}
 *                y = (x − mean)·rstd·w + b, rstd = 1/√(var + eps), var is the biased variance
 * - layernorm_backward: (dy, x, w, mean, rstd) → (dx [N, C], dw [C], db [C]); {accumulate=false}
 *                accumulate: dx is read-modify-write, dx += the gradient (a residual stream's other branch)
 * - rmsnorm:     (x [N, C], w [C]) → (y [N, C], rstd [N]); {eps}          y = x·rstd·w, rstd = 1/√(mean(x²) + eps)
 * - rmsnorm_backward: (dy, x, w, rstd) → (dx [N, C], dw [C]); {accumulate=false}   accumulate as layernorm's
 * - softmax:     (x [N, C]) → (y [N, C])                       over the last axis
 * - softmax_backward: (y, dy) → (dx)                           dx = y·(dy − Σ y·dy)
 * - rope:        (x [B, T, H, D]) → (y [B, T, H, D]); {theta, invFreq, offset=0, inverse=false}
 *                Rotary embedding, "rotate half" layout (Hugging Face Llama): for i < D/2, position p = offset + t,
 *                angle = p · inv_freq[i], inv_freq[i] = theta^(−2i/D) (computed in float32 as transformers does), or
 *                invFreq[i] when given (D/2 positive numbers: a scaled RoPE's, src/model/rope.ts; ./rope_freqs.ts);
 *                y[i] = x[i]·cos − x[i+D/2]·sin,  y[i+D/2] = x[i+D/2]·cos + x[i]·sin.
 *                inverse=true rotates by −angle (the gradient of rope).
 *                {rowStart: B integers} (left-padded rows): row b's position is max(0, offset + t − rowStart[b]), so
 *                positions count from each row's first real token (padding positions clamp to 0).
 * - rope_qkv:    (qkv [B, T, (Hq + 2·Hkv)·D]) → (q [B, T, Hq, D], k [B, T, Hkv, D], v [B, T, Hkv, D]);
 *                {heads = Hq, kvHeads = Hq, theta, invFreq, offset=0, rowStart}   a fused q/k/v projection's output split into
 *                its parts with q and k rotated: q = rope(qkv[..., :Hq·D]), k = rope(next Hkv·D), v = the last Hkv·D
 *                (rope as above; one call for the two ropes and three slices of a Llama decode step)
 * - rope_qkv_cache: (qkv) → (q [B, T, Hq, D], kc [B, L, Hkv, D], vc [B, L, Hkv, D]) kc, vc read-modify-write;
 *                {as rope_qkv}   rope_qkv with k and v written into a KV cache instead of fresh outputs:
 *                kc[b, offset + t] = k[b, t], vc[b, offset + t] = v[b, t] (offset + T ≤ L); the rest of kc, vc untouched
 * - attention:   (q [B, T, Hq, D], k [B, S, Hkv, D], v [B, S, Hkv, D]) → (o [B, T, Hq, D], lse [B, Hq, T]);
 *                {scale, causal=true, qOffset = S − T}
 *                Query head h reads key/value head ⌊h / (Hq/Hkv)⌋ (grouped-query attention). Query row t sits at
 *                position qOffset + t and, if causal, attends to key positions s ≤ qOffset + t.
 *                o = softmax(scale·q·kᵀ)·v; lse = log Σ exp(scale·q·kᵀ) per row (kept for the backward pass).
 *                A fast backend must not materialise a T×S matrix per head for long T (stream over keys).
 *                {rowStart: B integers ≤ S} (left-padded rows, forward only, no p): row b also ignores the keys
 *                s < rowStart[b] (its padding); a query row that then sees no key gets o = 0, lse = −∞.
 * - attention_backward: (do, q, k, v, o, lse) → (dq, dk, dv); same attrs.
 *                Kept probabilities (short sequences): attention may take a third output p [B, Hq, T, S], filled with
 *                softmax(scale·q·kᵀ) per row (0 at masked keys; all 0 for a row that sees no key), and
 *                attention_backward a seventh input p from it, then reads P instead of recomputing it from q·kᵀ and lse.
 * - attention_qkv: (qkv [B, T, (Hq + 2·Hkv)·D]) → (o [B, T, Hq, D], lse [B, Hq, T][, p]); {heads = Hq, kvHeads = Hkv
 *                (default heads), scale, causal=true, qOffset=0}
 *                `attention` on the parts of a fused projection (GPT-2's c_attn): q = qkv[..., 0 : Hq·D],
 *                k = qkv[..., Hq·D : (Hq+Hkv)·D], v = the last Hkv·D columns, each viewed [B, T, H, D]; S = T.
 * - attention_qkv_backward: (do, qkv, o, lse[, p]) → (dqkv [B, T, (Hq + 2·Hkv)·D]); same attrs. dqkv holds dq, dk, dv in
 *                qkv's layout (no split before or concat after).
 * - cross_entropy: (logits [N, V], targets i32 [N]) → (loss [N], lse [N]); {ignoreIndex=-100}
 *                loss[n] = lse[n] − logits[n, targets[n]]; loss[n] = 0 where targets[n] = ignoreIndex.
 * - cross_entropy_backward: (logits, targets, lse, dloss [N]) → (dlogits [N, V]); {ignoreIndex=-100}
 *                dlogits[n] = dloss[n]·(softmax(logits[n]) − onehot(targets[n])), 0 for ignored rows.
 * - cross_entropy_backward_inplace: (targets, lse, dloss [N]) → (logits [N, V] read-modify-write); {ignoreIndex=-100}
 *                cross_entropy_backward with dlogits written over the logits they come from (each element read
 *                once, before it is written): the loss's backward without a second B·T·V buffer, where nothing
 *                else reads the logits any more (src/tensor/grad_rules.ts, attr gradInPlace of cross_entropy).
 * - dropout:     (x) → (y); {p, seed}                          y[i] = keep ? x[i]/(1−p) : 0,
 *                keep = hashUniform(seed, i) ≥ p (src/util/rng.ts). Its gradient is the same kernel on dy.
 *
 * Optimiser and reductions
 * - adamw:       (grad) → (param, m, v) read-modify-write; {lr, beta1, beta2, eps, weightDecay, step, gradScale=1}
 *                PyTorch's AdamW: g = gradScale·grad; param ·= 1 − lr·weightDecay; m = β1·m + (1−β1)·g;
 *                v = β2·v + (1−β2)·g²; param −= (lr / (1−β1^step)) · m / (√v / √(1−β2^step) + eps).
 *                Several tensors in one call: (grad_0, …, grad_n−1) → (param_0, m_0, v_0, …, param_n−1, m_n−1,
 *                v_n−1), each triple updated from its own grad with the same attrs (PyTorch's multi-tensor apply).
 * - sumsq:       (a_0, …, a_n−1) → (out [1])                   Σ over every input of a² (accumulated in double where
 *                                                              possible): one global gradient norm in one call
 * - sum_all:     (a_0, …, a_n−1) → (out [1])                   Σ a over every input
 *
 * Sampling (generation, no gradient)
 * - sample:      (logits [..., V] f32) → (ids i32 [N], probs f32 [N, 2]); {temperature, topK=0, topP=1, minP=0, u}
 *                One token per row n of the N rows: src/backend/sampling.ts `sampleRow(row, attrs, u[n])`, the
 *                generation sampler's steps 4–8 (temperature → top-k → top-p → min-p → draw with the uniform
 *                u[n] ∈ [0, 1), `u` a number array of N), all in float64 with every sum in id order; temperature 0
 *                is the argmax (lowest id on ties). ids[n] = the drawn id, probs[n] = (its probability under the
 *                final distribution, its model log-probability row[id] − log Σ exp(row)) rounded to float32.
 *                ids must equal ref's exactly (NaN logits aside): the port repeats ref's float64 operations in the
 *                same order. With {topN = n > 0} two more outputs (ids i32 [N, n], logprobs f32 [N, n]): the row's n
 *                largest logits, largest first, lowest id first among equals (ref's `topN`), as row[id] − log Σ exp.
 *                With {counts: [id, count, …] of every row, countOffsets: N + 1 indices splitting them by row,
 *                repetitionPenalty=1, frequencyPenalty=0, presencePenalty=0} the draw is from the row after ref's
 *                `penalizeRow` (rounded to float32); the reported log-probabilities stay those of the row itself.
 */

export const KERNELS = [
  'fill',
  'copy',
  'add',
  'sub',
  'mul',
  'div',
  'scale',
  'exp',
  'log',
  'neg',
  'sqrt',
  'rsqrt',
  'square',
  'gelu',
  'gelu_backward',
  'silu',
  'silu_backward',
  'swiglu',
  'swiglu_backward',
  'swiglu_fused',
  'geglu_fused',
  'sum_to',
  'transpose',
  'slice',
  'pad_slice',
  'concat',
  'write_at',
  'matmul',
  'matmul_q8',
  'matmul_q4k',
  'matmul_bf16',
  'embedding',
  'embedding_q8',
  'embedding_q4k',
  'embedding_bf16',
  'embedding_backward',
  'layernorm',
  'layernorm_backward',
  'rmsnorm',
  'rmsnorm_backward',
  'softmax',
  'softmax_backward',
  'rope',
  'rope_qkv',
  'rope_qkv_cache',
  'attention',
  'attention_backward',
  'attention_qkv',
  'attention_qkv_backward',
  'cross_entropy',
  'cross_entropy_backward',
  'cross_entropy_backward_inplace',
  'dropout',
  'adamw',
  'sumsq',
  'sum_all',
  'sample',
] as const;

export type KernelName = (typeof KERNELS)[number];

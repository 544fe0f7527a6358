/**
 * CausalLM: one configurable decoder-only Transformer for the GPT-2 and Llama families.
 *
 *   ids (B, T) ─ embed (+ learned positions for GPT-2) ─▶ x (B, T, C)
 *   repeat L:  x += proj(attention(norm(x)))      causal, multi-head, grouped-query, RoPE for Llama
 *              x += mlp(norm(x))                  GELU (GPT-2), SwiGLU (Llama) or GeGLU (Gemma)
 * (Gemma 3 also normalises each block's attention and MLP outputs, scales the embeddings by √C, and alternates
 * sliding-window and full attention layers with their own RoPE θ: ModelConfig's flags.)
 *   norm(x) · Wᵀ_head ─▶ logits (B, T, V)        head tied to the embedding or its own matrix
 *
 * Parameters are a Map by Hugging Face name (params.ts), so checkpoints load and save without renaming. The model
 * sees token ids only; the trainer and the generation engine sit above it.
 */
import type { Backend } from '../backend/backend.js';
import { ConfigError, QuantizedModelError, ShapeError } from '../util/errors.js';
import * as O from '../tensor/ops.js';
import { ids as idsTensor, type RopeFreqs } from '../tensor/ops.js';
import { linearOfActivation } from '../tensor/recompute.js';
import { freeData, isGradEnabled, type Tensor, tidy } from '../tensor/tensor.js';
import type { ModelConfig } from './config.js';
import { KVCache } from './kv_cache.js';
import { embeddingName, paramSpecs, type HeadKind } from './params.js';
import { fusedOutput, quantEmbedding, quantLinear, type FusedLinear, type QuantWeight } from './quant_linear.js';
import { loraAccumulate, loraDelta, loraParams, type LoraOptions, type LoraWeight } from './lora.js';
import { ropeFreqsOf } from './rope.js';

export interface ForwardOptions {
  /** Incremental decoding: attend to the cached positions too, and append this step's keys/values. */
  cache?: KVCache;
  /** Return logits of the last position only: (B, 1, V). */
  lastOnly?: boolean;
  /** Training mode: dropout is applied when config.dropout > 0. */
  training?: boolean;
  /** Seed of this forward's dropout masks (derive it from the run seed and the step for exact resumes). */
  dropoutSeed?: number;
  /**
   * Left-padded rows of a ragged batch (no cache; with a cache, give it to `newCache`): row b's real tokens start
   * at index rowStart[b]. Its positions count from there (position 0 = its first real token) and no row attends to
   * its padding; the outputs at padding positions are meaningless. Inference only.
   */
  rowStart?: readonly number[];
  /** Record what happens inside (model inspection, src/inspect): off by default, and then nothing extra is computed. */
  capture?: ForwardCapture;
  /**
   * While gradients are recorded: compute the MLP's activation (GPT-2's GELU output, 4·C floats a token and layer;
   * Llama's SwiGLU output, F) again in the backward instead of keeping it (src/tensor/recompute.ts). Default true;
   * false keeps it, for one activation pass less a layer. The loss and gradients are the same either way.
   */
  recompute?: boolean;
}

/**
 * What a forward records on request: pass the arrays to fill (an absent one is not recorded). The tensors are pushed in
 * layer order and belong to the caller's scope (return them from the `tidy` that ran the forward to keep them).
 */
export interface ForwardCapture {
  /**
   * Each layer's attention probabilities (B, H, T, S): softmax(q·kᵀ/√D) over the S = cached + T key positions, 0 at
   * masked keys; query head h reads key/value head ⌊h·Hkv/H⌋ (grouped-query). Written by the attention kernel's
   * optional output only when asked, so the ordinary forward never materialises them.
   */
  attention?: Tensor[];
  /** The residual stream: the embedding output (positions added), then x after each block: L + 1 tensors (B, T, C). */
  residual?: Tensor[];
}

/** The forward options that matter to a loss (dropout while training), for the sequence-level losses and heads. */
export type TrainingOptions = Pick<ForwardOptions, 'training' | 'dropoutSeed'>;

export interface CausalLMOptions {
  /** 'none': the body only, without the language-model head (a reward model's backbone, ./reward.ts). Default 'lm'. */
  head?: HeadKind;
}

export class CausalLM {
  readonly config: ModelConfig;
  /** The output head this model carries ('none': forward() is unavailable, hidden() gives the final states). */
  readonly head: HeadKind;
  /** Parameters by Hugging Face name, in checkpoint order. */
  readonly params: Map<string, Tensor>;
  readonly backend: Backend;
  /**
   * Quantisation hook (inference only; filled by quantizeModel in ./quantize.ts): linear weights by parameter name,
   * stored [out, in] as q8, q4k or bf16. `linear()` below uses them when present; empty = plain float32 model.
   * The token embedding's entry (the head's matrix when tied, else its own) serves the token lookup too while
   * `quantizedEmbedding` is set.
   */
  readonly quantized = new Map<string, QuantWeight>();
  /** The token lookup reads `quantized`'s entry for the embedding, not the float32 table (set by quantizeModel). */
  quantizedEmbedding = false;
  /**
   * Quantised linears fused by input (filled by quantizeModel, or in float32 by fuseModel): Llama's q/k/v as
   * `model.layers.{l}.self_attn.qkv`, gate/up as `model.layers.{l}.mlp.gate_up`. Their parts are then absent from
   * `quantized`.
   */
  readonly fused = new Map<string, FusedLinear>();
  /**
   * LoRA adapters by the weight they adapt (./lora.ts: addLora, loadLora, mergeLora): `linear()` adds s·(x·Aᵀ)·Bᵀ.
   * Empty = a plain model. While there are adapters only they train (`trainableParams`), the weights stay frozen.
   */
  readonly lora = new Map<string, LoraWeight>();
  /** What the rope calls rotate by: θ, or a scaled RoPE's inverse frequencies (computed once). */
  readonly ropeFreqs: RopeFreqs;
  /** What the sliding-window layers rotate by (Gemma 3's local θ); else ropeFreqs. */
  readonly ropeFreqsLocal: RopeFreqs;
  /** The hyper-parameters of the adapters in `lora` (null when there are none). */
  loraOptions: LoraOptions | null = null;
  /** Dropout on the adapters' inputs during the current training forward (set by hidden()). */
  private loraDrop: ((t: Tensor) => Tensor) | null = null;

  constructor(config: ModelConfig, params: Map<string, Tensor>, options: CausalLMOptions = {}) {
    this.config = config;
    this.head = options.head ?? 'lm';
    for (const s of paramSpecs(config, this.head)) {
      const p = params.get(s.name);
      if (!p) throw new ConfigError(s.name, `missing parameter for a ${config.family} model`);
      if (p.shape.length !== s.shape.length || p.shape.some((d, i) => d !== s.shape[i]))
        throw new ShapeError(`parameter ${s.name}: shape [${p.shape}] but the config implies [${s.shape}]`);
    }
    for (const k of ['layerTypes', 'noRopeLayers'] as const) {
      const v = config[k];
      if (v && v.length !== config.numLayers)
        throw new ConfigError(k, `has ${v.length} entries for ${config.numLayers} layers (one per layer)`);
    }
    if (config.slidingWindow !== undefined && !(Number.isInteger(config.slidingWindow) && config.slidingWindow >= 1))
      throw new ConfigError('slidingWindow', `expected a positive integer, got ${config.slidingWindow}`);
    this.params = params;
    this.backend = params.values().next().value!.backend;
    this.ropeFreqs = ropeFreqsOf(config);
    this.ropeFreqsLocal = config.ropeLocalTheta !== undefined ? config.ropeLocalTheta : this.ropeFreqs;
  }

  private p(name: string): Tensor {
    return this.params.get(name)!;
  }
  private opt(name: string): Tensor | null {
    return this.params.get(name) ?? null;
  }
  /** y = x·Wᵀ + b for weight `name` (layout as stored in the checkpoint); the quantised form when there is one. */
  private linear(x: Tensor, name: string, b: Tensor | null, layout: 'out_in' | 'in_out' = 'out_in'): Tensor {
    const q = this.quantized.get(name);
    const y = q ? quantLinear(x, q, b) : O.linear(x, this.p(name), b, layout);
    const l = this.lora.get(name);
    if (!l) return y;
    if (!isGradEnabled()) {
      loraAccumulate(y, x, l); // inference: two kernel calls, y += s·(x·Aᵀ)·Bᵀ in place
      return y;
    }
    const d = loraDelta(x, l, this.loraDrop ?? undefined);
    const out = O.add(y, d); // (…, out)
    // the tape records: the two terms' memory back now (matmul's and scale's rules read their inputs, add's only
    // shapes), or LoRA would keep twice each projection's output to the end of the step
    freeData(y);
    freeData(d);
    return out;
  }

  /**
   * What trains: the LoRA adapters' A and B by PEFT name while the model has adapters (the weights frozen), else
   * every parameter.
   */
  trainableParams(): Map<string, Tensor> {
    return this.lora.size ? loraParams(this) : this.params;
  }

  /** Number of parameters (each tied matrix counted once). */
  numParams(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /**
   * A cache for incremental decoding of `batch` rows (up to maxLen positions; default the model's window). A
   * ragged batch gives `rowStart`: per row, where its real tokens start in the left-padded prompt.
   */
  newCache(batch: number, maxLen = this.config.maxPositions, rowStart?: readonly number[]): KVCache {
    return new KVCache(this.config.numLayers, batch, maxLen, rowStart);
  }

  /** ids: row-major (B, T). Returns logits (B, T, V), or (B, 1, V) with lastOnly. */
  forward(ids: Int32Array, B: number, T: number, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    if (this.head === 'none')
      throw new ConfigError('head', "this model has no language-model head (head: 'none'); use hidden()");
    const cache = opts.cache;
    if (cache && T === 1 && !opts.training && !opts.capture && !opts.rowStart && !isGradEnabled())
      return this.decodeStep(ids, B, cache);
    let x = this.hidden(ids, B, T, opts); // (B, T, C)
    if (opts.lastOnly && T > 1) x = O.slice(x, [0, T - 1, 0], [B, 1, c.hiddenSize]); // (B, 1, C)
    return this.lmHead(x); // (B, T, V)
  }

  /**
   * One KV-cached decode step (T = 1, inference): replayed from the cache's decode graph when one is ready
   * (./decode_graph.ts), else the plain forward, recorded. Steps a replay cannot take (ids outside the vocabulary, a
   * full cache) run the plain forward, which says what is wrong.
   */
  private decodeStep(ids: Int32Array, B: number, cache: KVCache): Tensor {
    const plain = () => this.lmHead(this.hidden(ids, B, 1, { cache }));
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) if (!(ids[i]! >= 0 && ids[i]! < V)) return plain();
    const first = cache.rowStart ? Math.min(...cache.rowStart) : 0;
    // the last position a step may start at: the cache's capacity, and the model's context counted from the first row
    const maxPosition = Math.min(cache.maxLen, this.config.maxPositions + first) - 1;
    if (ids.length !== B || cache.length > maxPosition) return plain();
    const { out, replayed } = cache.graph.step(
      this.backend,
      ids,
      B,
      cache.length,
      maxPosition,
      this.weightTensors(),
      plain,
    );
    if (replayed) cache.advance(1);
    return out;
  }

  /**
   * One decode step of B independent sequences, each with its own one-row cache (continuous batching: requests that
   * began at different times decode together): ids (B,), row b's next token → logits (B, 1, V). The projections,
   * the MLP and the head run once for all rows (each weight read once a step, the cost of a memory-bound decode);
   * only attention runs per row, over that row's cache at that row's position. Each cache advances by one. Row b's
   * logits equal `forward(ids[b], 1, 1, { cache: caches[b] })` up to float rounding. Inference only.
   */
  decodeRows(ids: Int32Array, caches: readonly KVCache[]): Tensor {
    const c = this.config,
      B = caches.length;
    if (this.head === 'none')
      throw new ConfigError('head', "this model has no language-model head (head: 'none'); use hidden()");
    if (B === 0 || ids.length !== B) throw new ShapeError(`decodeRows: ${ids.length} ids for ${B} caches`);
    if (isGradEnabled()) throw new ConfigError('decodeRows', 'inference only: wrap it in noGrad');
    if (new Set(caches).size !== B) throw new ShapeError('decodeRows: a cache is given for two rows');
    caches.forEach((k, b) => {
      if (!(k instanceof KVCache) || k.batch !== 1 || k.rowStart)
        throw new ShapeError(`decodeRows: caches[${b}] is not a one-row cache without padding`);
      if (k.length + 1 > k.maxLen)
        throw new ShapeError(`KVCache: ${k.length + 1} positions exceed the cache's ${k.maxLen}`);
      if (k.length + 1 > c.maxPositions)
        throw new ShapeError(
          `forward: ${k.length + 1} positions exceed the model's context window of ${c.maxPositions} (row ${b})`,
        );
      if (!(ids[b]! >= 0 && ids[b]! < c.vocabSize))
        throw new ShapeError(`forward: token id ${ids[b]} at index ${b} outside the vocabulary [0, ${c.vocabSize})`);
    });
    if (B === 1) return this.forward(ids, 1, 1, { cache: caches[0]! }); // the decode graph's step
    return this.lmHead(this.body(ids, B, 1, {}, null, 0, (t) => t, caches)); // (B, 1, V)
  }

  /** Every weight tensor a forward may read, in a fixed order (a decode graph is valid while these stay). */
  private weightTensors(): Tensor[] {
    const w = [...this.params.values()];
    for (const q of this.quantized.values()) w.push(q.data, ...(q.scales ? [q.scales] : []));
    for (const f of this.fused.values())
      w.push(f.weight.data, ...(f.weight.scales ? [f.weight.scales] : []), ...(f.bias ? [f.bias] : []));
    for (const l of this.lora.values()) w.push(l.A, l.B);
    return w;
  }

  /** Token ids (shape) → their embedding rows (…shape, C), from the quantised table when the model has one. */
  private embedTokens(ids: Int32Array, shape: number[]): Tensor {
    const name = embeddingName(this.config);
    const q = this.quantizedEmbedding ? this.quantized.get(name) : undefined;
    if (q) return quantEmbedding(q, idsTensor(ids, shape, q.data));
    const w = this.p(name);
    return O.embedding(w, idsTensor(ids, shape, w));
  }

  /** The language-model head on final hidden states: (B, T, C) → logits (B, T, V). */
  private lmHead(x: Tensor): Tensor {
    return this.linear(x, this.config.tieWordEmbeddings ? embeddingName(this.config) : 'lm_head.weight', null);
  }

  /** The final norm (GPT-2's ln_f, Llama's norm) on the residual stream: (B, T, C) → (B, T, C). */
  private finalNorm(x: Tensor): Tensor {
    const c = this.config;
    return c.family === 'gpt2'
      ? O.layerNorm(x, this.p('transformer.ln_f.weight'), this.p('transformer.ln_f.bias'), c.normEps)
      : O.rmsNorm(x, this.p('model.norm.weight'), c.normEps);
  }

  /**
   * The logit lens (nostalgebraist 2020): read a residual-stream tensor (B, T, C) (any layer's, from
   * `ForwardCapture.residual`) through the final norm and the language-model head → logits (B, T, V). At the last
   * block's output these are forward()'s own logits.
   */
  lensLogits(residual: Tensor): Tensor {
    if (this.head === 'none') throw new ConfigError('head', "this model has no language-model head (head: 'none')");
    if (residual.rank !== 3 || residual.shape[2] !== this.config.hiddenSize)
      throw new ShapeError(
        `lensLogits: expected a residual (B, T, ${this.config.hiddenSize}), got [${residual.shape}]`,
      );
    return this.lmHead(this.finalNorm(residual));
  }

  /**
   * Logits at chosen positions only: ids (B, T), `rows` indices into the B·T positions (row-major) → (n, V), the
   * language-model head applied to those rows alone (a continuation's scores without B·T·V logits).
   */
  logitsAt(ids: Int32Array, B: number, T: number, rows: Int32Array, opts: ForwardOptions = {}): Tensor {
    if (this.head === 'none') throw new ConfigError('head', "this model has no language-model head (head: 'none')");
    for (const r of rows)
      if (!(Number.isInteger(r) && r >= 0 && r < B * T))
        throw new ShapeError(`logitsAt: row ${r} outside the ${B}·${T} positions`);
    const C = this.config.hiddenSize;
    const x = O.reshape(this.hidden(ids, B, T, opts), [B * T, C]); // (B·T, C)
    return this.lmHead(O.embedding(x, idsTensor(rows, [rows.length], x))); // (n, C) gathered → (n, V)
  }

  /**
   * The body: ids (B, T) → the final normalised hidden states (B, T, C), the input of every head (the language-model
   * head in forward(), a reward model's score head). `lastOnly` is forward()'s business and ignored here.
   */
  hidden(ids: Int32Array, B: number, T: number, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    if (ids.length !== B * T) throw new ShapeError(`forward: ${ids.length} ids for B=${B}, T=${T}`);
    const pos0 = opts.cache?.length ?? 0;
    const rowStart = this.rowStarts(B, pos0 + T, opts);
    // a left-padded batch: the row with the least padding reaches the highest position
    const end = pos0 + T - (rowStart ? Math.min(...rowStart) : 0);
    if (end > c.maxPositions)
      throw new ShapeError(`forward: ${end} positions exceed the model's context window of ${c.maxPositions}`);
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i]! >= 0 && ids[i]! < c.vocabSize))
        throw new ShapeError(`forward: token id ${ids[i]} at index ${i} outside the vocabulary [0, ${c.vocabSize})`);
    }
    // quantised weights have no gradient: refuse training (and forwards that record gradients)
    const quant = this.quantized.values().next().value?.kind ?? this.fused.values().next().value?.weight.kind;
    if (quant && (opts.training || isGradEnabled()))
      throw new QuantizedModelError(
        quant,
        opts.training ? 'training' : 'a forward with gradients on (wrap inference in noGrad)',
      );
    const drop = opts.training && c.dropout > 0 ? c.dropout : 0;
    let seedCounter = (opts.dropoutSeed ?? 0) >>> 0;
    const dropout = (t: Tensor) =>
      drop > 0 ? O.dropout(t, drop, (seedCounter = (Math.imul(seedCounter, 1664525) + 1013904223) >>> 0)) : t;
    // LoRA's own dropout on each adapter's input (PEFT's lora_dropout), its masks seeded from the same counter
    const loraP = opts.training && this.loraOptions ? this.loraOptions.dropout : 0;
    this.loraDrop =
      loraP > 0
        ? (t: Tensor) => O.dropout(t, loraP, (seedCounter = (Math.imul(seedCounter, 1664525) + 1013904223) >>> 0))
        : null;
    try {
      return this.body(ids, B, T, opts, rowStart, pos0, dropout);
    } finally {
      this.loraDrop = null;
    }
  }

  /** hidden()'s layers, once the inputs are checked: ids (B, T) → final normalised states (B, T, C). */
  private body(
    ids: Int32Array,
    B: number,
    T: number,
    opts: ForwardOptions,
    rowStart: readonly number[] | null,
    pos0: number,
    dropout: (t: Tensor) => Tensor,
    rowCaches: readonly KVCache[] | null = null,
  ): Tensor {
    const c = this.config;
    const H = c.numHeads,
      Hkv = c.numKvHeads,
      D = c.headDim;

    let x = this.embedTokens(ids, [B, T]); // (B, T, C)
    if (c.embedScale) x = O.scale(x, Math.sqrt(c.hiddenSize)); // Gemma: embeddings times √C
    if (c.family === 'gpt2') {
      const pos = rowCaches
        ? idsTensor(
            rowCaches.map((k) => k.length),
            [B, T],
            x,
          ) // one cache per row (T = 1): each row at its own position
        : rowStart
          ? idsTensor(
              Array.from({ length: B * T }, (_, i) => Math.max(0, pos0 + (i % T) - rowStart[Math.floor(i / T)]!)),
              [B, T],
              x,
            ) // each row's positions count from its first real token
          : idsTensor(
              Array.from({ length: T }, (_, t) => pos0 + t),
              [T],
              x,
            );
      x = O.add(x, O.embedding(this.p('transformer.wpe.weight'), pos)); // (B, T, C) + (T, C) or (B, T, C)
    }
    x = dropout(x);
    const cap = opts.capture;
    // x + dropout(y) for a projection's output y. While the tape records, y (and its dropout) would otherwise be
    // kept to the end of the step though no gradient rule reads them (matmul's reads its inputs, dropout's and add's
    // only shapes and the seed): 2·C floats a token and layer, given back as soon as the add is recorded.
    const early = isGradEnabled() && !cap;
    // the MLP's activation recomputed in the backward rather than kept (src/tensor/recompute.ts)
    const recompute = early && opts.recompute !== false;
    const residual = (r: Tensor, y: Tensor): Tensor => {
      const d = dropout(y);
      const out = O.add(r, d);
      if (early) {
        freeData(y);
        if (d !== y) freeData(d);
      }
      return out;
    };
    cap?.residual?.push(x);
    /**
     * The attention's input projections of layer l for every row: GPT-2's packed q|k|v (B, T, (H + 2Hkv)·D), a fused
     * Llama q|k|v the same, or Llama's q (B, T, H, D), k and v (B, T, Hkv, D) before their norms and rotation.
     */
    const project = (l: number, x: Tensor): Tensor[] => {
      if (c.family === 'gpt2') {
        const pre = `transformer.h.${l}.`;
        const h = O.layerNorm(x, this.p(pre + 'ln_1.weight'), this.p(pre + 'ln_1.bias'), c.normEps);
        return [this.linear(h, pre + 'attn.c_attn.weight', this.p(pre + 'attn.c_attn.bias'), 'in_out')];
      }
      const pre = `model.layers.${l}.`;
      const h = O.rmsNorm(x, this.p(pre + 'input_layernorm.weight'), c.normEps);
      const qkv = this.fused.get(pre + 'self_attn.qkv');
      if (qkv) return [fusedOutput(h, qkv)];
      const [Bx, Tx] = x.shape as [number, number, number];
      const proj = (n: string, heads: number) =>
        O.reshape(this.linear(h, `${pre}self_attn.${n}_proj.weight`, this.opt(`${pre}self_attn.${n}_proj.bias`)), [
          Bx,
          Tx,
          heads,
          D,
        ]);
      return [proj('q', H), proj('k', Hkv), proj('v', Hkv)];
    };
    /**
     * Attention of layer l from its projections (`project`) for Bn rows: queries at position p0 over the cache (when
     * there is one: this step's keys and values appended to it) → (Bn, T, H, D).
     */
    const attend = (
      l: number,
      sliding: boolean,
      parts: Tensor[],
      Bn: number,
      cache: KVCache | undefined,
      p0: number,
    ): Tensor => {
      // attention over the cache: queries at position p0 (for Bn > 1 the keys are the cache's whole buffer)
      const attnOpts: O.AttentionOptions = {
        ...(cache ? { qOffset: p0 } : {}),
        ...(rowStart ? { rowStart } : {}),
        ...(cap?.attention ? { probs: (p: Tensor) => cap.attention!.push(p) } : {}),
      };
      if (c.family === 'gpt2') {
        const qkv = parts[0]!; // (Bn, T, (H + 2Hkv)·D)
        if (!cache && !rowStart) return O.attentionQKV(qkv, H, Hkv, attnOpts); // q, k, v read in place, no split
        const [q, k, v] = O.split(qkv, [H * D, Hkv * D, Hkv * D], -1);
        let [kc, vc] = [O.reshape(k!, [Bn, T, Hkv, D]), O.reshape(v!, [Bn, T, Hkv, D])];
        if (cache) [kc, vc] = cache.append(l, kc, vc); // (Bn, S, Hkv, D)
        return O.attention(O.reshape(q!, [Bn, T, H, D]), kc, vc, attnOpts);
      }
      const pre = `model.layers.${l}.`;
      const freqs = sliding ? this.ropeFreqsLocal : this.ropeFreqs;
      const layerAttn: O.AttentionOptions = {
        ...attnOpts,
        ...(sliding ? { window: c.slidingWindow } : {}),
        ...(c.attnScale !== undefined ? { scale: c.attnScale } : {}),
      };
      // Qwen3: RMSNorm over each head's D before the rotation
      const norm = (t: Tensor, n: string) =>
        c.qkNorm ? O.rmsNorm(t, this.p(`${pre}self_attn.${n}_norm.weight`), c.normEps) : t;
      // SmolLM3's NoPE layers rotate nothing
      const rot = (t: Tensor, n: string) =>
        c.noRopeLayers?.[l] ? norm(t, n) : O.rope(norm(t, n), freqs, p0, rowStart ?? undefined);
      let q: Tensor, k: Tensor, v: Tensor;
      if (parts.length === 1 && cache) {
        // one kernel: q and k rotated, k and v appended to the cache (Bn, S, Hkv, D), no split
        [q, k, v] = cache.appendQKV(l, parts[0]!, H, Hkv, freqs);
      } else {
        [q, k, v] =
          parts.length === 1
            ? O.ropeQKV(parts[0]!, H, Hkv, freqs, p0, rowStart ?? undefined) // one kernel, no split
            : [rot(parts[0]!, 'q'), rot(parts[1]!, 'k'), parts[2]!]; // (Bn, T, H, D), (Bn, T, Hkv, D) ×2
        if (cache) [k, v] = cache.append(l, k, v); // (Bn, S, Hkv, D)
      }
      return O.attention(q, k, v, layerAttn);
    };

    const layer = (l: number, x: Tensor): Tensor => {
      // ---- attention
      // a sliding-window layer (Mistral's every layer, Gemma 3's local ones) sees the last slidingWindow keys only
      const sliding = c.slidingWindow !== undefined && (c.layerTypes?.[l] ?? 'sliding') === 'sliding';
      const parts = project(l, x); // the projections, for every row at once
      let a: Tensor;
      if (!rowCaches) a = attend(l, sliding, parts, B, opts.cache, pos0);
      else {
        // each row against its own cache, at its own position: (1, 1, H, D) each → (B, 1, H, D)
        const rowsOut = rowCaches.map((cache, b) =>
          attend(
            l,
            sliding,
            parts.map((p) => O.slice(p, [b, ...p.shape.slice(1).map(() => 0)], [1, ...p.shape.slice(1)])),
            1,
            cache,
            cache.length,
          ),
        );
        a = O.concat(rowsOut, 0); // decodeRows sends one row through forward(): here B ≥ 2
      }
      a = O.reshape(a, [B, T, H * D]); // (B, T, H·D)
      let o: Tensor;
      if (c.family === 'gpt2') {
        const pre = `transformer.h.${l}.`;
        o = this.linear(a, pre + 'attn.c_proj.weight', this.p(pre + 'attn.c_proj.bias'), 'in_out');
      } else {
        const pre = `model.layers.${l}.self_attn.`;
        o = this.linear(a, pre + 'o_proj.weight', this.opt(pre + 'o_proj.bias'));
        // Gemma's sandwich: the attention output normalised before it joins the residual stream
        if (c.sandwichNorms) o = O.rmsNorm(o, this.p(`model.layers.${l}.post_attention_layernorm.weight`), c.normEps);
      }
      x = residual(x, o);

      // ---- feed-forward
      let m: Tensor;
      if (c.family === 'gpt2') {
        const pre = `transformer.h.${l}.`;
        const h = O.layerNorm(x, this.p(pre + 'ln_2.weight'), this.p(pre + 'ln_2.bias'), c.normEps);
        const u = this.linear(h, pre + 'mlp.c_fc.weight', this.p(pre + 'mlp.c_fc.bias'), 'in_out'); // (B, T, F)
        const [proj, projBias] = [pre + 'mlp.c_proj.weight', this.p(pre + 'mlp.c_proj.bias')];
        m =
          recompute && !this.lora.has(proj)
            ? linearOfActivation('gelu', [u], this.p(proj), projBias, 'in_out')
            : this.linear(O.gelu(u), proj, projBias, 'in_out');
      } else {
        const pre = `model.layers.${l}.`;
        const inNorm = c.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm';
        const h = O.rmsNorm(x, this.p(`${pre}${inNorm}.weight`), c.normEps);
        const gu = this.fused.get(pre + 'mlp.gate_up');
        const [down, downBias] = [pre + 'mlp.down_proj.weight', this.opt(pre + 'mlp.down_proj.bias')];
        if ((c.mlpActivation ?? 'silu') === 'gelu_tanh') {
          // GeGLU (Gemma): gelu_tanh(gate)·up; over the fused gate/up output when there is one
          if (gu) m = this.linear(O.gegluFused(fusedOutput(h, gu)), down, downBias);
          else {
            const g = this.linear(h, pre + 'mlp.gate_proj.weight', this.opt(pre + 'mlp.gate_proj.bias')),
              u = this.linear(h, pre + 'mlp.up_proj.weight', this.opt(pre + 'mlp.up_proj.bias')); // (B, T, F) ×2
            m = this.linear(O.mul(O.gelu(g), u), down, downBias);
          }
        } else if (gu)
          m = this.linear(O.swigluFused(fusedOutput(h, gu)), down, downBias); // (B, T, 2F) read in place
        else {
          const g = this.linear(h, pre + 'mlp.gate_proj.weight', this.opt(pre + 'mlp.gate_proj.bias')),
            u = this.linear(h, pre + 'mlp.up_proj.weight', this.opt(pre + 'mlp.up_proj.bias')); // (B, T, F) ×2
          m =
            recompute && !this.lora.has(down)
              ? linearOfActivation('swiglu', [g, u], this.p(down), downBias)
              : this.linear(O.swiglu(g, u), down, downBias);
        }
      }
      if (c.sandwichNorms) m = O.rmsNorm(m, this.p(`model.layers.${l}.post_feedforward_layernorm.weight`), c.normEps);
      x = residual(x, m);
      cap?.residual?.push(x);
      return x;
    };
    // Inference over several positions (a prompt's prefill, a scoring pass): each layer in a scope of its own, so the
    // forward holds one layer's temporaries at a time, not every layer's (they are kept to the end only for the
    // backward, or for a capture). The residual stream before a layer goes once the layer has read it.
    const scoped = T > 1 && !cap && !isGradEnabled();
    for (let l = 0; l < c.numLayers; l++) {
      if (!scoped) {
        x = layer(l, x);
        continue;
      }
      const prev = x;
      x = tidy(() => layer(l, prev));
      prev.dispose();
    }
    opts.cache?.advance(T);
    for (const k of rowCaches ?? []) k.advance(T);

    return this.finalNorm(x); // (B, T, C)
  }

  /** The left padding of this forward (from opts or the cache), checked; null when no row is padded. */
  private rowStarts(B: number, end: number, opts: ForwardOptions): readonly number[] | null {
    if (opts.rowStart && opts.cache)
      throw new ConfigError(
        'rowStart',
        'a cached forward takes its rowStart from the cache (newCache(B, maxLen, rowStart))',
      );
    const rs = opts.rowStart ?? opts.cache?.rowStart ?? null;
    if (!rs) return null;
    if (rs.length !== B || rs.some((s) => !Number.isInteger(s) || s < 0 || s >= end))
      throw new ShapeError(`forward: rowStart must hold B = ${B} integers in [0, ${end}), got [${rs.join(', ')}]`);
    return rs.every((s) => s === 0) ? null : rs;
  }

  /**
   * Mean next-token cross-entropy over the targets that are not `ignoreIndex`. `targets` (B, T) are already
   * aligned with the inputs: targets[b, t] is the token that should follow ids[b, ..t].
   */
  loss(
    ids: Int32Array,
    targets: Int32Array,
    B: number,
    T: number,
    opts: ForwardOptions & { ignoreIndex?: number } = {},
  ): Tensor {
    const ignore = opts.ignoreIndex ?? -100;
    if (targets.length !== B * T) throw new ShapeError(`loss: ${targets.length} targets for B=${B}, T=${T}`);
    let count = 0;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      if (t === ignore) continue;
      if (!(t >= 0 && t < this.config.vocabSize))
        throw new ShapeError(`loss: target id ${t} at index ${i} outside the vocabulary [0, ${this.config.vocabSize})`);
      count++;
    }
    if (count === 0) throw new ShapeError('loss: every target is ignored');
    const rows = this.lossChunkRows(B * T);
    if (rows >= B * T) {
      const logits = this.forward(ids, B, T, opts); // (B, T, V)
      // nothing but the loss reads these logits: its backward writes their gradient over them
      const ce = O.crossEntropy(logits, idsTensor(targets, [B * T], logits), ignore, { gradInPlace: true }); // (B·T)
      return O.scale(O.sum(ce), 1 / count);
    }
    // logits over the backend's largest tensor (GPT-2 at B16 T1024: 3.3 GB, a GPU binds ≤ 2 GiB): head and
    // cross-entropy on `rows` positions at a time, the sums added
    if (this.head === 'none')
      throw new ConfigError('head', "this model has no language-model head (head: 'none'); use hidden()");
    const C = this.config.hiddenSize;
    const x = O.reshape(this.hidden(ids, B, T, opts), [B * T, C]); // (B·T, C)
    let total: Tensor | null = null;
    for (let r0 = 0; r0 < B * T; r0 += rows) {
      const n = Math.min(rows, B * T - r0);
      const logits = this.lmHead(O.slice(x, [r0, 0], [n, C])); // (n, V)
      const ce = O.crossEntropy(logits, idsTensor(targets.subarray(r0, r0 + n), [n], logits), ignore, {
        gradInPlace: true,
      }); // (n)
      const s = O.sum(ce);
      total = total ? O.add(total, s) : s;
    }
    return O.scale(total!, 1 / count);
  }

  /** Positions whose logits fit one tensor of the backend (`Backend.maxTensorBytes`); ≥ n when all of them do. */
  private lossChunkRows(n: number): number {
    const cap = this.backend.maxTensorBytes;
    const rowBytes = this.config.vocabSize * 4;
    if (cap === undefined || n * rowBytes <= cap) return n;
    return Math.max(1, Math.floor(cap / rowBytes));
  }
}

/** Targets for next-token prediction: targets[t] = ids[t + 1] within each row, the last position ignored. */
export function shiftTargets(ids: Int32Array, B: number, T: number, ignoreIndex = -100): Int32Array {
  const t = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T - 1; i++) t[b * T + i] = ids[b * T + i + 1]!;
    t[b * T + T - 1] = ignoreIndex;
  }
  return t;
}

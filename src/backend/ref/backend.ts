/**
 * The `ref` backend: every kernel of ../kernels.ts in plain TypeScript over host typed arrays. Slow and obvious on
 * purpose — it is the oracle that every other backend is checked against, and it alone supports `f64`, which the
 * finite-difference gradient checks use. Every call is checked against ../signatures.ts first (../validate.ts), so
 * the kernels below assume consistent shapes.
 */
import type { Attrs, Backend, DeviceBuffer, DType, HostArray, View } from '../backend.js';
import { hostArray } from '../backend.js';
import { BackendError, ConfigError } from '../../util/errors.js';
import { KERNELS } from '../kernels.js';
import { validateKernelCall } from '../validate.js';
import * as E from './elementwise.js';
import * as N from './nn.js';
import type { RefView } from './elementwise.js';
import { attrNum } from './elementwise.js';
import { sampleAttrs } from '../sampling.js';
import { sampleKernel } from '../sample_rows.js';
import { ropeInvFreq } from '../rope_freqs.js';

export interface RefBuffer extends DeviceBuffer {
  data: HostArray | null;
}

type Kernel = (i: RefView[], o: RefView[], a: Attrs | undefined) => void;
const rs = (a: Attrs | undefined) => a?.['rowStart'] as readonly number[] | undefined;

const bin =
  (f: (x: number, y: number) => number): Kernel =>
  (i, o) =>
    E.broadcastBinary(i[0]!, i[1]!, o[0]!, f);
const un =
  (f: (x: number) => number): Kernel =>
  (i, o) =>
    E.unary(i[0]!, o[0]!, f);
const flag = (a: Attrs | undefined, k: string, d: boolean): boolean => (a?.[k] === undefined ? d : Boolean(a[k]));
const arr = (a: Attrs | undefined, k: string): readonly number[] => {
  const v = a?.[k];
  if (!Array.isArray(v)) throw new ConfigError(k, 'kernel attribute must be a number array');
  return v as readonly number[];
};

const TABLE: Record<string, Kernel> = {
  fill: (_i, o, a) => o[0]!.data.fill(attrNum(a, 'value')),
  copy: (i, o) => {
    const s = i[0]!.data,
      d = o[0]!.data;
    for (let k = 0; k < d.length; k++) d[k] = s[k]!;
  },
  add: bin((x, y) => x + y),
  sub: bin((x, y) => x - y),
  mul: bin((x, y) => x * y),
  div: bin((x, y) => x / y),
  scale: (i, o, a) => {
    const al = attrNum(a, 'alpha'),
      be = attrNum(a, 'beta', 0);
    E.unary(i[0]!, o[0]!, (x) => al * x + be);
  },
  exp: un(Math.exp),
  log: un(Math.log),
  neg: un((x) => -x),
  sqrt: un(Math.sqrt),
  rsqrt: un((x) => 1 / Math.sqrt(x)),
  square: un((x) => x * x),
  gelu: un(E.gelu),
  gelu_backward: (i, o) => E.broadcastBinary(i[0]!, i[1]!, o[0]!, (x, dy) => dy * E.geluGrad(x)),
  silu: un(E.silu),
  silu_backward: (i, o) => E.broadcastBinary(i[0]!, i[1]!, o[0]!, (x, dy) => dy * E.siluGrad(x)),
  swiglu: (i, o) => E.broadcastBinary(i[0]!, i[1]!, o[0]!, (g, u) => E.silu(g) * u),
  swiglu_fused: (i, o) => gatedFused(i[0]!, o[0]!, E.silu),
  // in float32, gelu rounded first: the value of the unfused gelu kernel then mul (Gemma's split path), bit for bit
  geglu_fused: (i, o) =>
    gatedFused(i[0]!, o[0]!, o[0]!.data instanceof Float32Array ? (x) => Math.fround(E.gelu(x)) : E.gelu),
  swiglu_backward: (i, o) => {
    const G = i[0]!.data,
      U = i[1]!.data,
      D = i[2]!.data,
      dg = o[0]!.data,
      du = o[1]!.data;
    for (let k = 0; k < G.length; k++) {
      dg[k] = D[k]! * U[k]! * E.siluGrad(G[k]!);
      du[k] = D[k]! * E.silu(G[k]!);
    }
  },
  sum_to: (i, o) => E.sumTo(i[0]!, o[0]!),
  transpose: (i, o, a) => E.transpose(i[0]!, o[0]!, arr(a, 'perm')),
  slice: (i, o, a) => E.copyBox(i[0]!, o[0]!, arr(a, 'begin'), 'out'),
  pad_slice: (i, o, a) => {
    o[0]!.data.fill(0);
    E.copyBox(o[0]!, i[0]!, arr(a, 'begin'), 'in');
  },
  concat: (i, o, a) => E.concat(i, o[0]!, attrNum(a, 'axis')),
  write_at: (i, o, a) => {
    const src = i[0]!.data,
      dst = o[0]!.data,
      off = attrNum(a, 'offset'),
      blocks = attrNum(a, 'blocks', 1),
      per = src.length / blocks,
      stride = attrNum(a, 'blockStride', per);
    for (let j = 0; j < blocks; j++) for (let k = 0; k < per; k++) dst[off + j * stride + k] = src[j * per + k]!;
  },
  matmul: (i, o, a) => {
    N.matmul(
      i[0]!,
      i[1]!,
      o[0]!,
      flag(a, 'transA', false),
      flag(a, 'transB', false),
      flag(a, 'accumulate', false),
      attrNum(a, 'alpha', 1),
    );
    if (i[2]) N.addBias(o[0]!, i[2]);
  },
  matmul_q8: (i, o) => N.matmulQ8(i[0]!, i[1]!, i[2]!, o[0]!),
  matmul_q4k: (i, o) => N.matmulQ4k(i[0]!, i[1]!, o[0]!),
  matmul_bf16: (i, o) => N.matmulBf16(i[0]!, i[1]!, o[0]!),
  embedding: (i, o) => N.embedding(i[0]!, i[1]!, o[0]!),
  embedding_q8: (i, o) => N.embeddingQ8(i[0]!, i[1]!, i[2]!, o[0]!),
  embedding_q4k: (i, o) => N.embeddingQ4k(i[0]!, i[1]!, o[0]!),
  embedding_bf16: (i, o) => N.embeddingBf16(i[0]!, i[1]!, o[0]!),
  embedding_backward: (i, o, a) => N.embeddingBackward(i[0]!, i[1]!, o[0]!, flag(a, 'accumulate', false)),
  layernorm: (i, o, a) => N.layernorm(i[0]!, i[1]!, i[2]!, o[0]!, o[1]!, o[2]!, attrNum(a, 'eps')),
  layernorm_backward: (i, o, a) =>
    N.layernormBackward(i[0]!, i[1]!, i[2]!, i[3]!, i[4]!, o[0]!, o[1]!, o[2]!, flag(a, 'accumulate', false)),
  rmsnorm: (i, o, a) => N.rmsnorm(i[0]!, i[1]!, o[0]!, o[1]!, attrNum(a, 'eps')),
  rmsnorm_backward: (i, o, a) =>
    N.rmsnormBackward(i[0]!, i[1]!, i[2]!, i[3]!, o[0]!, o[1]!, flag(a, 'accumulate', false)),
  softmax: (i, o) => N.softmax(i[0]!, o[0]!),
  softmax_backward: (i, o) => N.softmaxBackward(i[0]!, i[1]!, o[0]!),
  rope: (i, o, a) =>
    N.rope(
      i[0]!,
      o[0]!,
      ropeInvFreq(a, i[0]!.shape[3]!),
      attrNum(a, 'offset', 0),
      flag(a, 'inverse', false),
      a?.['rowStart'] as readonly number[] | undefined,
    ),
  rope_qkv: (i, o, a) =>
    N.ropeQKV(i[0]!, o[0]!, o[1]!, o[2]!, ropeInvFreq(a, o[0]!.shape[3]!), attrNum(a, 'offset', 0), false, rs(a)),
  rope_qkv_cache: (i, o, a) =>
    N.ropeQKV(i[0]!, o[0]!, o[1]!, o[2]!, ropeInvFreq(a, o[0]!.shape[3]!), attrNum(a, 'offset', 0), true, rs(a)),
  attention: (i, o, a) => {
    const T = i[0]!.shape[1]!,
      S = i[1]!.shape[1]!;
    N.attention(
      i[0]!,
      i[1]!,
      i[2]!,
      o[0]!,
      o[1]!,
      attrNum(a, 'scale'),
      flag(a, 'causal', true),
      attrNum(a, 'qOffset', S - T),
      o[2],
      a?.['rowStart'] as readonly number[] | undefined,
      attrNum(a, 'window', 0),
    );
  },
  attention_backward: (i, o, a) => {
    const T = i[1]!.shape[1]!,
      S = i[2]!.shape[1]!;
    N.attentionBackward(
      i[0]!,
      i[1]!,
      i[2]!,
      i[3]!,
      i[4]!,
      i[5]!,
      o[0]!,
      o[1]!,
      o[2]!,
      attrNum(a, 'scale'),
      flag(a, 'causal', true),
      attrNum(a, 'qOffset', S - T),
      i[6],
      attrNum(a, 'window', 0),
    );
  },
  attention_qkv: (i, o, a) => {
    const Hq = attrNum(a, 'heads');
    N.attentionQKV(
      i[0]!,
      o[0]!,
      o[1]!,
      Hq,
      attrNum(a, 'kvHeads', Hq),
      attrNum(a, 'scale'),
      flag(a, 'causal', true),
      attrNum(a, 'qOffset', 0),
      o[2],
    );
  },
  attention_qkv_backward: (i, o, a) => {
    const Hq = attrNum(a, 'heads');
    N.attentionQKVBackward(
      i[0]!,
      i[1]!,
      i[2]!,
      i[3]!,
      o[0]!,
      Hq,
      attrNum(a, 'kvHeads', Hq),
      attrNum(a, 'scale'),
      flag(a, 'causal', true),
      attrNum(a, 'qOffset', 0),
      i[4],
    );
  },
  cross_entropy: (i, o, a) => N.crossEntropy(i[0]!, i[1]!, o[0]!, o[1]!, attrNum(a, 'ignoreIndex', -100)),
  cross_entropy_backward: (i, o, a) =>
    N.crossEntropyBackward(i[0]!, i[1]!, i[2]!, i[3]!, o[0]!, attrNum(a, 'ignoreIndex', -100)),
  // each element read before it is written, so the logits can be the output
  cross_entropy_backward_inplace: (i, o, a) =>
    N.crossEntropyBackward(o[0]!, i[0]!, i[1]!, i[2]!, o[0]!, attrNum(a, 'ignoreIndex', -100)),
  dropout: (i, o, a) => N.dropout(i[0]!, o[0]!, attrNum(a, 'p'), attrNum(a, 'seed')),
  adamw: (i, o, a) => {
    i.forEach((g, j) =>
      N.adamw(
        g,
        o[3 * j]!,
        o[3 * j + 1]!,
        o[3 * j + 2]!,
        attrNum(a, 'lr'),
        attrNum(a, 'beta1'),
        attrNum(a, 'beta2'),
        attrNum(a, 'eps'),
        attrNum(a, 'weightDecay'),
        attrNum(a, 'step'),
        attrNum(a, 'gradScale', 1),
      ),
    );
  },
  sumsq: (i, o) => {
    let s = 0;
    for (const t of i) for (const x of t.data) s += x * x;
    o[0]!.data[0] = s;
  },
  sample: (i, o, a) => {
    const { o: opts, u, topN, penalties } = sampleAttrs(a);
    sampleKernel(
      i[0]!,
      o[0]!,
      o[1]!,
      opts,
      u,
      topN > 0 ? { n: topN, ids: o[2]!, logprobs: o[3]! } : undefined,
      penalties,
    );
  },
  sum_all: (i, o) => {
    let s = 0;
    for (const t of i) for (const x of t.data) s += x;
    o[0]!.data[0] = s;
  },
};

for (const k of KERNELS) if (!TABLE[k]) throw new Error(`ref backend lacks kernel ${k}`);

export class RefBackend implements Backend {
  readonly name = 'ref';
  readonly dtypes: readonly DType[] = ['f32', 'f64', 'i32'];
  private inUse = 0;
  private peak = 0;

  describe(): string {
    return 'ref (plain TypeScript, 1 thread)';
  }

  alloc(length: number, dtype: DType): RefBuffer {
    this.inUse += length * (dtype === 'f64' ? 8 : 4);
    this.peak = Math.max(this.peak, this.inUse);
    return { backend: 'ref', length, dtype, data: hostArray(dtype, length) };
  }

  free(buf: DeviceBuffer): void {
    const b = this.own(buf);
    this.inUse -= b.length * (b.dtype === 'f64' ? 8 : 4);
    b.data = null;
  }

  write(buf: DeviceBuffer, data: HostArray, offset = 0): void {
    const b = this.own(buf);
    if (offset + data.length > b.length)
      throw new BackendError(
        'E_WRITE',
        `write of ${data.length} elements at ${offset} past the end of a buffer of ${b.length}`,
      );
    const d = b.data!;
    if (d.constructor === data.constructor) (d as Float32Array).set(data as Float32Array, offset);
    else for (let i = 0; i < data.length; i++) d[offset + i] = data[i]!;
  }

  readSync(buf: DeviceBuffer): HostArray {
    return this.own(buf).data!.slice();
  }

  read(buf: DeviceBuffer): Promise<HostArray> {
    return Promise.resolve(this.readSync(buf));
  }

  run(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void {
    const k = TABLE[name];
    if (!k) throw new BackendError('E_KERNEL', `ref backend has no kernel '${name}'`);
    validateKernelCall(name, inputs, outputs, attrs);
    const v = (x: View): RefView => ({ data: this.own(x.buf).data!, shape: x.shape });
    k(inputs.map(v), outputs.map(v), attrs);
  }

  /** Every kernel, for every dtype it stores (the catalogue's dtype rules are checked by the validator). */
  supports(name: string, dtypes?: readonly DType[]): boolean {
    return name in TABLE && (!dtypes || dtypes.every((d) => this.dtypes.includes(d)));
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  memory(): { inUse: number; peak: number; limit: number } {
    return { inUse: this.inUse, peak: this.peak, limit: Number.POSITIVE_INFINITY };
  }

  dispose(): void {}

  private own(buf: DeviceBuffer): RefBuffer {
    const b = buf as RefBuffer;
    if (buf.backend !== 'ref')
      throw new BackendError('E_FOREIGN_BUFFER', `a ${buf.backend} buffer was passed to the ref backend`);
    if (!b.data) throw new BackendError('E_FREED', 'use of a freed buffer');
    return b;
  }
}

/** y[r, j] = act(gu[r, j])·gu[r, F + j]: a gated MLP's activation over one fused gate/up linear's rows [R, 2F]. */
function gatedFused(gu: RefView, out: RefView, act: (x: number) => number): void {
  const G = gu.data,
    y = out.data,
    F = gu.shape[gu.shape.length - 1]! / 2;
  for (let r = 0; r * F < y.length; r++)
    for (let j = 0; j < F; j++) y[r * F + j] = act(G[2 * r * F + j]!) * G[2 * r * F + F + j]!;
}

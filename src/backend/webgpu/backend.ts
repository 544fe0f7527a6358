/**
 * The webgpu backend: kernels in WGSL on a WebGPU device (a browser's `navigator.gpu`; in Chromium on Linux,
 * `--enable-unsafe-webgpu`, SwiftShader when there is no GPU; in Node the `webgpu` package, ./node_gpu.ts). Buffers stay on the device; kernels are recorded into
 * one command encoder and submitted when something needs results; `read` is the only wait. It has no `readSync`:
 * a kernel it does not implement runs on ref as a queued host step (`enqueueHost`, ordered by ../host_queue.ts).
 *
 * Native kernels: ./elementwise.ts (fill, copy, scale, unary maps, broadcasting binary ops, swiglu, swiglu_fused,
 * transpose, sum_to), ./matmul.ts, ./matmul_quant.ts (matmul_q8, matmul_q4k, matmul_bf16), ./norm.ts (layernorm, rmsnorm, softmax, cross-entropy, forward and backward),
 * ./movement.ts (slice, pad_slice, concat, write_at, embedding and its backward), ./optim.ts (adamw),
 * ./attention.ts (attention and the fused-qkv form, forward and backward), ./rope.ts (rope, rope_qkv,
 * rope_qkv_cache), ./reduce.ts (sumsq, sum_all), dropout, ./sample.ts (`sample`: greedy all in WGSL; top-k as the
 * candidates selected in WGSL, ./sample_topk.ts, then ref's float64 draw on them as a host step; top-p / min-p
 * without top-k: the 1024 largest logits and the rest's bounded mass selected in WGSL, then ref's draw on them where
 * the host certifies it ref's (../sample_nucleus.ts), else redrawn; plain temperature
 * drawn in WGSL, ./sample_certified.ts, and certified equal to ref's draw on the host, else redrawn; top
 * alternatives at plain temperature or greedy: the topN candidates selected in WGSL beside that draw (or the argmax),
 * ../sample_topn.ts; with penalties
 * the same on a device copy whose seen ids are masked, then penalised, ./sample_penalty.ts; any other setting
 * ref's sampler on the read-back logits as a host step: its ids must equal ref's float64 draw exactly and WGSL has
 * no f64). `matmulPrecision: 'f16'` makes the matmul kernels round their operands to binary16 (f32 accumulation;
 * ./matmul_wgsl.ts), on tensor cores (./matmul_tc.ts) where the device offers subgroup matrices and the self-check
 * of ./tensor_cores.ts passes at creation (`tensorCores`, and describe(), say which). docs/BACKENDS.md lists the coverage. Buffers come from a caching pool (./buffer_pool.ts; `pool: false` turns
 * it off), within an optional `memoryBudget`.
 */
import type { Attrs, Backend, DeviceBuffer, DType, HostArray, HostIO, View } from '../backend.js';
import { HostStepQueue } from '../host_queue.js';
import { candidateCap, candidateStride, sampleCandidates } from '../sample_candidates.js';
import { CERT_WORDS, certConstants, certifyRows } from '../sample_certified.js';
import { nucleusConstants, nucleusStride, sampleNucleus } from '../sample_nucleus.js';
import {
  penalizedSeenAll,
  penaltyIndex,
  penaltySelectK,
  rawLogprobs,
  sampleCandidatesPenalized,
} from '../sample_penalized.js';
import { sampleNucleusPenalized } from '../sample_penalized_nucleus.js';
import { sampleKernel } from '../sample_rows.js';
import { sampleTopN, topNCap } from '../sample_topn.js';
import { sampleAttrs } from '../sampling.js';
import { validateKernelCall } from '../validate.js';
import { BackendError, ConfigError, OutOfMemoryError } from '../../util/errors.js';
import { size } from '../../util/shape.js';
import { ATTENTION_KERNELS, runAttention } from './attention.js';
import { type CapturedCall, GpuBuf, GpuContext, grid, Params, USAGE } from './core.js';
import { requestWebGpuDevice } from './device.js';
import { ELEMENTWISE_KERNELS, runElementwise } from './elementwise.js';
import type { KView } from './kview.js';
import { runMatmul, type TcUse } from './matmul.js';
import { tcCastCode, tcProductCode } from './matmul_tc.js';
import { type TcSpelling, tensorCoreMatmul } from './matmul_tc_wgsl.js';
import {
  gateTensorCores,
  type TcCheck,
  type TcCheckData,
  type TensorCoreProbe,
  type TensorCoreState,
  tensorCoreNote,
  tensorCoreOffer,
} from './tensor_cores.js';
import { MATMUL_PRECISIONS, type MatmulPrecision } from './matmul_wgsl.js';
import { QUANT_KERNELS, runMatmulQuant } from './matmul_quant.js';
import { MOVEMENT_KERNELS, runMovement } from './movement.js';
import { NORM_KERNELS, runNorm } from './norm.js';
import { runAdamw } from './optim.js';
import { REDUCE_KERNELS, runReduce } from './reduce.js';
import { runRope, runRopeQkv } from './rope.js';
import { SAMPLE_TOPK_MAX, type SamplePlan, runSampleGreedy, samplePlan } from './sample.js';
import { runSampleCertified } from './sample_certified.js';
import { runSamplePenaltyMask, runSamplePenaltyScatter } from './sample_penalty.js';
import { runSampleTopK, runSampleTopKTail } from './sample_topk.js';
import type { GpuBufferLike, GpuDeviceLike } from './types.js';

/** Every kernel this backend runs natively. */
export const WEBGPU_KERNELS: ReadonlySet<string> = new Set<string>([
  ...ELEMENTWISE_KERNELS,
  'matmul',
  ...QUANT_KERNELS,
  ...NORM_KERNELS,
  ...MOVEMENT_KERNELS,
  ...ATTENTION_KERNELS,
  'rope',
  'rope_qkv',
  'rope_qkv_cache',
  ...REDUCE_KERNELS,
  'adamw',
  'sample',
]);

export interface WebGpuBackendOptions {
  /** A WebGPU `gpu` object (default: navigator.gpu, else in Node the `webgpu` package's). */
  gpu?: unknown;
  /**
   * Keep freed buffers for reuse (./buffer_pool.ts; default true). false: every buffer is made with createBuffer and
   * destroyed when freed, as before the pool, for comparison.
   */
  pool?: boolean;
  /**
   * Bytes of storage buffers (live tensors and pooled ones, at their rounded sizes) this backend may hold; past it,
   * alloc empties the pool and tries once more, then throws OutOfMemoryError. Default: no budget (only maxBufferSize
   * per buffer; WebGPU does not say how much memory a device has).
   */
  memoryBudget?: number;
  /**
   * The matmul kernels' operand precision (./matmul_wgsl.ts): 'f32' (default) or 'f16' — every `matmul` call (the
   * linear layers, forward and backward, and the LM head) rounds its operands to binary16 as it loads them and
   * accumulates in f32, the numerics of mixed-precision (autocast) training on tensor cores; attention, norms and
   * the optimizer stay f32. docs/BACKENDS.md, "f16 path".
   */
  matmulPrecision?: MatmulPrecision;
}

/** Usage of every tensor buffer. */
const STORAGE_USAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly dtypes: readonly DType[] = ['f32', 'i32'];
  /**
   * Native kernel calls and host steps (fallbacks) so far; of `sample`'s rows drawn on the host (./sample.ts), those
   * drawn from the device's top-k candidates (greedy rows with topN among them) and those from their full read-back
   * rows; the rows drawn on the device at plain temperature (with topN or not) and certified, and the calls whose rows were not all certified (redrawn from the full rows);
   * the rows with penalties drawn from the candidates of their masked copies (./sample_penalty.ts; also counted in
   * sampleCandidateRows, sampleCertifiedRows or sampleNucleusRows); the bytes those host steps read back; the rows with top-p / min-p
   * without top-k drawn from the device's candidates and certified (../sample_nucleus.ts), and the calls whose rows
   * were not all certified.
   */
  readonly counts = {
    native: 0,
    hostSteps: 0,
    sampleCandidateRows: 0,
    sampleCertifiedRows: 0,
    sampleCertFallbacks: 0,
    sampleFullRows: 0,
    sampleDevicePenaltyRows: 0,
    sampleBytesRead: 0,
    sampleNucleusRows: 0,
    sampleNucleusFallbacks: 0,
  };
  /** A test hook: the factor on the certified draw's bound (../sample_certified.ts); 1 — anything lower is unsound. */
  sampleCertSlack = 1;
  /** The matmul kernels' operand precision (WebGpuBackendOptions.matmulPrecision). */
  readonly matmulPrecision: MatmulPrecision;
  /**
   * The f16 path's tensor cores (./tensor_cores.ts): 'absent' until `checkTensorCores` ran and found them offered,
   * then 'on' (the self-check passed) or 'off' with the reason. Never 'on' for 'f32'.
   */
  tensorCores: TensorCoreState = { status: 'absent', spelling: null, reason: 'not asked (matmul precision f32)' };
  /** matmul calls recorded on the tensor-core kernels (./matmul_tc.ts). */
  tensorCoreCalls = 0;
  /** The self-check's switch: the path every matmul call takes while it runs (null: the usual choice). */
  private tcForce: { tc: TcSpelling } | 'emulated' | null = null;
  private readonly queue = new HostStepQueue();
  private readonly ctx: GpuContext;
  /** runReplay's captured calls, by the caller's (a decode graph's) inputs array; given back when it is collected. */
  private readonly captured = new WeakMap<readonly View[], { call: CapturedCall; plain: () => void }>();
  private readonly capturedGone = new FinalizationRegistry<CapturedCall>((c) => {
    if (!this.disposed) this.queue.device(() => this.ctx.dropCall(c));
  });
  private inUse = 0;
  private peak = 0;
  /** Device bytes of live tensor buffers (rounded to the pool's size classes). */
  private held = 0;
  private readonly budget: number;
  /** The first asynchronous device error (validation, out of memory, device lost), reported by the next read/sync. */
  private deviceError: Error | null = null;
  private disposed = false;
  private readonly io: HostIO = {
    read: (buf) => this.ctx.download(buf as GpuBuf),
    write: (buf, data, offset) => this.ctx.upload(buf as GpuBuf, data, offset ?? 0),
  };

  /** The `gpu` object the device came from (Dawn's instance in Node lives while it is referenced; dispose drops it). */
  private gpu: unknown;

  constructor(
    device: GpuDeviceLike,
    private readonly adapterName: string,
    /** The adapter is WebGPU on the CPU (SwiftShader, lavapipe): correct, not fast. */
    readonly software = false,
    gpu: unknown = null,
    opts: Pick<WebGpuBackendOptions, 'pool' | 'memoryBudget' | 'matmulPrecision'> = {},
  ) {
    this.gpu = gpu;
    this.matmulPrecision = opts.matmulPrecision ?? 'f32';
    if (this.matmulPrecision === 'f16')
      this.tensorCores = { status: 'absent', spelling: null, reason: 'not checked on this device' };
    this.ctx = new GpuContext(device, opts.pool ?? true);
    this.budget = opts.memoryBudget ?? Number.POSITIVE_INFINITY;
    // WebGPU reports a failed createBuffer later (an error scope): the pool is emptied at once, so that the caller's
    // retry (a smaller batch, or the same step again) starts without it, and the next read/sync throws the error
    // (`size`: the bytes createBuffer asked for, the request's size class)
    this.ctx.onOutOfMemory = (size) => {
      const pooled = this.ctx.pool?.empty() ?? 0;
      this.deviceError ??= new OutOfMemoryError('webgpu', size, this.inUse, this.limit(), {
        pooledBytes: pooled,
        limitName: 'not reached: the device refused createBuffer, and the pool was emptied',
      });
    };
    device.addEventListener('uncapturederror', (e) => {
      this.deviceError ??= new BackendError('E_WEBGPU', `webgpu backend: device error: ${e.error.message}`);
    });
    void device.lost.then((info) => {
      if (!this.disposed)
        this.deviceError ??= new BackendError(
          'E_DEVICE_LOST',
          `webgpu backend: device lost (${info.reason}): ${info.message}`,
        );
    });
  }

  describe(): string {
    const f16 =
      this.matmulPrecision === 'f16'
        ? `; matmul operands f16, f32 accumulation; ${tensorCoreNote(this.tensorCores)}`
        : '';
    return `webgpu (${this.adapterName}; ${WEBGPU_KERNELS.size} kernels native, sample's float64 draw on ref${f16})`;
  }

  /** The device's limits (those requested: the adapter's largest). */
  get limits(): GpuDeviceLike['limits'] {
    return this.ctx.device.limits;
  }

  /** A kernel binds each tensor whole: the largest tensor is the smaller of the buffer and binding limits. */
  get maxTensorBytes(): number {
    return this.tensorLimit();
  }

  /** The device's largest tensor (alloc's check: the device's, whatever `maxTensorBytes` is made to say). */
  private tensorLimit(): number {
    return Math.min(this.limits.maxBufferSize, this.limits.maxStorageBufferBindingSize);
  }

  alloc(length: number, dtype: DType): DeviceBuffer {
    if (dtype === 'f64') throw new BackendError('E_DTYPE', 'webgpu backend: f64 buffers exist on the ref backend only');
    const bytes = Math.max(4, length * 4);
    const maxTensor = this.tensorLimit();
    if (bytes > maxTensor)
      throw new OutOfMemoryError('webgpu', bytes, this.inUse, maxTensor, {
        pooledBytes: this.pooledBytes(),
        limitName:
          maxTensor < this.limits.maxBufferSize
            ? "the device's maxStorageBufferBindingSize (one tensor's limit)"
            : "the device's maxBufferSize",
      });
    if (this.budget < Number.POSITIVE_INFINITY && !this.ctx.canReuse(bytes, STORAGE_USAGE)) {
      const size = this.ctx.sizeFor(bytes);
      // PyTorch's way: past the budget, release the cache and try once more
      if (this.held + this.pooledBytes() + size > this.budget) this.emptyCache();
      if (this.held + this.pooledBytes() + size > this.budget)
        throw new OutOfMemoryError('webgpu', bytes, this.inUse, this.budget, {
          pooledBytes: this.pooledBytes(),
          limitName: 'memoryBudget',
        });
    }
    const gpu = this.ctx.createBuffer(bytes, STORAGE_USAGE);
    this.inUse += bytes;
    this.held += gpu.size;
    this.peak = Math.max(this.peak, this.inUse);
    return new GpuBuf(length, dtype, gpu);
  }

  free(buf: DeviceBuffer): void {
    const b = this.own(buf);
    b.freed = true;
    this.inUse -= Math.max(4, b.length * 4);
    this.held -= b.gpu.size;
    this.queue.device(() => {
      b.released = true;
      this.ctx.release(b.gpu);
    });
  }

  write(buf: DeviceBuffer, data: HostArray, offset = 0): void {
    const b = this.own(buf);
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(
        'E_WRITE',
        `webgpu backend: write of ${data.length} elements at ${offset} past the end of a buffer of ${b.length}`,
      );
    const d = this.queue.pending ? data.slice() : data;
    this.queue.device(() => this.ctx.upload(b, d, offset));
  }

  read(buf: DeviceBuffer): Promise<HostArray> {
    const b = this.own(buf);
    return this.queue.after(async () => {
      const out = await this.ctx.download(b);
      await this.ctx.scopesAnswered();
      this.throwDeviceError();
      return out;
    });
  }

  supports(name: string, dtypes?: readonly DType[]): boolean {
    return WEBGPU_KERNELS.has(name) && !dtypes?.includes('f64');
  }

  run(name: string, inputs: readonly View[], outputs: readonly View[], attrs: Attrs = {}): void {
    if (!WEBGPU_KERNELS.has(name)) throw new BackendError('E_KERNEL', `webgpu backend has no kernel '${name}'`);
    validateKernelCall(name, inputs, outputs, attrs);
    this.runUnchecked(name, inputs, outputs, attrs);
  }

  /** The `sample` plans that do not dispatch the greedy kernel, and the method each runs (./sample.ts). */
  private readonly samplers: Record<
    Exclude<SamplePlan, 'greedy'>,
    (this: WebGpuBackend, inputs: readonly View[], outputs: readonly View[], attrs: Attrs) => void
  > = {
    host: this.sampleOnHost,
    topk: this.sampleTopK,
    nucleus: this.sampleNucleus,
    certified: this.sampleCertified,
    topn: this.sampleTopN,
    penalized: this.samplePenalized,
    'penalized-certified': this.samplePenalizedCertified,
    'penalized-nucleus': this.samplePenalizedNucleus,
  };

  /** `run` without `validateKernelCall`, for a call its caller has checked (a decode graph's moving calls). */
  runUnchecked(name: string, inputs: readonly View[], outputs: readonly View[], attrs: Attrs = {}): void {
    if (name === 'sample') {
      const x = inputs[0]!,
        V = x.shape[x.shape.length - 1] ?? 0;
      const plan = samplePlan(outputs.length, attrs, V, V === 0 ? 0 : size(x.shape) / V);
      if (plan !== 'greedy') {
        this.samplers[plan].call(this, inputs, outputs, attrs);
        return;
      }
    }
    this.counts.native++;
    const ins: KView[] = inputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
    const outs: KView[] = outputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
    const at = { ...attrs };
    this.queue.device(() => this.dispatchKernel(name, ins, outs, at));
  }

  /**
   * `run` for a call identical to one `run` accepted (a decode graph's unchanged calls, src/model/decode_graph.ts):
   * the first time its dispatches are captured — pipelines, bind groups, parameter blocks and scratch kept — and
   * every later time (the same `inputs` array) recorded again as they are, with nothing built or checked.
   */
  runReplay(name: string, inputs: readonly View[], outputs: readonly View[], attrs: Attrs = {}): void {
    if (name === 'sample') {
      this.run(name, inputs, outputs, attrs);
      return;
    }
    this.counts.native++;
    let c = this.captured.get(inputs);
    if (!c) {
      const ins: KView[] = inputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
      const outs: KView[] = outputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
      const at = { ...attrs };
      const entry = {
        call: { ready: false, dispatches: [], owned: [] } as CapturedCall,
        // a capture that failed (an error in the kernel's setup) leaves the call unready: run it plainly instead
        plain: () => this.dispatchKernel(name, ins, outs, at),
      };
      this.captured.set(inputs, (c = entry));
      this.capturedGone.register(inputs, entry.call);
      this.queue.device(() => {
        try {
          this.ctx.captureCall(entry.call, entry.plain);
        } catch (e) {
          this.ctx.dropCall(entry.call);
          this.captured.delete(inputs);
          throw e;
        }
      });
      return;
    }
    const { call, plain } = c;
    this.queue.device(() => (call.ready ? this.ctx.replayCall(call) : plain()));
  }

  /** One kernel call's dispatches (the queue has reached it). */
  private dispatchKernel(name: string, ins: KView[], outs: KView[], at: Attrs): void {
    if (name === 'matmul') {
      if (runMatmul(this.ctx, ins, outs, at, this.matmulPrecision, this.tcUse())) this.tensorCoreCalls++;
    } else if (name === 'sample') runSampleGreedy(this.ctx, ins, outs);
    else if (name === 'matmul_q8' || name === 'matmul_q4k' || name === 'matmul_bf16')
      runMatmulQuant(this.ctx, name, ins, outs);
    else if (name === 'adamw') runAdamw(this.ctx, ins, outs, at);
    else if (name === 'rope') runRope(this.ctx, ins, outs, at);
    else if (name === 'rope_qkv' || name === 'rope_qkv_cache')
      runRopeQkv(this.ctx, ins, outs, at, name === 'rope_qkv_cache');
    else if (name === 'sumsq' || name === 'sum_all') runReduce(this.ctx, name, ins, outs);
    else if (name.startsWith('attention')) runAttention(this.ctx, name, ins, outs, at);
    else if ((NORM_KERNELS as readonly string[]).includes(name)) runNorm(this.ctx, name, ins, outs, at);
    else if ((MOVEMENT_KERNELS as readonly string[]).includes(name)) runMovement(this.ctx, name, ins, outs, at);
    else runElementwise(this.ctx, name, ins, outs, at);
  }

  /** The tensor-core kernels a matmul call may take now (the self-check's forced path while it runs). */
  private tcUse(): TcUse | null {
    const f = this.tcForce;
    if (f === 'emulated') return null;
    if (f) return { spelling: f.tc, sel: { ...tensorCoreMatmul, min: 1, minK: 1 } };
    const t = this.tensorCores;
    return t.status === 'on' && t.spelling ? { spelling: t.spelling, sel: tensorCoreMatmul } : null;
  }

  /**
   * Decide whether the f16 path uses tensor cores on this device (./tensor_cores.ts): absent unless the device was
   * made with TC_FEATURES (`features`), else the self-check. Runs before the backend is handed out (createWebGpuBackend);
   * `probe` and `spellings` are for tests (the 'twin' spelling runs on any adapter).
   */
  async checkTensorCores(
    features: readonly string[],
    configs?: Parameters<typeof tensorCoreOffer>[1],
    probe: TensorCoreProbe = this.tcProbe(),
    spellings?: readonly TcSpelling[],
  ): Promise<TensorCoreState> {
    if (this.matmulPrecision !== 'f16') return this.tensorCores;
    const offer = tensorCoreOffer(new Set(features), configs);
    this.ctx.device.pushErrorScope('validation');
    let state = await gateTensorCores(offer, probe, spellings);
    const scoped = await this.ctx.device.popErrorScope().catch((e: Error) => e);
    if (scoped && state.status === 'on')
      state = { status: 'off', spelling: null, reason: `device error during the self-check: ${scoped.message}` };
    this.tensorCores = state;
    return state;
  }

  /** The self-check's device side: compile, cast and run through this backend's own kernels. */
  private tcProbe(): TensorCoreProbe {
    const ctx = this.ctx;
    return {
      compile: async (s) => {
        for (const bias of [false, true])
          for (const acc of [false, true]) {
            const why = await ctx.compileChecked(
              tcProductCode(s, tensorCoreMatmul.rm, tensorCoreMatmul.rn, bias, acc, tensorCoreMatmul.wg),
            );
            if (why) return why;
          }
        return (await ctx.compileChecked(tcCastCode(false))) ?? (await ctx.compileChecked(tcCastCode(true)));
      },
      cast: async (x) => {
        const n = x.length,
          cp = n + (n % 2);
        const X = this.alloc(n, 'f32'),
          H = this.alloc(cp / 2, 'f32');
        try {
          this.write(X, x);
          const p = new Params().u32(1, n, cp, cp / 2, 0);
          const [gx, gy] = grid(Math.ceil(cp / 2 / 256));
          const xb = this.own(X).gpu,
            hb = this.own(H).gpu;
          this.queue.device(() => ctx.dispatch(tcCastCode(false), p, [xb, hb], [gx, gy, 1]));
          const got = (await this.read(H)) as Float32Array;
          return new Uint16Array(got.buffer, got.byteOffset, n).slice();
        } finally {
          this.free(X);
          this.free(H);
        }
      },
      run: (c, d, path) => this.tcCheckRun(c, d, path),
    };
  }

  /** One self-check product through the path `path` (forced), read back. */
  private async tcCheckRun(c: TcCheck, d: TcCheckData, path: { tc: TcSpelling } | 'emulated'): Promise<Float32Array> {
    const pre = c.batches > 1 ? [c.batches] : [];
    const bufs: DeviceBuffer[] = [];
    const put = (x: Float32Array, shape: number[]): View => {
      const buf = this.alloc(x.length, 'f32');
      bufs.push(buf);
      this.write(buf, x);
      return { buf, shape };
    };
    try {
      const A = put(d.a, [...pre, ...(c.transA ? [c.K, c.M] : [c.M, c.K])]);
      const B = put(d.b, [...(c.bShared ? [] : pre), ...(c.transB ? [c.N, c.K] : [c.K, c.N])]);
      const ins = [A, B, ...(d.bias ? [put(d.bias, [c.N])] : [])];
      const O = put(d.prev, [...pre, c.M, c.N]);
      const before = this.tensorCoreCalls;
      this.tcForce = path;
      this.run('matmul', ins, [O], {
        transA: c.transA,
        transB: c.transB,
        alpha: c.alpha,
        accumulate: c.accumulate,
      });
      const out = (await this.read(O.buf)) as Float32Array;
      if (path !== 'emulated' && this.tensorCoreCalls === before)
        throw new BackendError('E_TENSOR_CORES', `check '${c.name}' did not take the tensor-core path`);
      return out;
    } finally {
      this.tcForce = null;
      for (const b of bufs) this.free(b);
    }
  }

  /** `sample` with settings WGSL cannot reproduce exactly (./sample.ts): ref's sampler on the logits, as a host step. */
  private sampleOnHost(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    for (const v of [...inputs, ...outputs]) this.own(v.buf);
    const { o, u, topN, penalties } = sampleAttrs(attrs);
    const x = inputs[0]!,
      outs = sampleOutputs(outputs);
    this.enqueueHost(async (io) => {
      const [ids, probs, topIds, topLp] = outs;
      await this.sampleFull(
        io,
        x,
        ids!,
        probs!,
        o,
        u,
        topN > 0 ? { n: topN, ids: topIds!, logprobs: topLp! } : undefined,
        penalties,
      );
      for (const v of outs) io.write(v.buf, v.data);
    });
  }

  /** ref's sampler on the read-back rows of `x` (in a host step), counted. */
  private async sampleFull(io: HostIO, x: View, ...rest: SampleArgs): Promise<void> {
    const n = size(x.shape);
    const logits = { data: (await io.read(x.buf)).subarray(0, n), shape: x.shape };
    this.counts.sampleBytesRead += n * 4;
    this.counts.sampleFullRows += rest[3].length;
    sampleKernel(logits, ...rest);
  }

  /**
   * `sample` at temperature > 0 with top-k (./sample.ts): each row's candidates selected on the device
   * (./sample_topk.ts), then, as a host step, only they are read back and ref's float64 sampler draws from them
   * (../sample_candidates.ts); a row with more candidates than its slot holds makes it the full rows' draw instead.
   */
  private sampleTopK(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    const { o, u, topN } = sampleAttrs(attrs);
    const x = inputs[0]!,
      V = x.shape[x.shape.length - 1]!,
      N = V === 0 ? 0 : size(x.shape) / V,
      cap = candidateCap(o.topK, SAMPLE_TOPK_MAX);
    this.sampleReduced(
      inputs,
      outputs,
      N * candidateStride(cap),
      (logits, slots) => runSampleTopK(this.ctx, logits, slots, N, V, o.topK, cap),
      async (w, [ids, probs, topIds, topLp], io) => {
        const top = topN > 0 ? { n: topN, ids: topIds!, logprobs: topLp! } : undefined;
        if (sampleCandidates(w, V, cap, ids!, probs!, o, u, top)) this.counts.sampleCandidateRows += N;
        else await this.sampleFull(io, x, ids!, probs!, o, u, top);
      },
    );
  }

  /**
   * `sample` with top-p and/or min-p but no top-k the device selects (./sample.ts): each row's SAMPLE_TOPK_MAX
   * largest logits and the rest's mass selected on the device (./sample_topk.ts), then, as a host step, only they
   * are read back, certified and drawn from by ref's float64 sampler (../sample_nucleus.ts); a row not certified
   * makes it the full rows' draw instead.
   */
  private sampleNucleus(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    const { o, u, topN } = sampleAttrs(attrs);
    const x = inputs[0]!,
      V = x.shape[x.shape.length - 1]!,
      N = size(x.shape) / V,
      cap = SAMPLE_TOPK_MAX,
      c = nucleusConstants(o.temperature, V);
    this.sampleReduced(
      inputs,
      outputs,
      N * nucleusStride(cap),
      (logits, slots) => runSampleTopKTail(this.ctx, logits, slots, N, V, cap, c),
      async (w, [ids, probs, topIds, topLp], io) => {
        const top = topN > 0 ? { n: topN, ids: topIds!, logprobs: topLp! } : undefined;
        if (sampleNucleus(w, V, cap, ids!, probs!, o, u, top)) this.counts.sampleNucleusRows += N;
        else {
          this.counts.sampleNucleusFallbacks++;
          await this.sampleFull(io, x, ids!, probs!, o, u, top);
        }
      },
    );
  }

  /**
   * `sample` at plain temperature (./sample.ts): the draw in WGSL (./sample_certified.ts), then, as a host step, 48
   * bytes a row read back and certified equal to ref's draw (../sample_certified.ts); a row not certified makes it
   * the full rows' draw instead.
   */
  private sampleCertified(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    const { o, u } = sampleAttrs(attrs);
    const x = inputs[0]!,
      V = x.shape[x.shape.length - 1]!,
      N = size(x.shape) / V,
      c = certConstants(o.temperature, V),
      slack = this.sampleCertSlack,
      words = N * CERT_WORDS;
    this.sampleReduced(
      inputs,
      outputs,
      words,
      (logits, res) => runSampleCertified(this.ctx, logits, res, N, V, c, u),
      async (w, [ids, probs], io) => {
        const bits = new Uint32Array(w.buffer, w.byteOffset, words);
        if (certifyRows(bits, V, o, u, ids!, probs!, slack)) this.counts.sampleCertifiedRows += N;
        else {
          this.counts.sampleCertFallbacks++;
          await this.sampleFull(io, x, ids!, probs!, o, u);
        }
      },
    );
  }

  /**
   * `sample` with top alternatives at temperature 0 or plain temperature (./sample.ts): each row's candidates for
   * k = topN selected on the device (./sample_topk.ts) and, at plain temperature, the certified draw
   * (./sample_certified.ts) into the same buffer before them; then, as one host step, both read back, the draw
   * certified (../sample_certified.ts) and the alternatives (and at temperature 0 the argmax) taken from the
   * candidates (../sample_topn.ts); a row not certified or a slot that overflowed makes it the full rows' draw.
   */
  private sampleTopN(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    const { o, u, topN } = sampleAttrs(attrs);
    const x = inputs[0]!,
      V = x.shape[x.shape.length - 1]!,
      N = size(x.shape) / V,
      greedy = o.temperature === 0,
      cap = topNCap(topN),
      base = greedy ? 0 : N * CERT_WORDS,
      c = certConstants(greedy ? 1 : o.temperature, V),
      slack = this.sampleCertSlack;
    this.sampleReduced(
      inputs,
      outputs,
      base + N * candidateStride(cap),
      (logits, res) => {
        if (!greedy) runSampleCertified(this.ctx, logits, res, N, V, c, u);
        runSampleTopK(this.ctx, logits, res, N, V, topN, cap, base);
      },
      async (w, [ids, probs, topIds, topLp], io) => {
        const top = { n: topN, ids: topIds!, logprobs: topLp! };
        const drawn =
          greedy || certifyRows(new Uint32Array(w.buffer, w.byteOffset, base), V, o, u, ids!, probs!, slack);
        if (drawn && sampleTopN(w, base, N, cap, top, ids!, probs!, greedy)) {
          if (greedy) this.counts.sampleCandidateRows += N;
          else this.counts.sampleCertifiedRows += N;
        } else {
          if (!greedy) this.counts.sampleCertFallbacks++;
          await this.sampleFull(io, x, ids!, probs!, o, u, top);
        }
      },
    );
  }

  /**
   * `sample` with penalties and a top-k (or temperature 0; ./sample.ts): the logits copied, each row's seen ids masked
   * to −∞ in the copy and their raw logits gathered (./sample_penalty.ts), the copy's candidates selected
   * (./sample_topk.ts); then, as a host step, the candidates and the gathered logits are read back and ref's float64
   * sampler draws from them with the seen ids' penalised logits (../sample_penalized.ts, which says why that is ref's
   * draw); a slot that overflowed makes it the full rows' draw instead.
   */
  private samplePenalized(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    const { o, u, topN, penalties } = sampleAttrs(attrs);
    const x = inputs[0]!,
      V = x.shape[x.shape.length - 1]!,
      N = V === 0 ? 0 : size(x.shape) / V,
      k = penaltySelectK(o, topN),
      cap = candidateCap(k, SAMPLE_TOPK_MAX);
    this.samplePenaltyMasked(inputs, outputs, attrs, N * candidateStride(cap), {
      select: (copy, res) => runSampleTopK(this.ctx, copy, res, N, V, k, cap),
      draw: (w, slots, index, ids, probs, top) =>
        sampleCandidatesPenalized(w, V, cap, slots, index, penalties!, ids, probs, o, u, top),
      drawn: () => {
        this.counts.sampleCandidateRows += N;
      },
    });
  }

  /**
   * `sample` with penalties and top-p and/or min-p but no top-k (./sample.ts): the logits copied, each row's seen ids
   * masked in the copy and their raw logits gathered (./sample_penalty.ts), the copy's SAMPLE_TOPK_MAX largest and
   * tail sums selected (./sample_topk.ts `runSampleTopKTail`); then, as a host step, those and the gathered logits
   * are read back, certified and drawn from by ref's float64 sampler with the seen ids penalised
   * (../sample_penalized_nucleus.ts); a row not certified makes it the full rows' draw instead.
   */
  private samplePenalizedNucleus(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    const { o, u, penalties } = sampleAttrs(attrs);
    const x = inputs[0]!,
      V = x.shape[x.shape.length - 1]!,
      N = size(x.shape) / V,
      cap = SAMPLE_TOPK_MAX,
      c = nucleusConstants(o.temperature, V);
    this.samplePenaltyMasked(inputs, outputs, attrs, N * nucleusStride(cap), {
      select: (copy, res) => runSampleTopKTail(this.ctx, copy, res, N, V, cap, c),
      draw: (w, slots, index, ids, probs, top) =>
        sampleNucleusPenalized(w, V, cap, slots, index, penalties!, ids, probs, o, u, top),
      drawn: () => {
        this.counts.sampleNucleusRows += N;
      },
      fellBack: () => {
        this.counts.sampleNucleusFallbacks++;
      },
    });
  }

  /**
   * The two penalty paths' shared plumbing: the logits copied and each row's seen ids masked in the copy, their raw
   * logits gathered after the `slots` words of the selection (./sample_penalty.ts); `select` then picks from the copy;
   * as a host step `draw` samples from what was read back, else (false: a row not certified) the full rows' draw.
   */
  private samplePenaltyMasked(
    inputs: readonly View[],
    outputs: readonly View[],
    attrs: Attrs,
    slots: number,
    path: {
      select: (copy: GpuBufferLike, res: GpuBufferLike) => void;
      draw: (
        w: Int32Array,
        slots: number,
        index: ReturnType<typeof penaltyIndex>,
        ids: SampleOut,
        probs: SampleOut,
        top: { n: number; ids: SampleOut; logprobs: SampleOut } | undefined,
      ) => boolean;
      drawn: () => void;
      fellBack?: () => void;
    },
  ): void {
    const { o, u, topN, penalties } = sampleAttrs(attrs);
    const x = inputs[0]!,
      V = x.shape[x.shape.length - 1]!,
      N = V === 0 ? 0 : size(x.shape) / V,
      index = penaltyIndex(penalties, N, V);
    this.own(x.buf);
    const copy = this.alloc(Math.max(1, N * V), 'f32') as GpuBuf;
    this.sampleReduced(
      inputs,
      outputs,
      slots + index.flat.length,
      (logits, res) => {
        runSamplePenaltyMask(this.ctx, logits, copy.gpu, N * V, index.flat, res, slots);
        path.select(copy.gpu, res);
      },
      async (w, [ids, probs, topIds, topLp], io) => {
        const top = topN > 0 ? { n: topN, ids: topIds!, logprobs: topLp! } : undefined;
        if (path.draw(w, slots, index, ids!, probs!, top)) {
          path.drawn();
          this.counts.sampleDevicePenaltyRows += N;
        } else {
          path.fellBack?.();
          await this.sampleFull(io, x, ids!, probs!, o, u, top, penalties);
        }
      },
    );
    this.free(copy);
  }

  /**
   * `sample` with penalties at plain temperature (./sample.ts), in two phases: the logits copied, the seen ids masked
   * in the copy and their raw logits gathered, the masked copy's lse (./sample_penalty.ts, ./sample_topk.ts with one
   * candidate a row); a host step reads back those (16 bytes a row, 4 a seen id), computes the seen ids' penalised
   * logits (penalizeRow's arithmetic) and writes them into the copy; the certified draw runs on it
   * (./sample_certified.ts) and a second host step certifies it and makes the logprobs the raw rows'
   * (../sample_penalized.ts). One more host round trip than without penalties; a row not certified (or a
   * non-finite lse) makes it the full rows' draw.
   */
  private samplePenalizedCertified(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    const { o, u, penalties } = sampleAttrs(attrs);
    for (const v of [...inputs, ...outputs]) this.own(v.buf);
    const x = inputs[0]!,
      xb = this.own(x.buf),
      V = x.shape[x.shape.length - 1]!,
      N = size(x.shape) / V,
      index = penaltyIndex(penalties, N, V),
      M = index.flat.length,
      stride = candidateStride(1),
      c = certConstants(o.temperature, V),
      slack = this.sampleCertSlack,
      outs = sampleOutputs(outputs);
    const copy = this.alloc(N * V, 'f32') as GpuBuf,
      first = this.alloc(N * stride + M, 'i32') as GpuBuf,
      values = this.alloc(Math.max(1, M), 'f32') as GpuBuf,
      res = this.alloc(N * CERT_WORDS, 'i32') as GpuBuf;
    let seen: ReturnType<typeof penalizedSeenAll> = null,
      raw = new Float32Array(0);
    this.counts.native += 2;
    this.queue.device(() => {
      runSamplePenaltyMask(this.ctx, xb.gpu, copy.gpu, N * V, index.flat, first.gpu, N * stride);
      runSampleTopK(this.ctx, copy.gpu, first.gpu, N, V, 1, 1);
    });
    this.enqueueHost(async (io) => {
      const w = (await io.read(first)) as Int32Array;
      this.counts.sampleBytesRead += (N * stride + M) * 4;
      seen = penalizedSeenAll(w, stride, N * stride, index, penalties!, N, V);
      raw = new Float32Array(w.buffer, w.byteOffset + N * stride * 4, M).slice();
      if (seen) io.write(values, seen.pen);
    });
    this.queue.device(() => {
      runSamplePenaltyScatter(this.ctx, index.flat, values.gpu, copy.gpu);
      runSampleCertified(this.ctx, copy.gpu, res.gpu, N, V, c, u);
    });
    this.enqueueHost(async (io) => {
      const [ids, probs] = outs;
      let done = false;
      if (seen) {
        const w = (await io.read(res)) as Int32Array;
        this.counts.sampleBytesRead += N * CERT_WORDS * 4;
        const bits = new Uint32Array(w.buffer, w.byteOffset, N * CERT_WORDS);
        if (certifyRows(bits, V, o, u, ids!, probs!, slack)) {
          rawLogprobs(ids!, probs!, index, raw, seen, N, V);
          this.counts.sampleCertifiedRows += N;
          this.counts.sampleDevicePenaltyRows += N;
          done = true;
        } else this.counts.sampleCertFallbacks++;
      }
      if (!done) await this.sampleFull(io, x, ids!, probs!, o, u, undefined, penalties);
      for (const v of outs) io.write(v.buf, v.data);
    });
    for (const b of [copy, first, values, res]) this.free(b);
  }

  /**
   * A `sample` reduced on the device: `dispatch` writes `words` i32 words a call from the logits (one native call),
   * then a host step reads them back and `draw` fills the outputs' host arrays (falling back to `sampleFull` where it
   * must), which are written to their buffers.
   */
  private sampleReduced(
    inputs: readonly View[],
    outputs: readonly View[],
    words: number,
    dispatch: (logits: GpuBufferLike, out: GpuBufferLike) => void,
    draw: (w: Int32Array, outs: SampleOut[], io: HostIO) => Promise<void>,
  ): void {
    for (const v of [...inputs, ...outputs]) this.own(v.buf);
    const xb = this.own(inputs[0]!.buf),
      outs = sampleOutputs(outputs);
    const res = this.alloc(words, 'i32') as GpuBuf;
    this.counts.native++;
    this.queue.device(() => dispatch(xb.gpu, res.gpu));
    this.enqueueHost(async (io) => {
      const w = (await io.read(res)) as Int32Array;
      this.counts.sampleBytesRead += words * 4;
      await draw(w, outs, io);
      for (const v of outs) io.write(v.buf, v.data);
    });
    this.free(res);
  }

  enqueueHost(step: (io: HostIO) => Promise<void>): void {
    this.counts.hostSteps++;
    this.queue.host(() => step(this.io));
  }

  async sync(): Promise<void> {
    await this.queue.settled();
    this.ctx.flush();
    await this.ctx.device.queue.onSubmittedWorkDone();
    await this.ctx.scopesAnswered();
    this.throwDeviceError();
  }

  /**
   * Bytes of live tensors (as asked for) and their peak; `limit`: the memory budget where one was set, else the
   * device's maxBufferSize (the largest one buffer may be); `pooled`: bytes the buffer pool holds idle (uniform and
   * staging buffers included), reusable, released by emptyCache.
   */
  memory(): { inUse: number; peak: number; limit: number; pooled: number } {
    return { inUse: this.inUse, peak: this.peak, limit: this.limit(), pooled: this.pooledBytes() };
  }

  /**
   * Dispatches and submits recorded so far (tests check the work ran on the device); `buffersCreated`: every
   * device.createBuffer call (storage, scratch, uniform, staging); `bindGroupsCreated`: every device.createBindGroup
   * call (the other dispatches found theirs in ./core.ts's cache); `poolHits`/`poolMisses`: requests the pool served
   * from idle buffers / with a new one (0 with `pool: false`).
   */
  stats(): {
    dispatches: number;
    submits: number;
    buffersCreated: number;
    bindGroupsCreated: number;
    poolHits: number;
    poolMisses: number;
  } {
    const p = this.ctx.pool;
    return {
      dispatches: this.ctx.dispatches,
      submits: this.ctx.submits,
      buffersCreated: this.ctx.created,
      bindGroupsCreated: this.ctx.bindGroupsCreated,
      poolHits: p?.hits ?? 0,
      poolMisses: p?.misses ?? 0,
    };
  }

  /**
   * Destroy every buffer the pool holds idle (PyTorch's torch.cuda.empty_cache()); the bytes released. Buffers freed
   * while recorded work still uses them join the pool after that work is submitted, so a sync() first releases all.
   */
  emptyCache(): number {
    return this.ctx.pool?.empty() ?? 0;
  }

  private pooledBytes(): number {
    return this.ctx.pool?.pooledBytes ?? 0;
  }

  private limit(): number {
    return Number.isFinite(this.budget) ? this.budget : this.ctx.device.limits.maxBufferSize;
  }

  dispose(): void {
    this.disposed = true;
    this.ctx.device.destroy();
    this.gpu = null;
  }

  private throwDeviceError(): void {
    const e = this.deviceError;
    if (e) {
      this.deviceError = null;
      throw e;
    }
  }

  private own(buf: DeviceBuffer): GpuBuf {
    if (!(buf instanceof GpuBuf))
      throw new BackendError('E_FOREIGN_BUFFER', `a ${buf.backend} buffer was passed to the webgpu backend`);
    if (buf.freed) throw new BackendError('E_FREED', 'webgpu backend: use of a freed buffer');
    return buf;
  }
}

/** sampleKernel's arguments after the logits. */
type SampleArgs = Parameters<typeof sampleKernel> extends [unknown, ...infer R] ? R : never;

/** A host array for one of `sample`'s outputs, written back to its buffer after the host step. */
type SampleOut = { buf: DeviceBuffer; data: Int32Array | Float32Array };

/** Host arrays for `sample`'s outputs. */
function sampleOutputs(outputs: readonly View[]): SampleOut[] {
  return outputs.map((v) => ({
    buf: v.buf,
    data: v.buf.dtype === 'i32' ? new Int32Array(size(v.shape)) : new Float32Array(size(v.shape)),
  }));
}

/**
 * Create the webgpu backend on the adapter WebGPU offers for `high-performance` (navigator.gpu, or in Node the
 * `webgpu` package: ./device.ts); BackendError E_NO_WEBGPU / E_NO_ADAPTER if none.
 */
export async function createWebGpuBackend(opts: Readonly<Record<string, unknown>> = {}): Promise<WebGpuBackend> {
  const o = opts as WebGpuBackendOptions;
  if (o.memoryBudget !== undefined && !(o.memoryBudget > 0))
    throw new BackendError(
      'E_OPTION',
      `webgpu backend: memoryBudget must be a positive number of bytes, not ${o.memoryBudget}`,
    );
  if (o.matmulPrecision !== undefined && !MATMUL_PRECISIONS.includes(o.matmulPrecision))
    throw new ConfigError(
      'matmulPrecision',
      `webgpu backend: expected one of ${MATMUL_PRECISIONS.join(', ')}, got ${JSON.stringify(o.matmulPrecision)}`,
    );
  const f16 = o.matmulPrecision === 'f16';
  const { device, adapter, adapterName, software, gpu, features } = await requestWebGpuDevice(o.gpu, { f16 });
  const be = new WebGpuBackend(device, adapterName, software, gpu, {
    pool: o.pool,
    memoryBudget: o.memoryBudget,
    matmulPrecision: o.matmulPrecision,
  });
  // the f16 path: tensor cores only where the device has the features and the self-check passes (./tensor_cores.ts)
  if (!f16) return be;
  const s = await be.checkTensorCores(features, adapter.info?.subgroupMatrixConfigs);
  if (s.status !== 'off' || !(await lostSoon(device))) return be;
  // a kernel that took the device down with it: a new device, without the features, the emulated f16 kernels
  be.dispose();
  const d = await requestWebGpuDevice(o.gpu, { f16: false });
  const again = new WebGpuBackend(d.device, d.adapterName, d.software, d.gpu, {
    pool: o.pool,
    memoryBudget: o.memoryBudget,
    matmulPrecision: o.matmulPrecision,
  });
  again.tensorCores = { ...s, reason: `${s.reason} (the device was lost: made again without tensor cores)` };
  return again;
}

/** Whether `device` is lost, or is within `ms` (a failed self-check may have lost it: the loss is reported late). */
async function lostSoon(device: GpuDeviceLike, ms = 50): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const lost = await Promise.race([device.lost.then(() => true), later]);
  clearTimeout(timer);
  return lost;
}

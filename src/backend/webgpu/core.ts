/**
 * WebGPU memory and dispatch for the webgpu backend: storage buffers, one command encoder and compute pass that
 * kernels record into until something needs the results (a read or a sync), and readback through a mappable staging
 * buffer. Every kernel's scalar parameters travel as 32-bit words (`Params`), read in WGSL with
 * `pu(i)` / `pi(i)` / `pf(i)` from the uniform block at binding 0 (see `prelude`).
 *
 * Recording a dispatch is kept to a few cheap host steps (a training step records hundreds; a GPU runs each in
 * microseconds, so what the host spends building them is the step's floor):
 *  - pipelines are cached by (WGSL string, parameter slots): the kernel's code string is the key as it is, without
 *    the prelude prepended per call, and kernel files build each distinct shader once (./wgsl_memo.ts), so the lookup
 *    finds the same string object without hashing a new one;
 *  - layouts are explicit, one per binding signature (uniform with a dynamic offset, then read or read_write storage
 *    buffers as the WGSL declares them), shared by every pipeline with that signature;
 *  - parameters go into a host-side mirror of one uniform ring buffer, each dispatch in its own 256-byte slot (or
 *    several: `SLOT`, WebGPU's largest minUniformBufferOffsetAlignment), written to the GPU with one
 *    `queue.writeBuffer` at flush, just before the submit (a queue write lands before any command buffer submitted
 *    after it, and after every one submitted before, so the same ring serves every command buffer in turn). A full
 *    ring submits what is recorded and is replaced by one twice as large;
 *  - bind groups are cached by (layout, uniform buffer, slots, storage buffers) and bound with the slot's dynamic
 *    offset, so a training loop whose tensors get the same pooled buffers step after step reuses them. A buffer that
 *    is destroyed (no pool, or the pool emptied) takes its bind groups out of the cache first; a buffer handed by the
 *    pool to another tensor keeps them (they name the GPU buffer, which still exists, not the tensor).
 * A captured call (`captureCall`, for decode graphs) does not use the ring: each of its dispatches gets its own
 * uniform buffer and bind group, kept unchanged for its replays until `dropCall`.
 *
 * Ordering: dispatches in one compute pass see each other's writes in order; `queue.writeBuffer` runs before any
 * command buffer submitted after it, so a host write while work is recorded goes through an idle staging buffer and a
 * copy recorded in order (`upload`), and the uniform ring is written just before its submit. Buffers freed while
 * recorded work may use them are destroyed after the next submit — or, with the buffer pool (./buffer_pool.ts, the
 * default), kept for reuse: a captured call's uniform blocks, constant tables and the upload staging buffers (written
 * with `queue.writeBuffer` into an idle pooled buffer, which lands before this encoder and after every earlier user)
 * after the next submit; tensor storage and scratch at once (the next writer is a dispatch or copy recorded after the
 * earlier users, so a backward pass recorded as one encoder reuses its temporaries: GPT-2 at B16 T1024 needs 21 GB
 * of device buffers instead of 29, bench/lab/webgpu-memory.mjs); the readback staging buffers once unmapped.
 */
import type { DeviceBuffer, DType, HostArray } from '../backend.js';
import { BackendError } from '../../util/errors.js';
import { BufferPool, pooledSize } from './buffer_pool.js';
import type {
  GpuBindGroupLayoutLike,
  GpuBufferLike,
  GpuCommandEncoderLike,
  GpuComputePassLike,
  GpuComputePipelineLike,
  GpuDeviceLike,
} from './types.js';

/** GPUBufferUsage and GPUMapMode flags (WebGPU spec). */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_MODE_READ = 0x1;

/** Threads per workgroup of the elementwise and row kernels. */
export const WG = 256;

export class GpuBuf implements DeviceBuffer {
  readonly backend = 'webgpu';
  /** free() was called (later calls are errors); its release waits in the queue behind earlier work. */
  freed = false;
  /** The GPU buffer was released (a host step queued before the free may still read it until then). */
  released = false;
  constructor(
    readonly length: number,
    readonly dtype: DType,
    readonly gpu: GpuBufferLike,
  ) {}
}

const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);

/** Scalar kernel parameters as 32-bit words: u32, i32 and f32 (bits). */
export class Params {
  readonly words: number[] = [];
  u32(...xs: number[]): this {
    for (const x of xs) this.words.push(x >>> 0);
    return this;
  }
  i32(...xs: number[]): this {
    for (const x of xs) this.words.push(x | 0);
    return this;
  }
  f32(...xs: number[]): this {
    for (const x of xs) {
      F32[0] = x;
      this.words.push(F32_BITS[0]!);
    }
    return this;
  }
}

/**
 * Bytes of one parameter slot of the uniform ring: 256, WebGPU's largest minUniformBufferOffsetAlignment (every
 * device accepts offsets that are multiples of it). A dispatch with more than 64 words takes several slots.
 */
export const SLOT = 256;
const SLOT_WORDS = SLOT / 4;
/** The most slots one parameter block may take: maxUniformBufferBindingSize's default, 64 KiB. */
const MAX_SLOTS = 65536 / SLOT;
/** Slots of the first uniform ring (a full ring is replaced by one twice as large). */
const RING_SLOTS = 1024;
/** Cached bind groups past which the cache starts over (a bound on what shapes that never recur can leave there). */
const MAX_GROUPS = 8192;

const preludes: string[] = [];
/** WGSL shared by every kernel: the parameter block (binding 0) of `nVec4` vec4s and its readers. */
export function prelude(nVec4: number): string {
  const n = Math.max(1, nVec4);
  return (preludes[n] ??= `@group(0) @binding(0) var<uniform> P: array<vec4<u32>, ${n}>;
fn pu(i: u32) -> u32 { return P[i / 4u][i % 4u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
`);
}

/** A storage binding's WGSL declaration. */
export function storage(binding: number, name: string, type: 'f32' | 'i32', write: boolean): string {
  return `@group(0) @binding(${binding}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${type}>;\n`;
}

/** The WGSL element type of a dtype (f64 never reaches this backend). */
export function wgslType(d: DType): 'f32' | 'i32' {
  return d === 'i32' ? 'i32' : 'f32';
}

/** Workgroup counts covering `n` groups in x, then y (x ≤ 65535). Shaders rebuild the flat index from num_workgroups. */
export function grid(groups: number): [number, number] {
  const g = Math.max(1, groups);
  const x = Math.min(g, 65535);
  return [x, Math.ceil(g / x)];
}

/** WGSL: the flat workgroup id of a 2-D grid from `grid`. */
export const FLAT_GROUP = 'let grp = wid.y * nwg.x + wid.x;';
/** WGSL: one thread per element, `e` its index, past parameter 0 (the element count) nothing to do. */
export const FLAT_ELEMENT = `${FLAT_GROUP}
  let e = grp * ${WG}u + lid;
  if (e >= pu(0u)) { return; }`;
export const BUILTINS =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';

/**
 * One kernel call's dispatches, kept for replays (a decode graph's unchanged calls: src/model/decode_graph.ts): the
 * pipelines, bind groups and workgroup counts, and the buffers the call made for itself (its parameter blocks,
 * scratch, tables), held until `dropCall`. A replay records the same dispatches again without building anything.
 */
export interface CapturedCall {
  ready: boolean;
  dispatches: { pipe: GpuComputePipelineLike; group: unknown; groups: readonly number[] }[];
  owned: GpuBufferLike[];
}

/** A compiled kernel: its pipeline, and the bind group layout of its binding signature. */
interface Kernel {
  pipe: GpuComputePipelineLike;
  layout: BindLayout;
}

/** An explicit bind group layout: binding 0 the uniform block (dynamic offset), then `storage` storage buffers. */
interface BindLayout {
  id: number;
  group: GpuBindGroupLayoutLike;
  pipeline: unknown;
  storage: number;
}

/**
 * `code` after the parameter block's prelude, its leading `enable …;` directives (which WGSL wants before any
 * declaration) first. Code without directives is the prelude and the code, as it always was.
 */
export function withPrelude(code: string, slots: number): string {
  const m = /^(?:enable [^;]+;\s*)+/.exec(code);
  return m ? m[0] + prelude((slots * SLOT) / 16) + code.slice(m[0].length) : prelude((slots * SLOT) / 16) + code;
}

/** `@binding(k) var<storage, read|read_write>` declarations of group 0. */
const STORAGE_DECL = /@binding\((\d+)\)\s*var<storage,\s*(read_write|read)>/g;

/** The storage bindings a shader declares, 1, 2, … in order: 'w' read_write, 'r' read (BackendError on a gap). */
function storageSignature(code: string): string {
  const access: string[] = [];
  for (const m of code.matchAll(STORAGE_DECL)) access[Number(m[1]) - 1] = m[2] === 'read' ? 'r' : 'w';
  for (let k = 0; k < access.length; k++)
    if (access[k] === undefined)
      throw new BackendError('E_WEBGPU_SHADER', `webgpu backend: a kernel's storage bindings skip binding ${k + 1}`);
  return access.join('');
}

/** The uniform ring's dynamic offset, passed to setBindGroup without a new array per dispatch. */
const DYNAMIC_OFFSET = [0];

export class GpuContext {
  /** Kernels by parameter slots, then by WGSL source (without the prelude). */
  private readonly kernels: Map<string, Kernel>[] = [];
  /** Bind group layouts (and their pipeline layouts) by storage signature. */
  private readonly layouts = new Map<string, BindLayout>();
  /** Cached bind groups by `layout:uniform buffer:slots:storage buffers` (ids of `idOf`). */
  private groups = new Map<string, unknown>();
  /** The cache keys naming each buffer, taken out when it is destroyed. */
  private groupsOf = new WeakMap<GpuBufferLike, string[]>();
  private readonly ids = new WeakMap<GpuBufferLike, number>();
  private nextId = 0;
  /** The uniform ring (made at the first dispatch), its host mirror, and the bytes of it this encoder uses. */
  private ring: GpuBufferLike | null = null;
  private mirror = new Uint32Array(0);
  private ringUsed = 0;
  /** The ring filled up since it was made: the next one is twice as large. */
  private ringFull = false;
  /** The call being captured (`captureCall`): what it dispatches and the buffers it makes are kept there. */
  private capturing: CapturedCall | null = null;
  private encoder: GpuCommandEncoderLike | null = null;
  private pass: GpuComputePassLike | null = null;
  /** The pipeline the open pass has set last (a dispatch of the same kernel does not set it again). */
  private passPipe: GpuComputePipelineLike | null = null;
  /** Freed buffers the recorded work uses: destroyed after it is submitted (no pool). */
  private doomed: GpuBufferLike[] = [];
  /** Pooled buffers the recorded work uses: back to the pool after it is submitted. */
  private recycled: GpuBufferLike[] = [];
  /**
   * Usages of the pooled buffers that `queue.writeBuffer` fills (`pooledWith`: uniform blocks, constant tables, upload
   * staging). A queue write lands before the open encoder, so such a buffer freed while recorded work uses it waits
   * for the submit. Any other pooled buffer (a tensor's storage, scratch, readback staging) is next written by
   * recorded work — a dispatch or a copy, which runs after the earlier users in the same encoder — and a host write
   * into it while an encoder is open goes through staging and a recorded copy (`upload`): it is reusable at once, so
   * the temporaries of one long encoder (a whole backward pass) share buffers instead of each taking a new one.
   */
  private readonly hostWritten = new Set<number>();
  /** The buffer pool; null with `pool: false` (every buffer made new and destroyed). */
  readonly pool: BufferPool | null;
  /** Largest buffer a size class may round up to (a binding must fit maxStorageBufferBindingSize). */
  private readonly cap: number;
  /** Dispatches recorded since the backend started (tests and describe). */
  dispatches = 0;
  submits = 0;
  /** device.createBuffer calls so far, of every kind (storage, scratch, uniform, staging). */
  created = 0;
  /** device.createBindGroup calls so far (the rest of the dispatches found theirs in the cache). */
  bindGroupsCreated = 0;
  /**
   * Called when the device reports that a storage buffer of `size` bytes could not be made (WebGPU says so
   * asynchronously, through an 'out-of-memory' error scope around createBuffer).
   */
  onOutOfMemory: ((size: number) => void) | null = null;
  /** Out-of-memory scopes not answered yet. */
  private readonly scopes = new Set<Promise<void>>();

  constructor(
    readonly device: GpuDeviceLike,
    pooled = true,
  ) {
    this.pool = pooled
      ? new BufferPool(
          (size, usage) => this.make(size, usage),
          (b) => this.destroy(b),
        )
      : null;
    this.cap = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
  }

  /** A new GPU buffer of `size` bytes (storage buffers inside an out-of-memory error scope). */
  private make(size: number, usage: number, mappedAtCreation = false): GpuBufferLike {
    this.created++;
    const watch = this.onOutOfMemory !== null && (usage & USAGE.STORAGE) !== 0;
    if (watch) this.device.pushErrorScope('out-of-memory');
    const b = this.device.createBuffer({ size, usage, ...(mappedAtCreation ? { mappedAtCreation } : {}) });
    if (watch) {
      const p = this.device.popErrorScope().then(
        (e) => {
          if (e) this.onOutOfMemory?.(size);
        },
        () => {},
      );
      this.scopes.add(p);
      void p.then(() => this.scopes.delete(p));
    }
    return b;
  }

  /** Destroy `b`, first taking the bind groups that name it out of the cache. */
  private destroy(b: GpuBufferLike): void {
    const keys = this.groupsOf.get(b);
    if (keys) {
      for (const k of keys) this.groups.delete(k);
      this.groupsOf.delete(b);
    }
    b.destroy();
  }

  /** Resolves when every out-of-memory scope opened so far has answered (a read or sync reports what they found). */
  async scopesAnswered(): Promise<void> {
    while (this.scopes.size > 0) await Promise.all([...this.scopes]);
  }

  /** The bytes a request of `bytes` holds on the device: its size class with the pool, else 4-byte aligned. */
  sizeFor(bytes: number): number {
    return this.pool ? pooledSize(bytes, this.cap) : Math.max(4, Math.ceil(bytes / 4) * 4);
  }

  /** A buffer for `bytes` of `usage`: from the pool (or new) with the pool, else new. */
  createBuffer(bytes: number, usage: number): GpuBufferLike {
    const b = this.pool
      ? this.pool.take(bytes, usage, this.cap)
      : this.make(Math.max(4, Math.ceil(bytes / 4) * 4), usage);
    this.capturing?.owned.push(b);
    return b;
  }

  /** Whether a request of `bytes` for `usage` would be served by an idle pooled buffer (no new device memory). */
  canReuse(bytes: number, usage: number): boolean {
    return this.pool?.has(bytes, usage, this.cap) ?? false;
  }

  /**
   * Destroy `b` once the work recorded so far has been submitted; with the pool, give it back: at once where only
   * recorded work will write it next (see `hostWritten`), else after that submit.
   */
  release(b: GpuBufferLike): void {
    if (this.capturing?.owned.includes(b)) return; // kept by the captured call until dropCall
    if (this.pool?.owns(b)) {
      if (this.encoder && this.hostWritten.has(this.pool.usageOf(b))) this.recycled.push(b);
      else this.pool.give(b);
    } else if (this.encoder) this.doomed.push(b);
    else this.destroy(b);
  }

  private openPass(): GpuComputePassLike {
    this.openEncoder();
    if (!this.pass) {
      this.pass = this.encoder!.beginComputePass();
      this.passPipe = null;
    }
    return this.pass;
  }

  private openEncoder(): void {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
  }

  /** The compiled kernel of `code` with a parameter block of `slots` slots (compiled at its first use). */
  private kernel(code: string, slots: number): Kernel {
    const bySlots = (this.kernels[slots] ??= new Map());
    let k = bySlots.get(code);
    if (!k) {
      const layout = this.layoutFor(storageSignature(code));
      const module = this.device.createShaderModule({ code: withPrelude(code, slots) });
      const pipe = this.device.createComputePipeline({
        layout: layout.pipeline,
        compute: { module, entryPoint: 'main' },
      });
      bySlots.set(code, (k = { pipe, layout }));
    }
    return k;
  }

  /**
   * Compile `code` (a parameter block of `slots` slots) inside a validation error scope, with the shader's
   * compilation messages: the first error's text if it does not compile (nothing kept, no device error raised),
   * else null, and the pipeline is cached for `dispatch`. For kernels that an adapter may refuse (./tensor_cores.ts).
   */
  async compileChecked(code: string, slots = 1): Promise<string | null> {
    const bySlots = (this.kernels[slots] ??= new Map());
    if (bySlots.has(code)) return null;
    const layout = this.layoutFor(storageSignature(code));
    this.device.pushErrorScope('validation');
    let pipe: GpuComputePipelineLike | null = null,
      thrown: string | null = null,
      messages: string | null = null;
    try {
      const module = this.device.createShaderModule({ code: withPrelude(code, slots) }) as {
        getCompilationInfo?: () => Promise<{
          messages: readonly { type: string; message: string; lineNum?: number }[];
        }>;
      };
      const info = await module.getCompilationInfo?.();
      const errs = (info?.messages ?? []).filter((m) => m.type === 'error');
      if (errs.length) messages = errs.map((m) => `${m.lineNum ?? '?'}: ${m.message}`).join('; ');
      pipe = this.device.createComputePipeline({ layout: layout.pipeline, compute: { module, entryPoint: 'main' } });
    } catch (e) {
      thrown = (e as Error).message;
    }
    const scoped = await this.device.popErrorScope();
    const why = messages ?? thrown ?? scoped?.message ?? null;
    if (why === null && pipe) bySlots.set(code, { pipe, layout });
    return why === null && !pipe ? 'no pipeline' : why;
  }

  private layoutFor(sig: string): BindLayout {
    let l = this.layouts.get(sig);
    if (!l) {
      const COMPUTE = 4; // GPUShaderStage.COMPUTE
      const group = this.device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
          ...[...sig].map((a, k) => ({
            binding: k + 1,
            visibility: COMPUTE,
            buffer: { type: a === 'r' ? ('read-only-storage' as const) : ('storage' as const) },
          })),
        ],
      });
      const pipeline = this.device.createPipelineLayout({ bindGroupLayouts: [group] });
      this.layouts.set(sig, (l = { id: this.layouts.size, group, pipeline, storage: sig.length }));
    }
    return l;
  }

  private idOf(b: GpuBufferLike): number {
    let id = this.ids.get(b);
    if (id === undefined) this.ids.set(b, (id = this.nextId++));
    return id;
  }

  private newGroup(l: BindLayout, uni: GpuBufferLike, slots: number, buffers: readonly GpuBufferLike[]): unknown {
    this.bindGroupsCreated++;
    const entries = [{ binding: 0, resource: { buffer: uni, offset: 0, size: slots * SLOT } }];
    for (let k = 0; k < buffers.length; k++)
      entries.push({ binding: k + 1, resource: { buffer: buffers[k]! } } as never);
    return this.device.createBindGroup({ layout: l.group, entries });
  }

  /** The cached bind group of (layout, uniform buffer, slots, buffers), made at its first use. */
  private group(l: BindLayout, uni: GpuBufferLike, slots: number, buffers: readonly GpuBufferLike[]): unknown {
    let key = `${l.id}:${this.idOf(uni)}:${slots}`;
    for (const b of buffers) key += `,${this.idOf(b)}`;
    let g = this.groups.get(key);
    if (g === undefined) {
      if (this.groups.size >= MAX_GROUPS) {
        this.groups = new Map();
        this.groupsOf = new WeakMap();
      }
      g = this.newGroup(l, uni, slots, buffers);
      this.groups.set(key, g);
      for (const b of [uni, ...buffers]) {
        const keys = this.groupsOf.get(b);
        if (keys) keys.push(key);
        else this.groupsOf.set(b, [key]);
      }
    }
    return g;
  }

  /**
   * A place for `slots` slots of parameters in the uniform ring: its byte offset. A ring too small for this encoder's
   * dispatches submits what is recorded first (its parameters written) and gives way to one twice as large.
   */
  private ringSlot(slots: number): number {
    const bytes = slots * SLOT;
    if (this.ring && this.ringUsed + bytes > this.ring.size) {
      this.flush(); // ringUsed is 0 now
      this.ringFull = true;
    }
    if (!this.ring || this.ringFull || bytes > this.ring.size) {
      const size = Math.max(RING_SLOTS * SLOT, this.ring ? 2 * this.ring.size : 0, bytes);
      if (this.ring) this.release(this.ring); // after the work that reads it (none is recorded now)
      this.ring = this.make(size, USAGE.UNIFORM | USAGE.COPY_DST);
      this.mirror = new Uint32Array(size / 4);
      this.ringFull = false;
    }
    const at = this.ringUsed;
    this.ringUsed += bytes;
    return at;
  }

  /**
   * Record one dispatch of `code` (entry point `main`; binding 0 the parameter block, then `buffers` at 1, 2, … as
   * its `var<storage>` declarations say).
   */
  dispatch(code: string, params: Params, buffers: readonly GpuBufferLike[], groups: readonly number[]): void {
    const w = params.words,
      slots = Math.max(1, Math.ceil(w.length / SLOT_WORDS));
    if (slots > MAX_SLOTS)
      throw new BackendError(
        'E_WEBGPU_PARAMS',
        `webgpu backend: ${w.length} parameter words (at most ${MAX_SLOTS * SLOT_WORDS})`,
      );
    const k = this.kernel(code, slots);
    if (buffers.length !== k.layout.storage)
      throw new BackendError(
        'E_WEBGPU_BINDINGS',
        `webgpu backend: a kernel declaring ${k.layout.storage} storage buffers was given ${buffers.length}`,
      );
    let group: unknown, offset: number;
    if (this.capturing) {
      // a captured call's own parameter block and bind group, kept unchanged for its replays
      const words = new Uint32Array(slots * SLOT_WORDS);
      words.set(w);
      const uni = this.pool ? this.pooledWith(words, USAGE.UNIFORM) : this.mappedWith(words, USAGE.UNIFORM);
      group = this.newGroup(k.layout, uni, slots, buffers);
      offset = 0;
      this.capturing.owned.push(uni);
      this.capturing.dispatches.push({ pipe: k.pipe, group, groups: [...groups] });
    } else {
      offset = this.ringSlot(slots);
      const at = offset / 4;
      this.mirror.set(w, at);
      this.mirror.fill(0, at + w.length, at + slots * SLOT_WORDS);
      group = this.group(k.layout, this.ring!, slots, buffers);
    }
    const pass = this.openPass();
    if (this.passPipe !== k.pipe) pass.setPipeline((this.passPipe = k.pipe));
    DYNAMIC_OFFSET[0] = offset;
    pass.setBindGroup(0, group, DYNAMIC_OFFSET);
    pass.dispatchWorkgroups(groups[0] ?? 1, groups[1] ?? 1, groups[2] ?? 1);
    this.dispatches++;
  }

  /** Run `fn` (one kernel call's dispatches) capturing them into `c` for `replayCall`. */
  captureCall(c: CapturedCall, fn: () => void): void {
    this.capturing = c;
    try {
      fn();
    } finally {
      this.capturing = null;
    }
    c.ready = true;
  }

  /** Record a captured call's dispatches again: the same pipelines and bind groups, nothing built. */
  replayCall(c: CapturedCall): void {
    const pass = this.openPass();
    DYNAMIC_OFFSET[0] = 0;
    for (const d of c.dispatches) {
      if (this.passPipe !== d.pipe) pass.setPipeline((this.passPipe = d.pipe));
      pass.setBindGroup(0, d.group, DYNAMIC_OFFSET);
      pass.dispatchWorkgroups(d.groups[0] ?? 1, d.groups[1] ?? 1, d.groups[2] ?? 1);
      this.dispatches++;
    }
  }

  /** Give back what a captured call kept (after the work recorded so far is submitted). */
  dropCall(c: CapturedCall): void {
    for (const b of c.owned.splice(0)) this.release(b);
    c.dispatches.length = 0;
    c.ready = false;
  }

  /** A read-only storage buffer holding `data`, for the work recorded next (released after its submit). */
  constBuffer(data: Float32Array): GpuBufferLike {
    const b = this.pool ? this.pooledWith(data, USAGE.STORAGE) : this.mappedWith(data, USAGE.STORAGE);
    this.openEncoder();
    if (this.capturing) this.capturing.owned.push(b);
    else this.release(b);
    return b;
  }

  /** A new buffer holding `data` (mappedAtCreation: a write before any later submit, into memory nothing else uses). */
  private mappedWith(data: Uint32Array | Int32Array | Float32Array, usage: number): GpuBufferLike {
    const b = this.make(Math.max(4, data.byteLength), usage, true);
    new Uint8Array(b.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    b.unmap();
    return b;
  }

  /**
   * A pooled buffer holding `data`, written with queue.writeBuffer: the buffer is idle (every earlier user was
   * submitted, ./buffer_pool.ts), so the write lands after them and before the encoder that will use it.
   */
  private pooledWith(data: Uint32Array | Int32Array | Float32Array, usage: number): GpuBufferLike {
    this.hostWritten.add(usage | USAGE.COPY_DST);
    const b = this.pool!.take(data.byteLength, usage | USAGE.COPY_DST, this.cap);
    if (data.byteLength > 0) this.device.queue.writeBuffer(b, 0, data);
    return b;
  }

  /** Write the ring's parameters and submit what is recorded (queue.submit), then destroy what waited for it. */
  flush(): void {
    if (!this.encoder) return;
    this.pass?.end();
    if (this.ringUsed > 0) this.device.queue.writeBuffer(this.ring!, 0, this.mirror.subarray(0, this.ringUsed / 4));
    this.ringUsed = 0;
    this.device.queue.submit([this.encoder.finish()]);
    this.submits++;
    this.encoder = null;
    this.pass = null;
    for (const b of this.doomed) this.destroy(b);
    this.doomed = [];
    for (const b of this.recycled) this.pool!.give(b);
    this.recycled = [];
  }

  /**
   * Host data into `b` at element `offset`, after the work recorded so far. With nothing recorded, a queue write;
   * else the data goes into an idle staging buffer (a queue write, which lands before this encoder) and a copy into
   * `b` is recorded in order, so a step's inputs do not split its command buffer.
   */
  upload(b: GpuBuf, data: HostArray, offset: number): void {
    if (data.length === 0) return;
    const src = b.dtype === 'i32' ? toI32(data) : data instanceof Float32Array ? data : Float32Array.from(data);
    if (!this.encoder) {
      this.device.queue.writeBuffer(b.gpu, offset * 4, src);
      return;
    }
    const staged = this.pool ? this.pooledWith(src, USAGE.COPY_SRC) : this.mappedWith(src, USAGE.COPY_SRC);
    this.pass?.end();
    this.pass = null;
    this.encoder.copyBufferToBuffer(staged, 0, b.gpu, offset * 4, src.byteLength);
    this.release(staged);
  }

  /** Copy `b` out after all work recorded so far (copy to a staging buffer, submit, mapAsync). */
  async download(b: GpuBuf): Promise<HostArray> {
    if (b.released) throw new BackendError('E_FREED', 'webgpu backend: read of a freed buffer');
    const bytes = b.length * 4;
    const out: HostArray = b.dtype === 'i32' ? new Int32Array(b.length) : new Float32Array(b.length);
    if (bytes === 0) return out;
    const staging = this.createBuffer(bytes, USAGE.MAP_READ | USAGE.COPY_DST);
    this.openEncoder();
    this.pass?.end();
    this.pass = null;
    this.encoder!.copyBufferToBuffer(b.gpu, 0, staging, 0, bytes);
    this.flush();
    let done = false;
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, bytes);
      const view = staging.getMappedRange(0, bytes);
      (out as Float32Array).set(b.dtype === 'i32' ? (new Int32Array(view) as never) : new Float32Array(view));
      staging.unmap();
      done = true;
    } finally {
      // unmapped after a finished copy: idle, reusable at once; after a failure, in an unknown state: destroyed
      if (done && this.pool) this.pool.give(staging);
      else this.destroy(staging);
    }
    return out;
  }
}

function toI32(a: HostArray): Int32Array {
  return a instanceof Int32Array ? a : Int32Array.from(a);
}

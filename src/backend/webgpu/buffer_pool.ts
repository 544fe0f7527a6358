/**
 * A caching allocator for WebGPU buffers, after PyTorch's CUDA caching allocator: a buffer that is no longer needed is
 * kept, by usage and size class, and handed out again instead of a new `device.createBuffer` (and a `destroy`), which
 * cost far more than a dispatch on a real GPU. Sizes are rounded up to a class so that reuse happens:
 *
 *   below 1 MiB: to a multiple of 256 B (PyTorch rounds to 512 B; 256 B is WebGPU's storage and uniform offset
 *                alignment, so nothing smaller is useful, and a small tensor wastes at most 255 B);
 *   from 1 MiB:  to the next 1/8 step of its power of two (1 MiB, 1.125 MiB, … 2 MiB, 2.25 MiB, …): at most 12.5 %
 *                wasted, and a tensor whose size moves a little (a new batch's length) still lands on a kept buffer.
 *                (PyTorch's `roundup_power2_divisions` = 8; it also splits large segments, which WebGPU cannot: a
 *                binding may take a range, but a kernel here binds whole buffers.)
 *
 * Of the idle buffers of a class, `take` hands out the one made first, whatever order they came back in: a loop whose
 * steps allocate and free alike (training) then gives each tensor the same buffer step after step, so the bind
 * groups ./core.ts caches by buffer are found again instead of made anew.
 *
 * THE HAZARD, which the caller handles: `queue.writeBuffer` (and the staging write of `mappedAtCreation`) runs before
 * any command buffer submitted after it, so a buffer still read by recorded, unsubmitted work must not be handed out
 * and written that way. `give` must only see a buffer that is either no longer used by unsubmitted work or whose
 * class is never written by a queue write while work is recorded (./core.ts GpuContext.release: uniform, constant and
 * upload-staging buffers wait for the open encoder's submit; tensor storage and scratch, written next by recorded
 * dispatches and copies, which run in order after the earlier users, come back at once). Work already submitted is
 * no hazard: queue operations run in order.
 */
import type { GpuBufferLike } from './types.js';

const SMALL = 2 ** 20;
const SMALL_STEP = 256;

/** The size class of a request of `bytes` (see the header): 256 B steps below 1 MiB, 1/8 power-of-two steps above. */
export function sizeClass(bytes: number): number {
  const b = Math.max(SMALL_STEP, bytes);
  if (b < SMALL) return Math.ceil(b / SMALL_STEP) * SMALL_STEP;
  const step = 2 ** Math.floor(Math.log2(b)) / 8;
  return Math.ceil(b / step) * step;
}

/** The bytes a pooled request holds: its class, or its exact 4-byte-aligned size where the class would pass `cap`. */
export function pooledSize(bytes: number, cap = Number.POSITIVE_INFINITY): number {
  const exact = Math.max(4, Math.ceil(bytes / 4) * 4);
  const cls = sizeClass(exact);
  return cls > cap ? exact : cls;
}

function keyOf(bytes: number, usage: number, cap: number): string {
  return `${usage}:${pooledSize(bytes, cap)}`;
}

export class BufferPool {
  /** Idle buffers by `usage:size`, each list the latest made first (taken from the end: the earliest made). */
  private readonly idle = new Map<string, GpuBufferLike[]>();
  /** The order in which this pool made its buffers. */
  private readonly serial = new WeakMap<GpuBufferLike, number>();
  private made = 0;
  /** The key of every buffer this pool made (to know, at release, that a buffer is poolable and where it goes). */
  private readonly keys = new WeakMap<GpuBufferLike, string>();
  /** Bytes held idle. */
  pooledBytes = 0;
  /** Requests served from the pool / by a new buffer. */
  hits = 0;
  misses = 0;

  constructor(
    /** Create a GPU buffer of exactly `size` bytes. */
    private readonly create: (size: number, usage: number) => GpuBufferLike,
    /** Destroy a GPU buffer (the caller's hook: ./core.ts forgets the bind groups naming it first). */
    private readonly destroy: (b: GpuBufferLike) => void = (b) => b.destroy(),
  ) {}

  /**
   * A buffer of at least `bytes` for `usage`: an idle one of its class, else a new one. `cap`: the largest size a
   * buffer may have (a request under it whose class is over it gets its own exact size, 4-byte aligned).
   */
  take(bytes: number, usage: number, cap = Number.POSITIVE_INFINITY): GpuBufferLike {
    const key = keyOf(bytes, usage, cap);
    const b = this.idle.get(key)?.pop();
    if (b) {
      this.pooledBytes -= b.size;
      this.hits++;
      return b;
    }
    this.misses++;
    const made = this.create(pooledSize(bytes, cap), usage);
    this.keys.set(made, key);
    this.serial.set(made, this.made++);
    return made;
  }

  /** Whether `take` would hand out an idle buffer (no new device memory). */
  has(bytes: number, usage: number, cap = Number.POSITIVE_INFINITY): boolean {
    return (this.idle.get(keyOf(bytes, usage, cap))?.length ?? 0) > 0;
  }

  /** The usage `b` was made for (0 for a buffer this pool did not make). */
  usageOf(b: GpuBufferLike): number {
    const key = this.keys.get(b);
    return key === undefined ? 0 : Number(key.slice(0, key.indexOf(':')));
  }

  /** Whether `b` came from this pool (and may be given back). */
  owns(b: GpuBufferLike): boolean {
    return this.keys.has(b);
  }

  /** Keep `b` for reuse. Only once every use of it has been submitted (see the header). */
  give(b: GpuBufferLike): void {
    const key = this.keys.get(b);
    if (key === undefined) {
      this.destroy(b);
      return;
    }
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    // in place by serial, descending (lists are short): which idle buffer `take` hands out depends on which are idle,
    // not on the order they came back in
    const n = this.serial.get(b)!;
    let at = list.length;
    while (at > 0 && this.serial.get(list[at - 1]!)! < n) at--;
    list.splice(at, 0, b);
    this.pooledBytes += b.size;
  }

  /** Destroy every idle buffer (PyTorch's `torch.cuda.empty_cache()`); the bytes released. */
  empty(): number {
    const freed = this.pooledBytes;
    for (const list of this.idle.values()) for (const b of list) this.destroy(b);
    this.idle.clear();
    this.pooledBytes = 0;
    return freed;
  }
}

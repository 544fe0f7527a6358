/**
 * Heap allocator for the WebAssembly memory, kept on the TypeScript side (the kernels only see addresses).
 * Best fit over an address-sorted free list with coalescing of neighbours; blocks are 64-byte aligned (a cache
 * line, and more than v128 needs). Memory above `top` is free; a freed block that touches `top` lowers it. When
 * nothing fits, `top` moves up and the memory grows through the `grow` callback; past `limit` (4 GiB for wasm32)
 * an OutOfMemoryError says how much was asked for and how much is in use.
 */
import { OutOfMemoryError } from '../../util/errors.js';

export const ALIGN = 64;

export class HeapAllocator {
  /** Free blocks, sorted by address (parallel arrays). */
  private starts: number[] = [];
  private sizes: number[] = [];
  private top: number;
  private used = 0;
  private peakUsed = 0;

  /**
   * @param base   first usable byte address (64-aligned)
   * @param limit  one past the last usable byte address
   * @param ensure called with the highest address that must be backed by memory, before it is handed out
   */
  constructor(
    base: number,
    private readonly limit: number,
    private readonly ensure: (end: number) => void,
  ) {
    this.top = roundUp(base);
  }

  /** Bytes handed out and not freed. */
  get inUse(): number {
    return this.used;
  }
  get peak(): number {
    return this.peakUsed;
  }
  /** One past the highest address in use (memory above it is free). */
  get end(): number {
    return this.top;
  }
  /** Number of free blocks below `top` (fragmentation indicator, for tests). */
  get freeBlocks(): number {
    return this.starts.length;
  }

  /** Allocate `bytes` (rounded up to 64; 0 becomes 64). Returns the address. */
  alloc(bytes: number): number {
    const need = Math.max(ALIGN, roundUp(bytes));
    let best = -1;
    let bestSize = Infinity;
    const sizes = this.sizes;
    for (let i = 0; i < sizes.length; i++) {
      const s = sizes[i]!;
      if (s >= need && s < bestSize) {
        best = i;
        bestSize = s;
        if (s === need) break;
      }
    }
    let ptr: number;
    if (best >= 0) {
      ptr = this.starts[best]!;
      if (bestSize === need) {
        this.starts.splice(best, 1);
        this.sizes.splice(best, 1);
      } else {
        this.starts[best] = ptr + need;
        this.sizes[best] = bestSize - need;
      }
    } else {
      // a free block ending at top can be extended upwards
      const n = this.starts.length;
      let start = this.top;
      if (n > 0 && this.starts[n - 1]! + this.sizes[n - 1]! === this.top) start = this.starts[n - 1]!;
      const newTop = start + need;
      if (newTop > this.limit) throw new OutOfMemoryError('wasm', need, this.used, this.limit);
      try {
        this.ensure(newTop);
      } catch (e) {
        if (e instanceof OutOfMemoryError) throw e;
        throw new OutOfMemoryError('wasm', need, this.used, this.limit);
      }
      if (start !== this.top) {
        this.starts.pop();
        this.sizes.pop();
      }
      ptr = start;
      this.top = newTop;
    }
    this.used += need;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    return ptr;
  }

  /** Return a block given its address and the size it was allocated with. */
  free(ptr: number, bytes: number): void {
    const size = Math.max(ALIGN, roundUp(bytes));
    this.used -= size;
    // insertion point: first block with start > ptr
    let lo = 0,
      hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < ptr) lo = mid + 1;
      else hi = mid;
    }
    let start = ptr,
      end = ptr + size;
    // merge with the previous block
    if (lo > 0 && this.starts[lo - 1]! + this.sizes[lo - 1]! === start) {
      lo--;
      start = this.starts[lo]!;
      this.starts.splice(lo, 1);
      this.sizes.splice(lo, 1);
    }
    // merge with the next block
    if (lo < this.starts.length && this.starts[lo] === end) {
      end += this.sizes[lo]!;
      this.starts.splice(lo, 1);
      this.sizes.splice(lo, 1);
    }
    if (end === this.top) {
      this.top = start;
      return;
    }
    this.starts.splice(lo, 0, start);
    this.sizes.splice(lo, 0, end - start);
  }
}

function roundUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

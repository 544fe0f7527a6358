/** A kernel's view of a webgpu buffer: the buffer and the shape the call gives it (inputs and outputs alike). */
import type { GpuBuf } from './core.js';

export interface KView {
  b: GpuBuf;
  shape: readonly number[];
}

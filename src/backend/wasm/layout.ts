/**
 * Shape bookkeeping for the wasm kernels: collapse an N-d strided loop (one output shape, several operand stride
 * vectors) into at most 4 axes by dropping size-1 axes and merging axes that are contiguous for every operand,
 * and split ranges across threads.
 */

export interface Strided {
  /** Loop dims, outermost first (at least one entry). */
  dims: number[];
  /** Per operand, an element stride per dim (0 = broadcast). */
  strides: number[][];
}

/** Drop size-1 axes, then merge axis i into i+1 where every operand is contiguous across them. */
export function collapse(dims: readonly number[], strides: readonly (readonly number[])[]): Strided {
  const d: number[] = [];
  const s: number[][] = strides.map(() => []);
  for (let i = 0; i < dims.length; i++) {
    if (dims[i] === 1) continue;
    if (d.length > 0) {
      const last = d.length - 1;
      const mergeable = strides.every((st, o) => s[o]![last] === st[i]! * dims[i]!);
      if (mergeable) {
        d[last] = d[last]! * dims[i]!;
        strides.forEach((st, o) => (s[o]![last] = st[i]!));
        continue;
      }
    }
    d.push(dims[i]!);
    strides.forEach((st, o) => s[o]!.push(st[i]!));
  }
  if (d.length === 0) {
    d.push(1);
    s.forEach((x) => x.push(1));
  }
  return { dims: d, strides: s };
}

/** Row-major strides of a shape. */
export function rowStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i]!;
  }
  return st;
}

/** Strides of `shape` broadcast to `out` (aligned right; 0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = rowStrides(shape);
  const r = new Array<number>(out.length).fill(0);
  const off = out.length - shape.length;
  for (let k = 0; k < shape.length; k++) r[off + k] = shape[k] === 1 ? 0 : st[k]!;
  return r;
}

/**
 * Visit a collapsed loop as 4-d pieces: calls fn with per-operand element offsets and 4 dims/strides. Fewer than
 * 4 dims are padded with size-1 axes after the first; more than 4 loop over the leading ones here.
 */
export function forEachOuter(c: Strided, fn: (offsets: number[], dims: number[], strides: number[][]) => void): void {
  const r = c.dims.length;
  if (r <= 4) {
    // pad in the middle: the outermost axis stays first (kernels split it across threads), the innermost last
    const pad = (x: number[], fill: number) =>
      r === 1 ? [fill, fill, fill, x[0]!] : [x[0]!, ...new Array<number>(4 - r).fill(fill), ...x.slice(1)];
    fn(
      c.strides.map(() => 0),
      pad(c.dims, 1),
      c.strides.map((s) => pad(s, 0)),
    );
    return;
  }
  const outer = c.dims.slice(0, r - 4);
  const idx = new Array<number>(outer.length).fill(0);
  const inner = c.dims.slice(r - 4);
  const innerS = c.strides.map((s) => s.slice(r - 4));
  const total = outer.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    const offs = c.strides.map((s) => idx.reduce((acc, v, k) => acc + v * s[k]!, 0));
    fn(offs, inner, innerS);
    for (let k = outer.length - 1; k >= 0; k--) {
      if (++idx[k]! < outer[k]!) break;
      idx[k] = 0;
    }
  }
}

/** Split [0, n) into at most `parts` contiguous ranges whose cuts are multiples of `align`. */
export function splitRange(n: number, parts: number, align = 1): [number, number][] {
  const units = Math.ceil(n / align);
  const p = Math.max(1, Math.min(parts, units));
  const out: [number, number][] = [];
  for (let t = 0; t < p; t++) {
    const lo = Math.min(n, Math.round((units * t) / p) * align);
    const hi = Math.min(n, Math.round((units * (t + 1)) / p) * align);
    if (hi > lo) out.push([lo, hi]);
  }
  return out;
}

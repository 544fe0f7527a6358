/**
 * Each kernel's signature, declared once: inputs and outputs (names, dtypes, ranks, optional or variadic), attributes
 * (type, default, range), which outputs it reads (read-modify-write), and the relations between shapes. The
 * semantics are in ./kernels.ts; ./validate.ts checks a call against this table, for every backend.
 *
 * Shape rules speak in the catalogue's letters: N is the product of leading axes, C/V the last axis, K the inner
 * dimension of a product. Sizes are compared where kernels only need the element count (a [B, T, C] may come as
 * [B·T, C]).
 */
import type { KernelName } from './kernels.js';
import type { AttrSig, KernelSig, OperandSig, ShapeCtx } from './validate.js';

const F = (name: string, extra: Partial<OperandSig> = {}): OperandSig => ({ name, dtype: 'float', ...extra });
const I = (name: string, extra: Partial<OperandSig> = {}): OperandSig => ({ name, dtype: 'i32', ...extra });
const A = (name: string, extra: Partial<OperandSig> = {}): OperandSig => ({ name, dtype: 'any', ...extra });

const num = (extra: Partial<AttrSig> = {}): AttrSig => ({ type: 'number', ...extra });
const int = (extra: Partial<AttrSig> = {}): AttrSig => ({ type: 'int', ...extra });
const bool = (dflt: boolean): AttrSig => ({ type: 'boolean', default: dflt });
const numbers = (extra: Partial<AttrSig> = {}): AttrSig => ({ type: 'numbers', ...extra });

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Every operand has the size of input 0. */
function sameSize(c: ShapeCtx): void {
  const n = c.size(c.i(0));
  for (let k = 1; k < c.inputs.length; k++)
    c.check(c.size(c.i(k)) === n, 'input', k, () => `must have the ${n} elements of input 0`);
  for (let k = 0; k < c.outputs.length; k++)
    c.check(c.size(c.o(k)) === n, 'output', k, () => `must have the ${n} elements of input 0`);
}

/** NumPy broadcasting of inputs 0 and 1 to output 0's shape. */
function broadcast(c: ShapeCtx): void {
  const os = c.o(0),
    r = os.length;
  for (let j = 0; j < 2; j++) {
    const s = c.i(j);
    let ok = s.length <= r;
    for (let k = 0; ok && k < s.length; k++) ok = s[k] === 1 || s[k] === os[r - s.length + k];
    c.check(ok, 'input', j, () => `does not broadcast to the output ${fmt(os)}`);
  }
}

type Operands = readonly (readonly ['input' | 'output', number])[];

/** The rule for x [..., C] (N rows) and the row operands: `rowsC` of N·C elements, `cols` of C, `rows` of N. */
function rowwise(x: number, rowsC: Operands, cols: Operands, rows: Operands): (c: ShapeCtx) => void {
  return (c) => rowwiseCheck(c, x, rowsC, cols, rows);
}
function rowwiseCheck(c: ShapeCtx, x: number, rowsC: Operands, cols: Operands, rows: Operands): void {
  const xs = c.i(x),
    C = xs[xs.length - 1]!,
    NC = c.size(xs),
    N = C === 0 ? 0 : NC / C;
  const shape = (side: 'input' | 'output', k: number) => (side === 'input' ? c.i(k) : c.o(k));
  for (const [side, k] of rowsC)
    c.check(c.size(shape(side, k)) === NC, side, k, () => `must hold N·C = ${N}·${C} elements`);
  for (const [side, k] of cols) c.check(c.size(shape(side, k)) === C, side, k, () => `must hold C = ${C} elements`);
  for (const [side, k] of rows)
    c.check(c.size(shape(side, k)) === N, side, k, () => `must hold N = ${N} elements (one per row)`);
}

/** A box of shape `small` at `begin` inside `big`. */
function box(c: ShapeCtx, big: readonly number[], small: readonly number[], what: string): void {
  const begin = c.attrs['begin'] as readonly number[];
  let ok = begin.length === big.length && small.length === big.length;
  for (let k = 0; ok && k < big.length; k++)
    ok = Number.isInteger(begin[k]) && begin[k]! >= 0 && begin[k]! + small[k]! <= big[k]!;
  c.require(ok, () => `${what} box ${fmt(small)} at begin ${fmt(begin)} does not fit in ${fmt(big)}`);
}

/** q [B, T, Hq, D], k and v [B, S, Hkv, D] at inputs q, k, v; returns the dimensions. */
function attnDims(
  c: ShapeCtx,
  q: number,
  k: number,
  v: number,
): { B: number; T: number; S: number; Hq: number; Hkv: number; D: number } {
  const [B, T, Hq, D] = c.i(q) as [number, number, number, number];
  const ks = c.i(k),
    S = ks[1]!,
    Hkv = ks[2]!;
  c.check(
    ks[0] === B && ks[3] === D && Hkv > 0 && Hq % Hkv === 0,
    'input',
    k,
    () => `must be [B = ${B}, S, Hkv, D = ${D}] with Hq = ${Hq} a multiple of Hkv`,
  );
  c.check(c.i(v).join() === ks.join(), 'input', v, () => `must have k's shape ${fmt(ks)}`);
  return { B, T, S, Hq, Hkv, D };
}

/** B, T, Hq, Hkv, D of a fused qkv [B, T, (Hq + 2·Hkv)·D] from the heads / kvHeads attributes. */
function qkvDims(c: ShapeCtx, k: number): { B: number; T: number; S: number; Hq: number; Hkv: number; D: number } {
  const [B, T, W] = c.i(k) as [number, number, number];
  const Hq = c.num('heads'),
    Hkv = c.num('kvHeads', Hq),
    D = W / (Hq + 2 * Hkv);
  c.check(
    Hq % Hkv === 0 && Number.isInteger(D) && D >= 1,
    'input',
    k,
    () => `is not [B, T, (heads + 2·kvHeads)·D] for heads ${Hq}, kvHeads ${Hkv}`,
  );
  return { B, T, S: T, Hq, Hkv, D };
}

/** Outputs (or inputs) o [B, T, Hq, D], lse [B, Hq, T] and the optional kept probabilities p [B, Hq, T, S]. */
function attnOut(
  c: ShapeCtx,
  side: 'input' | 'output',
  o: number,
  lse: number,
  p: number,
  d: { B: number; T: number; S: number; Hq: number; D: number },
): void {
  const n = side === 'input' ? c.inputs.length : c.outputs.length,
    sh = (k: number) => (side === 'input' ? c.i(k) : c.o(k));
  c.check(
    c.size(sh(o)) === d.B * d.T * d.Hq * d.D,
    side,
    o,
    () => `must hold [B, T, Hq, D] = ${fmt([d.B, d.T, d.Hq, d.D])}`,
  );
  c.check(c.size(sh(lse)) === d.B * d.Hq * d.T, side, lse, () => `must hold [B, Hq, T] = ${fmt([d.B, d.Hq, d.T])}`);
  if (n > p)
    c.check(
      c.size(sh(p)) === d.B * d.Hq * d.T * d.S,
      side,
      p,
      () => `must hold [B, Hq, T, S] = ${fmt([d.B, d.Hq, d.T, d.S])}`,
    );
}

/** x [..., M, K] and packed weights [N, K/per] → out [..., M, N]. */
/** A quantised embedding table (input 0, [V, C/per]) and ids (the last input) → out [...ids, C]; returns C. */
function quantTable(c: ShapeCtx, per: number): number {
  const C = Math.round(c.i(0)[1]! * per),
    ids = c.i(c.inputs.length - 1);
  c.check(c.size(c.o(0)) === c.size(ids) * C, 'output', 0, () => `must be [...ids, C] = [${ids.join(', ')}, ${C}]`);
  return C;
}

function packed(c: ShapeCtx, per: number): { M: number; N: number; K: number } {
  const xs = c.i(0),
    K = xs[xs.length - 1]!,
    N = c.i(1)[0]!,
    M = K === 0 ? 0 : c.size(xs) / K;
  c.check(c.i(1)[1]! * per === K, 'input', 1, () => `must be [N, K/${per}] for K = ${K}`);
  const os = c.o(0);
  c.check(
    os[os.length - 1] === N && c.size(os) === M * N,
    'output',
    0,
    () => `must be [..., M, N] = [..., ${M}, ${N}]`,
  );
  return { M, N, K };
}

/**
 * window (sliding-window attention, Mistral's and Gemma's local layers): query row t also sees no key more than
 * window − 1 positions before its own, qOffset + t; 0 = no window.
 */
const ATTN_ATTRS = {
  scale: num({ required: true }),
  causal: bool(true),
  qOffset: int(),
  window: int({ default: 0, min: 0 }),
};
/** Left-padded rows (forward only): row b's keys before rowStart[b] are padding (ragged batches). */
const ATTN_FWD_ATTRS = { ...ATTN_ATTRS, rowStart: numbers() };

/** A sliding window needs the causal mask (it bounds the keys a query sees from below; causal bounds them above). */
function windowCheck(c: ShapeCtx): void {
  c.require(
    !((c.attrs['window'] as number | undefined) ?? 0) || c.attrs['causal'] !== false,
    'a sliding window (window > 0) needs causal attention',
  );
}

/** rowStart, when given: B integers, each in [0, max]. */
function rowStartCheck(c: ShapeCtx, B: number, max: number): void {
  const rs = c.attrs['rowStart'] as readonly number[] | undefined;
  if (rs === undefined) return;
  c.require(
    rs.length === B && rs.every((x) => Number.isInteger(x) && x >= 0 && x <= max),
    () => `rowStart must hold B = ${B} integers in [0, ${max}], got [${rs.join(', ')}]`,
  );
}
const ROPE_QKV_ATTRS = {
  heads: int({ required: true, min: 1 }),
  kvHeads: int({ min: 1 }),
  theta: num({ required: true, min: 0 }),
  invFreq: numbers(),
  offset: int({ default: 0, min: 0 }),
  rowStart: numbers(),
};
/** invFreq, when given: D/2 finite positive numbers (a scaled RoPE's inverse frequencies). */
function invFreqCheck(c: ShapeCtx, D: number): void {
  const f = c.attrs['invFreq'] as readonly number[] | undefined;
  if (!f) return;
  c.require(
    f.length === D / 2 && f.every((x) => Number.isFinite(x) && x > 0),
    () => `invFreq must hold D/2 = ${D / 2} finite positive numbers, got ${f.length}`,
  );
}
/** rope_qkv's outputs q [B, T, Hq, D], k and v [B, T, Hkv, D]; rope_qkv_cache's caches [B, L ≥ offset + T, Hkv, D]. */
function ropeQkvShapes(c: ShapeCtx, cache: boolean): void {
  const d = qkvDims(c, 0);
  c.check(d.D % 2 === 0, 'input', 0, 'must have an even head dimension D (rotate half)');
  invFreqCheck(c, d.D);
  const q = [d.B, d.T, d.Hq, d.D];
  c.check(c.o(0).join() === q.join(), 'output', 0, () => `must be ${fmt(q)}`);
  for (const k of [1, 2]) {
    const os = c.o(k);
    if (cache)
      c.check(
        os[0] === d.B && os[1]! >= c.num('offset', 0) + d.T && os[2] === d.Hkv && os[3] === d.D,
        'output',
        k,
        () => `must be a cache [B = ${d.B}, L ≥ offset + T = ${c.num('offset', 0) + d.T}, Hkv = ${d.Hkv}, D = ${d.D}]`,
      );
    else {
      const want = [d.B, d.T, d.Hkv, d.D];
      c.check(os.join() === want.join(), 'output', k, () => `must be ${fmt(want)}`);
    }
  }
  rowStartCheck(c, d.B, Number.MAX_SAFE_INTEGER);
}
const QKV_ATTRS = {
  heads: int({ required: true, min: 1 }),
  kvHeads: int({ min: 1 }),
  scale: num({ required: true }),
  causal: bool(true),
  qOffset: int({ default: 0 }),
};
const ADAMW_ATTRS = {
  lr: num({ required: true, min: 0 }),
  beta1: num({ required: true, min: 0, max: 1 }),
  beta2: num({ required: true, min: 0, max: 1 }),
  eps: num({ required: true, min: 0 }),
  weightDecay: num({ required: true, min: 0 }),
  step: int({ required: true, min: 1 }),
  gradScale: num({ default: 1 }),
};

const unary: KernelSig = { inputs: [F('a')], outputs: [F('out')], attrs: {}, shapes: sameSize };
const binary: KernelSig = { inputs: [F('a'), F('b')], outputs: [F('out')], attrs: {}, shapes: broadcast };

/** swiglu_fused, geglu_fused: a gated MLP's activation over one fused gate/up output gu [..., 2F] → y [..., F]. */
const GATED_FUSED: KernelSig = {
  inputs: [F('gu', { minRank: 1 })],
  outputs: [F('y', { minRank: 1 })],
  attrs: {},
  shapes: (c) => {
    const gs = c.i(0),
      W = gs[gs.length - 1]!;
    c.check(W % 2 === 0, 'input', 0, () => `must have an even last axis [..., 2·F], got ${fmt(gs)}`);
    const ys = c.o(0);
    c.check(
      ys.length === gs.length && ys.every((d, k) => d === (k === gs.length - 1 ? W / 2 : gs[k])),
      'output',
      0,
      () => `must be [..., F] = ${fmt([...gs.slice(0, -1), W / 2])}`,
    );
  },
};

export const SIGNATURES: Readonly<Record<KernelName, KernelSig>> = {
  fill: { inputs: [], outputs: [A('out')], attrs: { value: num({ required: true }) } },
  copy: { inputs: [A('a')], outputs: [A('out')], attrs: {}, shapes: sameSize },
  add: binary,
  sub: binary,
  mul: binary,
  div: binary,
  scale: { ...unary, attrs: { alpha: num({ required: true }), beta: num({ default: 0 }) } },
  exp: unary,
  log: unary,
  neg: unary,
  sqrt: unary,
  rsqrt: unary,
  square: unary,
  gelu: unary,
  silu: unary,
  gelu_backward: { inputs: [F('x'), F('dy')], outputs: [F('dx')], attrs: {}, shapes: broadcast },
  silu_backward: { inputs: [F('x'), F('dy')], outputs: [F('dx')], attrs: {}, shapes: broadcast },
  swiglu: { inputs: [F('gate'), F('up')], outputs: [F('y')], attrs: {}, shapes: broadcast },
  swiglu_backward: {
    inputs: [F('gate'), F('up'), F('dy')],
    outputs: [F('dgate'), F('dup')],
    attrs: {},
    shapes: sameSize,
  },
  swiglu_fused: GATED_FUSED,
  geglu_fused: GATED_FUSED,
  sum_to: {
    inputs: [F('a')],
    outputs: [F('out')],
    attrs: {},
    shapes: (c) => {
      const a = c.i(0),
        o = c.o(0);
      c.check(
        o.length === a.length && o.every((d, k) => d === 1 || d === a[k]),
        'output',
        0,
        () => `must have a's rank with each axis equal to a's or 1 (a is ${fmt(a)})`,
      );
    },
  },
  transpose: {
    inputs: [A('a')],
    outputs: [A('out')],
    sameDType: true,
    attrs: { perm: numbers({ required: true }) },
    shapes: (c) => {
      const a = c.i(0),
        perm = c.attrs['perm'] as readonly number[];
      const seen = new Set(perm);
      c.require(
        perm.length === a.length &&
          seen.size === a.length &&
          perm.every((p) => Number.isInteger(p) && p >= 0 && p < a.length),
        () => `perm ${fmt(perm)} is not a permutation of the ${a.length} axes of ${fmt(a)}`,
      );
      c.check(
        c.o(0).length === a.length && c.o(0).every((d, k) => d === a[perm[k]!]),
        'output',
        0,
        () => `must be ${fmt(perm.map((p) => a[p]!))} (a ${fmt(a)} permuted by ${fmt(perm)})`,
      );
    },
  },
  slice: {
    inputs: [A('a')],
    outputs: [A('out')],
    sameDType: true,
    attrs: { begin: numbers({ required: true }) },
    shapes: (c) => box(c, c.i(0), c.o(0), 'output'),
  },
  pad_slice: {
    inputs: [A('a')],
    outputs: [A('out')],
    sameDType: true,
    attrs: { begin: numbers({ required: true }) },
    shapes: (c) => box(c, c.o(0), c.i(0), 'input'),
  },
  concat: {
    inputs: [A('a', { variadic: true })],
    outputs: [A('out')],
    sameDType: true,
    attrs: { axis: int({ required: true }) },
    shapes: (c) => {
      const os = c.o(0),
        r = os.length,
        ax = c.num('axis') < 0 ? c.num('axis') + r : c.num('axis');
      c.require(ax >= 0 && ax < r, () => `axis ${c.num('axis')} outside the ${r} axes of the output ${fmt(os)}`);
      let pos = 0;
      for (let k = 0; k < c.inputs.length; k++) {
        const s = c.i(k);
        c.check(
          s.length === r && s.every((d, j) => j === ax || d === os[j]),
          'input',
          k,
          () => `does not fit the output ${fmt(os)} along axis ${ax}`,
        );
        pos += s[ax]!;
      }
      c.require(pos === os[ax], () => `inputs cover ${pos} of the output's ${os[ax]} along axis ${ax}`);
    },
  },
  write_at: {
    inputs: [A('a')],
    outputs: [A('out')],
    sameDType: true,
    attrs: {
      offset: int({ required: true, min: 0 }),
      blocks: int({ default: 1, min: 1 }),
      blockStride: int({ min: 0 }),
    },
    reads: [{ output: 0 }],
    shapes: (c) => {
      const n = c.size(c.i(0)),
        blocks = c.num('blocks', 1),
        per = n / blocks,
        stride = c.num('blockStride', per),
        end = c.num('offset') + (blocks - 1) * stride + per;
      c.require(Number.isInteger(per), () => `${n} elements do not split into ${blocks} equal blocks`);
      c.require(
        blocks === 1 || stride >= per,
        () => `blockStride ${stride} is shorter than a block of ${per} elements (blocks would overlap)`,
      );
      c.require(end <= c.size(c.o(0)), () =>
        blocks === 1
          ? `${n} elements at offset ${c.num('offset')} do not fit in the output ${fmt(c.o(0))}`
          : `${blocks} blocks of ${per} elements at offset ${c.num('offset')}, ${stride} apart, do not fit in the output ${fmt(c.o(0))}`,
      );
    },
  },
  matmul: {
    inputs: [F('a', { minRank: 1 }), F('b', { minRank: 1 }), F('bias', { optional: true })],
    outputs: [F('out', { minRank: 1 })],
    attrs: { transA: bool(false), transB: bool(false), accumulate: bool(false), alpha: num({ default: 1 }) },
    reads: [{ output: 0, when: 'accumulate' }],
    shapes: (c) => {
      const mat = (s: readonly number[]): [number, number] => [s.length >= 2 ? s[s.length - 2]! : 1, s[s.length - 1]!];
      const tA = !!c.attrs['transA'],
        tB = !!c.attrs['transB'];
      const [ar, ac] = mat(c.i(0)),
        [br, bc] = mat(c.i(1)),
        [M, N] = mat(c.o(0));
      const K = tA ? ar : ac;
      c.check((tA ? ac : ar) === M, 'input', 0, () => `${tA ? 'ᵀ ' : ''}must have M = ${M} rows (the output's)`);
      c.check(
        (tB ? bc : br) === K && (tB ? br : bc) === N,
        'input',
        1,
        () => `${tB ? 'ᵀ ' : ''}must be [K = ${K}, N = ${N}]`,
      );
      const batch = M * N === 0 ? 0 : c.size(c.o(0)) / (M * N);
      const ba = ar * ac === 0 ? 1 : c.size(c.i(0)) / (ar * ac),
        bb = br * bc === 0 ? 1 : c.size(c.i(1)) / (br * bc);
      c.check(
        ba === batch || ba === 1,
        'input',
        0,
        () => `has a batch of ${ba}: expected ${batch} (the output's) or 1`,
      );
      c.check(
        bb === batch || bb === 1,
        'input',
        1,
        () => `has a batch of ${bb}: expected ${batch} (the output's) or 1`,
      );
      if (c.inputs.length > 2)
        c.check(c.size(c.i(2)) === N, 'input', 2, () => `must hold the output's N = ${N} columns`);
    },
  },
  matmul_q8: {
    inputs: [F('x', { minRank: 1 }), I('wq', { rank: 2 }), F('scales')],
    outputs: [F('out', { minRank: 1 })],
    attrs: {},
    shapes: (c) => {
      const { N, K } = packed(c, 4);
      c.check(K % 32 === 0, 'input', 0, () => `must have K a multiple of 32 (Q8_0 blocks), got ${K}`);
      c.check(c.size(c.i(2)) === (N * K) / 32, 'input', 2, () => `must hold N·K/32 = ${(N * K) / 32} block scales`);
    },
  },
  matmul_q4k: {
    inputs: [F('x', { minRank: 1 }), I('wq', { rank: 2 })],
    outputs: [F('out', { minRank: 1 })],
    attrs: {},
    shapes: (c) => {
      const x = c.i(0),
        w = c.i(1);
      const K = x[x.length - 1]!;
      c.check(
        K > 0 && K % 256 === 0,
        'input',
        0,
        () => `must have K a positive multiple of 256 (Q4_K super-blocks), got ${K}`,
      );
      c.check(w[1] === (K / 256) * 38, 'input', 1, () => `must be [N, K/256·38] = [N, ${(K / 256) * 38}] for K = ${K}`);
      const o = c.o(0);
      c.check(o[o.length - 1] === w[0], 'output', 0, () => `must end in N = ${w[0]} (the weight's rows)`);
      c.check(
        c.size(o) === (c.size(x) / K) * w[0]!,
        'output',
        0,
        () => `must be [..., M, N] for x [${x.join(', ')}] and N = ${w[0]}`,
      );
    },
  },
  matmul_bf16: {
    inputs: [F('x', { minRank: 1 }), I('wb', { rank: 2 })],
    outputs: [F('out', { minRank: 1 })],
    attrs: {},
    shapes: (c) => void packed(c, 2),
  },
  embedding: {
    inputs: [F('weight', { rank: 2 }), I('ids')],
    outputs: [F('out')],
    attrs: {},
    shapes: (c) =>
      c.check(
        c.size(c.o(0)) === c.size(c.i(1)) * c.i(0)[1]!,
        'output',
        0,
        () => `must be [...ids, C] = [${c.i(1).join(', ')}, ${c.i(0)[1]}]`,
      ),
  },
  embedding_q8: {
    inputs: [I('wq', { rank: 2 }), F('scales'), I('ids')],
    outputs: [F('out')],
    attrs: {},
    shapes: (c) => {
      const C = quantTable(c, 4);
      c.check(C % 32 === 0, 'input', 0, () => `must have C a multiple of 32 (Q8_0 blocks), got ${C}`);
      const V = c.i(0)[0]!;
      c.check(c.size(c.i(1)) === (V * C) / 32, 'input', 1, () => `must hold V·C/32 = ${(V * C) / 32} block scales`);
    },
  },
  embedding_q4k: {
    inputs: [I('wq', { rank: 2 }), I('ids')],
    outputs: [F('out')],
    attrs: {},
    shapes: (c) => {
      const W = c.i(0)[1]!;
      c.check(W > 0 && W % 38 === 0, 'input', 0, () => `must be [V, C/256·38] (Q4_K super-blocks), got [${c.i(0)}]`);
      quantTable(c, 256 / 38);
    },
  },
  embedding_bf16: {
    inputs: [I('wb', { rank: 2 }), I('ids')],
    outputs: [F('out')],
    attrs: {},
    shapes: (c) => void quantTable(c, 2),
  },
  embedding_backward: {
    inputs: [F('dy'), I('ids')],
    outputs: [F('dweight', { rank: 2 })],
    attrs: { accumulate: bool(false) },
    reads: [{ output: 0, when: 'accumulate' }],
    shapes: (c) =>
      c.check(
        c.size(c.i(0)) === c.size(c.i(1)) * c.o(0)[1]!,
        'input',
        0,
        () => `must be [...ids, C] = [${c.i(1).join(', ')}, ${c.o(0)[1]}]`,
      ),
  },
  layernorm: {
    inputs: [F('x', { minRank: 1 }), F('w'), F('b')],
    outputs: [F('y'), F('mean'), F('rstd')],
    attrs: { eps: num({ required: true, min: 0 }) },
    shapes: rowwise(
      0,
      [['output', 0]],
      [
        ['input', 1],
        ['input', 2],
      ],
      [
        ['output', 1],
        ['output', 2],
      ],
    ),
  },
  layernorm_backward: {
    inputs: [F('dy'), F('x', { minRank: 1 }), F('w'), F('mean'), F('rstd')],
    outputs: [F('dx'), F('dw'), F('db')],
    attrs: { accumulate: bool(false) },
    reads: [{ output: 0, when: 'accumulate' }],
    shapes: rowwise(
      1,
      [
        ['input', 0],
        ['output', 0],
      ],
      [
        ['input', 2],
        ['output', 1],
        ['output', 2],
      ],
      [
        ['input', 3],
        ['input', 4],
      ],
    ),
  },
  rmsnorm: {
    inputs: [F('x', { minRank: 1 }), F('w')],
    outputs: [F('y'), F('rstd')],
    attrs: { eps: num({ required: true, min: 0 }) },
    shapes: rowwise(0, [['output', 0]], [['input', 1]], [['output', 1]]),
  },
  rmsnorm_backward: {
    inputs: [F('dy'), F('x', { minRank: 1 }), F('w'), F('rstd')],
    outputs: [F('dx'), F('dw')],
    attrs: { accumulate: bool(false) },
    reads: [{ output: 0, when: 'accumulate' }],
    shapes: rowwise(
      1,
      [
        ['input', 0],
        ['output', 0],
      ],
      [
        ['input', 2],
        ['output', 1],
      ],
      [['input', 3]],
    ),
  },
  softmax: { inputs: [F('x', { minRank: 1 })], outputs: [F('y')], attrs: {}, shapes: sameSize },
  softmax_backward: { inputs: [F('y', { minRank: 1 }), F('dy')], outputs: [F('dx')], attrs: {}, shapes: sameSize },
  rope: {
    inputs: [F('x', { rank: 4 })],
    outputs: [F('y')],
    attrs: {
      theta: num({ required: true, min: 0 }),
      invFreq: numbers(),
      offset: int({ default: 0, min: 0 }),
      inverse: bool(false),
      rowStart: numbers(),
    },
    shapes: (c) => {
      c.check(c.i(0)[3]! % 2 === 0, 'input', 0, 'must have an even head dimension D (rotate half)');
      invFreqCheck(c, c.i(0)[3]!);
      sameSize(c);
      rowStartCheck(c, c.i(0)[0]!, Number.MAX_SAFE_INTEGER);
    },
  },
  rope_qkv: {
    inputs: [F('qkv', { rank: 3 })],
    outputs: [F('q', { rank: 4 }), F('k', { rank: 4 }), F('v', { rank: 4 })],
    attrs: ROPE_QKV_ATTRS,
    shapes: (c) => ropeQkvShapes(c, false),
  },
  rope_qkv_cache: {
    inputs: [F('qkv', { rank: 3 })],
    outputs: [F('q', { rank: 4 }), F('kc', { rank: 4 }), F('vc', { rank: 4 })],
    attrs: ROPE_QKV_ATTRS,
    reads: [{ output: 1 }, { output: 2 }],
    shapes: (c) => ropeQkvShapes(c, true),
  },
  attention: {
    inputs: [F('q', { rank: 4 }), F('k', { rank: 4 }), F('v', { rank: 4 })],
    outputs: [F('o'), F('lse'), F('p', { optional: true })],
    attrs: ATTN_FWD_ATTRS,
    shapes: (c) => {
      const d = attnDims(c, 0, 1, 2);
      attnOut(c, 'output', 0, 1, 2, d);
      rowStartCheck(c, d.B, d.S);
      c.require(
        c.attrs['rowStart'] === undefined || c.outputs.length < 3,
        'rowStart (padded rows) is forward-only: no kept probabilities p',
      );
      windowCheck(c);
    },
  },
  attention_backward: {
    inputs: [
      F('do'),
      F('q', { rank: 4 }),
      F('k', { rank: 4 }),
      F('v', { rank: 4 }),
      F('o'),
      F('lse'),
      F('p', { optional: true }),
    ],
    outputs: [F('dq'), F('dk'), F('dv')],
    attrs: ATTN_ATTRS,
    shapes: (c) => {
      const d = attnDims(c, 1, 2, 3);
      attnOut(c, 'input', 4, 5, 6, d);
      c.check(c.size(c.i(0)) === c.size(c.i(1)), 'input', 0, () => `must have q's shape ${fmt(c.i(1))}`);
      c.check(c.size(c.o(0)) === c.size(c.i(1)), 'output', 0, () => `must have q's shape ${fmt(c.i(1))}`);
      for (const k of [1, 2])
        c.check(c.size(c.o(k)) === c.size(c.i(2)), 'output', k, () => `must have k's shape ${fmt(c.i(2))}`);
      windowCheck(c);
    },
  },
  attention_qkv: {
    inputs: [F('qkv', { rank: 3 })],
    outputs: [F('o'), F('lse'), F('p', { optional: true })],
    attrs: QKV_ATTRS,
    shapes: (c) => attnOut(c, 'output', 0, 1, 2, qkvDims(c, 0)),
  },
  attention_qkv_backward: {
    inputs: [F('do'), F('qkv', { rank: 3 }), F('o'), F('lse'), F('p', { optional: true })],
    outputs: [F('dqkv')],
    attrs: QKV_ATTRS,
    shapes: (c) => {
      const d = qkvDims(c, 1);
      attnOut(c, 'input', 2, 3, 4, d);
      c.check(c.size(c.i(0)) === c.size(c.i(2)), 'input', 0, () => `must have o's shape ${fmt(c.i(2))}`);
      c.check(c.size(c.o(0)) === c.size(c.i(1)), 'output', 0, () => `must have qkv's shape ${fmt(c.i(1))}`);
    },
  },
  cross_entropy: {
    inputs: [F('logits', { minRank: 1 }), I('targets')],
    outputs: [F('loss'), F('lse')],
    attrs: { ignoreIndex: int({ default: -100 }) },
    shapes: rowwise(
      0,
      [],
      [],
      [
        ['input', 1],
        ['output', 0],
        ['output', 1],
      ],
    ),
  },
  cross_entropy_backward: {
    inputs: [F('logits', { minRank: 1 }), I('targets'), F('lse'), F('dloss')],
    outputs: [F('dlogits')],
    attrs: { ignoreIndex: int({ default: -100 }) },
    shapes: rowwise(
      0,
      [['output', 0]],
      [],
      [
        ['input', 1],
        ['input', 2],
        ['input', 3],
      ],
    ),
  },
  cross_entropy_backward_inplace: {
    inputs: [I('targets'), F('lse'), F('dloss')],
    outputs: [F('logits', { minRank: 1 })],
    attrs: { ignoreIndex: int({ default: -100 }) },
    reads: [{ output: 0 }],
    shapes: (c) => {
      const xs = c.o(0),
        V = xs[xs.length - 1]!,
        N = V === 0 ? 0 : c.size(xs) / V;
      for (const k of [0, 1, 2])
        c.check(c.size(c.i(k)) === N, 'input', k, () => `must hold N = ${N} elements (one per row of the logits)`);
    },
  },
  dropout: {
    inputs: [F('x')],
    outputs: [F('y')],
    attrs: { p: num({ required: true, min: 0, max: 1 }), seed: int({ required: true }) },
    shapes: sameSize,
  },
  adamw: {
    inputs: [F('grad', { variadic: true })],
    outputs: [F('param'), F('m'), F('v')],
    outputsPerInput: true,
    attrs: ADAMW_ATTRS,
    reads: [{ output: 'all' }],
    shapes: (c) => {
      for (let j = 0; j < c.inputs.length; j++) {
        const n = c.size(c.i(j));
        for (let r = 0; r < 3; r++)
          c.check(c.size(c.o(3 * j + r)) === n, 'output', 3 * j + r, () => `must have the ${n} elements of grad_${j}`);
      }
    },
  },
  sumsq: {
    inputs: [F('a', { variadic: true, minCount: 0 })],
    outputs: [F('out')],
    attrs: {},
    shapes: (c) => c.check(c.size(c.o(0)) === 1, 'output', 0, 'must hold one element'),
  },
  sum_all: {
    inputs: [F('a', { variadic: true, minCount: 0 })],
    outputs: [F('out')],
    attrs: {},
    shapes: (c) => c.check(c.size(c.o(0)) === 1, 'output', 0, 'must hold one element'),
  },
  sample: {
    inputs: [F('logits', { minRank: 1 })],
    outputs: [I('ids'), F('probs'), I('topIds', { optional: true }), F('topLogprobs', { optional: true })],
    attrs: {
      temperature: num({ required: true, min: 0 }),
      topK: int({ default: 0, min: 0 }),
      topP: num({ default: 1, min: 0, max: 1 }),
      minP: num({ default: 0, min: 0, max: 1 }),
      u: numbers({ required: true }),
      topN: int({ default: 0, min: 0 }),
      counts: numbers(),
      countOffsets: numbers(),
      repetitionPenalty: num({ default: 1 }),
      frequencyPenalty: num({ default: 0 }),
      presencePenalty: num({ default: 0 }),
    },
    shapes: (c) => {
      const ls = c.i(0),
        V = ls[ls.length - 1]!,
        N = V > 0 ? c.size(ls) / V : 0,
        topN = c.num('topN', 0);
      c.check(c.size(c.o(0)) === N, 'output', 0, () => `must hold one id per row: N = ${N}`);
      c.check(c.size(c.o(1)) === 2 * N, 'output', 1, () => `must be [N, 2] = [${N}, 2]`);
      c.require(
        c.outputs.length === (topN > 0 ? 4 : 2),
        () =>
          `topN ${topN} needs ${topN > 0 ? 'outputs ids, probs, topIds [N, topN] and topLogprobs [N, topN]' : 'outputs ids and probs only'}`,
      );
      for (const k of topN > 0 ? [2, 3] : [])
        c.check(c.size(c.o(k)) === N * topN, 'output', k, () => `must be [N, topN] = [${N}, ${topN}]`);
    },
  },
};

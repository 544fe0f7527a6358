/**
 * The one kernel-call validator: checks a call against its signature in ./signatures.ts (operand counts, dtypes,
 * ranks, attribute names, types and ranges, then the kernel's shape relations) and throws a named error saying which
 * kernel, which operand and what was expected. Every backend's `run` calls it first (ref, wasm, and a new backend
 * should too), so a kernel body may assume consistent shapes; ./dispatch.ts also calls it before scheduling an
 * asynchronous fallback, so a bad call fails where it was made, not later inside a queued host step.
 *
 * Cost: a few comparisons per operand and attribute, no allocation on a valid call (the decode hot path makes ~10²
 * calls a token).
 */
import type { Attrs, DType, View } from './backend.js';
import { SIGNATURES } from './signatures.js';
import { BackendError, ConfigError, ShapeError } from '../util/errors.js';

/** Which dtypes an operand takes: 'float' = f32 (or f64 on ref), 'i32', or 'any' (data movement, casts). */
export type DTypeRule = 'float' | 'i32' | 'any';

export interface OperandSig {
  name: string;
  dtype: DTypeRule;
  /** Exact rank, or the least rank with `minRank`. */
  rank?: number;
  minRank?: number;
  /** May be left out (only trailing operands). */
  optional?: boolean;
  /** Stands for any number of operands (≥ `minCount`, default 1), named name_0, name_1, … (the only operand). */
  variadic?: boolean;
  minCount?: number;
}

export interface AttrSig {
  type: 'number' | 'int' | 'boolean' | 'numbers' | 'string';
  required?: boolean;
  /** The value a kernel uses when the attribute is absent (documentation; the validator does not fill it in). */
  default?: number | boolean | string;
  min?: number;
  max?: number;
}

/** What a shape rule sees: the call, and helpers that throw a ShapeError naming the kernel and operand. */
export interface ShapeCtx {
  readonly kernel: string;
  readonly inputs: readonly View[];
  readonly outputs: readonly View[];
  readonly attrs: Attrs;
  /** Input k's shape. */
  i(k: number): readonly number[];
  /** Output k's shape. */
  o(k: number): readonly number[];
  /** Number of elements of a shape. */
  size(s: readonly number[]): number;
  /** A numeric attribute (booleans as 0/1) or its default. */
  num(name: string, dflt?: number): number;
  /** Throw unless `ok`: "<kernel>: <input|output> <name> [shape] <what>" (a function: built only on failure). */
  check(ok: boolean, side: 'input' | 'output', k: number, what: string | (() => string)): void;
  /** Throw unless `ok`, with a free message: "<kernel>: <msg>". */
  require(ok: boolean, msg: string | (() => string)): void;
}

export interface KernelSig {
  inputs: readonly OperandSig[];
  outputs: readonly OperandSig[];
  /** Outputs come in groups of `outputs.length`, one group per input (adamw: param, m, v for each gradient). */
  outputsPerInput?: boolean;
  attrs: Readonly<Record<string, AttrSig>>;
  /** Operands of rule 'any' must all share one dtype (data movement: no cast). */
  sameDType?: boolean;
  /** Outputs the kernel reads before writing (read-modify-write): always, or when the boolean attribute is set. */
  reads?: readonly { output: number | 'all'; when?: string }[];
  /** Relations between the shapes (and attributes) beyond counts, dtypes and ranks. */
  shapes?: (c: ShapeCtx) => void;
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;
function prod(s: readonly number[]): number {
  let n = 1;
  for (let k = 0; k < s.length; k++) n *= s[k]!;
  return n;
}

/** Operand k's name in a signature list (variadic operands are numbered). */
function operandName(list: readonly OperandSig[], k: number, perGroup: boolean): string {
  if (perGroup) return `${list[k % list.length]!.name}_${Math.floor(k / list.length)}`;
  const last = list[list.length - 1];
  if (last?.variadic && k >= list.length - 1) return `${last.name}_${k - (list.length - 1)}`;
  return list[k]?.name ?? `#${k}`;
}

/** The shape rules' view of a call; one instance, refilled per call (no allocation on the hot path). */
class Ctx implements ShapeCtx {
  kernel = '';
  sig!: KernelSig;
  inputs: readonly View[] = [];
  outputs: readonly View[] = [];
  attrs: Attrs = {};
  i(k: number): readonly number[] {
    return this.inputs[k]!.shape;
  }
  o(k: number): readonly number[] {
    return this.outputs[k]!.shape;
  }
  size(s: readonly number[]): number {
    return prod(s);
  }
  num(name: string, dflt?: number): number {
    const v = this.attrs[name];
    if (v === undefined) return dflt ?? NaN;
    return typeof v === 'boolean' ? (v ? 1 : 0) : (v as number);
  }
  check(ok: boolean, side: 'input' | 'output', k: number, what: string | (() => string)): void {
    if (ok) return;
    if (typeof what === 'function') what = what();
    const list = side === 'input' ? this.sig.inputs : this.sig.outputs;
    const v = side === 'input' ? this.inputs[k] : this.outputs[k];
    const name = operandName(list, k, side === 'output' && !!this.sig.outputsPerInput);
    throw new ShapeError(`${this.kernel}: ${side} ${name} ${v ? fmt(v.shape) : '(missing)'} ${what}`);
  }
  require(ok: boolean, msg: string | (() => string)): void {
    if (!ok) throw new ShapeError(`${this.kernel}: ${typeof msg === 'function' ? msg() : msg}`);
  }
}

/** Least and most operands a signature list takes (not per-input groups). */
function bounds(list: readonly OperandSig[]): [number, number] {
  const last = list[list.length - 1];
  if (last?.variadic) return [list.length - 1 + (last.minCount ?? 1), Infinity];
  let minN = 0;
  for (let k = 0; k < list.length; k++) if (!list[k]!.optional) minN = k + 1;
  return [minN, list.length];
}

function checkOperands(
  kernel: string,
  side: 'input' | 'output',
  list: readonly OperandSig[],
  views: readonly View[],
  perGroup: number,
  minN: number,
  maxN: number,
): void {
  if (perGroup >= 0) {
    if (views.length !== perGroup * list.length) {
      throw new ShapeError(
        `${kernel}: ${perGroup} inputs need ${perGroup * list.length} ${side}s (${list.map((s) => s.name).join(', ')} each), got ${views.length}`,
      );
    }
  } else if (views.length < minN || views.length > maxN) {
    const names = list.map((s) => (s.optional ? `[${s.name}]` : s.name)).join(', ');
    if (maxN === Infinity) {
      throw new ShapeError(`${kernel}: needs at least ${minN} ${side}s (${names}…), got ${views.length}`);
    }
    throw new ShapeError(
      `${kernel}: needs ${minN === maxN ? `${minN}` : `${minN} to ${maxN}`} ${side}s (${names}), got ${views.length}`,
    );
  }
  for (let k = 0; k < views.length; k++) {
    const s = perGroup >= 0 ? list[k % list.length]! : list[Math.min(k, list.length - 1)]!;
    const v = views[k]!;
    const dt = v.buf.dtype;
    if ((s.dtype === 'float' && dt !== 'f32' && dt !== 'f64') || (s.dtype === 'i32' && dt !== 'i32')) {
      throw new BackendError(
        'E_DTYPE',
        `${kernel}: ${side} ${operandName(list, k, perGroup >= 0)} is ${dt}, expected ${s.dtype === 'float' ? 'f32 or f64' : 'i32'}`,
      );
    }
    const r = v.shape.length;
    if ((s.rank !== undefined && r !== s.rank) || (s.minRank !== undefined && r < s.minRank)) {
      throw new ShapeError(
        `${kernel}: ${side} ${operandName(list, k, perGroup >= 0)} ${fmt(v.shape)} must have rank ${s.rank ?? `≥ ${s.minRank}`}`,
      );
    }
    const n = prod(v.shape);
    if (!(n <= v.buf.length)) {
      throw new ShapeError(
        `${kernel}: ${side} ${operandName(list, k, perGroup >= 0)} ${fmt(v.shape)} (${n} elements) is larger than its buffer of ${v.buf.length}`,
      );
    }
  }
}

function checkAttrs(kernel: string, c: Compiled, attrs: Attrs): void {
  // names first (a cheap pass over the call's keys), then each declared attribute that is present
  for (const key in attrs) {
    if (!c.attrs.has(key) && attrs[key] !== undefined) {
      throw new ConfigError(
        key,
        `${kernel}: unknown kernel attribute (expected one of: ${[...c.attrs.keys()].join(', ') || 'none'})`,
      );
    }
  }
  for (let j = 0; j < c.attrNames.length; j++) {
    const key = c.attrNames[j]!,
      v = attrs[key];
    if (v === undefined) {
      if (c.attrSigs[j]!.required) throw new ConfigError(key, `${kernel}: kernel attribute is required`);
      continue;
    }
    const a = c.attrSigs[j]!;
    let ok: boolean;
    if (a.type === 'boolean') ok = typeof v === 'boolean' || v === 0 || v === 1;
    else if (a.type === 'numbers') ok = Array.isArray(v) && v.every((x) => typeof x === 'number');
    else if (a.type === 'string') ok = typeof v === 'string';
    else if (typeof v === 'boolean') ok = true;
    // a NaN factor is IEEE arithmetic, not a malformed call: it makes NaN data, which the training loop reports as
    // divergence (TrainingDivergedError); a bounded attribute still refuses it below
    else ok = typeof v === 'number' && (a.type === 'number' || Number.isInteger(v));
    if (!ok) {
      throw new ConfigError(
        key,
        `${kernel}: kernel attribute must be ${a.type === 'int' ? 'an integer' : a.type === 'numbers' ? 'a number array' : `a ${a.type}`}, got ${Array.isArray(v) ? 'an array' : String(v)}`,
      );
    }
    const bounded = a.min !== undefined || a.max !== undefined;
    if (
      typeof v === 'number' &&
      bounded &&
      (Number.isNaN(v) || (a.min !== undefined && v < a.min) || (a.max !== undefined && v > a.max))
    ) {
      throw new ConfigError(key, `${kernel}: kernel attribute ${v} outside [${a.min ?? '−∞'}, ${a.max ?? '∞'}]`);
    }
  }
}

const NO_ATTRS: Attrs = Object.freeze({});
const CTX = new Ctx();

/** Per kernel: its signature with the operand-count bounds and required attributes worked out once. */
interface Compiled {
  sig: KernelSig;
  inMin: number;
  inMax: number;
  outMin: number;
  outMax: number;
  attrs: ReadonlyMap<string, AttrSig>;
  attrNames: readonly string[];
  attrSigs: readonly AttrSig[];
}
const COMPILED = new Map<string, Compiled>(
  Object.entries(SIGNATURES as Readonly<Record<string, KernelSig>>).map(([name, sig]) => {
    const [inMin, inMax] = bounds(sig.inputs),
      [outMin, outMax] = bounds(sig.outputs);
    const attrNames = Object.keys(sig.attrs);
    return [
      name,
      {
        sig,
        inMin,
        inMax,
        outMin,
        outMax,
        attrs: new Map(Object.entries(sig.attrs)),
        attrNames,
        attrSigs: attrNames.map((k) => sig.attrs[k]!),
      },
    ];
  }),
);

/** The float dtype and the 'any' dtype seen so far in one call (module state: no allocation per call). */
let seenFloat: DType | null = null,
  seenAny: DType | null = null;

/** Check that float operands (and 'any' ones, with sameDType) share a dtype across the call. */
function sameDTypes(
  name: string,
  sig: KernelSig,
  list: readonly OperandSig[],
  views: readonly View[],
  perGroup: boolean,
): void {
  for (let k = 0; k < views.length; k++) {
    const rule = (perGroup ? list[k % list.length] : list[Math.min(k, list.length - 1)])!.dtype;
    const dt = views[k]!.buf.dtype;
    if (rule === 'float') {
      if (seenFloat && dt !== seenFloat) {
        throw new BackendError('E_DTYPE', `${name}: float operands mix ${seenFloat} and ${dt}`);
      }
      seenFloat = dt;
    } else if (rule === 'any' && sig.sameDType) {
      if (seenAny && dt !== seenAny) {
        throw new BackendError('E_DTYPE', `${name}: operands mix ${seenAny} and ${dt} (no cast here; copy casts)`);
      }
      seenAny = dt;
    }
  }
}

/**
 * Check one kernel call against its signature; throws BackendError E_KERNEL (unknown kernel) or E_DTYPE, ShapeError
 * or ConfigError (attributes), each naming the kernel and the operand or attribute.
 */
export function validateKernelCall(
  name: string,
  inputs: readonly View[],
  outputs: readonly View[],
  attrs: Attrs = NO_ATTRS,
): void {
  const c = COMPILED.get(name);
  if (!c) throw new BackendError('E_KERNEL', `unknown kernel '${name}' (the catalogue is src/backend/kernels.ts)`);
  const sig = c.sig;
  checkOperands(name, 'input', sig.inputs, inputs, -1, c.inMin, c.inMax);
  checkOperands(name, 'output', sig.outputs, outputs, sig.outputsPerInput ? inputs.length : -1, c.outMin, c.outMax);
  // every float operand shares one dtype (f32 everywhere, or f64 everywhere on ref), and so do 'any' ones if asked
  seenFloat = seenAny = null;
  sameDTypes(name, sig, sig.inputs, inputs, false);
  sameDTypes(name, sig, sig.outputs, outputs, !!sig.outputsPerInput);
  checkAttrs(name, c, attrs);
  if (sig.shapes) {
    CTX.kernel = name;
    CTX.sig = sig;
    CTX.inputs = inputs;
    CTX.outputs = outputs;
    CTX.attrs = attrs;
    sig.shapes(CTX);
  }
}

/** Which outputs a call reads before writing (read-modify-write), from the signature: a fallback must copy them in. */
export function outputsRead(name: string, outputs: number, attrs: Attrs = NO_ATTRS): boolean[] {
  const sig = (SIGNATURES as Readonly<Record<string, KernelSig>>)[name];
  const r = new Array<boolean>(outputs).fill(false);
  for (const rd of sig?.reads ?? []) {
    if (rd.when !== undefined && !attrs[rd.when]) continue;
    if (rd.output === 'all') r.fill(true);
    else if (rd.output < outputs) r[rd.output] = true;
  }
  return r;
}

/**
 * Seeded random numbers. All randomness in `src/` goes through an `Rng` that the caller passes in (no Math.random):
 * the same seed gives the same initialisation, batches, dropout masks and samples on every run and backend.
 *
 * Generator: PCG-XSH-RR 32-bit output on a 64-bit state (O'Neill 2014), kept as two 32-bit halves so it runs on
 * plain JavaScript numbers. Its state is two integers and can be saved in a checkpoint and restored exactly.
 */

const MUL_HI = 0x5851f42d;
const MUL_LO = 0x4c957f2d;
const INC_HI = 0x14057b7e;
const INC_LO = 0xf767814f;

/** 64-bit multiply-add on (hi, lo) pairs, mod 2^64. */
function mulAdd64(hi: number, lo: number): [number, number] {
  // (hi·2^32 + lo) · (MUL_HI·2^32 + MUL_LO) + INC  mod 2^64
  const a0 = lo & 0xffff,
    a1 = lo >>> 16;
  const b0 = MUL_LO & 0xffff,
    b1 = MUL_LO >>> 16;
  const lo0 = a0 * b0;
  const mid = a1 * b0 + a0 * b1 + (lo0 >>> 16);
  const loRes = ((mid & 0xffff) << 16) | (lo0 & 0xffff);
  let hiRes = a1 * b1 + Math.floor(mid / 65536);
  hiRes = (hiRes + Math.imul(hi, MUL_LO) + Math.imul(lo, MUL_HI)) >>> 0;
  let newLo = (loRes >>> 0) + INC_LO;
  const carry = newLo > 0xffffffff ? 1 : 0;
  newLo >>>= 0;
  const newHi = (hiRes + INC_HI + carry) >>> 0;
  return [newHi, newLo];
}

export interface RngState {
  hi: number;
  lo: number;
  /** Cached second normal deviate of Box-Muller, or null. */
  spare: number | null;
}

export class Rng {
  private hi = 0;
  private lo = 0;
  private spare: number | null = null;

  constructor(seed: number | bigint = 0) {
    this.seed(seed);
  }

  /** Re-seed. Any integer (or bigint) works; equal seeds give equal streams. */
  seed(seed: number | bigint): void {
    const s = BigInt.asUintN(64, BigInt(typeof seed === 'number' ? Math.trunc(seed) : seed));
    this.hi = Number(s >> 32n) >>> 0;
    this.lo = Number(s & 0xffffffffn) >>> 0;
    this.spare = null;
    this.nextU32();
    this.nextU32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const oldHi = this.hi,
      oldLo = this.lo;
    [this.hi, this.lo] = mulAdd64(oldHi, oldLo);
    // xorshifted = ((old >> 18) ^ old) >> 27, as 32 bits; rot = old >> 59
    const xhi = (oldHi >>> 18) ^ oldHi;
    const xlo = ((oldLo >>> 18) | (oldHi << 14)) ^ oldLo;
    const xorshifted = ((xlo >>> 27) | (xhi << 5)) >>> 0;
    const rot = oldHi >>> 27;
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  random(): number {
    const a = this.nextU32() >>> 5,
      b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** Standard normal deviate (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A new generator whose stream is derived from this one (advances this one by two draws). */
  fork(): Rng {
    const r = new Rng(0);
    r.hi = this.nextU32();
    r.lo = this.nextU32();
    return r;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }

  getState(): RngState {
    return { hi: this.hi, lo: this.lo, spare: this.spare };
  }

  setState(s: RngState): void {
    this.hi = s.hi >>> 0;
    this.lo = s.lo >>> 0;
    this.spare = s.spare;
  }
}

/**
 * Counter-based hash used for dropout masks: uniform in [0, 1) from (seed, index), identical on every backend
 * (a WASM or WGSL kernel computes the same integer arithmetic). splitmix32-style finaliser.
 */
export function hashUniform(seed: number, index: number): number {
  let x = (Math.imul(index ^ 0x9e3779b9, 0x85ebca6b) ^ seed) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return (x >>> 0) / 4294967296;
}

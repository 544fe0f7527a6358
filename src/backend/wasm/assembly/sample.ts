/**
 * The `sample` kernel: one token drawn from one row of logits (temperature, top-k, top-p, min-p), a port operation
 * for operation of src/backend/sampling.ts `sampleRow`. All weights and sums are float64 in the same order as
 * there (IEEE arithmetic, no fused multiply-add, the same exp table handed in by the caller), so the drawn id is
 * the one JavaScript draws from the same row and uniform number. The exponentials are taken two at a time
 * (f64x2: each lane is the same IEEE operation sequence as the scalar code); every sum stays sequential in id order.
 *
 * Scratch layout (bytes from `scratch`, see sample_scratch_bytes): [0, 524288) mass per bin (65536 float64);
 * then w (V float64); then a quickselect copy (V float64), reused by writeTop (256 bytes) once the draw is done.
 */

const BIN_SHIFT: u32 = 14; // as in ref: sign, 11 exponent bits, 6 mantissa bits of a double's high word
const NBINS: i32 = 65536; // weights are ≤ 1, whose high word >>> 14 is ≤ 65472
const TOP_BIN: i32 = 65472; // the bin of 1.0
const INV_LN2_256: f64 = 256 / 0.6931471805599453;
const LN2_256_HI: f64 = 0.6931471803691238 / 256;
const LN2_256_LO: f64 = 1.9082149292705877e-10 / 256;

/** Scratch bytes the kernel needs for a row of V logits. */
export function sample_scratch_bytes(V: i32): usize {
  return <usize>NBINS * 8 + (<usize>V << 4) + 256; // + writeTop's lists
}

// @ts-ignore: decorator
@inline function expNonPositive(x: f64, table: usize): f64 {
  if (!(x >= -700)) return 0;
  const k = <i32>(-x * INV_LN2_256 + 0.5);
  const kf = <f64>k;
  const r = x + kf * LN2_256_HI + kf * LN2_256_LO;
  const p = 1 + r * (1 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120)))));
  const pow2 = reinterpret<f64>(<i64>(1023 - (k >>> 8)) << 52);
  return p * load<f64>(table + (<usize>(k & 255) << 3)) * pow2;
}

/**
 * exp of two non-positive lanes, each lane the same operations as `expNonPositive` (lanes below −700 or NaN give
 * 0). Table entries are gathered lane by lane.
 */
// @ts-ignore: decorator
@inline function expNonPositive2(x: v128, table: usize): v128 {
  const ok = f64x2.ge(x, f64x2.splat(-700));
  const xs = v128.and(x, ok); // NaN/too small lanes → 0 (result masked below)
  const kf0 = f64x2.add(f64x2.mul(f64x2.neg(xs), f64x2.splat(INV_LN2_256)), f64x2.splat(0.5));
  const ki = i32x4.trunc_sat_f64x2_s_zero(kf0);
  const kf = f64x2.convert_low_i32x4_s(ki);
  const r = f64x2.add(f64x2.add(xs, f64x2.mul(kf, f64x2.splat(LN2_256_HI))), f64x2.mul(kf, f64x2.splat(LN2_256_LO)));
  let p = f64x2.add(f64x2.splat(1.0 / 24), f64x2.mul(r, f64x2.splat(1.0 / 120)));
  p = f64x2.add(f64x2.splat(1.0 / 6), f64x2.mul(r, p));
  p = f64x2.add(f64x2.splat(0.5), f64x2.mul(r, p));
  p = f64x2.add(f64x2.splat(1), f64x2.mul(r, p));
  p = f64x2.add(f64x2.splat(1), f64x2.mul(r, p));
  const k0 = i32x4.extract_lane(ki, 0), k1 = i32x4.extract_lane(ki, 1);
  let t = f64x2.splat(load<f64>(table + (<usize>(k0 & 255) << 3)));
  t = f64x2.replace_lane(t, 1, load<f64>(table + (<usize>(k1 & 255) << 3)));
  const e = i64x2.shl(i64x2.sub(i64x2.splat(1023), i64x2.extend_low_i32x4_s(i32x4.shr_u(ki, 8))), 52);
  return v128.and(f64x2.mul(f64x2.mul(p, t), e), ok);
}

/** A float32's bits mapped to an unsigned key that orders like the value. */
// @ts-ignore: decorator
@inline function orderKey(bits: u32): u32 {
  return bits ^ (<u32>(<i32>bits >> 31) | 0x80000000);
}

/**
 * k-th largest value (1-based) of the row: the value is unique, so unlike the rest this need not follow ref's
 * steps. Count the entries per 4096 bins of the order key, find the bin holding the k-th, and quickselect among
 * that bin's values only (copied as float64 to `a`); `counts` is 16 KiB of scratch.
 */
function kthLargest(src: usize, V: i32, k: i32, a: usize, counts: usize): f64 {
  memory.fill(counts, 0, 4096 << 2);
  for (let i = 0; i < V; i++) {
    const pc = counts + (<usize>(orderKey(load<u32>(src + (<usize>i << 2))) >>> 20) << 2);
    store<u32>(pc, load<u32>(pc) + 1);
  }
  let above = 0, b = 4095;
  for (; b > 0; b--) {
    const c = <i32>load<u32>(counts + (<usize>b << 2));
    if (above + c >= k) break;
    above += c;
  }
  let n = 0;
  for (let i = 0; i < V; i++) {
    const bits = load<u32>(src + (<usize>i << 2));
    if (<i32>(orderKey(bits) >>> 20) == b) store<f64>(a + (<usize>(n++) << 3), <f64>reinterpret<f32>(bits));
  }
  let lo = 0, hi = n - 1;
  const target = k - above - 1;
  while (lo < hi) {
    const pivot = load<f64>(a + (<usize>((lo + hi) >>> 1) << 3));
    let i = lo, j = hi;
    while (i <= j) {
      while (load<f64>(a + (<usize>i << 3)) > pivot) i++;
      while (load<f64>(a + (<usize>j << 3)) < pivot) j--;
      if (i <= j) {
        const t = load<f64>(a + (<usize>i << 3));
        store<f64>(a + (<usize>i << 3), load<f64>(a + (<usize>j << 3)));
        store<f64>(a + (<usize>j << 3), t);
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return load<f64>(a + (<usize>target << 3));
  }
  return load<f64>(a + (<usize>target << 3));
}

// results of nucleusSelect (no multi-value returns)
let nucT: f64 = 0;
let nucKEq: i32 = 0;

/** The exact nucleus rule by three-way quickselect over the positive values a[0..n) (as ref's nucleusSelect). */
function nucleusSelect(a: usize, n: i32, p: f64): void {
  let lo = 0, hi = n;
  let acc: f64 = 0;
  while (hi > lo) {
    const x = load<f64>(a + (<usize>lo << 3)), y = load<f64>(a + (<usize>((lo + hi) >>> 1) << 3)), z = load<f64>(a + (<usize>(hi - 1) << 3));
    const v = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let gt = lo, i = lo, lt = hi;
    while (i < lt) {
      const w = load<f64>(a + (<usize>i << 3));
      if (w > v) {
        store<f64>(a + (<usize>i << 3), load<f64>(a + (<usize>gt << 3)));
        store<f64>(a + (<usize>gt << 3), w);
        gt++;
        i++;
      } else if (w < v) {
        lt--;
        store<f64>(a + (<usize>i << 3), load<f64>(a + (<usize>lt << 3)));
        store<f64>(a + (<usize>lt << 3), w);
      } else i++;
    }
    let mG: f64 = 0;
    for (let j = lo; j < gt; j++) mG += load<f64>(a + (<usize>j << 3));
    if (gt > lo && acc + mG >= p) {
      hi = gt;
      continue;
    }
    let before = acc + mG;
    const nEq = lt - gt;
    let k = 0;
    while (k < nEq && before < p) {
      before += v;
      k++;
    }
    if (before >= p || lt == hi) {
      nucT = v;
      nucKEq = k;
      return;
    }
    acc = before;
    lo = lt;
  }
  nucT = 0;
  nucKEq = 0;
}

/** Add a weight ≤ 1 to its mass bin. */
// @ts-ignore: decorator
@inline function binAdd(bins: usize, e: f64): void {
  const pb = bins + (<usize>(<u32>(reinterpret<u64>(e) >>> 32) >>> BIN_SHIFT) << 3);
  store<f64>(pb, load<f64>(pb) + e);
}

/** Positive entries of w[0..V) into a, in order; their count. */
function copyPositive(w: usize, V: i32, a: usize): i32 {
  let n = 0;
  for (let i = 0; i < V; i++) {
    const v = load<f64>(w + (<usize>i << 3));
    if (v > 0) store<f64>(a + (<usize>(n++) << 3), v);
  }
  return n;
}

/** Σ exp(l − m) over the row in id order (ref's logSumExp before its log), four at a time. */
function expSum(src: usize, V: i32, m: f64, table: usize): f64 {
  let s: f64 = 0;
  const mv = f64x2.splat(m);
  let i = 0;
  for (; i + 4 <= V; i += 4) {
    const x4 = v128.load(src + (<usize>i << 2));
    const e0 = expNonPositive2(f64x2.sub(f64x2.promote_low_f32x4(x4), mv), table);
    const e1 = expNonPositive2(f64x2.sub(f64x2.promote_low_f32x4(i32x4.shuffle(x4, x4, 2, 3, 0, 1)), mv), table);
    s += f64x2.extract_lane(e0, 0);
    s += f64x2.extract_lane(e0, 1);
    s += f64x2.extract_lane(e1, 0);
    s += f64x2.extract_lane(e1, 1);
  }
  for (; i < V; i++) s += expNonPositive(<f64>load<f32>(src + (<usize>i << 2)) - m, table);
  return s;
}

/**
 * The n largest logits of the row (ref's topN: insertion into a sorted list, largest first, lowest id first among
 * equals) as ids at topIds (i32) and logit − lse at topLps (f32); −1 / −Infinity past the row's length.
 * `tmp`: 240 bytes of scratch (n ≤ 20).
 */
function writeTop(src: usize, V: i32, n: i32, lse: f64, topIds: usize, topLps: usize, tmp: usize): void {
  if (n <= 0) return;
  const ids = tmp, vals = tmp + 128;
  let cnt = 0;
  for (let i = 0; i < V; i++) {
    const x = <f64>load<f32>(src + (<usize>i << 2));
    if (cnt == n && !(x > load<f64>(vals + (<usize>(n - 1) << 3)))) continue;
    let j = cnt == n ? n - 1 : cnt;
    while (j > 0 && x > load<f64>(vals + (<usize>(j - 1) << 3))) {
      if (j < n) {
        store<i32>(ids + (<usize>j << 2), load<i32>(ids + (<usize>(j - 1) << 2)));
        store<f64>(vals + (<usize>j << 3), load<f64>(vals + (<usize>(j - 1) << 3)));
      }
      j--;
    }
    store<i32>(ids + (<usize>j << 2), i);
    store<f64>(vals + (<usize>j << 3), x);
    if (cnt < n) cnt++;
  }
  for (let k = 0; k < n; k++) {
    const pi = topIds + (<usize>k << 2), pl = topLps + (<usize>k << 2);
    if (k < cnt) {
      store<i32>(pi, load<i32>(ids + (<usize>k << 2)));
      store<f32>(pl, <f32>(load<f64>(vals + (<usize>k << 3)) - lse));
    } else {
      store<i32>(pi, -1);
      store<f32>(pl, -Infinity);
    }
  }
}

/** log Σ exp of a row (ref's logSumExp: its max, then Σ exp(l − max) in id order). */
function rowLse(p: usize, V: i32, table: usize): f64 {
  let vmax = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= V; i += 4) vmax = f32x4.pmax(vmax, v128.load(p + (<usize>i << 2)));
  let m: f64 = -Infinity;
  for (let l = 0; l < 4; l++) {
    const a = <f64>(l == 0 ? f32x4.extract_lane(vmax, 0) : l == 1 ? f32x4.extract_lane(vmax, 1) : l == 2 ? f32x4.extract_lane(vmax, 2) : f32x4.extract_lane(vmax, 3));
    if (a > m) m = a;
  }
  for (; i < V; i++) {
    const x = <f64>load<f32>(p + (<usize>i << 2));
    if (x > m) m = x;
  }
  return m + Math.log(expSum(p, V, m, table));
}

/**
 * Sample one row of V float32 logits at `src`, the row after the penalties; `orig` is the row before them (= src
 * without penalties), whose log Σ exp gives the reported log-probabilities (drawn id, top alternatives). Writes the id to `idOut` (i32) and (prob, logprob) to `probOut`
 * (two float32). `u` is the uniform number in [0, 1) (ignored at temperature 0); topK 0 = off, topP 1 = off,
 * minP 0 = off. `table` holds 2^(−j/256), j = 0..255, as float64 (ref's EXP_TABLE).
 */
export function sample_row(src: usize, V: i32, temperature: f64, topK: i32, topP: f64, minP: f64, u: f64, table: usize,
  idOut: usize, probOut: usize, scratch: usize, topN: i32, topIds: usize, topLps: usize, orig: usize): void {
  const bins = scratch;
  const w = scratch + (<usize>NBINS << 3);
  const sub = w + (<usize>V << 3);
  // max and min, four lanes at a time; pmax/pmin keep the accumulator against NaN, as ref's `x > max` does
  let vmax = f32x4.splat(-Infinity), vmin = f32x4.splat(Infinity);
  let i0 = 0;
  for (; i0 + 4 <= V; i0 += 4) {
    const x4 = v128.load(src + (<usize>i0 << 2));
    vmax = f32x4.pmax(vmax, x4);
    vmin = f32x4.pmin(vmin, x4);
  }
  let m: f64 = -Infinity, mn: f64 = Infinity;
  for (let l = 0; l < 4; l++) {
    const a = <f64>(l == 0 ? f32x4.extract_lane(vmax, 0) : l == 1 ? f32x4.extract_lane(vmax, 1) : l == 2 ? f32x4.extract_lane(vmax, 2) : f32x4.extract_lane(vmax, 3));
    const b = <f64>(l == 0 ? f32x4.extract_lane(vmin, 0) : l == 1 ? f32x4.extract_lane(vmin, 1) : l == 2 ? f32x4.extract_lane(vmin, 2) : f32x4.extract_lane(vmin, 3));
    if (a > m) m = a;
    if (b < mn) mn = b;
  }
  for (; i0 < V; i0++) {
    const x = <f64>load<f32>(src + (<usize>i0 << 2));
    if (x > m) m = x;
    if (x < mn) mn = x;
  }
  if (temperature == 0) {
    // argmax: the first entry equal to the max (lowest id on ties)
    let best = 0;
    while (best < V && <f64>load<f32>(src + (<usize>best << 2)) != m) best++;
    if (best == V) best = 0; // no entry above -Infinity (all NaN): ref's argmax keeps id 0
    const lse = orig != src ? rowLse(orig, V, table) : m + Math.log(expSum(src, V, m, table));
    writeTop(orig, V, topN, lse, topIds, topLps, sub);
    store<i32>(idOut, best);
    store<f32>(probOut, 1);
    store<f32>(probOut, <f32>(<f64>load<f32>(orig + (<usize>best << 2)) - lse), 4);
    return;
  }
  let thr: f64 = -Infinity;
  if (topK > 0 && topK < V) thr = kthLargest(src, V, topK, sub, bins); // the bins are cleared after
  const invT: f64 = 1 / temperature;
  const binned = topP < 1 && V >= 4096;
  const plain = !binned && thr == -Infinity; // every entry kept: the kept sum is the total, term for term
  // top-p without top-k keeps every entry too, so the bins fill in the exponentials' pass: adding an underflowed
  // 0 to a bin changes nothing, and any range holding every entry's bin walks the same bins as ref's [bottom, top]
  const fused = binned && thr == -Infinity;
  let b0 = 0;
  if (binned) {
    // zero the bins the weights can reach: from the smallest entry's (less one, for rounding) to 1.0's
    const emin = expNonPositive((mn - m) * invT, table);
    b0 = emin > 0 ? max(0, <i32>(<u32>(reinterpret<u64>(emin) >>> 32) >>> BIN_SHIFT) - 1) : 0;
    memory.fill(bins + (<usize>b0 << 3), 0, <usize>(TOP_BIN + 1 - b0) << 3);
  }
  // the exponentials, four at a time, and their total in id order
  let all: f64 = 0;
  const mv = f64x2.splat(m), iv = f64x2.splat(invT);
  let i = 0;
  for (; i + 4 <= V; i += 4) {
    const x4 = v128.load(src + (<usize>i << 2));
    const lo = f64x2.promote_low_f32x4(x4);
    const hi = f64x2.promote_low_f32x4(i32x4.shuffle(x4, x4, 2, 3, 0, 1));
    const e0 = expNonPositive2(f64x2.mul(f64x2.sub(lo, mv), iv), table);
    const e1 = expNonPositive2(f64x2.mul(f64x2.sub(hi, mv), iv), table);
    const pw = w + (<usize>i << 3);
    v128.store(pw, e0);
    v128.store(pw, e1, 16);
    const a0 = f64x2.extract_lane(e0, 0), a1 = f64x2.extract_lane(e0, 1), a2 = f64x2.extract_lane(e1, 0), a3 = f64x2.extract_lane(e1, 1);
    all += a0;
    all += a1;
    all += a2;
    all += a3;
    if (fused) {
      binAdd(bins, a0);
      binAdd(bins, a1);
      binAdd(bins, a2);
      binAdd(bins, a3);
    }
  }
  for (; i < V; i++) {
    const e = expNonPositive((<f64>load<f32>(src + (<usize>i << 2)) - m) * invT, table);
    store<f64>(w + (<usize>i << 3), e);
    all += e;
    if (fused) binAdd(bins, e);
  }
  // top-k cut and mass bins (ref's loop body, in id order); with neither, every entry is kept and the kept sum is
  // the total term for term
  let sum = all;
  let top = fused ? TOP_BIN : 0, bottom = fused ? b0 : NBINS;
  if (!plain && !fused) {
    sum = 0;
    for (let j = 0; j < V; j++) {
      const pw = w + (<usize>j << 3);
      const e = load<f64>(pw);
      if (<f64>load<f32>(src + (<usize>j << 2)) >= thr && (!binned || e > 0)) {
        sum += e;
        if (binned) {
          const b = <i32>(<u32>(reinterpret<u64>(e) >>> 32) >>> BIN_SHIFT);
          const pb = bins + (<usize>b << 3);
          store<f64>(pb, load<f64>(pb) + e);
          if (b > top) top = b;
          if (b < bottom) bottom = b;
        }
      } else store<f64>(pw, 0);
    }
  }
  // the model's normaliser for the reported log-probabilities: of the row before the penalties (orig)
  const lse = orig != src ? rowLse(orig, V, table) : temperature == 1 ? m + Math.log(all) : m + Math.log(expSum(src, V, m, table));
  // top-p
  if (topP < 1) {
    const p = topP * sum;
    if (binned) {
      let acc: f64 = 0;
      let found = false;
      for (let b = top; b >= bottom; b--) {
        const mb = load<f64>(bins + (<usize>b << 3));
        if (mb == 0) continue;
        if (acc + mb >= p) {
          let n = 0;
          for (let j = 0; j < V; j++) {
            const v = load<f64>(w + (<usize>j << 3));
            if (v > 0 && <i32>(<u32>(reinterpret<u64>(v) >>> 32) >>> BIN_SHIFT) == b) store<f64>(sub + (<usize>(n++) << 3), v);
          }
          nucleusSelect(sub, n, p - acc);
          found = true;
          break;
        }
        acc += mb;
      }
      if (!found) nucleusSelect(sub, copyPositive(w, V, sub), p);
    } else nucleusSelect(sub, copyPositive(w, V, sub), p);
    const t = nucT, kEq = nucKEq;
    // kept: q > t, or q = t among the first kEq such (branch-free: the two cases interleave unpredictably);
    // adding 0 for a dropped entry leaves the sum's bits as ref's skip does
    let eq = 0;
    sum = 0;
    for (let j = 0; j < V; j++) {
      const pw = w + (<usize>j << 3);
      const q = load<f64>(pw);
      const isEq = <i32>(q == t);
      const keep = <i32>(q > t) | (isEq & <i32>(eq < kEq));
      eq += isEq;
      const kq = q * <f64>keep; // q·1 = q, q·0 = 0 (a float select would be a branch)
      sum += kq;
      store<f64>(pw, kq);
    }
  }
  // min-p
  if (minP > 0) {
    let wmax: f64 = 0;
    for (let j = 0; j < V; j++) {
      const q = load<f64>(w + (<usize>j << 3));
      if (q > wmax) wmax = q;
    }
    const cut = minP * wmax;
    sum = 0;
    for (let j = 0; j < V; j++) {
      const pw = w + (<usize>j << 3);
      const q = load<f64>(pw);
      if (q < cut) store<f64>(pw, 0);
      else sum += q;
    }
  }
  // draw
  const target = u * sum;
  // the first entry whose running sum passes the target (a zero entry adds nothing, so it is never the one), else
  // the last positive entry
  let acc: f64 = 0;
  let id = -1;
  for (let j = 0; j < V; j++) {
    const q = load<f64>(w + (<usize>j << 3));
    acc += q;
    id = select<i32>(j, id, q > 0);
    if (target < acc) break;
  }
  store<i32>(idOut, id);
  writeTop(orig, V, topN, lse, topIds, topLps, sub);
  if (id < 0) {
    store<f32>(probOut, NaN);
    store<f32>(probOut, NaN, 4);
    return;
  }
  store<f32>(probOut, <f32>(load<f64>(w + (<usize>id << 3)) / sum));
  store<f32>(probOut, <f32>(<f64>load<f32>(orig + (<usize>id << 2)) - lse), 4);
}

/**
 * safetensors reader/writer: bit-exact round trips of every fixture file, the reference serializer's byte layout,
 * F16/BF16 conversion (exhaustive over all 16-bit patterns), every malformed-file case with its named error, and
 * sharded checkpoints.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  decodeSafetensors,
  encodeSafetensors,
  serializeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  loadCheckpointTensors,
  saveCheckpointTensors,
  readSafetensorsIndex,
  f32BitsToF16Bits,
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  bf16BitsToF32Bits,
  toF16Bits,
  toBf16Bits,
  fromF16Bits,
  f32ToBits,
  bitsToF32,
  type StoredTensor,
  type TensorToWrite,
} from '../src/formats/index.js';
import { FileFormatError, UnsupportedError } from '../src/util/errors.js';
import { HF_FIXTURES as FIXTURES, itFindsFixtures, needFixtures } from './helpers.js';

function fixtureFiles(): string[] {
  if (!fs.existsSync(FIXTURES)) return [];
  const out: string[] = [];
  for (const d of fs.readdirSync(FIXTURES).sort()) {
    const dir = path.join(FIXTURES, d);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir).sort()) if (f.endsWith('.safetensors')) out.push(path.join(dir, f));
  }
  return out;
}

const files = fixtureFiles();
let tmp: string;

beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'llmts-st-'));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Build a file from a header object (or raw header text) and a data area. */
function makeFile(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.byteLength));
  return Buffer.concat([len, h, data]);
}

async function expectFormatError(
  bytes: Uint8Array,
  code: string,
  contains: (string | RegExp)[],
  name: string,
): Promise<FileFormatError> {
  const file = path.join(tmp, `${name}.safetensors`);
  await fsp.writeFile(file, bytes);
  let err: unknown;
  try {
    await readSafetensors(file);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FileFormatError);
  const fe = err as FileFormatError;
  expect(fe.code).toBe(code);
  expect(fe.file).toBe(file);
  expect(fe.message).toContain(file);
  for (const c of contains) expect(fe.message).toMatch(c);
  // the in-memory decoder agrees
  expect(() => decodeSafetensors(bytes, 'mem.safetensors')).toThrow(FileFormatError);
  return fe;
}

describe('fixtures', () => {
  itFindsFixtures(files.length, 'safetensors fixture files');

  for (const file of files) {
    const rel = path.relative(FIXTURES, file);
    it(`${rel}: decodes values that agree with an independent DataView decode`, async () => {
      const st = await readSafetensors(file);
      const header = await readSafetensorsHeader(file);
      expect([...st.tensors.keys()]).toEqual(header.entries.map((e) => e.name));
      const bytes = fs.readFileSync(file);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (const e of header.entries) {
        const t = st.tensors.get(e.name)!;
        expect(t.shape).toEqual(e.shape);
        expect(t.data.length).toBe(e.shape.reduce((a, b) => a * b, 1));
        const base = header.dataStart + e.begin;
        for (let i = 0; i < t.data.length; i += Math.max(1, Math.floor(t.data.length / 97))) {
          const want =
            e.dtype === 'F32'
              ? dv.getFloat32(base + 4 * i, true)
              : e.dtype === 'I32'
                ? dv.getInt32(base + 4 * i, true)
                : NaN;
          expect(Object.is(t.data[i], want)).toBe(true);
        }
        expect(Buffer.compare(Buffer.from(t.raw), bytes.subarray(base, base + e.end - e.begin))).toBe(0);
      }
    });

    it(`${rel}: re-serializing reproduces the file byte for byte`, async () => {
      const st = await readSafetensors(file);
      const original = fs.readFileSync(file);
      // from decoded data (not raw): proves the encoder, order and header layout match the reference writer
      const fromData = new Map<string, TensorToWrite>();
      for (const [name, t] of st.tensors) fromData.set(name, { dtype: t.dtype, shape: t.shape, data: t.data });
      const again = serializeSafetensors(fromData, st.metadata);
      expect(again.byteLength).toBe(original.byteLength);
      expect(Buffer.compare(Buffer.from(again), original)).toBe(0);
    });

    it(`${rel}: write → read round trip keeps every tensor bit for bit`, async () => {
      const st = await readSafetensors(file);
      const out = path.join(tmp, `rt-${rel.replace(/[\\/]/g, '_')}`);
      // insertion order reversed: the writer's order must not depend on it
      await writeSafetensors(out, new Map([...st.tensors].reverse()), st.metadata);
      const back = await readSafetensors(out);
      expect([...back.tensors.keys()]).toEqual([...st.tensors.keys()]);
      for (const [name, t] of st.tensors) {
        const b = back.tensors.get(name)!;
        expect(b.dtype).toBe(t.dtype);
        expect(b.shape).toEqual(t.shape);
        expect(Buffer.compare(Buffer.from(b.raw), Buffer.from(t.raw))).toBe(0);
      }
      expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(file))).toBe(0);
      expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    });
  }
});

describe('writer layout (reference serializer test vectors)', () => {
  it('one F32 tensor', () => {
    const out = serializeSafetensors({ 'attn.0': { shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    // from the reference implementation's own test_serialization
    expect([...out]).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
      70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95,
      111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0,
      64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  it('padding with spaces, empty file and metadata', () => {
    const padded = serializeSafetensors({ attn0: { shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    expect(padded.byteLength).toBe(8 + 72 + 24);
    expect(Buffer.from(padded.subarray(8 + 65, 8 + 72)).toString()).toBe('       ');
    expect([...serializeSafetensors({})]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const meta = serializeSafetensors({}, { framework: 'pt' });
    expect(meta[0]).toBe(40);
    expect(Buffer.from(meta.subarray(8)).toString()).toBe('{"__metadata__":{"framework":"pt"}}     ');
    expect(decodeSafetensors(meta).metadata).toEqual({ framework: 'pt' });
  });

  it('sorts by dtype alignment (descending) then name, and converts every dtype', () => {
    const tensors: Record<string, TensorToWrite> = {
      b_u8: { dtype: 'U8', shape: [3], data: new Int32Array([0, 7, 255]) },
      a_bool: { dtype: 'BOOL', shape: [2], data: new Int32Array([1, 0]) },
      z_f32: { shape: [2], data: new Float32Array([1.5, -2]) },
      a_f32: { dtype: 'F32', shape: [], data: new Float32Array([3]) },
      h: { dtype: 'F16', shape: [3], data: new Float32Array([1, -0.5, 65504]) },
      bf: { dtype: 'BF16', shape: [2], data: new Float32Array([1, -3]) },
      i64: { dtype: 'I64', shape: [3], data: new Int32Array([-1, 2147483647, -2147483648]) },
      f64: { shape: [2], data: new Float64Array([0.1, -1e300]) },
      i8: { dtype: 'I8', shape: [2], data: new Int32Array([-128, 127]) },
      i16: { dtype: 'I16', shape: [2], data: new Int32Array([-32768, 32767]) },
      u16: { dtype: 'U16', shape: [1], data: new Int32Array([65535]) },
      i32: { shape: [2, 1], data: new Int32Array([5, -6]) },
      raw16: { dtype: 'F16', shape: [1], raw: new Uint8Array([0x01, 0x7c]) }, // a NaN with payload 1
    };
    const st = decodeSafetensors(serializeSafetensors(tensors));
    expect([...st.tensors.keys()]).toEqual([
      'i64',
      'f64',
      'a_f32',
      'z_f32',
      'i32',
      'bf',
      'h',
      'raw16',
      'u16',
      'i16',
      'i8',
      'b_u8',
      'a_bool',
    ]);
    const get = (n: string): StoredTensor => st.tensors.get(n)!;
    expect([...get('b_u8').data]).toEqual([0, 7, 255]);
    expect([...get('a_bool').data]).toEqual([1, 0]);
    expect(get('a_f32').shape).toEqual([]);
    expect([...get('h').data]).toEqual([1, -0.5, 65504]);
    expect([...get('bf').data]).toEqual([1, -3]);
    expect([...get('i64').data]).toEqual([-1, 2147483647, -2147483648]);
    expect([...get('i64').raw.subarray(0, 8)]).toEqual([255, 255, 255, 255, 255, 255, 255, 255]);
    expect([...get('f64').data]).toEqual([Math.fround(0.1), -Infinity]); // F64 → float32 rounds; raw keeps it exact
    expect(new Float64Array(get('f64').raw.slice().buffer)[0]).toBe(0.1);
    expect([...get('i8').data]).toEqual([-128, 127]);
    expect([...get('i16').data]).toEqual([-32768, 32767]);
    expect([...get('u16').data]).toEqual([65535]);
    expect(get('i32').dtype).toBe('I32');
    expect(get('f64').dtype).toBe('F64');
    expect(Number.isNaN(get('raw16').data[0])).toBe(true);
    // writing the decoded F16 NaN back keeps its payload
    const again = decodeSafetensors(
      serializeSafetensors({ x: { dtype: 'F16', shape: [1], data: get('raw16').data as Float32Array } }),
    );
    expect([...again.tensors.get('x')!.raw]).toEqual([0x01, 0x7c]);
  });

  it('refuses data that does not fit the dtype or shape', () => {
    expect(() => serializeSafetensors({ x: { dtype: 'U8', shape: [1], data: new Int32Array([256]) } })).toThrow(/U8/);
    expect(() => serializeSafetensors({ x: { dtype: 'I32', shape: [1], data: new Float32Array([1]) } })).toThrow(
      /float data as I32/,
    );
    expect(() => serializeSafetensors({ x: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      /4 elements but data has 3/,
    );
    expect(() => serializeSafetensors({ x: { dtype: 'F16', shape: [2], raw: new Uint8Array(3) } })).toThrow(
      /needs 4 bytes/,
    );
    expect(() => serializeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } })).toThrow(/reserved/);
  });

  it('encodeSafetensors returns chunks without copying F32 data', () => {
    const data = new Float32Array([1, 2, 3]);
    const chunks = encodeSafetensors({ w: { shape: [3], data } });
    expect(chunks.length).toBe(3);
    expect(chunks[2]!.buffer).toBe(data.buffer);
  });
});

describe('F16 / BF16 conversion', () => {
  it('F16 known values, specials, subnormals and ties to even', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite
      [65519.99, 0x7bff],
      [65520, 0x7c00], // halfway to the next (2^16): ties to even → inf
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1023.5 * 2 ** -24, 0x0400], // tie, odd → rounds up into the smallest normal
      [2 ** -25, 0x0000], // tie between 0 and 1 subnormal → even (0)
      [2 ** -25 * 1.5, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 → 2
      [5 * 2 ** -25, 0x0002], // tie between 2 and 3 → 2
      [2 ** -26, 0x0000],
      [-(2 ** -30), 0x8000],
      [1 + 2 ** -11, 0x3c00], // tie → even
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01],
      [1e-45, 0x0000], // float32 subnormal
    ];
    for (const [x, h] of cases) expect(toF16Bits(x), `toF16(${x})`).toBe(h);
    expect(toF16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(toF16Bits(NaN) & 0x3ff).not.toBe(0);
    expect(fromF16Bits(0x7bff)).toBe(65504);
    expect(fromF16Bits(0x0001)).toBe(2 ** -24);
    expect(Object.is(fromF16Bits(0x8000), -0)).toBe(true);
    expect(fromF16Bits(0xfc00)).toBe(-Infinity);
  });

  // The exhaustive loops collect failures and assert once (an expect() per pattern would take seconds).
  it('F16: all 65536 patterns widen exactly and narrow back to themselves', () => {
    const bad: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const bits = f16BitsToF32Bits(h);
      const v = bitsToF32(bits);
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const s = h & 0x8000 ? -1 : 1;
      const ok =
        e === 0x1f
          ? m === 0
            ? v === s * Infinity
            : Number.isNaN(v)
          : Object.is(v, s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15)));
      if (!ok || f32BitsToF16Bits(bits) !== h) bad.push(h.toString(16));
    }
    expect(bad).toEqual([]);
  });

  it('F16: every midpoint between neighbours ties to even; one float32 ulp either side decides', () => {
    const bad: string[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      const lo = fromF16Bits(h);
      const hi = fromF16Bits(h + 1); // 0x7bff + 1 = inf: the midpoint is 65520
      const mid = h === 0x7bff ? 65520 : (lo + hi) / 2; // exact in float32
      const midBits = f32ToBits(mid);
      const even = h % 2 === 0 ? h : h + 1;
      if (
        bitsToF32(midBits) !== mid ||
        f32BitsToF16Bits(midBits) !== even ||
        f32BitsToF16Bits(midBits - 1) !== h ||
        f32BitsToF16Bits(midBits + 1) !== h + 1 ||
        f32BitsToF16Bits((midBits | 0x80000000) >>> 0) !== (even | 0x8000) // negative side mirrors
      ) {
        bad.push(h.toString(16));
      }
    }
    expect(bad).toEqual([]);
  });

  it('BF16: all patterns round trip; midpoints tie to even; overflow to inf', () => {
    const bad: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const bits = bf16BitsToF32Bits(h);
      if (bits >>> 16 !== h || (bits & 0xffff) !== 0 || f32BitsToBf16Bits(bits) !== h) bad.push(`rt ${h.toString(16)}`);
    }
    for (let h = 0; h < 0x7f80; h++) {
      const midBits = (h << 16) + 0x8000; // exactly between h and h+1
      if (
        f32BitsToBf16Bits(midBits) !== (h % 2 === 0 ? h : h + 1) ||
        f32BitsToBf16Bits(midBits - 1) !== h ||
        f32BitsToBf16Bits(midBits + 1) !== h + 1
      ) {
        bad.push(`mid ${h.toString(16)}`);
      }
    }
    expect(bad).toEqual([]);
    expect(toBf16Bits(1)).toBe(0x3f80);
    expect(toBf16Bits(-Infinity)).toBe(0xff80);
    expect(toBf16Bits(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds up to inf in bf16
    expect(toBf16Bits(NaN) & 0x7f80).toBe(0x7f80);
    expect(toBf16Bits(NaN) & 0x7f).not.toBe(0);
    expect(f32BitsToBf16Bits(0x7f800001)).toBe(0x7fc0); // NaN whose payload is only in the low bits stays NaN
    expect(toBf16Bits(1e-45)).toBe(0x0000); // float32 subnormal rounds to 0 in bf16
    expect(toBf16Bits(2 ** -133)).toBe(0x0001); // smallest bf16 subnormal (same exponent range as float32)
    expect(toBf16Bits(2 ** -134)).toBe(0x0000); // tie → even
    expect(toBf16Bits(3 * 2 ** -134)).toBe(0x0002); // tie → even
  });
});

describe('malformed files', () => {
  const good = (): { header: Record<string, unknown>; data: Uint8Array } => ({
    header: {
      __metadata__: { format: 'pt' },
      'layer.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      'layer.bias': { dtype: 'F32', shape: [2], data_offsets: [16, 24] },
    },
    data: new Uint8Array(24),
  });

  it('the baseline file is valid', () => {
    const { header, data } = good();
    expect(decodeSafetensors(makeFile(header, data)).tensors.size).toBe(2);
  });

  it('file shorter than 8 bytes', async () => {
    await expectFormatError(new Uint8Array([1, 2, 3]), 'E_SAFETENSORS_TRUNCATED', [/3 bytes/], 'short');
    await expectFormatError(new Uint8Array(0), 'E_SAFETENSORS_TRUNCATED', [/0 bytes/], 'empty');
  });

  it('header length past the end of the file', async () => {
    const { header, data } = good();
    await expectFormatError(
      makeFile(header, data, 10_000n),
      'E_SAFETENSORS_HEADER',
      [/10000/, /past the end/],
      'hdrlen',
    );
    await expectFormatError(makeFile(header, data, 2n ** 63n), 'E_SAFETENSORS_HEADER', [/past the end/], 'hdrhuge');
  });

  it('header not JSON, not an object, not UTF-8', async () => {
    await expectFormatError(
      makeFile('{"a": ', new Uint8Array(0)),
      'E_SAFETENSORS_HEADER',
      [/not valid JSON/],
      'badjson',
    );
    await expectFormatError(makeFile('[1, 2]'), 'E_SAFETENSORS_HEADER', [/not a JSON object/], 'array');
    await expectFormatError(makeFile('null'), 'E_SAFETENSORS_HEADER', [/not a JSON object/], 'null');
    const bad = makeFile('{"x":1}');
    bad[9] = 0xff;
    await expectFormatError(bad, 'E_SAFETENSORS_HEADER', [/UTF-8/], 'utf8');
  });

  it('unknown dtype names the tensor', async () => {
    const { header, data } = good();
    (header['layer.bias'] as Record<string, unknown>).dtype = 'F17';
    const e = await expectFormatError(makeFile(header, data), 'E_SAFETENSORS_DTYPE', [/layer\.bias/, /F17/], 'dtype');
    expect(e.part).toBe('layer.bias');
    (header['layer.bias'] as Record<string, unknown>).dtype = 'F8_E4M3';
    await expectFormatError(makeFile(header, data), 'E_SAFETENSORS_DTYPE', [/unsupported dtype "F8_E4M3"/], 'dtype8');
  });

  it('shape × dtype size ≠ byte length', async () => {
    const { header, data } = good();
    (header['layer.weight'] as Record<string, unknown>).shape = [2, 3];
    await expectFormatError(
      makeFile(header, data),
      'E_SAFETENSORS_SIZE',
      [/layer\.weight/, /24 bytes/, /hold 16/],
      'size',
    );
    (header['layer.weight'] as Record<string, unknown>).shape = [2, -2];
    await expectFormatError(makeFile(header, data), 'E_SAFETENSORS_SHAPE', [/layer\.weight/], 'shape');
  });

  it('offsets outside the data area (truncated file)', async () => {
    const { header, data } = good();
    await expectFormatError(
      makeFile(header, data.subarray(0, 20)),
      'E_SAFETENSORS_OFFSETS',
      [/layer\.bias/, /outside the data area/],
      'trunc',
    );
  });

  it('offsets outside the data area (a real fixture file cut short)', async (ctx) => {
    needFixtures(ctx, files.length, 'safetensors fixture files');
    const real = fs.readFileSync(files[0]!);
    const last = (await readSafetensorsHeader(files[0]!)).entries.at(-1)!;
    await expectFormatError(
      real.subarray(0, real.byteLength - 100),
      'E_SAFETENSORS_OFFSETS',
      [last.name, /truncated/],
      'realtrunc',
    );
  });

  it('overlapping offsets', async () => {
    const { header, data } = good();
    (header['layer.bias'] as Record<string, unknown>).data_offsets = [8, 16];
    await expectFormatError(
      makeFile(header, data.subarray(0, 16)),
      'E_SAFETENSORS_OFFSETS',
      [/layer\.bias/, /overlap/, /layer\.weight/],
      'overlap',
    );
  });

  it('offsets that leave a gap, or trailing bytes', async () => {
    const { header } = good();
    (header['layer.bias'] as Record<string, unknown>).data_offsets = [20, 28];
    await expectFormatError(
      makeFile(header, new Uint8Array(28)),
      'E_SAFETENSORS_OFFSETS',
      [/layer\.bias/, /gap/, /\[16, 20\)/],
      'gap',
    );
    const g = good();
    await expectFormatError(
      makeFile(g.header, new Uint8Array(32)),
      'E_SAFETENSORS_OFFSETS',
      [/8 trailing bytes/],
      'trailing',
    );
    (g.header['layer.weight'] as Record<string, unknown>).data_offsets = [16, 0];
    await expectFormatError(
      makeFile(g.header, g.data),
      'E_SAFETENSORS_OFFSETS',
      [/layer\.weight/, /end before/],
      'reversed',
    );
    (g.header['layer.weight'] as Record<string, unknown>).data_offsets = [0, '16'];
    await expectFormatError(makeFile(g.header, g.data), 'E_SAFETENSORS_OFFSETS', [/layer\.weight/], 'offstr');
  });

  it('metadata not string → string', async () => {
    const { header, data } = good();
    header['__metadata__'] = { format: 'pt', step: 3 };
    await expectFormatError(makeFile(header, data), 'E_SAFETENSORS_METADATA', [/__metadata__\.step/], 'meta');
    header['__metadata__'] = ['pt'];
    await expectFormatError(makeFile(header, data), 'E_SAFETENSORS_METADATA', [/__metadata__/], 'meta2');
  });

  it('I64 values that do not fit int32', async () => {
    const data = new Uint8Array(16);
    new DataView(data.buffer).setBigInt64(8, 2n ** 40n, true);
    await expectFormatError(
      makeFile({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, data),
      'E_SAFETENSORS_RANGE',
      [/ids/, /1099511627776/, /element 1/],
      'range',
    );
  });

  it('a missing file is a named error', async () => {
    await expect(readSafetensors(path.join(tmp, 'nope.safetensors'))).rejects.toMatchObject({ code: 'E_FILE_MISSING' });
  });
});

describe('checkpoints (single file and sharded)', () => {
  const modelFile = files.find((f) => f.endsWith(`${path.sep}model.safetensors`));

  it('shards a checkpoint, loads it back bit for bit, and replaces layouts cleanly', async (ctx) => {
    needFixtures(ctx, modelFile ? 1 : 0, 'model.safetensors fixtures');
    expect(modelFile).toBeDefined();
    const orig = (await readSafetensors(modelFile!)).tensors;
    const dir = path.join(tmp, 'sharded');
    const total = [...orig.values()].reduce((a, t) => a + t.raw.byteLength, 0);
    const written = await saveCheckpointTensors(dir, orig, { maxShardBytes: Math.ceil(total / 3) });
    expect(written.length).toBeGreaterThanOrEqual(4); // ≥ 3 shards + index
    expect(written.at(-1)).toBe('model.safetensors.index.json');
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
    const index = await readSafetensorsIndex(dir);
    expect(index.shards.length).toBe(written.length - 1);
    expect(index.metadata['total_size']).toBe(total);
    for (const shard of index.shards) {
      expect(shard).toMatch(/^model-\d{5}-of-\d{5}\.safetensors$/);
      expect((await readSafetensors(path.join(dir, shard))).metadata).toEqual({ format: 'pt' });
    }
    const loaded = await loadCheckpointTensors(dir);
    expect(new Set(loaded.keys())).toEqual(new Set(orig.keys()));
    for (const [name, t] of orig) {
      const b = loaded.get(name)!;
      expect(b.shape).toEqual(t.shape);
      expect(Buffer.compare(Buffer.from(b.raw), Buffer.from(t.raw))).toBe(0);
    }
    // saving single-file into the same folder removes the old index and shards
    await saveCheckpointTensors(dir, orig);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.safetensors']);
    expect(Buffer.compare(fs.readFileSync(path.join(dir, 'model.safetensors')), fs.readFileSync(modelFile!))).toBe(0);
  });

  it('a tensor larger than the shard limit gets a shard of its own', async () => {
    const dir = path.join(tmp, 'big');
    const t = (n: number): TensorToWrite => ({ shape: [n], data: new Float32Array(n) });
    await saveCheckpointTensors(
      dir,
      new Map([
        ['a', t(10)],
        ['b', t(100)],
        ['c', t(10)],
        ['d', t(10)],
      ]),
      { maxShardBytes: 100 },
    );
    const index = await readSafetensorsIndex(dir);
    // as huggingface_hub splits: the oversized tensor is flushed to its own shard at once
    expect(Object.fromEntries(index.weightMap)).toEqual({
      a: 'model-00002-of-00003.safetensors',
      b: 'model-00001-of-00003.safetensors',
      c: 'model-00002-of-00003.safetensors',
      d: 'model-00003-of-00003.safetensors',
    });
    const text = fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8');
    expect(
      text.startsWith(
        '{\n  "metadata": {\n    "total_parameters": 130,\n    "total_size": 520\n  },\n  "weight_map": {\n',
      ),
    ).toBe(true);
    expect(text.endsWith('}\n')).toBe(true);
  });

  it('missing shard, tensor listed but absent, bad index', async (ctx) => {
    needFixtures(ctx, modelFile ? 1 : 0, 'model.safetensors fixtures');
    expect(modelFile).toBeDefined();
    const orig = (await readSafetensors(modelFile!)).tensors;
    const total = [...orig.values()].reduce((a, t) => a + t.raw.byteLength, 0);
    const dir = path.join(tmp, 'broken');
    await saveCheckpointTensors(dir, orig, { maxShardBytes: Math.ceil(total / 2) });
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));

    const shards = [...new Set(Object.values(index.weight_map) as string[])].sort();
    expect(shards.length).toBeGreaterThanOrEqual(2);
    index.weight_map['extra.weight'] = shards[0];
    fs.writeFileSync(indexFile, JSON.stringify(index));
    const e1 = await loadCheckpointTensors(dir).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(FileFormatError);
    expect((e1 as FileFormatError).code).toBe('E_INDEX_TENSOR_MISSING');
    expect((e1 as FileFormatError).message).toMatch(/extra\.weight/);
    expect((e1 as FileFormatError).message).toContain(shards[0]);
    delete index.weight_map['extra.weight'];
    fs.writeFileSync(indexFile, JSON.stringify(index));

    fs.renameSync(path.join(dir, shards[1]), path.join(dir, 'moved.safetensors'));
    const e2 = await loadCheckpointTensors(dir).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(FileFormatError);
    expect((e2 as FileFormatError).code).toBe('E_INDEX_SHARD_MISSING');
    expect((e2 as FileFormatError).message).toContain(shards[1]);
    expect((e2 as FileFormatError).message).toContain(indexFile);

    fs.writeFileSync(indexFile, JSON.stringify({ weight_map: { a: '../evil.safetensors' } }));
    await expect(loadCheckpointTensors(dir)).rejects.toMatchObject({ code: 'E_INDEX' });
    fs.writeFileSync(indexFile, JSON.stringify({ weight_map: [] }));
    await expect(loadCheckpointTensors(dir)).rejects.toMatchObject({ code: 'E_INDEX' });
    fs.writeFileSync(indexFile, '{not json');
    await expect(loadCheckpointTensors(dir)).rejects.toMatchObject({ code: 'E_JSON' });
  });

  it('a folder without weights, or with PyTorch pickles only', async () => {
    const dir = path.join(tmp, 'noweights');
    fs.mkdirSync(dir, { recursive: true });
    await expect(loadCheckpointTensors(dir)).rejects.toMatchObject({ code: 'E_FILE_MISSING' });
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'x');
    await expect(loadCheckpointTensors(dir)).rejects.toBeInstanceOf(UnsupportedError);
  });
});

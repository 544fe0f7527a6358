/**
 * The pure half of the safetensors reader and writer: parse, decode, encode and serialize bytes held in memory.
 * No file access and no Node built-ins, so it runs in a browser too (src/browser.ts); ./safetensors.ts adds the
 * file functions and re-exports everything here. The format:
 *
 * Our own reader and writer of the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   8 bytes   N, little-endian u64: length of the header
 *   N bytes   UTF-8 JSON object {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}
 *   rest      the data area; offsets are relative to its start, tensors are little-endian, row-major
 *
 * Reading validates everything the reference implementation validates, with a FileFormatError naming the file and
 * the tensor: file shorter than 8 bytes, header past the end of the file, header not UTF-8 / not JSON / not an
 * object, bad metadata, unknown dtype, bad shape, bad offsets, shape × dtype size ≠ byte length, offsets outside
 * the data area, and tensors that overlap or leave gaps (the data area must be covered exactly, in order).
 *
 * Decoded tensors come back as Float32Array (F32, F16, BF16, F64) or Int32Array (I32, I64 and U64 with a range
 * check, U32, I16, U16, I8, U8, BOOL), together with `raw`, the exact bytes of the file, for bit-exact round trips.
 *
 * Writing follows the reference serializer byte for byte: tensors sorted by dtype alignment (descending, in the
 * order of the reference `Dtype` enum) and then by name, `__metadata__` first in the header, compact JSON, header
 * padded with spaces to a multiple of 8 bytes. Re-writing a file that huggingface wrote therefore reproduces it
 * exactly (given the same metadata).
 */
import { ConfigError, FileFormatError, ShapeError, UnsupportedError } from '../util/errors.js';
import { bf16ArrayToFloat32, f16ArrayToFloat32, float32ToBf16Array, float32ToF16Array } from './half.js';

/** Element types of the format that this package reads and writes. */
export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

interface DtypeInfo {
  /** Bytes per element. */
  size: number;
  /** Position in the reference `Dtype` enum (increasing alignment); the writer sorts by it, descending. */
  rank: number;
  float: boolean;
}

/** The reference enum order: BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64. */
const DTYPES: Readonly<Record<SafetensorsDtype, DtypeInfo>> = {
  BOOL: { size: 1, rank: 0, float: false },
  U8: { size: 1, rank: 4, float: false },
  I8: { size: 1, rank: 5, float: false },
  I16: { size: 2, rank: 9, float: false },
  U16: { size: 2, rank: 10, float: false },
  F16: { size: 2, rank: 11, float: true },
  BF16: { size: 2, rank: 12, float: true },
  I32: { size: 4, rank: 13, float: false },
  U32: { size: 4, rank: 14, float: false },
  F32: { size: 4, rank: 15, float: true },
  F64: { size: 8, rank: 17, float: true },
  I64: { size: 8, rank: 18, float: false },
  U64: { size: 8, rank: 19, float: false },
};

/** Dtypes of the format we know of but do not read. */
const KNOWN_UNSUPPORTED = ['F4', 'F6_E2M3', 'F6_E3M2', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'C64'];

/** Bytes per element of a dtype. */
export function dtypeSize(dtype: SafetensorsDtype): number {
  return DTYPES[dtype].size;
}

/** True for the dtypes this package reads and writes. */
export function isSafetensorsDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === 'string' && Object.hasOwn(DTYPES, x);
}

/** True for F16, BF16, F32, F64. */
export function isFloatDtype(dtype: SafetensorsDtype): boolean {
  return DTYPES[dtype].float;
}

/** A decoded tensor: `data` is float32 for float dtypes and int32 for integer/bool dtypes. */
export interface TensorData {
  /** The dtype stored in the file. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/**
 * A tensor as read from a file. `raw` is its bytes exactly as stored (little-endian). For F32 and I32, `data` is a
 * view of the same memory as `raw` (writing to one changes the other).
 */
export interface StoredTensor extends TensorData {
  raw: Uint8Array;
}

/**
 * A tensor to write. Give `data` (encoded into `dtype`, which defaults to F32 for float arrays and I32 for
 * Int32Array) or only `raw` (bytes written as they are; `dtype` required). When both are given, `data` wins.
 * Float data (Float32Array/Float64Array) goes to float dtypes, integer data (Int32Array) to integer/bool dtypes.
 */
export interface TensorToWrite {
  dtype?: SafetensorsDtype;
  shape: readonly number[];
  data?: Float32Array | Float64Array | Int32Array;
  raw?: Uint8Array;
}

/** One tensor's entry in a header; `begin`/`end` are byte offsets relative to the data area. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed and validated header. */
export interface SafetensorsHeader {
  file: string;
  /** N, the JSON header length in bytes. */
  headerLength: number;
  /** Absolute file offset of the data area (8 + N). */
  dataStart: number;
  /** Bytes in the data area. */
  dataLength: number;
  /** `__metadata__`, or null when absent. */
  metadata: Record<string, string> | null;
  /** Tensors in data order (sorted by offset). */
  entries: SafetensorsEntry[];
}

/** The contents of a safetensors file. */
export interface SafetensorsFile {
  file: string;
  metadata: Record<string, string> | null;
  /** Tensors in the file's data order. */
  tensors: Map<string, StoredTensor>;
}

/** Same limit as the reference reader: a header over 100 MB is refused. */
const MAX_HEADER = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new UnsupportedError('safetensors: big-endian hosts are not supported');
}

function fmt(code: string, file: string, message: string, part?: string): FileFormatError {
  return new FileFormatError(code, file, message, part);
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Read N from the first 8 bytes and check it against the file size. */
/** The header length N from the first 8 bytes of a file of `fileSize` bytes (validated against the size). */
export function headerLengthOf(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8) {
    throw fmt('E_SAFETENSORS_TRUNCATED', file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  }
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw fmt(
      'E_SAFETENSORS_HEADER',
      file,
      `header length ${n} runs past the end of the file (${fileSize} bytes, so at most ${fileSize - 8}); truncated or not a safetensors file`,
    );
  }
  if (n > BigInt(MAX_HEADER)) {
    throw fmt('E_SAFETENSORS_HEADER', file, `header length ${n} is over the ${MAX_HEADER}-byte limit`);
  }
  return Number(n);
}

/**
 * Parse and validate a header. `headerBytes` are the N JSON bytes (after the 8-byte length); `fileSize` is the
 * whole file's size, used to find the data area.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = headerBytes.byteLength;
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw fmt('E_SAFETENSORS_HEADER', file, 'header is not valid UTF-8');
  }
  if (!text.trimStart().startsWith('{')) {
    throw fmt('E_SAFETENSORS_HEADER', file, `header is not a JSON object (starts with ${describe(text.slice(0, 16))})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fmt('E_SAFETENSORS_HEADER', file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fmt('E_SAFETENSORS_HEADER', file, 'header is not a JSON object');
  }

  let metadata: Record<string, string> | null = null;
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw fmt(
          'E_SAFETENSORS_METADATA',
          file,
          `__metadata__ must be an object of strings, got ${describe(info)}`,
          name,
        );
      }
      metadata = {};
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw fmt('E_SAFETENSORS_METADATA', file, `__metadata__.${k} must be a string, got ${describe(v)}`, name);
        }
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, info, dataLength, file));
  }

  // The data area must be covered exactly, in order, by the tensors sorted by offset.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: SafetensorsEntry | null = null;
  for (const e of entries) {
    if (e.begin < pos) {
      throw fmt(
        'E_SAFETENSORS_OFFSETS',
        file,
        `data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(prev!.name)} at [${prev!.begin}, ${prev!.end}]`,
        e.name,
      );
    }
    if (e.begin > pos) {
      throw fmt(
        'E_SAFETENSORS_OFFSETS',
        file,
        `data_offsets [${e.begin}, ${e.end}] leave a gap: bytes [${pos}, ${e.begin}) of the data area belong to no tensor`,
        e.name,
      );
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLength) {
    throw fmt(
      'E_SAFETENSORS_OFFSETS',
      file,
      `the tensors cover ${pos} bytes but the data area holds ${dataLength}: ${dataLength - pos} trailing bytes belong to no tensor`,
      prev?.name,
    );
  }
  return { file, headerLength, dataStart, dataLength, metadata, entries };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseEntry(name: string, info: unknown, dataLength: number, file: string): SafetensorsEntry {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    throw fmt(
      'E_SAFETENSORS_HEADER',
      file,
      `entry must be an object {dtype, shape, data_offsets}, got ${describe(info)}`,
      name,
    );
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (!isSafetensorsDtype(dtype)) {
    const known = typeof dtype === 'string' && KNOWN_UNSUPPORTED.includes(dtype);
    throw fmt(
      'E_SAFETENSORS_DTYPE',
      file,
      `${known ? 'unsupported' : 'unknown'} dtype ${describe(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`,
      name,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw fmt(
      'E_SAFETENSORS_SHAPE',
      file,
      `shape must be a list of non-negative integers, got ${describe(shape)}`,
      name,
    );
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw fmt(
      'E_SAFETENSORS_OFFSETS',
      file,
      `data_offsets must be [begin, end] (non-negative integers), got ${describe(offsets)}`,
      name,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin)
    throw fmt('E_SAFETENSORS_OFFSETS', file, `data_offsets [${begin}, ${end}] end before they begin`, name);
  if (end > dataLength) {
    throw fmt(
      'E_SAFETENSORS_OFFSETS',
      file,
      `data_offsets [${begin}, ${end}] lie outside the data area (${dataLength} bytes); the file may be truncated`,
      name,
    );
  }
  let numel = 1;
  for (const d of shape as number[]) numel *= d;
  const want = numel * DTYPES[dtype].size;
  if (!Number.isSafeInteger(want) || want !== end - begin) {
    throw fmt(
      'E_SAFETENSORS_SIZE',
      file,
      `shape [${(shape as number[]).join(', ')}] × ${dtype} (${DTYPES[dtype].size} bytes) = ${want} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      name,
    );
  }
  return { name, dtype, shape: (shape as number[]).slice(), begin, end };
}

/** A copy of `bytes` in a fresh ArrayBuffer (Buffer#slice would return a view). */
function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

function aligned(bytes: Uint8Array, k: number): Uint8Array {
  return bytes.byteOffset % k === 0 ? bytes : copyBytes(bytes);
}

/**
 * Decode a tensor's stored bytes to float32 (float dtypes) or int32 (integer and bool dtypes). 64-bit and U32
 * integers must fit in int32, else FileFormatError `E_SAFETENSORS_RANGE`. F32 and I32 results view `raw`'s memory
 * when it is 4-byte aligned.
 */
export function decodeTensorBytes(
  dtype: SafetensorsDtype,
  raw: Uint8Array,
  file = '<buffer>',
  name?: string,
): Float32Array | Int32Array {
  assertLittleEndian();
  const n = raw.byteLength / DTYPES[dtype].size;
  if (!Number.isInteger(n)) {
    throw fmt('E_SAFETENSORS_SIZE', file, `${raw.byteLength} bytes is not a whole number of ${dtype} elements`, name);
  }
  const range = (i: number, v: bigint | number): FileFormatError =>
    fmt('E_SAFETENSORS_RANGE', file, `${dtype} value ${v} at element ${i} does not fit in int32`, name);
  switch (dtype) {
    case 'F32': {
      const b = aligned(raw, 4);
      return new Float32Array(b.buffer, b.byteOffset, n);
    }
    case 'I32': {
      const b = aligned(raw, 4);
      return new Int32Array(b.buffer, b.byteOffset, n);
    }
    case 'F16': {
      const b = aligned(raw, 2);
      return f16ArrayToFloat32(new Uint16Array(b.buffer, b.byteOffset, n));
    }
    case 'BF16': {
      const b = aligned(raw, 2);
      return bf16ArrayToFloat32(new Uint16Array(b.buffer, b.byteOffset, n));
    }
    case 'F64': {
      const b = aligned(raw, 8);
      return Float32Array.from(new Float64Array(b.buffer, b.byteOffset, n));
    }
    case 'I64':
    case 'U64': {
      const b = aligned(raw, 4);
      const w = new Int32Array(b.buffer, b.byteOffset, 2 * n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = w[2 * i]!;
        const hi = w[2 * i + 1]!;
        if (hi !== lo >> 31) {
          const dv = new DataView(b.buffer, b.byteOffset + 8 * i, 8);
          throw range(i, dtype === 'I64' ? dv.getBigInt64(0, true) : dv.getBigUint64(0, true));
        }
        out[i] = lo;
      }
      return out;
    }
    case 'U32': {
      const b = aligned(raw, 4);
      const src = new Uint32Array(b.buffer, b.byteOffset, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i]!;
        if (v > 0x7fffffff) throw range(i, v);
        out[i] = v;
      }
      return out;
    }
    case 'I16': {
      const b = aligned(raw, 2);
      return Int32Array.from(new Int16Array(b.buffer, b.byteOffset, n));
    }
    case 'U16': {
      const b = aligned(raw, 2);
      return Int32Array.from(new Uint16Array(b.buffer, b.byteOffset, n));
    }
    case 'I8':
      return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, n));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(raw);
  }
}

/** Decode a whole safetensors file held in memory. `file` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsFile {
  const n = headerLengthOf(bytes.subarray(0, Math.min(8, bytes.byteLength)), bytes.byteLength, file);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength, file);
  const tensors = new Map<string, StoredTensor>();
  for (const e of header.entries) {
    const raw = copyBytes(bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end)); // own, aligned
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeTensorBytes(e.dtype, raw, file, e.name), raw });
  }
  return { file, metadata: header.metadata, tensors };
}

/** Bytes of a typed array, without copying. */
function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const INT_RANGE: Partial<Record<SafetensorsDtype, [number, number]>> = {
  BOOL: [0, 1],
  U8: [0, 255],
  I8: [-128, 127],
  I16: [-32768, 32767],
  U16: [0, 65535],
  U32: [0, 2147483647],
  U64: [0, 2147483647],
};

/**
 * Encode one tensor's data into the bytes of `dtype` (little-endian). Float32 → F16/BF16 rounds to nearest even;
 * → F64 is exact. Int32 → narrower integer dtypes is range-checked; → I64 sign-extends.
 * `file` and `name` appear in errors.
 */
export function encodeTensor(
  name: string,
  t: TensorToWrite,
  file = '<buffer>',
): { dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array } {
  assertLittleEndian();
  const where = `tensor ${JSON.stringify(name)}`;
  if (!Array.isArray(t.shape) || !t.shape.every(isCount)) {
    throw new ShapeError(`${file}: ${where}: shape must be a list of non-negative integers, got ${describe(t.shape)}`);
  }
  const shape = t.shape.slice();
  let numel = 1;
  for (const d of shape) numel *= d;
  const data = t.data;
  if (data === undefined) {
    if (!t.raw || !t.dtype)
      throw new ConfigError(name, 'a tensor to write needs `data`, or `raw` with a `dtype`', file);
    if (!isSafetensorsDtype(t.dtype))
      throw new ConfigError(`${name}.dtype`, `unknown dtype ${describe(t.dtype)}`, file);
    const want = numel * DTYPES[t.dtype].size;
    if (t.raw.byteLength !== want) {
      throw new ShapeError(
        `${file}: ${where}: shape [${shape.join(', ')}] × ${t.dtype} needs ${want} bytes, raw has ${t.raw.byteLength}`,
      );
    }
    return { dtype: t.dtype, shape, bytes: t.raw };
  }
  const isFloatData = data instanceof Float32Array || data instanceof Float64Array;
  if (!isFloatData && !(data instanceof Int32Array)) {
    throw new ConfigError(name, 'data must be a Float32Array, Float64Array or Int32Array', file);
  }
  const dtype: SafetensorsDtype = t.dtype ?? (data instanceof Float64Array ? 'F64' : isFloatData ? 'F32' : 'I32');
  if (!isSafetensorsDtype(dtype)) throw new ConfigError(`${name}.dtype`, `unknown dtype ${describe(dtype)}`, file);
  if (data.length !== numel) {
    throw new ShapeError(
      `${file}: ${where}: shape [${shape.join(', ')}] has ${numel} elements but data has ${data.length}`,
    );
  }
  if (DTYPES[dtype].float !== isFloatData) {
    throw new ConfigError(
      `${name}.dtype`,
      `cannot store ${isFloatData ? 'float' : 'integer'} data as ${dtype} (${isFloatData ? 'use F32, F16, BF16 or F64' : 'use an integer or BOOL dtype'})`,
      file,
    );
  }
  if (isFloatData) {
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    switch (dtype) {
      case 'F32':
        return { dtype, shape, bytes: bytesOf(f32) };
      case 'F16':
        return { dtype, shape, bytes: bytesOf(float32ToF16Array(f32)) };
      case 'BF16':
        return { dtype, shape, bytes: bytesOf(float32ToBf16Array(f32)) };
      default:
        return { dtype, shape, bytes: bytesOf(data instanceof Float64Array ? data : Float64Array.from(data)) };
    }
  }
  const ints = data as Int32Array;
  const r = INT_RANGE[dtype];
  if (r) {
    for (let i = 0; i < ints.length; i++) {
      const v = ints[i]!;
      if (v < r[0] || v > r[1]) {
        throw new ConfigError(
          `${name}.dtype`,
          `value ${v} at element ${i} does not fit in ${dtype} [${r[0]}, ${r[1]}]`,
          file,
        );
      }
    }
  }
  switch (dtype) {
    case 'I32':
    case 'U32':
      return { dtype, shape, bytes: bytesOf(ints) };
    case 'I64':
    case 'U64': {
      const w = new Int32Array(2 * ints.length);
      for (let i = 0; i < ints.length; i++) {
        w[2 * i] = ints[i]!;
        w[2 * i + 1] = ints[i]! >> 31;
      }
      return { dtype, shape, bytes: bytesOf(w) };
    }
    case 'I16':
    case 'U16':
      return { dtype, shape, bytes: bytesOf(dtype === 'I16' ? Int16Array.from(ints) : Uint16Array.from(ints)) };
    default:
      return { dtype, shape, bytes: Uint8Array.from(ints) }; // U8, I8 (two's complement), BOOL
  }
}

/** Tensors to write: a Map (order irrelevant, the writer sorts) or a plain object. */
export type TensorsToWrite = ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>;

function entriesOf(tensors: TensorsToWrite): [string, TensorToWrite][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, TensorToWrite>);
}

const UTF8 = new TextEncoder();

/** UTF-8 byte order of names, as Rust compares `String`s. */
function compareUtf8(a: string, b: string): number {
  const x = UTF8.encode(a),
    y = UTF8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/**
 * Serialize tensors to the chunks of a safetensors file: [8-byte length, header, data of each tensor...]. The
 * order and header layout match the reference serializer (see the file comment).
 */
export function encodeSafetensors(
  tensors: TensorsToWrite,
  metadata: Readonly<Record<string, string>> | null = null,
  file = '<buffer>',
): Uint8Array[] {
  const encoded = entriesOf(tensors).map(([name, t]) => {
    if (name === '__metadata__') throw new ConfigError(name, 'is reserved and cannot be a tensor name', file);
    return { name, ...encodeTensor(name, t, file) };
  });
  encoded.sort((a, b) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || compareUtf8(a.name, b.name));
  const parts: string[] = [];
  if (metadata) {
    const meta: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw new ConfigError(`__metadata__.${k}`, `must be a string, got ${describe(v)}`, file);
      meta.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let offset = 0;
  for (const e of encoded) {
    const end = offset + e.bytes.byteLength;
    parts.push(
      `${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = UTF8.encode(`{${parts.join(',')}}`);
  const header = new Uint8Array(json.byteLength + ((8 - (json.byteLength % 8)) % 8)).fill(0x20); // padded with spaces
  header.set(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  return [len, header, ...encoded.map((e) => e.bytes)];
}

/** Serialize tensors to one byte array (see `encodeSafetensors`). */
export function serializeSafetensors(
  tensors: TensorsToWrite,
  metadata: Readonly<Record<string, string>> | null = null,
): Uint8Array {
  const chunks = encodeSafetensors(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

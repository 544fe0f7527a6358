/**
 * Our own reader and writer of GGUF, llama.cpp's model file (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md,
 * ggml/src/gguf.cpp). Bytes in, metadata and named tensors out; no model (src/model/gguf/ maps names and layouts).
 *
 *   u32 magic "GGUF", u32 version (2 or 3), u64 tensor_count, u64 metadata_kv_count
 *   metadata_kv_count × { string key, u32 value_type, value }        string = u64 length + UTF-8 bytes
 *   tensor_count × { string name, u32 n_dims (1–4), u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to `general.alignment` (u32, default 32), then the data section; each tensor's offset is relative to it
 *   and a multiple of the alignment. ne[0] is the fastest-moving dimension: a row-major [rows, cols] matrix is
 *   ne = [cols, rows]. `shape` here is row-major (ne reversed), as everywhere else in this package.
 *
 * Value types: u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64 (ids 0–12); an array holds one scalar type
 * (nested arrays are refused, as llama.cpp does). u64/i64 values read as numbers when they fit exactly, else bigint.
 *
 * Reading checks everything before it allocates: every count and length against the bytes left (a header claiming
 * 2^60 tensors or a 2^40-byte string is a FileFormatError, not an allocation), magic, version, value and tensor
 * types, n_dims, element counts (row length a multiple of the type's block), duplicate keys and names, alignment,
 * offsets (aligned, inside the data section, no two tensors overlapping), and truncation.
 */
import { FileFormatError, UnsupportedError } from '../util/errors.js';
import {
  decodeGgml,
  ggmlBlock,
  ggmlByteLength,
  ggmlTypeId,
  ggmlTypeName,
  ggmlTypeOf,
  type GgmlType,
} from './gguf_types.js';

export type GgufScalarType =
  | 'u8'
  | 'i8'
  | 'u16'
  | 'i16'
  | 'u32'
  | 'i32'
  | 'f32'
  | 'bool'
  | 'string'
  | 'u64'
  | 'i64'
  | 'f64';
export type GgufScalar = number | bigint | boolean | string;

/** One metadata value with its GGUF type (kept so that a file read and written again keeps its types). */
export type GgufValue =
  | { type: GgufScalarType; value: GgufScalar }
  | { type: 'array'; itemType: GgufScalarType; value: GgufScalar[] };

/** value_type ids in the format's order. */
const VALUE_TYPES = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'bool',
  'string',
  'array',
  'u64',
  'i64',
  'f64',
] as const;
const SCALAR_SIZE: Readonly<Record<Exclude<GgufScalarType, 'string'>, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;

/** A tensor's entry in the file. */
export interface GgufTensorInfo {
  name: string;
  /** Row-major shape (ne reversed). */
  shape: number[];
  /** The ggml_type id as stored. */
  typeId: number;
  /** Our name of the type when we decode it, else undefined (decodeGgufTensor then throws UnsupportedError). */
  type: GgmlType | undefined;
  /** Byte offset relative to the data section. */
  offset: number;
  byteLength: number;
}

/** A parsed GGUF file. */
export interface GgufFile {
  file: string;
  version: number;
  metadata: Map<string, GgufValue>;
  /** Tensors in the order of the file's tensor infos. */
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  /** The whole file. */
  bytes: Uint8Array;
}

function bad(file: string, message: string, part?: string, code = 'E_GGUF'): FileFormatError {
  return new FileFormatError(code, file, message, part);
}

/** A bounds-checked little-endian cursor over the file. */
class Cursor {
  pos = 0;
  private readonly dv: DataView;
  /** ignoreBOM: a string may be just U+FEFF (a Llama 2 piece), which must not be dropped. */
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** `b` may be the first bytes of a file of `total` bytes (a header read): limits use the whole file's size. */
  constructor(
    readonly b: Uint8Array,
    readonly file: string,
    readonly total = b.byteLength,
  ) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  get left(): number {
    return this.total - this.pos;
  }
  need(n: number, what: string): void {
    if (n <= this.left && this.pos + n > this.b.byteLength) throw new NeedMoreBytes(this.pos + n);
    if (n > this.left)
      throw bad(
        this.file,
        `truncated: ${what} needs ${n} bytes at offset ${this.pos}, ${this.left} left`,
        undefined,
        'E_GGUF_TRUNCATED',
      );
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A u64 that must be ≤ max (a count or length): checked as a bigint before it becomes a number. */
  u64(what: string, max: number): number {
    this.need(8, what);
    const v = this.dv.getBigUint64(this.pos, true);
    if (v > BigInt(max)) throw bad(this.file, `${what} is ${v}, more than ${max} (the file cannot hold it)`);
    this.pos += 8;
    return Number(v);
  }
  string(what: string): string {
    const n = this.u64(`${what} length`, this.left - 8);
    const s = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return this.utf8.decode(s);
    } catch {
      throw bad(this.file, `${what} is not valid UTF-8`);
    }
  }
  scalar(t: GgufScalarType, what: string): GgufScalar {
    if (t === 'string') return this.string(what);
    const n = SCALAR_SIZE[t];
    this.need(n, what);
    const p = this.pos;
    this.pos += n;
    const dv = this.dv;
    switch (t) {
      case 'u8':
        return dv.getUint8(p);
      case 'i8':
        return dv.getInt8(p);
      case 'u16':
        return dv.getUint16(p, true);
      case 'i16':
        return dv.getInt16(p, true);
      case 'u32':
        return dv.getUint32(p, true);
      case 'i32':
        return dv.getInt32(p, true);
      case 'f32':
        return dv.getFloat32(p, true);
      case 'f64':
        return dv.getFloat64(p, true);
      case 'bool': {
        const v = dv.getUint8(p);
        if (v > 1) throw bad(this.file, `${what}: a bool must be 0 or 1, got ${v}`);
        return v === 1;
      }
      case 'u64':
      case 'i64': {
        const v = t === 'u64' ? dv.getBigUint64(p, true) : dv.getBigInt64(p, true);
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
    }
  }
  valueType(what: string): (typeof VALUE_TYPES)[number] {
    const id = this.u32(`${what} type`);
    const t = VALUE_TYPES[id];
    if (t === undefined) throw bad(this.file, `unknown value type ${id} (0–12 are defined)`, what);
    return t;
  }
}

/** Thrown while parsing the first bytes of a file (parseGgufHeader) when the header goes on past them. */
export class NeedMoreBytes extends Error {
  constructor(readonly atLeast: number) {
    super(`the GGUF header goes on past byte ${atLeast}`);
  }
}

/**
 * Parse and check the header of a GGUF file of `fileSize` bytes from its first bytes `prefix` (metadata and tensor
 * infos; tensor extents are checked against `fileSize`). Throws NeedMoreBytes when the header runs past the prefix:
 * read more and call again (./gguf_file.ts does). The result's `bytes` is the prefix: no tensor data.
 */
export function parseGgufHeader(prefix: Uint8Array, fileSize: number, file = '<memory>'): GgufFile {
  return parseGguf(prefix, file, fileSize);
}

/** Parse and check a GGUF file held in memory. Tensor data are not decoded (decodeGgufTensor / ggufTensorBytes). */
export function parseGguf(bytes: Uint8Array, file = '<memory>', fileSize = bytes.byteLength): GgufFile {
  const c = new Cursor(bytes, file, fileSize);
  if (fileSize < 4 || c.u32('magic') !== GGUF_MAGIC)
    throw bad(file, 'not a GGUF file (the first 4 bytes are not "GGUF")', undefined, 'E_GGUF_MAGIC');
  const version = c.u32('version');
  if (version === 1)
    throw new UnsupportedError(`${file}: GGUF version 1 (32-bit counts) is not read; convert it with llama.cpp`);
  if (version !== 2 && version !== 3) throw bad(file, `GGUF version ${version}; versions 2 and 3 are read`, 'version');
  // each tensor info takes ≥ 32 bytes (name length, n_dims, one dim, type, offset), each key/value ≥ 13
  const nTensors = c.u64('tensor_count', Math.floor(c.left / 32));
  const nKv = c.u64('metadata_kv_count', Math.max(0, Math.floor((c.left - 8) / 13)));
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`metadata key #${i}`);
    if (metadata.has(key)) throw bad(file, 'duplicate metadata key', key);
    const t = c.valueType(key);
    if (t === 'array') {
      const it = c.valueType(`${key}[]`);
      if (it === 'array') throw bad(file, 'arrays of arrays are not supported', key);
      const min = it === 'string' ? 8 : SCALAR_SIZE[it];
      const n = c.u64(`${key} array length`, Math.max(0, Math.floor((c.left - 8) / min)));
      const value = new Array<GgufScalar>(n);
      for (let j = 0; j < n; j++) value[j] = c.scalar(it, `${key}[${j}]`);
      metadata.set(key, { type: 'array', itemType: it, value });
    } else metadata.set(key, { type: t, value: c.scalar(t, key) });
  }
  const alignment = alignmentOf(metadata, file);
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`tensor name #${i}`);
    if (names.has(name)) throw bad(file, 'duplicate tensor name', name);
    names.add(name);
    const nd = c.u32(`${name} n_dims`);
    if (nd < 1 || nd > MAX_DIMS) throw bad(file, `n_dims ${nd}; 1 to ${MAX_DIMS} are allowed`, name);
    const ne: number[] = [];
    let count = 1;
    for (let d = 0; d < nd; d++) {
      const n = c.u64(`${name} ne[${d}]`, Number.MAX_SAFE_INTEGER);
      if (n < 1) throw bad(file, `dimension ${d} is ${n}`, name);
      count *= n;
      if (count > Number.MAX_SAFE_INTEGER) throw bad(file, 'element count overflows', name);
      ne.push(n);
    }
    const typeId = c.u32(`${name} type`);
    const block = ggmlBlock(typeId);
    if (!block) throw bad(file, `unknown tensor type ${typeId}`, name, 'E_GGUF_TYPE');
    if (ne[0]! % block[0] !== 0)
      throw bad(file, `row length ${ne[0]} is not a multiple of ${ggmlTypeName(typeId)}'s block of ${block[0]}`, name);
    const byteLength = (count / block[0]) * block[1];
    const offset = c.u64(`${name} offset`, Number.MAX_SAFE_INTEGER);
    if (offset % alignment !== 0)
      throw bad(file, `offset ${offset} is not a multiple of the alignment ${alignment}`, name);
    tensors.push({ name, shape: ne.reverse(), typeId, type: ggmlTypeOf(typeId), offset, byteLength });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const dataLength = fileSize - Math.min(dataOffset, fileSize);
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const t of sorted) {
    if (t.offset < end) throw bad(file, `overlaps the tensor before it (offset ${t.offset} < ${end})`, t.name);
    end = t.offset + t.byteLength;
    if (end > dataLength)
      throw bad(
        file,
        `its data run to byte ${end} of the data section, which has ${dataLength} (truncated file?)`,
        t.name,
        'E_GGUF_TRUNCATED',
      );
  }
  return { file, version, metadata, tensors, alignment, dataOffset, bytes };
}

function alignmentOf(metadata: Map<string, GgufValue>, file: string): number {
  const a = metadata.get('general.alignment');
  if (!a) return GGUF_DEFAULT_ALIGNMENT;
  const v = a.value;
  if (a.type !== 'u32' || typeof v !== 'number' || v === 0 || (v & (v - 1)) !== 0)
    throw bad(file, `expected a u32 power of two, got ${a.type} ${String(v)}`, 'general.alignment');
  return v;
}

/** The bytes of a tensor, as stored (a view into the file). */
export function ggufTensorBytes(g: GgufFile, t: GgufTensorInfo): Uint8Array {
  const at = g.dataOffset + t.offset;
  return g.bytes.subarray(at, at + t.byteLength);
}

/** A tensor decoded to float32 (F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K–Q6_K, IQ4_NL, IQ4_XS); others: UnsupportedError. */
export function decodeGgufTensor(g: GgufFile, t: GgufTensorInfo): Float32Array {
  if (!t.type)
    throw new UnsupportedError(
      `${g.file} [${t.name}]: tensor type ${ggmlTypeName(t.typeId)} is not read (F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS are)`,
    );
  const n = t.shape.reduce((a, b) => a * b, 1);
  return decodeGgml(t.type, ggufTensorBytes(g, t), n, g.file, t.name);
}

/** A metadata value, or undefined. Arrays come back as arrays. */
export function ggufGet(g: Pick<GgufFile, 'metadata'>, key: string): GgufScalar | GgufScalar[] | undefined {
  return g.metadata.get(key)?.value;
}

// ─── writing ────────────────────────────────────────────────────────────────────────────────────────────────────

/** A tensor to write: row-major shape, its type, and its bytes already encoded in that type (encodeGgml). */
export interface GgufTensorToWrite {
  name: string;
  shape: readonly number[];
  type: GgmlType;
  raw: Uint8Array;
}

/** Bytes of a GGUF file (version 3) as chunks (header, then each tensor's data and padding), for writeFileAtomic. */
export function serializeGguf(
  metadata: ReadonlyMap<string, GgufValue> | Iterable<readonly [string, GgufValue]>,
  tensors: readonly GgufTensorToWrite[],
): Uint8Array[] {
  const meta = new Map(metadata);
  const alignment = alignmentOf(meta, '<writing>');
  const w = new Writer();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.size);
  for (const [k, v] of meta) {
    w.string(k);
    w.u32(VALUE_TYPES.indexOf(v.type));
    if (v.type === 'array') {
      w.u32(VALUE_TYPES.indexOf(v.itemType));
      w.u64(v.value.length);
      for (const x of v.value) w.scalar(v.itemType, x, k);
    } else w.scalar(v.type, v.value, k);
  }
  let offset = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new UnsupportedError(`GGUF writer: tensor '${t.name}' given twice`);
    names.add(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (ggmlByteLength(t.type, n) !== t.raw.byteLength)
      throw new UnsupportedError(`GGUF writer: '${t.name}' has ${t.raw.byteLength} bytes for ${n} ${t.type} elements`);
    w.string(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(t.shape[d]!);
    w.u32(ggmlTypeId(t.type));
    w.u64(offset);
    offset += Math.ceil(t.raw.byteLength / alignment) * alignment;
  }
  w.pad(alignment);
  const chunks = [w.bytes()];
  for (const t of tensors) {
    chunks.push(t.raw);
    const pad = Math.ceil(t.raw.byteLength / alignment) * alignment - t.raw.byteLength;
    if (pad) chunks.push(new Uint8Array(pad));
  }
  return chunks;
}

/** A growing little-endian byte buffer. */
class Writer {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  private n = 0;
  private readonly utf8 = new TextEncoder();
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }
  u32(v: number): void {
    this.room(4);
    this.dv.setUint32(this.n, v, true);
    this.n += 4;
  }
  u64(v: number | bigint): void {
    this.room(8);
    this.dv.setBigUint64(this.n, BigInt(v), true);
    this.n += 8;
  }
  string(s: string): void {
    const b = this.utf8.encode(s);
    this.u64(b.length);
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  scalar(t: GgufScalarType, v: GgufScalar, key: string): void {
    const want = t === 'string' ? 'string' : t === 'bool' ? 'boolean' : 'number';
    if (typeof v !== want && !(typeof v === 'bigint' && (t === 'u64' || t === 'i64')))
      throw new UnsupportedError(`GGUF writer: '${key}' is ${t} but holds ${typeof v} ${String(v)}`);
    if (t === 'string') {
      this.string(v as string);
      return;
    }
    const size = SCALAR_SIZE[t];
    this.room(size);
    const p = this.n,
      dv = this.dv;
    this.n += size;
    switch (t) {
      case 'u8':
        dv.setUint8(p, v as number);
        return;
      case 'i8':
        dv.setInt8(p, v as number);
        return;
      case 'u16':
        dv.setUint16(p, v as number, true);
        return;
      case 'i16':
        dv.setInt16(p, v as number, true);
        return;
      case 'u32':
        dv.setUint32(p, v as number, true);
        return;
      case 'i32':
        dv.setInt32(p, v as number, true);
        return;
      case 'f32':
        dv.setFloat32(p, v as number, true);
        return;
      case 'f64':
        dv.setFloat64(p, v as number, true);
        return;
      case 'bool':
        dv.setUint8(p, v ? 1 : 0);
        return;
      case 'u64':
        dv.setBigUint64(p, BigInt(v as number | bigint), true);
        return;
      case 'i64':
        dv.setBigInt64(p, BigInt(v as number | bigint), true);
        return;
    }
  }
  pad(alignment: number): void {
    const k = Math.ceil(this.n / alignment) * alignment - this.n;
    this.room(k);
    this.n += k; // the buffer is zero-filled
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

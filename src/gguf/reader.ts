// GGUF reader: parses the header (metadata and tensor infos) of a GGUF v2/v3 file through a Storage,
// with every size checked against a named cap before use and every failure a GGUFError naming the
// problem and its byte offset. Tensor data is not read here; callers read it through the Storage.
import { typeTraits } from '../quant/formats.js';
import type { Storage } from '../storage/storage.js';
import {
  GGUF_CAPS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_SUPPORTED_VERSIONS,
  GGUFError,
  GGUFValueType,
  valueTypeSize,
} from './types.js';
import type { GGUFArray, GGUFCaps, GGUFFile, GGUFKV, GGUFTensorInfo, GGUFValue } from './types.js';

/** First read of a header; grown by doubling while the header is longer. */
const INITIAL_HEADER_READ = 1 << 20;

/** Thrown inside the parser when the buffer ends before the file does; never escapes this module. */
class NeedMoreBytes {
  constructor(readonly upTo: number) {}
}

// ignoreBOM: a token may be U+FEFF itself, which the default decoder would drop.
const textDecoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * A bounds-checked little-endian cursor over the first `buf.length` bytes of a file of `fileSize`
 * bytes. Reading past the buffer but inside the file asks for more; past the file is TRUNCATED.
 */
class HeaderCursor {
  pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly fileSize: number,
    private readonly source: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(code: ConstructorParameters<typeof GGUFError>[0], message: string, offset = this.pos): never {
    throw new GGUFError(code, message, offset, this.source);
  }

  /** Ensures `n` more bytes are available, naming `what` if the file ends first. */
  need(n: number, what: string): void {
    const end = this.pos + n;
    if (end > this.fileSize) {
      this.fail('TRUNCATED', `file ends inside ${what}: needs ${n} bytes, ${Math.max(0, this.fileSize - this.pos)} left`);
    }
    if (end > this.buf.length) throw new NeedMoreBytes(end);
  }

  /** Bytes left in the file after the cursor. */
  remaining(): number {
    return this.fileSize - this.pos;
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(what: string): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 count or size that must not exceed `cap`; returned as a number. */
  count(what: string, cap: number, capName: string): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v > BigInt(cap)) this.fail('CAP_EXCEEDED', `${what} is ${v}, above the cap ${capName} = ${cap}`, at);
    return Number(v);
  }

  string(what: string, cap: number, capName: string): string {
    const len = this.count(`length of ${what}`, cap, capName);
    this.need(len, what);
    const s = textDecoder.decode(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  /** Copies `n` items of `size` bytes into a fresh, aligned buffer. */
  bytes(n: number, size: number, what: string): ArrayBuffer {
    const len = n * size;
    this.need(len, what);
    // Uint8Array's own slice: a Node Buffer's slice() would return a view into its shared pool.
    const out = Uint8Array.prototype.slice.call(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return out.buffer;
  }
}

function parseValueType(cur: HeaderCursor, what: string): GGUFValueType {
  const at = cur.pos;
  const t = cur.u32(`type of ${what}`);
  if (!(t in GGUFValueType) || typeof GGUFValueType[t] !== 'string') {
    cur.fail('BAD_VALUE_TYPE', `unknown value type ${t} for ${what}`, at);
  }
  return t as GGUFValueType;
}

function parseArray(cur: HeaderCursor, what: string, caps: GGUFCaps, depth: number): GGUFArray {
  if (depth > caps.maxArrayDepth) cur.fail('CAP_EXCEEDED', `${what} nests arrays deeper than the cap maxArrayDepth = ${caps.maxArrayDepth}`);
  const itemType = parseValueType(cur, `items of ${what}`);
  const countAt = cur.pos;
  const n = cur.count(`item count of ${what}`, caps.maxArrayLength, 'maxArrayLength');
  // Every item takes at least one byte (strings and arrays at least 8), so a count the rest of the
  // file cannot hold is refused before anything is allocated.
  const minItemBytes = itemType === GGUFValueType.STRING || itemType === GGUFValueType.ARRAY ? 8 : valueTypeSize(itemType);
  if (n * minItemBytes > cur.remaining()) {
    cur.fail('TRUNCATED', `${what} claims ${n} items of type ${GGUFValueType[itemType]}, more than the ${cur.remaining()} bytes left can hold`, countAt);
  }
  const name = `${what}`;
  switch (itemType) {
    case GGUFValueType.UINT8:
    case GGUFValueType.BOOL:
      return { itemType, items: new Uint8Array(cur.bytes(n, 1, name)) };
    case GGUFValueType.INT8:
      return { itemType, items: new Int8Array(cur.bytes(n, 1, name)) };
    case GGUFValueType.UINT16:
      return { itemType, items: new Uint16Array(cur.bytes(n, 2, name)) };
    case GGUFValueType.INT16:
      return { itemType, items: new Int16Array(cur.bytes(n, 2, name)) };
    case GGUFValueType.UINT32:
      return { itemType, items: new Uint32Array(cur.bytes(n, 4, name)) };
    case GGUFValueType.INT32:
      return { itemType, items: new Int32Array(cur.bytes(n, 4, name)) };
    case GGUFValueType.FLOAT32:
      return { itemType, items: new Float32Array(cur.bytes(n, 4, name)) };
    case GGUFValueType.UINT64:
      return { itemType, items: new BigUint64Array(cur.bytes(n, 8, name)) };
    case GGUFValueType.INT64:
      return { itemType, items: new BigInt64Array(cur.bytes(n, 8, name)) };
    case GGUFValueType.FLOAT64:
      return { itemType, items: new Float64Array(cur.bytes(n, 8, name)) };
    case GGUFValueType.STRING: {
      const items: string[] = new Array<string>(n);
      for (let i = 0; i < n; i++) items[i] = cur.string(`${what}[${i}]`, caps.maxStringLength, 'maxStringLength');
      return { itemType, items };
    }
    case GGUFValueType.ARRAY: {
      const items: GGUFArray[] = new Array<GGUFArray>(n);
      for (let i = 0; i < n; i++) items[i] = parseArray(cur, `${what}[${i}]`, caps, depth + 1);
      return { itemType, items };
    }
  }
}

function parseValue(cur: HeaderCursor, type: GGUFValueType, what: string, caps: GGUFCaps): GGUFValue {
  switch (type) {
    case GGUFValueType.UINT8:
      return cur.u8(what);
    case GGUFValueType.INT8:
      return cur.i8(what);
    case GGUFValueType.UINT16:
      return cur.u16(what);
    case GGUFValueType.INT16:
      return cur.i16(what);
    case GGUFValueType.UINT32:
      return cur.u32(what);
    case GGUFValueType.INT32:
      return cur.i32(what);
    case GGUFValueType.FLOAT32:
      return cur.f32(what);
    case GGUFValueType.FLOAT64:
      return cur.f64(what);
    case GGUFValueType.UINT64:
      return cur.u64(what);
    case GGUFValueType.INT64:
      return cur.i64(what);
    case GGUFValueType.BOOL: {
      const at = cur.pos;
      const b = cur.u8(what);
      if (b > 1) cur.fail('BAD_VALUE', `${what} is a bool stored as ${b}`, at);
      return b === 1;
    }
    case GGUFValueType.STRING:
      return cur.string(what, caps.maxStringLength, 'maxStringLength');
    case GGUFValueType.ARRAY:
      return parseArray(cur, what, caps, 1);
  }
}

interface ParsedHeader {
  version: number;
  kv: GGUFKV[];
  metadata: Map<string, GGUFKV>;
  tensorRecords: { name: string; shape: number[]; type: number; relativeOffset: number; at: number }[];
  headerEnd: number;
}

function parseHeader(cur: HeaderCursor, caps: GGUFCaps): ParsedHeader {
  const magic = cur.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const bytes = [magic & 0xff, (magic >> 8) & 0xff, (magic >> 16) & 0xff, magic >>> 24];
    const shown = bytes.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    cur.fail('BAD_MAGIC', `not a GGUF file: magic is "${shown}", expected "GGUF"`, 0);
  }
  const version = cur.u32('version');
  if (!GGUF_SUPPORTED_VERSIONS.includes(version)) {
    // A big-endian file stores its version byte-swapped (3 reads as 0x03000000).
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >> 8) & 0xff00) | (version >>> 24);
    if (GGUF_SUPPORTED_VERSIONS.includes(swapped >>> 0)) cur.fail('BIG_ENDIAN', 'big-endian GGUF files are not supported', 4);
    cur.fail('UNSUPPORTED_VERSION', `unsupported GGUF version ${version} (supported: ${GGUF_SUPPORTED_VERSIONS.join(', ')})`, 4);
  }
  const tensorCount = cur.count('tensor count', caps.maxTensorCount, 'maxTensorCount');
  const kvCount = cur.count('metadata key/value count', caps.maxKVCount, 'maxKVCount');

  const kv: GGUFKV[] = [];
  const metadata = new Map<string, GGUFKV>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = cur.pos;
    const key = cur.string(`key of metadata entry ${i}`, caps.maxKeyLength, 'maxKeyLength');
    if (metadata.has(key)) cur.fail('DUPLICATE_KEY', `metadata key "${key}" appears twice`, keyAt);
    const type = parseValueType(cur, `metadata "${key}"`);
    const value = parseValue(cur, type, `metadata "${key}"`, caps);
    const entry: GGUFKV = { key, type, value };
    kv.push(entry);
    metadata.set(key, entry);
  }

  const tensorRecords: ParsedHeader['tensorRecords'] = [];
  const seen = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = cur.pos;
    const name = cur.string(`name of tensor ${i}`, caps.maxTensorNameLength, 'maxTensorNameLength');
    if (seen.has(name)) cur.fail('DUPLICATE_TENSOR', `tensor "${name}" appears twice`, at);
    seen.add(name);
    const dimsAt = cur.pos;
    const nDims = cur.u32(`dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
      cur.fail('BAD_TENSOR_SHAPE', `tensor "${name}" has ${nDims} dimensions (allowed: 1 to ${GGUF_MAX_DIMS})`, dimsAt);
    }
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const dimAt = cur.pos;
      const dim = cur.u64(`dimension ${d} of tensor "${name}"`);
      if (dim > BigInt(caps.maxTensorElements)) {
        cur.fail('SIZE_OVERFLOW', `dimension ${d} of tensor "${name}" is ${dim}, above the cap maxTensorElements = ${caps.maxTensorElements}`, dimAt);
      }
      shape.push(Number(dim));
    }
    const typeAt = cur.pos;
    const type = cur.u32(`type of tensor "${name}"`);
    if (!typeTraits(type)) cur.fail('UNKNOWN_TENSOR_TYPE', `tensor "${name}" has unknown type id ${type}`, typeAt);
    const offAt = cur.pos;
    const rel = cur.u64(`data offset of tensor "${name}"`);
    if (rel > BigInt(Number.MAX_SAFE_INTEGER)) cur.fail('SIZE_OVERFLOW', `data offset of tensor "${name}" is ${rel}`, offAt);
    tensorRecords.push({ name, shape, type, relativeOffset: Number(rel), at });
  }
  return { version, kv, metadata, tensorRecords, headerEnd: cur.pos };
}

function scalarAsNumber(v: GGUFValue | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** Checks shapes, sizes, alignment and placement of the tensors, and builds the file description. */
function describeFile(h: ParsedHeader, fileSize: number, source: string, caps: GGUFCaps): GGUFFile {
  const fail = (code: ConstructorParameters<typeof GGUFError>[0], msg: string, at?: number): never => {
    throw new GGUFError(code, msg, at, source);
  };
  const alignEntry = h.metadata.get('general.alignment');
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignEntry) {
    const a = scalarAsNumber(alignEntry.value);
    if (a === undefined || a <= 0 || !Number.isInteger(a) || (a & (a - 1)) !== 0 || a > 1 << 20) {
      fail('BAD_ALIGNMENT', `general.alignment must be a power of two, got ${String(alignEntry.value)}`);
    }
    alignment = a as number;
  }
  const dataOffset = Math.ceil(h.headerEnd / alignment) * alignment;
  if (dataOffset > fileSize) fail('TRUNCATED', `file ends before its data section, which starts at byte ${dataOffset}`, fileSize);

  const tensors: GGUFTensorInfo[] = [];
  const byName = new Map<string, GGUFTensorInfo>();
  for (const r of h.tensorRecords) {
    const traits = typeTraits(r.type)!;
    let elements = 1;
    for (const d of r.shape) {
      elements *= d;
      if (elements > caps.maxTensorElements) {
        fail('SIZE_OVERFLOW', `tensor "${r.name}" of shape [${r.shape.join(', ')}] has more elements than the cap maxTensorElements = ${caps.maxTensorElements}`, r.at);
      }
    }
    if (r.shape[0] % traits.blockSize !== 0) {
      fail('BAD_TENSOR_SHAPE', `tensor "${r.name}" has rows of ${r.shape[0]} weights, not a multiple of ${traits.name}'s block of ${traits.blockSize}`, r.at);
    }
    const byteSize = (elements / traits.blockSize) * traits.blockBytes;
    if (r.relativeOffset % alignment !== 0) {
      fail('MISALIGNED_TENSOR', `tensor "${r.name}" starts at data offset ${r.relativeOffset}, not a multiple of the alignment ${alignment}`, r.at);
    }
    const offset = dataOffset + r.relativeOffset;
    if (offset + byteSize > fileSize) {
      fail('DATA_PAST_EOF', `tensor "${r.name}" (${traits.name}, ${byteSize} bytes at byte ${offset}) ends at byte ${offset + byteSize}, past the end of the ${fileSize}-byte file`, r.at);
    }
    const info: GGUFTensorInfo = { name: r.name, shape: r.shape, type: r.type, relativeOffset: r.relativeOffset, offset, elementCount: elements, byteSize };
    tensors.push(info);
    byName.set(info.name, info);
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    if (prev.offset + prev.byteSize > next.offset && prev.byteSize > 0 && next.byteSize > 0) {
      fail('OVERLAPPING_TENSORS', `tensors "${prev.name}" (bytes ${prev.offset}..${prev.offset + prev.byteSize}) and "${next.name}" (from byte ${next.offset}) overlap`, next.offset);
    }
  }
  return {
    version: h.version,
    kv: h.kv,
    metadata: h.metadata,
    tensors,
    tensorsByName: byName,
    alignment,
    headerEnd: h.headerEnd,
    dataOffset,
    fileSize,
    source,
  };
}

export interface ReadGGUFOptions {
  caps?: Partial<GGUFCaps>;
}

/** Parses the header of the GGUF file behind `storage`. Throws GGUFError on any malformed input. */
export async function readGGUF(storage: Storage, options: ReadGGUFOptions = {}): Promise<GGUFFile> {
  const caps: GGUFCaps = { ...GGUF_CAPS, ...options.caps };
  const fileSize = storage.size;
  let want = Math.min(fileSize, INITIAL_HEADER_READ);
  for (;;) {
    const buf = new Uint8Array(want);
    const got = await storage.read(0, buf);
    const cur = new HeaderCursor(buf.subarray(0, got), got < want ? got : fileSize, storage.name);
    try {
      const header = parseHeader(cur, caps);
      return describeFile(header, fileSize, storage.name, caps);
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
      if (want >= fileSize) throw new GGUFError('TRUNCATED', 'file ended while reading the header', got, storage.name);
      if (e.upTo > caps.maxHeaderBytes) {
        throw new GGUFError('CAP_EXCEEDED', `header is longer than the cap maxHeaderBytes = ${caps.maxHeaderBytes}`, e.upTo, storage.name);
      }
      want = Math.min(fileSize, Math.max(want * 2, e.upTo));
    }
  }
}

/** Parses a whole GGUF file held in memory (tests and tools). */
export function readGGUFBytes(bytes: Uint8Array, source = '<memory>', options: ReadGGUFOptions = {}): GGUFFile {
  const caps: GGUFCaps = { ...GGUF_CAPS, ...options.caps };
  const cur = new HeaderCursor(bytes, bytes.length, source);
  try {
    return describeFile(parseHeader(cur, caps), bytes.length, source, caps);
  } catch (e) {
    if (e instanceof NeedMoreBytes) throw new GGUFError('TRUNCATED', 'file ended while reading the header', bytes.length, source);
    throw e;
  }
}

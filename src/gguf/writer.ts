// GGUF writer: streams a GGUF v3 file (header, metadata, tensor infos, aligned tensor data) to a sink,
// pulling each tensor's bytes from a source only when it is written, so files of any size are written
// without holding them in memory. Layout follows llama.cpp's writer: tensors laid out in info order,
// each at the next multiple of the alignment, zero padding between them and after the last one.
import { open } from 'node:fs/promises';
import { typeTraits } from '../quant/formats.js';
import type { GGMLType } from '../quant/formats.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUFValueType } from './types.js';
import type { GGUFArray, GGUFKV, GGUFValue } from './types.js';

/** Where the bytes go. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A tensor to write: its info plus a source that yields exactly `byteSize` bytes in order. */
export interface TensorToWrite {
  readonly name: string;
  readonly shape: readonly number[];
  readonly type: GGMLType;
  /** Produces the tensor's bytes (any chunking). */
  readonly data: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

export interface WriteGGUFOptions {
  version?: 2 | 3;
  alignment?: number;
  /** Called after each tensor with the count written so far and the total. */
  onTensor?: (done: number, total: number, name: string) => void;
}

const textEncoder = new TextEncoder();

/** A growable little-endian byte buffer for the header. */
class HeaderBuilder {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: bigint | number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: bigint | number): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  string(s: string): void {
    const b = textEncoder.encode(s);
    this.u64(b.length);
    this.raw(b);
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(h: HeaderBuilder, type: GGUFValueType, v: GGUFValue, key: string): void {
  const bad = (): never => {
    throw new Error(`metadata "${key}": value ${String(v)} does not fit type ${GGUFValueType[type]}`);
  };
  switch (type) {
    case GGUFValueType.UINT8:
      return typeof v === 'number' ? h.u8(v) : bad();
    case GGUFValueType.INT8:
      return typeof v === 'number' ? h.i8(v) : bad();
    case GGUFValueType.UINT16:
      return typeof v === 'number' ? h.u16(v) : bad();
    case GGUFValueType.INT16:
      return typeof v === 'number' ? h.i16(v) : bad();
    case GGUFValueType.UINT32:
      return typeof v === 'number' ? h.u32(v) : bad();
    case GGUFValueType.INT32:
      return typeof v === 'number' ? h.i32(v) : bad();
    case GGUFValueType.FLOAT32:
      return typeof v === 'number' ? h.f32(v) : bad();
    case GGUFValueType.FLOAT64:
      return typeof v === 'number' ? h.f64(v) : bad();
    case GGUFValueType.UINT64:
      return typeof v === 'bigint' || typeof v === 'number' ? h.u64(v) : bad();
    case GGUFValueType.INT64:
      return typeof v === 'bigint' || typeof v === 'number' ? h.i64(v) : bad();
    case GGUFValueType.BOOL:
      return typeof v === 'boolean' ? h.u8(v ? 1 : 0) : bad();
    case GGUFValueType.STRING:
      return typeof v === 'string' ? h.string(v) : bad();
    case GGUFValueType.ARRAY:
      return typeof v === 'object' ? writeArray(h, v, key) : bad();
  }
}

function writeArray(h: HeaderBuilder, a: GGUFArray, key: string): void {
  h.u32(a.itemType);
  const items = a.items;
  h.u64(items.length);
  if (ArrayBuffer.isView(items)) {
    // Typed arrays are little-endian on every host JavaScript runs on; copy their bytes directly.
    const view = items as unknown as ArrayBufferView;
    h.raw(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    return;
  }
  for (const item of items as readonly GGUFValue[]) writeScalar(h, a.itemType, item, key);
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Byte size of a tensor, checked against its type's block size. */
export function tensorByteSize(name: string, shape: readonly number[], type: GGMLType): number {
  const t = typeTraits(type);
  if (!t) throw new Error(`tensor "${name}": unknown type ${type}`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (shape[0]! % t.blockSize !== 0) throw new Error(`tensor "${name}": row of ${shape[0]} is not a multiple of ${t.name}'s block ${t.blockSize}`);
  return (n / t.blockSize) * t.blockBytes;
}

/** Serialises the header (everything before the data section, padding included). */
export function buildGGUFHeader(kv: readonly GGUFKV[], tensors: readonly Pick<TensorToWrite, 'name' | 'shape' | 'type'>[], options: WriteGGUFOptions = {}): Uint8Array {
  const alignment = options.alignment ?? alignmentFromKV(kv);
  const h = new HeaderBuilder();
  h.u32(GGUF_MAGIC);
  h.u32(options.version ?? 3);
  h.u64(tensors.length);
  h.u64(kv.length);
  for (const e of kv) {
    h.string(e.key);
    h.u32(e.type);
    writeScalar(h, e.type, e.value, e.key);
  }
  let offset = 0;
  for (const t of tensors) {
    h.string(t.name);
    h.u32(t.shape.length);
    for (const d of t.shape) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    offset = alignUp(offset + tensorByteSize(t.name, t.shape, t.type), alignment);
  }
  const padded = alignUp(h.length, alignment);
  while (h.length < padded) h.u8(0);
  return h.bytes();
}

function alignmentFromKV(kv: readonly GGUFKV[]): number {
  const e = kv.find((x) => x.key === 'general.alignment');
  if (!e) return GGUF_DEFAULT_ALIGNMENT;
  return Number(e.value);
}

/** Streams a whole GGUF file to `sink`. Returns the number of bytes written. */
export async function writeGGUF(sink: ByteSink, kv: readonly GGUFKV[], tensors: readonly TensorToWrite[], options: WriteGGUFOptions = {}): Promise<number> {
  const alignment = options.alignment ?? alignmentFromKV(kv);
  const header = buildGGUFHeader(kv, tensors, { ...options, alignment });
  await sink.write(header);
  let written = header.length;
  const zeros = new Uint8Array(alignment);
  let index = 0;
  for (const t of tensors) {
    const expected = tensorByteSize(t.name, t.shape, t.type);
    let got = 0;
    for await (const chunk of t.data()) {
      got += chunk.length;
      if (got > expected) throw new Error(`tensor "${t.name}": source gave more than its ${expected} bytes`);
      await sink.write(chunk);
    }
    if (got !== expected) throw new Error(`tensor "${t.name}": source gave ${got} bytes, expected ${expected}`);
    written += got;
    const pad = alignUp(written, alignment) - written;
    if (pad > 0) await sink.write(zeros.subarray(0, pad));
    written += pad;
    options.onTensor?.(++index, tensors.length, t.name);
  }
  return written;
}

/** A sink writing to a file through a buffered handle; the file is replaced. */
export async function fileSink(path: string): Promise<ByteSink> {
  const fh = await open(path, 'w');
  const BUFFER = 1 << 22;
  let pending = new Uint8Array(BUFFER);
  let used = 0;
  const flush = async (): Promise<void> => {
    let off = 0;
    while (off < used) {
      const { bytesWritten } = await fh.write(pending, off, used - off);
      off += bytesWritten;
    }
    used = 0;
  };
  return {
    async write(bytes: Uint8Array): Promise<void> {
      if (bytes.length >= BUFFER) {
        await flush();
        let off = 0;
        while (off < bytes.length) {
          const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
          off += bytesWritten;
        }
        return;
      }
      if (used + bytes.length > BUFFER) await flush();
      pending.set(bytes, used);
      used += bytes.length;
    },
    async close(): Promise<void> {
      await flush();
      pending = new Uint8Array(0);
      await fh.close();
    },
  };
}

/** A sink collecting everything in memory (tests, small files). */
export function memorySink(): ByteSink & { bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    async write(bytes: Uint8Array): Promise<void> {
      chunks.push(bytes.slice());
    },
    async close(): Promise<void> {},
    bytes(): Uint8Array {
      const total = chunks.reduce((a, c) => a + c.length, 0);
      const out = new Uint8Array(total);
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return out;
    },
  };
}

/** A tensor to write whose bytes are read, in chunks, from an existing file through its Storage. */
export function tensorFromStorage(
  info: { readonly name: string; readonly shape: readonly number[]; readonly type: GGMLType; readonly offset: number; readonly byteSize: number },
  storage: { read(offset: number, into: Uint8Array): Promise<number>; readonly name: string },
  chunkBytes = 1 << 24,
): TensorToWrite {
  return {
    name: info.name,
    shape: info.shape,
    type: info.type,
    async *data() {
      for (let off = 0; off < info.byteSize; off += chunkBytes) {
        const buf = new Uint8Array(Math.min(chunkBytes, info.byteSize - off));
        const n = await storage.read(info.offset + off, buf);
        if (n !== buf.length) throw new Error(`${storage.name}: tensor "${info.name}" is cut short at byte ${info.offset + off + n}`);
        yield buf;
      }
    },
  };
}

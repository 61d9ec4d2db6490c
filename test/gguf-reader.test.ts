// The GGUF reader on every shared model (facts from ../shared/models/MODELS.md), and on bad input:
// truncations at every header offset, corrupt magic/version/counts/offsets, each a GGUFError with the
// right code and never anything else.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metaNumber, metaString, metaStringArray } from '../src/gguf/metadata.js';
import { readGGUF, readGGUFBytes } from '../src/gguf/reader.js';
import { GGUFError, GGUFValueType } from '../src/gguf/types.js';
import type { GGUFErrorCode, GGUFKV } from '../src/gguf/types.js';
import { buildGGUFHeader, memorySink, writeGGUF } from '../src/gguf/writer.js';
import { GGMLType } from '../src/quant/formats.js';
import { memoryStorage } from '../src/storage/memory.js';
import { openFileStorage } from '../src/storage/node.js';
import { MODELS } from './support/golden.js';

function bytesOf(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(MODELS, name)));
}

function codeOf(fn: () => unknown): GGUFErrorCode | 'NO_ERROR' {
  try {
    fn();
  } catch (e) {
    if (e instanceof GGUFError) return e.code;
    throw e; // anything but a GGUFError fails the test
  }
  return 'NO_ERROR';
}

async function asyncCodeOf(p: Promise<unknown>): Promise<GGUFErrorCode | 'NO_ERROR'> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GGUFError) return e.code;
    throw e;
  }
  return 'NO_ERROR';
}

describe('GGUF reader on the shared models', () => {
  it('stories260K.gguf matches MODELS.md', async () => {
    const storage = await openFileStorage(join(MODELS, 'stories260K.gguf'));
    const f = await readGGUF(storage);
    await storage.close();
    expect(f.version).toBe(3);
    expect(f.tensors.length).toBe(48);
    expect(f.kv.length).toBe(19);
    expect(f.fileSize).toBe(1185376);
    expect(f.alignment).toBe(32);
    expect(f.tensors.every((t) => t.type === GGMLType.F32)).toBe(true);
    expect(metaString(f, 'general.architecture')).toBe('llama');
    expect(metaNumber(f, 'llama.context_length')).toBe(2048);
    expect(metaNumber(f, 'llama.embedding_length')).toBe(64);
    expect(metaNumber(f, 'llama.block_count')).toBe(5);
    expect(metaNumber(f, 'llama.feed_forward_length')).toBe(172);
    expect(metaNumber(f, 'llama.attention.head_count')).toBe(8);
    expect(metaNumber(f, 'llama.attention.head_count_kv')).toBe(4);
    expect(metaNumber(f, 'llama.rope.dimension_count')).toBe(8);
    expect(metaNumber(f, 'llama.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-5, 10);
    expect(metaStringArray(f, 'tokenizer.ggml.tokens')!.length).toBe(512);
    expect(metaString(f, 'tokenizer.ggml.model')).toBe('llama');
    expect(metaNumber(f, 'tokenizer.ggml.bos_token_id')).toBe(1);
    expect(metaNumber(f, 'tokenizer.ggml.eos_token_id')).toBe(2);
    expect(metaNumber(f, 'tokenizer.ggml.padding_token_id')).toBe(0xffffffff);
    // Tensor data ends exactly at the end of the file.
    const end = Math.max(...f.tensors.map((t) => t.offset + t.byteSize));
    expect(end).toBe(f.fileSize);
    const embd = f.tensorsByName.get('token_embd.weight')!;
    expect(embd.shape).toEqual([64, 512]);
  });

  it('llama-2-tiny-random.gguf matches MODELS.md', async () => {
    const f = readGGUFBytes(bytesOf('llama-2-tiny-random.gguf'));
    expect(f.tensors.length).toBe(12);
    expect(f.kv.length).toBe(18);
    expect(f.tensors.filter((t) => t.type === GGMLType.F16).length).toBe(9);
    expect(f.tensors.filter((t) => t.type === GGMLType.F32).length).toBe(3);
    expect(metaString(f, 'general.name')).toBe('LLaMA v2');
    expect(metaNumber(f, 'general.file_type')).toBe(1);
    expect(metaNumber(f, 'llama.embedding_length')).toBe(8);
    expect(metaNumber(f, 'llama.feed_forward_length')).toBe(32);
    expect(metaNumber(f, 'llama.context_length')).toBe(4096);
    const tokens = metaStringArray(f, 'tokenizer.ggml.tokens')!;
    expect(tokens.length).toBe(32000);
    const types = f.metadata.get('tokenizer.ggml.token_type')!.value as { items: Int32Array };
    const count = (t: number) => Array.from(types.items).filter((x) => x === t).length;
    expect([count(2), count(3), count(6), count(1)]).toEqual([1, 2, 256, 31741]);
  });

  it.each([
    ['stories260K-Q4_0.gguf', { [GGMLType.Q4_0]: 31, [GGMLType.Q8_0]: 1, [GGMLType.F16]: 5, [GGMLType.F32]: 11 }],
    ['stories260K-Q8_0.gguf', { [GGMLType.Q8_0]: 32, [GGMLType.F32]: 11, [GGMLType.F16]: 5 }],
  ])('%s holds the tensor types MODELS.md lists', (name, expected) => {
    const f = readGGUFBytes(bytesOf(name));
    const got: Record<number, number> = {};
    for (const t of f.tensors) got[t.type] = (got[t.type] ?? 0) + 1;
    expect(got).toEqual(expected);
  });

  it('every shared model parses, with tensors inside the file and not overlapping', () => {
    const names = readdirSync(MODELS).filter((n) => n.endsWith('.gguf'));
    expect(names.length).toBe(5);
    for (const n of names) {
      const f = readGGUFBytes(bytesOf(n), n);
      for (const t of f.tensors) expect(t.offset + t.byteSize).toBeLessThanOrEqual(f.fileSize);
    }
  });
});

describe('GGUF reader on bad input', () => {
  it('stories260K truncated at every offset inside the header gives TRUNCATED', () => {
    const full = bytesOf('stories260K.gguf');
    const f = readGGUFBytes(full);
    for (let cut = 0; cut < f.dataOffset; cut++) {
      const code = codeOf(() => readGGUFBytes(full.subarray(0, cut)));
      if (code !== 'TRUNCATED') throw new Error(`cut at ${cut}: ${code}`);
    }
  });

  it('each shared model truncated in its header (dense sample) and in its data', () => {
    for (const n of readdirSync(MODELS).filter((x) => x.endsWith('.gguf'))) {
      const full = bytesOf(n);
      const f = readGGUFBytes(full);
      const cuts = new Set<number>();
      for (let c = 0; c < Math.min(f.dataOffset, 2048); c++) cuts.add(c);
      for (let i = 0; i < 300; i++) cuts.add(Math.floor((i / 300) * f.dataOffset));
      for (const cut of cuts) {
        const code = codeOf(() => readGGUFBytes(full.subarray(0, cut)));
        if (code !== 'TRUNCATED') throw new Error(`${n} cut at ${cut}: ${code}`);
      }
      for (let i = 1; i <= 50; i++) {
        const cut = f.dataOffset + 1 + Math.floor((i / 51) * (full.length - f.dataOffset - 1));
        const code = codeOf(() => readGGUFBytes(full.subarray(0, cut)));
        if (code !== 'DATA_PAST_EOF') throw new Error(`${n} cut in data at ${cut}: ${code}`);
      }
    }
  });

  it('truncated files read through a Storage fail the same way (async path)', async () => {
    const full = bytesOf('llama-2-tiny-random.gguf');
    for (const cut of [0, 3, 7, 23, 1000, 100_000, 724_000, 724_416 + 10, full.length - 1]) {
      const code = await asyncCodeOf(readGGUF(memoryStorage(full.subarray(0, cut))));
      expect([cut, code]).toEqual([cut, cut > 724_416 ? 'DATA_PAST_EOF' : 'TRUNCATED']);
    }
  });

  const base = bytesOf('stories260K.gguf');
  const patched = (at: number, write: (v: DataView) => void): Uint8Array => {
    const b = base.slice();
    write(new DataView(b.buffer, at));
    return b;
  };

  it('bad magic', () => {
    const b = patched(0, (v) => v.setUint32(0, 0x12345678, true));
    expect(codeOf(() => readGGUFBytes(b))).toBe('BAD_MAGIC');
    expect(() => readGGUFBytes(b)).toThrow(/not a GGUF file/);
  });

  it('version 99 and a big-endian file', () => {
    expect(codeOf(() => readGGUFBytes(patched(4, (v) => v.setUint32(0, 99, true))))).toBe('UNSUPPORTED_VERSION');
    expect(codeOf(() => readGGUFBytes(patched(4, (v) => v.setUint32(0, 3, false))))).toBe('BIG_ENDIAN');
  });

  it('tensor count 2^60 and kv count 2^60 are refused before any allocation', () => {
    expect(codeOf(() => readGGUFBytes(patched(8, (v) => v.setBigUint64(0, 1n << 60n, true))))).toBe('CAP_EXCEEDED');
    expect(codeOf(() => readGGUFBytes(patched(16, (v) => v.setBigUint64(0, 1n << 60n, true))))).toBe('CAP_EXCEEDED');
    // A count under the cap that is wrong makes the reader parse data bytes as tensor infos: that
    // must still end in a GGUFError, whichever check trips first.
    for (const n of [49n, 1000n, 100_000n]) {
      expect(codeOf(() => readGGUFBytes(patched(8, (v) => v.setBigUint64(0, n, true))))).not.toBe('NO_ERROR');
    }
  });

  it('a string length past the end of the file', () => {
    // The first value is tokenizer.ggml.tokens: key length at 24, key (21 bytes), value type at 53,
    // item type at 57, item count at 61, then the first string's length at 69.
    const b = patched(69, (v) => v.setBigUint64(0, 5_000_000n, true));
    expect(codeOf(() => readGGUFBytes(b))).toBe('TRUNCATED');
    expect(() => readGGUFBytes(b)).toThrow(/at byte 77/);
    expect(codeOf(() => readGGUFBytes(patched(69, (v) => v.setBigUint64(0, 1n << 62n, true))))).toBe('CAP_EXCEEDED');
    // A key longer than the key cap.
    expect(codeOf(() => readGGUFBytes(patched(24, (v) => v.setBigUint64(0, 5_000_000n, true))))).toBe('CAP_EXCEEDED');
  });

  it('an array count larger than the file', () => {
    // tokenizer.ggml.tokens is the first entry: key "tokenizer.ggml.tokens" (21 bytes) at 32, type at 53, item type at 57, count at 61.
    const b = patched(61, (v) => v.setBigUint64(0, 50_000_000n, true));
    expect(codeOf(() => readGGUFBytes(b))).toBe('TRUNCATED');
  });

  async function tinyFile(tensors: { name: string; shape: number[]; type: GGMLType }[], kv: GGUFKV[] = []): Promise<Uint8Array> {
    const sink = memorySink();
    await writeGGUF(
      sink,
      kv,
      tensors.map((t) => ({ ...t, data: () => [new Uint8Array((t.shape.reduce((a, b) => a * b, 1) / 32) * 34)] })),
    );
    return sink.bytes();
  }

  it('tensor offset past the end of the file, misaligned and overlapping tensors', async () => {
    const good = await tinyFile([
      { name: 'a', shape: [64, 2], type: GGMLType.Q8_0 },
      { name: 'b', shape: [64, 2], type: GGMLType.Q8_0 },
    ]);
    expect(codeOf(() => readGGUFBytes(good))).toBe('NO_ERROR');
    const f = readGGUFBytes(good);
    // Tensor infos: name (8+1), n_dims 4, dims 16, type 4, offset 8 → offset field of "b" is the last 8 bytes of the infos.
    const offsetOfB = f.headerEnd - 8;
    const set = (v: bigint) => {
      const b = good.slice();
      new DataView(b.buffer).setBigUint64(offsetOfB, v, true);
      return b;
    };
    expect(codeOf(() => readGGUFBytes(set(1n << 40n)))).toBe('DATA_PAST_EOF');
    expect(codeOf(() => readGGUFBytes(set(1n << 60n)))).toBe('SIZE_OVERFLOW');
    expect(codeOf(() => readGGUFBytes(set(33n)))).toBe('MISALIGNED_TENSOR');
    expect(codeOf(() => readGGUFBytes(set(96n)))).toBe('OVERLAPPING_TENSORS');
    expect(() => readGGUFBytes(set(96n))).toThrow(/"a".*"b".*overlap/);
  });

  it('unknown tensor type, too many dims, a row that is not whole blocks', async () => {
    const good = await tinyFile([{ name: 'a', shape: [64, 2], type: GGMLType.Q8_0 }]);
    const f = readGGUFBytes(good);
    const typeAt = f.headerEnd - 12;
    const dimsAt = f.headerEnd - 8 - 4 - 16 - 4;
    const b1 = good.slice();
    new DataView(b1.buffer).setUint32(typeAt, 77, true);
    expect(codeOf(() => readGGUFBytes(b1))).toBe('UNKNOWN_TENSOR_TYPE');
    expect(() => readGGUFBytes(b1)).toThrow(/unknown type id 77/);
    const b2 = good.slice();
    new DataView(b2.buffer).setUint32(dimsAt, 9, true);
    expect(codeOf(() => readGGUFBytes(b2))).toBe('BAD_TENSOR_SHAPE');
    const b3 = good.slice();
    new DataView(b3.buffer).setBigUint64(dimsAt + 4, 63n, true);
    expect(codeOf(() => readGGUFBytes(b3))).toBe('BAD_TENSOR_SHAPE');
  });

  it('dims whose product overflows', async () => {
    const good = await tinyFile([{ name: 'a', shape: [32, 1, 1, 1], type: GGMLType.Q8_0 }]);
    const f = readGGUFBytes(good);
    const dims = f.headerEnd - 8 - 4 - 32;
    const b = good.slice();
    const v = new DataView(b.buffer);
    for (let d = 1; d < 4; d++) v.setBigUint64(dims + d * 8, 1n << 20n, true);
    expect(codeOf(() => readGGUFBytes(b))).toBe('SIZE_OVERFLOW');
  });

  it('unknown value type, bad bool, duplicate key, nested arrays too deep, bad alignment', () => {
    const kvFile = (kv: GGUFKV[]) => buildGGUFHeader(kv, []);
    const one = kvFile([{ key: 'x', type: GGUFValueType.UINT32, value: 1 }]);
    const badType = one.slice();
    new DataView(badType.buffer).setUint32(24 + 8 + 1, 13, true);
    expect(codeOf(() => readGGUFBytes(badType))).toBe('BAD_VALUE_TYPE');
    const bool = kvFile([{ key: 'x', type: GGUFValueType.BOOL, value: true }]);
    bool[24 + 8 + 1 + 4] = 7;
    expect(codeOf(() => readGGUFBytes(bool))).toBe('BAD_VALUE');
    const dup = kvFile([
      { key: 'x', type: GGUFValueType.UINT32, value: 1 },
      { key: 'x', type: GGUFValueType.UINT32, value: 2 },
    ]);
    expect(codeOf(() => readGGUFBytes(dup))).toBe('DUPLICATE_KEY');
    let nested: { itemType: GGUFValueType; items: unknown[] } = { itemType: GGUFValueType.UINT8, items: [] as unknown[] };
    nested = { itemType: GGUFValueType.UINT8, items: new Uint8Array([1]) as unknown as unknown[] };
    for (let d = 0; d < 12; d++) nested = { itemType: GGUFValueType.ARRAY, items: [nested] };
    const deep = kvFile([{ key: 'deep', type: GGUFValueType.ARRAY, value: nested as never }]);
    expect(codeOf(() => readGGUFBytes(deep))).toBe('CAP_EXCEEDED');
    const align = kvFile([{ key: 'general.alignment', type: GGUFValueType.UINT32, value: 24 }]);
    expect(codeOf(() => readGGUFBytes(align))).toBe('BAD_ALIGNMENT');
  });

  it('nested arrays and every value type read back as written', () => {
    const kv: GGUFKV[] = [
      { key: 'u8', type: GGUFValueType.UINT8, value: 200 },
      { key: 'i8', type: GGUFValueType.INT8, value: -100 },
      { key: 'u16', type: GGUFValueType.UINT16, value: 60000 },
      { key: 'i16', type: GGUFValueType.INT16, value: -30000 },
      { key: 'u32', type: GGUFValueType.UINT32, value: 4_000_000_000 },
      { key: 'i32', type: GGUFValueType.INT32, value: -2_000_000_000 },
      { key: 'f32', type: GGUFValueType.FLOAT32, value: 1.5 },
      { key: 'bool', type: GGUFValueType.BOOL, value: true },
      { key: 'str', type: GGUFValueType.STRING, value: 'héllo \uFEFF' },
      { key: 'u64', type: GGUFValueType.UINT64, value: 1n << 63n },
      { key: 'i64', type: GGUFValueType.INT64, value: -(1n << 62n) },
      { key: 'f64', type: GGUFValueType.FLOAT64, value: Math.PI },
      { key: 'strs', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items: ['a', '', 'ü'] } },
      {
        key: 'nested',
        type: GGUFValueType.ARRAY,
        value: {
          itemType: GGUFValueType.ARRAY,
          items: [
            { itemType: GGUFValueType.INT32, items: new Int32Array([1, -2]) },
            { itemType: GGUFValueType.STRING, items: ['x'] },
          ],
        },
      },
    ];
    const f = readGGUFBytes(buildGGUFHeader(kv, []));
    expect(f.kv).toEqual(kv);
  });
});

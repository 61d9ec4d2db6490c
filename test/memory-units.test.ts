// src/memory units: byte sizes, the memory plan, the layer pager's ring and read-ahead, disk
// embedding rows, and the packed-weight cache's checks (stale key, truncated file, flipped byte).
import { mkdtemp, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ByteSizeError, parseByteSize } from '../src/memory/byte-size.js';
import { MemoryBudgetError, planMemory } from '../src/memory/budget.js';
import { DiskEmbeddings } from '../src/memory/embeddings.js';
import { LayerPager } from '../src/memory/layer-pager.js';
import { PackedCacheWriter, openPackedCache, packedCacheKey, packedCachePath } from '../src/memory/packed-cache.js';
import type { PackedCacheKey } from '../src/memory/packed-cache.js';
import { memoryStorage } from '../src/storage/memory.js';
import type { Storage } from '../src/storage/storage.js';

describe('parseByteSize', () => {
  it('reads numbers and decimal and binary units', () => {
    expect(parseByteSize(1234)).toBe(1234);
    expect(parseByteSize('1GB')).toBe(1e9);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('512MiB')).toBe(512 * 2 ** 20);
    expect(parseByteSize('64kb')).toBe(64000);
    expect(parseByteSize('2KiB')).toBe(2048);
    expect(parseByteSize('300M')).toBe(3e8);
    expect(parseByteSize('4096')).toBe(4096);
  });
  it('rejects what is not a size, naming it', () => {
    expect(() => parseByteSize('1 GX', '--memory-budget')).toThrow(/--memory-budget "1 GX" is not a size/);
    expect(() => parseByteSize('-1GB')).toThrow(ByteSizeError);
    expect(() => parseByteSize('0')).toThrow(/more than 0/);
    expect(() => parseByteSize(-5)).toThrow(/positive whole number/);
    expect(() => parseByteSize(1.5)).toThrow(/positive whole number/);
  });
});

describe('planMemory', () => {
  const needs = { fixedBytes: 100, kvBytes: 60, scratchBytes: 30, contextLength: 32, residentTensorBytes: 50, layerBytes: [10, 10, 10, 10, 10, 10] };
  it('keeps everything resident without a budget or when it fits', () => {
    for (const budget of [undefined, 210, 1000]) {
      const p = planMemory(needs, budget);
      expect(p.residentLayers).toEqual([true, true, true, true, true, true]);
      expect(p.slotCount).toBe(0);
      expect(p.streamedBytes).toBe(0);
      expect(p.plannedBytes).toBe(210);
    }
  });
  it('streams the first layers through two slots and keeps the rest resident', () => {
    const p = planMemory(needs, 195);
    // 150 fixed + resident, 2 slots of 10 → 170; 25 left: two more layers resident (the last two).
    expect(p.residentLayers).toEqual([false, false, false, false, true, true]);
    expect(p.slotCount).toBe(2);
    expect(p.slotBytes).toBe(10);
    expect(p.streamedBytes).toBe(40);
    expect(p.residentWeightBytes).toBe(70);
    expect(p.plannedBytes).toBe(190);
    expect(p.plannedBytes).toBeLessThanOrEqual(195);
  });
  it('fails early below two slots, naming every part', () => {
    expect(() => planMemory(needs, 169)).toThrow(MemoryBudgetError);
    expect(() => planMemory(needs, 169)).toThrow(/budget 169 B is below the 170 B .* 2 layer slots \(2 × 10 B\) \+ KV cache 60 B \(context 32\) \+ scratch 30 B \+ resident tensors 50 B \+ runtime 10 B/);
  });
});

/** A fake wasm memory: one ArrayBuffer and views into it. */
function fakeMemory(bytes: number) {
  const buf = new Uint8Array(bytes);
  return { buf, view: (ptr: number, len: number) => buf.subarray(ptr, ptr + len) };
}

/** Storage that records reads and can hold them back until released. */
function recordingStorage(bytes: Uint8Array) {
  const inner = memoryStorage(bytes, 'layers');
  const log: number[] = [];
  const storage: Storage = {
    name: 'layers',
    size: bytes.length,
    async read(offset, into) {
      log.push(offset);
      await new Promise((r) => setTimeout(r, 1));
      return inner.read(offset, into);
    },
    readSync: (offset, into) => {
      log.push(offset);
      return inner.readSync!(offset, into);
    },
    close: () => inner.close(),
  };
  return { storage, log };
}

describe('LayerPager', () => {
  const LAYER = 64;
  const N = 6;
  // Layer l's bytes are all l+1, in two reads of 32 bytes each.
  const file = new Uint8Array(N * LAYER).map((_, i) => Math.floor(i / LAYER) + 1);
  const make = (slots: number) => {
    const mem = fakeMemory(slots * LAYER);
    const { storage, log } = recordingStorage(file);
    const pager = new LayerPager({
      storage,
      layers: [0, 1, 2, 3, 4, 5],
      readsOf: (l) => [
        { sourceOffset: l * LAYER, length: 32, slotOffset: 0 },
        { sourceOffset: l * LAYER + 32, length: 32, slotOffset: 32 },
      ],
      slotPtrs: Array.from({ length: slots }, (_, i) => i * LAYER),
      memory: mem.view,
      view: (l, ptr) => ({ layer: l, ptr }),
    });
    return { pager, mem, log };
  };

  it('serves every layer with its own bytes, reading each ahead of use in a ring of two slots', async () => {
    const { pager, mem } = make(2);
    for (let pass = 0; pass < 3; pass++) {
      for (let l = 0; l < N; l++) {
        const v = await pager.acquire(l);
        expect(v.layer).toBe(l);
        expect([...mem.view(v.ptr, LAYER)].every((b) => b === l + 1)).toBe(true);
        pager.release(l);
      }
    }
    await pager.settle();
    const st = pager.stats();
    // Only the very first layer was not read ahead; every layer was read once per pass, and the first
    // two of a next pass were read ahead after the last one.
    expect(st.misses).toBe(1);
    expect(st.bytesRead).toBe((3 * N + 2) * LAYER);
  });

  it('the next layer is already being read while the current one is held', async () => {
    const { pager, log } = make(2);
    await pager.acquire(0);
    // Layer 1 is in flight (or done) before layer 0 is released.
    expect(log).toContain(1 * LAYER);
    pager.release(0);
    await pager.acquire(1);
    expect(log).toContain(2 * LAYER);
  });

  it('synchronous acquisition reads what is missing and agrees with the async path', async () => {
    const { pager, mem } = make(3);
    for (let l = 0; l < N; l++) {
      const v = pager.acquireSync(l);
      expect([...mem.view(v.ptr, LAYER)].every((b) => b === l + 1)).toBe(true);
      pager.release(l, false);
    }
    const v = await pager.acquire(2);
    expect([...mem.view(v.ptr, LAYER)].every((b) => b === 3)).toBe(true);
    pager.release(2);
    await pager.settle();
  });

  it('a failed read surfaces at acquire and the layer is read again next time', async () => {
    const mem = fakeMemory(2 * LAYER);
    let fail = true;
    const inner = memoryStorage(file);
    const storage: Storage = {
      name: 'flaky',
      size: file.length,
      async read(offset, into) {
        if (fail && offset === 3 * LAYER) throw new Error('disk error at layer 3');
        return inner.read(offset, into);
      },
      close: () => inner.close(),
    };
    const pager = new LayerPager({
      storage, layers: [0, 1, 2, 3], readsOf: (l) => [{ sourceOffset: l * LAYER, length: LAYER, slotOffset: 0 }],
      slotPtrs: [0, LAYER], memory: mem.view, view: (l, ptr) => ({ l, ptr }),
    });
    for (let l = 0; l < 3; l++) {
      await pager.acquire(l);
      pager.release(l);
    }
    await expect(pager.acquire(3)).rejects.toThrow(/disk error at layer 3/);
    fail = false;
    const v = await pager.acquire(3);
    expect(mem.buf[v.ptr]).toBe(4);
  });
});

describe('DiskEmbeddings', () => {
  it('reads the rows of a batch (repeated tokens once) and dequantizes them in order', async () => {
    // An F32 table of 10 rows x 4 values, row r = [r, r+0.5, -r, 1], after 16 bytes of something else.
    const rows = 10;
    const cols = 4;
    const table = new Float32Array(rows * cols).map((_, i) => [Math.floor(i / cols), Math.floor(i / cols) + 0.5, -Math.floor(i / cols), 1][i % cols]!);
    const file = new Uint8Array(16 + table.byteLength);
    file.set(new Uint8Array(table.buffer), 16);
    const memBuf = new ArrayBuffer(4096);
    const mem = (p: number, n: number) => new Uint8Array(memBuf, p, n);
    const f32copy = (_type: number, src: number, dst: number, n: number) => {
      new Float32Array(memBuf, dst, n).set(new Float32Array(memBuf, src, n));
      return 0;
    };
    const e = new DiskEmbeddings({
      storage: memoryStorage(file),
      table: { offset: 16, type: 0, rows, cols, rowBytes: cols * 4 },
      stagingPtr: 0, capacity: 4, memory: mem, dequantizeRow: f32copy,
    });
    await e.embed([3, 7, 3, 9], 1024);
    expect([...new Float32Array(memBuf, 1024, 16)]).toEqual([3, 3.5, -3, 1, 7, 7.5, -7, 1, 3, 3.5, -3, 1, 9, 9.5, -9, 1]);
    expect(e.rowsRead).toBe(3);
    e.embedSync([2], 2048);
    expect([...new Float32Array(memBuf, 2048, 4)]).toEqual([2, 2.5, -2, 1]);
    await expect(e.embed([10], 0)).rejects.toThrow(/token id 10 is outside the vocabulary of 10/);
    await expect(e.embed([1, 2, 3, 4, 5], 0)).rejects.toThrow(/5 distinct tokens in one batch/);
  });
});

describe('packed-weight cache', () => {
  let dir: string;
  let modelPath: string;
  let key: PackedCacheKey;
  const specs = [
    { name: 'blk.0.attn_q.weight', byteSize: 5000 },
    { name: 'blk.0.ffn_up.weight', byteSize: 9000 },
  ];
  const tensorBytes = specs.map((s, i) => new Uint8Array(s.byteSize).map((_, j) => (j * 7 + i) & 255));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pocketllm-cache-test-'));
    modelPath = join(dir, 'model.gguf');
    await writeFile(modelPath, new Uint8Array(300).fill(9));
    key = await packedCacheKey(modelPath, memoryStorage(new Uint8Array(300).fill(9)), 100, 1);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const build = async (path: string) => {
    const w = await PackedCacheWriter.create(path, key, specs);
    // Out of order on purpose.
    await w.write(specs[1]!.name, tensorBytes[1]!);
    await w.write(specs[0]!.name, tensorBytes[0]!);
    await w.finish();
  };

  it('names the file after the model and its absolute path', () => {
    expect(packedCachePath('/a/b/model.gguf', '/c')).toMatch(/^\/c\/model\.gguf-[0-9a-f]{12}\.pocketllm-cache$/);
    expect(packedCachePath('/a/b/model.gguf', '/c')).not.toBe(packedCachePath('/a/x/model.gguf', '/c'));
  });

  it('a cache written for the same key opens and gives back the bytes', async () => {
    const path = join(dir, 'ok.cache');
    await build(path);
    const r = await openPackedCache(path, key, specs);
    expect('cache' in r).toBe(true);
    if (!('cache' in r)) return;
    for (let i = 0; i < specs.length; i++) {
      const e = r.cache.entry(specs[i]!.name)!;
      const got = new Uint8Array(e.byteSize);
      await r.cache.storage.read(e.offset, got);
      expect(got).toEqual(tensorBytes[i]);
      expect(e.offset % 4096).toBe(0);
    }
    await r.cache.close();
  });

  it('a stale key (other model size, mtime, header or layout version) is not used', async () => {
    const path = join(dir, 'stale.cache');
    await build(path);
    for (const other of [{ ...key, modelSize: key.modelSize + 1 }, { ...key, modelMtimeMs: key.modelMtimeMs + 1 }, { ...key, headerSha256: '0'.repeat(64) }, { ...key, layoutVersion: 2 }]) {
      const r = await openPackedCache(path, other, specs);
      expect(r).toEqual({ unusable: 'stale: built for another model file or layout version' });
    }
    // Touching the model changes its key.
    await utimes(modelPath, new Date(), new Date(Date.now() + 5000));
    const touched = await packedCacheKey(modelPath, memoryStorage(new Uint8Array(300).fill(9)), 100, 1);
    expect(touched.modelMtimeMs).not.toBe(key.modelMtimeMs);
    expect('unusable' in (await openPackedCache(path, touched, specs))).toBe(true);
  });

  it('a truncated cache is not used', async () => {
    const path = join(dir, 'cut.cache');
    await build(path);
    const size = (await readFile(path)).length;
    await truncate(path, size - 1);
    expect(await openPackedCache(path, key, specs)).toEqual({ unusable: expect.stringMatching(/^truncated: blk\.0\.ffn_up\.weight ends at/) });
    await truncate(path, 100);
    expect(await openPackedCache(path, key, specs)).toEqual({ unusable: expect.stringMatching(/^truncated or bad index length/) });
  });

  it('one flipped byte in a tensor or in the index is detected', async () => {
    const path = join(dir, 'flip.cache');
    await build(path);
    const bytes = await readFile(path);
    const r0 = await openPackedCache(path, key, specs);
    if (!('cache' in r0)) throw new Error('expected a usable cache');
    const at = r0.cache.entry(specs[0]!.name)!.offset + 1234;
    await r0.cache.close();
    const flipped = new Uint8Array(bytes);
    flipped[at]! ^= 0x10;
    await writeFile(path, flipped);
    expect(await openPackedCache(path, key, specs)).toEqual({ unusable: `checksum mismatch in ${specs[0]!.name}` });
    const flippedIndex = new Uint8Array(bytes);
    flippedIndex[64 + 10]! ^= 0x01;
    await writeFile(path, flippedIndex);
    expect(await openPackedCache(path, key, specs)).toEqual({ unusable: 'index checksum mismatch' });
  });

  it('a missing file or other tensor list is not used', async () => {
    expect(await openPackedCache(join(dir, 'none.cache'), key, specs)).toEqual({ unusable: 'no cache file' });
    const path = join(dir, 'list.cache');
    await build(path);
    expect('unusable' in (await openPackedCache(path, key, [specs[0]!]))).toBe(true);
  });
});

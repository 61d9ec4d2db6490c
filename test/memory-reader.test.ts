// The reader thread (memory/reader-thread.ts) and the layer pager running on it: bytes land in the
// shared wasm memory exactly as the file holds them (checked against the file read by node:fs),
// checksums equal node:zlib's CRC-32, failures surface as errors naming the file and later jobs
// still run, close() lets a read in flight finish, and a pager on the thread reads ahead even for a
// synchronous caller.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerPager } from '../src/memory/layer-pager.js';
import { ReaderThread, readerThreadAvailable } from '../src/memory/reader-thread.js';
import { openFileStorage } from '../src/storage/node.js';

const crc32 = (zlib as unknown as { crc32: (b: Uint8Array) => number }).crc32;
const PAGE = 65536;

let dir: string;
let path: string;
let bytes: Uint8Array; // the file's contents
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pocketllm-reader-'));
  path = join(dir, 'data.bin');
  bytes = new Uint8Array(randomBytes(3 * PAGE + 123));
  await writeFile(path, bytes);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sharedMemory = (pages: number) => new WebAssembly.Memory({ initial: pages, maximum: 1024, shared: true });
const view = (m: WebAssembly.Memory, ptr: number, length: number) => new Uint8Array(m.buffer, ptr, length);

describe.runIf(readerThreadAvailable())('ReaderThread', () => {
  it('reads file bytes into wasm memory, also into memory grown after it started', async () => {
    const memory = sharedMemory(1);
    const reader = ReaderThread.start({ memory, files: [path] });
    try {
      const a = reader.read(0, 100, 8, 5000);
      expect(reader.waitSync(a).bytes).toBe(5000);
      expect(view(memory, 8, 5000)).toEqual(bytes.subarray(100, 5100));
      memory.grow(5);
      const b = reader.read(0, 0, 2 * PAGE, bytes.length);
      expect((await reader.wait(b)).bytes).toBe(bytes.length);
      expect(view(memory, 2 * PAGE, bytes.length)).toEqual(bytes);
      // Past the end of the file: a short count, as pread gives.
      const c = reader.read(0, bytes.length - 10, 0, 64);
      expect(reader.waitSync(c).bytes).toBe(10);
      expect(() => reader.waitSync(reader.read(0, 0, 6 * PAGE - 8, 16))).toThrow(/beyond the wasm memory/);
    } finally {
      await reader.close();
    }
  });

  it('checksums of memory and of file ranges are zlib CRC-32s', async () => {
    const memory = sharedMemory(4);
    view(memory, 1000, bytes.length).set(bytes);
    const reader = ReaderThread.start({ memory, files: [path] });
    try {
      const m = reader.checksumMemory(1000, bytes.length);
      const f = reader.checksumFile(0, 77, bytes.length - 77);
      expect((await reader.wait(m)).checksum).toBe(crc32(bytes) >>> 0);
      const r = await reader.wait(f);
      expect(r.checksum).toBe(crc32(bytes.subarray(77)) >>> 0);
      expect(r.bytes).toBe(bytes.length - 77);
    } finally {
      await reader.close();
    }
  });

  it('a failed read surfaces as an error naming the file; later jobs still run', async () => {
    const memory = sharedMemory(1);
    const missing = join(dir, 'missing.bin');
    const reader = ReaderThread.start({ memory, files: [path, missing], testHooks: { failTickets: [1] } });
    try {
      const ok = reader.read(0, 0, 0, 16);
      const injected = reader.read(0, 0, 0, 16);
      const gone = reader.read(1, 0, 0, 16);
      const after = reader.read(0, 16, 16, 16);
      expect(reader.waitSync(ok).bytes).toBe(16);
      expect(() => reader.waitSync(injected)).toThrow(/reader thread: .*data\.bin: injected read failure/);
      await expect(reader.wait(gone)).rejects.toThrow(/missing\.bin.*ENOENT/);
      expect(reader.waitSync(after).bytes).toBe(16);
      expect(view(memory, 16, 16)).toEqual(bytes.subarray(16, 32));
      expect(() => reader.read(2, 0, 0, 1)).toThrow(/no file 2/);
      expect(() => reader.read(0, -1, 0, 1)).toThrow(/bad job/);
    } finally {
      await reader.close();
    }
  });

  it('close() lets the read in flight finish, drops the queued ones and refuses new jobs', async () => {
    const memory = sharedMemory(1);
    const reader = ReaderThread.start({ memory, files: [path], testHooks: { delayMs: 150 } });
    const inFlight = reader.read(0, 0, 0, 1000);
    const queued = reader.read(0, 0, 2000, 1000);
    const waiting = reader.wait(inFlight);
    // Settled into a value at once, so its rejection is handled before close() returns.
    const waitingQueued = reader.wait(queued).then(() => 'resolved', (e: Error) => e.message);
    // Let the thread start the first job (its delay runs inside the job).
    while (!reader.hasStarted(inFlight)) await new Promise((r) => setTimeout(r, 2));
    expect(reader.isDone(inFlight)).toBe(false);
    await reader.close();
    expect((await waiting).bytes).toBe(1000);
    expect(view(memory, 0, 1000)).toEqual(bytes.subarray(0, 1000));
    expect(await waitingQueued).toMatch(/closed before this job started/);
    expect(view(memory, 2000, 1000).every((b) => b === 0)).toBe(true);
    expect(() => reader.read(0, 0, 0, 1)).toThrow(/closed/);
    expect(() => reader.waitSync(queued + 1)).toThrow(/stopped before job/);
  });
});

describe.runIf(readerThreadAvailable())('LayerPager on the reader thread', () => {
  const LAYER = 4096;
  const N = 6;
  // Layer l's bytes are the file's bytes [l * LAYER, (l + 1) * LAYER), read in two pieces.
  const make = async (hooks?: { failTickets: number[] }, schedule: 'ahead' | 'between' = 'ahead', layer = LAYER) => {
    const memory = sharedMemory(1);
    const storage = await openFileStorage(path);
    const reader = ReaderThread.start({ memory, files: [path], testHooks: hooks });
    const afterRead: number[] = [];
    const pager = new LayerPager({
      storage,
      layers: [0, 1, 2, 3, 4, 5],
      readsOf: (l) => [
        { sourceOffset: l * layer, length: layer / 2, slotOffset: 0 },
        { sourceOffset: l * layer + layer / 2, length: layer / 2, slotOffset: layer / 2 },
      ],
      slotPtrs: [0, layer],
      memory: (ptr, length) => view(memory, ptr, length),
      view: (l, ptr) => ({ layer: l, ptr }),
      afterRead: (l) => void afterRead.push(l),
    });
    pager.useReader(reader, schedule);
    const close = async () => {
      await pager.settle();
      await reader.close();
      await storage.close();
    };
    return { pager, memory, reader, afterRead, close };
  };
  const layerBytes = (l: number) => bytes.subarray(l * LAYER, (l + 1) * LAYER);

  it('serves every layer with its bytes, async and sync, and reads ahead for a synchronous caller too', async () => {
    const { pager, memory, afterRead, close } = await make();
    try {
      for (let pass = 0; pass < 2; pass++) {
        for (let l = 0; l < N; l++) {
          const v = await pager.acquire(l);
          expect(view(memory, v.ptr, LAYER)).toEqual(layerBytes(l));
          pager.release(l);
        }
      }
      const before = pager.stats();
      for (let l = 0; l < N; l++) {
        const v = pager.acquireSync(l);
        expect(view(memory, v.ptr, LAYER)).toEqual(layerBytes(l));
        pager.release(l, false);
      }
      // Synchronous passes miss nothing: each layer was read ahead while the one before was held.
      expect(pager.stats().misses).toBe(before.misses);
      expect(afterRead.length).toBeGreaterThanOrEqual(3 * N);
    } finally {
      await close();
    }
  });

  it('a failed read surfaces at acquire and the layer is read again next time', async () => {
    // Tickets: layer 0 is jobs 0-1, layer 1 jobs 2-3 (read ahead), layer 2 jobs 4-5: fail job 5.
    const { pager, memory, close } = await make({ failTickets: [5] });
    try {
      for (let l = 0; l < 2; l++) {
        await pager.acquire(l);
        pager.release(l);
      }
      await expect(pager.acquire(2)).rejects.toThrow(/injected read failure/);
      const v = await pager.acquire(2);
      expect(view(memory, v.ptr, LAYER)).toEqual(layerBytes(2));
      pager.release(2);
    } finally {
      await close();
    }
  });

  it("'between' reads a layer when it is acquired, split between the reader thread and this one", async () => {
    // Reads under 1 MiB are not split: the split is seen with the larger layers below.
    const { pager, memory, afterRead, close } = await make(undefined, 'between');
    try {
      for (let l = 0; l < N; l++) {
        const v = await pager.acquire(l);
        expect(view(memory, v.ptr, LAYER)).toEqual(layerBytes(l));
        pager.release(l);
        // Nothing is read ahead: the next layer is not in flight after the release.
        expect(afterRead).toEqual(Array.from({ length: l + 1 }, (_, i) => i));
      }
      const v = pager.acquireSync(2);
      expect(view(memory, v.ptr, LAYER)).toEqual(layerBytes(2));
      pager.release(2, false);
    } finally {
      await close();
    }
  });
});

describe.runIf(readerThreadAvailable())('LayerPager reading between layers, large reads split over two threads', () => {
  const MIB = 1 << 20;
  let big: string;
  let bigBytes: Uint8Array;
  beforeAll(async () => {
    big = join(dir, 'big.bin');
    bigBytes = new Uint8Array(randomBytes(3 * 2 * MIB + 4096));
    await writeFile(big, bigBytes);
  });

  it('gives each layer its bytes; a short read on either half surfaces at acquire', async () => {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true }); // 4 MiB: two slots of 2 MiB
    const storage = await openFileStorage(big);
    const reader = ReaderThread.start({ memory, files: [big] });
    const pager = new LayerPager({
      storage, layers: [0, 1, 2, 3],
      // Layer 3 runs past the end of the file: its second half comes back short.
      readsOf: (l) => [{ sourceOffset: l * 2 * MIB, length: 2 * MIB, slotOffset: 0 }],
      slotPtrs: [0, 2 * MIB], memory: (ptr, length) => view(memory, ptr, length), view: (l, ptr) => ({ l, ptr }),
    });
    pager.useReader(reader, 'between');
    try {
      for (let l = 0; l < 3; l++) {
        const v = l === 1 ? pager.acquireSync(l) : await pager.acquire(l);
        expect(Buffer.from(view(memory, v.ptr, 2 * MIB)).equals(bigBytes.subarray(l * 2 * MIB, (l + 1) * 2 * MIB))).toBe(true);
        pager.release(l);
      }
      // The reader thread's half gets 4096 bytes, this thread's none.
      await expect(pager.acquire(3)).rejects.toThrow(/wanted 1048576 bytes at offset (6291456, got 4096|7340032, got 0)/);
      const v = await pager.acquire(0);
      expect(Buffer.from(view(memory, v.ptr, 2 * MIB)).equals(bigBytes.subarray(0, 2 * MIB))).toBe(true);
    } finally {
      await pager.settle();
      await reader.close();
      await storage.close();
    }
  });
});

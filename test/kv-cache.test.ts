// The KV cache on its own (no model): a spilling cache presents to attention exactly the bytes of an
// all-resident one (int8 keys: the complete blocks' rows and the f16 tail), batch after batch, through
// truncations (int8: into a complete key block too, which comes back as the tail values it was
// quantized from, within its step), for every precision and both readers; a batch abandoned half-way
// leaves the cache as it was (int8: bit for bit as a cache that never saw it); its 'kv' bytes follow
// the precision; the spill file exists only while the cache is open, and is removed on process exit
// and on SIGTERM.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KVCache, kvCacheBytes, kvRowBytes } from '../src/model/kv-cache.js';
import type { KVCacheConfig, KVPrecision } from '../src/model/kv-cache.js';
import { spillFileRegistry } from '../src/memory/kv-spill.js';
import { selectKernels } from '../src/runtime/kernels.js';
import { Arena, createSharedMemory } from '../src/runtime/memory.js';
import { fromF16Bits, prng } from './kernels-harness.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pocketllm-kv-test-'));
  dirs.push(d);
  return d;
}

/**
 * The key bytes attention reads for `held` positions after a batch from pos0: all rows, or for int8
 * the complete blocks' rows and the last block's tail rows (in the tail's second half when the batch
 * completed the block open before it: assembly/ref/kv.ts).
 */
function keyBytes(arena: Arena, kv: KVCache, k: number, pos0: number, held: number): Buffer {
  if (kv.precision !== 'int8') return Buffer.from(arena.u8(k, held * kv.rowBytes));
  const G = kv.keyBlock;
  const complete = held - (held % G);
  const half = complete > pos0 - (pos0 % G) ? kv.keyTailBytes / 2 : 0;
  const tail = arena.u8(k - kv.keyTailBytes + half, (held - complete) * 2 * kv.kvDim);
  return Buffer.concat([arena.u8(k, complete * kv.rowBytes), tail]);
}

async function arenaWithKernels() {
  const memory = createSharedMemory();
  const kernels = await selectKernels(memory);
  return { arena: new Arena(memory, kernels.exports.heapBase() + 256), kernels: kernels.exports };
}

describe('KV cache spill', () => {
  const shape = { layerCount: 3, contextLength: 160, headCountKV: 2, headDim: 8, maxBatch: 8 } as const;
  // Batch sizes, and where the cache is cut back before the next batch (as a new prompt would).
  const plan: readonly (readonly [number, number | undefined])[] = [
    [8, undefined], [8, undefined], [5, undefined], ...Array.from({ length: 30 }, () => [1, undefined] as const),
    [8, 27], [3, undefined], ...Array.from({ length: 40 }, () => [1, undefined] as const), [6, 70], [8, undefined],
    ...Array.from({ length: 60 }, () => [1, undefined] as const),
  ];

  for (const precision of ['f32', 'f16', 'int8'] as KVPrecision[]) {
    for (const reader of ['thread', 'sync'] as const) {
      it(`${precision}, ${reader} reader: attention sees the rows of the all-resident cache`, async () => {
        const { arena, kernels } = await arenaWithKernels();
        const dir = tempDir();
        const resident = new KVCache(arena, kernels, { ...shape, precision });
        const spilled = new KVCache(arena, kernels, { ...shape, precision, residentTokens: 16, spillDir: dir, spillReader: reader });
        expect(readdirSync(dir)).toHaveLength(1);
        expect(spillFileRegistry.list()).toContain(spilled.spillPath);
        const rand = prng(precision.length * 7 + reader.length);
        const kvDim = shape.headCountKV * shape.headDim;
        let maxSpilled = 0;
        let token = 0;
        for (const [n, cut] of plan) {
          if (cut !== undefined) {
            resident.truncate(cut);
            spilled.truncate(cut);
          }
          for (let l = 0; l < shape.layerCount; l++) {
            const a = resident.beginLayer(l, n);
            const b = spilled.beginLayer(l, n);
            for (const [pa, pb] of [[a.newK, b.newK], [a.newV, b.newV]] as const) {
              const rows = Float32Array.from({ length: n * kvDim }, () => (rand() - 0.5) * 6);
              arena.f32(pa, rows.length).set(rows);
              arena.f32(pb, rows.length).set(rows);
            }
            resident.storeNewRows(n, a);
            spilled.storeNewRows(n, b);
            const bytes = (resident.length + n) * resident.rowBytes;
            const held = resident.length + n;
            expect(Buffer.compare(keyBytes(arena, resident, a.k, resident.length, held), keyBytes(arena, spilled, b.k, resident.length, held)), `keys, layer ${l}, position ${resident.length}`).toBe(0);
            expect(Buffer.compare(arena.u8(a.v, bytes), arena.u8(b.v, bytes)), `values, layer ${l}, position ${resident.length}`).toBe(0);
            resident.commitLayer(l, a);
            spilled.commitLayer(l, b);
          }
          const ids = Array.from({ length: n }, () => token++);
          resident.endChunk(ids);
          spilled.endChunk(ids);
          // int8 spills complete key blocks (headDim = 8 positions) only: up to 7 more stay.
          const block = precision === 'int8' ? shape.headDim : 1;
          expect(spilled.length - spilled.spilledTokens).toBeLessThanOrEqual(16 + block - 1);
          expect(spilled.spilledTokens % 16 === 0 || spilled.spilledTokens === spilled.length - (spilled.length % block)).toBe(true);
          maxSpilled = Math.max(maxSpilled, spilled.spilledTokens);
        }
        expect(spilled.length).toBeGreaterThan(100);
        expect(maxSpilled).toBeGreaterThanOrEqual(96);
        expect(spilled.spillStats().bytesRead).toBeGreaterThan(0);
        const path = spilled.spillPath!;
        expect(existsSync(path)).toBe(true);
        spilled.close();
        resident.close();
        expect(existsSync(path)).toBe(false);
        expect(spillFileRegistry.list()).not.toContain(path);
        expect(() => spilled.beginLayer(0, 1)).toThrow(/closed/);
      });
    }
  }

  it('a batch abandoned half-way (a kernel failed) leaves the cache as it was', async () => {
    const { arena, kernels } = await arenaWithKernels();
    const dir = tempDir();
    const rand = prng(99);
    const kvDim = shape.headCountKV * shape.headDim;
    const caches = [new KVCache(arena, kernels, { ...shape, precision: 'f16' }), new KVCache(arena, kernels, { ...shape, precision: 'f16', residentTokens: 16, spillDir: dir })];
    const batch = (n: number, layers: number, finish: boolean): void => {
      for (let l = 0; l < layers; l++) {
        const rows = caches.map((c) => c.beginLayer(l, n));
        for (const pick of ['newK', 'newV'] as const) {
          const data = Float32Array.from({ length: n * kvDim }, () => rand() - 0.5);
          for (const r of rows) arena.f32(r[pick], data.length).set(data);
        }
        caches.forEach((c, i) => c.storeNewRows(n, rows[i]!));
        const bytes = (caches[0]!.length + n) * caches[0]!.rowBytes;
        expect(Buffer.compare(arena.u8(rows[0]!.k, bytes), arena.u8(rows[1]!.k, bytes)), `layer ${l}`).toBe(0);
        expect(Buffer.compare(arena.u8(rows[0]!.v, bytes), arena.u8(rows[1]!.v, bytes)), `layer ${l}`).toBe(0);
        caches.forEach((c, i) => c.commitLayer(l, rows[i]!));
      }
      if (finish) for (const c of caches) c.endChunk(Array.from({ length: n }, () => 0));
    };
    for (let i = 0; i < 5; i++) batch(7, shape.layerCount, true); // 35 positions, 32 spilled
    batch(8, 2, false); // would spill up to 32 more... and stops after two layers
    expect(caches[1]!.length).toBe(35);
    for (let i = 0; i < 4; i++) batch(8, shape.layerCount, true);
    expect(caches[1]!.spilledTokens).toBe(64); // 67 positions, 16 resident at most, blocks of 16
    for (const c of caches) c.close();
  });

  it('int8: a batch abandoned half-way, across a key block, leaves the cache as one that never saw it', async () => {
    const { arena, kernels } = await arenaWithKernels();
    const dir = tempDir();
    const rand = prng(98);
    const kvDim = shape.headCountKV * shape.headDim;
    const int8 = { ...shape, precision: 'int8' } as const;
    // [0]: never sees the abandoned batch; [1], [2] (spilling): do.
    const caches = [new KVCache(arena, kernels, int8), new KVCache(arena, kernels, int8), new KVCache(arena, kernels, { ...int8, residentTokens: 16, spillDir: dir })];
    const batch = (n: number, layers: number, finish: boolean): void => {
      const on = finish ? caches : caches.slice(1);
      const pos0 = on[0]!.length;
      for (let l = 0; l < layers; l++) {
        const rows = on.map((c) => c.beginLayer(l, n));
        for (const pick of ['newK', 'newV'] as const) {
          const data = Float32Array.from({ length: n * kvDim }, () => rand() - 0.5);
          for (const r of rows) arena.f32(r[pick], data.length).set(data);
        }
        on.forEach((c, i) => c.storeNewRows(n, rows[i]!));
        for (let i = 1; i < on.length; i++) {
          const held = pos0 + n;
          expect(Buffer.compare(keyBytes(arena, on[0]!, rows[0]!.k, pos0, held), keyBytes(arena, on[i]!, rows[i]!.k, pos0, held)), `keys, layer ${l}`).toBe(0);
          expect(Buffer.compare(arena.u8(rows[0]!.v, held * on[0]!.rowBytes), arena.u8(rows[i]!.v, held * on[0]!.rowBytes)), `values, layer ${l}`).toBe(0);
        }
        on.forEach((c, i) => c.commitLayer(l, rows[i]!));
      }
      if (finish) for (const c of on) c.endChunk(Array.from({ length: n }, () => 0));
    };
    for (let i = 0; i < 5; i++) batch(7, shape.layerCount, true); // 35 positions: blocks to 32, 3 in the tail
    batch(8, 2, false); // would complete block 32.. and start block 40, and stops after two layers
    expect(caches.map((c) => c.length)).toEqual([35, 35, 35]);
    for (let i = 0; i < 4; i++) batch(8, shape.layerCount, true);
    batch(6, shape.layerCount, true);
    expect(caches[2]!.spilledTokens).toBeGreaterThan(0);
    for (const c of caches) c.close();
  });

  it('int8: truncating into a complete key block puts its first keys back in the tail, within half a step', async () => {
    const { arena, kernels } = await arenaWithKernels();
    const kvDim = shape.headCountKV * shape.headDim, G = shape.headDim;
    const kv = new KVCache(arena, kernels, { ...shape, precision: 'int8' });
    const keys = Float32Array.from({ length: 20 * kvDim }, (_, i) => Math.fround(Math.sin(i * 0.7) * 4 + (i % kvDim === 5 ? 30 : 0)));
    for (const [pos, n] of [[0, 7], [7, 8], [15, 5]] as const) {
      for (let l = 0; l < shape.layerCount; l++) {
        const rows = kv.beginLayer(l, n);
        arena.f32(rows.newK, n * kvDim).set(keys.subarray(pos * kvDim, (pos + n) * kvDim));
        arena.f32(rows.newV, n * kvDim).fill(1);
        kv.storeNewRows(n, rows);
        kv.commitLayer(l, rows);
      }
      kv.endChunk(Array.from({ length: n }, () => 0));
    }
    kv.truncate(13); // block [8, 16) was complete: positions 8..12 back to the tail
    expect(kv.length).toBe(13);
    for (let l = 0; l < shape.layerCount; l++) {
      const tail = arena.u16(kv.keys[l]! - kv.keyTailBytes, 5 * kvDim);
      for (let c = 0; c < kvDim; c++) {
        const col = Array.from({ length: G }, (_, j) => keys[(8 + j) * kvDim + c]!);
        const step = (Math.max(...col) - Math.min(...col)) / 255;
        for (let j = 0; j < 5; j++) {
          const got = fromF16Bits(tail[j * kvDim + c]!);
          expect(Math.abs(got - col[j]!), `layer ${l} position ${8 + j} channel ${c}`).toBeLessThanOrEqual(0.51 * step + Math.abs(col[j]!) * 2 ** -10);
        }
      }
    }
    kv.close();
  });

  it('a threshold at or above the context spills nothing and makes no file', async () => {
    const { arena, kernels } = await arenaWithKernels();
    const dir = tempDir();
    const kv = new KVCache(arena, kernels, { ...shape, residentTokens: shape.contextLength, spillDir: dir });
    expect(kv.spillPath).toBeUndefined();
    expect(readdirSync(dir)).toHaveLength(0);
    expect(() => new KVCache(arena, kernels, { ...shape, residentTokens: 0 })).toThrow(/kvResidentTokens must be a positive integer/);
    expect(() => new KVCache(arena, kernels, { ...shape, spillDir: join(dir, 'missing'), residentTokens: 4 })).toThrow(/cannot create the KV spill file/);
  });
});

describe('KV cache memory by precision', () => {
  it('the kv region holds what bytes says; int8 rows are (headDim + 4) / (2 headDim) of f16, f16 half of f32', async () => {
    const shape: KVCacheConfig = { layerCount: 4, contextLength: 256, headCountKV: 4, headDim: 64, maxBatch: 16 };
    const sizes: Record<string, number> = {};
    for (const precision of ['f32', 'f16', 'int8'] as KVPrecision[]) {
      const { arena, kernels } = await arenaWithKernels();
      const before = arena.usage().kv;
      const kv = new KVCache(arena, kernels, { ...shape, precision });
      expect(arena.usage().kv - before).toBeGreaterThanOrEqual(kv.bytes);
      expect(arena.usage().kv - before).toBeLessThan(kv.bytes + 64 * 2 * shape.layerCount);
      expect(kv.bytes).toBe(kvCacheBytes({ ...shape, precision }));
      sizes[precision] = kv.bytes;
    }
    expect(sizes.f16! / sizes.f32!).toBe(0.5);
    // int8: rows of 4 bytes per head + 1 per value, and per layer a key tail of 2 headDim f16 rows.
    expect(kvRowBytes('int8', 4, 64)).toBe(4 * 4 + 256);
    expect(sizes.int8).toBe(4 * (2 * 256 * (4 * 4 + 256) + 2 * 64 * 256 * 2));
    expect((sizes.int8! - 4 * 2 * 64 * 256 * 2) / sizes.f16!).toBeCloseTo((64 + 4) / 128, 12);
    // Spilling: windows of the resident tokens and one batch, plus two staging areas of the whole context.
    expect(kvCacheBytes({ ...shape, precision: 'f16', residentTokens: 32 })).toBe(2 * 4 * (32 + 16) * 512 + 4 * 256 * 512);
  });
});

describe('spill files go away with the process', () => {
  const spillModule = resolve(__dirname, '..', 'src', 'memory', 'kv-spill.ts');
  const viteNode = resolve(__dirname, '..', 'node_modules', '.bin', 'vite-node');

  function child(dir: string, ending: string) {
    const script = join(dir, 'child.ts');
    writeFileSync(
      script,
      `import { KVSpillFile } from ${JSON.stringify(spillModule)};\n` +
        `const f = new KVSpillFile({ layerCount: 1, contextLength: 4, rowBytes: 8, memory: new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true }), dir: ${JSON.stringify(dir)} });\n` +
        `f.write(0, 0, 0, 2, 0);\n` +
        `console.log('spill file exists', require('node:fs').existsSync(f.path));\n` +
        ending,
    );
    return spawnSync(viteNode, [script], { encoding: 'utf8', timeout: 30_000 });
  }

  it('on process.exit without close, and on SIGTERM', () => {
    const dir = tempDir();
    const exited = child(dir, `process.exit(3);\n`);
    expect(exited.stdout).toContain('spill file exists true');
    expect(exited.status).toBe(3);
    expect(readdirSync(dir).filter((f) => f.endsWith('.bin'))).toEqual([]);

    const dir2 = tempDir();
    const killed = child(dir2, `setInterval(() => undefined, 1000);\nprocess.kill(process.pid, 'SIGTERM');\n`);
    expect(killed.stdout).toContain('spill file exists true');
    expect(killed.signal).toBe('SIGTERM');
    expect(readdirSync(dir2).filter((f) => f.endsWith('.bin'))).toEqual([]);
  }, 60_000);
});

// The KV cache on its own (no model): a spilling cache presents to attention exactly the bytes of an
// all-resident one, batch after batch, through truncations, for every precision and both readers; its
// 'kv' bytes follow the precision; the spill file exists only while the cache is open, and is removed
// on process exit and on SIGTERM.
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
import { prng } from './kernels-harness.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pocketllm-kv-test-'));
  dirs.push(d);
  return d;
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
            expect(Buffer.compare(arena.u8(a.k, bytes), arena.u8(b.k, bytes)), `keys, layer ${l}, position ${resident.length}`).toBe(0);
            expect(Buffer.compare(arena.u8(a.v, bytes), arena.u8(b.v, bytes)), `values, layer ${l}, position ${resident.length}`).toBe(0);
            resident.commitLayer(l, a);
            spilled.commitLayer(l, b);
          }
          const ids = Array.from({ length: n }, () => token++);
          resident.endChunk(ids);
          spilled.endChunk(ids);
          expect(spilled.length - spilled.spilledTokens).toBeLessThanOrEqual(16);
          expect(spilled.spilledTokens % 16 === 0 || spilled.spilledTokens === spilled.length).toBe(true);
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
  it('the kv region holds what bytes says; int8 is (headDim + 4) / (2 headDim) of f16, f16 half of f32', async () => {
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
    expect(sizes.int8! / sizes.f16!).toBeCloseTo((64 + 4) / 128, 12);
    expect(kvRowBytes('int8', 4, 64)).toBe(4 * 4 + 256);
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

// Layer streaming under a memory budget, disk embeddings and the packed-weight cache, end to end:
// logits bit-identical to the all-resident model (sync and async paths), greedy tokens equal to
// llama.cpp's golden output, a budget below the minimum failing early with its numbers, and a stale,
// truncated or corrupt cache rebuilt rather than used.
import { copyFile, mkdtemp, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import type { Model } from '../src/engine/model.js';
import type { LoadModelOptions } from '../src/engine/load.js';
import { fileSink } from '../src/gguf/writer.js';
import { MemoryBudgetError } from '../src/memory/budget.js';
import { packedCachePath } from '../src/memory/packed-cache.js';
import { parseFileType } from '../src/quant/quantize-model.js';
import { findShape } from '../src/synth/shapes.js';
import { planSynth, writeSynth } from '../src/synth/synth.js';
import { minimalSpmVocab } from '../src/synth/vocab.js';
import { readGGUF } from '../src/gguf/reader.js';
import { readHParams } from '../src/model/hparams.js';
import { weightInventory } from '../src/model/weights.js';
import { selectKernels } from '../src/runtime/kernels.js';
import { createSharedMemory } from '../src/runtime/memory.js';
import { memoryStorage } from '../src/storage/memory.js';
import { openFileStorage } from '../src/storage/node.js';
import type { Storage } from '../src/storage/storage.js';
import { MODELS, loadGolden } from './support/golden.js';

let dir: string;
let stories: string; // stories260K Q4_0, copied so its packed cache can sit in our temp dir
let tiedQ8: string; // a tied-embedding synthetic model (qwen2 shape, 6 blocks)
const golden = loadGolden('stories260K', 'once_upon_a_time.greedy64.Q4_0');
const tokens = [...golden.promptTokens, ...golden.generatedTokens.slice(0, 12)];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pocketllm-memory-'));
  stories = join(dir, 'stories260K-Q4_0.gguf');
  await copyFile(join(MODELS, 'stories260K-Q4_0.gguf'), stories);
  const shape = { ...findShape('tiny-qwen2')!, blockCount: 6 };
  const plan = planSynth({ shape, fileType: parseFileType('q8_0')!, seed: 3, vocab: minimalSpmVocab(shape.vocabSize) });
  tiedQ8 = join(dir, 'tied-q8_0.gguf');
  await writeSynth(plan, await fileSink(tiedQ8));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function withModel<T>(path: string, options: LoadModelOptions, f: (m: Model) => Promise<T>): Promise<T> {
  const m = await loadModel(path, { threads: 1, contextLength: 128, ...options });
  try {
    return await f(m);
  } finally {
    await m.close();
  }
}

/**
 * A budget that leaves `streamed` layers streamed when loaded without a cache: what the all-resident
 * model uses (same options) plus the kernels' static data and the staging buffer streamed packed
 * matrices are repacked through, less the bytes of `streamed` - 2 layers (two layers' worth go to the
 * slots), plus half a layer so rounding cannot tip it.
 */
async function budgetStreaming(path: string, streamed: number, options: LoadModelOptions = {}): Promise<number> {
  const storage = await openFileStorage(path);
  const file = await readGGUF(storage);
  const inventory = weightInventory(file, readHParams(file), true);
  await storage.close();
  const layer = inventory.layerBytes[0]!;
  const staging = Math.max(0, ...inventory.layerMatrices.flat().filter((m) => m.layout).map((m) => m.tensor.byteSize));
  const runtime = (await selectKernels(createSharedMemory(), options.kernels)).exports.heapBase() + 256;
  const used = await withModel(path, { ...options, cacheDir: false }, async (m) => m.memoryUsage());
  return used.weights + used.kv + used.scratch + runtime + staging - Math.round((streamed - 2.5) * layer);
}

describe('layer streaming under a memory budget', () => {
  let reference: Float32Array;
  beforeAll(async () => {
    reference = await withModel(stories, { embeddings: 'resident', cacheDir: false }, async (m) => m.evaluate(tokens, { all: true }));
  });

  it('streams layers through two slots and gives bit-identical logits, sync and async', async () => {
    const budget = await budgetStreaming(stories, 4);
    await withModel(stories, { memoryBudget: budget, cacheDir: false }, async (m) => {
      const w = m.weightMemory();
      expect(w.slotCount).toBe(2);
      expect(w.streamedLayers).toBeGreaterThanOrEqual(2);
      expect(w.streamedLayers).toBeLessThan(5);
      expect(w.streamedWeightBytes).toBeGreaterThan(0);
      expect(w.embeddings).toBe('disk');
      const u = m.memoryUsage();
      expect(u.weights + u.kv + u.scratch).toBeLessThanOrEqual(budget);
      expect(await m.evaluateAsync(tokens, { all: true })).toEqual(reference);
      expect(m.evaluate(tokens, { all: true })).toEqual(reference);
      // Twice over: the ring wraps around and prefetches from the previous pass are used.
      expect(await m.evaluateAsync(tokens, { all: true })).toEqual(reference);
    });
  });

  it('streams every layer and matches llama.cpp\'s greedy tokens', async () => {
    await withModel(stories, { memoryBudget: await budgetStreaming(stories, 5, { batchSize: 3 }), cacheDir: false, batchSize: 3 }, async (m) => {
      expect(m.weightMemory().streamedLayers).toBe(5);
      const out = await m.complete(golden.promptTokens, { temperature: 0, maxTokens: golden.generatedTokens.length });
      expect(out.tokens).toEqual(golden.generatedTokens);
      expect(out.text).toBe(golden.text);
    });
  });

  it('with two threads the streamed logits are the same', async () => {
    await withModel(stories, { memoryBudget: await budgetStreaming(stories, 4), cacheDir: false, threads: 2 }, async (m) => {
      expect(await m.evaluateAsync(tokens, { all: true })).toEqual(reference);
    });
  });

  it('a storage without synchronous reads (a browser\'s) streams through the async path; evaluate() says so', async () => {
    const bytes = new Uint8Array(await readFile(stories));
    const inner = memoryStorage(bytes, 'async-only');
    const asyncOnly: Storage = { name: inner.name, size: inner.size, read: (o, into) => inner.read(o, into), close: () => inner.close() };
    const m = await loadModel(asyncOnly, { threads: 1, contextLength: 128, memoryBudget: await budgetStreaming(stories, 4) });
    try {
      expect(m.weightMemory().packedCache.status).toBe('off');
      expect(m.weightMemory().streamedLayers).toBeGreaterThan(0);
      expect(await m.evaluateAsync(tokens, { all: true })).toEqual(reference);
      expect(() => m.evaluate(tokens)).toThrow(/async-only: .*no synchronous reads; use the model's async methods|no synchronous reads; run the model through its async methods/);
      const out = await m.complete(golden.promptTokens, { temperature: 0, maxTokens: 8 });
      expect(out.tokens).toEqual(golden.generatedTokens.slice(0, 8));
    } finally {
      await m.close();
    }
  });

  it('a budget below two slots + KV + scratch + resident tensors fails before reading weights, naming the numbers', async () => {
    const err = await loadModel(stories, { memoryBudget: '200KB', contextLength: 128, cacheDir: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryBudgetError);
    expect((err as Error).message).toMatch(
      /^memory budget 195\.31 KiB is below the [\d.]+ (KiB|MiB) this model needs at least: 2 layer slots \(2 × [\d.]+ KiB\) \+ KV cache 160\.00 KiB \(context 128\) \+ scratch [\d.]+ KiB \+ resident tensors [\d.]+ KiB/,
    );
    await expect(loadModel(stories, { memoryBudget: '1 potato' })).rejects.toThrow(/memoryBudget "1 potato" is not a size/);
  });

  it('without a context length, a budget shortens the default context to fit', async () => {
    // KV takes 1280 bytes per token here: a quarter of 1 MB is under 256 tokens, the shortest default.
    await withModel(stories, { memoryBudget: '1MB', contextLength: undefined, cacheDir: false }, async (m) => {
      expect(m.contextLength).toBe(256);
      expect(m.weightMemory().streamedLayers).toBeGreaterThan(0);
    });
  });
});

describe('disk embeddings', () => {
  it('read rows per token and give the same logits as the resident table (stories260K F32, untied)', async () => {
    const path = join(MODELS, 'stories260K.gguf');
    const g = loadGolden('stories260K', 'once_upon_a_time.greedy64');
    const t = [...g.promptTokens, ...g.generatedTokens.slice(0, 10)];
    const resident = await withModel(path, { embeddings: 'resident' }, async (m) => {
      expect(m.weightMemory().embeddings).toBe('resident');
      return { logits: m.evaluate(t, { all: true }), weights: m.memoryUsage().weights };
    });
    await withModel(path, { embeddings: 'disk' }, async (m) => {
      const w = m.weightMemory();
      expect(w.embeddings).toBe('disk');
      // The table (512 x 64 f32) is not in wasm memory.
      expect(w.diskEmbeddingBytes).toBe(512 * 64 * 4);
      expect(resident.weights - m.memoryUsage().weights).toBeGreaterThanOrEqual(512 * 64 * 4);
      expect(m.evaluate(t, { all: true })).toEqual(resident.logits);
      expect(await m.evaluateAsync(t, { all: true })).toEqual(resident.logits);
      const out = await m.complete(g.promptTokens, { temperature: 0, maxTokens: 16 });
      expect(out.tokens).toEqual(g.generatedTokens.slice(0, 16));
    });
  });

  it('tied embeddings keep the output matrix resident and read rows from it, streamed or not', async () => {
    const t = [1, 5, 9, 200, 7, 7, 300];
    const reference = await withModel(tiedQ8, {}, async (m) => {
      expect(m.weightMemory().embeddings).toBe('tied');
      return m.evaluate(t, { all: true });
    });
    const budget = await budgetStreaming(tiedQ8, 3);
    await withModel(tiedQ8, { memoryBudget: budget, cacheDir: join(dir, 'tied-cache') }, async (m) => {
      const w = m.weightMemory();
      expect(w.embeddings).toBe('tied');
      expect(w.diskEmbeddingBytes).toBe(0);
      expect(w.streamedLayers).toBeGreaterThan(0);
      expect(w.packedCache.status).toBe('built');
      expect(await m.evaluateAsync(t, { all: true })).toEqual(reference);
    });
  });
});

describe('packed-weight cache', () => {
  const cacheDir = () => join(dir, 'cache');
  const cacheFile = () => packedCachePath(stories, cacheDir());
  let reference: Float32Array;
  beforeAll(async () => {
    reference = await withModel(stories, { cacheDir: false }, async (m) => {
      expect(m.weightMemory().packedCache.status).toBe('off');
      return m.evaluate(tokens, { all: true });
    });
  });

  const loadAndCheck = async (options: LoadModelOptions) =>
    withModel(stories, { cacheDir: cacheDir(), ...options }, async (m) => {
      expect(m.evaluate(tokens, { all: true })).toEqual(reference);
      return m.weightMemory().packedCache;
    });

  it('is built on the first load and used on the next, resident and streamed, with identical logits', async () => {
    const first = await loadAndCheck({});
    expect(first).toMatchObject({ status: 'built', path: cacheFile(), detail: 'no cache file' });
    expect(await loadAndCheck({})).toMatchObject({ status: 'used' });
    const budget = await budgetStreaming(stories, 4);
    expect(await loadAndCheck({ memoryBudget: budget })).toMatchObject({ status: 'used' });
  });

  it('a stale key (the model file touched) is rebuilt, not used', async () => {
    await loadAndCheck({});
    const later = new Date(Date.now() + 10_000);
    await utimes(stories, later, later);
    expect(await loadAndCheck({})).toMatchObject({ status: 'built', detail: 'stale: built for another model file or layout version' });
    expect(await loadAndCheck({})).toMatchObject({ status: 'used' });
  });

  it('a truncated cache is rebuilt, not used', async () => {
    await loadAndCheck({});
    const size = (await readFile(cacheFile())).length;
    await truncate(cacheFile(), size - 100);
    expect(await loadAndCheck({})).toMatchObject({ status: 'built', detail: expect.stringMatching(/^truncated/) });
  });

  it('a flipped byte in the packed weights is detected and rebuilt, resident and streamed', async () => {
    await loadAndCheck({});
    let bytes = await readFile(cacheFile());
    bytes[bytes.length - 50]! ^= 0x04;
    await writeFile(cacheFile(), bytes);
    // All resident: caught as the tensor is read into memory.
    expect(await loadAndCheck({})).toMatchObject({ status: 'built', detail: expect.stringMatching(/^checksum mismatch in blk\.4\./) });
    bytes = await readFile(cacheFile());
    bytes[bytes.length - 50]! ^= 0x04;
    await writeFile(cacheFile(), bytes);
    // Streamed: caught by the check of streamed layers at load.
    const budget = await budgetStreaming(stories, 4);
    expect(await loadAndCheck({ memoryBudget: budget })).toMatchObject({ status: 'built', detail: expect.stringMatching(/^checksum mismatch in blk\.4\./) });
    expect(await loadAndCheck({ memoryBudget: budget })).toMatchObject({ status: 'used' });
  });

  it('a cache that cannot be written warns once and the load goes on', async () => {
    const blocked = join(dir, 'not-a-dir');
    await writeFile(blocked, 'a file where the cache directory should be');
    const warnings: string[] = [];
    const budget = await budgetStreaming(stories, 4);
    const status = await loadAndCheck({ cacheDir: blocked, onWarning: (w) => warnings.push(w), memoryBudget: budget });
    expect(status.status).toBe('unwritable');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/cannot write the packed-weight cache .*not-a-dir.*continuing without it/);
  });
});

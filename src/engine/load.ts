// loadModel(): wires storage → GGUF → weights in wasm memory → transformer → Model. Under a memory
// budget it plans which layers stay resident (memory/budget.ts), and it opens or builds the
// packed-weight cache.
import { readGGUF } from '../gguf/reader.js';
import { readHParams } from '../model/hparams.js';
import { KVCache, kvCacheBytes, parseKVPrecision } from '../model/kv-cache.js';
import type { KVCacheConfig, KVPrecision } from '../model/kv-cache.js';
import { Transformer, createRunState } from '../model/transformer.js';
import { createLayerPager, loadWeights, streamingStagingBytes, weightInventory } from '../model/weights.js';
import type { PackedSource, WeightInventory } from '../model/weights.js';
import { planMemory } from '../memory/budget.js';
import type { MemoryPlan } from '../memory/budget.js';
import { parseByteSize } from '../memory/byte-size.js';
import { DiskEmbeddings } from '../memory/embeddings.js';
import { buildPackedCache, openPackedCache, packedCacheDir, packedCacheKey, packedCachePath } from '../memory/packed-cache.js';
import { PackedCacheChecks, PackedCacheCorruptError } from '../memory/packed-cache.js';
import { ReaderThread, readerThreadAvailable } from '../memory/reader-thread.js';
import type { PackedCache } from '../memory/packed-cache.js';
import type { PackedCacheStatus, WeightMemoryReport } from '../memory/report.js';
import { PACKED_LAYOUT_VERSION } from '../quant/formats.js';
import { matmulKernelFor } from '../runtime/kernel-table.js';
import type { KernelExports } from '../runtime/kernel-exports.js';
import type { KernelVariant } from '../runtime/kernels.js';
import { selectKernels } from '../runtime/kernels.js';
import { Arena, createSharedMemory } from '../runtime/memory.js';
import { createExecutor, defaultThreadCount } from '../parallel/executor.js';
import type { Executor, ParallelOptions } from '../parallel/executor.js';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { openFileStorage } from '../storage/node.js';
import type { Storage } from '../storage/storage.js';
import { createTokenizer } from '../tokenizer/index.js';
import { Model } from './model.js';

export interface LoadProgressEvent {
  /** 'packing': building the packed-weight cache (first load); 'weights': reading weights. */
  readonly phase: 'weights' | 'packing';
  readonly loadedBytes: number;
  readonly totalBytes: number;
}

export interface LoadModelOptions {
  /** Tokens the KV cache holds (default: min(the model's training context, 4096)). */
  contextLength?: number;
  /**
   * Threads running the kernels, this one included (default: os.availableParallelism()); 1 starts
   * no worker at all. Logits are bit-identical for every thread count.
   */
  threads?: number;
  /** Load balancing, thresholds and test hooks of the worker threads. */
  parallel?: ParallelOptions;
  /** Tokens processed per prefill batch (default 64). */
  batchSize?: number;
  /**
   * Storage of the KV cache (CLI --kv-cache): 'f32' (default); 'f16', half the memory; 'int8', values
   * quantized per token and head with an f32 scale, keys per channel over blocks of headDim positions
   * (the newest in an f16 tail until their block fills): (headDim + 4) / (2 headDim) of f16 per row.
   * Attention math and softmax stay f32.
   */
  kvCache?: KVPrecision;
  /**
   * Keep at most this many positions of the KV cache in wasm memory (CLI --kv-resident): older blocks
   * move to a temporary file and are read back, a layer ahead, for attention. Output is bit-identical
   * with the all-resident cache. Default: all resident.
   */
  kvResidentTokens?: number;
  /** Folder of the KV spill file (default: the OS temporary folder); it is deleted on close and on exit. */
  kvSpillDir?: string;
  /** Force a kernel build instead of the best one this engine runs correctly. */
  kernels?: KernelVariant;
  /**
   * Wasm memory the model may use for weights, KV cache and scratch: bytes, or a string such as
   * "1GB", "512MiB". Layers that do not fit are streamed from storage through a ring of layer slots,
   * each read ahead of use. Loading fails at once, naming the parts, when not even two slots fit.
   * Without contextLength, the default context is shortened so the KV cache takes at most a quarter.
   */
  memoryBudget?: number | string;
  /**
   * Where token embedding rows come from: 'disk' (default) reads each token's row from storage and
   * keeps the table out of memory; 'resident' reads the whole table. Tied embeddings are always read
   * from the resident output matrix.
   */
  embeddings?: 'disk' | 'resident';
  /**
   * Directory of the packed-weight cache (default: $POCKETLLM_CACHE_DIR, else ~/.cache/pocketllm);
   * false: no cache. Without an explicit directory, models with under 64 MiB of packed weights are
   * not cached (repacking them is quicker than reading a cache). Only models loaded from a path.
   */
  cacheDir?: string | false;
  /** Receives warnings (a cache that cannot be written); default: printed to stderr. */
  onWarning?: (message: string) => void;
  onProgress?: (event: LoadProgressEvent) => void;
}

/** Without an explicit cache directory, packed weights under this size are not cached. */
const PACKED_CACHE_MIN_BYTES = 64 * 2 ** 20;
/**
 * The kernel worker's poll before it sleeps (µs) while layers are read between layers: measured on
 * 2 cores (tinyllama at 40 %), 100 gave 123 ms per token against 150 with the executor's default
 * 1000, 127-149 with 0 (every dispatch then pays a wake-up).
 */
const STREAMING_SPIN_MICROS = 100;
/** With a budget and no contextLength, the default context keeps the KV cache within this share of it. */
const KV_BUDGET_SHARE = 0.25;

/** Loads a GGUF model from a path (Node) or any Storage. */
export async function loadModel(source: string | Storage, options: LoadModelOptions = {}): Promise<Model> {
  try {
    return await loadModelOnce(source, options, undefined);
  } catch (e) {
    // A packed-weight cache that failed its checksums while loading is removed and built anew.
    if (!(e instanceof PackedCacheCorruptError)) throw e;
    await rm(e.path, { force: true });
    return loadModelOnce(source, options, e.message);
  }
}

async function loadModelOnce(source: string | Storage, options: LoadModelOptions, cacheProblem: string | undefined): Promise<Model> {
  const budgetBytes = options.memoryBudget === undefined ? undefined : parseByteSize(options.memoryBudget, 'memoryBudget');
  if (options.embeddings !== undefined && options.embeddings !== 'disk' && options.embeddings !== 'resident') {
    throw new RangeError(`embeddings must be 'disk' or 'resident', got ${String(options.embeddings)}`);
  }
  const storage = typeof source === 'string' ? await openFileStorage(source) : source;
  let executor: Executor | undefined;
  let kv: KVCache | undefined;
  let cache: PackedCache | undefined;
  let reader: ReaderThread | undefined;
  try {
    const file = await readGGUF(storage);
    const hp = readHParams(file);
    const tokenizer = createTokenizer(file);
    if (tokenizer.vocabSize !== hp.vocabSize) {
      throw new RangeError(`${file.source}: the tokenizer has ${tokenizer.vocabSize} tokens but the model expects ${hp.vocabSize}`);
    }
    const inventory = weightInventory(file, hp, (options.embeddings ?? 'disk') === 'disk');
    let contextLength = options.contextLength ?? Math.min(hp.trainContextLength, 4096);
    if (!Number.isInteger(contextLength) || contextLength < 1) throw new RangeError(`contextLength must be a positive integer, got ${contextLength}`);
    const precision = parseKVPrecision(options.kvCache ?? 'f32');
    const kvConfig = (ctx: number): KVCacheConfig => ({
      layerCount: hp.blockCount, contextLength: ctx, headCountKV: hp.headCountKV, headDim: hp.headDim,
      maxBatch: Math.max(1, Math.min(options.batchSize ?? 64, ctx)),
      precision, residentTokens: options.kvResidentTokens, spillDir: options.kvSpillDir,
    });
    if (options.contextLength === undefined && budgetBytes !== undefined) {
      // The longest default context (a multiple of 256, at least 256) whose KV cache fits its share.
      for (let c = Math.floor(contextLength / 256) * 256; c >= 256; c -= 256) {
        contextLength = c;
        if (kvCacheBytes(kvConfig(c)) <= budgetBytes * KV_BUDGET_SHARE) break;
      }
    }
    const maxBatch = kvConfig(contextLength).maxBatch;

    const memory = createSharedMemory();
    const kernels = await selectKernels(memory, options.kernels);
    const arena = new Arena(memory, kernels.exports.heapBase() + 256);
    const threads = options.threads ?? (await defaultThreadCount());
    const warn = options.onWarning ?? ((m: string) => void process.stderr.write(`pocketllm: warning: ${m}\n`));

    // The packed-weight cache comes first: its build borrows memory that the model reuses after.
    const packed = await preparePackedCache(source, storage, file.dataOffset, inventory, arena, kernels.exports, options, warn, cacheProblem);
    cache = packed.cache;
    let checks: PackedCacheChecks | undefined;
    const packedSource = cache ? (name: string): PackedSource | undefined => {
      const e = cache!.entry(name);
      return e ? { storage: cache!.storage, offset: e.offset, check: (bytes) => checks!.memory(name, bytes) } : undefined;
    } : undefined;

    // Everything that is not a weight is allocated first, so the plan knows its exact size.
    kv = new KVCache(arena, kernels.exports, kvConfig(contextLength));
    const state = createRunState(arena, hp, maxBatch, contextLength, kv.attentionKernel);
    const table = inventory.embeddingTable;
    const embeddingStaging = table ? arena.alloc('scratch', DiskEmbeddings.stagingBytes(table, maxBatch)) : 0;
    const usage = arena.usage();
    const needs = {
      fixedBytes: arena.used,
      kvBytes: usage.kv,
      scratchBytes: usage.scratch,
      contextLength,
      residentTensorBytes: inventory.residentTensorBytes,
      layerBytes: inventory.layerBytes,
    };
    let plan = planMemory(needs, budgetBytes);
    // Streamed packed matrices read from the file (no cache) are repacked through a staging buffer.
    const stagingBytes = plan.slotCount > 0 && !cache ? layerStagingBytes(inventory, plan) : 0;
    if (stagingBytes > 0) plan = planMemory({ ...needs, residentTensorBytes: needs.residentTensorBytes + stagingBytes }, budgetBytes);
    const streamStaging = stagingBytes > 0 ? arena.alloc('scratch', stagingBytes) : undefined;
    const slotPtrs: number[] = [];
    for (let i = 0; i < plan.slotCount; i++) slotPtrs.push(arena.alloc('weights', plan.slotBytes));

    // The reader thread streams layers into their slots and checks the cache's checksums meanwhile.
    if (typeof source === 'string' && (cache || plan.slotCount > 0) && readerThreadAvailable()) {
      reader = ReaderThread.start({ memory, files: [source, ...(cache ? [cache.path] : [])] });
    }
    // When the kernel threads take every core, streamed layers are read between layers on two threads
    // (see LayerPager.useReader); the kernel worker then polls briefly before it sleeps, so that it
    // leaves the core to the read sooner.
    const readBetween = plan.slotCount > 0 && reader !== undefined && threads >= availableParallelism();
    const parallel = readBetween && options.parallel?.spinMicros === undefined ? { ...options.parallel, spinMicros: STREAMING_SPIN_MICROS } : options.parallel;
    if (cache) {
      checks = new PackedCacheChecks(cache, reader);
      // Streamed layers are checked once, from the file, while the resident weights load.
      checks.stored(inventory.layerMatrices.flatMap((ms, l) => (plan.residentLayers[l] ? [] : ms.filter((m) => m.layout).map((m) => m.name))));
    }

    const weights = await loadWeights(
      file, storage, arena, kernels.exports, hp,
      (p) => options.onProgress?.({ phase: 'weights', loadedBytes: p.loadedBytes, totalBytes: p.totalBytes }),
      {
        inventory,
        residentLayers: plan.residentLayers,
        diskEmbeddings: table !== undefined,
        packedSource,
        // Until the first pass, the slots are free: resident matrices are repacked through them.
        staging: slotPtrs.length ? { ptr: slotPtrs[0]!, bytes: plan.slotCount * plan.slotBytes } : undefined,
      },
    );
    const pager = weights.streamedLayers.length
      ? createLayerPager(weights, arena, kernels.exports, { storage, packedSource, slotPtrs, staging: streamStaging })
      : undefined;
    if (pager && reader) pager.useReader(reader, readBetween ? 'between' : 'ahead');
    if (pager && streamStaging === undefined && streamingStagingBytes(weights) > 0 && !cache) {
      throw new Error('internal: streamed packed layers without a staging buffer');
    }
    const embeddings = table
      ? new DiskEmbeddings({
          storage, table, stagingPtr: embeddingStaging, capacity: maxBatch,
          memory: (ptr, length) => arena.u8(ptr, length),
          dequantizeRow: (type, src, dst, n) => kernels.exports.dequantizeRow(type, src, dst, n),
        })
      : undefined;
    // Every cache byte is checked before any is used. The checks ran on the reader thread while the
    // weights were read; they end before the kernel threads start, since the executor measures its
    // barrier cost as it starts (a measure best not taken beside other work).
    await checks?.wait();
    executor = await createExecutor(kernels, memory, threads, parallel);
    const transformer = new Transformer(hp, weights, kernels.exports, arena, kv, state, executor, { pager, embeddings });
    executor.calibrate(transformer.calibrationJob());
    const report: WeightMemoryReport = {
      budgetBytes: budgetBytes ?? null,
      residentWeightBytes: weights.residentBytes,
      streamedWeightBytes: plan.streamedBytes,
      streamedLayers: weights.streamedLayers.length,
      layers: hp.blockCount,
      slotCount: plan.slotCount,
      slotBytes: plan.slotBytes,
      embeddings: hp.tiedEmbeddings ? 'tied' : table ? 'disk' : 'resident',
      diskEmbeddingBytes: table ? table.rows * table.rowBytes : 0,
      packedCache: { status: packed.status, path: packed.path, detail: packed.detail },
    };
    const openCache = cache;
    const openReader = reader;
    return new Model(file, hp, tokenizer, kernels.variant, storage, transformer, arena, report, async () => {
      await openReader?.close();
      await openCache?.close();
    });
  } catch (e) {
    await executor?.close().catch(() => undefined);
    await reader?.close().catch(() => undefined);
    kv?.close();
    await cache?.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw e;
  }
}

/** Staging for repacking streamed matrices read from the file: the largest packed one's file bytes. */
function layerStagingBytes(inventory: WeightInventory, plan: MemoryPlan): number {
  let most = 0;
  inventory.layerMatrices.forEach((ms, l) => {
    if (plan.residentLayers[l]) return;
    for (const m of ms) if (m.layout) most = Math.max(most, m.tensor.byteSize);
  });
  return most;
}

function residentReport(t: Transformer, budget: number | null): WeightMemoryReport {
  const tied = t.hp.tiedEmbeddings;
  return {
    budgetBytes: budget, residentWeightBytes: t.weights.residentBytes, streamedWeightBytes: 0, streamedLayers: 0,
    layers: t.hp.blockCount, slotCount: 0, slotBytes: 0, embeddings: tied ? 'tied' : 'resident', diskEmbeddingBytes: 0,
    packedCache: { status: 'off', path: null, detail: null },
  };
}

interface PreparedCache {
  readonly cache: PackedCache | undefined;
  readonly status: PackedCacheStatus;
  readonly path: string | null;
  readonly detail: string | null;
}

/**
 * Opens the packed-weight cache of a model loaded from a path, building it first when it is missing,
 * stale or corrupt. Never fails the load for the cache: when it cannot be written, warns and returns
 * none (the weights are then repacked in memory as they load).
 */
async function preparePackedCache(
  source: string | Storage, storage: Storage, headerBytes: number, inventory: WeightInventory,
  arena: Arena, kernels: KernelExports, options: LoadModelOptions, warn: (m: string) => void, problem: string | undefined,
): Promise<PreparedCache> {
  const specs = inventory.packedMatrices;
  if (specs.length === 0) return { cache: undefined, status: 'not needed', path: null, detail: null };
  const packedBytes = specs.reduce((a, m) => a + m.byteSize, 0);
  const explicit = typeof options.cacheDir === 'string' || Boolean(process.env.POCKETLLM_CACHE_DIR);
  if (typeof source !== 'string' || options.cacheDir === false || (!explicit && packedBytes < PACKED_CACHE_MIN_BYTES)) {
    return { cache: undefined, status: 'off', path: null, detail: null };
  }
  const path = packedCachePath(source, packedCacheDir(options.cacheDir || undefined));
  const key = await packedCacheKey(source, storage, headerBytes, PACKED_LAYOUT_VERSION);
  const cacheSpecs = specs.map((m) => ({ name: m.name, byteSize: m.byteSize }));
  // Checksums are checked as the tensors are read (see loadModel), not in a pass of their own.
  const first = await openPackedCache(path, key, cacheSpecs, 'deferred');
  if ('cache' in first) return { cache: first.cache, status: 'used', path, detail: null };
  const mark = arena.mark();
  try {
    const rawBytes = Math.max(...specs.map((m) => m.tensor.byteSize));
    const rawPtr = arena.alloc('scratch', rawBytes);
    const packedPtr = arena.alloc('scratch', Math.max(...specs.map((m) => m.byteSize)));
    await buildPackedCache({
      path, key, storage,
      tensors: specs.map((m) => ({ name: m.name, byteSize: m.byteSize, fileOffset: m.tensor.offset, fileBytes: m.tensor.byteSize })),
      memory: (ptr, length) => arena.u8(ptr, length),
      rawPtr, packedPtr,
      pack: (i, src, dst) => {
        const m = specs[i]!;
        matmulKernelFor(m.tensor.type).repack(kernels, src, dst, m.rows, m.cols);
      },
      onProgress: (done, total) => options.onProgress?.({ phase: 'packing', loadedBytes: done, totalBytes: total }),
    });
  } catch (e) {
    warn(`cannot write the packed-weight cache ${path} (${(e as Error).message}); continuing without it`);
    return { cache: undefined, status: 'unwritable', path, detail: (e as Error).message };
  } finally {
    arena.release(mark);
  }
  const built = await openPackedCache(path, key, cacheSpecs, 'deferred');
  if ('cache' in built) return { cache: built.cache, status: 'built', path, detail: problem ?? first.unusable };
  warn(`the packed-weight cache ${path} just written does not check out (${built.unusable}); continuing without it`);
  return { cache: undefined, status: 'unwritable', path, detail: built.unusable };
}

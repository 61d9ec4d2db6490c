// Model weights: finds every tensor the llama/qwen2 graph needs (by name, through tensor-names.ts),
// checks its shape and type, and reads its bytes from storage into the "weights" region of wasm memory.
// Matrices of a type with a packed layout (quant/formats.ts) are repacked there once, at load, into the
// layout their matmul reads; the file bytes pass through scratch memory on the way (or the packed
// bytes come ready from the packed-weight cache). What a memory plan leaves in storage is not loaded:
// token_embd's rows (read per token) and the matrices of streamed layers (read into layer slots by
// the pager createLayerPager builds).
import type { GGUFFile, GGUFTensorInfo } from '../gguf/types.js';
import { GGMLType, TYPE_TRAITS } from '../quant/formats.js';
import type { PackedLayout } from '../quant/formats.js';
import { matmulKernelFor } from '../runtime/kernel-table.js';
import type { Arena } from '../runtime/memory.js';
import type { KernelExports } from '../runtime/kernel-exports.js';
import type { EmbeddingTable } from '../memory/embeddings.js';
import { LayerPager } from '../memory/layer-pager.js';
import type { LayerRead } from '../memory/layer-pager.js';
import type { Storage } from '../storage/storage.js';
import { readExactly } from '../storage/storage.js';
import type { HParams } from './hparams.js';
import { UnsupportedModelError, llama3RopeFreqFactors } from './hparams.js';
import { globalTensorName, layerTensorName } from './tensor-names.js';
import type { LayerTensorKind, TensorSuffix } from './tensor-names.js';

/**
 * A 2-D weight in wasm memory: `rows` rows of `cols` weights of `type`, stored as in the file or, when
 * `layout` is set, in that packed layout (row r no longer at ptr + r * rowBytes: see rowToF32).
 */
export interface MatrixWeight {
  readonly name: string;
  readonly ptr: number;
  readonly type: GGMLType;
  readonly rows: number;
  readonly cols: number;
  /** Bytes of one row in the file layout. */
  readonly rowBytes: number;
  /** The packed layout the bytes at ptr are in, or null for the file layout. */
  readonly layout: PackedLayout | null;
  /** Bytes at ptr. */
  readonly byteSize: number;
}

/** dst f32[cols] = row `row` of a matrix, whatever its layout (the embedding lookup). */
export function rowToF32(k: KernelExports, m: MatrixWeight, row: number, dst: number): void {
  const status = m.layout
    ? k.dequantizePackedRow(m.type, m.ptr, m.cols, row, dst)
    : k.dequantizeRow(m.type, m.ptr + row * m.rowBytes, dst, m.cols);
  if (status !== 0) throw new Error(`cannot read row ${row} of ${m.name} (${GGMLType[m.type]})`);
}

/** A 1-D f32 vector in wasm memory (norm weights, biases, rope factors). */
export interface VectorWeight {
  readonly name: string;
  readonly ptr: number;
  readonly length: number;
}

export interface LayerWeights {
  readonly attnNorm: VectorWeight; // (embd)
  readonly attnQ: MatrixWeight; // (nHead*headDim rows, embd cols)
  readonly attnK: MatrixWeight; // (nKV*headDim, embd)
  readonly attnV: MatrixWeight; // (nKV*headDim, embd)
  readonly attnQBias: VectorWeight | undefined; // qwen2 only (nHead*headDim)
  readonly attnKBias: VectorWeight | undefined;
  readonly attnVBias: VectorWeight | undefined;
  readonly attnOutput: MatrixWeight; // (embd, nHead*headDim)
  readonly ffnNorm: VectorWeight; // (embd)
  readonly ffnGate: MatrixWeight; // (ffn, embd)
  readonly ffnUp: MatrixWeight; // (ffn, embd)
  readonly ffnDown: MatrixWeight; // (embd, ffn)
}

/** The matrices of a layer, in the order a layer slot holds them. */
export const LAYER_MATRICES = ['attnQ', 'attnK', 'attnV', 'attnOutput', 'ffnGate', 'ffnUp', 'ffnDown'] as const;
export type LayerMatrixKind = (typeof LAYER_MATRICES)[number];

/** A matrix as it will sit in wasm memory, from its tensor info (shape and type checked). */
export interface MatrixSpec {
  readonly name: string;
  readonly tensor: GGUFTensorInfo;
  readonly rows: number;
  readonly cols: number;
  /** Bytes of one row in the file layout. */
  readonly rowBytes: number;
  /** The packed layout it is kept in, or null for the file layout. */
  readonly layout: PackedLayout | null;
  /** Bytes in wasm memory (packed size when packed). */
  readonly byteSize: number;
}

/** A layer whose matrices are streamed: its (resident) norms and biases, and where each matrix sits in a slot. */
export interface StreamedLayer {
  readonly layer: number;
  readonly vectors: Omit<LayerWeights, LayerMatrixKind>;
  readonly matrices: readonly { readonly kind: LayerMatrixKind; readonly spec: MatrixSpec; readonly slotOffset: number }[];
}

export interface ModelWeights {
  /** (vocab rows, embd cols); undefined when its rows are read from storage (embeddingTable). */
  readonly tokenEmbd: MatrixWeight | undefined;
  /** Where token_embd's rows are in storage when the table is not resident. */
  readonly embeddingTable: EmbeddingTable | undefined;
  readonly outputNorm: VectorWeight; // (embd)
  /** The output projection (vocab, embd); the same object as tokenEmbd when embeddings are tied. */
  readonly output: MatrixWeight;
  /** Divisors of the rope frequencies (ropeDims/2), from rope_freqs.weight or Llama 3 scaling. */
  readonly ropeFreqFactors: VectorWeight | undefined;
  /** Per layer; undefined for a streamed layer (see streamedLayers). */
  readonly layers: readonly (LayerWeights | undefined)[];
  /** The layers whose matrices are read into a layer slot before each use. */
  readonly streamedLayers: readonly StreamedLayer[];
  /** Bytes of weights held in wasm memory (layer slots not included). */
  readonly residentBytes: number;
}

/** Where a matrix's packed bytes are, and the check they must pass once read (throws if not). */
export interface PackedSource {
  readonly storage: Storage;
  readonly offset: number;
  readonly check?: (bytes: Uint8Array) => void;
}

/** Where weights go: decided by the memory plan (memory/budget.ts) and the packed-weight cache. */
export interface WeightPlacement {
  /** What loadWeights would compute itself (pass it when already computed for the plan). */
  readonly inventory?: WeightInventory;
  /** Per layer: false when its matrices are streamed through layer slots (default: all resident). */
  readonly residentLayers?: readonly boolean[];
  /** Leave token_embd in storage and read rows per token (ignored when tied). */
  readonly diskEmbeddings?: boolean;
  /** Where a matrix's packed bytes can be read as they are (the packed-weight cache), if anywhere. */
  readonly packedSource?: (name: string) => PackedSource | undefined;
  /** Memory to read file bytes into before repacking instead of a scratch allocation, when large enough. */
  readonly staging?: { readonly ptr: number; readonly bytes: number };
}

/** What the weights of a model take, before any is loaded: the input of the memory plan. */
export interface WeightInventory {
  /** Bytes of what stays resident whatever the plan: global matrices, every vector (64-byte aligned each). */
  readonly residentTensorBytes: number;
  /** Per layer, its matrices in LAYER_MATRICES order. */
  readonly layerMatrices: readonly (readonly MatrixSpec[])[];
  /** Per layer, the bytes of its matrices in a slot (each 64-byte aligned). */
  readonly layerBytes: readonly number[];
  /** Every matrix kept in a packed layout, in load order: what a packed-weight cache holds. */
  readonly packedMatrices: readonly MatrixSpec[];
  /** token_embd's rows in storage, when they are read per token. */
  readonly embeddingTable: EmbeddingTable | undefined;
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;

/** Checks a matrix tensor's shape and type and says how it will sit in memory. */
export function matrixSpec(file: GGUFFile, name: string, rows: number, cols: number, pack = true): MatrixSpec {
  const t = file.tensorsByName.get(name);
  if (!t) throw new UnsupportedModelError(`${file.source}: tensor "${name}" is missing`);
  if (t.shape.length !== 2 || t.shape[0] !== cols || t.shape[1] !== rows) {
    throw new UnsupportedModelError(`${file.source}: tensor "${name}" has shape [${t.shape.join(', ')}], expected [${cols}, ${rows}]`);
  }
  const traits = TYPE_TRAITS.get(t.type)!;
  if (!traits.supported || t.type === GGMLType.Q8_K || t.type === GGMLType.Q8_1) {
    throw new UnsupportedModelError(`${file.source}: tensor "${name}" is stored as ${traits.name}, a type pocketllm cannot compute with`);
  }
  const kernel = matmulKernelFor(t.type);
  const layout = pack ? kernel.layout : null;
  const rowBytes = (cols / traits.blockSize) * traits.blockBytes;
  return { name, tensor: t, rows, cols, rowBytes, layout, byteSize: layout ? kernel.matrixBytes(rows, cols) : t.byteSize };
}

function layerMatrixShape(hp: HParams, kind: LayerMatrixKind): [rows: number, cols: number] {
  const embd = hp.embeddingLength;
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKV * hp.headDim;
  const ffn = hp.feedForwardLength;
  switch (kind) {
    case 'attnQ': return [qDim, embd];
    case 'attnK': return [kvDim, embd];
    case 'attnV': return [kvDim, embd];
    case 'attnOutput': return [embd, qDim];
    case 'ffnGate': return [ffn, embd];
    case 'ffnUp': return [ffn, embd];
    case 'ffnDown': return [embd, ffn];
  }
}

/** The inventory of a llama/qwen2 model's weights (shapes and types checked). */
export function weightInventory(file: GGUFFile, hp: HParams, diskEmbeddings: boolean): WeightInventory {
  const embd = hp.embeddingLength;
  const onDisk = diskEmbeddings && !hp.tiedEmbeddings;
  const tokenEmbd = matrixSpec(file, globalTensorName('tokenEmbd'), hp.vocabSize, embd, hp.tiedEmbeddings);
  const globals = [...(onDisk ? [] : [tokenEmbd]), ...(hp.tiedEmbeddings ? [] : [matrixSpec(file, globalTensorName('output'), hp.vocabSize, embd)])];
  let resident = globals.reduce((a, m) => a + align64(m.byteSize), 0);
  // Vectors: output norm, rope factors, per layer two norms and (qwen2) three biases; f32 in memory.
  const vectorBytes = (name: string) => {
    const t = file.tensorsByName.get(name);
    return t ? align64(t.elementCount * 4) : 0;
  };
  resident += vectorBytes(globalTensorName('outputNorm'));
  resident += file.tensorsByName.has(globalTensorName('ropeFreqs')) ? vectorBytes(globalTensorName('ropeFreqs')) : llama3RopeFreqFactors(hp) ? align64(hp.ropeDims * 2) : 0;
  const layerMatrices: MatrixSpec[][] = [];
  for (let l = 0; l < hp.blockCount; l++) {
    resident += vectorBytes(layerTensorName('attnNorm', l)) + vectorBytes(layerTensorName('ffnNorm', l));
    if (hp.architecture === 'qwen2') {
      for (const k of ['attnQ', 'attnK', 'attnV'] as const) resident += vectorBytes(layerTensorName(k, l, 'bias'));
    }
    layerMatrices.push(LAYER_MATRICES.map((kind) => matrixSpec(file, layerTensorName(kind, l), ...layerMatrixShape(hp, kind))));
  }
  const packedMatrices = [...globals, ...layerMatrices.flat()].filter((m) => m.layout !== null);
  const t = tokenEmbd.tensor;
  return {
    residentTensorBytes: resident,
    layerMatrices,
    layerBytes: layerMatrices.map((ms) => ms.reduce((a, m) => a + align64(m.byteSize), 0)),
    packedMatrices,
    embeddingTable: onDisk ? { offset: t.offset, type: t.type, rows: hp.vocabSize, cols: embd, rowBytes: tokenEmbd.rowBytes } : undefined,
  };
}

export interface LoadProgress {
  readonly loadedBytes: number;
  readonly totalBytes: number;
}

class WeightLoader {
  residentBytes = 0;
  private loadedBytes = 0;

  constructor(
    private readonly file: GGUFFile,
    private readonly storage: Storage,
    private readonly arena: Arena,
    private readonly kernels: KernelExports,
    private readonly totalBytes: number,
    private readonly onProgress: ((p: LoadProgress) => void) | undefined,
    private readonly placement: WeightPlacement,
  ) {}

  private tensor(name: string, required: boolean): GGUFTensorInfo | undefined {
    const t = this.file.tensorsByName.get(name);
    if (!t && required) throw new UnsupportedModelError(`${this.file.source}: tensor "${name}" is missing`);
    return t;
  }

  private async readInto(t: GGUFTensorInfo, ptr: number): Promise<void> {
    await readExactly(this.storage, t.offset, this.arena.u8(ptr, t.byteSize));
    this.progress(t.byteSize);
  }

  progress(bytes: number): void {
    this.loadedBytes += bytes;
    this.onProgress?.({ loadedBytes: this.loadedBytes, totalBytes: this.totalBytes });
  }

  /**
   * A matrix; kept in its packed layout when its type has one (unless `pack` is false: a token
   * embedding that is not also the output). Packed bytes come from the packed-weight cache when it
   * holds them, else the file's bytes are repacked here.
   */
  async matrix(name: string, rows: number, cols: number, pack = true): Promise<MatrixWeight> {
    const spec = matrixSpec(this.file, name, rows, cols, pack);
    const t = spec.tensor;
    const base = { name, type: t.type, rows, cols, rowBytes: spec.rowBytes, layout: spec.layout, byteSize: spec.byteSize };
    const ptr = this.arena.alloc('weights', spec.byteSize);
    this.residentBytes += spec.byteSize;
    if (!spec.layout) {
      await this.readInto(t, ptr);
      return { ...base, ptr };
    }
    const packed = this.placement.packedSource?.(name);
    if (packed) {
      await readExactly(packed.storage, packed.offset, this.arena.u8(ptr, spec.byteSize));
      packed.check?.(this.arena.u8(ptr, spec.byteSize));
      this.progress(t.byteSize);
      return { ...base, ptr };
    }
    const staging = this.placement.staging;
    const mark = this.arena.mark();
    const tmp = staging && staging.bytes >= t.byteSize ? staging.ptr : this.arena.alloc('scratch', t.byteSize);
    await this.readInto(t, tmp);
    try {
      matmulKernelFor(t.type).repack(this.kernels, tmp, ptr, rows, cols);
    } catch (e) {
      throw new Error(`tensor "${t.name}": ${(e as Error).message}`);
    }
    this.arena.release(mark);
    return { ...base, ptr };
  }

  /** A 1-D tensor, converted to f32 in wasm memory whatever its stored type. */
  async vector(name: string, length: number, required = true): Promise<VectorWeight | undefined> {
    const t = this.tensor(name, required);
    if (!t) return undefined;
    if (t.elementCount !== length) {
      throw new UnsupportedModelError(`${this.file.source}: tensor "${name}" has ${t.elementCount} elements, expected ${length}`);
    }
    const ptr = this.arena.alloc('weights', length * 4);
    if (t.type === GGMLType.F32) {
      await this.readInto(t, ptr);
    } else {
      const mark = this.arena.mark();
      const tmp = this.arena.alloc('scratch', t.byteSize);
      await this.readInto(t, tmp);
      if (this.kernels.dequantizeRow(t.type, tmp, ptr, length) !== 0) {
        throw new UnsupportedModelError(`${this.file.source}: tensor "${name}" has type ${GGMLType[t.type]}, which cannot be read as a vector`);
      }
      this.arena.release(mark);
    }
    this.residentBytes += length * 4;
    return { name, ptr, length };
  }

  vectorFrom(name: string, values: Float32Array): VectorWeight {
    const ptr = this.arena.alloc('weights', values.length * 4);
    this.arena.f32(ptr, values.length).set(values);
    this.residentBytes += values.length * 4;
    return { name, ptr, length: values.length };
  }
}

/**
 * Reads the weights of a llama/qwen2 model into wasm memory, but for what `placement` leaves in
 * storage: token_embd's rows (read per token) and the matrices of streamed layers (read into a layer
 * slot before each use, see createLayerPager).
 */
export async function loadWeights(
  file: GGUFFile,
  storage: Storage,
  arena: Arena,
  kernels: KernelExports,
  hp: HParams,
  onProgress?: (p: LoadProgress) => void,
  placement: WeightPlacement = {},
): Promise<ModelWeights> {
  const inventory = placement.inventory ?? weightInventory(file, hp, placement.diskEmbeddings ?? false);
  const resident = (l: number) => placement.residentLayers?.[l] ?? true;
  // Progress counts the bytes read now: not the embedding table left in storage, nor streamed layers.
  let total = file.tensors.reduce((a, t) => a + t.byteSize, 0);
  if (inventory.embeddingTable) total -= file.tensorsByName.get(globalTensorName('tokenEmbd'))!.byteSize;
  for (let l = 0; l < hp.blockCount; l++) if (!resident(l)) total -= inventory.layerMatrices[l]!.reduce((a, m) => a + m.tensor.byteSize, 0);
  const loader = new WeightLoader(file, storage, arena, kernels, total, onProgress, placement);
  const embd = hp.embeddingLength;

  // Packed only when tied: then it is also the output projection, and the lookup reads packed rows.
  const tokenEmbd = inventory.embeddingTable ? undefined : await loader.matrix(globalTensorName('tokenEmbd'), hp.vocabSize, embd, hp.tiedEmbeddings);
  const outputNorm = (await loader.vector(globalTensorName('outputNorm'), embd))!;
  const output = hp.tiedEmbeddings ? tokenEmbd! : await loader.matrix(globalTensorName('output'), hp.vocabSize, embd);

  let ropeFreqFactors = await loader.vector(globalTensorName('ropeFreqs'), hp.ropeDims / 2, false);
  if (!ropeFreqFactors) {
    const computed = llama3RopeFreqFactors(hp);
    if (computed) ropeFreqFactors = loader.vectorFrom(globalTensorName('ropeFreqs'), computed);
  }

  const hasBias = hp.architecture === 'qwen2';
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKV * hp.headDim;
  const layers: (LayerWeights | undefined)[] = [];
  const streamedLayers: StreamedLayer[] = [];
  for (let i = 0; i < hp.blockCount; i++) {
    const v = (kind: LayerTensorKind, n: number, suffix: TensorSuffix = 'weight', required = true) =>
      loader.vector(layerTensorName(kind, i, suffix), n, required);
    const vectors = {
      attnNorm: (await v('attnNorm', embd))!,
      attnQBias: hasBias ? await v('attnQ', qDim, 'bias', false) : undefined,
      attnKBias: hasBias ? await v('attnK', kvDim, 'bias', false) : undefined,
      attnVBias: hasBias ? await v('attnV', kvDim, 'bias', false) : undefined,
      ffnNorm: (await v('ffnNorm', embd))!,
    };
    if (!resident(i)) {
      let at = 0;
      const matrices = inventory.layerMatrices[i]!.map((spec, j) => {
        const m = { kind: LAYER_MATRICES[j]!, spec, slotOffset: at };
        at += align64(spec.byteSize);
        return m;
      });
      streamedLayers.push({ layer: i, vectors, matrices });
      layers.push(undefined);
      continue;
    }
    const m = (kind: LayerMatrixKind) => loader.matrix(layerTensorName(kind, i), ...layerMatrixShape(hp, kind));
    layers.push({
      ...vectors,
      attnQ: await m('attnQ'),
      attnK: await m('attnK'),
      attnV: await m('attnV'),
      attnOutput: await m('attnOutput'),
      ffnGate: await m('ffnGate'),
      ffnUp: await m('ffnUp'),
      ffnDown: await m('ffnDown'),
    });
  }
  return {
    tokenEmbd,
    embeddingTable: inventory.embeddingTable,
    outputNorm,
    output,
    ropeFreqFactors,
    layers,
    streamedLayers,
    residentBytes: loader.residentBytes,
  };
}

/** The LayerWeights of a streamed layer held in the slot at `slotPtr`. */
export function layerInSlot(s: StreamedLayer, slotPtr: number): LayerWeights {
  const out: Record<string, unknown> = { ...s.vectors };
  for (const { kind, spec, slotOffset } of s.matrices) {
    const m: MatrixWeight = {
      name: spec.name, ptr: slotPtr + slotOffset, type: spec.tensor.type, rows: spec.rows, cols: spec.cols,
      rowBytes: spec.rowBytes, layout: spec.layout, byteSize: spec.byteSize,
    };
    out[kind] = m;
  }
  return out as unknown as LayerWeights;
}

export interface LayerPagerSetup {
  /** The model file. */
  readonly storage: Storage;
  /** Where packed bytes can be read as they are (the packed-weight cache), if anywhere. */
  readonly packedSource?: WeightPlacement['packedSource'];
  /** Slot pointers; each slot holds the largest streamed layer. */
  readonly slotPtrs: readonly number[];
  /** Memory to repack through when packed bytes come from the file: the largest streamed matrix. */
  readonly staging?: number;
}

/** Bytes of staging memory streaming needs when packed matrices are read from the file and repacked. */
export function streamingStagingBytes(weights: Pick<ModelWeights, 'streamedLayers'>): number {
  let most = 0;
  for (const s of weights.streamedLayers) for (const m of s.matrices) if (m.spec.layout) most = Math.max(most, m.spec.tensor.byteSize);
  return most;
}

/** The pager that reads streamed layers into slots ahead of use (see memory/layer-pager.ts). */
export function createLayerPager(weights: ModelWeights, arena: Arena, kernels: KernelExports, setup: LayerPagerSetup): LayerPager<LayerWeights> {
  const byLayer = new Map(weights.streamedLayers.map((s) => [s.layer, s]));
  const repackAfterRead = (s: StreamedLayer) => s.matrices.filter((m) => m.spec.layout && !setup.packedSource?.(m.spec.name));
  return new LayerPager<LayerWeights>({
    storage: setup.storage,
    layers: weights.streamedLayers.map((s) => s.layer),
    slotPtrs: setup.slotPtrs,
    memory: (ptr, length) => arena.u8(ptr, length),
    view: (layer, slotPtr) => layerInSlot(byLayer.get(layer)!, slotPtr),
    readsOf: (layer): LayerRead[] =>
      byLayer.get(layer)!.matrices.map(({ spec, slotOffset }) => {
        const packed = spec.layout ? setup.packedSource?.(spec.name) : undefined;
        return packed
          ? { storage: packed.storage, sourceOffset: packed.offset, length: spec.byteSize, slotOffset }
          : { sourceOffset: spec.tensor.offset, length: spec.tensor.byteSize, slotOffset };
      }),
    afterRead: (layer, slotPtr) => {
      // File bytes of a packed type were read where the packed matrix goes: move them aside, repack back.
      for (const { spec, slotOffset } of repackAfterRead(byLayer.get(layer)!)) {
        if (setup.staging === undefined) throw new Error(`streaming ${spec.name} from the file needs a staging buffer to repack through`);
        const bytes = arena.bytes();
        bytes.copyWithin(setup.staging, slotPtr + slotOffset, slotPtr + slotOffset + spec.tensor.byteSize);
        matmulKernelFor(spec.tensor.type).repack(kernels, setup.staging, slotPtr + slotOffset, spec.rows, spec.cols);
      }
    },
  });
}

// Model weights: finds every tensor the llama/qwen2 graph needs (by name, through tensor-names.ts),
// checks its shape and type, and reads its bytes from storage into the "weights" region of wasm memory.
// Matrices of a type with a packed layout (quant/formats.ts) are repacked there once, at load, into the
// layout their matmul reads; the file bytes pass through scratch memory on the way.
import type { GGUFFile, GGUFTensorInfo } from '../gguf/types.js';
import { GGMLType, TYPE_TRAITS } from '../quant/formats.js';
import type { PackedLayout } from '../quant/formats.js';
import { matmulKernelFor } from '../runtime/kernel-table.js';
import type { Arena } from '../runtime/memory.js';
import type { KernelExports } from '../runtime/kernel-exports.js';
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

export interface ModelWeights {
  readonly tokenEmbd: MatrixWeight; // (vocab rows, embd cols)
  readonly outputNorm: VectorWeight; // (embd)
  /** The output projection (vocab, embd); the same object as tokenEmbd when embeddings are tied. */
  readonly output: MatrixWeight;
  /** Divisors of the rope frequencies (ropeDims/2), from rope_freqs.weight or Llama 3 scaling. */
  readonly ropeFreqFactors: VectorWeight | undefined;
  readonly layers: readonly LayerWeights[];
  /** Bytes of weights held in wasm memory. */
  readonly residentBytes: number;
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
  ) {}

  private tensor(name: string, required: boolean): GGUFTensorInfo | undefined {
    const t = this.file.tensorsByName.get(name);
    if (!t && required) throw new UnsupportedModelError(`${this.file.source}: tensor "${name}" is missing`);
    return t;
  }

  private async readInto(t: GGUFTensorInfo, ptr: number): Promise<void> {
    await readExactly(this.storage, t.offset, this.arena.u8(ptr, t.byteSize));
    this.loadedBytes += t.byteSize;
    this.onProgress?.({ loadedBytes: this.loadedBytes, totalBytes: this.totalBytes });
  }

  /** A matrix; repacked when its type has a packed layout, unless `pack` is false (embedding only). */
  async matrix(name: string, rows: number, cols: number, pack = true): Promise<MatrixWeight> {
    const t = this.tensor(name, true)!;
    if (t.shape.length !== 2 || t.shape[0] !== cols || t.shape[1] !== rows) {
      throw new UnsupportedModelError(`${this.file.source}: tensor "${name}" has shape [${t.shape.join(', ')}], expected [${cols}, ${rows}]`);
    }
    const traits = TYPE_TRAITS.get(t.type)!;
    if (!traits.supported || t.type === GGMLType.Q8_K || t.type === GGMLType.Q8_1) {
      throw new UnsupportedModelError(`${this.file.source}: tensor "${name}" is stored as ${traits.name}, a type pocketllm cannot compute with`);
    }
    const rowBytes = (cols / traits.blockSize) * traits.blockBytes;
    const kernel = matmulKernelFor(t.type);
    const layout = pack ? kernel.layout : null;
    if (!layout) {
      const ptr = this.arena.alloc('weights', t.byteSize);
      await this.readInto(t, ptr);
      this.residentBytes += t.byteSize;
      return { name, ptr, type: t.type, rows, cols, rowBytes, layout: null, byteSize: t.byteSize };
    }
    const byteSize = kernel.matrixBytes(rows, cols);
    const ptr = this.arena.alloc('weights', byteSize);
    const mark = this.arena.mark();
    const tmp = this.arena.alloc('scratch', t.byteSize);
    await this.readInto(t, tmp);
    kernel.repack(this.kernels, tmp, ptr, rows, cols);
    this.arena.release(mark);
    this.residentBytes += byteSize;
    return { name, ptr, type: t.type, rows, cols, rowBytes, layout, byteSize };
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

/** Reads all weights of a llama/qwen2 model into wasm memory. */
export async function loadWeights(
  file: GGUFFile,
  storage: Storage,
  arena: Arena,
  kernels: KernelExports,
  hp: HParams,
  onProgress?: (p: LoadProgress) => void,
): Promise<ModelWeights> {
  const total = file.tensors.reduce((a, t) => a + t.byteSize, 0);
  const loader = new WeightLoader(file, storage, arena, kernels, total, onProgress);
  const embd = hp.embeddingLength;
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKV * hp.headDim;
  const ffn = hp.feedForwardLength;

  // Packed only when tied: then it is also the output projection, and the lookup reads packed rows.
  const tokenEmbd = await loader.matrix(globalTensorName('tokenEmbd'), hp.vocabSize, embd, hp.tiedEmbeddings);
  const outputNorm = (await loader.vector(globalTensorName('outputNorm'), embd))!;
  const output = hp.tiedEmbeddings ? tokenEmbd : await loader.matrix(globalTensorName('output'), hp.vocabSize, embd);

  let ropeFreqFactors = await loader.vector(globalTensorName('ropeFreqs'), hp.ropeDims / 2, false);
  if (!ropeFreqFactors) {
    const computed = llama3RopeFreqFactors(hp);
    if (computed) ropeFreqFactors = loader.vectorFrom(globalTensorName('ropeFreqs'), computed);
  }

  const hasBias = hp.architecture === 'qwen2';
  const layers: LayerWeights[] = [];
  for (let i = 0; i < hp.blockCount; i++) {
    const m = (kind: LayerTensorKind, rows: number, cols: number) => loader.matrix(layerTensorName(kind, i), rows, cols);
    const v = (kind: LayerTensorKind, n: number, suffix: TensorSuffix = 'weight', required = true) =>
      loader.vector(layerTensorName(kind, i, suffix), n, required);
    layers.push({
      attnNorm: (await v('attnNorm', embd))!,
      attnQ: await m('attnQ', qDim, embd),
      attnK: await m('attnK', kvDim, embd),
      attnV: await m('attnV', kvDim, embd),
      attnQBias: hasBias ? await v('attnQ', qDim, 'bias', false) : undefined,
      attnKBias: hasBias ? await v('attnK', kvDim, 'bias', false) : undefined,
      attnVBias: hasBias ? await v('attnV', kvDim, 'bias', false) : undefined,
      attnOutput: await m('attnOutput', embd, qDim),
      ffnNorm: (await v('ffnNorm', embd))!,
      ffnGate: await m('ffnGate', ffn, embd),
      ffnUp: await m('ffnUp', ffn, embd),
      ffnDown: await m('ffnDown', embd, ffn),
    });
  }
  return { tokenEmbd, outputNorm, output, ropeFreqFactors, layers, residentBytes: loader.residentBytes };
}

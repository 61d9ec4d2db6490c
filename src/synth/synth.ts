// Synthetic models: plans the metadata and tensors of a GGUF v3 file of a real model's shape (names,
// shapes and per-tensor types as llama.cpp's converter and quantizer would produce them) and streams
// it out with seeded random weights, one row at a time, so even a 7B file never sits in memory.
//
// Tensor types come from the same rules `pocketllm quantize` applies (src/quant/quantize-model.ts,
// llama.cpp's llama_tensor_get_type and shape fallbacks): a synthetic Q4_0 file has the types
// llama-quantize would give a Q4_0 of the real model (norms F32, output/tied embeddings Q6_K or Q8_0,
// rows a type cannot hold at the fallback type).
//
// Quantized matrices are filled one of two ways: "reference" draws normal f32 rows and runs them
// through the reference quantizer (realistic quant statistics, but the k-quant search costs about a
// microsecond per weight), "direct" draws valid random blocks (src/synth/blocks.ts; a 7B file in
// under a minute). "auto" picks reference for small models only. Either way the bytes depend only on
// shape, type, seed and vocabulary.
import { buildGGUFHeader, writeGGUF } from '../gguf/writer.js';
import type { ByteSink, TensorToWrite } from '../gguf/writer.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUFValueType } from '../gguf/types.js';
import type { GGUFFile, GGUFKV, GGUFTensorInfo } from '../gguf/types.js';
import { llama3RopeFreqFactors } from '../model/hparams.js';
import { globalTensorName, layerTensorName } from '../model/tensor-names.js';
import type { LayerTensorKind } from '../model/tensor-names.js';
import { GGMLType, TYPE_TRAITS, rowBytes } from '../quant/formats.js';
import { quantizeRow } from '../quant/quantize.js';
import { FILE_TYPES, QUANTIZATION_VERSION, planQuantization } from '../quant/quantize-model.js';
import type { FileType } from '../quant/quantize-model.js';
import { DIRECT_BLOCK_TYPES, fillRandomBlocks } from './blocks.js';
import { Rng } from './random.js';
import { shapeHeadDim, shapeHParams } from './shapes.js';
import type { ModelShape } from './shapes.js';
import type { SynthVocab } from './vocab.js';

/** File types `--type` accepts: all that `pocketllm quantize` writes. */
export const SYNTH_FILE_TYPES: readonly FileType[] = FILE_TYPES;

/** Standard deviation of matrix weights (the usual initialisation scale of these models). */
export const MATRIX_STD = 0.02;
/** Norm weights are drawn around 1 with this spread. */
export const NORM_STD = 0.05;
/** Qwen2's q/k/v biases. */
export const BIAS_STD = 0.02;

/**
 * Largest number of quantized weights "auto" runs through the reference quantizer: the tiny shapes
 * and stories260k (a second or two even for k-quants); anything larger gets directly drawn blocks.
 */
export const REFERENCE_QUANT_MAX_WEIGHTS = 16_000_000;

/** Target size of one chunk handed to the writer. */
const CHUNK_BYTES = 1 << 20;

/** How quantized matrices get their bytes. */
export type WeightSource = 'reference' | 'direct';

export interface SynthRequest {
  readonly shape: ModelShape;
  /** The llama.cpp file type asked for (its default type goes to most matrices). */
  readonly fileType: FileType;
  /** 0 .. 2^32-1. */
  readonly seed: number;
  readonly vocab: SynthVocab;
  /** "auto" (default): reference quantization for small models, direct blocks for the rest. */
  readonly weights?: 'auto' | WeightSource;
}

export type TensorRole = 'token_embd' | 'output' | 'matrix' | 'norm' | 'bias' | 'rope_freqs';

export interface PlannedTensor {
  readonly name: string;
  /** GGML order: shape[0] is the row length. */
  readonly shape: readonly number[];
  readonly type: GGMLType;
  readonly role: TensorRole;
  /** Bytes of data (before alignment padding). */
  readonly byteSize: number;
  /** Why a matrix's type differs from the file type's default, when it does. */
  readonly reason?: string;
}

export interface SynthPlan {
  readonly request: SynthRequest;
  readonly kv: readonly GGUFKV[];
  readonly tensors: readonly PlannedTensor[];
  /** How quantized matrices are filled (irrelevant when none is quantized). */
  readonly weights: WeightSource;
  readonly headerBytes: number;
  readonly fileBytes: number;
  /** One line per group of tensors whose type differs from the file type's default. */
  readonly notes: readonly string[];
}

export class SynthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SynthError';
  }
}

/** True for the block formats (everything but F32, F16, BF16). */
export function isQuantized(type: GGMLType): boolean {
  return TYPE_TRAITS.get(type)!.blockSize > 1;
}

function typeName(type: GGMLType): string {
  return TYPE_TRAITS.get(type)!.name;
}

interface TensorSpec {
  name: string;
  shape: number[];
  role: TensorRole;
}

/** Names, shapes and roles of every tensor of a shape, in the order llama.cpp's converter writes. */
function tensorSpecs(shape: ModelShape): TensorSpec[] {
  const e = shape.embeddingLength;
  const headDim = shapeHeadDim(shape);
  const qDim = shape.headCount * headDim;
  const kvDim = shape.headCountKV * headDim;
  const ffn = shape.feedForwardLength;
  const specs: TensorSpec[] = [];
  if (shape.ropeLlama3) specs.push({ name: globalTensorName('ropeFreqs'), shape: [headDim / 2], role: 'rope_freqs' });
  specs.push({ name: globalTensorName('tokenEmbd'), shape: [e, shape.vocabSize], role: 'token_embd' });
  const layer = (kind: LayerTensorKind, i: number, dims: number[], role: TensorRole, suffix: 'weight' | 'bias' = 'weight'): void => {
    specs.push({ name: layerTensorName(kind, i, suffix), shape: dims, role });
  };
  for (let i = 0; i < shape.blockCount; i++) {
    layer('attnNorm', i, [e], 'norm');
    layer('attnQ', i, [e, qDim], 'matrix');
    if (shape.qkvBias) layer('attnQ', i, [qDim], 'bias', 'bias');
    layer('attnK', i, [e, kvDim], 'matrix');
    if (shape.qkvBias) layer('attnK', i, [kvDim], 'bias', 'bias');
    layer('attnV', i, [e, kvDim], 'matrix');
    if (shape.qkvBias) layer('attnV', i, [kvDim], 'bias', 'bias');
    layer('attnOutput', i, [qDim, e], 'matrix');
    layer('ffnNorm', i, [e], 'norm');
    layer('ffnGate', i, [e, ffn], 'matrix');
    layer('ffnUp', i, [e, ffn], 'matrix');
    layer('ffnDown', i, [ffn, e], 'matrix');
  }
  specs.push({ name: globalTensorName('outputNorm'), shape: [e], role: 'norm' });
  if (!shape.tiedEmbeddings) specs.push({ name: globalTensorName('output'), shape: [e, shape.vocabSize], role: 'output' });
  return specs;
}

/** The architecture's metadata (general.*, <arch>.*), before the vocabulary. */
function modelMetadata(shape: ModelShape, fileType: FileType, seed: number): GGUFKV[] {
  const arch = shape.architecture;
  const u32 = (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.UINT32, value });
  const f32 = (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.FLOAT32, value });
  const str = (key: string, value: string): GGUFKV => ({ key, type: GGUFValueType.STRING, value });
  // Llama 3 rope scaling is carried by rope_freqs.weight alone, as llama.cpp's converter does:
  // llama.cpp would read a rope.scaling.factor key as *linear* scaling.
  return [
    str('general.architecture', arch),
    str('general.name', shape.displayName),
    str('general.description', `pocketllm synth --shape ${shape.name} --type ${fileType.name.toLowerCase()} --seed ${seed}: random weights, not a trained model`),
    u32('general.file_type', fileType.ftype),
    u32('general.quantization_version', QUANTIZATION_VERSION),
    u32(`${arch}.context_length`, shape.contextLength),
    u32(`${arch}.embedding_length`, shape.embeddingLength),
    u32(`${arch}.block_count`, shape.blockCount),
    u32(`${arch}.feed_forward_length`, shape.feedForwardLength),
    u32(`${arch}.attention.head_count`, shape.headCount),
    u32(`${arch}.attention.head_count_kv`, shape.headCountKV),
    f32(`${arch}.rope.freq_base`, shape.ropeFreqBase),
    f32(`${arch}.attention.layer_norm_rms_epsilon`, shape.rmsNormEps),
    u32(`${arch}.rope.dimension_count`, shapeHeadDim(shape)),
    u32(`${arch}.vocab_size`, shape.vocabSize),
  ];
}

/**
 * The header of the all-F32 model of this shape, as `pocketllm quantize` would read it; only names,
 * shapes, types and metadata matter to the type rules.
 */
function f32ModelHeader(shape: ModelShape, specs: readonly TensorSpec[], kv: readonly GGUFKV[]): GGUFFile {
  const tensors: GGUFTensorInfo[] = specs.map((s) => {
    const elementCount = s.shape.reduce((a, b) => a * b, 1);
    return { name: s.name, shape: s.shape, type: GGMLType.F32, relativeOffset: 0, offset: 0, elementCount, byteSize: 4 * elementCount };
  });
  return {
    version: 3,
    kv,
    metadata: new Map(kv.map((e) => [e.key, e])),
    tensors,
    tensorsByName: new Map(tensors.map((t) => [t.name, t])),
    alignment: GGUF_DEFAULT_ALIGNMENT,
    headerEnd: 0,
    dataOffset: 0,
    fileSize: 0,
    source: `synthetic ${shape.name}`,
  };
}

/** "blk.3.ffn_down.weight" -> "blk.*.ffn_down.weight", to group notes over layers. */
function tensorFamily(name: string): string {
  return name.replace(/^blk\.\d+\./, 'blk.*.');
}

/** Plans the file: metadata, tensors with their types, sizes. Writes nothing. */
export function planSynth(req: SynthRequest): SynthPlan {
  if (!Number.isInteger(req.seed) || req.seed < 0 || req.seed > 0xffffffff) throw new SynthError(`seed ${req.seed} is not an integer in 0..4294967295`);
  if (req.vocab.tokenCount !== req.shape.vocabSize) {
    throw new SynthError(`vocabulary has ${req.vocab.tokenCount} tokens but shape ${req.shape.name} needs ${req.shape.vocabSize}`);
  }
  const specs = tensorSpecs(req.shape);
  const modelKV = modelMetadata(req.shape, req.fileType, req.seed);
  const typing = planQuantization(f32ModelHeader(req.shape, specs, modelKV), req.fileType);
  const byName = new Map(typing.tensors.map((t) => [t.info.name, t]));
  const defaultType = req.fileType.defaultType;
  const tensors: PlannedTensor[] = specs.map((s) => {
    const p = byName.get(s.name)!;
    const planned: PlannedTensor = { ...s, type: p.to, byteSize: rowBytes(p.to, s.shape[0]!) * (elementCount(s) / s.shape[0]!) };
    if (s.shape.length < 2 || p.to === defaultType) return planned;
    const reason = p.fallback
      ? `${p.fallback.reason}: ${typeName(p.to)}, as llama.cpp falls back`
      : `${typeName(p.to)} by llama.cpp's ${req.fileType.name} rules`;
    return { ...planned, reason };
  });
  const kv = [...modelKV, ...req.vocab.entries];
  const headerBytes = buildGGUFHeader(kv, tensors).length;
  let dataBytes = 0;
  for (const t of tensors) dataBytes += alignUp(t.byteSize, GGUF_DEFAULT_ALIGNMENT);

  const notes = new Map<string, number>();
  for (const t of tensors) {
    if (!t.reason) continue;
    const key = `${tensorFamily(t.name)}: ${t.reason}`;
    notes.set(key, (notes.get(key) ?? 0) + 1);
  }
  return {
    request: req,
    kv,
    tensors,
    weights: chooseWeightSource(req, tensors),
    headerBytes,
    fileBytes: headerBytes + dataBytes,
    notes: [...notes].map(([note, n]) => (n > 1 ? `${note} (${n} tensors)` : note)),
  };
}

function chooseWeightSource(req: SynthRequest, tensors: readonly PlannedTensor[]): WeightSource {
  const mode = req.weights ?? 'auto';
  if (mode !== 'auto') return mode;
  const weights = tensors.filter((t) => isQuantized(t.type)).reduce((a, t) => a + elementCount(t), 0);
  return weights <= REFERENCE_QUANT_MAX_WEIGHTS ? 'reference' : 'direct';
}

function elementCount(t: { readonly shape: readonly number[] }): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** The tensors of a plan, each producing its bytes lazily, row by row, from its own random stream. */
export function synthTensors(plan: SynthPlan): TensorToWrite[] {
  const { seed } = plan.request;
  return plan.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    type: t.type,
    data: () => tensorChunks(t, Rng.forName(seed, t.name), plan),
  }));
}

function* tensorChunks(t: PlannedTensor, rng: Rng, plan: SynthPlan): Generator<Uint8Array> {
  if (t.role === 'rope_freqs') {
    // Not random: the Llama 3 frequency factors, as the converter computes them.
    const factors = llama3RopeFreqFactors(shapeHParams(plan.request.shape))!;
    yield new Uint8Array(factors.buffer, factors.byteOffset, factors.byteLength);
    return;
  }
  const ncols = t.shape[0]!;
  const nrows = elementCount(t) / ncols;
  const bytesPerRow = rowBytes(t.type, ncols);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / bytesPerRow));
  const mean = t.role === 'norm' ? 1 : 0;
  const std = t.role === 'norm' ? NORM_STD : t.role === 'bias' ? BIAS_STD : MATRIX_STD;
  const direct = isQuantized(t.type) && plan.weights === 'direct';
  if (direct && !DIRECT_BLOCK_TYPES.has(t.type)) throw new SynthError(`cannot draw ${typeName(t.type)} blocks directly`);
  const row = new Float32Array(ncols);
  for (let r0 = 0; r0 < nrows; r0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, nrows - r0);
    const chunk = new Uint8Array(rows * bytesPerRow);
    for (let r = 0; r < rows; r++) {
      const dst = chunk.subarray(r * bytesPerRow, (r + 1) * bytesPerRow);
      if (direct) {
        fillRandomBlocks(t.type, rng, dst, std);
      } else {
        rng.fillNormal(row, mean, std);
        quantizeRow(t.type, row, dst);
      }
    }
    yield chunk;
  }
}

/** Writes the planned file to `sink` (and closes it). Returns the bytes written. */
export async function writeSynth(plan: SynthPlan, sink: ByteSink, onTensor?: (done: number, total: number, name: string) => void): Promise<number> {
  try {
    return await writeGGUF(sink, plan.kv, synthTensors(plan), onTensor ? { onTensor } : {});
  } finally {
    await sink.close();
  }
}

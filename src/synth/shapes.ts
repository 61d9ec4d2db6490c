// The shapes of real models (hyperparameters as published in each model's config.json and as
// llama.cpp writes them into GGUF), plus two tiny shapes for tests, that `pocketllm synth` fills with
// random weights.
import type { HParams } from '../model/hparams.js';

export interface ModelShape {
  /** Name used on the command line. */
  readonly name: string;
  readonly architecture: 'llama' | 'qwen2';
  /** general.name written into the file. */
  readonly displayName: string;
  /** Where the numbers come from. */
  readonly source: string;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly feedForwardLength: number;
  readonly headCount: number;
  readonly headCountKV: number;
  readonly ropeFreqBase: number;
  readonly rmsNormEps: number;
  /** True when the model has no output.weight and reuses token_embd.weight. */
  readonly tiedEmbeddings: boolean;
  /** Qwen2's biases on the q, k and v projections. */
  readonly qkvBias: boolean;
  /** Llama 3.1/3.2 frequency-dependent RoPE scaling. */
  readonly ropeLlama3?: {
    readonly factor: number;
    readonly lowFreqFactor: number;
    readonly highFreqFactor: number;
    readonly originalContextLength: number;
  };
}

const SHAPE_LIST: readonly ModelShape[] = [
  {
    // Every matrix row is 256 or 512 wide, so all types, k-quants included, apply without fallback.
    // 1.4M weights: 5.8 MB at F32, about 0.9 MB at Q4_K_M.
    name: 'tiny-llama',
    architecture: 'llama',
    displayName: 'tiny-llama (synthetic)',
    source: 'made up for tests: 2 blocks, GQA 8/4, rows of 256 and 512',
    vocabSize: 512,
    contextLength: 512,
    embeddingLength: 256,
    blockCount: 2,
    feedForwardLength: 512,
    headCount: 8,
    headCountKV: 4,
    ropeFreqBase: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    qkvBias: false,
  },
  {
    name: 'tiny-qwen2',
    architecture: 'qwen2',
    displayName: 'tiny-qwen2 (synthetic)',
    source: 'made up for tests: 2 blocks, GQA 4/2, q/k/v biases, tied embeddings, rows of 256 and 512',
    vocabSize: 512,
    contextLength: 1024,
    embeddingLength: 256,
    blockCount: 2,
    feedForwardLength: 512,
    headCount: 4,
    headCountKV: 2,
    ropeFreqBase: 1000000,
    rmsNormEps: 1e-6,
    tiedEmbeddings: true,
    qkvBias: true,
  },
  {
    // llama.cpp's stories260K.gguf has no rope.freq_base key (default 10000) and stores output.weight.
    name: 'stories260k',
    architecture: 'llama',
    displayName: 'stories260K',
    source: 'karpathy/tinyllamas stories260K as converted by llama.cpp (ggml-org/models tinyllamas/stories260K.gguf)',
    vocabSize: 512,
    contextLength: 2048,
    embeddingLength: 64,
    blockCount: 5,
    feedForwardLength: 172,
    headCount: 8,
    headCountKV: 4,
    ropeFreqBase: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    qkvBias: false,
  },
  {
    name: 'smollm2-135m',
    architecture: 'llama',
    displayName: 'SmolLM2 135M',
    source: 'HuggingFaceTB/SmolLM2-135M config.json',
    vocabSize: 49152,
    contextLength: 8192,
    embeddingLength: 576,
    blockCount: 30,
    feedForwardLength: 1536,
    headCount: 9,
    headCountKV: 3,
    ropeFreqBase: 100000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: true,
    qkvBias: false,
  },
  {
    name: 'qwen2.5-0.5b',
    architecture: 'qwen2',
    displayName: 'Qwen2.5 0.5B',
    source: 'Qwen/Qwen2.5-0.5B config.json',
    vocabSize: 151936,
    contextLength: 32768,
    embeddingLength: 896,
    blockCount: 24,
    feedForwardLength: 4864,
    headCount: 14,
    headCountKV: 2,
    ropeFreqBase: 1000000,
    rmsNormEps: 1e-6,
    tiedEmbeddings: true,
    qkvBias: true,
  },
  {
    name: 'tinyllama-1.1b',
    architecture: 'llama',
    displayName: 'TinyLlama 1.1B',
    source: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json',
    vocabSize: 32000,
    contextLength: 2048,
    embeddingLength: 2048,
    blockCount: 22,
    feedForwardLength: 5632,
    headCount: 32,
    headCountKV: 4,
    ropeFreqBase: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    qkvBias: false,
  },
  {
    name: 'llama-3.2-1b',
    architecture: 'llama',
    displayName: 'Llama 3.2 1B',
    source: 'meta-llama/Llama-3.2-1B config.json',
    vocabSize: 128256,
    contextLength: 131072,
    embeddingLength: 2048,
    blockCount: 16,
    feedForwardLength: 8192,
    headCount: 32,
    headCountKV: 8,
    ropeFreqBase: 500000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: true,
    qkvBias: false,
    ropeLlama3: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 },
  },
  {
    name: 'llama-2-7b',
    architecture: 'llama',
    displayName: 'LLaMA v2 7B',
    source: 'meta-llama/Llama-2-7b-hf config.json',
    vocabSize: 32000,
    contextLength: 4096,
    embeddingLength: 4096,
    blockCount: 32,
    feedForwardLength: 11008,
    headCount: 32,
    headCountKV: 32,
    ropeFreqBase: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    qkvBias: false,
  },
];

export const SHAPES: ReadonlyMap<string, ModelShape> = new Map(SHAPE_LIST.map((s) => [s.name, s]));

/** The shape called `name` (case-insensitive), or undefined. */
export function findShape(name: string): ModelShape | undefined {
  return SHAPES.get(name.toLowerCase());
}

/** Width of one attention head. */
export function shapeHeadDim(shape: ModelShape): number {
  return shape.embeddingLength / shape.headCount;
}

/** The hyperparameters a runtime should read back from a file of this shape. */
export function shapeHParams(shape: ModelShape): HParams {
  const headDim = shapeHeadDim(shape);
  return {
    architecture: shape.architecture,
    name: shape.displayName,
    vocabSize: shape.vocabSize,
    trainContextLength: shape.contextLength,
    embeddingLength: shape.embeddingLength,
    blockCount: shape.blockCount,
    feedForwardLength: shape.feedForwardLength,
    headCount: shape.headCount,
    headCountKV: shape.headCountKV,
    headDim,
    ropeDims: headDim,
    ropeStyle: shape.architecture === 'qwen2' ? 'neox' : 'norm',
    ropeFreqBase: shape.ropeFreqBase,
    ropeFreqScale: 1,
    ropeLlama3: shape.ropeLlama3,
    rmsNormEps: shape.rmsNormEps,
    tiedEmbeddings: shape.tiedEmbeddings,
  };
}

/** Number of weights of a shape (every tensor, norms and biases included). */
export function shapeParameterCount(shape: ModelShape): number {
  const e = shape.embeddingLength;
  const kv = shape.headCountKV * shapeHeadDim(shape);
  const perBlock = e * (e + kv + kv + e) + 3 * e * shape.feedForwardLength + 2 * e + (shape.qkvBias ? e + 2 * kv : 0);
  const embeddings = e * shape.vocabSize * (shape.tiedEmbeddings ? 1 : 2);
  return perBlock * shape.blockCount + embeddings + e;
}

// Hyperparameters of a model, read from GGUF metadata under the architecture's prefix
// (e.g. "llama.embedding_length"), with llama.cpp's defaults where a key is optional.
import { metaNumber, metaString, metaStringArray, requireNumber, requireString } from '../gguf/metadata.js';
import type { GGUFFile } from '../gguf/types.js';
import { globalTensorName } from './tensor-names.js';

export const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export class UnsupportedModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedModelError';
  }
}

export type RopeStyle = 'norm' | 'neox';

/** Llama 3's frequency-dependent rope scaling (applied to the rotation frequencies). */
export interface Llama3RopeScaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalContextLength: number;
}

export interface HParams {
  readonly architecture: Architecture;
  readonly name: string;
  readonly vocabSize: number;
  /** Context length the model was trained with. */
  readonly trainContextLength: number;
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly feedForwardLength: number;
  readonly headCount: number;
  readonly headCountKV: number;
  /** Width of one attention head (key and value). */
  readonly headDim: number;
  /** Leading dimensions of each head that RoPE rotates. */
  readonly ropeDims: number;
  readonly ropeStyle: RopeStyle;
  readonly ropeFreqBase: number;
  /** Multiplies positions (1 / linear scaling factor). */
  readonly ropeFreqScale: number;
  readonly ropeLlama3: Llama3RopeScaling | undefined;
  readonly rmsNormEps: number;
  /** True when there is no output.weight and the embedding matrix doubles as the output projection. */
  readonly tiedEmbeddings: boolean;
}

/** Reads and checks the hyperparameters; throws UnsupportedModelError for an architecture we lack. */
export function readHParams(file: GGUFFile): HParams {
  const architecture = requireString(file, 'general.architecture');
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw new UnsupportedModelError(`unsupported architecture "${architecture}" (pocketllm runs: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
  const arch = architecture as Architecture;
  const key = (k: string): string => `${arch}.${k}`;
  const embeddingLength = requireNumber(file, key('embedding_length'));
  const headCount = requireNumber(file, key('attention.head_count'));
  const headCountKV = metaNumber(file, key('attention.head_count_kv'), headCount);
  const headDim = metaNumber(file, key('attention.key_length'), embeddingLength / headCount);
  const valueDim = metaNumber(file, key('attention.value_length'), headDim);
  const tokens = metaStringArray(file, 'tokenizer.ggml.tokens');
  const vocabSize = metaNumber(file, key('vocab_size'), tokens?.length ?? 0);
  const scalingType = metaString(file, key('rope.scaling.type'));
  const scalingFactor = metaNumber(file, key('rope.scaling.factor'), 1);

  const hp: HParams = {
    architecture: arch,
    name: metaString(file, 'general.name') ?? arch,
    vocabSize,
    trainContextLength: requireNumber(file, key('context_length')),
    embeddingLength,
    blockCount: requireNumber(file, key('block_count')),
    feedForwardLength: requireNumber(file, key('feed_forward_length')),
    headCount,
    headCountKV,
    headDim,
    ropeDims: metaNumber(file, key('rope.dimension_count'), headDim),
    ropeStyle: arch === 'qwen2' ? 'neox' : 'norm',
    ropeFreqBase: metaNumber(file, key('rope.freq_base'), 10000),
    ropeFreqScale: scalingType === 'linear' && scalingFactor > 0 ? 1 / scalingFactor : 1,
    ropeLlama3:
      scalingType === 'llama3' || (scalingType === undefined && file.metadata.has(key('rope.scaling.low_freq_factor')))
        ? {
            factor: scalingFactor,
            lowFreqFactor: metaNumber(file, key('rope.scaling.low_freq_factor'), 1),
            highFreqFactor: metaNumber(file, key('rope.scaling.high_freq_factor'), 4),
            originalContextLength: metaNumber(file, key('rope.scaling.original_context_length'), 8192),
          }
        : undefined,
    rmsNormEps: metaNumber(file, key('attention.layer_norm_rms_epsilon'), 1e-5),
    tiedEmbeddings: !file.tensorsByName.has(globalTensorName('output')),
  };
  const problems: string[] = [];
  if (!(hp.vocabSize > 0)) problems.push('vocabulary size is unknown (no tokenizer.ggml.tokens and no vocab_size)');
  if (hp.headCount <= 0 || hp.headCountKV <= 0 || hp.headCount % hp.headCountKV !== 0) {
    problems.push(`head counts ${hp.headCount}/${hp.headCountKV} are not a valid grouped-query layout`);
  }
  if (valueDim !== headDim) problems.push(`key and value head widths differ (${headDim} vs ${valueDim})`);
  if (!Number.isInteger(headDim) || headDim <= 0) problems.push(`head width ${headDim} is not a positive integer`);
  if (hp.ropeDims > headDim || hp.ropeDims % 2 !== 0) problems.push(`rope dimension count ${hp.ropeDims} does not fit heads of ${headDim}`);
  if (hp.blockCount <= 0) problems.push(`block count ${hp.blockCount}`);
  if (problems.length) throw new UnsupportedModelError(`${file.source}: ${problems.join('; ')}`);
  return hp;
}

/**
 * Per-pair divisors of the rotation frequency for Llama 3 scaling, as llama.cpp's converter writes
 * into rope_freqs.weight: long wavelengths are slowed by `factor`, short ones kept, a smooth blend
 * in between.
 */
export function llama3RopeFreqFactors(hp: HParams): Float32Array | undefined {
  const s = hp.ropeLlama3;
  if (!s) return undefined;
  const n = hp.ropeDims / 2;
  const out = new Float32Array(n);
  const lowWavelen = s.originalContextLength / s.lowFreqFactor;
  const highWavelen = s.originalContextLength / s.highFreqFactor;
  for (let i = 0; i < n; i++) {
    const freq = 1 / Math.pow(hp.ropeFreqBase, (2 * i) / hp.ropeDims);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContextLength / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

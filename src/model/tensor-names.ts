// GGUF tensor names, built in one place: a kind from the table below plus an optional layer index and
// suffix, e.g. tensorName('attnQ', 3) === 'blk.3.attn_q.weight'. Nothing else spells these strings.

const GLOBAL_TENSORS = {
  tokenEmbd: 'token_embd',
  outputNorm: 'output_norm',
  output: 'output',
  ropeFreqs: 'rope_freqs',
} as const;

const LAYER_TENSORS = {
  attnNorm: 'attn_norm',
  attnQ: 'attn_q',
  attnK: 'attn_k',
  attnV: 'attn_v',
  attnOutput: 'attn_output',
  ffnNorm: 'ffn_norm',
  ffnGate: 'ffn_gate',
  ffnUp: 'ffn_up',
  ffnDown: 'ffn_down',
} as const;

export type GlobalTensorKind = keyof typeof GLOBAL_TENSORS;
export type LayerTensorKind = keyof typeof LAYER_TENSORS;
export type TensorSuffix = 'weight' | 'bias';

export function globalTensorName(kind: GlobalTensorKind, suffix: TensorSuffix = 'weight'): string {
  return `${GLOBAL_TENSORS[kind]}.${suffix}`;
}

export function layerTensorName(kind: LayerTensorKind, layer: number, suffix: TensorSuffix = 'weight'): string {
  return `blk.${layer}.${LAYER_TENSORS[kind]}.${suffix}`;
}

export const LAYER_TENSOR_KINDS = Object.keys(LAYER_TENSORS) as LayerTensorKind[];

// Whole-model quantization with llama.cpp's llama-quantize rules (default options, no importance
// matrix): which tensors are quantized, to which type (the per-file-type mixtures of
// llama_tensor_get_type, the output/embedding rule, the fallbacks for rows a type cannot hold), the
// tensor order (by layer, then name), and the metadata (input keys in order, then
// general.quantization_version and general.file_type). Tensors are streamed one at a time: read,
// dequantized to f32 when they change type, quantized, written.
import type { ByteSink, TensorToWrite, WriteGGUFOptions } from '../gguf/writer.js';
import { writeGGUF } from '../gguf/writer.js';
import { GGUFValueType } from '../gguf/types.js';
import type { GGUFFile, GGUFKV, GGUFTensorInfo } from '../gguf/types.js';
import type { Storage } from '../storage/storage.js';
import { canDequantize, dequantizeRow } from './dequantize.js';
import { GGMLType, typeTraits } from './formats.js';
import { canQuantize, quantizeRow } from './quantize.js';

/** GGML_QNT_VERSION: the quantization format version llama.cpp stamps on every file it writes. */
export const QUANTIZATION_VERSION = 2;

/** A target file type: llama.cpp's llama_ftype value and the tensor type most matrices get. */
export interface FileType {
  readonly name: string;
  readonly ftype: number;
  readonly defaultType: GGMLType;
}

/** The file types `pocketllm quantize` can write (llama_ftype values from llama.h). */
export const FILE_TYPES: readonly FileType[] = [
  { name: 'F32', ftype: 0, defaultType: GGMLType.F32 },
  { name: 'F16', ftype: 1, defaultType: GGMLType.F16 },
  { name: 'Q4_0', ftype: 2, defaultType: GGMLType.Q4_0 },
  { name: 'Q4_1', ftype: 3, defaultType: GGMLType.Q4_1 },
  { name: 'Q8_0', ftype: 7, defaultType: GGMLType.Q8_0 },
  { name: 'Q5_0', ftype: 8, defaultType: GGMLType.Q5_0 },
  { name: 'Q5_1', ftype: 9, defaultType: GGMLType.Q5_1 },
  { name: 'Q2_K', ftype: 10, defaultType: GGMLType.Q2_K },
  { name: 'Q3_K_S', ftype: 11, defaultType: GGMLType.Q3_K },
  { name: 'Q3_K_M', ftype: 12, defaultType: GGMLType.Q3_K },
  { name: 'Q3_K_L', ftype: 13, defaultType: GGMLType.Q3_K },
  { name: 'Q4_K_S', ftype: 14, defaultType: GGMLType.Q4_K },
  { name: 'Q4_K_M', ftype: 15, defaultType: GGMLType.Q4_K },
  { name: 'Q5_K_S', ftype: 16, defaultType: GGMLType.Q5_K },
  { name: 'Q5_K_M', ftype: 17, defaultType: GGMLType.Q5_K },
  { name: 'Q6_K', ftype: 18, defaultType: GGMLType.Q6_K },
  { name: 'BF16', ftype: 32, defaultType: GGMLType.BF16 },
];

/** Short names llama-quantize also accepts, mapped to the mixture they mean. */
const FILE_TYPE_ALIASES: Readonly<Record<string, string>> = { Q3_K: 'Q3_K_M', Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M' };

/** The file type named `name` (case-insensitive, e.g. "q4_k" = Q4_K_M), or undefined. */
export function parseFileType(name: string): FileType | undefined {
  const upper = name.toUpperCase();
  const canonical = FILE_TYPE_ALIASES[upper] ?? upper;
  return FILE_TYPES.find((t) => t.name === canonical);
}

/** Why a tensor did not get the type the mixture chose for it. */
export interface Fallback {
  readonly wanted: GGMLType;
  readonly reason: string;
}

/** What happens to one tensor. */
export interface TensorPlan {
  readonly info: GGUFTensorInfo;
  /** Shape as written: trailing dimensions of 1 dropped, as ggml_n_dims does. */
  readonly shape: readonly number[];
  readonly from: GGMLType;
  readonly to: GGMLType;
  readonly fallback?: Fallback;
}

export interface QuantizePlan {
  readonly fileType: FileType;
  readonly kv: readonly GGUFKV[];
  /** In output order. */
  readonly tensors: readonly TensorPlan[];
}

/** The hyperparameters the type mixture looks at. */
interface MixtureFacts {
  readonly arch: string;
  readonly nLayer: number;
  readonly nExpert: number;
  readonly nGqa: number;
  readonly is70B: boolean;
  readonly hasTiedEmbeddings: boolean;
  readonly nAttentionV: number;
}

/** Counters llama.cpp advances as it walks the tensors in output order. */
interface MixtureCounters {
  iAttentionV: number;
  iFfnDown: number;
}

type Category = 'token_embd' | 'attn_q' | 'attn_k' | 'attn_v' | 'attn_qkv' | 'attn_kv_b' | 'attn_output' | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'output' | 'other';

function categoryOf(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  const byPart: [string, Category][] = [
    ['attn_qkv.weight', 'attn_qkv'],
    ['attn_kv_b.weight', 'attn_kv_b'],
    ['attn_v.weight', 'attn_v'],
    ['attn_k.weight', 'attn_k'],
    ['attn_q.weight', 'attn_q'],
    ['attn_output.weight', 'attn_output'],
    ['ffn_up', 'ffn_up'],
    ['ffn_gate', 'ffn_gate'],
    ['ffn_down', 'ffn_down'],
  ];
  for (const [part, cat] of byPart) if (name.includes(part)) return cat;
  return 'other';
}

const isAttnVLike = (c: Category): boolean => c === 'attn_v' || c === 'attn_qkv' || c === 'attn_kv_b';

/** Name parts of tensors llama.cpp never quantizes (small, sensitive or not really weights). */
const NEVER_QUANTIZED = [
  '_norm.weight',
  'ffn_gate_inp.weight',
  'ffn_gate_tid2eid.weight',
  'altup',
  'laurel',
  'per_layer_model_proj',
  'ssm_conv1d',
  'shortconv.conv.weight',
  'indexer.k_proj.weight',
  'indexer.q_proj.weight',
  'time_mix_first.weight',
  'time_mix_w0.weight',
  'time_mix_w1.weight',
  'time_mix_w2.weight',
  'time_mix_v0.weight',
  'time_mix_v1.weight',
  'time_mix_v2.weight',
  'time_mix_a0.weight',
  'time_mix_a1.weight',
  'time_mix_a2.weight',
  'time_mix_g1.weight',
  'time_mix_g2.weight',
  'time_mix_decay_w1.weight',
  'time_mix_decay_w2.weight',
  'time_mix_lerp_fused.weight',
  'attn_rel_b.weight',
  '.position_embd',
  'sam.pos_embd',
  'sam.neck.',
  'sam.net_',
  '.rel_pos',
  '.patch_embd',
  '.patch_merger',
  'a.rvq.codebook',
  'mm.a.code_embd',
];

/** tensor_allows_quantization: 2-D and larger weights, minus norms and the exceptions above. */
function allowsQuantization(name: string, nDims: number): boolean {
  if (nDims < 2) return false;
  if (!name.endsWith('weight')) return false;
  if (name === 'position_embd.weight' || name === 'token_types.weight') return false;
  return !NEVER_QUANTIZED.some((part) => name.includes(part));
}

/** The layer index llama.cpp's sscanf("blk.%d.") finds in a name, or -1. */
function layerOf(name: string): number {
  const m = /^blk\.\s*([+-]?\d+)/.exec(name);
  return m ? Number.parseInt(m[1]!, 10) : -1;
}

/** llama_model_loader's weight order: by layer (non-layer tensors first), then by name bytes. */
function compareTensorNames(a: string, b: string): number {
  const la = layerOf(a);
  const lb = layerOf(b);
  if (la !== lb) return la - lb;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const useMoreBits = (i: number, n: number): boolean => i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

/** llama_tensor_get_type_impl for the file types in FILE_TYPES (before the shape fallback). */
function mixtureType(ft: FileType, t: GGMLType, tensor: GGUFTensorInfo, cat: Category, facts: MixtureFacts, counters: MixtureCounters): GGMLType {
  const name = tensor.name;
  const ftn = ft.name;
  const layerInfo = (i: number, n: number): [number, number] => {
    if (facts.nExpert > 1) {
      const layer = /^blk\.(\d+)\./.exec(name);
      if (!layer) throw new Error(`cannot find the layer of tensor ${name}`);
      return [Number(layer[1]), n];
    }
    return [i, n];
  };
  if (cat === 'output' || (facts.hasTiedEmbeddings && cat === 'token_embd')) {
    const nx = tensor.shape[0]!;
    if (facts.arch === 'falcon' || nx % typeTraits(t)!.blockSize !== 0) return GGMLType.Q8_0;
    return t !== GGMLType.Q8_0 ? GGMLType.Q6_K : t;
  }
  if (cat === 'token_embd') return t;
  if (isAttnVLike(cat)) {
    if (ftn === 'Q2_K') t = facts.nGqa >= 4 ? GGMLType.Q4_K : GGMLType.Q3_K;
    else if (ftn === 'Q3_K_M') t = counters.iAttentionV < 2 ? GGMLType.Q5_K : GGMLType.Q4_K;
    else if (ftn === 'Q3_K_L') t = GGMLType.Q5_K;
    else if ((ftn === 'Q4_K_M' || ftn === 'Q5_K_M') && useMoreBits(counters.iAttentionV, facts.nAttentionV)) t = GGMLType.Q6_K;
    else if (ftn === 'Q4_K_S' && counters.iAttentionV < 4) t = GGMLType.Q5_K;
    if (facts.is70B && (t === GGMLType.Q3_K || t === GGMLType.Q4_K)) t = GGMLType.Q5_K;
    if (facts.nExpert === 8) t = GGMLType.Q8_0;
    counters.iAttentionV++;
    return t;
  }
  if (cat === 'attn_k') return facts.nExpert === 8 ? GGMLType.Q8_0 : t;
  if (cat === 'ffn_down') {
    const [iLayer, nLayer] = layerInfo(counters.iFfnDown, facts.nLayer);
    if (ftn === 'Q2_K') t = GGMLType.Q3_K;
    else if (ftn === 'Q3_K_M') {
      t = iLayer < Math.trunc(nLayer / 16) ? GGMLType.Q5_K : facts.arch !== 'falcon' || useMoreBits(iLayer, nLayer) ? GGMLType.Q4_K : GGMLType.Q3_K;
    } else if (ftn === 'Q3_K_L') t = facts.arch === 'falcon' ? GGMLType.Q4_K : GGMLType.Q5_K;
    else if (ftn === 'Q4_K_M') {
      if (facts.arch === 'falcon') {
        t = iLayer < Math.trunc(nLayer / 16) ? GGMLType.Q6_K : useMoreBits(iLayer, nLayer) ? GGMLType.Q5_K : GGMLType.Q4_K;
      } else if (useMoreBits(iLayer, nLayer)) t = GGMLType.Q6_K;
    } else if (ftn === 'Q5_K_M' && useMoreBits(iLayer, nLayer)) t = GGMLType.Q6_K;
    else if (ftn === 'Q4_K_S' && facts.arch !== 'falcon' && iLayer < Math.trunc(nLayer / 8)) t = GGMLType.Q5_K;
    counters.iFfnDown++;
    return t;
  }
  if (cat === 'attn_output') {
    if (facts.arch !== 'falcon') {
      if (facts.nExpert === 8) {
        if (['Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q4_K_S', 'Q4_K_M'].includes(ftn)) t = GGMLType.Q5_K;
      } else if (ftn === 'Q2_K') t = GGMLType.Q3_K;
      else if (ftn === 'Q3_K_M') t = GGMLType.Q4_K;
      else if (ftn === 'Q3_K_L') t = GGMLType.Q5_K;
    } else if (ftn === 'Q3_K_L') t = GGMLType.Q4_K;
    return t;
  }
  // llama.cpp's own attn_qkv branch is never reached: attn_qkv counts as attn_v-like above.
  return t;
}

/**
 * tensor_type_fallback: a k-quant whose 256-block does not divide the row falls back to a 32-block
 * type (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0); anything that still does not fit,
 * and a 32-block type on a row that is not a multiple of 32, becomes F16.
 */
function shapeFallback(tensor: GGUFTensorInfo, wanted: GGMLType): { type: GGMLType; fallback?: Fallback } {
  const ncols = tensor.shape[0]!;
  const block = typeTraits(wanted)!.blockSize;
  if (ncols % block === 0) return { type: wanted };
  const lower: Partial<Record<GGMLType, GGMLType>> = {
    [GGMLType.Q2_K]: GGMLType.Q4_0,
    [GGMLType.Q3_K]: GGMLType.Q4_0,
    [GGMLType.Q4_K]: GGMLType.Q5_0,
    [GGMLType.Q5_K]: GGMLType.Q5_1,
    [GGMLType.Q6_K]: GGMLType.Q8_0,
  };
  let type = lower[wanted] ?? GGMLType.F16;
  if (ncols % typeTraits(type)!.blockSize !== 0) type = GGMLType.F16;
  const reason = `${ncols} columns are not a multiple of ${GGMLType[wanted]}'s block of ${block}`;
  return { type, fallback: { wanted, reason } };
}

function numberOrFirst(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object' && 'items' in v) {
    const items = (v as { items: ArrayLike<unknown> }).items;
    const first = items.length > 0 ? items[0] : undefined;
    return typeof first === 'number' ? first : typeof first === 'bigint' ? Number(first) : undefined;
  }
  return undefined;
}

function mixtureFacts(file: GGUFFile, sorted: readonly GGUFTensorInfo[]): MixtureFacts {
  const meta = (key: string): unknown => file.metadata.get(key)?.value;
  const archValue = meta('general.architecture');
  const arch = typeof archValue === 'string' ? archValue : '';
  const maxLayer = sorted.reduce((m, t) => Math.max(m, layerOf(t.name)), -1);
  const nLayer = numberOrFirst(meta(`${arch}.block_count`)) ?? maxLayer + 1;
  const nHead = numberOrFirst(meta(`${arch}.attention.head_count`)) ?? 0;
  const nHeadKv = numberOrFirst(meta(`${arch}.attention.head_count_kv`)) ?? nHead;
  return {
    arch,
    nLayer,
    nExpert: numberOrFirst(meta(`${arch}.expert_count`)) ?? 0,
    nGqa: nHeadKv > 0 ? Math.trunc(nHead / nHeadKv) : 0,
    is70B: arch === 'llama' && nLayer === 80 && nHead !== nHeadKv,
    hasTiedEmbeddings: !sorted.some((t) => t.name === 'output.weight'),
    nAttentionV: sorted.filter((t) => isAttnVLike(categoryOf(t.name))).length,
  };
}

/** Keys llama-quantize drops from the input (split bookkeeping) or rewrites at the end. */
const REPLACED_KEYS = new Set(['general.quantization_version', 'general.file_type', 'split.no', 'split.count', 'split.tensors.count']);

/** Decides every tensor's output type and the output metadata, without touching tensor data. */
export function planQuantization(file: GGUFFile, fileType: FileType): QuantizePlan {
  const splitCount = numberOrFirst(file.metadata.get('split.count')?.value);
  if (splitCount !== undefined && splitCount > 1) throw new Error(`${file.source}: is one part of a split model (${splitCount} parts); merge it first`);
  const sorted = [...file.tensors].sort((a, b) => compareTensorNames(a.name, b.name));
  const facts = mixtureFacts(file, sorted);
  const counters: MixtureCounters = { iAttentionV: 0, iFfnDown: 0 };
  const quantized = typeTraits(fileType.defaultType)!.blockSize > 1;
  const tensors = sorted.map((info): TensorPlan => {
    const shape = [...info.shape];
    while (shape.length > 1 && shape[shape.length - 1] === 1) shape.pop();
    if (!allowsQuantization(info.name, shape.length)) return { info, shape, from: info.type, to: info.type };
    if (!quantized) return { info, shape, from: info.type, to: fileType.defaultType };
    const wanted = mixtureType(fileType, fileType.defaultType, info, categoryOf(info.name), facts, counters);
    const { type, fallback } = shapeFallback(info, wanted);
    return fallback ? { info, shape, from: info.type, to: type, fallback } : { info, shape, from: info.type, to: type };
  });
  for (const t of tensors) {
    if (t.from === t.to) continue;
    const name = (x: GGMLType): string => typeTraits(x)?.name ?? `type ${x}`;
    if (!canDequantize(t.from)) throw new Error(`tensor ${t.info.name} is ${name(t.from)}, which pocketllm cannot dequantize to convert it to ${name(t.to)}`);
    if (!canQuantize(t.to)) throw new Error(`tensor ${t.info.name} would need type ${name(t.to)}, which pocketllm cannot write`);
  }
  const kv: GGUFKV[] = file.kv.filter((e) => !REPLACED_KEYS.has(e.key));
  kv.push({ key: 'general.quantization_version', type: GGUFValueType.UINT32, value: QUANTIZATION_VERSION });
  kv.push({ key: 'general.file_type', type: GGUFValueType.UINT32, value: fileType.ftype });
  return { fileType, kv, tensors };
}

/** Input bytes read per step while converting a tensor. */
const CHUNK_BYTES = 1 << 22;

function readError(storage: Storage, t: GGUFTensorInfo, at: number): Error {
  return new Error(`${storage.name}: tensor ${t.name} is cut short at byte ${at} (file is ${storage.size} bytes)`);
}

/** The bytes of one planned tensor, produced chunk by chunk from the input storage. */
function tensorSource(plan: TensorPlan, storage: Storage): TensorToWrite {
  const { info, from, to } = plan;
  const ncols = info.shape[0]!;
  const nrows = ncols > 0 ? info.elementCount / ncols : 0;
  const inRow = (ncols / typeTraits(from)!.blockSize) * typeTraits(from)!.blockBytes;
  const outRow = (ncols / typeTraits(to)!.blockSize) * typeTraits(to)!.blockBytes;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, inRow)));
  async function* copy(): AsyncGenerator<Uint8Array> {
    for (let off = 0; off < info.byteSize; off += CHUNK_BYTES) {
      const buf = new Uint8Array(Math.min(CHUNK_BYTES, info.byteSize - off));
      const n = await storage.read(info.offset + off, buf);
      if (n !== buf.length) throw readError(storage, info, info.offset + off + n);
      yield buf;
    }
  }
  async function* convert(): AsyncGenerator<Uint8Array> {
    const row = new Float32Array(ncols);
    for (let r0 = 0; r0 < nrows; r0 += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, nrows - r0);
      const input = new Uint8Array(rows * inRow);
      const n = await storage.read(info.offset + r0 * inRow, input);
      if (n !== input.length) throw readError(storage, info, info.offset + r0 * inRow + n);
      const output = new Uint8Array(rows * outRow);
      for (let r = 0; r < rows; r++) {
        dequantizeRow(from, input.subarray(r * inRow, (r + 1) * inRow), ncols, row);
        quantizeRow(to, row, output.subarray(r * outRow, (r + 1) * outRow));
      }
      yield output;
    }
  }
  return { name: info.name, shape: plan.shape, type: to, data: from === to ? copy : convert };
}

/** Writes the planned model to `sink`, reading tensors from `storage`. Returns the bytes written. */
export async function writeQuantizedModel(plan: QuantizePlan, storage: Storage, sink: ByteSink, options: Pick<WriteGGUFOptions, 'onTensor'> = {}): Promise<number> {
  const tensors = plan.tensors.map((t) => tensorSource(t, storage));
  return writeGGUF(sink, plan.kv, tensors, { version: 3, onTensor: options.onTensor });
}

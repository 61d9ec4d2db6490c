// GGUF data model: value types, key/value entries, tensor infos, the parsed file, the named caps on
// every size read from a file, and GGUFError with its codes.
import type { GGMLType } from '../quant/formats.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_SUPPORTED_VERSIONS: readonly number[] = [2, 3];
/** GGML_MAX_DIMS: tensors have at most four dimensions. */
export const GGUF_MAX_DIMS = 4;

export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Byte size of a fixed-size value type, or 0 for STRING and ARRAY. */
export function valueTypeSize(t: GGUFValueType): number {
  switch (t) {
    case GGUFValueType.UINT8:
    case GGUFValueType.INT8:
    case GGUFValueType.BOOL:
      return 1;
    case GGUFValueType.UINT16:
    case GGUFValueType.INT16:
      return 2;
    case GGUFValueType.UINT32:
    case GGUFValueType.INT32:
    case GGUFValueType.FLOAT32:
      return 4;
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64:
    case GGUFValueType.FLOAT64:
      return 8;
    case GGUFValueType.STRING:
    case GGUFValueType.ARRAY:
      return 0;
  }
}

export type GGUFNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

/**
 * An array value. Numeric items are a typed array of the matching kind (BOOL items are a Uint8Array
 * of 0/1), STRING items a string[], ARRAY items a GGUFArray[].
 */
export interface GGUFArray {
  readonly itemType: GGUFValueType;
  readonly items: GGUFNumericArray | readonly string[] | readonly GGUFArray[];
}

/** A scalar value: u8..u32, i8..i32, f32, f64 as number; u64/i64 as bigint; bool; string. */
export type GGUFScalar = number | bigint | boolean | string;
export type GGUFValue = GGUFScalar | GGUFArray;

export interface GGUFKV {
  readonly key: string;
  readonly type: GGUFValueType;
  readonly value: GGUFValue;
}

export interface GGUFTensorInfo {
  readonly name: string;
  /** Dimensions in GGML order: shape[0] is the row length (contiguous), shape[1] the row count... */
  readonly shape: readonly number[];
  readonly type: GGMLType;
  /** Offset of the data relative to the start of the data section, as stored in the file. */
  readonly relativeOffset: number;
  /** Absolute offset of the data in the file. */
  readonly offset: number;
  readonly elementCount: number;
  readonly byteSize: number;
}

export interface GGUFFile {
  readonly version: number;
  readonly kv: readonly GGUFKV[];
  readonly metadata: ReadonlyMap<string, GGUFKV>;
  readonly tensors: readonly GGUFTensorInfo[];
  readonly tensorsByName: ReadonlyMap<string, GGUFTensorInfo>;
  readonly alignment: number;
  /** Byte offset where the tensor infos end (before padding to the data section). */
  readonly headerEnd: number;
  /** Byte offset of the data section (headerEnd rounded up to the alignment). */
  readonly dataOffset: number;
  readonly fileSize: number;
  readonly source: string;
}

/** Upper bounds on every size taken from a file, checked before anything is allocated. */
export interface GGUFCaps {
  readonly maxKeyLength: number;
  readonly maxStringLength: number;
  readonly maxArrayLength: number;
  readonly maxArrayDepth: number;
  readonly maxKVCount: number;
  readonly maxTensorCount: number;
  readonly maxTensorNameLength: number;
  readonly maxTensorElements: number;
  /** Largest header (metadata + tensor infos) that will be read into memory. */
  readonly maxHeaderBytes: number;
}

export const GGUF_CAPS: GGUFCaps = {
  maxKeyLength: 1 << 16,
  maxStringLength: 1 << 26,
  maxArrayLength: 1 << 26,
  maxArrayDepth: 8,
  maxKVCount: 1 << 20,
  maxTensorCount: 1 << 20,
  maxTensorNameLength: 1 << 12,
  maxTensorElements: 2 ** 46,
  maxHeaderBytes: 1 << 30,
};

export type GGUFErrorCode =
  | 'BAD_MAGIC'
  | 'BIG_ENDIAN'
  | 'UNSUPPORTED_VERSION'
  | 'TRUNCATED'
  | 'CAP_EXCEEDED'
  | 'BAD_VALUE_TYPE'
  | 'BAD_VALUE'
  | 'DUPLICATE_KEY'
  | 'DUPLICATE_TENSOR'
  | 'BAD_ALIGNMENT'
  | 'UNKNOWN_TENSOR_TYPE'
  | 'BAD_TENSOR_SHAPE'
  | 'SIZE_OVERFLOW'
  | 'MISALIGNED_TENSOR'
  | 'DATA_PAST_EOF'
  | 'OVERLAPPING_TENSORS';

export class GGUFError extends Error {
  readonly code: GGUFErrorCode;
  /** Byte offset in the file where the problem was found, when there is one. */
  readonly offset: number | undefined;

  constructor(code: GGUFErrorCode, message: string, offset?: number, source?: string) {
    const where = offset === undefined ? '' : ` (at byte ${offset})`;
    super(`${source ? `${source}: ` : ''}${message}${where}`);
    this.name = 'GGUFError';
    this.code = code;
    this.offset = offset;
  }
}

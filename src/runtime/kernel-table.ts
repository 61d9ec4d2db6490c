// The one dispatch table from a weight type to its kernels: the activation format its dot product
// takes (llama.cpp's vec_dot_type), the export that converts f32 activations to that format, the
// matmul export, and the memory layout that matmul reads (packed at load, or the file's). The
// capability axis (scalar / simd / relaxed) is resolved by which kernel build is loaded
// (runtime/kernels.ts): every build exports the same names with the same layouts and results. The
// model graph looks kernels up here and nowhere else.
import { GGMLType, PACKED_LAYOUTS, TYPE_TRAITS, packedMatrixBytes, rowBytes } from '../quant/formats.js';
import type { PackedLayout } from '../quant/formats.js';
import { REPACK_NOT_FINITE } from './kernel-exports.js';
import type { KernelExports, MatmulKernel, RowConverter } from './kernel-exports.js';

type ConverterName = 'quantizeRowsQ8_0' | 'quantizeRowsQ8_1' | 'quantizeRowsQ8_K' | 'convertRowsF16' | 'convertRowsBF16';
type NormConverterName = 'rmsNormToQ8_0' | 'rmsNormToQ8_1' | 'rmsNormToQ8_K' | 'rmsNormToF16' | 'rmsNormToBF16';
/** The fused rmsNorm + conversion of each converter (same bits as rmsNorm, then the converter). */
const NORM_CONVERTERS: Readonly<Record<ConverterName, NormConverterName>> = {
  quantizeRowsQ8_0: 'rmsNormToQ8_0', quantizeRowsQ8_1: 'rmsNormToQ8_1', quantizeRowsQ8_K: 'rmsNormToQ8_K',
  convertRowsF16: 'rmsNormToF16', convertRowsBF16: 'rmsNormToBF16',
};
type MatmulName =
  | 'matmulF32' | 'matmulF16' | 'matmulBF16' | 'matmulQ4_0' | 'matmulQ4_1' | 'matmulQ5_0' | 'matmulQ5_1'
  | 'matmulQ8_0' | 'matmulQ2_K' | 'matmulQ3_K' | 'matmulQ4_K' | 'matmulQ5_K' | 'matmulQ6_K';

export interface MatmulEntry {
  readonly type: GGMLType;
  /** Format the activations must be in (F32: raw f32 rows, no conversion). */
  readonly activationType: GGMLType;
  /** Export converting f32 rows to activationType; null for F32. */
  readonly converterName: ConverterName | null;
  /** Export that rmsNorms f32 rows and converts them to activationType in one call; null for F32. */
  readonly normConverterName: NormConverterName | null;
  readonly matmulName: MatmulName;
  /** The packed layout the matmul reads (weights repacked at load), or null: the file layout. */
  readonly layout: PackedLayout | null;
  /**
   * Row ranges handed to the matmul should start (and, but at the last row, end) on multiples of
   * this: the rows of one packed group are computed together. Other ranges are correct, only slower.
   */
  readonly rowAlign: number;
  /** Bytes the weights of a rows x cols matrix take in memory in the layout the matmul reads. */
  matrixBytes(rows: number, cols: number): number;
  /**
   * Writes a rows x cols matrix from file layout at src into the packed layout at dst (matrixBytes);
   * src and dst must not overlap. Throws for a type whose matmul reads the file layout.
   */
  repack(k: KernelExports, src: number, dst: number, rows: number, cols: number): void;
  /** The converter bound to an instance's exports (throws for F32, which needs none). */
  convert(k: KernelExports): RowConverter;
  /** The matmul bound to an instance's exports. */
  matmul(k: KernelExports): MatmulKernel;
}

function entry(type: GGMLType, activationType: GGMLType, converterName: ConverterName | null, matmulName: MatmulName): MatmulEntry {
  const layout = PACKED_LAYOUTS.get(type) ?? null;
  return {
    type,
    activationType,
    converterName,
    normConverterName: converterName ? NORM_CONVERTERS[converterName] : null,
    matmulName,
    layout,
    rowAlign: layout ? layout.rows : 1,
    matrixBytes: (rows: number, cols: number): number => (layout ? packedMatrixBytes(type, rows, cols)! : rows * rowBytes(type, cols)),
    repack(k: KernelExports, src: number, dst: number, rows: number, cols: number): void {
      if (!layout) throw new Error(`${GGMLType[type]} weights are multiplied in their file layout; there is nothing to repack`);
      const rc = k.repackRows(type, src, dst, rows, cols);
      if (rc !== 0) {
        // F16x8's fast half-to-float conversion is exact for finite halves only, so repacking refuses
        // a matrix holding an infinity or NaN rather than computing with it wrongly.
        const why = rc === REPACK_NOT_FINITE ? `: it holds an infinity or NaN, and ${GGMLType[type]} weights must be finite` : '';
        throw new Error(`cannot repack a ${rows}x${cols} ${GGMLType[type]} matrix into ${layout.name}${why}`);
      }
    },
    convert(k: KernelExports): RowConverter {
      if (!converterName) throw new Error(`${GGMLType[type]} weights take f32 activation rows as they are; there is no converter`);
      return k[converterName];
    },
    matmul: (k: KernelExports): MatmulKernel => k[matmulName],
  };
}

/** Every weight type the kernels can multiply with, keyed by type id. */
export const MATMUL_TABLE: ReadonlyMap<GGMLType, MatmulEntry> = new Map(
  [
    entry(GGMLType.F32, GGMLType.F32, null, 'matmulF32'),
    entry(GGMLType.F16, GGMLType.F16, 'convertRowsF16', 'matmulF16'),
    entry(GGMLType.BF16, GGMLType.BF16, 'convertRowsBF16', 'matmulBF16'),
    entry(GGMLType.Q4_0, GGMLType.Q8_0, 'quantizeRowsQ8_0', 'matmulQ4_0'),
    entry(GGMLType.Q4_1, GGMLType.Q8_1, 'quantizeRowsQ8_1', 'matmulQ4_1'),
    entry(GGMLType.Q5_0, GGMLType.Q8_0, 'quantizeRowsQ8_0', 'matmulQ5_0'),
    entry(GGMLType.Q5_1, GGMLType.Q8_1, 'quantizeRowsQ8_1', 'matmulQ5_1'),
    entry(GGMLType.Q8_0, GGMLType.Q8_0, 'quantizeRowsQ8_0', 'matmulQ8_0'),
    entry(GGMLType.Q2_K, GGMLType.Q8_K, 'quantizeRowsQ8_K', 'matmulQ2_K'),
    entry(GGMLType.Q3_K, GGMLType.Q8_K, 'quantizeRowsQ8_K', 'matmulQ3_K'),
    entry(GGMLType.Q4_K, GGMLType.Q8_K, 'quantizeRowsQ8_K', 'matmulQ4_K'),
    entry(GGMLType.Q5_K, GGMLType.Q8_K, 'quantizeRowsQ8_K', 'matmulQ5_K'),
    entry(GGMLType.Q6_K, GGMLType.Q8_K, 'quantizeRowsQ8_K', 'matmulQ6_K'),
  ].map((e) => [e.type, e]),
);

export class UnsupportedWeightTypeError extends Error {
  constructor(type: number) {
    const name = TYPE_TRAITS.get(type)?.name ?? `unknown type id ${type}`;
    const known = [...MATMUL_TABLE.keys()].map((t) => GGMLType[t]).join(', ');
    super(`no matmul kernel for weight type ${name}; supported: ${known}`);
    this.name = 'UnsupportedWeightTypeError';
  }
}

/** The table entry of a weight type; throws UnsupportedWeightTypeError naming the type otherwise. */
export function matmulKernelFor(type: GGMLType): MatmulEntry {
  const e = MATMUL_TABLE.get(type);
  if (!e) throw new UnsupportedWeightTypeError(type);
  return e;
}

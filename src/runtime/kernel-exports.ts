// The functions the kernel module exports, as TypeScript sees them. Pointers are byte offsets into the
// shared memory; counts are elements. Keep in step with assembly/index.ts.

export interface KernelExports {
  /** 0 scalar, 1 simd, 2 relaxed. */
  kernelVariant(): number;
  heapBase(): number;
  selfTestDotI8(a: number, b: number, n: number): number;
  blockSize(type: number): number;
  blockBytes(type: number): number;
}

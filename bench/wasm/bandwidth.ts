// Memory read bandwidth probe (AssemblyScript, built by bench/bandwidth.ts, never shipped): sums a
// buffer with 16-byte SIMD loads into four independent integer accumulators, so that the loop is
// bound by how fast bytes arrive, not by add latency. The caller gives a 64-byte multiple.

export function readSumI32(ptr: usize, bytes: usize): i32 {
  let a0 = i32x4.splat(0);
  let a1 = i32x4.splat(0);
  let a2 = i32x4.splat(0);
  let a3 = i32x4.splat(0);
  const end = ptr + bytes;
  for (let p = ptr; p < end; p += 64) {
    a0 = i32x4.add(a0, v128.load(p));
    a1 = i32x4.add(a1, v128.load(p, 16));
    a2 = i32x4.add(a2, v128.load(p, 32));
    a3 = i32x4.add(a3, v128.load(p, 48));
  }
  const s = i32x4.add(i32x4.add(a0, a1), i32x4.add(a2, a3));
  // The sum is returned so the loads cannot be optimised away.
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}

export function heapBase(): usize {
  return __heap_base;
}

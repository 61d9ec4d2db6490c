// Scalar twin of the start-up known-answer probe: dot product of signed bytes with 7-bit bytes.

export function refDotI8I7(a: usize, b: usize, n: i32): i32 {
  let s: i32 = 0;
  for (let i = 0; i < n; i++) s += i32(load<i8>(a + i)) * i32(load<i8>(b + i));
  return s;
}

// The float64 definition of causal grouped-query attention, the reference the attention kernels' tests use.

export /** f64 causal GQA over f32 caches [ctx][kvStride] (the definition, no reordering tricks). */
function attentionF64(q: Float32Array, kc: ArrayLike<number>, vc: ArrayLike<number>, nTok: number, nHeads: number, nKVHeads: number, headDim: number, pos0: number, scale: number): Float64Array {
  const qRow = nHeads * headDim, kvStride = nKVHeads * headDim;
  const out = new Float64Array(nTok * qRow);
  for (let t = 0; t < nTok; t++) {
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKVHeads));
      const n = pos0 + t + 1;
      const sc = Array.from({ length: n }, (_, s) => {
        let d = 0;
        for (let i = 0; i < headDim; i++) d += q[t * qRow + h * headDim + i]! * kc[s * kvStride + kvh * headDim + i]!;
        return d * scale;
      });
      const mx = Math.max(...sc);
      const e = sc.map((v) => Math.exp(v - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < headDim; i++) {
        let o = 0;
        for (let s = 0; s < n; s++) o += (e[s]! / sum) * vc[s * kvStride + kvh * headDim + i]!;
        out[t * qRow + h * headDim + i] = o;
      }
    }
  }
  return out;
}

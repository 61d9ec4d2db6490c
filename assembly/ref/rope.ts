// Rotary position embedding, in place, as llama.cpp computes it (ggml rope with ext_factor 0 and
// attn_factor 1): per token, theta starts at the position and is multiplied by
// theta_scale = freqBase^(-2/nRot) for each successive pair, all in f32; each pair's angle is
// freqScale * theta / freqFactors[pair] (no divisor when freqFactors = 0). Scalar in every build: the
// angles are shared by all heads of a token, so the trigonometry is a small part of the work.

/**
 * x: nTok rows of nHeads*headDim f32; positions: i32[nTok]. Rotates the first nRot dims of each
 * head: `neox` false pairs (i, i+1) (llama), true pairs (i, i + nRot/2) (qwen2, neox).
 */
export function rope(x: usize, nTok: i32, nHeads: i32, headDim: i32, nRot: i32, positions: usize, freqBase: f32, freqScale: f32, freqFactors: usize, neox: bool): void {
  const thetaScale = Mathf.pow(freqBase, -2.0 / f32(nRot));
  const half = nRot >> 1;
  for (let t = 0; t < nTok; t++) {
    let theta = f32(load<i32>(positions + (<usize>t << 2)));
    const row = x + ((<usize>t * nHeads * headDim) << 2);
    for (let p = 0; p < half; p++) {
      const ff: f32 = freqFactors ? load<f32>(freqFactors + (<usize>p << 2)) : 1;
      const angle = freqScale * (theta / ff);
      const c = Mathf.cos(angle), s = Mathf.sin(angle);
      const i0 = neox ? p : p << 1;
      const i1 = neox ? p + half : (p << 1) + 1;
      for (let h = 0; h < nHeads; h++) {
        const hp = row + ((<usize>h * headDim) << 2);
        const a = load<f32>(hp + (<usize>i0 << 2)), b = load<f32>(hp + (<usize>i1 << 2));
        store<f32>(hp + (<usize>i0 << 2), a * c - b * s);
        store<f32>(hp + (<usize>i1 << 2), a * s + b * c);
      }
      theta *= thetaScale;
    }
  }
}

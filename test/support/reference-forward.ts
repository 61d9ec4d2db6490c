// A slow, plain float64 forward pass of the llama/qwen2 graph, written straight from the equations,
// used only by tests to check the wasm kernels' graph on synthetic models.
import type { GGUFFile } from '../../src/gguf/types.js';
import type { HParams } from '../../src/model/hparams.js';
import { llama3RopeFreqFactors } from '../../src/model/hparams.js';
import { globalTensorName, layerTensorName } from '../../src/model/tensor-names.js';
import type { LayerTensorKind, TensorSuffix } from '../../src/model/tensor-names.js';
import { dequantizeRow } from '../../src/quant/dequantize.js';
import type { Storage } from '../../src/storage/storage.js';

type Matrix = { rows: number; cols: number; data: Float64Array };

async function readTensor(file: GGUFFile, storage: Storage, name: string): Promise<Matrix | undefined> {
  const t = file.tensorsByName.get(name);
  if (!t) return undefined;
  const bytes = new Uint8Array(t.byteSize);
  await storage.read(t.offset, bytes);
  const f = dequantizeRow(t.type, bytes, t.elementCount);
  return { cols: t.shape[0]!, rows: t.shape[1] ?? 1, data: Float64Array.from(f) };
}

export class ReferenceModel {
  private kCache: number[][][] = []; // [layer][pos][kvDim]
  private vCache: number[][][] = [];

  private constructor(
    readonly hp: HParams,
    private readonly w: Map<string, Matrix>,
  ) {
    for (let l = 0; l < hp.blockCount; l++) {
      this.kCache.push([]);
      this.vCache.push([]);
    }
  }

  static async load(file: GGUFFile, storage: Storage, hp: HParams): Promise<ReferenceModel> {
    const w = new Map<string, Matrix>();
    for (const t of file.tensors) w.set(t.name, (await readTensor(file, storage, t.name))!);
    return new ReferenceModel(hp, w);
  }

  private get(name: string): Matrix {
    const m = this.w.get(name);
    if (!m) throw new Error(`reference: missing ${name}`);
    return m;
  }

  private layer(kind: LayerTensorKind, l: number, suffix: TensorSuffix = 'weight'): Matrix | undefined {
    return this.w.get(layerTensorName(kind, l, suffix));
  }

  private static matvec(m: Matrix, x: Float64Array): Float64Array {
    const out = new Float64Array(m.rows);
    for (let r = 0; r < m.rows; r++) {
      let s = 0;
      const o = r * m.cols;
      for (let c = 0; c < m.cols; c++) s += m.data[o + c]! * x[c]!;
      out[r] = s;
    }
    return out;
  }

  private rmsNorm(x: Float64Array, w: Matrix): Float64Array {
    let ss = 0;
    for (const v of x) ss += v * v;
    const scale = 1 / Math.sqrt(ss / x.length + this.hp.rmsNormEps);
    return x.map((v, i) => v * scale * w.data[i]!);
  }

  private rope(x: Float64Array, heads: number, pos: number): void {
    const { headDim, ropeDims, ropeFreqBase, ropeStyle, ropeFreqScale } = this.hp;
    const factors = this.w.get(globalTensorName('ropeFreqs'))?.data ?? llama3RopeFreqFactors(this.hp);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < ropeDims / 2; i++) {
        const freq = Math.pow(ropeFreqBase, (-2 * i) / ropeDims) / (factors ? factors[i]! : 1);
        const theta = pos * ropeFreqScale * freq;
        const [a, b] = ropeStyle === 'neox' ? [h * headDim + i, h * headDim + i + ropeDims / 2] : [h * headDim + 2 * i, h * headDim + 2 * i + 1];
        const x0 = x[a]!;
        const x1 = x[b]!;
        x[a] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
        x[b] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
      }
    }
  }

  /** Logits after `token` at the next position. */
  step(token: number): Float64Array {
    const hp = this.hp;
    const emb = this.get(globalTensorName('tokenEmbd'));
    let x = emb.data.slice(token * emb.cols, (token + 1) * emb.cols);
    const pos = this.kCache[0]!.length;
    const group = hp.headCount / hp.headCountKV;
    for (let l = 0; l < hp.blockCount; l++) {
      const xn = this.rmsNorm(x, this.layer('attnNorm', l)!);
      const q = ReferenceModel.matvec(this.layer('attnQ', l)!, xn);
      const k = ReferenceModel.matvec(this.layer('attnK', l)!, xn);
      const v = ReferenceModel.matvec(this.layer('attnV', l)!, xn);
      for (const [vec, kind] of [[q, 'attnQ'], [k, 'attnK'], [v, 'attnV']] as const) {
        const b = this.layer(kind, l, 'bias');
        if (b) for (let i = 0; i < vec.length; i++) vec[i]! += b.data[i]!;
      }
      this.rope(q, hp.headCount, pos);
      this.rope(k, hp.headCountKV, pos);
      this.kCache[l]!.push(Array.from(k));
      this.vCache[l]!.push(Array.from(v));
      const att = new Float64Array(hp.headCount * hp.headDim);
      for (let h = 0; h < hp.headCount; h++) {
        const kvh = Math.floor(h / group);
        const scores = this.kCache[l]!.map((kr) => {
          let s = 0;
          for (let d = 0; d < hp.headDim; d++) s += q[h * hp.headDim + d]! * kr[kvh * hp.headDim + d]!;
          return s / Math.sqrt(hp.headDim);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let p = 0; p < e.length; p++) {
          const wgt = e[p]! / sum;
          for (let d = 0; d < hp.headDim; d++) att[h * hp.headDim + d]! += wgt * this.vCache[l]![p]![kvh * hp.headDim + d]!;
        }
      }
      const o = ReferenceModel.matvec(this.layer('attnOutput', l)!, att);
      x = x.map((v2, i) => v2 + o[i]!);
      const xf = this.rmsNorm(x, this.layer('ffnNorm', l)!);
      const g = ReferenceModel.matvec(this.layer('ffnGate', l)!, xf);
      const u = ReferenceModel.matvec(this.layer('ffnUp', l)!, xf);
      const hmid = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const d = ReferenceModel.matvec(this.layer('ffnDown', l)!, hmid);
      x = x.map((v2, i) => v2 + d[i]!);
    }
    const out = this.w.get(globalTensorName('output')) ?? emb;
    return ReferenceModel.matvec(out, this.rmsNorm(x, this.get(globalTensorName('outputNorm'))));
  }
}

// The llama / qwen2 transformer graph: embeddings, then per layer RMSNorm → q/k/v (+bias for qwen2) →
// RoPE → causal grouped-query attention over the KV cache → output projection → residual, RMSNorm →
// SwiGLU FFN → residual; final RMSNorm and the output projection to logits. A batch of tokens goes
// through as matrices (prefill); one token is the same path with nTok = 1 (decode). When weights are
// not all resident, forwardAsync() awaits streamed layers (read ahead of use) and embedding rows from
// storage; forward() stays synchronous and reads what is missing with synchronous reads.
import { GGMLType, rowBytes } from '../quant/formats.js';
import type { KernelExports } from '../runtime/kernel-exports.js';
import { matmulKernelFor } from '../runtime/kernel-table.js';
import type { Arena } from '../runtime/memory.js';
import { SerialExecutor } from '../parallel/executor.js';
import type { AttentionKernelName, Executor, MatmulJob } from '../parallel/executor.js';
import type { HParams } from './hparams.js';
import type { KVAttentionKernel, KVCache } from './kv-cache.js';
import type { LayerWeights, MatrixWeight, ModelWeights } from './weights.js';
import type { DiskEmbeddings } from '../memory/embeddings.js';
import type { LayerPager } from '../memory/layer-pager.js';
import { rowToF32 } from './weights.js';

/** Activation formats a matmul input may need converting to (F32 inputs are used as they are). */
const ACTIVATION_FORMATS = [GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q8_1, GGMLType.Q8_K] as const;

/** Scratch buffers of one forward pass, sized for `maxBatch` tokens. All pointers into wasm memory. */
export interface RunState {
  readonly maxBatch: number;
  readonly x: number; // residual stream (maxBatch, embd) f32
  readonly xNorm: number; // normed input of a sublayer (maxBatch, max(embd, qDim)) f32
  readonly q: number; // queries (maxBatch, nHead*headDim) f32
  readonly attnOut: number; // attention output (maxBatch, nHead*headDim) f32
  readonly branch: number; // sublayer output before the residual add (maxBatch, embd) f32
  readonly gate: number; // (maxBatch, ffn) f32
  readonly up: number; // (maxBatch, ffn) f32
  readonly positions: number; // (maxBatch) i32
  readonly attnScratch: number; // attnScratchSlots f32 workspaces of the attention kernel, one per thread
  readonly attnScratchSlots: number;
  readonly attnScratchStride: number; // bytes per workspace: see attentionScratchBytes
  /** Converted activations per format, each (maxBatch, widest row) in that format. */
  readonly activations: ReadonlyMap<GGMLType, number>;
  readonly logits: number; // (logitRows, vocab) f32
  readonly logitRows: number;
}

/**
 * Bytes of one attentionTiled workspace (assembly/ref/attention-tiled.ts, ATTN_TILE_SCRATCH_BYTES; the
 * Transformer checks that the kernels agree). Independent of the context length.
 */
export const ATTENTION_TILED_SCRATCH_BYTES = 2112;

/**
 * Bytes of one attentionKvF16Tiled / attentionKvInt8Tiled workspace (assembly/ref/kv-tiled.ts,
 * kvTiledScratchBytes: attentionTiled's, then four query rows' block bias and q*d). Independent of the
 * context length.
 */
export function kvTiledScratchBytes(headDim: number): number {
  return ATTENTION_TILED_SCRATCH_BYTES + 16 + 16 * headDim;
}

/**
 * Bytes of one attention workspace for a cache read by `kvAttention` (the KV cache's attentionKernel;
 * undefined: enough for any, the one-pass kernels' score per visible position included): an f32 cache
 * is read by attentionTiled, f16/int8 caches by their tiled kernels; their workspaces are a few tiles.
 */
export function attentionScratchBytes(contextLength: number, kvAttention: KVAttentionKernel | undefined, headDim: number): number {
  if (kvAttention === 'attention') return ATTENTION_TILED_SCRATCH_BYTES;
  if (kvAttention !== undefined) return kvTiledScratchBytes(headDim);
  return Math.max((contextLength + 16) * 4, ATTENTION_TILED_SCRATCH_BYTES, kvTiledScratchBytes(headDim));
}

export function createRunState(arena: Arena, hp: HParams, maxBatch: number, contextLength: number, kvAttention?: KVAttentionKernel): RunState {
  const embd = hp.embeddingLength;
  const qDim = hp.headCount * hp.headDim;
  const ffn = hp.feedForwardLength;
  const widest = Math.max(embd, qDim, ffn);
  const f32 = (n: number) => arena.alloc('scratch', n * 4);
  const activations = new Map<GGMLType, number>();
  for (const fmt of ACTIVATION_FORMATS) {
    // Every activation format takes at most 36 bytes per 32 values (Q8_1), i.e. < 1.2 bytes/value,
    // except F16/BF16 at 2 bytes/value; round widths up to a whole 256-block.
    const padded = Math.ceil(widest / 256) * 256;
    activations.set(fmt, arena.alloc('scratch', maxBatch * padded * 2 + 64));
  }
  const logitRows = Math.max(1, Math.min(maxBatch, Math.floor((16 << 20) / (hp.vocabSize * 4))));
  return {
    maxBatch,
    x: f32(maxBatch * embd),
    xNorm: f32(maxBatch * Math.max(embd, qDim)),
    q: f32(maxBatch * qDim),
    attnOut: f32(maxBatch * qDim),
    branch: f32(maxBatch * embd),
    gate: f32(maxBatch * ffn),
    up: f32(maxBatch * ffn),
    positions: arena.alloc('scratch', maxBatch * 4),
    attnScratch: arena.alloc('scratch', hp.headCount * attentionScratchBytes(contextLength, kvAttention, hp.headDim)),
    attnScratchSlots: hp.headCount,
    attnScratchStride: attentionScratchBytes(contextLength, kvAttention, hp.headDim),
    activations,
    logits: f32(logitRows * hp.vocabSize),
    logitRows,
  };
}

export type LogitsWanted = 'none' | 'last' | 'all';

/** What the forward pass reads from storage as it goes (both absent: everything is resident). */
export interface StreamingWeights {
  /** Reads the matrices of streamed layers into layer slots, ahead of use. */
  readonly pager?: LayerPager<LayerWeights>;
  /** Reads token embedding rows (when token_embd is not resident). */
  readonly embeddings?: DiskEmbeddings;
}

export class Transformer {
  /** Runs the heavy kernels (matmuls, attention, norms, conversions), on one thread or several. */
  readonly executor: Executor;
  private readonly qDim: number;
  private readonly kvDim: number;
  private readonly attnScale: number;
  /** The attention export run on this cache: attentionTiled for an f32 cache, else the cache's own. */
  readonly attentionKernel: AttentionKernelName;

  constructor(
    readonly hp: HParams,
    readonly weights: ModelWeights,
    readonly kernels: KernelExports,
    readonly arena: Arena,
    readonly kv: KVCache,
    readonly state: RunState,
    /** Runs the heavy kernels split across worker threads; by default all on this thread. */
    executor?: Executor,
    /** Streamed layers and disk embeddings, when the weights are not all resident. */
    readonly streaming: StreamingWeights = {},
  ) {
    this.executor = executor ?? new SerialExecutor(kernels);
    this.qDim = hp.headCount * hp.headDim;
    this.kvDim = hp.headCountKV * hp.headDim;
    this.attnScale = 1 / Math.sqrt(hp.headDim);
    this.attentionKernel = kv.attentionKernel === 'attention' ? 'attentionTiled' : kv.attentionKernel;
    if (kernels.attentionTiledScratchBytes() !== ATTENTION_TILED_SCRATCH_BYTES) {
      throw new Error(`internal: the kernels' attention workspace is ${kernels.attentionTiledScratchBytes()} bytes, transformer.ts expects ${ATTENTION_TILED_SCRATCH_BYTES}`);
    }
    if (kernels.attentionKvTiledScratchBytes(hp.headDim) !== kvTiledScratchBytes(hp.headDim)) {
      throw new Error(`internal: the kernels' f16/int8 attention workspace is ${kernels.attentionKvTiledScratchBytes(hp.headDim)} bytes, transformer.ts expects ${kvTiledScratchBytes(hp.headDim)}`);
    }
    const need = attentionScratchBytes(kv.contextLength, kv.attentionKernel, hp.headDim);
    if (state.attnScratchStride < need) {
      throw new RangeError(`the run state's attention workspaces are ${state.attnScratchStride} bytes, ${this.attentionKernel} needs ${need} (give createRunState the KV cache's attentionKernel)`);
    }
  }

  /** True when a forward pass reads from storage (streamed layers or embedding rows). */
  get streams(): boolean {
    return this.streaming.pager !== undefined || this.streaming.embeddings !== undefined;
  }

  /**
   * Runs `tokens` at positions kv.length, kv.length+1, ... appending them to the KV cache. Returns
   * the logits of the last token ('last', vocab floats), of every token ('all', tokens×vocab), or none.
   */
  forward(tokens: readonly number[], want: LogitsWanted): Float32Array | undefined {
    this.kv.checkRoom(tokens.length);
    const vocab = this.hp.vocabSize;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RangeError(`token id ${t} is outside the vocabulary of ${vocab}`);
    }
    const all = want === 'all' ? new Float32Array(tokens.length * vocab) : undefined;
    let last: Float32Array | undefined;
    for (let start = 0; start < tokens.length; start += this.state.maxBatch) {
      const chunk = tokens.slice(start, start + this.state.maxBatch);
      const isLastChunk = start + chunk.length === tokens.length;
      this.forwardChunk(chunk);
      if (want === 'all') this.projectLogits(0, chunk.length, all!, start * vocab);
      else if (want === 'last' && isLastChunk) {
        last = new Float32Array(vocab);
        this.projectLogits(chunk.length - 1, 1, last, 0);
      }
    }
    return all ?? last;
  }

  /**
   * forward() with every read from storage awaited: streamed layers are read ahead of use (the next
   * layer's read runs while this one computes) and embedding rows read in one batch. Gives the same
   * logits as forward(), bit for bit. Returns once no read is pending, so forward() may follow.
   */
  async forwardAsync(tokens: readonly number[], want: LogitsWanted): Promise<Float32Array | undefined> {
    this.kv.checkRoom(tokens.length);
    const vocab = this.hp.vocabSize;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RangeError(`token id ${t} is outside the vocabulary of ${vocab}`);
    }
    const { pager } = this.streaming;
    const all = want === 'all' ? new Float32Array(tokens.length * vocab) : undefined;
    let last: Float32Array | undefined;
    try {
      for (let start = 0; start < tokens.length; start += this.state.maxBatch) {
        const chunk = tokens.slice(start, start + this.state.maxBatch);
        const isLastChunk = start + chunk.length === tokens.length;
        if (this.streaming.embeddings) await this.streaming.embeddings.embed(chunk, this.state.x);
        else this.embedResident(chunk);
        const pos0 = this.beginChunk(chunk.length);
        for (let l = 0; l < this.weights.layers.length; l++) {
          const resident = this.weights.layers[l];
          if (resident) {
            this.layer(l, resident, chunk.length, pos0);
            continue;
          }
          const L = await pager!.acquire(l);
          try {
            this.layer(l, L, chunk.length, pos0);
          } finally {
            pager!.release(l);
          }
        }
        this.kv.endChunk(chunk);
        if (want === 'all') this.projectLogits(0, chunk.length, all!, start * vocab);
        else if (want === 'last' && isLastChunk) {
          last = new Float32Array(vocab);
          this.projectLogits(chunk.length - 1, 1, last, 0);
        }
      }
    } finally {
      await pager?.settle();
    }
    return all ?? last;
  }

  /** One batch of at most maxBatch tokens through every layer; leaves the residual stream in state.x. */
  private forwardChunk(tokens: readonly number[]): void {
    const { weights: w } = this;
    const { pager, embeddings } = this.streaming;
    if (embeddings) embeddings.embedSync(tokens, this.state.x);
    else this.embedResident(tokens);
    const pos0 = this.beginChunk(tokens.length);
    for (let l = 0; l < w.layers.length; l++) {
      const resident = w.layers[l];
      if (resident) {
        this.layer(l, resident, tokens.length, pos0);
        continue;
      }
      const L = pager!.acquireSync(l);
      try {
        this.layer(l, L, tokens.length, pos0);
      } finally {
        pager!.release(l, false);
      }
    }
    this.kv.endChunk(tokens);
  }

  /** Rows of the resident embedding matrix into state.x. */
  private embedResident(tokens: readonly number[]): void {
    const emb = this.weights.tokenEmbd!;
    const embd = this.hp.embeddingLength;
    for (let t = 0; t < tokens.length; t++) rowToF32(this.kernels, emb, tokens[t]!, this.state.x + t * embd * 4);
  }

  /** Writes the positions of a chunk of n tokens; returns the first. */
  private beginChunk(n: number): number {
    const pos0 = this.kv.length;
    const positions = this.arena.i32(this.state.positions, n);
    for (let t = 0; t < n; t++) positions[t] = pos0 + t;
    return pos0;
  }

  /** Layer l on the n tokens of the chunk starting at position pos0 (residual stream in state.x). */
  private layer(l: number, L: LayerWeights, n: number, pos0: number): void {
    const { hp, kernels: k, state: s, weights: w, kv, executor: ex } = this;
    const embd = hp.embeddingLength;
    const freqFactors = w.ropeFreqFactors?.ptr ?? 0;
    {
      // Attention: the new keys and values land in f32 rows (their cache rows, for an all-resident f32
      // cache), get biases and RoPE there, and are then stored in the cache's precision.
      const kvRows = kv.beginLayer(l, n);
      const kCache = kvRows.newK;
      const vCache = kvRows.newV;
      this.normMatmuls(s.x, L.attnNorm.ptr, n, [[L.attnQ, s.q], [L.attnK, kCache], [L.attnV, vCache]]);
      if (L.attnQBias) k.addBias(s.q, L.attnQBias.ptr, this.qDim, n);
      if (L.attnKBias) k.addBias(kCache, L.attnKBias.ptr, this.kvDim, n);
      if (L.attnVBias) k.addBias(vCache, L.attnVBias.ptr, this.kvDim, n);
      const rope = hp.ropeStyle === 'neox' ? k.ropeNeox : k.ropeNorm;
      rope(s.q, n, hp.headCount, hp.headDim, hp.ropeDims, s.positions, hp.ropeFreqBase, hp.ropeFreqScale, freqFactors);
      rope(kCache, n, hp.headCountKV, hp.headDim, hp.ropeDims, s.positions, hp.ropeFreqBase, hp.ropeFreqScale, freqFactors);
      kv.storeNewRows(n, kvRows);
      ex.attention({
        kernel: this.attentionKernel, q: s.q, k: kvRows.k, v: kvRows.v, out: s.attnOut, nTok: n,
        nHeads: hp.headCount, nKVHeads: hp.headCountKV, headDim: hp.headDim, kvStride: this.kvDim, pos0, scale: this.attnScale,
        scratch: s.attnScratch, scratchStride: s.attnScratchStride, scratchSlots: s.attnScratchSlots,
      });
      kv.commitLayer(l, kvRows);
      this.matmuls(s.attnOut, n, [[L.attnOutput, s.branch]]);
      ex.addRows(s.x, s.branch, n * embd);

      // Feed-forward: down(silu(gate(x)) * up(x)).
      this.normMatmuls(s.x, L.ffnNorm.ptr, n, [[L.ffnGate, s.gate], [L.ffnUp, s.up]]);
      ex.siluMulRows(s.gate, s.up, s.gate, hp.feedForwardLength, n);
      this.matmuls(s.gate, n, [[L.ffnDown, s.branch]]);
      ex.addRows(s.x, s.branch, n * embd);
    }
  }

  /** Final norm and output projection of rows [first, first+count) of the last chunk into `dst`. */
  private projectLogits(first: number, count: number, dst: Float32Array, dstOffset: number): void {
    const { hp, state: s, weights: w } = this;
    const embd = hp.embeddingLength;
    const vocab = hp.vocabSize;
    for (let r = 0; r < count; r += s.logitRows) {
      const rows = Math.min(s.logitRows, count - r);
      this.normMatmuls(s.x + (first + r) * embd * 4, w.outputNorm.ptr, rows, [[w.output, s.logits]]);
      dst.set(this.arena.f32(s.logits, rows * vocab), dstOffset + r * vocab);
    }
  }

  /**
   * For each [w, out]: out (nTok, w.rows) = input (nTok, w.cols) · wᵀ. The input is converted to each
   * activation format the weights need once, and that conversion is shared (q/k/v; gate/up).
   */
  private matmuls(input: number, nTok: number, jobs: readonly (readonly [MatrixWeight, number])[], done?: GGMLType): void {
    const converted = new Set<GGMLType>();
    if (done !== undefined) converted.add(done);
    const calls: MatmulJob[] = [];
    for (const [w, out] of jobs) {
      const kernel = matmulKernelFor(w.type);
      let x = input;
      if (kernel.activationType !== GGMLType.F32) {
        x = this.state.activations.get(kernel.activationType)!;
        if (!converted.has(kernel.activationType)) {
          this.executor.convertRows(kernel.converterName!, input, x, w.cols, nTok, activationRowBytes(kernel.activationType, w.cols));
          converted.add(kernel.activationType);
        }
      }
      calls.push({ kernel: kernel.matmulName, w: w.ptr, x, out, cols: w.cols, rows: w.rows, nTok });
    }
    // All calls together: one barrier for q/k/v and one for gate/up when they run on worker threads.
    this.executor.matmuls(calls);
  }

  /**
   * matmuls() on the RMSNorm of nTok rows of x (embd wide) with `normWeight`: the normed f32 rows go
   * to state.xNorm and, by the fused kernel in the same call, into the first activation format the
   * jobs need (bits as rmsNorm then conversion); any other format they need is converted from xNorm.
   */
  private normMatmuls(x: number, normWeight: number, nTok: number, jobs: readonly (readonly [MatrixWeight, number])[]): void {
    const { hp, state: s } = this;
    const cols = hp.embeddingLength;
    const fused = jobs.map(([w]) => matmulKernelFor(w.type)).find((k) => k.normConverterName !== null);
    if (!fused) {
      this.executor.rmsNorm(x, normWeight, s.xNorm, cols, nTok, hp.rmsNormEps);
      return this.matmuls(s.xNorm, nTok, jobs);
    }
    const fmt = fused.activationType;
    this.executor.rmsNormConvert(fused.normConverterName!, x, normWeight, s.xNorm, s.activations.get(fmt)!, cols, nTok, hp.rmsNormEps, activationRowBytes(fmt, cols));
    this.matmuls(s.xNorm, nTok, jobs, fmt);
  }

  /**
   * A real one-token matmul for measuring thread speeds at start-up: the widest projection of the
   * first layer, reading the (zeroed) activation scratch and writing into the gate buffer.
   */
  calibrationJob(): MatmulJob {
    // A streamed first layer is read into a slot for this (the slot keeps it for the first pass).
    const L = this.weights.layers.find((x) => x !== undefined) ?? this.streaming.pager!.acquireSync(0);
    if (!this.weights.layers[0] && this.streaming.pager) this.streaming.pager.release(0, false);
    const w = L.ffnUp;
    const kernel = matmulKernelFor(w.type);
    const x = kernel.activationType === GGMLType.F32 ? this.state.xNorm : this.state.activations.get(kernel.activationType)!;
    return { kernel: kernel.matmulName, w: w.ptr, x, out: this.state.up, cols: w.cols, rows: w.rows, nTok: 1 };
  }
}

/** Bytes of one converted activation row (exported for the parallel executor and tests). */
export function activationRowBytes(type: GGMLType, cols: number): number {
  return type === GGMLType.F32 ? cols * 4 : rowBytes(type, cols);
}

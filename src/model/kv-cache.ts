// The KV cache: for every layer, keys and values of each processed position, in wasm memory, stored in
// f32, f16 or int8, and optionally only the most recent positions resident with the older ones spilled
// to a temporary file and streamed back, one layer ahead, for attention.
//
// Row layouts (one row per position, kvDim = headCountKV * headDim values, heads side by side):
//   f32 : kvDim f32                                                 4 * kvDim bytes
//   f16 : kvDim IEEE half                                           2 * kvDim bytes
//   int8: 4 * headCountKV bytes of scales, then kvDim 8-bit values              4 * headCountKV + kvDim
// Keys and values use the same precision and row size, so that an int8 cache is about half an f16 one
// (rows: exactly (headDim + 4) / (2 * headDim) of it); attention math and softmax stay f32
// (assembly/ref/kv.ts). int8 values have a scale per token and head. int8 keys are quantized per
// channel over blocks of G = headDim positions (the 4 * headCountKV bytes of a block's G rows hold
// its channel steps and minimums), because one scale per token and head is too coarse for q.k; the
// positions after the last complete block wait in an f16 key tail placed just before a layer's key
// row 0 (keys[l] - keyTailBytes), and are quantized when their block fills. The tail has two halves
// of G rows: a batch never overwrites the held ones (first half), and after the batch its last,
// partial block moves to the first half if it landed in the second. So an int8 cache also holds, per
// layer, a tail of 4 * G * kvDim bytes, and when spilling keeps up to G - 1 more positions resident,
// since only complete blocks leave memory.
//
// Spill (residentTokens set): positions [0, spilled) of every layer live in the spill file and
// [spilled, length) in a per-layer resident window (residentTokens rows, plus room for one batch). For attention, the layer's
// rows are assembled contiguously in a staging area (file rows read back, window rows copied, new rows
// stored): the attention kernel then sees exactly the rows of an all-resident cache, so results are
// bit-identical with it. Two staging areas are shared by all layers: while layer l computes in one,
// the spilled rows of layer l+1 are read into the other. Whole blocks of spillBlockTokens positions
// move out at a time, after each batch, so that at most residentTokens stay resident.
import type { KernelExports } from '../runtime/kernel-exports.js';
import type { Arena } from '../runtime/memory.js';
import { KVSpillFile } from '../memory/kv-spill.js';
import { f16ToF32, f32ToF16 } from '../quant/f16.js';
import type { KVKind } from '../memory/kv-spill.js';

export class ContextFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContextFullError';
  }
}

export type KVPrecision = 'f32' | 'f16' | 'int8';
export const KV_PRECISIONS: readonly KVPrecision[] = ['f32', 'f16', 'int8'];

/** The attention export that reads a cache of each precision. */
/** f32: the one-pass kernel's name (the Transformer runs attentionTiled, its tiled twin); f16/int8: the tiled kernels themselves. */
export type KVAttentionKernel = 'attention' | 'attentionKvF16Tiled' | 'attentionKvInt8Tiled';
const ATTENTION_KERNEL: Readonly<Record<KVPrecision, KVAttentionKernel>> = { f32: 'attention', f16: 'attentionKvF16Tiled', int8: 'attentionKvInt8Tiled' };

export const DEFAULT_SPILL_BLOCK_TOKENS = 16;

export interface KVCacheConfig {
  readonly layerCount: number;
  /** Positions the cache can hold. */
  readonly contextLength: number;
  readonly headCountKV: number;
  readonly headDim: number;
  /** Largest number of tokens one forward batch appends (sizes the f32 rows new keys land in). */
  readonly maxBatch: number;
  /** Storage of keys and values (default 'f32'). */
  readonly precision?: KVPrecision;
  /** Keep at most this many positions per layer in wasm memory and spill older ones to a file (default: all resident). */
  readonly residentTokens?: number;
  /** Positions moved to the spill file at a time (default 16). */
  readonly spillBlockTokens?: number;
  /** Folder of the spill file (default: the OS temporary folder). */
  readonly spillDir?: string;
  /** 'thread' (default): spilled rows are read by a reader thread one layer ahead; 'sync': on this thread when needed. */
  readonly spillReader?: 'thread' | 'sync';
}

/** Bytes of one position's row of one layer's keys (or values). */
export function kvRowBytes(precision: KVPrecision, headCountKV: number, headDim: number): number {
  const kvDim = headCountKV * headDim;
  switch (precision) {
    case 'f32':
      return 4 * kvDim;
    case 'f16':
      return 2 * kvDim;
    case 'int8':
      return 4 * headCountKV + kvDim;
    default:
      throw new RangeError(`unknown KV cache precision "${String(precision)}" (f32, f16 or int8)`);
  }
}

/** Checks a precision name from a user (CLI, options); throws naming the choices. */
export function parseKVPrecision(s: string): KVPrecision {
  if ((KV_PRECISIONS as readonly string[]).includes(s)) return s as KVPrecision;
  throw new RangeError(`unknown KV cache precision "${s}" (f32, f16 or int8)`);
}

/** Bytes of the f16 key tail before each layer's key row 0 of an int8 cache (0 otherwise): 2 G = 2 headDim rows. */
export function kvKeyTailBytes(precision: KVPrecision, headCountKV: number, headDim: number): number {
  return precision === 'int8' ? 4 * headDim * headCountKV * headDim : 0;
}

/** Positions per int8 key block (1 for the other precisions, whose rows stand alone). */
function keyBlock(c: KVCacheConfig): number {
  return (c.precision ?? 'f32') === 'int8' ? c.headDim : 1;
}

/** Whether the config spills (residentTokens set and below the context length). */
function spills(c: KVCacheConfig): boolean {
  return c.residentTokens !== undefined && c.residentTokens < c.contextLength;
}

/**
 * Rows of a layer's resident window: the resident positions plus room for one batch, whose rows are
 * added there before older blocks leave at the end of the batch (so a batch that fails half-way leaves
 * every window as it was).
 */
function windowRows(c: KVCacheConfig): number {
  return spills(c) ? Math.min(c.contextLength, c.residentTokens! + c.maxBatch + keyBlock(c) - 1) : c.contextLength;
}

/**
 * Bytes of wasm memory the KV cache takes in the arena's 'kv' region: all rows of every layer, or,
 * when spilling, the resident windows (residentTokens + maxBatch rows) plus two staging areas of a
 * whole context; int8 adds a key tail per layer and per staging area. (The f32 rows new keys and
 * values land in before conversion are scratch, not counted.)
 */
export function kvCacheBytes(c: KVCacheConfig): number {
  const precision = c.precision ?? 'f32';
  const rowBytes = kvRowBytes(precision, c.headCountKV, c.headDim);
  const tail = kvKeyTailBytes(precision, c.headCountKV, c.headDim);
  if (!spills(c)) return c.layerCount * (2 * c.contextLength * rowBytes + tail);
  return c.layerCount * (2 * windowRows(c) * rowBytes + tail) + 2 * (2 * c.contextLength * rowBytes + tail);
}

/** Where one layer's attention reads and its new keys and values are written, for one batch. */
export interface KVLayerRows {
  /** Rows 0.. of the layer's keys and values in the cache's precision, contiguous (attention reads these; int8: the key tail just before k). */
  readonly k: number;
  readonly v: number;
  /** f32 (nTok, kvDim): where the batch's keys and values go before storeNewRows() (biases and RoPE apply here). */
  readonly newK: number;
  readonly newV: number;
}

interface Staging {
  readonly k: number;
  readonly v: number;
  /** Layer whose spilled rows [0, rows) were read (or are being read) into this area; -1 none. */
  layer: number;
  rows: number;
}

export class KVCache {
  readonly layerCount: number;
  readonly contextLength: number;
  readonly headCountKV: number;
  readonly headDim: number;
  /** Values per position per layer (headCountKV * headDim). */
  readonly kvDim: number;
  readonly precision: KVPrecision;
  /** Bytes of one position's row of one layer's keys (or values). */
  readonly rowBytes: number;
  /** int8: positions per key block (headDim) and bytes of the f16 key tail before each key row 0; 1 and 0 otherwise. */
  readonly keyBlock: number;
  readonly keyTailBytes: number;
  /** The attention kernel that reads this cache. */
  readonly attentionKernel: KVAttentionKernel;
  /** Positions kept in wasm memory per layer when spilling; contextLength otherwise. */
  readonly residentTokens: number;
  /**
   * Per layer: the resident keys, rows of rowBytes. Row p = position p when nothing spills; when
   * spilling, the window: row i = position spilledTokens + i.
   */
  readonly keys: readonly number[];
  /** Per layer: values, same layout as keys. */
  readonly values: readonly number[];
  /** Token ids whose keys and values are held, in position order. */
  readonly tokens: number[] = [];
  /** Bytes allocated in the arena's 'kv' region (see kvCacheBytes). */
  readonly bytes: number;

  private readonly arena: Arena;
  private readonly kernels: KernelExports;
  private readonly maxBatch: number;
  private readonly blockTokens: number;
  /** f32 (maxBatch, kvDim) rows new keys / values are written to when the cache is not f32; 0 otherwise. */
  private readonly newKF32: number;
  private readonly newVF32: number;
  private readonly spill: KVSpillFile | undefined;
  private readonly staging: readonly Staging[];
  /** Positions [0, spilled) of every layer are in the spill file. */
  private spilled = 0;
  /** This batch: its size, and the spill boundary after it. */
  private batch = 0;
  private nextSpilled = 0;
  private closed = false;

  constructor(arena: Arena, kernels: KernelExports, config: KVCacheConfig) {
    const { layerCount, contextLength, headCountKV, headDim, maxBatch } = config;
    for (const [name, v] of [['layerCount', layerCount], ['contextLength', contextLength], ['headCountKV', headCountKV], ['headDim', headDim], ['maxBatch', maxBatch]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`KV cache: ${name} must be a positive integer, got ${v}`);
    }
    const precision = config.precision ?? 'f32';
    this.rowBytes = kvRowBytes(precision, headCountKV, headDim);
    this.keyBlock = keyBlock({ ...config, precision });
    this.keyTailBytes = kvKeyTailBytes(precision, headCountKV, headDim);
    if (config.residentTokens !== undefined && (!Number.isSafeInteger(config.residentTokens) || config.residentTokens < 1)) {
      throw new RangeError(`kvResidentTokens must be a positive integer, got ${config.residentTokens}`);
    }
    const blockTokens = config.spillBlockTokens ?? DEFAULT_SPILL_BLOCK_TOKENS;
    if (!Number.isSafeInteger(blockTokens) || blockTokens < 1) throw new RangeError(`spillBlockTokens must be a positive integer, got ${blockTokens}`);
    this.arena = arena;
    this.kernels = kernels;
    this.layerCount = layerCount;
    this.contextLength = contextLength;
    this.headCountKV = headCountKV;
    this.headDim = headDim;
    this.kvDim = headCountKV * headDim;
    this.precision = precision;
    this.attentionKernel = ATTENTION_KERNEL[precision];
    this.maxBatch = maxBatch;
    this.blockTokens = blockTokens;
    const spilling = spills(config);
    this.residentTokens = spilling ? config.residentTokens! : contextLength;
    this.bytes = kvCacheBytes(config);

    const windowBytes = windowRows(config) * this.rowBytes;
    const keys: number[] = [];
    const values: number[] = [];
    for (let l = 0; l < layerCount; l++) {
      keys.push(arena.alloc('kv', this.keyTailBytes + windowBytes) + this.keyTailBytes);
      values.push(arena.alloc('kv', windowBytes));
    }
    this.keys = keys;
    this.values = values;
    const staging: Staging[] = [];
    if (spilling) {
      for (let i = 0; i < 2; i++) {
        const k = arena.alloc('kv', this.keyTailBytes + contextLength * this.rowBytes) + this.keyTailBytes;
        staging.push({ k, v: arena.alloc('kv', contextLength * this.rowBytes), layer: -1, rows: 0 });
      }
    }
    this.staging = staging;
    const newRowsBytes = precision === 'f32' ? 0 : maxBatch * this.kvDim * 4;
    this.newKF32 = newRowsBytes ? arena.alloc('scratch', newRowsBytes) : 0;
    this.newVF32 = newRowsBytes ? arena.alloc('scratch', newRowsBytes) : 0;
    this.spill = spilling
      ? new KVSpillFile({ layerCount, contextLength, rowBytes: this.rowBytes, memory: arena.memory, dir: config.spillDir, reader: config.spillReader })
      : undefined;
  }

  get length(): number {
    return this.tokens.length;
  }

  /** Positions whose rows are in the spill file (0 when nothing spills). */
  get spilledTokens(): number {
    return this.spilled;
  }

  /** Path of the spill file, when spilling. */
  get spillPath(): string | undefined {
    return this.spill?.path;
  }

  /** Bytes written to and read from the spill file so far. */
  spillStats(): { bytesWritten: number; bytesRead: number } {
    return this.spill?.stats() ?? { bytesWritten: 0, bytesRead: 0 };
  }

  /** Forgets positions from `length` on (their slots are overwritten by later tokens). */
  truncate(length: number): void {
    if (length >= this.tokens.length) return;
    const held = this.tokens.length;
    this.tokens.length = length;
    // int8: the positions [blockStart, length) of a complete key block go back to the f16 tail.
    const blockStart = length - (length % this.keyBlock);
    const reopen = this.keyTailBytes > 0 && length > blockStart && blockStart + this.keyBlock <= held;
    if (reopen) this.reopenKeyBlock(blockStart, length - blockStart);
    // Rows [length, spilled) stay valid in the file, but the window no longer continues them.
    if (blockStart < this.spilled) this.spilled = blockStart;
    for (const st of this.staging) st.rows = Math.min(st.rows, this.spilled);
  }

  /**
   * int8 truncation into the complete key block starting at blockStart: its first `rows` keys,
   * dequantized, become the f16 tail rows (bit for bit what quantizing again would read) of every
   * layer. A block already in the spill file is read back, and the window then starts at it.
   */
  private reopenKeyBlock(blockStart: number, rows: number): void {
    const mem = this.arena.bytes();
    const view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    const { rowBytes, headDim, headCountKV, kvDim } = this;
    const qsOff = 4 * headCountKV;
    for (let l = 0; l < this.layerCount; l++) {
      let blk: number;
      if (this.spill && blockStart < this.spilled) {
        const st = this.stagingOf(l);
        this.spill.wait();
        this.spill.prefetch(l, blockStart + this.keyBlock, st.k, st.v);
        this.spill.wait();
        st.layer = l;
        st.rows = blockStart;
        blk = st.k + blockStart * rowBytes;
        // The window now holds positions blockStart..: its values (keys live in the tail).
        mem.copyWithin(this.values[l]!, st.v + blockStart * rowBytes, st.v + (blockStart + rows) * rowBytes);
      } else {
        blk = this.keys[l]! + (blockStart - this.spilled) * rowBytes;
      }
      const tail = this.keys[l]! - this.keyTailBytes;
      for (let j = 0; j < rows; j++) {
        for (let h = 0; h < headCountKV; h++) {
          for (let i = 0; i < headDim; i++) {
            const param = blk + i * rowBytes + 4 * h;
            const d = f16ToF32(view.getUint16(param, true));
            const m = f16ToF32(view.getUint16(param + 2, true));
            const u = mem[blk + j * rowBytes + qsOff + h * headDim + i]!;
            view.setUint16(tail + 2 * (j * kvDim + h * headDim + i), f32ToF16(Math.fround(m + Math.fround(d * u))), true);
          }
        }
      }
    }
  }

  /** Throws when `more` tokens would not fit after the current ones. */
  checkRoom(more: number): void {
    if (this.tokens.length + more > this.contextLength) {
      throw new ContextFullError(
        `context is full: ${this.tokens.length} tokens held + ${more} new > context length ${this.contextLength} (raise contextLength / --ctx)`,
      );
    }
  }

  /**
   * Layer `layer` is about to process a batch of `nTok` tokens at positions length..: returns where
   * its attention reads and its new keys and values go. Layers come in order 0, 1, .. for each batch.
   */
  beginLayer(layer: number, nTok: number): KVLayerRows {
    this.checkOpen();
    if (nTok < 1 || nTok > this.maxBatch) throw new RangeError(`KV cache: a batch of ${nTok} tokens (1..${this.maxBatch})`);
    const pos = this.length;
    if (layer === 0) {
      this.checkRoom(nTok);
      this.batch = nTok;
      const end = pos + nTok;
      // Spill whole blocks so that at most residentTokens positions stay resident after this batch
      // (int8: only complete key blocks, so up to keyBlock - 1 more).
      const excess = end - this.residentTokens;
      const target = excess <= 0 ? this.spilled : Math.min(end, Math.max(this.spilled, Math.ceil(excess / this.blockTokens) * this.blockTokens));
      this.nextSpilled = Math.max(this.spilled, target - (target % this.keyBlock));
    } else if (nTok !== this.batch) {
      throw new Error(`KV cache: layer ${layer} got ${nTok} tokens but the batch has ${this.batch}`);
    }
    const newRow = pos * this.rowBytes;
    if (!this.spill) {
      const k = this.keys[layer]!, v = this.values[layer]!;
      if (this.precision === 'f32') return { k, v, newK: k + newRow, newV: v + newRow };
      return { k, v, newK: this.newKF32, newV: this.newVF32 };
    }
    const st = this.stagingOf(layer);
    // The spilled rows of this layer: already read ahead, or read now.
    if (st.layer !== layer || st.rows < this.spilled) {
      this.spill.wait();
      this.spill.prefetch(layer, this.spilled, st.k, st.v);
      st.layer = layer;
      st.rows = this.spilled;
    }
    this.spill.wait();
    // Read the next layer's spilled rows while this one computes.
    if (layer + 1 < this.layerCount) this.prefetchInto(layer + 1);
    const resident = pos - this.spilled;
    const mem = this.arena.bytes();
    const at = this.spilled * this.rowBytes;
    mem.copyWithin(st.k + at, this.keys[layer]!, this.keys[layer]! + resident * this.rowBytes);
    mem.copyWithin(st.v + at, this.values[layer]!, this.values[layer]! + resident * this.rowBytes);
    if (this.keyTailBytes) mem.copyWithin(st.k - this.keyTailBytes, this.keys[layer]! - this.keyTailBytes, this.keys[layer]!);
    if (this.precision === 'f32') return { k: st.k, v: st.v, newK: st.k + newRow, newV: st.v + newRow };
    return { k: st.k, v: st.v, newK: this.newKF32, newV: this.newVF32 };
  }

  /** Converts the batch's new f32 keys and values (biases and RoPE applied) into the cache rows. */
  storeNewRows(nTok: number, rows: KVLayerRows): void {
    if (this.precision === 'f32') return; // written in place
    const dk = rows.k + this.length * this.rowBytes;
    const dv = rows.v + this.length * this.rowBytes;
    if (this.precision === 'f16') {
      this.kernels.kvStoreF16(rows.newK, dk, this.kvDim, nTok);
      this.kernels.kvStoreF16(rows.newV, dv, this.kvDim, nTok);
    } else {
      this.kernels.kvStoreInt8Keys(rows.newK, rows.k, this.headCountKV, this.headDim, this.length, nTok);
      this.kernels.kvStoreInt8(rows.newV, dv, this.headCountKV, this.headDim, nTok);
    }
  }

  /**
   * Layer `layer` is done with the batch: when spilling, its new rows join its window and the rows
   * leaving memory after this batch are written to the file. Nothing held so far is overwritten, so a
   * batch that fails before endChunk() leaves the cache as it was.
   */
  commitLayer(layer: number, rows: KVLayerRows): void {
    if (!this.spill) return;
    const pos = this.length, end = pos + this.batch;
    const from = this.spilled, to = this.nextSpilled;
    const mem = this.arena.bytes();
    // int8 keys: a block completed by this batch rewrote its rows from its start on, and the tail changed.
    const keysFrom = pos - (pos % this.keyBlock);
    for (const [kind, src, window, first] of [[0, rows.k, this.keys[layer]!, keysFrom], [1, rows.v, this.values[layer]!, pos]] as const) {
      this.spill.write(layer, kind as KVKind, from, to - from, src + from * this.rowBytes);
      mem.copyWithin(window + (first - from) * this.rowBytes, src + first * this.rowBytes, src + end * this.rowBytes);
    }
    if (this.keyTailBytes) mem.copyWithin(this.keys[layer]! - this.keyTailBytes, rows.k - this.keyTailBytes, rows.k);
    const st = this.stagingOf(layer);
    // The staging area now holds this layer's file rows [0, to) as they are in the file.
    if (st.layer === layer) st.rows = to;
  }

  /** The batch went through every layer: its tokens are now held, and spilled blocks leave the windows. */
  endChunk(tokens: readonly number[]): void {
    const pos = this.length;
    for (const t of tokens) this.tokens.push(t);
    if (this.keyTailBytes) this.settleKeyTails(pos);
    if (!this.spill) return;
    const shift = this.nextSpilled - this.spilled;
    if (shift > 0) {
      const mem = this.arena.bytes();
      const keep = (this.length - this.nextSpilled) * this.rowBytes;
      const at = shift * this.rowBytes;
      for (let l = 0; l < this.layerCount; l++) {
        mem.copyWithin(this.keys[l]!, this.keys[l]! + at, this.keys[l]! + at + keep);
        mem.copyWithin(this.values[l]!, this.values[l]! + at, this.values[l]! + at + keep);
      }
    }
    this.spilled = this.nextSpilled;
    // Start reading layer 0 for the next batch now.
    this.prefetchInto(0);
  }

  /**
   * int8, after a batch that started at pos: if it completed the open key block and ended inside a
   * later one, that partial block's tail rows are in the second half; they move to the first, where
   * the next batch reads and extends them (layout: assembly/ref/kv.ts).
   */
  private settleKeyTails(pos: number): void {
    const G = this.keyBlock, end = this.length;
    const complete = end - (end % G);
    if (complete <= pos - (pos % G) || end === complete) return;
    const half = this.keyTailBytes / 2;
    const mem = this.arena.bytes();
    for (let l = 0; l < this.layerCount; l++) {
      const tail = this.keys[l]! - this.keyTailBytes;
      mem.copyWithin(tail, tail + half, tail + half + (end - complete) * 2 * this.kvDim);
    }
  }

  /** Deletes the spill file and stops its reader. The cache cannot be used afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.spill?.close();
  }

  private stagingOf(layer: number): Staging {
    return this.staging[layer % 2]!;
  }

  /** Starts reading `layer`'s spilled rows into its staging area unless they are there already. */
  private prefetchInto(layer: number): void {
    const st = this.stagingOf(layer);
    if (st.layer === layer && st.rows >= this.spilled) return;
    this.spill!.wait();
    this.spill!.prefetch(layer, this.spilled, st.k, st.v);
    st.layer = layer;
    st.rows = this.spilled;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the KV cache is closed');
  }
}

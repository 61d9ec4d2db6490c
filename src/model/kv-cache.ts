// The KV cache: for every layer, keys and values of each processed position, in wasm memory.
import type { Arena } from '../runtime/memory.js';

export class ContextFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContextFullError';
  }
}

export class KVCache {
  /** Per layer: keys, f32 (contextLength, kvDim), row p = position p, heads side by side. */
  readonly keys: readonly number[];
  /** Per layer: values, same layout as keys. */
  readonly values: readonly number[];
  /** Token ids whose keys and values are held, in position order. */
  readonly tokens: number[] = [];

  constructor(
    arena: Arena,
    readonly layerCount: number,
    readonly contextLength: number,
    /** Floats per position per layer (headCountKV * headDim). */
    readonly kvDim: number,
  ) {
    const bytes = contextLength * kvDim * 4;
    const keys: number[] = [];
    const values: number[] = [];
    for (let l = 0; l < layerCount; l++) {
      keys.push(arena.alloc('kv', bytes));
      values.push(arena.alloc('kv', bytes));
    }
    this.keys = keys;
    this.values = values;
  }

  get length(): number {
    return this.tokens.length;
  }

  get bytes(): number {
    return 2 * this.layerCount * this.contextLength * this.kvDim * 4;
  }

  /** Forgets positions from `length` on (their slots are overwritten by later tokens). */
  truncate(length: number): void {
    if (length < this.tokens.length) this.tokens.length = length;
  }

  /** Throws when `more` tokens would not fit after the current ones. */
  checkRoom(more: number): void {
    if (this.tokens.length + more > this.contextLength) {
      throw new ContextFullError(
        `context is full: ${this.tokens.length} tokens held + ${more} new > context length ${this.contextLength} (raise contextLength / --ctx)`,
      );
    }
  }
}

// The layer pager: streamed layers live in a ring of slots in wasm memory and are read from storage
// ahead of use. Layers are used in a fixed cyclic order (every forward pass runs them first to last),
// so whenever a slot is released the pager starts reading the next layer in that order that is not
// already held: the read proceeds on the I/O threads (libuv's pool in Node) while the current layer
// computes on this one. A synchronous path (readSync) serves callers that cannot await.
import type { Storage } from '../storage/storage.js';
import { StorageError } from '../storage/storage.js';

/** One contiguous read of a layer: `length` bytes at `sourceOffset` land at slot + `slotOffset`. */
export interface LayerRead {
  /** Where to read from (default: the pager's storage). */
  readonly storage?: Storage;
  readonly sourceOffset: number;
  readonly length: number;
  readonly slotOffset: number;
}

export interface LayerPagerConfig<View> {
  /** Where the streamed bytes come from (the model file, or the packed-weight cache). */
  readonly storage: Storage;
  /** Streamed layer indices in the order the forward pass uses them. */
  readonly layers: readonly number[];
  /** The reads that fill a slot with layer `l`. */
  readonly readsOf: (layer: number) => readonly LayerRead[];
  /** Pointers of the slots (each large enough for any streamed layer). */
  readonly slotPtrs: readonly number[];
  /** A view of wasm memory at [ptr, ptr+length) to read into. */
  readonly memory: (ptr: number, length: number) => Uint8Array;
  /** What the forward pass uses of layer `l` held in the slot at `slotPtr` (built once per pair). */
  readonly view: (layer: number, slotPtr: number) => View;
  /** Called after a slot was filled (e.g. to convert its bytes in place); runs on this thread. */
  readonly afterRead?: (layer: number, slotPtr: number) => void;
}

/** Bytes of one read request: large enough to be cheap, small enough to spread over I/O threads. */
const READ_PIECE = 8 << 20;

interface Slot {
  readonly ptr: number;
  /** The layer held or being read, or -1. */
  layer: number;
  /** Pending read, if any. */
  loading: Promise<void> | undefined;
  /** A read failed: the slot holds nothing usable. */
  error: unknown;
  /** In use by the forward pass: never the target of a read. */
  pinned: boolean;
}

export interface PagerStats {
  /** Bytes read from storage into slots since creation. */
  readonly bytesRead: number;
  /** Layer reads issued ahead of use. */
  readonly prefetches: number;
  /** acquire() calls that found their layer neither held nor being read (the read was not ahead). */
  readonly misses: number;
  /** Milliseconds acquire() spent waiting for reads. */
  readonly waitMs: number;
}

export class LayerPager<View> {
  private readonly slots: Slot[];
  /** Position of each streamed layer in the cyclic order. */
  private readonly order: Map<number, number>;
  private readonly views = new Map<string, View>();
  private bytesRead = 0;
  private prefetches = 0;
  private misses = 0;
  private waitMs = 0;

  constructor(private readonly config: LayerPagerConfig<View>) {
    if (config.slotPtrs.length < 1) throw new RangeError('the layer pager needs at least one slot');
    this.slots = config.slotPtrs.map((ptr) => ({ ptr, layer: -1, loading: undefined, error: undefined, pinned: false }));
    this.order = new Map(config.layers.map((l, i) => [l, i]));
  }

  isStreamed(layer: number): boolean {
    return this.order.has(layer);
  }

  stats(): PagerStats {
    return { bytesRead: this.bytesRead, prefetches: this.prefetches, misses: this.misses, waitMs: this.waitMs };
  }

  /**
   * Waits until `layer` is in a slot, pins it and returns its view; reads of the layers after it
   * start in every free slot.
   */
  async acquire(layer: number): Promise<View> {
    this.checkStreamed(layer);
    let slot = this.slots.find((s) => s.layer === layer && s.error === undefined);
    if (!slot) {
      this.misses++;
      slot = this.victim(layer, false);
      if (!slot) {
        // Every slot is pinned or being read: wait for the reads, then pick again.
        await this.settle();
        slot = this.victim(layer, true);
        if (!slot) throw new Error(`layer pager: no free slot for layer ${layer} (all ${this.slots.length} slots are in use)`);
      }
      this.startRead(slot, layer);
    }
    slot.pinned = true;
    this.prefetchAfter(layer);
    if (slot.loading) {
      const t0 = performance.now();
      try {
        await slot.loading;
      } finally {
        this.waitMs += performance.now() - t0;
      }
    }
    if (slot.error !== undefined) {
      const e = slot.error;
      slot.pinned = false;
      slot.layer = -1;
      slot.error = undefined;
      throw e;
    }
    return this.viewOf(layer, slot.ptr);
  }

  /**
   * The synchronous twin of acquire(): uses the layer if a slot holds it, otherwise reads it with
   * storage.readSync into a slot no read is pending on. Starts no read ahead.
   */
  acquireSync(layer: number): View {
    this.checkStreamed(layer);
    let slot = this.slots.find((s) => s.layer === layer && !s.loading && s.error === undefined);
    if (!slot) {
      this.misses++;
      slot = this.victim(layer, false);
      if (!slot) throw new Error(`layer pager: every slot is pinned or being read; await settle() before synchronous use`);
      slot.layer = layer;
      slot.error = undefined;
      try {
        for (const r of this.config.readsOf(layer)) {
          const into = this.config.memory(slot.ptr + r.slotOffset, r.length);
          const from = r.storage ?? this.config.storage;
          if (!from.readSync) throw new StorageError(`${from.name}: this storage has no synchronous reads; run the model through its async methods (evaluateAsync, generate)`);
          const n = from.readSync(r.sourceOffset, into);
          if (n !== r.length) throw shortRead(from, r, n);
          this.bytesRead += r.length;
        }
        this.config.afterRead?.(layer, slot.ptr);
      } catch (e) {
        slot.layer = -1;
        throw e;
      }
    }
    slot.pinned = true;
    return this.viewOf(layer, slot.ptr);
  }

  /** The forward pass is done with `layer`: its slot may be refilled with the next layers. */
  release(layer: number, prefetch = true): void {
    for (const s of this.slots) if (s.layer === layer) s.pinned = false;
    if (prefetch) this.prefetchAfter(layer);
  }

  /** Resolves when no read is pending (errors stay recorded on their slots). */
  async settle(): Promise<void> {
    for (;;) {
      const pending = this.slots.filter((s) => s.loading).map((s) => s.loading!);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  /** Starts reading the layers that follow `layer` in the cyclic order into slots not needed sooner. */
  private prefetchAfter(layer: number): void {
    const n = this.config.layers.length;
    const from = this.order.get(layer)!;
    const free = this.slots.filter((s) => !s.pinned).length;
    for (let k = 1; k <= Math.min(free, n - 1); k++) {
      const next = this.config.layers[(from + k) % n]!;
      if (this.slots.some((s) => s.layer === next && s.error === undefined)) continue;
      const slot = this.victim(next, false, from);
      if (!slot) return;
      this.prefetches++;
      this.startRead(slot, next);
    }
  }

  /**
   * The slot to overwrite for `layer`: an empty one, else the one whose layer is needed last in the
   * cyclic order counted from `from` (default: from `layer`). Never a pinned slot; never one with a
   * pending read unless `allowLoading` (only after settle()). Never a slot whose layer is needed
   * before `layer` itself.
   */
  private victim(layer: number, allowLoading: boolean, from = this.order.get(layer)! - 1): Slot | undefined {
    const n = this.config.layers.length;
    const distance = (l: number) => (((this.order.get(l)! - from) % n) + n) % n;
    const need = distance(layer);
    let best: Slot | undefined;
    let bestDistance = -1;
    for (const s of this.slots) {
      if (s.pinned || (s.loading && !allowLoading)) continue;
      if (s.layer === -1 || s.error !== undefined) return s;
      const d = distance(s.layer);
      if (d <= need && d !== 0) continue; // needed sooner than `layer`: keep it
      const score = d === 0 ? n : d; // the layer just used is needed last
      if (score > bestDistance) {
        best = s;
        bestDistance = score;
      }
    }
    return best;
  }

  private startRead(slot: Slot, layer: number): void {
    slot.layer = layer;
    slot.error = undefined;
    const run = async () => {
      // Reads in pieces, all issued at once: the copies out of the page cache spread over the I/O
      // threads, which take whatever core the kernels leave idle.
      const pieces: Promise<void>[] = [];
      for (const r of this.config.readsOf(layer)) {
        const from = r.storage ?? this.config.storage;
        for (let at = 0; at < r.length; at += READ_PIECE) {
          const length = Math.min(READ_PIECE, r.length - at);
          pieces.push(
            from.read(r.sourceOffset + at, this.config.memory(slot.ptr + r.slotOffset + at, length)).then((n) => {
              if (n !== length) throw shortRead(from, { ...r, sourceOffset: r.sourceOffset + at, length }, n);
              this.bytesRead += length;
            }),
          );
        }
      }
      // Every piece settles before the slot is free again, even when one fails.
      const failed = (await Promise.allSettled(pieces)).find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      this.config.afterRead?.(layer, slot.ptr);
    };
    const p = run().then(
      () => {
        slot.loading = undefined;
      },
      (e: unknown) => {
        slot.loading = undefined;
        slot.error = e;
      },
    );
    slot.loading = p;
  }

  private viewOf(layer: number, ptr: number): View {
    const key = `${layer}@${ptr}`;
    let v = this.views.get(key);
    if (v === undefined) {
      v = this.config.view(layer, ptr);
      this.views.set(key, v);
    }
    return v;
  }

  private checkStreamed(layer: number): void {
    if (!this.order.has(layer)) throw new RangeError(`layer ${layer} is not streamed`);
  }
}

function shortRead(storage: Storage, r: LayerRead, n: number): StorageError {
  return new StorageError(`${storage.name}: wanted ${r.length} bytes at offset ${r.sourceOffset}, got ${n} (file is ${storage.size} bytes)`);
}

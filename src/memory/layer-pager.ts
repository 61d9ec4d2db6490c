// The layer pager: streamed layers live in a ring of slots in wasm memory and are read from storage
// ahead of use. Layers are used in a fixed cyclic order (every forward pass runs them first to last),
// so whenever a slot is released the pager starts reading the next layer in that order that is not
// already held, while the current layer computes on this thread. With a reader thread (files in Node)
// the reads go to it, one readSync per matrix straight into the slot, and their completion is seen
// through Atomics: a synchronous forward pass gets its reads ahead too, and a decode loop that never
// yields to the event loop cannot hold them back. Otherwise the reads go through Storage.read (libuv's
// I/O threads in Node) and a synchronous caller reads a missing layer with readSync.
import type { Storage } from '../storage/storage.js';
import { StorageError } from '../storage/storage.js';
import type { ReaderThread } from './reader-thread.js';

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
  /**
   * Reads of storages with a `path` this thread reads (ReaderThread.fileIndex) go through it; the rest
   * through Storage.read.
   */
  readonly reader?: ReaderThread;
}

/** Bytes of one read request: large enough to be cheap, small enough to spread over I/O threads. */
const READ_PIECE = 8 << 20;
/** Reads from this size up are split between two threads when read 'between' layers. */
const SPLIT_MIN_BYTES = 1 << 20;

interface Slot {
  readonly ptr: number;
  /** The layer held or being read, or -1. */
  layer: number;
  /** Pending read through Storage.read, if any. */
  loading: Promise<void> | undefined;
  /** Pending reads on the reader thread, if any: their tickets and what each should give. */
  job: { readonly tickets: readonly number[]; readonly reads: readonly LayerRead[] } | undefined;
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
  private reader: ReaderThread | undefined;
  /** Read layers ahead of use (false: when needed, see useReader). */
  private readAhead = true;
  private bytesRead = 0;
  private prefetches = 0;
  private misses = 0;
  private waitMs = 0;

  constructor(private readonly config: LayerPagerConfig<View>) {
    if (config.slotPtrs.length < 1) throw new RangeError('the layer pager needs at least one slot');
    this.slots = config.slotPtrs.map((ptr) => ({ ptr, layer: -1, loading: undefined, job: undefined, error: undefined, pinned: false }));
    this.order = new Map(config.layers.map((l, i) => [l, i]));
    this.reader = config.reader;
  }

  /**
   * Sends the reads of storages `reader` reads (by path) to it from now on; call before the first
   * acquire. The caller closes the reader after the pager's last use.
   *
   * `schedule` 'ahead' (default) reads the next layers while the current one computes: right when a
   * core is free for the reader. 'between' reads a layer when it is needed, half on the reader thread
   * and half on this one, while the kernel threads wait: when the kernel threads take every core, a
   * read running beside them only takes turns with them (and their barriers wait for the thread it
   * displaced), so copying with two threads between layers is quicker than overlapping. (Every
   * acquire then counts as a miss in stats().)
   */
  useReader(reader: ReaderThread, schedule: 'ahead' | 'between' = 'ahead'): void {
    if (this.slots.some((s) => s.layer !== -1)) throw new Error('layer pager: useReader() after reads began');
    this.reader = reader;
    this.readAhead = schedule === 'ahead';
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
    // Read between layers, the reader's half finishes within this read's time: no event-loop turn.
    if (!this.readAhead && slot.job) this.finishJobSync(slot);
    if (slot.loading || (slot.job && !this.jobDone(slot))) {
      const t0 = performance.now();
      try {
        if (slot.loading) await slot.loading;
        if (slot.job) await this.reader!.wait(slot.job.tickets[slot.job.tickets.length - 1]!).catch(() => undefined);
      } finally {
        this.waitMs += performance.now() - t0;
      }
    }
    this.finishJob(slot);
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
   * The synchronous twin of acquire(): uses the layer if a slot holds it (waiting for the reader
   * thread if its read is in flight there), otherwise reads it with storage.readSync into a slot no
   * read is pending on. With a reader thread, starts the reads of the next layers like acquire().
   */
  acquireSync(layer: number): View {
    this.checkStreamed(layer);
    let slot = this.slots.find((s) => s.layer === layer && !s.loading && s.error === undefined);
    if (slot?.job) {
      this.finishJobSync(slot);
      if (slot.error !== undefined) {
        const e = slot.error;
        slot.layer = -1;
        slot.error = undefined;
        throw e;
      }
    }
    if (!slot) {
      this.misses++;
      slot = this.victim(layer, false);
      if (!slot && this.reader) {
        // Reads ahead of another order than this one's: let the reader thread's reads finish.
        for (const s of this.slots) if (s.job) this.finishJobSync(s);
        slot = this.victim(layer, true);
      }
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
    if (this.reader) this.prefetchAfter(layer);
    return this.viewOf(layer, slot.ptr);
  }

  /**
   * The forward pass is done with `layer`: its slot may be refilled with the next layers. `prefetch`
   * false (a caller that cannot await) starts no read through Storage.read, whose completion needs
   * the event loop; reads on the reader thread start either way.
   */
  release(layer: number, prefetch = true): void {
    for (const s of this.slots) if (s.layer === layer) s.pinned = false;
    if (prefetch || this.reader) this.prefetchAfter(layer);
  }

  /** Resolves when no read is pending (errors stay recorded on their slots). */
  async settle(): Promise<void> {
    for (;;) {
      const pending = this.slots.filter((s) => s.loading).map((s) => s.loading!);
      for (const s of this.slots) {
        if (s.job && !this.jobDone(s)) pending.push(this.reader!.wait(s.job.tickets[s.job.tickets.length - 1]!).then(() => undefined, () => undefined));
      }
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  /** Every read of the slot's reader-thread job has finished (well or not). */
  private jobDone(slot: Slot): boolean {
    return slot.job === undefined || this.reader!.isDone(slot.job.tickets[slot.job.tickets.length - 1]!);
  }

  /** Waits for the slot's reader-thread job and finishes it. */
  private finishJobSync(slot: Slot): void {
    if (!slot.job) return;
    const t0 = performance.now();
    try {
      this.reader!.waitSync(slot.job.tickets[slot.job.tickets.length - 1]!);
    } catch {
      // The job's own error is read by finishJob.
    } finally {
      this.waitMs += performance.now() - t0;
    }
    this.finishJob(slot);
  }

  /** A finished reader-thread job: records its error on the slot, or runs afterRead. */
  private finishJob(slot: Slot): void {
    const job = slot.job;
    if (!job || !this.jobDone(slot)) return;
    slot.job = undefined;
    try {
      job.tickets.forEach((t, i) => {
        const r = job.reads[i]!;
        const { bytes } = this.reader!.waitSync(t);
        if (bytes !== r.length) throw shortRead(r.storage ?? this.config.storage, r, bytes);
        this.bytesRead += r.length;
      });
      if (slot.error === undefined) this.config.afterRead?.(slot.layer, slot.ptr);
    } catch (e) {
      slot.error ??= e;
    }
  }

  /** Starts reading the layers that follow `layer` in the cyclic order into slots not needed sooner. */
  private prefetchAfter(layer: number): void {
    if (!this.readAhead) return;
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
      if (s.pinned || ((s.loading || !this.jobDone(s)) && !allowLoading)) continue;
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
    slot.job = undefined;
    const reader = this.reader;
    if (reader) {
      const reads = this.config.readsOf(layer);
      const files = reads.map((r) => {
        const path = (r.storage ?? this.config.storage).path;
        return path === undefined ? -1 : reader.fileIndex(path);
      });
      if (reads.length > 0 && files.every((f) => f >= 0)) {
        if (!this.readAhead) return this.readBetween(slot, reads, files);
        // One job per read, straight into the slot; the thread runs them in order.
        slot.job = { reads, tickets: reads.map((r, i) => reader.read(files[i]!, r.sourceOffset, slot.ptr + r.slotOffset, r.length)) };
        return;
      }
    }
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

  /**
   * Reads a layer now with two threads: the first half of each large read on the reader thread, the
   * second with readSync on this one; the reader's half is then waited for as a job.
   */
  private readBetween(slot: Slot, reads: readonly LayerRead[], files: readonly number[]): void {
    const reader = this.reader!;
    const theirs: LayerRead[] = [];
    const tickets: number[] = [];
    const ours: LayerRead[] = [];
    reads.forEach((r, i) => {
      const from = r.storage ?? this.config.storage;
      const half = r.length >= SPLIT_MIN_BYTES && from.readSync ? Math.floor(r.length / 2 / 4096) * 4096 : r.length;
      const first = { ...r, length: half };
      theirs.push(first);
      tickets.push(reader.read(files[i]!, r.sourceOffset, slot.ptr + r.slotOffset, half));
      if (half < r.length) ours.push({ ...r, sourceOffset: r.sourceOffset + half, slotOffset: r.slotOffset + half, length: r.length - half });
    });
    slot.job = { reads: theirs, tickets };
    try {
      for (const r of ours) {
        const from = r.storage ?? this.config.storage;
        const n = from.readSync!(r.sourceOffset, this.config.memory(slot.ptr + r.slotOffset, r.length));
        if (n !== r.length) throw shortRead(from, r, n);
        this.bytesRead += r.length;
      }
    } catch (e) {
      // Recorded once the reader's half is done: the slot is not reused while it writes there.
      slot.error = e;
    }
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

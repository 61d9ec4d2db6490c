// The KV spill file: a temporary file holding the rows of the KV cache that were moved out of wasm
// memory, at a fixed place per (layer, keys|values, position), written on this thread and read back
// either on this thread or by a reader thread that fills wasm memory while the model computes (the
// prefetch of the next layer). Every open spill file is listed in the process-wide registry below so
// that it is removed on close, on process exit, and on SIGINT/SIGTERM when nothing else handles them.
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** Keys or values. */
export type KVKind = 0 | 1;

export interface KVSpillFileConfig {
  readonly layerCount: number;
  readonly contextLength: number;
  /** Bytes of one position's row of one layer's keys (values are the same size). */
  readonly rowBytes: number;
  /** The wasm memory reads land in (shared, so a reader thread can fill it). */
  readonly memory: WebAssembly.Memory;
  /** Folder of the temporary file (default: the OS temporary folder). */
  readonly dir?: string;
  /**
   * 'thread' (default): reads issued by prefetch() run on a reader thread while this one computes;
   * 'sync': every read runs on this thread when it is waited for.
   */
  readonly reader?: 'thread' | 'sync';
  /** Milliseconds to wait for the reader thread before failing (default 60 s). */
  readonly readTimeoutMs?: number;
}

export class KVSpillError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KVSpillError';
  }
}

/** One read: `length` bytes at file offset `fileOffset` into wasm memory at `ptr`. */
interface SpillRead {
  readonly fileOffset: number;
  readonly ptr: number;
  readonly length: number;
}

/**
 * The process-wide list of spill files still on disk. It is the one piece of module-level mutable
 * state of the spill code, and has to be: a process 'exit' hook (registered once, when the first file
 * opens) must find every file even when its model was never closed.
 */
class SpillFileRegistry {
  private readonly paths = new Set<string>();
  private exitHooked = false;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    // Another listener means the application handles the signal (e.g. chat's Ctrl-C stops a reply)
    // and may keep running with the model open: leave the files; 'exit' removes them if it ends.
    if (process.listenerCount(signal) > 1) return;
    this.removeAll();
    this.unhookSignals();
    process.kill(process.pid, signal); // the default action, now that no listener is left
  };

  add(path: string): void {
    if (this.paths.size === 0) this.hookSignals();
    this.paths.add(path);
    if (!this.exitHooked) {
      this.exitHooked = true;
      process.once('exit', () => this.removeAll());
    }
  }

  /** Deletes `path` (if still listed) and forgets it. */
  remove(path: string): void {
    if (!this.paths.delete(path)) return;
    removeQuietly(path);
    if (this.paths.size === 0) this.unhookSignals();
  }

  /** Paths currently listed (for tests and diagnostics). */
  list(): string[] {
    return [...this.paths];
  }

  private removeAll(): void {
    for (const p of this.paths) removeQuietly(p);
    this.paths.clear();
  }

  private hookSignals(): void {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  private unhookSignals(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone: nothing to do.
  }
}

/** Every spill file of this process that is still on disk. */
export const spillFileRegistry = new SpillFileRegistry();

// Reader thread control block (Int32Array): request generation, done generation, error flag, quit
// flag, request count; then Float64 triples (fileOffset, ptr, length), then the error text.
const C_REQUEST = 0;
const C_DONE = 1;
const C_ERROR = 2;
const C_QUIT = 3;
const C_COUNT = 4;
const C_INTS = 8;
const MAX_READS = 16;
const ERROR_TEXT_BYTES = 1024;
const CONTROL_BYTES = C_INTS * 4 + MAX_READS * 3 * 8 + ERROR_TEXT_BYTES;

// The reader thread's whole program (CommonJS, evaluated as it is: no file to locate from src/ or dist/).
const READER_SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { memory, control, path, layout: L } = workerData;
const i32 = new Int32Array(control, 0, L.C_INTS);
const f64 = new Float64Array(control, L.C_INTS * 4, L.MAX_READS * 3);
const errorText = new Uint8Array(control, L.C_INTS * 4 + L.MAX_READS * 24, L.ERROR_TEXT_BYTES);
let fd = -1;
let seen = 0;
for (;;) {
  Atomics.wait(i32, L.C_REQUEST, seen);
  if (Atomics.load(i32, L.C_QUIT)) break;
  const gen = Atomics.load(i32, L.C_REQUEST);
  if (gen === seen) continue;
  seen = gen;
  let failed = 0;
  try {
    if (fd < 0) fd = fs.openSync(path, 'r');
    const n = Atomics.load(i32, L.C_COUNT);
    for (let r = 0; r < n; r++) {
      const off = f64[3 * r], ptr = f64[3 * r + 1], len = f64[3 * r + 2];
      const view = new Uint8Array(memory.buffer, ptr, len);
      let done = 0;
      while (done < len) {
        const got = fs.readSync(fd, view, done, len - done, off + done);
        if (got === 0) throw new Error('short read: ' + done + ' of ' + len + ' bytes at offset ' + off);
        done += got;
      }
    }
  } catch (e) {
    failed = 1;
    const bytes = new TextEncoder().encode(String(e && e.message || e)).subarray(0, L.ERROR_TEXT_BYTES - 4);
    new DataView(control).setInt32(L.C_INTS * 4 + L.MAX_READS * 24, bytes.length, true);
    errorText.set(bytes, 4);
  }
  Atomics.store(i32, L.C_ERROR, failed);
  Atomics.store(i32, L.C_DONE, seen);
  Atomics.notify(i32, L.C_DONE);
}
if (fd >= 0) fs.closeSync(fd);
`;

/**
 * The spill file of one KV cache. Rows sit at ((layer * 2 + kind) * contextLength + position) *
 * rowBytes, so the file is as large as the spilled part of the cache (sparse elsewhere). One batch of
 * reads may be in flight at a time: prefetch() issues it, wait() returns once it has landed.
 */
export class KVSpillFile {
  readonly path: string;
  private fd: number;
  private readonly worker: Worker | undefined;
  private readonly control: Int32Array | undefined;
  private readonly requests: Float64Array | undefined;
  /** Reads issued and not yet waited for (the sync reader performs them in wait()). */
  private pending: SpillRead[] | undefined;
  private generation = 0;
  private closed = false;
  private readonly readTimeoutMs: number;
  private bytesWritten = 0;
  private bytesRead = 0;

  constructor(private readonly config: KVSpillFileConfig) {
    const { layerCount, contextLength, rowBytes } = config;
    for (const [name, v] of [['layerCount', layerCount], ['contextLength', contextLength], ['rowBytes', rowBytes]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`KV spill file: ${name} must be a positive integer, got ${v}`);
    }
    this.readTimeoutMs = config.readTimeoutMs ?? 60_000;
    const dir = config.dir ?? tmpdir();
    this.path = join(dir, `pocketllm-kv-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}.bin`);
    try {
      this.fd = openSync(this.path, 'wx+', 0o600);
    } catch (e) {
      throw new KVSpillError(`cannot create the KV spill file in ${dir}: ${(e as Error).message}`, { cause: e });
    }
    spillFileRegistry.add(this.path);
    if ((config.reader ?? 'thread') === 'thread') {
      const control = new SharedArrayBuffer(CONTROL_BYTES);
      this.control = new Int32Array(control, 0, C_INTS);
      this.requests = new Float64Array(control, C_INTS * 4, MAX_READS * 3);
      try {
        this.worker = new Worker(READER_SOURCE, {
          eval: true,
          workerData: { memory: config.memory, control, path: this.path, layout: { C_REQUEST, C_DONE, C_ERROR, C_QUIT, C_COUNT, C_INTS, MAX_READS, ERROR_TEXT_BYTES } },
        });
      } catch (e) {
        this.close();
        throw new KVSpillError(`cannot start the KV spill reader thread: ${(e as Error).message}`, { cause: e });
      }
      this.worker.unref(); // an idle reader must not keep the process alive
      this.worker.on('error', () => undefined); // surfaces as a timeout in wait(); never an unhandled event
    }
  }

  /** File offset of `position`'s row of `layer`'s keys (kind 0) or values (kind 1). */
  offsetOf(layer: number, kind: KVKind, position: number): number {
    return ((layer * 2 + kind) * this.config.contextLength + position) * this.config.rowBytes;
  }

  /** Writes `rows` rows from wasm memory at `ptr` as positions first.. of (layer, kind). */
  write(layer: number, kind: KVKind, first: number, rows: number, ptr: number): void {
    this.checkOpen();
    if (rows <= 0) return;
    const length = rows * this.config.rowBytes;
    const view = new Uint8Array(this.config.memory.buffer, ptr, length);
    const at = this.offsetOf(layer, kind, first);
    let done = 0;
    try {
      while (done < length) done += writeSync(this.fd, view, done, length - done, at + done);
    } catch (e) {
      throw new KVSpillError(`writing the KV spill file ${this.path} failed: ${(e as Error).message}`, { cause: e });
    }
    this.bytesWritten += length;
  }

  /**
   * Starts reading positions [0, rows) of `layer`'s keys and values into wasm memory at kPtr and vPtr.
   * Any earlier batch must have been waited for.
   */
  prefetch(layer: number, rows: number, kPtr: number, vPtr: number): void {
    this.checkOpen();
    if (this.pending) throw new Error('KV spill file: a read is already in flight; wait() for it first');
    const length = rows * this.config.rowBytes;
    const reads: SpillRead[] = rows <= 0 ? [] : [
      { fileOffset: this.offsetOf(layer, 0, 0), ptr: kPtr, length },
      { fileOffset: this.offsetOf(layer, 1, 0), ptr: vPtr, length },
    ];
    this.pending = reads;
    if (!this.worker || reads.length === 0) return;
    const c = this.control!;
    reads.forEach((r, i) => this.requests!.set([r.fileOffset, r.ptr, r.length], 3 * i));
    Atomics.store(c, C_COUNT, reads.length);
    this.generation = (this.generation + 1) | 0;
    Atomics.store(c, C_REQUEST, this.generation);
    Atomics.notify(c, C_REQUEST);
  }

  /** Blocks until the batch issued by prefetch() is in wasm memory (does nothing when none is). */
  wait(): void {
    const reads = this.pending;
    if (!reads) return;
    this.pending = undefined;
    const bytes = reads.reduce((a, r) => a + r.length, 0);
    if (reads.length === 0) return;
    if (!this.worker) {
      for (const r of reads) this.readHere(r);
      this.bytesRead += bytes;
      return;
    }
    const c = this.control!;
    const deadline = performance.now() + this.readTimeoutMs;
    while (Atomics.load(c, C_DONE) !== this.generation) {
      const left = deadline - performance.now();
      if (left <= 0) throw new KVSpillError(`the KV spill reader thread did not answer within ${this.readTimeoutMs} ms`);
      Atomics.wait(c, C_DONE, Atomics.load(c, C_DONE), Math.min(left, 50));
    }
    if (Atomics.load(c, C_ERROR) !== 0) {
      const textAt = C_INTS * 4 + MAX_READS * 24;
      const view = new DataView(c.buffer);
      const n = view.getInt32(textAt, true);
      const text = new TextDecoder().decode(new Uint8Array(c.buffer, textAt + 4, n).slice());
      throw new KVSpillError(`reading the KV spill file ${this.path} failed: ${text}`);
    }
    this.bytesRead += bytes;
  }

  /** Bytes written to and read back from the file so far. */
  stats(): { bytesWritten: number; bytesRead: number } {
    return { bytesWritten: this.bytesWritten, bytesRead: this.bytesRead };
  }

  /** Stops the reader thread, closes and deletes the file. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = undefined;
    if (this.worker) {
      Atomics.store(this.control!, C_QUIT, 1);
      Atomics.add(this.control!, C_REQUEST, 1);
      Atomics.notify(this.control!, C_REQUEST);
      void this.worker.terminate().catch(() => undefined);
    }
    try {
      closeSync(this.fd);
    } catch {
      // Closing a descriptor the OS already dropped: nothing to recover.
    }
    this.fd = -1;
    spillFileRegistry.remove(this.path);
  }

  private readHere(r: SpillRead): void {
    const view = new Uint8Array(this.config.memory.buffer, r.ptr, r.length);
    let done = 0;
    try {
      while (done < r.length) {
        const got = readSync(this.fd, view, done, r.length - done, r.fileOffset + done);
        if (got === 0) throw new Error(`short read: ${done} of ${r.length} bytes at offset ${r.fileOffset}`);
        done += got;
      }
    } catch (e) {
      throw new KVSpillError(`reading the KV spill file ${this.path} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the KV spill file is closed');
  }
}

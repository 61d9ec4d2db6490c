// The reader thread: one worker thread that copies file bytes straight into the shared wasm memory
// (readSync into a view of it, no intermediate buffer) and computes checksums, for the layer pager
// and the packed-weight cache. Jobs and their completion travel through Atomics on a shared block, not
// messages, so a caller that never yields to the event loop (a synchronous forward pass, a decode loop
// whose reads are already done) still sees reads finish, and can wait for one with Atomics.wait.
// Jobs run one after another in submission order: "ticket t is done" is "DONE > t".
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { StorageError } from '../storage/storage.js';

/** Jobs the ring holds at once; a submit past that waits for the oldest to finish. */
const RING = 256;
/** Per job, i32 fields: kind, file, status, checksum; f64 fields: offset, ptr, length, bytes done. */
const I32_FIELDS = 4;
const F64_FIELDS = 4;
/** Bytes of UTF-8 error text kept per job. */
const MESSAGE_BYTES = 160;

// Control words (Int32Array indices).
const SUBMITTED = 0;
const DONE = 1;
const STATE = 2;
/** Set by close(): jobs not yet started are dropped. */
const CANCELLED = 3;
/** Jobs the thread has started (DONE, plus one while a job runs). */
const STARTED = 4;
const CONTROL_WORDS = 5;

/** STATE once the thread's loop has ended (0 while it runs). A thread ended by terminate() skips
 * that, and the 'exit' event that then marks it comes through the event loop: only close() ends it. */
const STATE_GONE = 1;

const KIND_READ = 1;
/** CRC-32 of wasm memory [ptr, ptr + length). */
const KIND_CRC_MEMORY = 2;
/** CRC-32 of file bytes [offset, offset + length), read through the thread's own buffer. */
const KIND_CRC_FILE = 3;
const KIND_QUIT = 4;

const STATUS_OK = 0;
const STATUS_ERROR = 1;

/** How long one synchronous wait sleeps before it looks whether the thread is still there (ms). */
const WAIT_SLICE_MS = 1000;

/** Test hooks: slow every job down, or fail the n-th read. */
export interface ReaderThreadTestHooks {
  readonly delayMs?: number;
  /** Fails the read jobs whose ticket is in this list, as a disk error would. */
  readonly failTickets?: readonly number[];
}

export interface ReaderThreadOptions {
  /** Paths of the files jobs read from, by index. */
  readonly files: readonly string[];
  /** The shared wasm memory reads land in. */
  readonly memory: WebAssembly.Memory;
  readonly testHooks?: ReaderThreadTestHooks;
}

/** The worker's code: CommonJS, evaluated as is, so it runs from src/ (tests) and dist/ alike. */
const WORKER_SOURCE = String.raw`
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const { control, numbers, messages, memory, files, layout: L, hooks } = workerData;
const i32 = new Int32Array(control);
const f64 = new Float64Array(numbers);
const text = new Uint8Array(messages);
const fds = files.map(() => -1);
const fail = new Set(hooks.failTickets || []);
let scratch = null;
function fdOf(i) {
  if (fds[i] < 0) fds[i] = fs.openSync(files[i], 'r');
  return fds[i];
}
function readFully(fd, into, offset) {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, Math.min(into.length - done, 1 << 30), offset + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
// memory.buffer is fetched per job: the main thread grows the memory meanwhile.
function bytesAt(ptr, length) {
  const buffer = memory.buffer;
  if (ptr + length > buffer.byteLength) throw new Error('bytes [' + ptr + ', ' + (ptr + length) + ') lie beyond the wasm memory (' + buffer.byteLength + ' bytes)');
  return new Uint8Array(buffer, ptr, length);
}
function run(t, e) {
  const kind = i32[L.CONTROL_WORDS + e * L.I32_FIELDS];
  const file = i32[L.CONTROL_WORDS + e * L.I32_FIELDS + 1];
  const offset = f64[e * L.F64_FIELDS];
  const ptr = f64[e * L.F64_FIELDS + 1];
  const length = f64[e * L.F64_FIELDS + 2];
  if (hooks.delayMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, hooks.delayMs);
  if (kind === L.KIND_READ) {
    if (fail.has(t)) throw new Error('injected read failure (test hook)');
    f64[e * L.F64_FIELDS + 3] = readFully(fdOf(file), bytesAt(ptr, length), offset);
  } else if (kind === L.KIND_CRC_MEMORY) {
    i32[L.CONTROL_WORDS + e * L.I32_FIELDS + 3] = zlib.crc32(bytesAt(ptr, length)) | 0;
    f64[e * L.F64_FIELDS + 3] = length;
  } else if (kind === L.KIND_CRC_FILE) {
    scratch = scratch || Buffer.allocUnsafe(L.CRC_CHUNK);
    let crc = 0;
    let done = 0;
    while (done < length) {
      const n = readFully(fdOf(file), scratch.subarray(0, Math.min(scratch.length, length - done)), offset + done);
      if (n === 0) break;
      crc = zlib.crc32(scratch.subarray(0, n), crc);
      done += n;
    }
    i32[L.CONTROL_WORDS + e * L.I32_FIELDS + 3] = crc | 0;
    f64[e * L.F64_FIELDS + 3] = done;
  }
}
try {
  for (let t = 0; ; t++) {
    while (Atomics.load(i32, L.SUBMITTED) <= t) Atomics.wait(i32, L.SUBMITTED, t);
    const e = t % L.RING;
    const kind = i32[L.CONTROL_WORDS + e * L.I32_FIELDS];
    if (kind === L.KIND_QUIT) break;
    let status = L.STATUS_OK;
    try {
      Atomics.store(i32, L.STARTED, t + 1);
      if (Atomics.load(i32, L.CANCELLED)) throw new Error('dropped: the reader thread was closed before this job started');
      run(t, e);
    } catch (err) {
      status = L.STATUS_ERROR;
      const msg = Buffer.from(String((err && err.message) || err)).subarray(0, L.MESSAGE_BYTES - 1);
      text.fill(0, e * L.MESSAGE_BYTES, (e + 1) * L.MESSAGE_BYTES);
      text.set(msg, e * L.MESSAGE_BYTES);
    }
    i32[L.CONTROL_WORDS + e * L.I32_FIELDS + 2] = status;
    Atomics.store(i32, L.DONE, t + 1);
    Atomics.notify(i32, L.DONE);
  }
} finally {
  for (const fd of fds) if (fd >= 0) try { fs.closeSync(fd); } catch {}
  Atomics.store(i32, L.STATE, L.STATE_GONE);
  Atomics.notify(i32, L.DONE);
}
`;

/** CRC-32 chunk the thread reads through for file checksums. */
const CRC_CHUNK = 8 << 20;

/** Atomics.waitAsync (ES2024; in V8 since Node 16), which the ES2022 library typings do not declare. */
interface AtomicsWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

/** The result of a finished job. */
export interface ReaderJobResult {
  /** Bytes read (reads and file checksums) or hashed. */
  readonly bytes: number;
  /** CRC-32 (checksum jobs). */
  readonly checksum: number;
}

/** True when this runtime can run the reader thread: zlib.crc32 (Node 20.15+, 22.2+) is there. */
export function readerThreadAvailable(): boolean {
  return typeof (zlib as unknown as { crc32?: unknown }).crc32 === 'function';
}

export class ReaderThread {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly text: Uint8Array;
  private submitted = 0;
  private asyncWaiters = 0;
  private closing: Promise<void> | undefined;
  private exitError: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    control: SharedArrayBuffer,
    numbers: SharedArrayBuffer,
    messages: SharedArrayBuffer,
    readonly files: readonly string[],
  ) {
    this.i32 = new Int32Array(control);
    this.f64 = new Float64Array(numbers);
    this.text = new Uint8Array(messages);
    worker.on('error', (e) => {
      this.exitError = e;
    });
    worker.on('exit', () => {
      // A thread that ended without its finally block (terminated) still wakes any waiter.
      Atomics.store(this.i32, STATE, STATE_GONE);
      Atomics.notify(this.i32, DONE);
    });
    // An idle reader never keeps the process alive.
    worker.unref();
  }

  static start(options: ReaderThreadOptions): ReaderThread {
    const control = new SharedArrayBuffer((CONTROL_WORDS + RING * I32_FIELDS) * 4);
    const numbers = new SharedArrayBuffer(RING * F64_FIELDS * 8);
    const messages = new SharedArrayBuffer(RING * MESSAGE_BYTES);
    const layout = {
      SUBMITTED, DONE, STATE, CANCELLED, STARTED, CONTROL_WORDS, STATE_GONE, RING, I32_FIELDS, F64_FIELDS, MESSAGE_BYTES,
      KIND_READ, KIND_CRC_MEMORY, KIND_CRC_FILE, KIND_QUIT, STATUS_OK, STATUS_ERROR, CRC_CHUNK,
    };
    const hooks = { delayMs: options.testHooks?.delayMs ?? 0, failTickets: [...(options.testHooks?.failTickets ?? [])] };
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { control, numbers, messages, memory: options.memory, files: [...options.files], layout, hooks },
    });
    return new ReaderThread(worker, control, numbers, messages, options.files);
  }

  /** Jobs whose results are kept at once: a job's result can be read until this many later ones were submitted. */
  get capacity(): number {
    return RING;
  }

  /** Index of `path` among the files this thread reads, or -1. */
  fileIndex(path: string): number {
    return this.files.indexOf(path);
  }

  /** Queues a read of `length` bytes at `offset` of file `file` into wasm memory at `ptr`; returns its ticket. */
  read(file: number, offset: number, ptr: number, length: number): number {
    return this.submit(KIND_READ, file, offset, ptr, length);
  }

  /** Queues the CRC-32 of wasm memory [ptr, ptr + length). */
  checksumMemory(ptr: number, length: number): number {
    return this.submit(KIND_CRC_MEMORY, 0, 0, ptr, length);
  }

  /** Queues the CRC-32 of `length` bytes at `offset` of file `file` (read through the thread's own buffer). */
  checksumFile(file: number, offset: number, length: number): number {
    return this.submit(KIND_CRC_FILE, file, offset, 0, length);
  }

  /** True once the thread has started job `ticket` (it may have finished too). */
  hasStarted(ticket: number): boolean {
    return Atomics.load(this.i32, STARTED) > ticket;
  }

  /** True once job `ticket` has finished (well or not); never waits. */
  isDone(ticket: number): boolean {
    return Atomics.load(this.i32, DONE) > ticket;
  }

  /** Waits (blocking this thread) until job `ticket` finished; returns its result or throws its error. */
  waitSync(ticket: number): ReaderJobResult {
    for (;;) {
      const done = Atomics.load(this.i32, DONE);
      if (done > ticket) return this.result(ticket);
      this.checkAlive(ticket);
      Atomics.wait(this.i32, DONE, done, WAIT_SLICE_MS);
    }
  }

  /** Waits without blocking the event loop until job `ticket` finished; its result, or its error. */
  async wait(ticket: number): Promise<ReaderJobResult> {
    if (this.isDone(ticket)) return this.result(ticket);
    // A pending Atomics.waitAsync does not keep Node's event loop alive: the worker does, meanwhile.
    if (this.asyncWaiters++ === 0) this.worker.ref();
    try {
      for (;;) {
        const done = Atomics.load(this.i32, DONE);
        if (done > ticket) return this.result(ticket);
        this.checkAlive(ticket);
        const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.i32, DONE, done, WAIT_SLICE_MS);
        if (w.async) await w.value;
      }
    } finally {
      if (--this.asyncWaiters === 0) this.worker.unref();
    }
  }

  /**
   * Lets the job running finish (it may be writing into wasm memory), drops the queued ones (their
   * waits fail) and ends the thread. Resolves once the thread has exited.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      // Until it has exited, the thread keeps the event loop alive so that this promise settles.
      this.worker.ref();
      Atomics.store(this.i32, CANCELLED, 1);
      if (Atomics.load(this.i32, STATE) !== STATE_GONE) this.submitRaw(KIND_QUIT, 0, 0, 0, 0);
      await exited;
    })();
    return this.closing;
  }

  private submit(kind: number, file: number, offset: number, ptr: number, length: number): number {
    if (this.closing) throw new StorageError('reader thread: closed');
    if (kind !== KIND_CRC_MEMORY && (file < 0 || file >= this.files.length)) throw new RangeError(`reader thread: no file ${file}`);
    if (!(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0 && Number.isSafeInteger(ptr) && ptr >= 0)) {
      throw new RangeError(`reader thread: bad job (offset ${offset}, ptr ${ptr}, length ${length})`);
    }
    return this.submitRaw(kind, file, offset, ptr, length);
  }

  private submitRaw(kind: number, file: number, offset: number, ptr: number, length: number): number {
    const t = this.submitted;
    // The ring is full: the oldest job must finish before its entry is reused.
    if (t - RING >= 0 && !this.isDone(t - RING)) this.waitSync(t - RING);
    const e = t % RING;
    const ib = CONTROL_WORDS + e * I32_FIELDS;
    this.i32[ib] = kind;
    this.i32[ib + 1] = file;
    this.i32[ib + 2] = STATUS_OK;
    this.i32[ib + 3] = 0;
    const fb = e * F64_FIELDS;
    this.f64[fb] = offset;
    this.f64[fb + 1] = ptr;
    this.f64[fb + 2] = length;
    this.f64[fb + 3] = 0;
    this.submitted = t + 1;
    Atomics.store(this.i32, SUBMITTED, t + 1);
    Atomics.notify(this.i32, SUBMITTED);
    return t;
  }

  /** The result of a finished job; its entry is valid until RING later jobs were submitted. */
  private result(ticket: number): ReaderJobResult {
    if (ticket + RING < this.submitted) throw new Error(`reader thread: the result of job ${ticket} was overwritten (read it before ${RING} more jobs)`);
    const e = ticket % RING;
    const ib = CONTROL_WORDS + e * I32_FIELDS;
    if (this.i32[ib + 2] === STATUS_ERROR) {
      const raw = this.text.subarray(e * MESSAGE_BYTES, (e + 1) * MESSAGE_BYTES);
      const end = raw.indexOf(0);
      const message = new TextDecoder().decode(raw.slice(0, end < 0 ? raw.length : end));
      const file = this.i32[ib] === KIND_CRC_MEMORY ? 'wasm memory' : this.files[this.i32[ib + 1]!];
      throw new StorageError(`reader thread: ${file}: ${message}`);
    }
    return { bytes: this.f64[e * F64_FIELDS + 3]!, checksum: this.i32[ib + 3]! >>> 0 };
  }

  private checkAlive(ticket: number): void {
    if (Atomics.load(this.i32, STATE) === STATE_GONE && Atomics.load(this.i32, DONE) <= ticket) {
      const why = this.exitError ? `: ${this.exitError.message}` : this.closing ? ' (closed)' : '';
      throw new StorageError(`reader thread stopped before job ${ticket} finished${why}`);
    }
  }
}

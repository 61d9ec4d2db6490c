// The one shared WebAssembly.Memory and the arena allocator over it. TypeScript owns all memory; the
// kernels only read and write at the pointers they are given. Allocations are tagged with a region
// (weights, kv, scratch, io) so the engine can report where the bytes went.

export const WASM_PAGE = 65536;
/** A wasm32 memory cannot pass 4 GiB (65536 pages). */
export const MAX_WASM_PAGES = 65536;

export type ArenaRegion = 'weights' | 'kv' | 'scratch' | 'io';

export class OutOfWasmMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutOfWasmMemoryError';
  }
}

/** Creates the shared memory every kernel instance (and later every worker) imports. */
export function createSharedMemory(initialPages = 16, maximumPages = MAX_WASM_PAGES): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: initialPages, maximum: maximumPages, shared: true });
}

/**
 * A bump allocator over a WebAssembly.Memory, growing it on demand. Scratch space is handed out with
 * mark/release so a step's temporaries are freed together.
 */
export class Arena {
  readonly memory: WebAssembly.Memory;
  private top: number;
  private readonly regionBytes: Record<ArenaRegion, number> = { weights: 0, kv: 0, scratch: 0, io: 0 };
  private cachedBuffer: ArrayBufferLike;
  private u8View: Uint8Array;

  /** `base` is the first byte the arena may use (above the kernel module's static data). */
  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    this.top = alignUp(base, 64);
    this.cachedBuffer = memory.buffer;
    this.u8View = new Uint8Array(this.cachedBuffer);
  }

  /** Allocates `bytes` bytes aligned to `align` (default 64, a cache line) and returns the pointer. */
  alloc(region: ArenaRegion, bytes: number, align = 64): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`bad allocation size ${bytes}`);
    const ptr = alignUp(this.top, align);
    const end = ptr + bytes;
    this.ensure(end);
    this.top = end;
    this.regionBytes[region] += end - ptr;
    return ptr;
  }

  /** Current top of the arena; pass it to release() to free everything allocated after it. */
  mark(): number {
    return this.top;
  }

  release(mark: number, region: ArenaRegion = 'scratch'): void {
    if (mark > this.top) throw new RangeError('release above the arena top');
    this.regionBytes[region] -= this.top - mark;
    this.top = mark;
  }

  /** Bytes handed out per region. */
  usage(): Readonly<Record<ArenaRegion, number>> {
    return { ...this.regionBytes };
  }

  get used(): number {
    return this.top;
  }

  /** Size of the wasm memory in bytes. */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / WASM_PAGE);
    if (have / WASM_PAGE + pages > MAX_WASM_PAGES) {
      throw new OutOfWasmMemoryError(`wasm memory would need ${(end / 2 ** 30).toFixed(2)} GiB, past the 4 GiB limit of wasm32`);
    }
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new OutOfWasmMemoryError(`could not grow wasm memory to ${(end / 2 ** 20).toFixed(0)} MiB: ${(e as Error).message}`);
    }
  }

  /** A byte view of the whole memory (refreshed after growth). */
  bytes(): Uint8Array {
    const buf = this.memory.buffer;
    if (buf !== this.cachedBuffer || this.u8View.byteLength !== buf.byteLength) {
      this.cachedBuffer = buf;
      this.u8View = new Uint8Array(buf);
    }
    return this.u8View;
  }

  u8(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.bytes().buffer, ptr, length);
  }
  i8(ptr: number, length: number): Int8Array {
    return new Int8Array(this.bytes().buffer, ptr, length);
  }
  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.bytes().buffer, ptr, length);
  }
  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.bytes().buffer, ptr, length);
  }
  u16(ptr: number, length: number): Uint16Array {
    return new Uint16Array(this.bytes().buffer, ptr, length);
  }
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

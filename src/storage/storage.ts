// The Storage interface: positioned reads from a model file into a caller's buffer. Every byte of a
// model reaches pocketllm through it, so Node files, in-memory buffers and (later) Deno, Bun, browser
// Blobs, OPFS and HTTP range requests are interchangeable.

export interface Storage {
  /** What the bytes are (a path or URL), for error messages. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * The file's path, when the bytes are a local file another thread may open and read itself (the
   * reader thread, memory/reader-thread.ts).
   */
  readonly path?: string;
  /**
   * Reads `into.length` bytes starting at `offset` into `into`. Returns the number of bytes read,
   * which is smaller only when the end of the storage is reached.
   */
  read(offset: number, into: Uint8Array): Promise<number>;
  /**
   * The synchronous twin of read(), where the platform has one (Node files, memory). Lets a model
   * whose embeddings or layers stay on storage still run its synchronous evaluate().
   */
  readSync?(offset: number, into: Uint8Array): number;
  /** Releases the underlying handle. Further reads fail. */
  close(): Promise<void>;
}

export class StorageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageError';
  }
}

/** Reads exactly `length` bytes at `offset`, failing with a StorageError naming the shortfall. */
export async function readExactly(storage: Storage, offset: number, into: Uint8Array): Promise<void> {
  const n = await storage.read(offset, into);
  if (n !== into.length) {
    throw new StorageError(`${storage.name}: wanted ${into.length} bytes at offset ${offset}, got ${n} (file is ${storage.size} bytes)`);
  }
}

// Storage over bytes already in memory: tests, generated files, and buffers a caller hands us.
import type { Storage } from './storage.js';

export function memoryStorage(bytes: Uint8Array, name = '<memory>'): Storage {
  let open = true;
  const readSync = (offset: number, into: Uint8Array): number => {
    if (!open) throw new Error(`${name}: storage is closed`);
    if (offset < 0 || !Number.isSafeInteger(offset)) throw new RangeError(`${name}: bad offset ${offset}`);
    const end = Math.min(bytes.length, offset + into.length);
    if (end <= offset) return 0;
    into.set(bytes.subarray(offset, end));
    return end - offset;
  };
  return {
    name,
    size: bytes.length,
    async read(offset: number, into: Uint8Array): Promise<number> {
      return readSync(offset, into);
    },
    readSync,
    async close(): Promise<void> {
      open = false;
    },
  };
}

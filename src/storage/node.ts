// Storage over a file on disk in Node (also works in Bun and Deno's node:fs): positioned reads through
// a file handle, so files larger than 2 GiB are never read whole.
import { readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Storage } from './storage.js';
import { StorageError } from './storage.js';

/** Largest single read handed to the OS; longer reads are split (Node caps one read at 2 GiB). */
const MAX_READ_CHUNK = 1 << 30;

export async function openFileStorage(path: string): Promise<Storage> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StorageError(`no such file: ${path}`);
    if (code === 'EISDIR') throw new StorageError(`is a directory, not a model file: ${path}`);
    if (code === 'EACCES') throw new StorageError(`permission denied: ${path}`);
    throw new StorageError(`cannot open ${path}: ${(err as Error).message}`);
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new StorageError(`not a regular file: ${path}`);
  }
  const size = stat.size;
  const fh = handle;
  return {
    name: path,
    path,
    size,
    async read(offset: number, into: Uint8Array): Promise<number> {
      let done = 0;
      while (done < into.length) {
        const want = Math.min(into.length - done, MAX_READ_CHUNK);
        const { bytesRead } = await fh.read(into, done, want, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    readSync(offset: number, into: Uint8Array): number {
      let done = 0;
      while (done < into.length) {
        const want = Math.min(into.length - done, MAX_READ_CHUNK);
        const bytesRead = readSync(fh.fd, into, done, want, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    async close(): Promise<void> {
      await fh.close();
    },
  };
}

// The packed-weight cache: weight matrices repacked into their kernels' layouts (quant/formats.ts,
// "Packed layouts") are written once to a file, and later loads read the packed bytes from it instead
// of repacking. The file names the model it was built from (size, modification time, SHA-256 of the
// GGUF header) and the layout version; each tensor carries a checksum. A cache whose key differs, or
// that is cut short or has a changed byte, is reported as unusable (and then rebuilt), never used.
//
// File layout:
//   0   "PLLMPAK1"                        magic, 8 bytes
//   8   u32 format version                (CACHE_FORMAT_VERSION)
//   12  u32 index length in bytes
//   16  u32 index checksum                (same algorithm as the tensors)
//   20  u32 checksum algorithm            (1 = CRC-32, 2 = first 4 bytes of SHA-256)
//   24  ..64 zero
//   64  index: UTF-8 JSON { key, tensors: [{ name, offset, byteSize, checksum }] }
//   then the tensors, each at a 4096-aligned absolute offset.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import * as zlib from 'node:zlib';
import { openFileStorage } from '../storage/node.js';
import type { Storage } from '../storage/storage.js';
import { readExactly } from '../storage/storage.js';
import type { ReaderJobResult, ReaderThread } from './reader-thread.js';

const MAGIC = 'PLLMPAK1';
export const CACHE_FORMAT_VERSION = 1;
const HEADER_BYTES = 64;
const DATA_ALIGN = 4096;
/** An index larger than this is not one we wrote. */
const MAX_INDEX_BYTES = 64 << 20;
const CHECK_CHUNK = 16 << 20;

/** What a cache must match to be used. */
export interface PackedCacheKey {
  readonly modelSize: number;
  readonly modelMtimeMs: number;
  /** SHA-256 (hex) of the model's GGUF header: metadata and tensor infos. */
  readonly headerSha256: string;
  /** PACKED_LAYOUT_VERSION of the kernels that packed the bytes. */
  readonly layoutVersion: number;
}

/** A tensor the cache holds: its name and packed byte size. */
export interface PackedTensorSpec {
  readonly name: string;
  readonly byteSize: number;
}

export interface PackedCacheEntry extends PackedTensorSpec {
  /** Absolute offset in the cache file. */
  readonly offset: number;
  readonly checksum: number;
}

type ChecksumAlgorithm = 1 | 2;

interface Checksummer {
  readonly algorithm: ChecksumAlgorithm;
  /** Feeds bytes; digest() returns the u32. */
  start(): { update(b: Uint8Array): void; digest(): number };
}

/** CRC-32 where Node has it natively (22.2+), else the first 4 bytes of SHA-256. */
function checksummer(): Checksummer {
  const crc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (typeof crc32 === 'function') {
    return {
      algorithm: 1,
      start() {
        let v = 0;
        return { update: (b) => (v = crc32(b, v)), digest: () => v >>> 0 };
      },
    };
  }
  return {
    algorithm: 2,
    start() {
      const h = createHash('sha256');
      return { update: (b) => void h.update(b), digest: () => h.digest().readUInt32LE(0) };
    },
  };
}

function checksumOf(c: Checksummer, bytes: Uint8Array): number {
  const s = c.start();
  s.update(bytes);
  return s.digest();
}

/** The cache directory: `dir` if given, else $POCKETLLM_CACHE_DIR, else $XDG_CACHE_HOME/pocketllm or ~/.cache/pocketllm. */
export function packedCacheDir(dir?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (dir) return dir;
  if (env.POCKETLLM_CACHE_DIR) return env.POCKETLLM_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pocketllm');
}

/** `<dir>/<model file name>-<12 hex of its absolute path's SHA-256>.pocketllm-cache`. */
export function packedCachePath(modelPath: string, dir: string): string {
  const abs = resolve(modelPath);
  const tag = createHash('sha256').update(abs).digest('hex').slice(0, 12);
  return join(dir, `${basename(abs)}-${tag}.pocketllm-cache`);
}

/** The key of a model file: its size and mtime, and the SHA-256 of its first `headerBytes` bytes. */
export async function packedCacheKey(modelPath: string, storage: Storage, headerBytes: number, layoutVersion: number): Promise<PackedCacheKey> {
  const st = await stat(modelPath);
  const header = new Uint8Array(headerBytes);
  await readExactly(storage, 0, header);
  return {
    modelSize: st.size,
    modelMtimeMs: st.mtimeMs,
    headerSha256: createHash('sha256').update(header).digest('hex'),
    layoutVersion,
  };
}

function sameKey(a: PackedCacheKey, b: unknown): boolean {
  if (typeof b !== 'object' || b === null) return false;
  const o = b as Record<string, unknown>;
  return o.modelSize === a.modelSize && o.modelMtimeMs === a.modelMtimeMs && o.headerSha256 === a.headerSha256 && o.layoutVersion === a.layoutVersion;
}

function layoutEntries(specs: readonly PackedTensorSpec[], indexBytes: number): PackedCacheEntry[] {
  let at = Math.ceil((HEADER_BYTES + indexBytes) / DATA_ALIGN) * DATA_ALIGN;
  return specs.map((s) => {
    const e = { name: s.name, byteSize: s.byteSize, offset: at, checksum: 0 };
    at = Math.ceil((at + s.byteSize) / DATA_ALIGN) * DATA_ALIGN;
    return e;
  });
}

/** A cache's bytes differ from the checksum of the tensor they belong to. */
export class PackedCacheCorruptError extends Error {
  constructor(readonly path: string, readonly tensor: string) {
    super(`checksum mismatch in ${tensor}`);
    this.name = 'PackedCacheCorruptError';
  }
}

/**
 * A cache whose header, key and index checked out. Either every tensor's checksum was checked when it
 * was opened, or (opened with verify 'deferred') the caller checks each tensor's bytes before use,
 * with checkBytes() as it reads them or checkStored() for those it does not read now.
 */
export class PackedCache {
  private readonly byName: ReadonlyMap<string, PackedCacheEntry>;

  constructor(
    readonly path: string,
    /** Positioned reads of the cache file. */
    readonly storage: Storage,
    entries: readonly PackedCacheEntry[],
    private readonly c: Checksummer = checksummer(),
  ) {
    this.byName = new Map(entries.map((e) => [e.name, e]));
  }

  entry(name: string): PackedCacheEntry | undefined {
    return this.byName.get(name);
  }

  /** True when the checksums are CRC-32 (what the reader thread computes). */
  get checksumIsCrc32(): boolean {
    return this.c.algorithm === 1;
  }

  /** Throws PackedCacheCorruptError unless `bytes` are what the cache holds for `name`. */
  checkBytes(name: string, bytes: Uint8Array): void {
    const e = this.byName.get(name);
    if (!e || bytes.length !== e.byteSize || checksumOf(this.c, bytes) !== e.checksum) throw new PackedCacheCorruptError(this.path, name);
  }

  /** Reads the named tensors from the file and checks them (PackedCacheCorruptError on a mismatch). */
  async checkStored(names: readonly string[]): Promise<void> {
    const entries = names.map((n) => {
      const e = this.byName.get(n);
      if (!e) throw new PackedCacheCorruptError(this.path, n);
      return e;
    });
    const bad = await firstCorrupt(this.storage, entries, this.c);
    if (bad) throw new PackedCacheCorruptError(this.path, bad);
  }

  async close(): Promise<void> {
    await this.storage.close();
  }
}

/**
 * The checks of one load's cache bytes, run on the reader thread while the load goes on (without
 * one, or with SHA-256 checksums, on this thread): resident tensors once they are in wasm memory,
 * streamed ones from the file. wait() throws PackedCacheCorruptError naming the first bad tensor.
 */
export class PackedCacheChecks {
  private readonly pending: { readonly name: string; readonly ticket: number }[] = [];
  private readonly storedHere: string[] = [];
  private readonly file: number;

  constructor(private readonly cache: PackedCache, private readonly reader: ReaderThread | undefined) {
    this.file = reader && cache.checksumIsCrc32 ? reader.fileIndex(cache.storage.path ?? cache.path) : -1;
  }

  /** `bytes` (a view of wasm memory that stays unchanged) were read for `name`. */
  memory(name: string, bytes: Uint8Array): void {
    if (this.file < 0) return this.cache.checkBytes(name, bytes);
    const e = this.cache.entry(name);
    if (!e || bytes.length !== e.byteSize) throw new PackedCacheCorruptError(this.cache.path, name);
    this.track(name, this.reader!.checksumMemory(bytes.byteOffset, bytes.length));
  }

  /** Tensors not read now: checked from the file. */
  stored(names: readonly string[]): void {
    if (this.file < 0) {
      this.storedHere.push(...names);
      return;
    }
    for (const name of names) {
      const e = this.cache.entry(name);
      if (!e) throw new PackedCacheCorruptError(this.cache.path, name);
      this.track(name, this.reader!.checksumFile(this.file, e.offset, e.byteSize));
    }
  }

  /** Resolves once every check passed. */
  async wait(): Promise<void> {
    await this.cache.checkStored(this.storedHere.splice(0));
    for (const { name, ticket } of this.pending.splice(0)) this.verify(name, await this.reader!.wait(ticket));
  }

  /**
   * Keeps the ticket, first taking the results of finished checks: a result lives in the reader's ring
   * only until `capacity` later jobs, so at most half of that is left pending.
   */
  private track(name: string, ticket: number): void {
    const reader = this.reader!;
    while (this.pending.length > 0 && (reader.isDone(this.pending[0]!.ticket) || this.pending.length >= reader.capacity / 2)) {
      const first = this.pending.shift()!;
      this.verify(first.name, reader.waitSync(first.ticket));
    }
    this.pending.push({ name, ticket });
  }

  private verify(name: string, r: ReaderJobResult): void {
    const e = this.cache.entry(name)!;
    if (r.bytes !== e.byteSize || r.checksum !== e.checksum) throw new PackedCacheCorruptError(this.cache.path, name);
  }
}

/** The name of the first entry whose stored bytes do not match its checksum, if any. */
async function firstCorrupt(storage: Storage, entries: readonly PackedCacheEntry[], c: Checksummer): Promise<string | undefined> {
  if (entries.length === 0) return undefined;
  const buf = new Uint8Array(Math.min(CHECK_CHUNK, Math.max(1, ...entries.map((e) => e.byteSize))));
  for (const e of entries) {
    const s = c.start();
    for (let done = 0; done < e.byteSize; ) {
      const n = Math.min(buf.length, e.byteSize - done);
      const view = buf.subarray(0, n);
      await readExactly(storage, e.offset + done, view);
      s.update(view);
      done += n;
    }
    if (s.digest() !== e.checksum) return e.name;
  }
  return undefined;
}

export type PackedCacheOpenResult = { readonly cache: PackedCache } | { readonly unusable: string };

/**
 * Opens the cache at `path` if it exists, matches `key`, holds exactly `specs` (names and sizes, in
 * order), and (unless `verify` is 'deferred') every tensor's bytes match its checksum. Otherwise says
 * why not (`unusable`).
 */
export async function openPackedCache(
  path: string,
  key: PackedCacheKey,
  specs: readonly PackedTensorSpec[],
  verify: 'all' | 'deferred' = 'all',
): Promise<PackedCacheOpenResult> {
  let storage: Storage;
  try {
    storage = await openFileStorage(path);
  } catch {
    return { unusable: 'no cache file' };
  }
  try {
    const why = await checkCache(storage, key, specs, verify === 'all');
    if (typeof why === 'string') {
      await storage.close();
      return { unusable: why };
    }
    return { cache: new PackedCache(path, storage, why) };
  } catch (e) {
    await storage.close().catch(() => undefined);
    return { unusable: `cannot read it: ${(e as Error).message}` };
  }
}

async function checkCache(storage: Storage, key: PackedCacheKey, specs: readonly PackedTensorSpec[], verifyAll: boolean): Promise<string | PackedCacheEntry[]> {
  if (storage.size < HEADER_BYTES) return `truncated: ${storage.size} bytes`;
  const head = new Uint8Array(HEADER_BYTES);
  await readExactly(storage, 0, head);
  const dv = new DataView(head.buffer);
  if (new TextDecoder().decode(head.subarray(0, 8)) !== MAGIC) return 'not a pocketllm packed-weight cache';
  if (dv.getUint32(8, true) !== CACHE_FORMAT_VERSION) return `cache format ${dv.getUint32(8, true)}, expected ${CACHE_FORMAT_VERSION}`;
  const indexBytes = dv.getUint32(12, true);
  const algorithm = dv.getUint32(20, true);
  const c = checksummer();
  if (algorithm !== c.algorithm) return `checksum algorithm ${algorithm}, this runtime writes ${c.algorithm}`;
  if (indexBytes > MAX_INDEX_BYTES || HEADER_BYTES + indexBytes > storage.size) return `truncated or bad index length ${indexBytes}`;
  const indexRaw = new Uint8Array(indexBytes);
  await readExactly(storage, HEADER_BYTES, indexRaw);
  if (checksumOf(c, indexRaw) !== dv.getUint32(16, true)) return 'index checksum mismatch';
  let index: { key?: unknown; tensors?: unknown };
  try {
    index = JSON.parse(new TextDecoder().decode(indexRaw)) as typeof index;
  } catch {
    return 'index is not valid JSON';
  }
  if (!sameKey(key, index.key)) return 'stale: built for another model file or layout version';
  const expected = layoutEntries(specs, indexBytes);
  const tensors = index.tensors;
  if (!Array.isArray(tensors) || tensors.length !== expected.length) return 'tensor list differs';
  const entries: PackedCacheEntry[] = [];
  for (let i = 0; i < expected.length; i++) {
    const t = tensors[i] as Partial<PackedCacheEntry>;
    const e = expected[i]!;
    if (t.name !== e.name || t.byteSize !== e.byteSize || t.offset !== e.offset || typeof t.checksum !== 'number') return `tensor ${i} (${e.name}) differs`;
    if (e.offset + e.byteSize > storage.size) return `truncated: ${e.name} ends at ${e.offset + e.byteSize}, file is ${storage.size} bytes`;
    entries.push({ ...e, checksum: t.checksum });
  }
  if (verifyAll) {
    const bad = await firstCorrupt(storage, entries, c);
    if (bad) return `checksum mismatch in ${bad}`;
  }
  return entries;
}

/**
 * Writes a cache: tensors in any order through write(), then finish() puts the index in place and
 * renames the temporary file over `path`, so a reader never sees a half-written cache.
 */
export class PackedCacheWriter {
  private readonly entries: PackedCacheEntry[];
  private readonly byName: Map<string, number>;
  private readonly written = new Set<string>();
  private readonly c = checksummer();

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly handle: Awaited<ReturnType<typeof open>>,
    private readonly key: PackedCacheKey,
    specs: readonly PackedTensorSpec[],
    private readonly indexBytes: number,
  ) {
    this.entries = layoutEntries(specs, indexBytes);
    this.byName = new Map(this.entries.map((e, i) => [e.name, i]));
  }

  static async create(path: string, key: PackedCacheKey, specs: readonly PackedTensorSpec[]): Promise<PackedCacheWriter> {
    await mkdir(resolve(path, '..'), { recursive: true });
    // The index's length must be known before the data offsets: checksums are written as fixed-width
    // numbers (10 digits) so the final index has the same length as this estimate.
    const probe = indexJson(key, layoutEntries(specs, 0).map((e) => ({ ...e, offset: 1e15, checksum: 4e9 })));
    const indexBytes = new TextEncoder().encode(probe).length + 64;
    // Unique per writer: two loads of one model (even in one process) never share a temporary file.
    const tmpPath = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(tmpPath, 'w');
    return new PackedCacheWriter(path, tmpPath, handle, key, specs, indexBytes);
  }

  /** Writes the packed bytes of `name` (exactly its byteSize). */
  async write(name: string, bytes: Uint8Array): Promise<void> {
    const i = this.byName.get(name);
    if (i === undefined) throw new Error(`packed cache: ${name} is not one of its tensors`);
    const e = this.entries[i]!;
    if (bytes.length !== e.byteSize) throw new Error(`packed cache: ${name} has ${bytes.length} bytes, expected ${e.byteSize}`);
    // fs writes reject views of shared memory on some Node versions: copy through a plain buffer.
    const plain = bytes.buffer instanceof ArrayBuffer ? bytes : new Uint8Array(bytes);
    for (let done = 0; done < plain.length; ) {
      const { bytesWritten } = await this.handle.write(plain, done, plain.length - done, e.offset + done);
      done += bytesWritten;
    }
    this.entries[i] = { ...e, checksum: checksumOf(this.c, plain) };
    this.written.add(name);
  }

  async finish(): Promise<void> {
    const missing = this.entries.filter((e) => !this.written.has(e.name));
    if (missing.length > 0) throw new Error(`packed cache: ${missing.length} tensors were not written (first: ${missing[0]!.name})`);
    const json = new TextEncoder().encode(indexJson(this.key, this.entries));
    const index = new Uint8Array(this.indexBytes).fill(0x20);
    index.set(json);
    const head = new Uint8Array(HEADER_BYTES);
    head.set(new TextEncoder().encode(MAGIC));
    const dv = new DataView(head.buffer);
    dv.setUint32(8, CACHE_FORMAT_VERSION, true);
    dv.setUint32(12, this.indexBytes, true);
    dv.setUint32(16, checksumOf(this.c, index), true);
    dv.setUint32(20, this.c.algorithm, true);
    await this.handle.write(index, 0, index.length, HEADER_BYTES);
    await this.handle.write(head, 0, head.length, 0);
    const end = this.entries.length ? this.entries[this.entries.length - 1]! : undefined;
    await this.handle.truncate(end ? end.offset + end.byteSize : HEADER_BYTES + this.indexBytes);
    await this.handle.close();
    await rename(this.tmpPath, this.path);
  }

  /** Drops the temporary file. */
  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true }).catch(() => undefined);
  }
}

function indexJson(key: PackedCacheKey, entries: readonly PackedCacheEntry[]): string {
  const tensors = entries.map((e) => `{"name":${JSON.stringify(e.name)},"offset":${e.offset},"byteSize":${e.byteSize},"checksum":${String(e.checksum).padStart(10, ' ')}}`);
  return `{"key":${JSON.stringify(key)},"tensors":[${tensors.join(',')}]}`;
}

/** A tensor to pack into a new cache: where its file bytes are, and its packed size. */
export interface PackedTensorSource extends PackedTensorSpec {
  readonly fileOffset: number;
  readonly fileBytes: number;
}

export interface BuildPackedCacheOptions {
  readonly path: string;
  readonly key: PackedCacheKey;
  readonly tensors: readonly PackedTensorSource[];
  /** The model file. */
  readonly storage: Storage;
  /** A view of wasm memory. */
  readonly memory: (ptr: number, length: number) => Uint8Array;
  /** Wasm memory for the file bytes of the largest tensor, and for its packed bytes. */
  readonly rawPtr: number;
  readonly packedPtr: number;
  /** Packs tensor i from rawPtr into packedPtr. */
  readonly pack: (index: number, rawPtr: number, packedPtr: number) => void;
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** Reads, packs and writes every tensor into a new cache file at `path` (atomically replacing it). */
export async function buildPackedCache(o: BuildPackedCacheOptions): Promise<void> {
  const writer = await PackedCacheWriter.create(o.path, o.key, o.tensors);
  try {
    const total = o.tensors.reduce((a, t) => a + t.fileBytes, 0);
    let done = 0;
    for (let i = 0; i < o.tensors.length; i++) {
      const t = o.tensors[i]!;
      await readExactly(o.storage, t.fileOffset, o.memory(o.rawPtr, t.fileBytes));
      o.pack(i, o.rawPtr, o.packedPtr);
      await writer.write(t.name, o.memory(o.packedPtr, t.byteSize));
      done += t.fileBytes;
      o.onProgress?.(done, total);
    }
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

// Disk embeddings: the token embedding table stays in storage and each step reads only the rows of
// its tokens (a prefill batch issues its rows' reads together), into a small staging area of wasm
// memory, then dequantizes them into the activation buffer. A step touches a few KiB of a table that
// is often the largest single tensor of a small model.
import type { Storage } from '../storage/storage.js';
import { StorageError } from '../storage/storage.js';

export interface EmbeddingTable {
  /** Absolute offset of row 0 in storage. */
  readonly offset: number;
  /** GGML type of the rows (as in the file). */
  readonly type: number;
  readonly rows: number;
  /** Values per row (the embedding length). */
  readonly cols: number;
  readonly rowBytes: number;
}

export interface DiskEmbeddingsConfig {
  readonly storage: Storage;
  readonly table: EmbeddingTable;
  /** Staging area of `capacity` rows of rowBytes each, in wasm memory. */
  readonly stagingPtr: number;
  readonly capacity: number;
  readonly memory: (ptr: number, length: number) => Uint8Array;
  /** Dequantizes `n` values of `type` at src into f32 at dst (the kernel's dequantizeRow). */
  readonly dequantizeRow: (type: number, src: number, dst: number, n: number) => number;
}

export class DiskEmbeddings {
  /** Rows read from storage since creation. */
  rowsRead = 0;

  constructor(private readonly config: DiskEmbeddingsConfig) {}

  /** Staging bytes a batch of `capacity` tokens needs. */
  static stagingBytes(table: EmbeddingTable, capacity: number): number {
    return table.rowBytes * capacity;
  }

  /** Writes the f32 embeddings of `tokens` as rows of `cols` floats from `dst` on. */
  async embed(tokens: readonly number[], dst: number): Promise<void> {
    const { storage } = this.config;
    const slots = this.stage(tokens);
    await Promise.all(
      slots.map(async ([token, slot]) => {
        const into = this.stagingView(slot);
        const n = await storage.read(this.rowOffset(token), into);
        if (n !== into.length) throw this.shortRead(token, n);
      }),
    );
    this.dequantize(tokens, slots, dst);
  }

  /** embed() with synchronous reads, for storages that have them. */
  embedSync(tokens: readonly number[], dst: number): void {
    const { storage } = this.config;
    if (!storage.readSync) {
      throw new StorageError(`${storage.name}: embedding rows stay in storage and this storage has no synchronous reads; use the model's async methods (evaluateAsync, generate)`);
    }
    const slots = this.stage(tokens);
    for (const [token, slot] of slots) {
      const into = this.stagingView(slot);
      const n = storage.readSync(this.rowOffset(token), into);
      if (n !== into.length) throw this.shortRead(token, n);
    }
    this.dequantize(tokens, slots, dst);
  }

  /** One staging slot per distinct token, in order of first appearance. */
  private stage(tokens: readonly number[]): [number, number][] {
    const { table, capacity } = this.config;
    const slotOf = new Map<number, number>();
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= table.rows) throw new RangeError(`token id ${t} is outside the vocabulary of ${table.rows}`);
      if (!slotOf.has(t)) slotOf.set(t, slotOf.size);
    }
    if (slotOf.size > capacity) throw new RangeError(`${slotOf.size} distinct tokens in one batch, more than the ${capacity} embedding rows staged`);
    this.rowsRead += slotOf.size;
    return [...slotOf];
  }

  private dequantize(tokens: readonly number[], slots: [number, number][], dst: number): void {
    const { table, stagingPtr, dequantizeRow } = this.config;
    const slotOf = new Map(slots);
    for (let i = 0; i < tokens.length; i++) {
      const src = stagingPtr + slotOf.get(tokens[i]!)! * table.rowBytes;
      if (dequantizeRow(table.type, src, dst + i * table.cols * 4, table.cols) !== 0) {
        throw new Error(`embedding rows of type ${table.type} cannot be dequantized`);
      }
    }
  }

  private stagingView(slot: number): Uint8Array {
    const { table, stagingPtr, memory } = this.config;
    return memory(stagingPtr + slot * table.rowBytes, table.rowBytes);
  }

  private rowOffset(token: number): number {
    return this.config.table.offset + token * this.config.table.rowBytes;
  }

  private shortRead(token: number, n: number): StorageError {
    const { storage, table } = this.config;
    return new StorageError(`${storage.name}: embedding row ${token} is cut short: wanted ${table.rowBytes} bytes at offset ${this.rowOffset(token)}, got ${n}`);
  }
}

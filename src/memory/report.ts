// What a loaded model keeps where: weight bytes resident in wasm memory and streamed from storage,
// where embedding rows come from, and what the packed-weight cache did; with the one-line form the
// CLIs print.
import { formatByteSize } from './byte-size.js';

export type EmbeddingSource =
  /** token_embd stays in storage; each step reads its tokens' rows. */
  | 'disk'
  /** token_embd is read whole into wasm memory. */
  | 'resident'
  /** Tied embeddings: the resident output projection is the table, rows are read from it. */
  | 'tied';

export type PackedCacheStatus =
  /** Packed bytes came from a valid cache. */
  | 'used'
  /** The cache was missing or unusable and was written on this load. */
  | 'built'
  /** No weight of this model has a packed layout. */
  | 'not needed'
  /** Caching is switched off, or the model is small enough that repacking beats reading a cache. */
  | 'off'
  /** The cache could not be written (a warning was printed); weights were repacked in memory. */
  | 'unwritable';

export interface WeightMemoryReport {
  /** The memory budget asked for, in bytes; null when none. */
  readonly budgetBytes: number | null;
  /** Weight bytes held in wasm memory for the model's lifetime. */
  readonly residentWeightBytes: number;
  /** Weight bytes read from storage on every forward pass (the streamed layers). */
  readonly streamedWeightBytes: number;
  readonly streamedLayers: number;
  readonly layers: number;
  /** Layer slots of the ring, and the bytes of each. */
  readonly slotCount: number;
  readonly slotBytes: number;
  readonly embeddings: EmbeddingSource;
  /** Bytes of the embedding table left in storage (0 unless embeddings is 'disk'). */
  readonly diskEmbeddingBytes: number;
  readonly packedCache: { readonly status: PackedCacheStatus; readonly path: string | null; readonly detail: string | null };
}

/** "weights: 1.02 GiB resident, 2.61 GiB streamed (24/32 layers, 2 slots × 108 MiB), budget 1.00 GB; embeddings on disk (70 MiB); packed cache used". */
export function formatWeightMemory(r: WeightMemoryReport): string {
  const f = formatByteSize;
  const parts = [`weights ${f(r.residentWeightBytes)} resident`];
  if (r.streamedLayers > 0) {
    parts[0] += `, ${f(r.streamedWeightBytes)} streamed per pass (${r.streamedLayers}/${r.layers} layers through ${r.slotCount} slots of ${f(r.slotBytes)})`;
  }
  if (r.budgetBytes !== null) parts.push(`budget ${f(r.budgetBytes)}`);
  parts.push(
    r.embeddings === 'disk'
      ? `embeddings read per token from storage (${f(r.diskEmbeddingBytes)} not resident)`
      : r.embeddings === 'tied'
        ? 'embeddings tied: rows read from the resident output matrix'
        : 'embeddings resident',
  );
  if (r.packedCache.status !== 'not needed') parts.push(`packed cache ${r.packedCache.status}`);
  return parts.join(' | ');
}

// The memory plan: given a budget of wasm memory and what a model needs (KV cache, scratch, tensors
// that must stay resident, the bytes of each layer's matrices), decides which layers stay resident
// and how many layer slots the streamed ones share. Streamed layers are the first ones and resident
// layers the last: while the resident tail of one forward pass computes, the first streamed layers of
// the next pass are already being read.
import { formatByteSize } from './byte-size.js';

/** A ring of two slots is the least that lets one layer compute while the next is read. */
export const MIN_LAYER_SLOTS = 2;

export class MemoryBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemoryBudgetError';
  }
}

export interface MemoryNeeds {
  /** Bytes of wasm memory in use before any weight: kernel static data, KV cache, scratch. */
  readonly fixedBytes: number;
  /** The parts of fixedBytes worth naming when the budget is too small. */
  readonly kvBytes: number;
  readonly scratchBytes: number;
  readonly contextLength: number;
  /** Weights that are never streamed: output projection, norms, biases, rope factors. */
  readonly residentTensorBytes: number;
  /** Per layer, the bytes its streamable matrices take in memory (each tensor 64-byte aligned). */
  readonly layerBytes: readonly number[];
}

export interface MemoryPlan {
  /** The budget the plan was made for (undefined: none given). */
  readonly budgetBytes: number | undefined;
  /** Per layer: true when its matrices stay in wasm memory, false when streamed through the slots. */
  readonly residentLayers: readonly boolean[];
  /** Slots in the ring (0 when nothing is streamed). */
  readonly slotCount: number;
  /** Bytes of one slot: the largest streamed layer. */
  readonly slotBytes: number;
  /** Bytes of streamed layer matrices, read from storage on every forward pass. */
  readonly streamedBytes: number;
  /** Bytes of weights held for the model's lifetime: resident tensors and resident layers. */
  readonly residentWeightBytes: number;
  /** What the plan puts in wasm memory: fixed + resident weights + slots. */
  readonly plannedBytes: number;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * Keeps every layer resident when everything fits in `budgetBytes` (or no budget is given); otherwise
 * as many trailing layers as fit beside two slots. Throws MemoryBudgetError, naming each part, when
 * even two slots do not fit.
 */
export function planMemory(needs: MemoryNeeds, budgetBytes: number | undefined): MemoryPlan {
  const n = needs.layerBytes.length;
  const allLayers = sum(needs.layerBytes);
  const base = needs.fixedBytes + needs.residentTensorBytes;
  if (budgetBytes === undefined || base + allLayers <= budgetBytes || n === 0) {
    return {
      budgetBytes,
      residentLayers: needs.layerBytes.map(() => true),
      slotCount: 0,
      slotBytes: 0,
      streamedBytes: 0,
      residentWeightBytes: needs.residentTensorBytes + allLayers,
      plannedBytes: base + allLayers,
    };
  }
  const slotBytes = Math.max(...needs.layerBytes);
  const minimum = base + MIN_LAYER_SLOTS * slotBytes;
  if (minimum > budgetBytes) {
    const f = formatByteSize;
    const other = needs.fixedBytes - needs.kvBytes - needs.scratchBytes;
    throw new MemoryBudgetError(
      `memory budget ${f(budgetBytes)} is below the ${f(minimum)} this model needs at least: ` +
        `${MIN_LAYER_SLOTS} layer slots (${MIN_LAYER_SLOTS} × ${f(slotBytes)}) + KV cache ${f(needs.kvBytes)} (context ${needs.contextLength}) + ` +
        `scratch ${f(needs.scratchBytes)} + resident tensors ${f(needs.residentTensorBytes)}` +
        (other > 0 ? ` + runtime ${f(other)}` : '') +
        `; raise the budget or lower the context length`,
    );
  }
  // Resident layers from the last one down, while they fit beside the slots.
  const residentLayers = needs.layerBytes.map(() => false);
  let room = budgetBytes - minimum;
  for (let l = n - 1; l >= 1 && needs.layerBytes[l]! <= room; l--) {
    residentLayers[l] = true;
    room -= needs.layerBytes[l]!;
  }
  const residentLayerBytes = sum(needs.layerBytes.filter((_, l) => residentLayers[l]));
  return {
    budgetBytes,
    residentLayers,
    slotCount: MIN_LAYER_SLOTS,
    slotBytes,
    streamedBytes: allLayers - residentLayerBytes,
    residentWeightBytes: needs.residentTensorBytes + residentLayerBytes,
    plannedBytes: minimum + residentLayerBytes,
  };
}

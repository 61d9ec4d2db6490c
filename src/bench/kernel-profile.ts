// Optional per-kernel timing: wraps every function of a kernel exports object so that each call adds
// its wall time to a counter under the export's name, to show where a forward pass spends its time.
// The wrapper costs one performance.now() pair per call (well under a microsecond), small against
// the matmuls it measures but visible on the tiny ops of a tiny model.
import type { KernelExports } from '../runtime/kernel-exports.js';

export interface KernelTime {
  readonly kernel: string;
  readonly calls: number;
  readonly ms: number;
  /** Share of the phase's wall time. */
  readonly share: number;
}

export interface KernelProfile {
  /** Wall time of the phase the counters cover. */
  readonly wallMs: number;
  /** Wall time spent inside kernel calls (the rest is JavaScript between them). */
  readonly kernelMs: number;
  /** Kernels by time, largest first. */
  readonly kernels: readonly KernelTime[];
}

/** Call counters over a wrapped exports object. */
export class KernelProfiler {
  private readonly totals = new Map<string, { calls: number; ms: number }>();
  readonly wrapped: KernelExports;

  constructor(readonly inner: KernelExports) {
    const wrapped: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(inner)) {
      if (typeof value !== 'function') {
        wrapped[name] = value;
        continue;
      }
      const fn = value as (...args: number[]) => unknown;
      const slot = { calls: 0, ms: 0 };
      this.totals.set(name, slot);
      wrapped[name] = (...args: number[]): unknown => {
        const t0 = performance.now();
        const r = fn(...args);
        slot.ms += performance.now() - t0;
        slot.calls++;
        return r;
      };
    }
    this.wrapped = wrapped as unknown as KernelExports;
  }

  reset(): void {
    for (const slot of this.totals.values()) {
      slot.calls = 0;
      slot.ms = 0;
    }
  }

  /** The counters since the last reset, as shares of `wallMs`. */
  report(wallMs: number): KernelProfile {
    const kernels: KernelTime[] = [];
    let kernelMs = 0;
    for (const [kernel, { calls, ms }] of this.totals) {
      if (calls === 0) continue;
      kernelMs += ms;
      kernels.push({ kernel, calls, ms, share: wallMs > 0 ? ms / wallMs : 0 });
    }
    kernels.sort((a, b) => b.ms - a.ms);
    return { wallMs, kernelMs, kernels };
  }
}

/** The part of a loaded model the profiler reaches into (Model keeps its transformer private). */
interface KernelHolder {
  kernels: KernelExports;
}

/**
 * Routes the kernel calls of `model`'s transformer through a profiler until the returned detach()
 * runs. Returns undefined when the model does not hold its kernels where this expects (the engine
 * changed): profiling is a diagnostic, never a reason for a benchmark to fail.
 */
export function attachKernelProfiler(model: object): { profiler: KernelProfiler; detach: () => void } | undefined {
  const holder = (model as { transformer?: unknown }).transformer as Partial<KernelHolder> | undefined;
  if (!holder || typeof holder !== 'object' || typeof holder.kernels !== 'object' || holder.kernels === null) return undefined;
  const original = holder.kernels;
  const profiler = new KernelProfiler(original);
  try {
    holder.kernels = profiler.wrapped;
  } catch {
    return undefined;
  }
  if (holder.kernels !== profiler.wrapped) return undefined;
  return { profiler, detach: () => void (holder.kernels = original) };
}

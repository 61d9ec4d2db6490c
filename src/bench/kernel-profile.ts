// Optional per-kernel timing: routes the calls a model's transformer makes — to its executor (matmuls,
// attention, norms, conversions, which may be split across threads) and to the kernel exports it calls
// directly (rope, bias, embedding rows) — through proxies that add each call's wall time to a counter
// named after the kernel, to show where a forward pass spends its time. The wrapper costs a
// performance.now() pair per call (well under a microsecond): small against the matmuls, visible on
// the tiny ops of a tiny model.

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

/** Names a call for the counters (by default the method name) and says how many kernel calls it is. */
type CallNamer = (method: string, args: readonly unknown[]) => { readonly name: string; readonly calls: number };

/** Executor methods that only manage the pool: passed through untimed. */
const UNTIMED = new Set(['calibrate', 'stats', 'resetStats', 'ready', 'close', 'constructor']);

/**
 * An executor's matmuls() runs several jobs in one dispatch (q/k/v share one): the dispatch is counted
 * under its kernels' names joined ("matmulQ4_0") as that many calls; a conversion under its converter.
 */
const executorCallName: CallNamer = (method, args) => {
  if (method === 'matmuls' && Array.isArray(args[0])) {
    const jobs = args[0] as { kernel?: unknown }[];
    return { name: [...new Set(jobs.map((j) => String(j.kernel)))].join('+') || 'matmuls', calls: jobs.length };
  }
  if ((method === 'convertRows' || method === 'rmsNormConvert') && typeof args[0] === 'string') return { name: args[0], calls: 1 };
  return { name: method, calls: 1 };
};

/** Call counters shared by every proxy made with wrap(). */
export class KernelProfiler {
  private readonly totals = new Map<string, { calls: number; ms: number }>();
  /** Timed calls under way: a call made from inside another (an executor calling a kernel through
   *  a wrapped table) belongs to the outer one and is not counted twice. */
  private depth = 0;

  /** A proxy of `target` whose function properties are timed under namer(name, args). */
  wrap<T extends object>(target: T, namer: CallNamer = (name) => ({ name, calls: 1 })): T {
    const cache = new Map<PropertyKey, unknown>();
    const totals = this.totals;
    const t = target;
    // The proxy's own target is an empty shadow: wasm export objects are frozen, and a proxy of a
    // frozen object may not return anything but the original functions.
    return new Proxy(Object.create(null) as T, {
      has: (_, prop) => Reflect.has(t, prop),
      get: (_, prop) => {
        const value: unknown = Reflect.get(t, prop, t);
        if (typeof value !== 'function' || typeof prop !== 'string' || UNTIMED.has(prop)) {
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
        }
        let wrapped = cache.get(prop);
        if (!wrapped) {
          const fn = value as (...a: unknown[]) => unknown;
          wrapped = (...args: unknown[]): unknown => {
            if (this.depth > 0) return fn.apply(t, args);
            this.depth++;
            const t0 = performance.now();
            let r: unknown;
            try {
              r = fn.apply(t, args);
            } finally {
              this.depth--;
            }
            const ms = performance.now() - t0;
            const { name, calls } = namer(prop, args);
            let slot = totals.get(name);
            if (!slot) totals.set(name, (slot = { calls: 0, ms: 0 }));
            slot.calls += calls;
            slot.ms += ms;
            return r;
          };
          cache.set(prop, wrapped);
        }
        return wrapped;
      },
    });
  }

  reset(): void {
    this.totals.clear();
  }

  /** The counters since the last reset, as shares of `wallMs`. */
  report(wallMs: number): KernelProfile {
    const kernels: KernelTime[] = [];
    let kernelMs = 0;
    for (const [kernel, { calls, ms }] of this.totals) {
      kernelMs += ms;
      kernels.push({ kernel, calls, ms, share: wallMs > 0 ? ms / wallMs : 0 });
    }
    kernels.sort((a, b) => b.ms - a.ms);
    return { wallMs, kernelMs, kernels };
  }
}

/** What the profiler swaps on a model's transformer (Model keeps its transformer private). */
const WRAPPED_FIELDS: readonly { field: 'kernels' | 'executor'; namer?: CallNamer }[] = [
  { field: 'kernels' },
  { field: 'executor', namer: executorCallName },
];

/**
 * Routes the kernel calls of `model`'s transformer through a profiler until detach() runs. Returns
 * undefined when the transformer is not where this expects (the engine changed): profiling is a
 * diagnostic, never a reason for a benchmark to fail.
 */
export function attachKernelProfiler(model: object): { profiler: KernelProfiler; detach: () => void } | undefined {
  const holder = (model as { transformer?: unknown }).transformer;
  if (!holder || typeof holder !== 'object') return undefined;
  const fields = holder as Record<string, unknown>;
  const profiler = new KernelProfiler();
  const restore: (() => void)[] = [];
  const detach = () => {
    for (const r of restore.reverse()) r();
    restore.length = 0;
  };
  for (const { field, namer } of WRAPPED_FIELDS) {
    const original = fields[field];
    if (!original || typeof original !== 'object') continue;
    try {
      fields[field] = profiler.wrap(original, namer);
    } catch {
      continue;
    }
    if (fields[field] === original) continue;
    restore.push(() => void (fields[field] = original));
  }
  if (restore.length === 0) return undefined;
  return { profiler, detach };
}

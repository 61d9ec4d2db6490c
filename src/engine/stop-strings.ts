// Stop strings over streamed text: text that cannot begin a stop string is released at once, a
// possible beginning is held back until the next pieces settle it, and a completed stop string ends
// the stream with everything before it released and the stop string itself never shown.

export interface StopPushResult {
  /** Text now safe to show (possibly ""). */
  readonly emit: string;
  /** True once a stop string has been completed; later pushes emit nothing. */
  readonly stopped: boolean;
}

export class StopStringMatcher {
  private readonly stops: readonly string[];
  private readonly longest: number;
  /** Text held back because its end may be the start of a stop string. */
  private held = '';
  private done = false;
  private matchedStop: string | undefined;

  constructor(stops: readonly string[]) {
    // An empty stop string would match before any text; it is meaningless, so it is dropped.
    this.stops = [...new Set(stops.filter((s) => s.length > 0))];
    this.longest = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** True once a stop string was seen. */
  get stopped(): boolean {
    return this.done;
  }

  /** The stop string that ended the stream, if any. */
  get matched(): string | undefined {
    return this.matchedStop;
  }

  push(piece: string): StopPushResult {
    if (this.done) return { emit: '', stopped: true };
    if (this.stops.length === 0) return { emit: piece, stopped: false };
    const text = this.held + piece;

    // The earliest completed stop string wins: everything before it is released.
    let at = -1;
    for (const stop of this.stops) {
      const i = text.indexOf(stop);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        this.matchedStop = stop;
      }
    }
    if (at >= 0) {
      this.done = true;
      this.held = '';
      return { emit: text.slice(0, at), stopped: true };
    }

    const keep = this.pendingSuffixLength(text);
    this.held = text.slice(text.length - keep);
    return { emit: text.slice(0, text.length - keep), stopped: false };
  }

  /** Ends the stream: releases the held text (it never became a stop string). */
  flush(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  /** Length of the longest end of `text` that some stop string begins with. */
  private pendingSuffixLength(text: string): number {
    for (let k = Math.min(text.length, this.longest - 1); k > 0; k--) {
      const tail = text.slice(text.length - k);
      for (const stop of this.stops) if (stop.length > k && stop.startsWith(tail)) return k;
    }
    return 0;
  }
}

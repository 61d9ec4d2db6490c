// The priority queue of candidate merges shared by the SentencePiece and BPE tokenizers: a binary
// min-heap on (priority, left position) — lower priority first, ties to the leftmost pair — held in
// parallel typed arrays so that a long text does not allocate an object per candidate.
// BPE pushes the merge rank as priority; SentencePiece pushes the negated piece score.

export class MergeHeap {
  size = 0;
  private priority: Float64Array;
  private left: Int32Array;
  private right: Int32Array;
  private pairSize: Int32Array;

  constructor(capacity: number) {
    const c = Math.max(16, capacity);
    this.priority = new Float64Array(c);
    this.left = new Int32Array(c);
    this.right = new Int32Array(c);
    this.pairSize = new Int32Array(c);
  }

  topLeft(): number {
    return this.left[0]!;
  }
  topRight(): number {
    return this.right[0]!;
  }
  /** The merged pair's length, used by callers to detect a stale entry. */
  topSize(): number {
    return this.pairSize[0]!;
  }

  push(priority: number, left: number, right: number, size: number): void {
    if (this.size === this.priority.length) this.grow();
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(priority, left, this.priority[p]!, this.left[p]!)) break;
      this.move(p, i);
      i = p;
    }
    this.set(i, priority, left, right, size);
  }

  pop(): void {
    const last = --this.size;
    if (last === 0) return;
    const p0 = this.priority[last]!;
    const l0 = this.left[last]!;
    const r0 = this.right[last]!;
    const z0 = this.pairSize[last]!;
    let i = 0;
    for (;;) {
      const a = 2 * i + 1;
      if (a >= last) break;
      const b = a + 1;
      const c = b < last && before(this.priority[b]!, this.left[b]!, this.priority[a]!, this.left[a]!) ? b : a;
      if (!before(this.priority[c]!, this.left[c]!, p0, l0)) break;
      this.move(c, i);
      i = c;
    }
    this.set(i, p0, l0, r0, z0);
  }

  private move(from: number, to: number): void {
    this.priority[to] = this.priority[from]!;
    this.left[to] = this.left[from]!;
    this.right[to] = this.right[from]!;
    this.pairSize[to] = this.pairSize[from]!;
  }

  private set(i: number, priority: number, left: number, right: number, size: number): void {
    this.priority[i] = priority;
    this.left[i] = left;
    this.right[i] = right;
    this.pairSize[i] = size;
  }

  private grow(): void {
    const c = this.priority.length * 2;
    const priority = new Float64Array(c);
    priority.set(this.priority);
    this.priority = priority;
    const grown = (a: Int32Array): Int32Array => {
      const b = new Int32Array(c);
      b.set(a);
      return b;
    };
    this.left = grown(this.left);
    this.right = grown(this.right);
    this.pairSize = grown(this.pairSize);
  }
}

/** Whether (p1, left1) comes out before (p2, left2). */
function before(p1: number, left1: number, p2: number, left2: number): boolean {
  return p1 < p2 || (p1 === p2 && left1 < left2);
}

/**
 * A sum of floats that does not depend on the order of its terms: the terms are kept as a short
 * list of non-overlapping partial sums (Shewchuk's algorithm, as Python's `math.fsum`), and the
 * result is the exact sum rounded once. The evaluation aggregates with it so that rows merged from
 * shards, in whatever order, give bit for bit the aggregate of one unsharded run.
 * @internal
 * @module
 */
export class ExactSum {
  readonly #partials: number[] = [];
  /** Infinities and NaN, summed apart (they would poison the partials). */
  #special = 0;

  /** Adds one term. */
  add(value: number): void {
    if (!Number.isFinite(value)) {
      this.#special += value;
      return;
    }
    const partials = this.#partials;
    let x = value;
    let kept = 0;
    for (let k = 0; k < partials.length; k++) {
      let y = partials[k];
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const high = x + y;
      const low = y - (high - x);
      if (low !== 0) partials[kept++] = low;
      x = high;
    }
    partials.length = kept;
    partials.push(x);
  }

  /** The exact sum of the terms so far, rounded to the nearest float (ties to even). */
  value(): number {
    if (this.#special !== 0 || Number.isNaN(this.#special)) return this.#special;
    const partials = this.#partials;
    let n = partials.length;
    if (n === 0) return 0;
    let high = partials[--n];
    let low = 0;
    while (n > 0) {
      const x = high;
      const y = partials[--n];
      high = x + y;
      low = y - (high - x);
      if (low !== 0) break;
    }
    // Round half to even across the rest: when the remainder below `low` has low's sign, a tie
    // between two floats is not a tie and must round away.
    if (n > 0 && ((low < 0 && partials[n - 1] < 0) || (low > 0 && partials[n - 1] > 0))) {
      const y = low * 2;
      const x = high + y;
      if (y === x - high) high = x;
    }
    return high;
  }
}

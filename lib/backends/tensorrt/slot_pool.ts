/**
 * The execution slots of one engine: each slot has its own GPU buffers and execution context, so
 * frames on different slots run at once; callers beyond the slot count wait their turn.
 * @module
 */


/** Hands out the slots of one engine, first come first served. */
export class SlotPool {
  readonly #free: number[];
  readonly #waiting: { resolve: (slot: number) => void; reject: (error: unknown) => void }[] = [];
  #closedWith: unknown;

  constructor(slots: number) {
    this.#free = Array.from({ length: slots }, (_, slot) => slot);
  }

  acquire(): Promise<number> {
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith);
    const slot = this.#free.shift();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  release(slot: number): void {
    const next = this.#waiting.shift();
    if (next) next.resolve(slot);
    else this.#free.push(slot);
  }

  /** Rejects every waiter and every later acquire with `error`. */
  close(error: unknown): void {
    this.#closedWith = error;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }
}

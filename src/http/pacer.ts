/**
 * Fair sharing of the event loop between event streams. A stream catching up from the stored
 * log never waits for I/O (its messages are ready), so without a yield it would run until its
 * socket is full, and 200 such streams would starve every other request. Streams call
 * {@link Pacer.turn} between messages: once the current slice of stream work has used
 * `sliceMs`, they wait for the next turn of the event loop, after pending I/O has been served.
 */
import { performance } from 'node:perf_hooks'

/** Lifecycle: constructed → used; nothing to close (a pending turn always ends). */
export class Pacer {
  readonly #sliceMs: number
  #sliceStart = performance.now()
  #waiters: Array<() => void> = []
  #scheduled = false

  constructor(sliceMs = 5) {
    this.#sliceMs = sliceMs
  }

  /** Resolves at once while the slice lasts, else at the next event-loop turn. */
  turn(): Promise<void> | undefined {
    if (performance.now() - this.#sliceStart < this.#sliceMs) return undefined
    return new Promise((resolve) => {
      this.#waiters.push(resolve)
      if (this.#scheduled) return
      this.#scheduled = true
      // A timer (not setImmediate): the poll phase, where new requests are read, runs between.
      setTimeout(() => this.#release(), 0)
    })
  }

  #release(): void {
    this.#scheduled = false
    this.#sliceStart = performance.now()
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}

/**
 * The open event streams of a node: counted for status and metrics, and ended together when the
 * node stops (so no subscription outlives the log it reads).
 */

/** Registry of open streams. */
export class SubscriberRegistry {
  readonly #open = new Set<() => void>()
  #lagged = 0
  #total = 0

  /** Registers a stream by the function that ends it; returns the function that unregisters it. */
  add(end: () => void): () => void {
    this.#open.add(end)
    this.#total++
    return () => {
      this.#open.delete(end)
    }
  }

  /** Counts a `lagged` notice sent to a subscriber. */
  noteLagged(): void {
    this.#lagged++
  }

  /** Streams open now. */
  get current(): number {
    return this.#open.size
  }

  /** Streams opened since start. */
  get total(): number {
    return this.#total
  }

  /** `lagged` notices sent since start. */
  get lagged(): number {
    return this.#lagged
  }

  /** Ends every open stream. */
  endAll(): void {
    for (const end of [...this.#open]) end()
    this.#open.clear()
  }
}

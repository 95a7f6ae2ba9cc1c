/**
 * The open event streams of a node: counted for status and metrics, capped in all and per
 * client (a token, or an address on an open API), and ended together when the node stops (so
 * no subscription outlives the log it reads).
 */
import { sledlogError } from '../errors.js'

/** Caps on open streams. */
export interface StreamCaps {
  /** Streams open at once, in all. */
  readonly maxStreams: number
  /** Streams open at once per client (token or address). */
  readonly maxStreamsPerClient: number
}

/** How long a refused client should wait before opening a stream again, s. */
const RETRY_AFTER_S = 5

/** Registry of open streams. */
export class SubscriberRegistry {
  readonly #caps: StreamCaps
  readonly #open = new Set<() => void>()
  readonly #perClient = new Map<string, number>()
  readonly #cutOff = new Map<string, number>()
  #lagged = 0
  #total = 0
  #refused = 0

  constructor(caps: StreamCaps) {
    this.#caps = caps
  }

  /**
   * Registers a stream of `client` by the function that ends it; returns the function that
   * unregisters it. Throws HTTP_TOO_MANY_STREAMS (429) past a cap.
   */
  add(end: () => void, client: string): () => void {
    const mine = this.#perClient.get(client) ?? 0
    if (this.#open.size >= this.#caps.maxStreams || mine >= this.#caps.maxStreamsPerClient) {
      this.#refused++
      const all = this.#open.size >= this.#caps.maxStreams
      throw sledlogError(
        'HTTP_TOO_MANY_STREAMS',
        all
          ? `this node serves at most ${this.#caps.maxStreams} event streams at once`
          : `at most ${this.#caps.maxStreamsPerClient} event streams per client at once; close one first`,
        { limit: all ? this.#caps.maxStreams : this.#caps.maxStreamsPerClient, retryAfter: RETRY_AFTER_S },
      )
    }
    this.#open.add(end)
    this.#perClient.set(client, mine + 1)
    let registered = true
    return () => {
      if (!registered) return
      registered = false
      this.#open.delete(end)
      const n = (this.#perClient.get(client) ?? 1) - 1
      if (n <= 0) this.#perClient.delete(client)
      else this.#perClient.set(client, n)
    }
  }

  /** Counts a stream that opened (its request passed every check). */
  noteOpened(): void {
    this.#total++
  }

  /** Counts a `lagged` notice sent to a subscriber. */
  noteLagged(): void {
    this.#lagged++
  }

  /** Counts a stream cut off for `reason` (a stable word: `stalled`, `over-budget`). */
  noteCutOff(reason: string): void {
    this.#cutOff.set(reason, (this.#cutOff.get(reason) ?? 0) + 1)
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

  /** Stream requests refused at a cap since start. */
  get refused(): number {
    return this.#refused
  }

  /** Streams cut off since start, by reason. */
  get cutOff(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#cutOff)
  }

  /** Ends every open stream. */
  endAll(): void {
    for (const end of [...this.#open]) end()
    this.#open.clear()
    this.#perClient.clear()
  }
}

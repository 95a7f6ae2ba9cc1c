/**
 * Whether a link is still alive, judged once per ping interval (docs/PROTOCOL.md §8.3,
 * "Liveness"). Pure; the server and the dialer each run one per link.
 *
 * A pong proves the whole round trip; a message only proves the peer's half (with what this
 * side sends silently lost, the peer's messages still arrive). So a link is dead when a ping
 * interval passes without a pong, unless the pong is plausibly just late: this side's ping went
 * out behind at least `excuseBytes` of queued data, or at least that much arrived from the peer
 * meanwhile (its pong waits behind its data). On a slow link streaming an answer that is the
 * normal case, so it is excused, up to `maxExcused` intervals in a row.
 */

/** Tuning of {@link Liveness}. */
export interface LivenessOptions {
  /** Queued or received bytes that excuse a late pong. Default 16 KiB. */
  readonly excuseBytes?: number
  /** Intervals in a row a late pong may be excused. Default 12. */
  readonly maxExcused?: number
}

/** The liveness of one link. */
export class Liveness {
  readonly #excuseBytes: number
  readonly #maxExcused: number
  #pong = true
  #received = 0
  #queuedAtPing = 0
  #excused = 0

  constructor(opts: LivenessOptions = {}) {
    this.#excuseBytes = opts.excuseBytes ?? 16 * 1024
    this.#maxExcused = opts.maxExcused ?? 12
  }

  /** A pong came back. */
  pong(): void {
    this.#pong = true
  }

  /** `bytes` arrived from the peer. */
  received(bytes: number): void {
    this.#received += bytes
  }

  /**
   * One ping interval passed; `queued` is what this side has waiting to be sent. 'ping': send a
   * ping now; 'dead': drop the link.
   */
  tick(queued: number): 'ping' | 'dead' {
    if (this.#pong) this.#excused = 0
    else {
      const late = this.#queuedAtPing >= this.#excuseBytes || this.#received >= this.#excuseBytes
      if (!late || this.#excused >= this.#maxExcused) return 'dead'
      this.#excused++
    }
    this.#pong = false
    this.#received = 0
    this.#queuedAtPing = queued
    return 'ping'
  }
}

/**
 * Takes turns among the answers to step 1 that a node streams (docs/PROTOCOL.md §8.3).
 *
 * Each answer is pumped only while it holds one of `maxActive` turns, at most one per remote
 * sled (a peer with two links, or a stranger reconnecting under one key, gets its answers one
 * after the other), and all answers together send at most `sliceBytes` per event-loop turn,
 * so serving many peers at once never starves the node's HTTP requests. The rest wait in
 * arrival order. A turn passes on after `turnBytes` sent while others wait, and an answer whose
 * peer does not read for `suspendAfterMs` gives its turn up to a waiting one (it resumes later,
 * where it stopped): peers that never read cannot hold every turn.
 */

/** What one answer does when pumped. */
export type PumpResult = 'done' | 'blocked' | 'more'

/** An answer in progress, as the scheduler sees it. */
export interface AnswerJob {
  /** The remote sled (one answer per key streams at a time). */
  readonly key: string
  /**
   * Sends up to about `budget` bytes: 'done' once the answer is complete, 'blocked' while the
   * peer's send buffer is full, 'more' otherwise. Returns the bytes sent in `sent`.
   */
  pump(budget: number): { result: PumpResult; sent: number }
}

/** Options of an {@link AnswerScheduler}. */
export interface AnswerSchedulerOptions {
  /** Answers pumped at once. Default 4. */
  readonly maxActive?: number
  /** Bytes all answers send per event-loop turn. Default 1 MiB. */
  readonly sliceBytes?: number
  /** Bytes an answer sends before it passes its turn to a waiting one. Default 16 MiB. */
  readonly turnBytes?: number
  /** A blocked answer gives its turn up after this long if others wait. Default 1 s. */
  readonly suspendAfterMs?: number
  /** How often blocked answers are polled. Default 20 ms. */
  readonly pollMs?: number
  readonly now?: () => number
}

interface Turn {
  blockedSince: number | null
  sent: number
}

/** Counters for status. */
export interface AnswerSchedulerStats {
  readonly active: number
  readonly waiting: number
  /** Turns given up by answers whose peers did not read. */
  readonly suspended: number
}

/** The node's answer scheduler. Lifecycle: `submit()`… → `stop()`. */
export class AnswerScheduler {
  readonly #maxActive: number
  readonly #sliceBytes: number
  readonly #turnBytes: number
  readonly #suspendAfterMs: number
  readonly #pollMs: number
  readonly #now: () => number
  readonly #active = new Map<AnswerJob, Turn>()
  #waiting: AnswerJob[] = []
  #timer: NodeJS.Timeout | null = null
  #immediate: NodeJS.Immediate | null = null
  #suspended = 0
  #stopped = false

  constructor(opts: AnswerSchedulerOptions = {}) {
    this.#maxActive = opts.maxActive ?? 4
    this.#sliceBytes = opts.sliceBytes ?? 1024 * 1024
    this.#turnBytes = opts.turnBytes ?? 16 * 1024 * 1024
    this.#suspendAfterMs = opts.suspendAfterMs ?? 1000
    this.#pollMs = opts.pollMs ?? 20
    this.#now = opts.now ?? Date.now
  }

  /** Queues `job`; it is pumped from the next event-loop turn on, when a turn is free. */
  submit(job: AnswerJob): void {
    if (this.#stopped || this.#active.has(job) || this.#waiting.includes(job)) return
    this.#waiting.push(job)
    this.#schedule(true)
  }

  /** Drops `job` (its link closed). */
  cancel(job: AnswerJob): void {
    this.#active.delete(job)
    this.#waiting = this.#waiting.filter((j) => j !== job)
  }

  /** Stops pumping; queued answers are dropped. */
  stop(): void {
    this.#stopped = true
    this.#clearTimers()
    this.#active.clear()
    this.#waiting = []
  }

  /** Counters for status. */
  stats(): AnswerSchedulerStats {
    return { active: this.#active.size, waiting: this.#waiting.length, suspended: this.#suspended }
  }

  #schedule(soon: boolean): void {
    if (this.#stopped || this.#immediate !== null) return
    if (soon) {
      if (this.#timer !== null) clearTimeout(this.#timer)
      this.#timer = null
      this.#immediate = setImmediate(() => {
        this.#immediate = null
        this.#tick()
      })
    } else if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null
        this.#tick()
      }, this.#pollMs)
    }
  }

  #clearTimers(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#immediate !== null) clearImmediate(this.#immediate)
    this.#timer = null
    this.#immediate = null
  }

  /** Fills free turns in arrival order, one per key. */
  #fill(): void {
    const keys = new Set([...this.#active.keys()].map((j) => j.key))
    const rest: AnswerJob[] = []
    for (const job of this.#waiting) {
      if (this.#active.size < this.#maxActive && !keys.has(job.key)) {
        this.#active.set(job, { blockedSince: null, sent: 0 })
        keys.add(job.key)
      } else rest.push(job)
    }
    this.#waiting = rest
  }

  /** True when a waiting job could take a turn `job` gave up. */
  #someoneWaitsFor(job: AnswerJob): boolean {
    const keys = new Set([...this.#active.keys()].filter((j) => j !== job).map((j) => j.key))
    return this.#waiting.some((w) => !keys.has(w.key))
  }

  #tick(): void {
    this.#fill()
    if (this.#active.size === 0) return
    const now = this.#now()
    const budget = Math.max(1, Math.floor(this.#sliceBytes / this.#active.size))
    let progressed = false
    for (const [job, turn] of [...this.#active]) {
      if (!this.#active.has(job)) continue // cancelled by an earlier pump (a link that closed)
      const { result, sent } = job.pump(budget)
      turn.sent += sent
      if (result === 'done') {
        this.#active.delete(job)
        progressed = true
        continue
      }
      if (result === 'more') {
        turn.blockedSince = null
        progressed = true
        if (turn.sent >= this.#turnBytes && this.#someoneWaitsFor(job)) this.#requeue(job)
        continue
      }
      turn.blockedSince ??= now
      if (now - turn.blockedSince >= this.#suspendAfterMs && this.#someoneWaitsFor(job)) {
        this.#suspended++
        this.#requeue(job)
        progressed = true
      }
    }
    if (this.#active.size > 0 || this.#waiting.length > 0) this.#schedule(progressed)
  }

  #requeue(job: AnswerJob): void {
    this.#active.delete(job)
    this.#waiting.push(job)
  }
}

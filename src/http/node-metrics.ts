/**
 * Measurements the API keeps itself for /metrics: entries this process appended, and event-loop
 * delay. Everything else is read from the node's parts at scrape time.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { SledLog } from '../log/sled-log.js'

/** Sampling interval of the event-loop delay histogram, ms. */
const RESOLUTION_MS = 10
/** Length of the window the reported p99 covers, ms. */
const WINDOW_MS = 10_000

/** Lifecycle: constructed (measuring) → `close()`. */
export class NodeMetrics {
  #appends = 0
  readonly #unsubscribe: () => void
  readonly #delay: IntervalHistogram
  readonly #rotate: NodeJS.Timeout
  /** p99 and max of the last complete window, ns; null before the first window ends. */
  #last: { p99: number; max: number } | null = null

  constructor(log: SledLog) {
    this.#unsubscribe = log.onCommit((e) => {
      if (!e.local) return
      for (const run of e.runs) this.#appends += run.records.length
    })
    this.#delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.#delay.enable()
    // A fixed window rather than since-start: an old stall should not hide today's p99, and a
    // scrape (any number of scrapers) reads without resetting anything.
    this.#rotate = setInterval(() => {
      this.#last = this.#window()
      this.#delay.reset()
    }, WINDOW_MS)
    this.#rotate.unref()
  }

  /** Entries this process appended to its own sled (events and gap sentinels). */
  get appends(): number {
    return this.#appends
  }

  /**
   * Event-loop delay over the last complete window (or the current one before the first window
   * ends), in seconds. The histogram records whole timer intervals, so the sampling interval is
   * taken off: an idle loop reports ~0.
   */
  eventLoopDelay(): { p99: number; max: number } {
    const { p99, max } = this.#last ?? this.#window()
    const seconds = (ns: number): number => Math.max(0, ns / 1e9 - RESOLUTION_MS / 1000)
    return { p99: seconds(p99), max: seconds(max) }
  }

  #window(): { p99: number; max: number } {
    return this.#delay.count > 0 ? { p99: this.#delay.percentile(99), max: this.#delay.max } : { p99: 0, max: 0 }
  }

  /** Stops measuring. */
  close(): void {
    this.#unsubscribe()
    clearInterval(this.#rotate)
    this.#delay.disable()
  }
}

/**
 * A well-behaved client that keeps requesting a few URLs one after another while a test abuses
 * a server, and records how long each request took: the "does anyone else still get served"
 * measurement of every abuse test. Generic: any HTTP(S) server, any paths.
 */
import { onTestFinished } from 'vitest'

/** What a probe saw for one path. */
export interface ProbeFigures {
  readonly path: string
  readonly requests: number
  /** Requests that failed (network error, timeout, or a status of 500 or more). */
  readonly failures: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** Nearest-rank percentile of sorted values. */
function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number
}

/** Lifecycle: `start()` → `stop()` (also stopped when the test finishes). */
export class LatencyProbe {
  readonly #base: string
  readonly #paths: readonly string[]
  readonly #timeoutMs: number
  readonly #headers: Readonly<Record<string, string>>
  readonly #lat = new Map<string, number[]>()
  readonly #failures = new Map<string, number>()
  #running: Promise<void> | null = null
  #stopped = false

  /** Probes `paths` of `base` in turn, each request with a `timeoutMs` deadline (counted as its time). */
  constructor(
    base: string,
    paths: readonly string[],
    opts: { timeoutMs?: number; headers?: Record<string, string> } = {},
  ) {
    this.#base = base
    this.#paths = paths
    this.#timeoutMs = opts.timeoutMs ?? 20_000
    this.#headers = opts.headers ?? {}
    for (const p of paths) {
      this.#lat.set(p, [])
      this.#failures.set(p, 0)
    }
  }

  /** Starts probing. */
  start(): this {
    onTestFinished(() => this.stop().then(() => undefined))
    this.#running = this.#loop()
    return this
  }

  /** Stops after the request in flight; returns the figures per path. */
  async stop(): Promise<ProbeFigures[]> {
    this.#stopped = true
    await this.#running
    return this.figures()
  }

  /** Figures so far. */
  figures(): ProbeFigures[] {
    return this.#paths.map((path) => {
      const sorted = [...(this.#lat.get(path) ?? [])].sort((a, b) => a - b)
      return {
        path,
        requests: sorted.length,
        failures: this.#failures.get(path) ?? 0,
        p50Ms: pct(sorted, 50),
        p99Ms: pct(sorted, 99),
        maxMs: sorted.at(-1) ?? Number.NaN,
      }
    })
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      for (const path of this.#paths) {
        const t0 = performance.now()
        let failed = false
        try {
          const res = await fetch(this.#base + path, {
            headers: this.#headers,
            signal: AbortSignal.timeout(this.#timeoutMs),
          })
          await res.arrayBuffer()
          failed = res.status >= 500
        } catch {
          failed = true
        }
        this.#lat.get(path)?.push(performance.now() - t0)
        if (failed) this.#failures.set(path, (this.#failures.get(path) ?? 0) + 1)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }
}

/**
 * Samples the resident set size of a process (Linux /proc) while a test runs: how much memory
 * an abuse costs a server process. Generic: any pid.
 */
import { readFile } from 'node:fs/promises'
import { onTestFinished } from 'vitest'

/** RSS of `pid` in bytes (VmRSS), or undefined once the process is gone. */
export async function rssOf(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

/** Lifecycle: `start()` → `stop()` (also stopped when the test finishes). */
export class RssSampler {
  readonly #pid: number
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | null = null
  #first: number | undefined
  #max = 0
  #last: number | undefined

  constructor(pid: number, intervalMs = 100) {
    this.#pid = pid
    this.#intervalMs = intervalMs
  }

  /** Takes the baseline sample and starts sampling. */
  async start(): Promise<this> {
    this.#first = await rssOf(this.#pid)
    this.#max = this.#first ?? 0
    this.#timer = setInterval(() => void this.#sample(), this.#intervalMs)
    onTestFinished(() => this.stop())
    return this
  }

  /** Stops sampling. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Baseline, peak and latest RSS, bytes; `growth` is peak minus baseline. */
  figures(): { baseline: number; peak: number; last: number; growth: number } {
    const baseline = this.#first ?? 0
    return { baseline, peak: this.#max, last: this.#last ?? baseline, growth: this.#max - baseline }
  }

  async #sample(): Promise<void> {
    const v = await rssOf(this.#pid)
    if (v === undefined) return
    this.#last = v
    if (v > this.#max) this.#max = v
  }
}

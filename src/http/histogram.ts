/**
 * A fixed-bucket histogram of durations, as Prometheus histograms count them: per upper bound
 * (`le`), how many observations were at most that, plus their sum and count. Constant memory
 * whatever the number of observations; rendered by {@link Exposition.histogram}.
 */

/** What an exposition needs of a histogram. */
export interface HistogramSnapshot {
  /** Upper bounds, ascending, without +Inf. */
  readonly bounds: readonly number[]
  /** Observations at most each bound (cumulative), in bound order. */
  readonly cumulative: readonly number[]
  readonly sum: number
  readonly count: number
}

/** Upper bounds of latency histograms, in seconds: 1 ms … 60 s. */
export const LATENCY_BOUNDS_S: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]

/** Counts observations into buckets. */
export class Histogram {
  readonly #bounds: readonly number[]
  readonly #counts: number[]
  #sum = 0
  #count = 0

  constructor(bounds: readonly number[] = LATENCY_BOUNDS_S) {
    for (let i = 1; i < bounds.length; i++)
      if (!((bounds[i] as number) > (bounds[i - 1] as number))) throw new RangeError('bounds must ascend')
    this.#bounds = bounds
    this.#counts = bounds.map(() => 0)
  }

  /** Records one observation. */
  observe(value: number): void {
    this.#sum += value
    this.#count++
    const i = this.#bounds.findIndex((b) => value <= b)
    if (i >= 0) this.#counts[i] = (this.#counts[i] as number) + 1
  }

  /** The buckets as Prometheus reads them (cumulative). */
  snapshot(): HistogramSnapshot {
    let run = 0
    const cumulative = this.#counts.map((c) => (run += c))
    return { bounds: this.#bounds, cumulative, sum: this.#sum, count: this.#count }
  }
}

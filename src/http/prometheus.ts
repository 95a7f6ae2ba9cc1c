/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: a few families of
 * counters, gauges and histograms do not justify a client library.
 */
import type { HistogramSnapshot } from './histogram.js'

/** Content type of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** One sample of a family. */
export interface Sample {
  readonly labels?: Readonly<Record<string, string>>
  readonly value: number
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** Escapes HELP text: backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** Formats a sample value (Go's ParseFloat spellings for the non-finite ones). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

/** Builds an exposition family by family. */
export class Exposition {
  readonly #lines: string[] = []
  readonly #families = new Set<string>()

  /**
   * Adds a family with its HELP and TYPE lines. Label sets must be distinct within a family: a
   * repeated series would make the whole scrape invalid, so it throws (a bug, not input).
   */
  family(name: string, type: 'counter' | 'gauge', help: string, samples: number | Iterable<Sample>): this {
    if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`)
    if (this.#families.has(name)) throw new Error(`metric family ${name} added twice`)
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`)
    this.#families.add(name)
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
    const series = new Set<string>()
    for (const s of typeof samples === 'number' ? [{ value: samples }] : samples) {
      const labels = Object.entries(s.labels ?? {})
        .map(([k, v]) => {
          if (!LABEL_NAME.test(k) || k.startsWith('__')) throw new Error(`bad label name ${k}`)
          return `${k}="${escapeLabelValue(v)}"`
        })
        .join(',')
      if (series.has(labels)) throw new Error(`metric ${name} repeats series {${labels}}`)
      series.add(labels)
      this.#lines.push(`${name}${labels === '' ? '' : `{${labels}}`} ${formatValue(s.value)}`)
    }
    return this
  }

  /**
   * Adds a histogram family: a `_bucket` series per upper bound and `+Inf`, then `_sum` and
   * `_count` (the names Prometheus' histogram functions expect).
   */
  histogram(name: string, help: string, h: HistogramSnapshot): this {
    if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`)
    if (this.#families.has(name)) throw new Error(`metric family ${name} added twice`)
    this.#families.add(name)
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} histogram`)
    h.bounds.forEach((le, i) => {
      this.#lines.push(`${name}_bucket{le="${formatValue(le)}"} ${h.cumulative[i] ?? 0}`)
    })
    this.#lines.push(
      `${name}_bucket{le="+Inf"} ${h.count}`,
      `${name}_sum ${formatValue(h.sum)}`,
      `${name}_count ${h.count}`,
    )
    return this
  }

  /** The exposition text (ends with a line feed). */
  text(): string {
    return this.#lines.join('\n') + '\n'
  }
}

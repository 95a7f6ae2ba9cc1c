/**
 * The standard process and runtime metrics (`process_*`, `nodejs_*`: CPU, memory, file
 * descriptors, event-loop lag, GC, handles) from prom-client, the library Prometheus users
 * know, in a registry of the API's own (no global registry: two nodes in one process must not
 * share or double-register series).
 */
import { collectDefaultMetrics, Registry } from 'prom-client'

/**
 * Lifecycle: constructed → `text()`… → `close()`. The registry is created at the first scrape:
 * prom-client's event-loop monitor and GC observer cannot be stopped, so an API that is never
 * scraped (most in-process uses) never starts them.
 */
export class RuntimeMetrics {
  #registry: Registry | null = null

  /** The exposition of the runtime metrics (text format 0.0.4, ends with a line feed). */
  async text(): Promise<string> {
    if (this.#registry === null) {
      this.#registry = new Registry()
      collectDefaultMetrics({ register: this.#registry })
    }
    // prom-client separates families with blank lines (sledlog's exposition has none), and its
    // event-loop histogram has no samples at the first scrape: it writes `Nan` then, which is
    // left out (a family without samples, as sledlog's own families have before any data).
    const lines = (await this.#registry.metrics()).split('\n').filter((l) => l !== '' && !/ Nan$/i.test(l))
    return `${lines.join('\n')}\n`
  }

  /** Drops the registry's metrics. */
  close(): void {
    this.#registry?.clear()
    this.#registry = null
  }
}

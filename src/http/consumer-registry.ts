/**
 * The durable consumers the API has opened, one instance per name, so concurrent streams and
 * acknowledgements of a consumer share one cursor and one write queue.
 */
import { isSledlogError, sledlogError } from '../errors.js'
import { DurableConsumer } from '../log/consumer.js'
import type { SledLog } from '../log/sled-log.js'

/** Opens consumers on demand and closes them with the API. */
export class ConsumerRegistry {
  readonly #log: SledLog
  readonly #open = new Map<string, Promise<DurableConsumer>>()
  #closed = false

  constructor(log: SledLog) {
    this.#log = log
  }

  /** The consumer `name`, opened once and kept (streams and acks need its live state). */
  get(name: string): Promise<DurableConsumer> {
    if (this.#closed) return Promise.reject(sledlogError('LOG_CLOSED', 'the node is stopping'))
    let opening = this.#open.get(name)
    if (opening === undefined) {
      const consumer = create(this.#log, name)
      opening = consumer.open().then(() => consumer)
      this.#open.set(name, opening)
      // A failed open is not cached: the next request tries again.
      opening.catch(() => this.#open.delete(name))
    }
    return opening
  }

  /**
   * The acknowledged cursor of `name` without keeping the consumer open: reading a cursor must
   * not let clients pile up open consumers under arbitrary names.
   */
  async cursor(name: string): Promise<Record<string, number>> {
    const open = this.#open.get(name)
    const consumer = open === undefined ? create(this.#log, name) : await open
    if (open === undefined) await consumer.open()
    return { ...consumer.cursor() }
  }

  /** Names of the stored consumers and those opened since start, sorted. */
  async names(): Promise<string[]> {
    const stored = await DurableConsumer.list(this.#log)
    return [...new Set([...stored, ...this.#open.keys()])].sort()
  }

  /** Waits for pending cursor writes and closes every consumer. */
  async close(): Promise<void> {
    this.#closed = true
    const all = await Promise.allSettled(this.#open.values())
    for (const r of all) if (r.status === 'fulfilled') await r.value.close()
    this.#open.clear()
  }
}

/** Creates a consumer; a bad name is a bad request path, not a bad entry. */
function create(log: SledLog, name: string): DurableConsumer {
  try {
    return new DurableConsumer(log, name)
  } catch (err) {
    if (isSledlogError(err, 'ENTRY_INVALID')) throw sledlogError('HTTP_BAD_REQUEST', err.message, { param: 'name' })
    throw err
  }
}

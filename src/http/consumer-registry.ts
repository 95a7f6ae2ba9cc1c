/**
 * The durable consumers the API has opened, one instance per name, so concurrent streams and
 * acknowledgements of a consumer share one cursor and one write queue. Consumers exist only once
 * created (PUT /v1/consumers/NAME): a misspelt name is a 404, never a new consumer.
 */
import { isSledlogError, sledlogError } from '../errors.js'
import { DurableConsumer } from '../log/consumer.js'
import type { SledLog } from '../log/sled-log.js'

/** Opens consumers on demand and closes them with the API. */
export class ConsumerRegistry {
  readonly #log: SledLog
  readonly #open = new Map<string, Promise<DurableConsumer>>()
  /** Streams reading each consumer, by the function that ends them (on delete). */
  readonly #streams = new Map<string, Set<() => void>>()
  #closed = false

  constructor(log: SledLog) {
    this.#log = log
  }

  /** The existing consumer `name`, opened once and kept; CONSUMER_NOT_FOUND when there is none. */
  async get(name: string): Promise<DurableConsumer> {
    const consumer = await this.#opened(name)
    if (consumer !== undefined) return consumer
    throw notFound(name)
  }

  /** Creates `name` unless it exists; `created` says which. */
  async create(name: string): Promise<{ consumer: DurableConsumer; created: boolean }> {
    const existing = await this.#opened(name)
    if (existing !== undefined) return { consumer: existing, created: false }
    const consumer = await this.#openNew(name)
    await consumer.save()
    return { consumer, created: true }
  }

  /** Deletes `name`: its streams end, its cursor is gone. CONSUMER_NOT_FOUND when there is none. */
  async delete(name: string): Promise<void> {
    const consumer = await this.get(name)
    this.#open.delete(name)
    for (const end of [...(this.#streams.get(name) ?? [])]) end()
    this.#streams.delete(name)
    await consumer.delete()
  }

  /** Registers a stream reading `name`, ended when the consumer is deleted; returns its unregister. */
  watch(name: string, end: () => void): () => void {
    const set = this.#streams.get(name) ?? new Set()
    set.add(end)
    this.#streams.set(name, set)
    return () => {
      set.delete(end)
      if (set.size === 0 && this.#streams.get(name) === set) this.#streams.delete(name)
    }
  }

  /** The acknowledged cursor of `name`; CONSUMER_NOT_FOUND when there is none. */
  async cursor(name: string): Promise<Record<string, number>> {
    return { ...(await this.get(name)).cursor() }
  }

  /** Names of the stored consumers, sorted. */
  async names(): Promise<string[]> {
    return (await DurableConsumer.list(this.#log)).sort()
  }

  /** Waits for pending cursor writes and closes every consumer. */
  async close(): Promise<void> {
    this.#closed = true
    const all = await Promise.allSettled(this.#open.values())
    for (const r of all) if (r.status === 'fulfilled') await r.value.close()
    this.#open.clear()
  }

  /** The open instance of `name` if it exists (opening it if stored), else undefined. */
  async #opened(name: string): Promise<DurableConsumer | undefined> {
    if (this.#closed) throw sledlogError('LOG_CLOSED', 'the node is stopping')
    const open = this.#open.get(name)
    if (open !== undefined) return open
    create(this.#log, name) // checks the name first: a bad name is a 400, not a 404
    if (!(await DurableConsumer.exists(this.#log, name))) return undefined
    return this.#open.get(name) ?? this.#openNew(name)
  }

  #openNew(name: string): Promise<DurableConsumer> {
    const known = this.#open.get(name)
    if (known !== undefined) return known
    const consumer = create(this.#log, name)
    const opening = consumer.open().then(() => consumer)
    this.#open.set(name, opening)
    // A failed open is not cached: the next request tries again.
    opening.catch(() => this.#open.delete(name))
    return opening
  }
}

function notFound(name: string): Error {
  return sledlogError(
    'CONSUMER_NOT_FOUND',
    `no consumer ${JSON.stringify(name)}; create it with PUT /v1/consumers/${name}`,
    {
      name,
    },
  )
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

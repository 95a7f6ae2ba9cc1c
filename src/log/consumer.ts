/**
 * Durable named consumers: an acknowledged cursor per sled, persisted in the node's LevelDB, so a
 * consumer restarted after a crash resumes right after its last acknowledged entry — never
 * before it, and never past an entry it has not acknowledged.
 */
import { isSledId, type SledId } from '../core/ids.js'
import type { Heads, QueryResult } from '../core/query.js'
import { sledlogError } from '../errors.js'
import type { SledLog } from './sled-log.js'
import { Subscription, type SubscribeOptions } from './subscription.js'

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/
const META_PREFIX = 'consumer:'
/**
 * Stored value of a consumer deleted by an earlier version, which could not remove metadata and
 * wrote this tombstone instead (a cursor is always a JSON object, never `null`): read as absent.
 */
const TOMBSTONE = 'null'

/** A durable consumer. Lifecycle: `open()` → read/subscribe/ack → `close()`. */
export class DurableConsumer {
  readonly #log: SledLog
  readonly #name: string
  /** Acknowledged cursor: every seq up to it is acknowledged, per sled. */
  readonly #cursor = new Map<SledId, number>()
  /** Acknowledged seqs past the cursor (out of order), per sled. */
  readonly #ahead = new Map<SledId, Set<number>>()
  #writing: Promise<void> | null = null
  #dirty = false
  #open = false
  #deleted = false

  constructor(log: SledLog, name: string) {
    if (!NAME_RE.test(name)) throw sledlogError('ENTRY_INVALID', 'consumer name must be 1..64 of [A-Za-z0-9._-]')
    this.#log = log
    this.#name = name
  }

  /** Names of the consumers stored in a log. */
  static async list(log: SledLog): Promise<string[]> {
    return [...(await log.readMetaPrefix(META_PREFIX)).entries()]
      .filter(([, v]) => v !== TOMBSTONE)
      .map(([k]) => k.slice(META_PREFIX.length))
  }

  /** True when a consumer `name` is stored in a log (created or acknowledged, not deleted). */
  static async exists(log: SledLog, name: string): Promise<boolean> {
    const raw = await log.readMeta(META_PREFIX + name)
    return raw !== undefined && raw !== TOMBSTONE
  }

  /**
   * Every stored consumer with its acknowledged cursor (what a backup carries). Read before a
   * backup fixes its lengths, a cursor never points past the entries the backup holds.
   */
  static async cursors(log: SledLog): Promise<Map<string, Heads>> {
    const out = new Map<string, Heads>()
    for (const [key, value] of await log.readMetaPrefix(META_PREFIX)) {
      if (value === TOMBSTONE) continue
      out.set(key.slice(META_PREFIX.length), JSON.parse(value) as Heads)
    }
    return out
  }

  /** Stores consumer `name` with `cursor` (a restore); throws ENTRY_INVALID for a bad name or cursor. */
  static async restore(log: SledLog, name: string, cursor: Heads): Promise<void> {
    if (!NAME_RE.test(name)) throw sledlogError('ENTRY_INVALID', 'consumer name must be 1..64 of [A-Za-z0-9._-]')
    for (const [sled, seq] of Object.entries(cursor)) {
      if (!isSledId(sled) || !Number.isSafeInteger(seq) || seq < -1)
        throw sledlogError(
          'ENTRY_INVALID',
          `consumer ${name}: cursor ${JSON.stringify(sled).slice(0, 80)} is not sled → seq`,
        )
    }
    await log.writeMeta({ [META_PREFIX + name]: JSON.stringify(cursor) })
  }

  /** The consumer's name. */
  get name(): string {
    return this.#name
  }

  /** Loads the stored cursor. */
  async open(): Promise<void> {
    const raw = await this.#log.readMeta(META_PREFIX + this.#name)
    if (raw !== undefined && raw !== TOMBSTONE) {
      const parsed = JSON.parse(raw) as Record<string, number>
      for (const [sled, seq] of Object.entries(parsed)) this.#cursor.set(sled as SledId, seq)
    }
    this.#open = true
  }

  /** Waits for pending cursor writes. */
  async close(): Promise<void> {
    while (this.#writing !== null) await this.#writing
    this.#open = false
  }

  /** Stores the consumer with its current cursor (empty when new), so it exists from now on. */
  async save(): Promise<void> {
    if (!this.#open) throw sledlogError('LOG_NOT_OPEN', 'consumer is not open')
    this.#dirty = true
    await this.#persist(false)
  }

  /**
   * Deletes the stored consumer: waits for pending cursor writes, then removes its cursor.
   * The instance refuses acknowledgements from then on.
   */
  async delete(): Promise<void> {
    this.#deleted = true
    while (this.#writing !== null) await this.#writing
    this.#cursor.clear()
    this.#ahead.clear()
    await this.#log.deleteMeta([META_PREFIX + this.#name])
  }

  /** The acknowledged cursor (last acknowledged seq per sled). */
  cursor(): Heads {
    return Object.fromEntries(this.#cursor)
  }

  /** Reads entries after the acknowledged cursor. */
  read(limit = 1000): QueryResult {
    return this.#log.query({ afterHeads: this.cursor(), limit })
  }

  /** Subscribes from the acknowledged cursor (stored entries, then live). */
  subscribe(opts: Omit<SubscribeOptions, 'from'> = {}): Subscription {
    return new Subscription(this.#log, { ...opts, from: this.cursor() }).start()
  }

  /**
   * Acknowledges (sled, seq). The cursor only moves over contiguous acknowledged seqs, so it
   * never passes an entry that was not acknowledged; resolves once the cursor is durable.
   * Acknowledging an entry the log does not hold is refused. An entry held but withheld (its
   * sled was found forked at or below it after it was delivered) is taken and changes nothing:
   * the cursor stays below the fork, where every replica reads the same.
   */
  ack(sled: SledId, seq: number): Promise<void> {
    if (!this.#open) return Promise.reject(sledlogError('LOG_NOT_OPEN', 'consumer is not open'))
    if (this.#deleted) return Promise.reject(sledlogError('CONSUMER_NOT_FOUND', `consumer ${this.#name} was deleted`))
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= this.#log.held(sled)) {
      return Promise.reject(sledlogError('ENTRY_INVALID', `cannot acknowledge ${sled.slice(0, 12)}…/${seq}: not held`))
    }
    if (seq >= this.#log.length(sled)) return this.#persist(false)
    let cur = this.#cursor.get(sled) ?? -1
    if (seq <= cur) return this.#persist(false)
    const ahead = this.#ahead.get(sled) ?? new Set<number>()
    ahead.add(seq)
    while (ahead.delete(cur + 1)) cur++
    if (ahead.size === 0) this.#ahead.delete(sled)
    else this.#ahead.set(sled, ahead)
    const moved = cur !== (this.#cursor.get(sled) ?? -1)
    if (moved) this.#cursor.set(sled, cur)
    return this.#persist(moved)
  }

  /** Writes the cursor, coalescing acks that arrive while a write is in flight. */
  #persist(changed: boolean): Promise<void> {
    if (changed) this.#dirty = true
    if (this.#writing !== null) return this.#writing.then(() => this.#persist(false))
    if (!this.#dirty) return Promise.resolve()
    this.#dirty = false
    const value = JSON.stringify(this.cursor())
    this.#writing = this.#log.writeMeta({ [META_PREFIX + this.#name]: value }).finally(() => {
      this.#writing = null
    })
    return this.#writing
  }
}

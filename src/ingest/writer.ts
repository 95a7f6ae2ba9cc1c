/**
 * The ingest writer: drains the {@link IngestBus} into the log in batches and turns every dropped
 * range into a signed gap sentinel (docs/ARCHITECTURE.md "Ingest").
 */
import type { EntryBody } from '../core/entry.js'
import { isSledlogError } from '../errors.js'
import type { SledLog } from '../log/sled-log.js'
import { IngestBus, type BusItem, type BusStats } from './bus.js'

/** Options of an {@link IngestWriter}. */
export interface IngestWriterOptions {
  readonly log: SledLog
  /** Bus capacity in events. */
  readonly capacity?: number
  /** Most items per append. */
  readonly batchSize?: number
  /** Longest wait for a batch to fill once an item is waiting. */
  readonly flushIntervalMs?: number
  /**
   * Lids reserved ahead in the store. After a crash the unpersisted part of the reservation is
   * recorded as one gap sentinel, so events published but lost in the crash are not silent.
   */
  readonly reserveBlock?: number
}

/** Counters of the writer and its bus. */
export interface IngestStats extends BusStats {
  /** Events appended as entries. */
  readonly appended: number
  /** Gap sentinels written (lag drops, rejected events, crash recovery). */
  readonly sentinels: number
  /** Events the log refused (e.g. too large), recorded in sentinels. */
  readonly rejected: number
  /** Events not appended because their idempotency id was already held or queued. */
  readonly deduplicated: number
  /** Set when the log failed a write; the writer stops. */
  readonly error: string | null
}

const RESERVE_KEY = 'ingest-lid-reserved'

/** Drains a bus into a log. Lifecycle: `start()` → `stop()`. */
export class IngestWriter {
  readonly #log: SledLog
  readonly #capacity: number
  readonly #batchSize: number
  readonly #flushMs: number
  readonly #block: number
  #bus: IngestBus | null = null
  #loop: Promise<void> | null = null
  #reserved = 0
  #appended = 0
  #sentinels = 0
  #rejected = 0
  #deduplicated = 0
  #error: string | null = null
  /** Idempotency ids taken from the bus whose append has not resolved yet. */
  readonly #inflightIds = new Set<string>()

  constructor(opts: IngestWriterOptions) {
    this.#log = opts.log
    this.#capacity = opts.capacity ?? 10_000
    this.#batchSize = opts.batchSize ?? 500
    this.#flushMs = opts.flushIntervalMs ?? 5
    this.#block = opts.reserveBlock ?? 100_000
  }

  /** True once started: the bus accepts events. */
  get started(): boolean {
    return this.#bus !== null
  }

  /** The bus producers publish onto (after start). */
  get bus(): IngestBus {
    if (this.#bus === null) throw new Error('ingest writer not started')
    return this.#bus
  }

  /**
   * Recovers the next lid from the log and the stored reservation, records any lids a crash may
   * have lost as a gap sentinel, and starts draining.
   */
  async start(): Promise<void> {
    const last = this.#lastLid()
    const stored = Number((await this.#log.readMeta(RESERVE_KEY)) ?? 0)
    let first = last + 1
    if (stored > first) {
      await this.#log.appendGap(first, stored - 1)
      this.#sentinels++
      first = stored
    }
    await this.#reserve(first)
    this.#bus = new IngestBus({
      capacity: this.#capacity,
      firstLid: first,
      isKnownId: (id) => this.#inflightIds.has(id) || this.#log.hasId(id),
    })
    this.#loop = this.#run(this.#bus)
  }

  /** Closes the bus, appends everything still queued, and stops. */
  async stop(): Promise<void> {
    const bus = this.#bus
    if (bus === null) return
    bus.close()
    await this.#loop
    // Everything published is now in the log: shrink the reservation to the exact next lid, so
    // a clean restart records no possibly-lost range.
    if (this.#error === null) {
      await this.#log.writeMeta({ [RESERVE_KEY]: String(bus.stats().nextLid) }).catch(() => undefined)
    }
  }

  /** Counters. */
  stats(): IngestStats {
    const bus = this.#bus?.stats() ?? { published: 0, dropped: 0, droppedRanges: 0, depth: 0, capacity: this.#capacity, nextLid: 0 }
    return {
      ...bus,
      appended: this.#appended,
      sentinels: this.#sentinels,
      rejected: this.#rejected,
      deduplicated: this.#deduplicated + (this.#bus?.duplicates ?? 0),
      error: this.#error,
    }
  }

  /** The highest lid the log records (an event's lid or a sentinel's `to`), or -1. */
  #lastLid(): number {
    const sled = this.#log.sled
    for (let seq = this.#log.length(sled) - 1; seq >= 0; seq--) {
      const e = this.#log.get(sled, seq)
      if (e === undefined) break
      if (e.kind === 'gap') return e.to
      if (e.lid !== undefined) return e.lid
    }
    return -1
  }

  async #reserve(from: number): Promise<void> {
    this.#reserved = from + this.#block
    await this.#log.writeMeta({ [RESERVE_KEY]: String(this.#reserved) })
  }

  async #run(bus: IngestBus): Promise<void> {
    for (;;) {
      await bus.whenPending(1)
      if (bus.pending === 0 && bus.closed) return
      if (bus.pending < this.#batchSize && !bus.closed) {
        await Promise.race([bus.whenPending(this.#batchSize), new Promise((r) => setTimeout(r, this.#flushMs))])
      }
      const items = bus.take(this.#batchSize)
      try {
        if (bus.stats().nextLid + this.#block / 2 > this.#reserved) await this.#reserve(bus.stats().nextLid)
        await this.#append(items)
      } catch (err) {
        // The log refuses writes after a failed write until it is reopened: stop here. The lids
        // of these items and later ones fall inside the stored reservation, which the next start
        // records as a gap sentinel.
        this.#error = (err as Error).message
        bus.close()
        return
      }
    }
  }

  async #append(items: readonly BusItem[]): Promise<void> {
    for (const item of items) if (item.kind === 'event' && item.id !== undefined) this.#inflightIds.add(item.id)
    try {
      await this.#appendItems(items)
    } finally {
      for (const item of items) if (item.kind === 'event' && item.id !== undefined) this.#inflightIds.delete(item.id)
    }
  }

  async #appendItems(items: readonly BusItem[]): Promise<void> {
    try {
      await this.#account(items, await this.#log.appendBodies(items.map(toBody)))
    } catch (err) {
      if (!isSledlogError(err, 'ENTRY_TOO_LARGE') && !isSledlogError(err, 'ENTRY_INVALID')) throw err
      // One item spoiled the batch: append one by one, recording refused events as sentinels.
      for (const item of items) {
        try {
          await this.#account([item], await this.#log.appendBodies([toBody(item)]))
        } catch (one) {
          if (item.kind !== 'event' || (!isSledlogError(one, 'ENTRY_TOO_LARGE') && !isSledlogError(one, 'ENTRY_INVALID'))) throw one
          this.#rejected++
          await this.#log.appendGap(item.lid, item.lid)
          this.#sentinels++
        }
      }
    }
  }

  /** Counts a committed batch; an event answered with an older entry (its id was appended
   * directly meanwhile) was not appended, so its lid is recorded as a sentinel, keeping every lid
   * accounted for. */
  async #account(items: readonly BusItem[], entries: readonly { kind: string; lid?: number }[]): Promise<void> {
    for (const [i, item] of items.entries()) {
      if (item.kind === 'gap') this.#sentinels++
      else if (entries[i]?.lid === item.lid) this.#appended++
      else {
        this.#deduplicated++
        await this.#log.appendGap(item.lid, item.lid)
        this.#sentinels++
      }
    }
  }
}

function toBody(item: BusItem): EntryBody {
  return item
}

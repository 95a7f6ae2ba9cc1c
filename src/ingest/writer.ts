/**
 * The ingest writer: drains the {@link IngestBus} into the log in batches and turns every dropped
 * range into a signed gap sentinel (docs/ARCHITECTURE.md "Ingest").
 */
import type { EntryBody } from '../core/entry.js'
import { MAX_LIMIT, type StoredEntry } from '../core/query.js'
import { isSledlogError } from '../errors.js'
import type { AppendOptions, SledLog } from '../log/sled-log.js'
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
   * Lids reserved ahead in the store: the bus hands out only lids below the persisted
   * reservation, and asks for the next block when half is used. After a crash the unwritten
   * part of the reservation is recorded as one gap sentinel, so events published but lost in the
   * crash are not silent.
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
/**
 * `<seq> <lid>`: every lid below `lid` is accounted for by an own entry below `seq`, and no entry
 * from `seq` on covers a lid below `lid`. Start scans only the entries from `seq`.
 */
const CHECKED_KEY = 'ingest-lid-checked'
/** Most sentinels per append at start (holes and the lost reservation). */
const START_GAPS_PER_BATCH = 100
/**
 * An event whose id the log already holds is answered with the entry that holds it, whatever that
 * says (never ENTRY_ID_CONFLICT): the bus deduplicates by id alone, and its lid becomes a sentinel.
 */
const EXISTING: AppendOptions = { idConflict: 'existing' }

/** A point up to which every lid is accounted for (see CHECKED_KEY). */
interface Checkpoint {
  readonly seq: number
  readonly lid: number
}

/** Drains a bus into a log. Lifecycle: `start()` → `stop()`. */
export class IngestWriter {
  readonly #log: SledLog
  readonly #capacity: number
  readonly #batchSize: number
  readonly #flushMs: number
  readonly #block: number
  #bus: IngestBus | null = null
  #loop: Promise<void> | null = null
  /** The persisted reservation being written, if any. */
  #extending: Promise<void> | null = null
  #checked: Checkpoint = { seq: 0, lid: 0 }
  #appended = 0
  #sentinels = 0
  #rejected = 0
  #deduplicated = 0
  #error: string | null = null

  constructor(opts: IngestWriterOptions) {
    this.#log = opts.log
    this.#capacity = opts.capacity ?? 10_000
    this.#batchSize = opts.batchSize ?? 500
    this.#flushMs = opts.flushIntervalMs ?? 5
    this.#block = Math.max(1, opts.reserveBlock ?? 100_000)
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
   * have lost as gap sentinels, persists a new reservation and starts draining.
   *
   * Lost lids are of two kinds: lids of the crashed run's reservation that no entry holds (one
   * sentinel from the highest lid recorded to the reservation), and a lid whose event the log
   * answered with an older entry of the same id when the crash came before its sentinel (a hole
   * below the highest lid, one sentinel each).
   */
  async start(): Promise<void> {
    const stored = Number((await this.#log.readMeta(RESERVE_KEY)) ?? 0)
    const from = parseCheckpoint(await this.#log.readMeta(CHECKED_KEY))
    const { holes, next } = this.#scan(from)
    let first = next
    if (stored > first) {
      holes.push([first, stored - 1])
      first = stored
    }
    for (let i = 0; i < holes.length; i += START_GAPS_PER_BATCH) {
      const chunk = holes.slice(i, i + START_GAPS_PER_BATCH)
      await this.#log.appendBodies(chunk.map(([f, t]): EntryBody => ({ kind: 'gap', from: f, to: t })))
      this.#sentinels += chunk.length
    }
    this.#checked = { seq: this.#log.length(this.#log.sled), lid: first }
    const limit = first + this.#block
    await this.#persist(limit)
    this.#bus = new IngestBus({
      capacity: this.#capacity,
      firstLid: first,
      lidLimit: limit,
      lidLowMark: limit - Math.floor(this.#block / 2),
      onLidsLow: (nextLid) => this.#onLidsLow(nextLid),
      isKnownId: (id) => this.#log.hasId(id),
    })
    this.#loop = this.#run(this.#bus)
  }

  /** Closes the bus, appends everything still queued, and stops. */
  async stop(): Promise<void> {
    const bus = this.#bus
    if (bus === null) return
    bus.close()
    await this.#loop
    // A reservation written after the one below would record a spurious lost range at restart.
    await this.#extending
    // Everything published is now in the log: shrink the reservation to the exact next lid, so
    // a clean restart records no possibly-lost range and scans nothing.
    if (this.#error === null) await this.#persist(bus.stats().nextLid).catch(() => undefined)
  }

  /** Counters. */
  stats(): IngestStats {
    const bus = this.#bus?.stats() ?? {
      published: 0,
      dropped: 0,
      droppedRanges: 0,
      depth: 0,
      capacity: this.#capacity,
      nextLid: 0,
      refused: 0,
    }
    return {
      ...bus,
      appended: this.#appended,
      sentinels: this.#sentinels,
      rejected: this.#rejected,
      deduplicated: this.#deduplicated + (this.#bus?.duplicates ?? 0),
      error: this.#error,
    }
  }

  /**
   * Scans the own entries from checkpoint `from` for the lids they cover: returns the uncovered
   * ranges below the highest covered lid, and the lid after the highest. The whole lid coverage
   * is needed, not the last entry's: a sentinel for a lid the log deduplicated follows its batch,
   * so the last entry need not hold the highest lid.
   */
  #scan(from: Checkpoint): { holes: Array<[number, number]>; next: number } {
    const sled = this.#log.sled
    const spans: Array<[number, number]> = []
    let page = this.#log.query({ sled, afterSeq: from.seq - 1, limit: MAX_LIMIT })
    for (;;) {
      for (const e of page.entries) {
        if (e.kind === 'gap') spans.push([e.from, e.to])
        else if (e.kind === 'event' && e.lid !== undefined) spans.push([e.lid, e.lid])
      }
      if (page.next === null) break
      page = this.#log.query({ sled, after: page.next, limit: MAX_LIMIT })
    }
    spans.sort((a, b) => a[0] - b[0])
    const holes: Array<[number, number]> = []
    let next = from.lid
    for (const [f, t] of spans) {
      if (t < next) continue
      if (f > next) holes.push([next, f - 1])
      next = t + 1
    }
    return { holes, next }
  }

  /** Persists the reservation `limit` and the current checkpoint, atomically. */
  #persist(limit: number): Promise<void> {
    return this.#log.writeMeta({
      [RESERVE_KEY]: String(limit),
      [CHECKED_KEY]: `${this.#checked.seq} ${this.#checked.lid}`,
    })
  }

  /** The bus used half its lids: persist the next block, then let the bus hand it out. */
  #onLidsLow(nextLid: number): void {
    const bus = this.#bus
    if (this.#extending !== null || this.#error !== null || bus === null) return
    const limit = nextLid + this.#block
    this.#extending = this.#persist(limit)
      .then(
        () => bus.grant(limit, limit - Math.floor(this.#block / 2)),
        // The log is closing or failed: the bus stays within what is persisted and refuses
        // events past it; the next publish asks again.
        () => undefined,
      )
      .finally(() => {
        this.#extending = null
      })
  }

  async #run(bus: IngestBus): Promise<void> {
    for (;;) {
      await bus.whenPending(1)
      if (bus.pending === 0 && bus.closed) return
      if (bus.pending < this.#batchSize && !bus.closed) {
        await Promise.race([bus.whenPending(this.#batchSize), new Promise((r) => setTimeout(r, this.#flushMs))])
      }
      const items = bus.take(this.#batchSize)
      const last = items[items.length - 1]
      if (last === undefined) continue
      try {
        await this.#appendItems(items)
      } catch (err) {
        // The log refuses writes after a failed write until it is reopened: stop here. The lids
        // of these items and later ones fall inside the stored reservation, which the next start
        // records as a gap sentinel.
        this.#error = (err as Error).message
        bus.close()
        return
      } finally {
        bus.settle(items)
      }
      // Every lid up to this batch's is now in the log, and later entries hold only later lids.
      this.#checked = { seq: this.#log.length(this.#log.sled), lid: (last.kind === 'gap' ? last.to : last.lid) + 1 }
    }
  }

  async #appendItems(items: readonly BusItem[]): Promise<void> {
    try {
      await this.#account(
        items,
        await this.#log.appendBodies(
          items.map((i) => this.#toBody(i)),
          EXISTING,
        ),
      )
    } catch (err) {
      if (!isSledlogError(err, 'ENTRY_TOO_LARGE') && !isSledlogError(err, 'ENTRY_INVALID')) throw err
      // One item spoiled the batch: append one by one, recording refused events as sentinels.
      for (const item of items) {
        try {
          await this.#account([item], await this.#log.appendBodies([this.#toBody(item)], EXISTING))
        } catch (one) {
          if (
            item.kind !== 'event' ||
            (!isSledlogError(one, 'ENTRY_TOO_LARGE') && !isSledlogError(one, 'ENTRY_INVALID'))
          )
            throw one
          this.#rejected++
          await this.#log.appendGap(item.lid, item.lid)
          this.#sentinels++
        }
      }
    }
  }

  /**
   * The body appended for an item: an event whose id the log already holds (appended directly
   * while the event waited on the bus) becomes a one-lid sentinel in the same atomic batch.
   */
  #toBody(item: BusItem): EntryBody {
    if (item.kind !== 'event' || item.id === undefined || !this.#log.hasId(item.id)) return item
    return { kind: 'gap', from: item.lid, to: item.lid }
  }

  /**
   * Counts a committed batch. An event the log still answered with an older entry (a direct
   * append of its id was committing at the same time) was not appended: its lid is recorded as
   * a sentinel after the batch; should a crash come first, the next start finds the hole.
   */
  async #account(items: readonly BusItem[], entries: readonly StoredEntry[]): Promise<void> {
    for (const [i, item] of items.entries()) {
      const entry = entries[i]
      if (item.kind === 'gap') this.#sentinels++
      else if (entry?.kind === 'event' && entry.lid === item.lid) this.#appended++
      else if (entry?.kind === 'gap' && entry.from === item.lid && entry.to === item.lid) {
        this.#deduplicated++
        this.#sentinels++
      } else {
        this.#deduplicated++
        await this.#log.appendGap(item.lid, item.lid)
        this.#sentinels++
      }
    }
  }
}

function parseCheckpoint(raw: string | undefined): Checkpoint {
  const [seq, lid] = (raw ?? '').split(' ').map(Number)
  // No checkpoint (or one from an older version): scan the whole own log once.
  if (
    seq === undefined ||
    lid === undefined ||
    !Number.isSafeInteger(seq) ||
    !Number.isSafeInteger(lid) ||
    seq < 0 ||
    lid < 0
  ) {
    return { seq: 0, lid: 0 }
  }
  return { seq, lid }
}

/**
 * The bounded in-process bus producers publish events onto (docs/ARCHITECTURE.md "Ingest").
 *
 * `publish` never blocks and never waits for the log: each event gets the next logical id (lid)
 * and is queued, or, when the queue is full, dropped, with its lid added to the current dropped
 * range. The writer takes items in lid order: events, and one gap marker per contiguous dropped
 * range, which it turns into a signed gap sentinel, so every lid ends up either in an entry or
 * in exactly one sentinel.
 *
 * Lids must never be given twice, also across a crash, so the bus only hands out lids below a
 * limit its owner has persisted (the reservation): it asks for more when half is used, and past
 * the limit it refuses events rather than number them unpersisted.
 */
import { assertEntryBody, type JsonValue } from '../core/entry.js'

/** What a producer publishes. */
export interface IngestEvent {
  readonly type: string
  readonly payload: unknown
  /** Idempotency id: an id the sled already holds is not appended again. */
  readonly id?: string
}

/** An item the writer takes from the bus, in lid order. */
export type BusItem =
  | {
      readonly kind: 'event'
      readonly lid: number
      readonly type: string
      readonly payload: JsonValue
      readonly id?: string
    }
  | { readonly kind: 'gap'; readonly from: number; readonly to: number }

/** Counters of a bus. */
export interface BusStats {
  /** Events accepted onto the queue. */
  readonly published: number
  /** Events dropped because the queue was full. */
  readonly dropped: number
  /** Contiguous dropped ranges (each becomes one gap sentinel). */
  readonly droppedRanges: number
  /** Events waiting for the writer. */
  readonly depth: number
  readonly capacity: number
  /** The lid the next event will get. */
  readonly nextLid: number
  /** Events refused because no persisted lid was left (see {@link IngestBusOptions.lidLimit}). */
  readonly refused: number
}

/** Options of an {@link IngestBus}. */
export interface IngestBusOptions {
  /** Most events queued; past it events are dropped (and accounted for). */
  readonly capacity: number
  /** First lid to assign (the writer recovers it from the log). */
  readonly firstLid: number
  /**
   * First lid the bus may not assign: the reservation its owner has persisted (default: none).
   * A lid handed out past it could be handed out again after a crash.
   */
  readonly lidLimit?: number
  /** Once `nextLid` reaches this, each publish calls `onLidsLow` (default: `lidLimit`). */
  readonly lidLowMark?: number
  /**
   * Asks the owner to persist a larger reservation and then {@link IngestBus.grant} it. Called
   * synchronously from `publish`, possibly repeatedly until the grant arrives.
   */
  readonly onLidsLow?: (nextLid: number) => void
  /** True when an idempotency id is already held or being appended: the event is a duplicate. */
  readonly isKnownId?: (id: string) => boolean
}

/** Outcome of {@link IngestBus.publish}. */
export type PublishResult =
  /** Queued, or dropped (then recorded in a gap sentinel); either way it owns `lid`. */
  | { readonly lid: number; readonly queued: boolean; readonly duplicate: false }
  /** Its idempotency id is already held or queued: not appended again, no lid used. */
  | { readonly lid: null; readonly queued: false; readonly duplicate: true }
  /**
   * Refused: no persisted lid was left (producers outran the reservation's write). Nothing is
   * recorded and no lid used; publish it again.
   */
  | { readonly lid: null; readonly queued: false; readonly duplicate: false }

/** The ingest queue. Lifecycle: created open → `close()`. */
export class IngestBus {
  readonly #capacity: number
  readonly #items: BusItem[] = []
  #head = 0
  #events = 0
  #nextLid: number
  #published = 0
  #duplicates = 0
  #dropped = 0
  #droppedRanges = 0
  #refused = 0
  #limit: number
  #lowMark: number
  readonly #onLidsLow: (nextLid: number) => void
  #closed = false
  #waiter: { n: number; resolve: () => void } | null = null
  readonly #isKnownId: (id: string) => boolean
  /** Ids of published events until the writer settles them (stored, or never will be). */
  readonly #queuedIds = new Set<string>()

  constructor(opts: IngestBusOptions) {
    this.#capacity = opts.capacity
    this.#nextLid = opts.firstLid
    this.#limit = opts.lidLimit ?? Number.MAX_SAFE_INTEGER
    this.#lowMark = opts.lidLowMark ?? this.#limit
    this.#onLidsLow = opts.onLidsLow ?? (() => undefined)
    this.#isKnownId = opts.isKnownId ?? (() => false)
  }

  /**
   * Publishes an event; returns its lid and whether it was queued (false: dropped, and it will
   * be recorded in a gap sentinel), or that it is a duplicate, or that it was refused for want
   * of a persisted lid (lid null, not a duplicate). Throws ENTRY_INVALID for a
   * malformed event: that is a producer bug, reported at once rather than turned into a silent
   * drop.
   */
  publish(event: IngestEvent): PublishResult {
    if (this.#closed) throw new Error('ingest bus is closed')
    if (event.id !== undefined && (this.#queuedIds.has(event.id) || this.#isKnownId(event.id))) {
      this.#duplicates++
      return { lid: null, queued: false, duplicate: true }
    }
    const lid = this.#nextLid
    const body =
      event.id === undefined
        ? { kind: 'event' as const, type: event.type, payload: event.payload, lid }
        : { kind: 'event' as const, type: event.type, payload: event.payload, lid, id: event.id }
    assertEntryBody(body)
    if (lid >= this.#limit) {
      this.#refused++
      this.#onLidsLow(lid)
      return { lid: null, queued: false, duplicate: false }
    }
    this.#nextLid++
    if (this.#nextLid >= this.#lowMark) this.#onLidsLow(this.#nextLid)
    if (this.#events >= this.#capacity) {
      this.#dropped++
      const last = this.#items[this.#items.length - 1]
      if (last !== undefined && this.#items.length > this.#head && last.kind === 'gap' && last.to === lid - 1) {
        this.#items[this.#items.length - 1] = { kind: 'gap', from: last.from, to: lid }
      } else {
        this.#items.push({ kind: 'gap', from: lid, to: lid })
        this.#droppedRanges++
      }
      this.#wake()
      return { lid, queued: false, duplicate: false }
    }
    this.#items.push(body)
    if (body.id !== undefined) this.#queuedIds.add(body.id)
    this.#events++
    this.#published++
    this.#wake()
    return { lid, queued: true, duplicate: false }
  }

  /**
   * Takes up to `max` items (a gap marker counts as one), in lid order. Their idempotency ids
   * still count as queued until {@link settle}: between the take and the store, a duplicate
   * must still be refused.
   */
  take(max: number): BusItem[] {
    const end = Math.min(this.#items.length, this.#head + max)
    const out = this.#items.slice(this.#head, end)
    this.#head = end
    for (const item of out) if (item.kind === 'event') this.#events--
    // Compact once the consumed prefix dominates, keeping take() amortised O(1).
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head)
      this.#head = 0
    }
    return out
  }

  /**
   * Releases the idempotency ids of taken items once the log holds them (it then refuses the ids
   * itself) or never will (a refused event): publishing such an id again is no longer a
   * duplicate of the bus.
   */
  settle(items: readonly BusItem[]): void {
    for (const item of items) if (item.kind === 'event' && item.id !== undefined) this.#queuedIds.delete(item.id)
  }

  /**
   * Raises the lid limit to `limit` (a reservation now persisted) and the mark at which the bus
   * asks for the next one. A lower limit than the current one is ignored.
   */
  grant(limit: number, lowMark: number): void {
    if (limit <= this.#limit) return
    this.#limit = limit
    this.#lowMark = lowMark
  }

  /** Events refused as duplicates of a held or queued idempotency id. */
  get duplicates(): number {
    return this.#duplicates
  }

  /** Number of items waiting (events and gap markers). */
  get pending(): number {
    return this.#items.length - this.#head
  }

  /** Resolves when at least `n` items wait or the bus closes (one waiter: the writer). */
  whenPending(n: number): Promise<void> {
    if (this.pending >= n || this.#closed) return Promise.resolve()
    return new Promise((resolve) => {
      this.#waiter = { n, resolve }
    })
  }

  /** Stops accepting events; items already queued can still be taken. */
  close(): void {
    this.#closed = true
    this.#wake()
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed
  }

  /** Counters. */
  stats(): BusStats {
    return {
      published: this.#published,
      dropped: this.#dropped,
      droppedRanges: this.#droppedRanges,
      depth: this.#events,
      capacity: this.#capacity,
      nextLid: this.#nextLid,
      refused: this.#refused,
    }
  }

  #wake(): void {
    const w = this.#waiter
    if (w === null || (this.pending < w.n && !this.#closed)) return
    this.#waiter = null
    w.resolve()
  }
}

/**
 * Live subscriptions: the stored entries after a cursor, then the live tail, with no gap and no
 * duplicate at the hand-off (docs/ARCHITECTURE.md "Subscriptions").
 *
 * Reads of the stored log are synchronous and commits are applied synchronously, so "read up to
 * the head, then switch to live" happens in one tick: nothing can commit in between. Delivery
 * is bounded: a subscriber whose queue overflows is told exactly which ranges it missed and is
 * resynced from the stored log, never silently skipped.
 */
import { sledOfRootName, type SledId } from '../core/ids.js'
import type { Heads, StoredEntry } from '../core/query.js'
import type { CommitEvent, SledLog } from './sled-log.js'

/** What a subscriber receives. */
export type SubscriptionMessage =
  | { readonly type: 'entry'; readonly entry: StoredEntry }
  /** Everything stored up to now was delivered; what follows is live. */
  | { readonly type: 'live' }
  /**
   * The subscriber fell behind its buffer: these ranges (inclusive, per sled) were dropped from
   * the live stream and follow again from the stored log, in order.
   */
  | { readonly type: 'lagged'; readonly missed: Readonly<Record<string, readonly [number, number]>> }
  /** Peers hold entries of `sled` in [from, to] that this node has not received yet. */
  | { readonly type: 'hole'; readonly sled: SledId; readonly from: number; readonly to: number }
  /** The hole announced for `sled` has filled up to `upTo`. */
  | { readonly type: 'hole-filled'; readonly sled: SledId; readonly upTo: number }
  /**
   * `sled` is forked: it signed two versions of `seq` (PROTOCOL.md §6.2). Its entries from
   * `seq` on are withheld (replicas may hold different ones): none is delivered after this
   * message. Sent at start for forks already known, and when a sled becomes forked or its fork
   * moves to a lower seq; entries at or past `seq` delivered before it were served before the
   * fork was known.
   */
  | { readonly type: 'forked'; readonly sled: SledId; readonly seq: number }
  /**
   * `sled`'s key is retired from `seq` on (PROTOCOL.md §6.5): its entries from there are still
   * delivered, carrying `retired: true`. Sent at start for sleds already retired, and when a sled
   * becomes retired or its retirement seq changes (`null`: no longer retired, when a fork withheld
   * the record that retired it); entries delivered before it were served before it was known.
   */
  | { readonly type: 'retired'; readonly sled: SledId; readonly seq: number | null }

/** Options of a subscription. */
export interface SubscribeOptions {
  /** Start after these per-sled seqs ('start': everything; 'now': only new entries). */
  readonly from?: Heads | 'start' | 'now'
  /** Only these sleds. */
  readonly sleds?: readonly SledId[]
  /** Most entries queued for the subscriber before it counts as lagging. */
  readonly bufferSize?: number
  /**
   * Most stored entries read ahead while catching up (default and at most `bufferSize`). Each is
   * a parsed copy held for this subscriber alone (live entries are shared by all subscribers), so
   * a server with many subscribers keeps it small: it bounds a stuck reader's memory by
   * `readAhead` × the largest record.
   */
  readonly readAhead?: number
}

const PAGE = 1000

/** A subscription to a log. Lifecycle: `start()` → consume with `next()`/for-await → `stop()`. */
export class Subscription implements AsyncIterableIterator<SubscriptionMessage> {
  readonly #log: SledLog
  readonly #filter: ReadonlySet<SledId> | null
  readonly #bufferSize: number
  readonly #readAhead: number
  readonly #from: SubscribeOptions['from']
  /** Last seq queued per sled. */
  readonly #queued = new Map<SledId, number>()
  /** Last seq handed to the subscriber per sled. */
  readonly #consumed = new Map<SledId, number>()
  readonly #holes = new Map<SledId, number>()
  /** Delivered slots (before #head) are cleared, so a stuck reader holds only what it has not read. */
  #queue: Array<SubscriptionMessage | undefined> = []
  #head = 0
  #entriesQueued = 0
  #mode: 'catchup' | 'live' | 'stopped' = 'catchup'
  #waiter: ((r: IteratorResult<SubscriptionMessage>) => void) | null = null
  #unsubscribe: Array<() => void> = []
  #lagEvents = 0

  constructor(log: SledLog, opts: SubscribeOptions = {}) {
    this.#log = log
    this.#filter = opts.sleds === undefined ? null : new Set(opts.sleds)
    this.#bufferSize = Math.max(1, opts.bufferSize ?? 1000)
    this.#readAhead = Math.max(1, Math.min(this.#bufferSize, opts.readAhead ?? this.#bufferSize))
    this.#from = opts.from
  }

  /**
   * Registers for live commits, announces the forks and holes already known (each hole followed
   * by `hole-filled` once it fills), then starts delivering the stored entries after the cursor.
   */
  start(): this {
    const from = this.#from ?? 'start'
    const heads = from === 'now' ? this.#log.heads() : from === 'start' ? {} : from
    for (const [sled, seq] of Object.entries(heads)) {
      this.#queued.set(sled as SledId, seq)
      this.#consumed.set(sled as SledId, seq)
    }
    this.#unsubscribe.push(this.#log.onCommit((e) => this.#onCommit(e)))
    this.#unsubscribe.push(this.#log.onRemoteHead((sled, seq) => this.#onRemoteHead(sled, seq)))
    this.#unsubscribe.push(this.#log.onFork((sled, seq) => this.#onFork(sled, seq)))
    this.#unsubscribe.push(
      this.#log.onRetire((sled, seq) => {
        if (this.#mode !== 'stopped' && this.#wanted(sled)) this.#push({ type: 'retired', sled, seq })
      }),
    )
    for (const { sled, seq } of this.#log.retiredSleds()) {
      if (this.#wanted(sled)) this.#push({ type: 'retired', sled, seq })
    }
    for (const sled of this.#filter ?? []) {
      const fork = this.#log.forkProof(sled)
      if (fork !== undefined) this.#push({ type: 'forked', sled, seq: fork.seq })
    }
    for (let next: SledId | null | undefined; this.#filter === null && next !== null; ) {
      const page = this.#log.forks(next === undefined ? { limit: 1000 } : { after: next, limit: 1000 })
      for (const f of page.forks) this.#push({ type: 'forked', sled: f.sled, seq: f.seq })
      next = page.next
    }
    // Peers announced these before this subscription existed: no onRemoteHead will repeat them.
    for (const [key, ranges] of Object.entries(this.#log.status().missing)) {
      const sled = key as SledId
      if (!this.#wanted(sled)) continue
      for (const [from, to] of ranges) {
        this.#holes.set(sled, Math.max(to, this.#holes.get(sled) ?? -1))
        this.#push({ type: 'hole', sled, from, to })
      }
    }
    this.#pump()
    return this
  }

  /** Stops delivery; a pending `next()` resolves done. */
  stop(): void {
    if (this.#mode === 'stopped') return
    this.#mode = 'stopped'
    for (const u of this.#unsubscribe) u()
    this.#unsubscribe = []
    this.#queue = []
    this.#head = 0
    this.#waiter?.({ done: true, value: undefined })
    this.#waiter = null
  }

  /** Last seq handed to the subscriber, per sled: resume from here. */
  cursor(): Heads {
    return Object.fromEntries(this.#consumed)
  }

  /** True once delivering live. */
  get live(): boolean {
    return this.#mode === 'live'
  }

  /** How often the subscriber overflowed its buffer. */
  get lagEvents(): number {
    return this.#lagEvents
  }

  /** Next message; waits for one while live. */
  next(): Promise<IteratorResult<SubscriptionMessage>> {
    if (this.#mode === 'stopped') return Promise.resolve({ done: true, value: undefined })
    const msg = this.#shift()
    if (msg !== undefined) return Promise.resolve({ done: false, value: msg })
    return new Promise((resolve) => {
      this.#waiter = resolve
    })
  }

  /** Ends iteration (for-await break). */
  return(): Promise<IteratorResult<SubscriptionMessage>> {
    this.stop()
    return Promise.resolve({ done: true, value: undefined })
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  #shift(): SubscriptionMessage | undefined {
    if (this.#head >= this.#queue.length && this.#mode === 'catchup') this.#pump()
    const msg = this.#queue[this.#head]
    if (msg === undefined) return undefined
    this.#queue[this.#head] = undefined
    this.#head++
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    if (msg.type === 'entry') {
      this.#entriesQueued--
      this.#consumed.set(msg.entry.sled, msg.entry.seq)
    }
    if (this.#mode === 'catchup' && this.#entriesQueued <= this.#readAhead / 2) this.#pump()
    return msg
  }

  #push(msg: SubscriptionMessage): void {
    if (msg.type === 'entry') this.#entriesQueued++
    const w = this.#waiter
    if (w !== null) {
      // The subscriber waits: hand the message over directly.
      this.#waiter = null
      this.#queue.push(msg)
      const next = this.#shift() as SubscriptionMessage
      w({ done: false, value: next })
      return
    }
    this.#queue.push(msg)
  }

  #wanted(sled: SledId): boolean {
    return this.#filter === null || this.#filter.has(sled)
  }

  /** Queues stored entries after the cursor up to the read-ahead; switches to live at the head. */
  #pump(): void {
    while (this.#mode === 'catchup' && this.#entriesQueued < this.#readAhead) {
      const room = Math.min(PAGE, this.#readAhead - this.#entriesQueued)
      const page = this.#log.query({
        afterHeads: Object.fromEntries(this.#queued),
        limit: room,
        ...(this.#filter === null ? {} : { sled: [...this.#filter] }),
      })
      for (const entry of page.entries) {
        this.#queued.set(entry.sled, entry.seq)
        this.#push({ type: 'entry', entry })
      }
      if (page.next === null) {
        // Same tick as the last read: no commit can fall between history and live.
        this.#mode = 'live'
        this.#push({ type: 'live' })
      }
    }
  }

  #onCommit(event: CommitEvent): void {
    if (this.#mode === 'live') {
      for (const run of event.runs) {
        const sled = sledOfRootName(run.rootName)
        if (sled === undefined || !this.#wanted(sled)) continue
        const after = this.#queued.get(sled) ?? -1
        if (run.clock + run.records.length - 1 <= after) continue
        const entries = event.entries(run)
        for (let i = Math.max(0, after + 1 - run.clock); i < entries.length; i++) {
          this.#queued.set(sled, run.clock + i)
          this.#push({ type: 'entry', entry: entries[i] as StoredEntry })
        }
      }
      if (this.#entriesQueued > this.#bufferSize) this.#lag()
    }
    for (const [sled, to] of this.#holes) {
      if (this.#log.length(sled) - 1 >= to) {
        this.#holes.delete(sled)
        this.#push({ type: 'hole-filled', sled, upTo: to })
      }
    }
  }

  /** Drops the queued live entries, tells the subscriber what it missed, and resyncs. */
  #lag(): void {
    this.#lagEvents++
    const missed: Record<string, [number, number]> = {}
    for (const [sled, queued] of this.#queued) {
      const consumed = this.#consumed.get(sled) ?? -1
      if (queued > consumed) missed[sled] = [consumed + 1, queued]
    }
    const kept = this.#queue
      .slice(this.#head)
      .filter((m): m is SubscriptionMessage => m !== undefined && m.type !== 'entry')
    this.#queue = []
    this.#head = 0
    this.#entriesQueued = 0
    this.#queued.clear()
    for (const [sled, seq] of this.#consumed) this.#queued.set(sled, seq)
    this.#mode = 'catchup'
    for (const m of kept) this.#push(m)
    this.#push({ type: 'lagged', missed })
    this.#pump()
  }

  /**
   * A sled became forked at `seq` (or its fork moved lower): entries of it at or past `seq` still
   * queued are taken back (they were not handed over yet, and readers no longer see them), holes
   * end below the fork, and the subscriber is told.
   */
  #onFork(sled: SledId, seq: number): void {
    if (this.#mode === 'stopped' || !this.#wanted(sled)) return
    const kept: SubscriptionMessage[] = []
    for (let i = this.#head; i < this.#queue.length; i++) {
      const m = this.#queue[i] as SubscriptionMessage
      if (m.type === 'entry' && m.entry.sled === sled && m.entry.seq >= seq) this.#entriesQueued--
      else kept.push(m)
    }
    this.#queue = kept
    this.#head = 0
    const queued = this.#queued.get(sled)
    if (queued !== undefined && queued >= seq) this.#queued.set(sled, Math.max(seq - 1, this.#consumed.get(sled) ?? -1))
    this.#push({ type: 'forked', sled, seq })
    const hole = this.#holes.get(sled)
    if (hole !== undefined && hole >= seq) {
      // What is missing below the fork is all a reader can still get.
      const to = seq - 1
      if (this.#log.length(sled) - 1 >= to) {
        this.#holes.delete(sled)
        this.#push({ type: 'hole-filled', sled, upTo: to })
      } else this.#holes.set(sled, to)
    }
  }

  #onRemoteHead(sled: SledId, seq: number): void {
    if (this.#mode === 'stopped' || !this.#wanted(sled)) return
    const known = this.#holes.get(sled)
    if (known !== undefined && known >= seq) return
    this.#holes.set(sled, seq)
    this.#push({ type: 'hole', sled, from: this.#log.length(sled), to: seq })
  }
}

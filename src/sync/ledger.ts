/**
 * The sync ledger: every rejection and every kick of a peer, counted for good.
 *
 * Sessions count rejections per link, and those counts die with the link; a peer closed for
 * violations would leave no trace. The ledger keeps the counts per peer (its sled once
 * authenticated, its remote address before) and per kind: guard rejections and protocol errors
 * by error code, refusals of upgrade requests by HTTP status (`http:429`), and closes by close
 * code (`close:4408`). It is bounded: past `maxPeers` the least recently counted peer is folded
 * into one aggregate row, so a stranger cycling through throwaway keys or addresses costs a
 * fixed amount of memory. It persists in the log's metadata (written at most every
 * `persistMs` while changed, and on close), and each kick goes to a logger as a warning, repeats
 * of the same peer and code at most once per `warnEveryMs` (with the count of those left out).
 */
import type { SledLog } from '../log/sled-log.js'

/** Where kicks are reported (a pino logger fits). */
export interface SyncLogger {
  warn(obj: Readonly<Record<string, unknown>>, msg: string): void
}

/** Who a ledger row is about: an authenticated sled, or a remote address before that. */
export interface LedgerPeer {
  readonly kind: 'sled' | 'address'
  /** The sled id or the address. */
  readonly id: string
}

/** One peer's record. */
export interface LedgerRow extends LedgerPeer {
  /** Counts by kind: an error code, `close:<code>` or `http:<status>`. */
  readonly counts: Readonly<Record<string, number>>
  /** First and last count, ms since the epoch. */
  readonly firstAt: number
  readonly lastAt: number
}

/** The ledger as status shows it. */
export interface LedgerSnapshot {
  /** Most recently counted first. */
  readonly peers: readonly LedgerRow[]
  /** Peers folded together once more than `maxPeers` were tracked. */
  readonly others: { readonly peers: number; readonly counts: Readonly<Record<string, number>> }
  /** Sums over every peer, tracked or folded. */
  readonly totals: Readonly<Record<string, number>>
}

/** Options of a {@link SyncLedger}. */
export interface SyncLedgerOptions {
  /** Where the ledger persists (metadata key {@link LEDGER_META_KEY}); none: memory only. */
  readonly log?: Pick<SledLog, 'readMeta' | 'writeMeta'>
  readonly logger?: SyncLogger
  /** Peers tracked one by one. Default 256. */
  readonly maxPeers?: number
  /** Least time between two writes. Default 5 s. */
  readonly persistMs?: number
  /** Least time between two warnings about one peer and close code. Default 60 s. */
  readonly warnEveryMs?: number
  readonly now?: () => number
}

/** Metadata key of the persisted ledger. */
export const LEDGER_META_KEY = 'sync-ledger'

interface Row {
  readonly kind: 'sled' | 'address'
  readonly id: string
  readonly counts: Map<string, number>
  firstAt: number
  lastAt: number
}

interface Warned {
  at: number
  repeats: number
}

/** The ledger. Lifecycle: `open()` → count… → `close()`. */
export class SyncLedger {
  readonly #o: SyncLedgerOptions
  readonly #maxPeers: number
  readonly #now: () => number
  /** Insertion order = least recently counted first. */
  readonly #rows = new Map<string, Row>()
  readonly #others = { peers: 0, counts: new Map<string, number>() }
  readonly #warned = new Map<string, Warned>()
  #dirty = false
  #timer: NodeJS.Timeout | null = null
  #writing: Promise<void> = Promise.resolve()
  /** Settles once the stored ledger is read: nothing is written before (it would be lost). */
  #loaded: Promise<void> = Promise.resolve()
  #closed = false

  constructor(opts: SyncLedgerOptions = {}) {
    this.#o = opts
    this.#maxPeers = opts.maxPeers ?? 256
    this.#now = opts.now ?? Date.now
  }

  /** Loads what an earlier run persisted (a damaged record is dropped, never trusted). */
  open(): Promise<void> {
    this.#loaded = (async () => {
      const raw = await this.#o.log?.readMeta(LEDGER_META_KEY)
      if (raw !== undefined) this.#load(raw)
    })().catch(() => undefined)
    return this.#loaded
  }

  /** Writes what changed and stops the timer. */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#writing
    if (this.#dirty) await this.#persist()
  }

  /** Counts `n` of `what` against `peer`. */
  count(peer: LedgerPeer, what: string, n = 1): void {
    if (n <= 0) return
    const key = `${peer.kind}:${peer.id}`
    const now = this.#now()
    let row = this.#rows.get(key)
    if (row === undefined) {
      row = { kind: peer.kind, id: peer.id, counts: new Map(), firstAt: now, lastAt: now }
    } else this.#rows.delete(key)
    this.#rows.set(key, row)
    row.lastAt = now
    row.counts.set(what, (row.counts.get(what) ?? 0) + n)
    this.#trim()
    this.#changed()
  }

  /** Counts a close this node made (`close:<code>`) and warns about it, rate-limited. */
  kick(peer: LedgerPeer, code: number, reason: string, label?: string): void {
    this.count(peer, `close:${code}`)
    const key = `${peer.kind}:${peer.id}:${code}`
    const now = this.#now()
    const warned = this.#warned.get(key)
    const every = this.#o.warnEveryMs ?? 60_000
    if (warned !== undefined && now - warned.at < every) {
      warned.repeats++
      return
    }
    const repeats = warned?.repeats ?? 0
    this.#warned.delete(key)
    this.#warned.set(key, { at: now, repeats: 0 })
    // The warned map is bounded like the rows: the oldest entry goes first.
    if (this.#warned.size > this.#maxPeers * 4) this.#warned.delete(this.#warned.keys().next().value as string)
    this.#o.logger?.warn(
      { peer: peer.id, peerKind: peer.kind, code, reason, ...(label === undefined ? {} : { label }), repeats },
      'replication link closed by this node',
    )
  }

  /** The ledger now. */
  snapshot(): LedgerSnapshot {
    const totals = new Map(this.#others.counts)
    const peers: LedgerRow[] = []
    for (const row of [...this.#rows.values()].reverse()) {
      for (const [k, v] of row.counts) totals.set(k, (totals.get(k) ?? 0) + v)
      peers.push({
        kind: row.kind,
        id: row.id,
        counts: Object.fromEntries(row.counts),
        firstAt: row.firstAt,
        lastAt: row.lastAt,
      })
    }
    return {
      peers,
      others: { peers: this.#others.peers, counts: Object.fromEntries(this.#others.counts) },
      totals: Object.fromEntries(totals),
    }
  }

  /** Folds the least recently counted rows into the aggregate while over the cap. */
  #trim(): void {
    while (this.#rows.size > this.#maxPeers) {
      const [key, row] = this.#rows.entries().next().value as [string, Row]
      this.#rows.delete(key)
      this.#others.peers++
      for (const [k, v] of row.counts) this.#others.counts.set(k, (this.#others.counts.get(k) ?? 0) + v)
    }
  }

  #changed(): void {
    this.#dirty = true
    if (this.#o.log === undefined || this.#timer !== null || this.#closed) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#writing = this.#persist()
    }, this.#o.persistMs ?? 5000)
    this.#timer.unref()
  }

  async #persist(): Promise<void> {
    const log = this.#o.log
    if (log === undefined) return
    await this.#loaded
    this.#dirty = false
    const s = this.snapshot()
    const value = JSON.stringify({ v: 1, peers: s.peers, others: s.others })
    // A failed write (the log closing, a full disk) leaves the counts in memory for the next try.
    await log.writeMeta({ [LEDGER_META_KEY]: value }).catch(() => {
      this.#dirty = true
    })
  }

  #load(raw: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      return
    }
    if (!isRecord(parsed) || parsed.v !== 1) return
    const rows = Array.isArray(parsed.peers) ? parsed.peers : []
    const stored = new Map<string, Row>()
    // Stored most recent first; kept oldest first, the order of eviction.
    for (const r of rows.slice(0, this.#maxPeers).reverse()) {
      if (!isRecord(r) || (r.kind !== 'sled' && r.kind !== 'address') || typeof r.id !== 'string') continue
      if (r.id.length > 200) continue
      const counts = countsOf(r.counts)
      const firstAt = count(r.firstAt)
      const lastAt = count(r.lastAt)
      if (counts === null || firstAt === null || lastAt === null) continue
      stored.set(`${r.kind}:${r.id}`, { kind: r.kind, id: r.id, counts, firstAt, lastAt })
    }
    // Counts made before the load finished add to the stored ones and stay the most recent.
    for (const [key, row] of this.#rows) {
      const old = stored.get(key)
      stored.delete(key)
      if (old !== undefined) {
        for (const [k, v] of old.counts) row.counts.set(k, (row.counts.get(k) ?? 0) + v)
        row.firstAt = Math.min(row.firstAt, old.firstAt)
      }
      stored.set(key, row)
    }
    this.#rows.clear()
    for (const [k, v] of stored) this.#rows.set(k, v)
    this.#trim()
    if (isRecord(parsed.others)) {
      this.#others.peers += count(parsed.others.peers) ?? 0
      for (const [k, v] of countsOf(parsed.others.counts) ?? [])
        this.#others.counts.set(k, (this.#others.counts.get(k) ?? 0) + v)
    }
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function count(x: unknown): number | null {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : null
}

/** Counts of a stored row: at most 64 kinds of short names with non-negative integer values. */
function countsOf(x: unknown): Map<string, number> | null {
  if (!isRecord(x)) return null
  const out = new Map<string, number>()
  for (const [k, v] of Object.entries(x).slice(0, 64)) {
    const n = count(v)
    if (k.length > 64 || n === null) return null
    out.set(k, n)
  }
  return out
}

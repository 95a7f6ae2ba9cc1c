/**
 * What each configured peer durably holds of this node's own sled, from its verified holds
 * receipts (holds.ts, docs/PROTOCOL.md §8.6), and the writes waiting until N of them hold theirs:
 * the bookkeeping behind replicated acknowledgements (`acks=N`). No I/O; a wait's timeout is its
 * only clock.
 *
 * Who counts is the node's configuration, never the peer's say: with an allow-list, its sleds;
 * without one, the sleds this node reached by dialing its `--peer` URLs. Anyone holding the sync
 * token (or, without one, anyone at all) can open a link and send valid receipts for its own
 * throwaway key; counting those would let one client fake every acknowledgement.
 */
import type { SledId } from '../core/ids.js'

/** Which peers' receipts count, from the node's configuration. */
export interface AckPeersConfig {
  /** This node's own sled (never its own peer); absent before its key is loaded. */
  readonly self?: SledId
  /** The replication allow-list; absent: any authenticated peer may link. */
  readonly allow?: ReadonlySet<SledId>
  /** The `--peer` URLs this node dials. */
  readonly peers: readonly string[]
}

/**
 * How many peers are configured: the allow-list's sleds (other than this node's own) when there
 * is one (a dialed peer off the list is refused at the handshake), else one per dialed URL. The
 * most acknowledgements a write may ask for.
 */
export function configuredPeerCount(c: AckPeersConfig): number {
  if (c.allow === undefined) return c.peers.length
  return c.allow.size - (c.self !== undefined && c.allow.has(c.self) ? 1 : 0)
}

/**
 * True when `sled`'s receipts count for acknowledgements: an allow-listed sled, or without an
 * allow-list one this node reached by dialing a configured URL (`dialed`).
 */
export function countsForAcks(c: AckPeersConfig, dialed: ReadonlySet<SledId>, sled: SledId): boolean {
  if (sled === c.self) return false
  return c.allow === undefined ? dialed.has(sled) : c.allow.has(sled)
}

/** How a wait for acknowledgements ended, and which counted peers held the entries then. */
export interface AckWaitOutcome {
  readonly kind: 'acked' | 'timeout' | 'stopped'
  /** Counted peers whose receipts cover the wait's length, in sled order. */
  readonly heldBy: readonly SledId[]
}

/** One counted peer for status: whether a link of it is ready, and what it proved it holds. */
export interface AckPeer {
  readonly sled: SledId
  readonly connected: boolean
  /** Entries of this node's sled it proved it holds (longest over its open links); null: no receipt. */
  readonly holdsOurs: number | null
}

/**
 * A link (the replicator passes its sessions). `closed` turns true when the session stops, a
 * moment before its socket closes and {@link PeerHolds.linkClosed} is called: from then on it
 * counts for nothing.
 */
export interface LinkKey {
  readonly closed: boolean
}

interface Link {
  readonly key: LinkKey
  readonly sled: SledId
  held: number | null
}

interface Waiter {
  readonly length: number
  readonly n: number
  readonly resolve: (o: AckWaitOutcome) => void
  timer: NodeJS.Timeout | null
}

/**
 * Tracks links and their receipts, and resolves waits. Lifecycle: constructed → `stop()`.
 *
 * A peer's held length is the longest verified receipt over its open links: receipts only grow
 * per link, and a new link starts again from the receipt its peer sends once it is ready. Waits
 * are grouped by the number of peers they need and kept in length order, so a receipt resolves a
 * prefix of each group: O(resolved + groups · peers log peers) per receipt, not O(waits).
 */
export class PeerHolds {
  readonly #counts: (sled: SledId) => boolean
  readonly #links = new Map<LinkKey, Link>()
  /** Waits by the number of peers they need, each list in ascending length. */
  readonly #waits = new Map<number, Waiter[]>()
  #stopped = false

  /** `counts` says whose receipts count (see {@link countsForAcks}); asked at every check. */
  constructor(counts: (sled: SledId) => boolean) {
    this.#counts = counts
  }

  /** A link authenticated as `sled` and is ready (it has sent no receipt yet). */
  linkReady(link: LinkKey, sled: SledId): void {
    if (!this.#links.has(link)) this.#links.set(link, { key: link, sled, held: null })
    // Who counts may have changed (a dialed peer's sled is learnt at its handshake).
    this.#check()
  }

  /** A verified receipt: `link`'s peer durably holds `length` entries of this node's sled. */
  linkHolds(link: LinkKey, sled: SledId, length: number): void {
    const l = this.#links.get(link)
    if (l === undefined) this.#links.set(link, { key: link, sled, held: length })
    else if (l.held === null || length > l.held) l.held = length
    else return
    if (this.#counts(sled)) this.#check()
  }

  /** A link closed: what it proved no longer counts (the peer's other links still do). */
  linkClosed(link: LinkKey): void {
    this.#links.delete(link)
  }

  /** Counted peers with a ready link, in sled order. */
  connected(): SledId[] {
    const out = new Set<SledId>()
    for (const l of this.#links.values()) if (!l.key.closed && this.#counts(l.sled)) out.add(l.sled)
    return [...out].sort()
  }

  /** Counted peers whose receipts cover the first `length` entries, in sled order. */
  heldBy(length: number): SledId[] {
    return this.#held()
      .filter(([, h]) => h >= length)
      .map(([s]) => s)
      .sort()
  }

  /**
   * Every counted peer with a link, and `configured` ones without (not connected), with what
   * each proved it holds, in sled order (for status).
   */
  peers(configured: Iterable<SledId> = []): AckPeer[] {
    const out = new Map<SledId, AckPeer>()
    for (const sled of configured) if (this.#counts(sled)) out.set(sled, { sled, connected: false, holdsOurs: null })
    for (const l of this.#links.values()) {
      if (l.key.closed || !this.#counts(l.sled)) continue
      const was = out.get(l.sled)?.holdsOurs ?? null
      const holdsOurs = l.held === null ? was : Math.max(was ?? 0, l.held)
      out.set(l.sled, { sled: l.sled, connected: true, holdsOurs })
    }
    return [...out.values()].sort((a, b) => (a.sled < b.sled ? -1 : a.sled > b.sled ? 1 : 0))
  }

  /** Writes waiting now. */
  get waiting(): number {
    let n = 0
    for (const list of this.#waits.values()) n += list.length
    return n
  }

  /**
   * Resolves once `n` counted peers' receipts cover the first `length` entries ('acked'), after
   * `timeoutMs` otherwise ('timeout'), or when the tracker stops ('stopped'); at once when they
   * already do. Never rejects.
   */
  wait(length: number, n: number, timeoutMs: number): Promise<AckWaitOutcome> {
    if (this.#stopped) return Promise.resolve({ kind: 'stopped', heldBy: this.heldBy(length) })
    const heldBy = this.heldBy(length)
    if (heldBy.length >= n) return Promise.resolve({ kind: 'acked', heldBy })
    return new Promise((resolve) => {
      const w: Waiter = { length, n, resolve, timer: null }
      const list = this.#waits.get(n) ?? []
      this.#waits.set(n, list)
      list.splice(insertionPoint(list, length), 0, w)
      w.timer = setTimeout(() => {
        w.timer = null
        const i = list.indexOf(w)
        if (i >= 0) list.splice(i, 1)
        if (list.length === 0 && this.#waits.get(n) === list) this.#waits.delete(n)
        resolve({ kind: 'timeout', heldBy: this.heldBy(length) })
      }, timeoutMs)
    })
  }

  /** Ends every wait ('stopped'); later waits end at once. */
  stop(): void {
    this.#stopped = true
    const all = [...this.#waits.values()].flat()
    this.#waits.clear()
    for (const w of all) this.#finish(w, 'stopped')
  }

  /** Per counted peer, the longest receipt over its links (peers without one left out). */
  #held(): Array<[SledId, number]> {
    const best = new Map<SledId, number>()
    for (const l of this.#links.values()) {
      if (l.held === null || l.key.closed || !this.#counts(l.sled)) continue
      best.set(l.sled, Math.max(best.get(l.sled) ?? 0, l.held))
    }
    return [...best.entries()]
  }

  /** Resolves, per group, the waits whose length the group's n-th best peer covers. */
  #check(): void {
    if (this.#waits.size === 0) return
    const lengths = this.#held()
      .map(([, h]) => h)
      .sort((a, b) => b - a)
    for (const [n, list] of this.#waits) {
      const cover = lengths[n - 1]
      if (cover === undefined) continue
      let k = 0
      while (k < list.length && (list[k] as Waiter).length <= cover) k++
      if (k === 0) continue
      const done = list.splice(0, k)
      if (list.length === 0) this.#waits.delete(n)
      for (const w of done) this.#finish(w, 'acked')
    }
  }

  #finish(w: Waiter, kind: AckWaitOutcome['kind']): void {
    if (w.timer !== null) clearTimeout(w.timer)
    w.timer = null
    w.resolve({ kind, heldBy: this.heldBy(w.length) })
  }
}

/** Where a wait for `length` goes in a list kept in ascending length (after equal ones). */
function insertionPoint(list: readonly Waiter[], length: number): number {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((list[mid] as Waiter).length <= length) lo = mid + 1
    else hi = mid
  }
  return lo
}

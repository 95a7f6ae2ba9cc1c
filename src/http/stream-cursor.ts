/**
 * The SSE event id of a stream: the whole per-sled cursor, compact, so a client that reconnects
 * with `Last-Event-ID` resumes exactly after what it received (docs/API.md "Resuming").
 *
 * Format: `-` for the empty cursor, else comma-separated `<first 16 hex of sled>:<seq>` pairs in
 * ascending sled order. 16 hex digits (64 bits) keep an id short when a node holds many sleds; the
 * price is that two sleds can share a prefix (by chance ~2^-64 per pair, or a writer grinding
 * ~2^32 keys on purpose), so mapping prefixes back to sleds must never guess: when it cannot
 * tell which sled a seq belongs to, it resumes from the lowest position any reading allows.
 * Then a client may see entries again, but never misses one.
 */
import type { SledId } from '../core/ids.js'
import type { Heads } from '../core/query.js'
import { sledlogError } from '../errors.js'

/** Hex digits of a sled id kept in an event id. */
export const PREFIX_CHARS = 16

/** The id of the empty cursor (nothing received yet from any sled). */
export const EMPTY_CURSOR_ID = '-'

const PAIR_RE = /^([0-9a-f]{16}):(0|[1-9]\d{0,15})$/

/** A parsed event id: (sled prefix, seq) pairs. */
export type CursorPairs = ReadonlyArray<readonly [prefix: string, seq: number]>

/** Encodes a cursor as an event id (pairs in sled order). */
export function encodeEventId(cursor: Heads): string {
  const pairs = Object.entries(cursor)
    .filter(([, seq]) => seq >= 0)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([sled, seq]) => `${sled.slice(0, PREFIX_CHARS)}:${seq}`)
  return pairs.length === 0 ? EMPTY_CURSOR_ID : pairs.join(',')
}

/** Parses an event id; anything else is HTTP_BAD_REQUEST (a resume must not guess). */
export function parseEventId(id: string): CursorPairs {
  if (id === EMPTY_CURSOR_ID) return []
  const out: Array<readonly [string, number]> = []
  for (const part of id.split(',')) {
    const m = PAIR_RE.exec(part)
    const seq = Number(m?.[2])
    if (m === null || !Number.isSafeInteger(seq)) {
      throw sledlogError(
        'HTTP_BAD_REQUEST',
        `Last-Event-ID is not a stream cursor ("-" or <16 hex>:<seq>,...): ${JSON.stringify(part.slice(0, 40))}`,
        {
          header: 'last-event-id',
        },
      )
    }
    out.push([m[1] as string, seq])
  }
  return out
}

/**
 * Maps parsed pairs back to the sleds this node holds. For a prefix that exactly one held sled
 * has and one pair carries, that sled resumes after the pair's seq. Otherwise it is ambiguous:
 * the sleds sharing the prefix each resume after the lowest seq carried for it — or from their
 * first entry when there are fewer pairs than sleds, since then some of them were not in the
 * cursor at all. A prefix no held sled has is dropped: if that sled arrives later it is
 * delivered from its first entry.
 */
export function resolveCursor(pairs: CursorPairs, held: readonly SledId[]): Heads {
  const seqs = new Map<string, number[]>()
  for (const [prefix, seq] of pairs) {
    const list = seqs.get(prefix) ?? []
    list.push(seq)
    seqs.set(prefix, list)
  }
  const sleds = new Map<string, SledId[]>()
  for (const sled of held) {
    const prefix = sled.slice(0, PREFIX_CHARS)
    const list = sleds.get(prefix) ?? []
    list.push(sled)
    sleds.set(prefix, list)
  }
  const out: Record<string, number> = {}
  for (const [prefix, candidates] of sleds) {
    const carried = seqs.get(prefix)
    if (carried === undefined || carried.length < candidates.length) continue
    const lowest = Math.min(...carried)
    for (const sled of candidates) out[sled] = lowest
  }
  return out
}

/**
 * A stream's cursor, kept as it advances. The sled order is kept sorted incrementally (it
 * changes only when a new sled appears), so building the id that goes out with every entry is a
 * plain join.
 */
export class CursorTracker {
  readonly #seqs = new Map<SledId, number>()
  #order: SledId[] = []
  #id: string | null = null

  constructor(initial: Heads, wanted: (sled: SledId) => boolean) {
    for (const [sled, seq] of Object.entries(initial))
      if (seq >= 0 && wanted(sled as SledId)) this.#seqs.set(sled as SledId, seq)
    this.#order = [...this.#seqs.keys()].sort()
  }

  /** Records that the client received (sled, seq). */
  advance(sled: SledId, seq: number): void {
    if (!this.#seqs.has(sled)) {
      this.#order.push(sled)
      this.#order.sort()
    }
    this.#seqs.set(sled, seq)
    this.#id = null
  }

  /** The cursor. */
  heads(): Heads {
    return Object.fromEntries(this.#seqs)
  }

  /** The event id of the cursor; equal to `encodeEventId(this.heads())`. */
  id(): string {
    if (this.#id === null) {
      this.#id =
        this.#order.length === 0
          ? EMPTY_CURSOR_ID
          : this.#order.map((s) => `${s.slice(0, PREFIX_CHARS)}:${this.#seqs.get(s) as number}`).join(',')
    }
    return this.#id
  }
}

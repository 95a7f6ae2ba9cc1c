/**
 * Reads over a log in (sled, seq) order with filters and cursors. Pure: it sees the log only
 * through a {@link QuerySource}.
 */
import { sledlogError } from '../errors.js'
import type { Entry } from './entry.js'
import { isSledId, type SledId } from './ids.js'
import { splitRecord } from './signing.js'

/**
 * An entry as readers get it: the entry and its signature. Once replicas have exchanged what they
 * hold, every entry they serve is the same on all of them: a forked sled's entries are served
 * only below its fork (PROTOCOL.md §6.2), and an entry at or past its sled's retirement seq
 * carries `retired: true` (§6.5).
 */
export type StoredEntry = Entry & {
  /** base64url Ed25519 signature over the entry (see docs/PROTOCOL.md). */
  readonly sig: string
  /**
   * Present (true) when the entry's seq is at or past its sled's retirement seq: the key was
   * retired by a succession or revocation the node holds, so the entry is readable but suspect.
   * Absent otherwise; it reflects what the node holds when the entry is read.
   */
  readonly retired?: true
}

/** A position in (sled, seq) order. */
export interface Position {
  readonly sled: SledId
  readonly seq: number
}

/** Last seq held per sled. A sled that is absent has no entries. */
export type Heads = Readonly<Record<string, number>>

/** A read request. Every filter is optional; results are in (sled, seq) order. */
export interface Query {
  /** Only these sleds. */
  readonly sled?: SledId | readonly SledId[]
  /** Exclusive position cursor: entries strictly after it in (sled, seq) order (pagination). */
  readonly after?: Position
  /** Exclusive per-sled cursor: for each sled, entries with seq > afterHeads[sled]. */
  readonly afterHeads?: Heads
  /** Exclusive seq cursor; needs exactly one `sled`. */
  readonly afterSeq?: number
  /** Only entries with ts >= since (ms). */
  readonly since?: number
  /** Only entries with ts < until (ms). */
  readonly until?: number
  /** Only events of these types (gap sentinels have no type and are left out when set). */
  readonly types?: readonly string[]
  /** Only these kinds. */
  readonly kinds?: readonly Entry['kind'][]
  /** Max entries returned; default {@link DEFAULT_LIMIT}, at most {@link MAX_LIMIT}. */
  readonly limit?: number
}

/** A page of results. */
export interface QueryResult {
  readonly entries: StoredEntry[]
  /** Pass as `after` to get the next page; null when the scan reached the end. */
  readonly next: Position | null
  /**
   * The forked sleds among those this page covered (the sleds the query selects, up to `next`),
   * each with its fork seq F: their entries at F and past it are withheld (they may differ
   * between replicas), so a reader knows the sled ends there by proof, not for want of data.
   */
  readonly forked: Readonly<Record<string, number>>
  /**
   * The retired sleds among those this page covered, each with its retirement seq: their
   * entries from that seq on carry `retired: true` (PROTOCOL.md §6.5).
   */
  readonly retired: Readonly<Record<string, number>>
}

/** Default page size. */
export const DEFAULT_LIMIT = 1000
/** Largest page size. */
export const MAX_LIMIT = 10_000

/** What a query needs of a log. */
export interface QuerySource {
  /** Sleds with at least one entry, ascending. */
  sleds(): readonly SledId[]
  /** Number of entries of a sled readers may see: all held, or for a forked sled those below F. */
  length(sled: SledId): number
  /** Records of a sled in [from, to), within `length`. */
  records(sled: SledId, from: number, to: number): readonly string[]
  /** The fork seq F of a forked sled, undefined for others. */
  forkedAt(sled: SledId): number | undefined
  /** The retirement seq of a retired sled, undefined for others. */
  retiredAt(sled: SledId): number | undefined
}

const SCAN_CHUNK = 512

function bad(message: string): never {
  throw sledlogError('ENTRY_INVALID', message)
}

function checkMs(v: number | undefined, name: string): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) bad(`${name} must be a non-negative integer (ms)`)
}

/** Validates a query; throws ENTRY_INVALID with a clear message. */
export function checkQuery(q: Query): void {
  const sleds = q.sled === undefined ? [] : typeof q.sled === 'string' ? [q.sled] : q.sled
  for (const s of sleds) if (!isSledId(s)) bad(`sled ${JSON.stringify(s)} is not 64 lowercase hex characters`)
  if (q.afterSeq !== undefined) {
    if (sleds.length !== 1) bad('afterSeq needs exactly one sled')
    if (!Number.isSafeInteger(q.afterSeq) || q.afterSeq < -1) bad('afterSeq must be an integer >= -1')
  }
  if (q.after !== undefined && (!isSledId(q.after.sled) || !Number.isSafeInteger(q.after.seq)))
    bad('after must be {sled, seq}')
  checkMs(q.since, 'since')
  checkMs(q.until, 'until')
  if (q.limit !== undefined && !(Number.isSafeInteger(q.limit) && q.limit >= 1 && q.limit <= MAX_LIMIT)) {
    bad(`limit must be an integer in 1..${MAX_LIMIT}`)
  }
}

/**
 * Turns a stored record into the entry readers see (records in the log were verified on entry),
 * flagged `retired` when `retiredFrom` (its sled's retirement seq) is at or below its seq.
 */
export function recordToEntry(record: string, retiredFrom?: number): StoredEntry {
  const parts = splitRecord(record)
  if (parts === undefined) throw sledlogError('STORE_CORRUPT', 'log holds a record without a signature')
  // The parsed object is fresh and ours: fields are added to it rather than copied into another.
  const entry = JSON.parse(parts.json) as { -readonly [K in keyof StoredEntry]: StoredEntry[K] }
  entry.sig = record.slice(0, 86)
  if (retiredFrom !== undefined && entry.seq >= retiredFrom) entry.retired = true
  return entry as StoredEntry
}

function matches(e: StoredEntry, q: Query): boolean {
  if (q.since !== undefined && e.ts < q.since) return false
  if (q.until !== undefined && e.ts >= q.until) return false
  if (q.kinds !== undefined && !q.kinds.includes(e.kind)) return false
  if (q.types !== undefined && (e.kind !== 'event' || !q.types.includes(e.type))) return false
  return true
}

/** Runs a query. Cost is O(entries scanned): cursors make paging O(page). */
export function runQuery(src: QuerySource, q: Query): QueryResult {
  checkQuery(q)
  const limit = q.limit ?? DEFAULT_LIMIT
  const wanted = q.sled === undefined ? undefined : new Set(typeof q.sled === 'string' ? [q.sled] : q.sled)
  const entries: StoredEntry[] = []
  const forked: Record<string, number> = {}
  const retired: Record<string, number> = {}
  for (const sled of src.sleds()) {
    if (wanted !== undefined && !wanted.has(sled)) continue
    if (q.after !== undefined && sled < q.after.sled) continue
    const fork = src.forkedAt(sled)
    if (fork !== undefined) forked[sled] = fork
    const retiredFrom = src.retiredAt(sled)
    if (retiredFrom !== undefined) retired[sled] = retiredFrom
    let from = 0
    if (q.after !== undefined && sled === q.after.sled) from = Math.max(from, q.after.seq + 1)
    const headCursor = q.afterHeads?.[sled]
    if (headCursor !== undefined) from = Math.max(from, headCursor + 1)
    if (q.afterSeq !== undefined) from = Math.max(from, q.afterSeq + 1)
    const end = src.length(sled)
    while (from < end) {
      const to = Math.min(end, from + SCAN_CHUNK)
      const records = src.records(sled, from, to)
      for (let i = 0; i < records.length; i++) {
        const e = recordToEntry(records[i] as string, retiredFrom)
        if (!matches(e, q)) continue
        entries.push(e)
        if (entries.length === limit) return { entries, next: { sled, seq: from + i }, forked, retired }
      }
      from = to
    }
  }
  return { entries, next: null, forked, retired }
}

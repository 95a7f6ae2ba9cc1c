/**
 * The fork rule (docs/PROTOCOL.md §6.2): what every replica reads of a sled that signed two
 * versions of one seq, the same on every replica that has seen the same evidence, in whatever
 * order it arrived, in O(1) state per sled.
 *
 * A sled with a known equivocation is **forked** at F, its lowest known equivocated seq, with one
 * proof kept: the two smallest (JavaScript string order) distinct validly signed records known at
 * F. Readers get only its entries below F: every replica holds the same records there (a replica
 * holding another version of a seq below F would have an equivocation below F), while at F and
 * past it replicas may hold different versions. The state is a join-semilattice
 * ({@link joinFork}): a lower F wins, and at equal F the two smallest of the union are kept, so
 * the result does not depend on the order or grouping of the evidence, and a sled that signs
 * endless versions still costs one proof.
 */
import { sledlogError } from '../errors.js'
import { isSledId, type SledId } from './ids.js'
import { openRecord, type EntryVerifier } from './signing.js'

/** A sled's fork: its lowest known equivocated seq and the proof there. */
export interface Fork {
  readonly sled: SledId
  /** F: the lowest seq the sled is known to have signed twice. Reads serve only seqs below it. */
  readonly seq: number
  /** The two smallest distinct validly signed records known at (sled, seq), ascending. */
  readonly records: readonly [string, string]
}

/**
 * The join of two fork states of one sled (either may be a fresh equivocation, which has the
 * same shape): the lower seq wins; at equal seqs, the two smallest distinct records of both.
 * Commutative, associative and idempotent. Returns `cur` itself when `seen` changes nothing, so
 * callers can tell a change by identity.
 */
export function joinFork(cur: Fork | undefined, seen: Fork): Fork {
  if (cur === undefined) return seen
  if (cur.sled !== seen.sled) throw new Error(`joinFork: sleds differ (${cur.sled} vs ${seen.sled})`)
  if (seen.seq !== cur.seq) return seen.seq < cur.seq ? seen : cur
  const [a, b] = cur.records
  let lo = a
  let hi = b
  for (const r of seen.records) {
    if (r === lo || r === hi) continue
    if (r < lo) {
      hi = lo
      lo = r
    } else if (r < hi) hi = r
  }
  return lo === a && hi === b ? cur : { sled: cur.sled, seq: cur.seq, records: [lo, hi] }
}

/** True when `records` are two distinct strings in ascending order, as a proof holds them. */
function isOrderedPair(records: unknown): records is readonly [string, string] {
  return (
    Array.isArray(records) &&
    records.length === 2 &&
    typeof records[0] === 'string' &&
    typeof records[1] === 'string' &&
    records[0] < records[1]
  )
}

/**
 * Checks a proof that came from anywhere (the store, a peer, a file): `{sled, seq, records}` with
 * two distinct records, both validly signed (§4.3) by `sled` for entries naming `sled` and `seq`.
 * Proofs verify themselves, so they need no MAC. Records in either order are accepted and
 * returned ascending. Throws a SledlogError (ENTRY_INVALID, UPDATE_BAD_SIGNATURE) saying why not.
 */
export function verifyFork(raw: unknown, verifier: EntryVerifier): Fork {
  const bad = (why: string): never => {
    throw sledlogError('ENTRY_INVALID', `not a fork proof: ${why}`)
  }
  if (typeof raw !== 'object' || raw === null) return bad('not an object')
  const v = raw as Record<string, unknown>
  if (!isSledId(v.sled)) return bad('sled is not a sled id')
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return bad('seq is not a non-negative integer')
  const records = Array.isArray(v.records) ? [...(v.records as unknown[])].sort() : undefined
  if (!isOrderedPair(records)) return bad('records are not two distinct strings')
  for (const r of records) {
    const { entry } = openRecord(r, verifier)
    if (entry.sled !== v.sled || entry.seq !== v.seq) bad(`a record is entry ${entry.seq} of another slot or sled`)
  }
  return { sled: v.sled, seq: v.seq as number, records }
}

/**
 * Key succession and revocation (docs/PROTOCOL.md §6.5): which sleds are retired from which seq,
 * and the chains of successor keys, computed the same way by every replica from the succession
 * and revocation records it holds, in whatever order they arrived.
 *
 * An endorsed succession retires its predecessor after `lastSeq`; an effective revocation retires
 * its target from `fromSeq` (a self revocation always, an admin one only with its admin key
 * configured). A sled's retirement seq is the minimum over every such record that readers see
 * (a record past its carrier's fork is withheld like any entry there, §6.2), so it is a pure
 * function of the set of records: replicas holding the same records read the same flags.
 *
 * The index here is plain data with pure functions over it; the log owns one and feeds it the
 * statement records it applies.
 */
import type { RevocationAuthority, RevocationEntry, SuccessionEntry, SuccessionReason } from './entry.js'
import type { SledId } from './ids.js'
import { openRecord, SIG_CHARS, type EntryVerifier } from './signing.js'

/** Most succession records a chain walk follows (presented in a handshake, or shown). */
export const MAX_CHAIN = 8

/** One link of a chain: `sled` succeeds `predecessor`. */
export interface ChainLink {
  /** The successor: the sled whose entry 0 is the succession record. */
  readonly sled: SledId
  readonly predecessor: SledId
  readonly lastSeq: number
  readonly reason: SuccessionReason
  /** True when the predecessor's key endorsed it (then it retires the predecessor after lastSeq). */
  readonly endorsed: boolean
  readonly ts: number
}

/** A revocation as the index keeps it. */
export interface RevocationInfo {
  /** The sled whose log carries the record, and where. */
  readonly carrier: SledId
  readonly seq: number
  readonly target: SledId
  readonly fromSeq: number
  readonly authority: RevocationAuthority
  readonly admin?: SledId
  /** The statement's signature: one statement carried twice has the same one. */
  readonly signature: string
  readonly ts: number
}

/** The succession and revocation records a log holds. */
export interface StatementIndex {
  /** Succession records by successor (each sits at its successor's seq 0). */
  readonly successions: Map<SledId, ChainLink>
  /** Successors by predecessor, in the order their records arrived. */
  readonly successors: Map<SledId, SledId[]>
  /** Revocation records by target. */
  readonly revocations: Map<SledId, RevocationInfo[]>
}

/** Which records readers see: the log's fork rule (a record at or past its sled's fork is withheld). */
export type Readable = (sled: SledId, seq: number) => boolean

/** An empty index. */
export function emptyIndex(): StatementIndex {
  return { successions: new Map(), successors: new Map(), revocations: new Map() }
}

/**
 * Adds a statement record (checked before: it came through the guard or this node's writer).
 * Returns false when the index held it already (the same record applied twice).
 */
export function indexStatement(ix: StatementIndex, e: SuccessionEntry | RevocationEntry): boolean {
  if (e.kind === 'succession') {
    if (ix.successions.has(e.sled)) return false
    ix.successions.set(e.sled, {
      sled: e.sled,
      predecessor: e.predecessor,
      lastSeq: e.lastSeq,
      reason: e.reason,
      endorsed: e.endorsement !== null,
      ts: e.ts,
    })
    const list = ix.successors.get(e.predecessor)
    if (list === undefined) ix.successors.set(e.predecessor, [e.sled])
    else list.push(e.sled)
    return true
  }
  const list = ix.revocations.get(e.target) ?? []
  if (list.some((r) => r.carrier === e.sled && r.seq === e.seq)) return false
  list.push({
    carrier: e.sled,
    seq: e.seq,
    target: e.target,
    fromSeq: e.fromSeq,
    authority: e.authority,
    ...(e.admin === undefined ? {} : { admin: e.admin }),
    signature: e.signature,
    ts: e.ts,
  })
  ix.revocations.set(e.target, list)
  return true
}

/** True when a revocation retires its target on a node with these admin keys. */
export function isEffective(r: RevocationInfo, adminKeys: ReadonlySet<SledId>): boolean {
  return r.authority === 'self' || (r.admin !== undefined && adminKeys.has(r.admin))
}

/**
 * Every retired sled with its retirement seq: the least `lastSeq + 1` of the readable endorsed
 * successions naming it as predecessor and `fromSeq` of the readable effective revocations
 * targeting it. Order-independent by construction (a minimum over a set).
 */
export function retirements(
  ix: StatementIndex,
  adminKeys: ReadonlySet<SledId>,
  readable: Readable,
): Map<SledId, number> {
  const out = new Map<SledId, number>()
  const lower = (sled: SledId, seq: number): void => {
    const cur = out.get(sled)
    if (cur === undefined || seq < cur) out.set(sled, seq)
  }
  for (const link of ix.successions.values()) {
    if (link.endorsed && readable(link.sled, 0)) lower(link.predecessor, link.lastSeq + 1)
  }
  for (const [target, list] of ix.revocations) {
    for (const r of list) if (isEffective(r, adminKeys) && readable(r.carrier, r.seq)) lower(target, r.fromSeq)
  }
  return out
}

/** A sled's chain as readers see it (GET /v1/sleds/SLED/chain). */
export interface ChainView {
  readonly sled: SledId
  /** The sled's retirement seq, or null: its entries from there on are flagged `retired`. */
  readonly retiredFrom: number | null
  /** Walking back: the succession the sled opens with, then its predecessor's, … (at most {@link MAX_CHAIN}). */
  readonly predecessors: readonly ChainLink[]
  /** Walking forward, breadth first: the sled's successors, theirs, … (at most {@link MAX_CHAIN} generations). */
  readonly successors: readonly ChainLink[]
  /** Revocation records targeting the sled, with whether each is effective on this node. */
  readonly revocations: ReadonlyArray<RevocationInfo & { readonly effective: boolean }>
  /**
   * True when a sled on the chain has two or more endorsed successors: its key endorsed two
   * successions (a stolen key, or a rotation run twice). Allow-lists then admit neither through
   * it (PROTOCOL.md §8.2).
   */
  readonly contested: boolean
}

/** The endorsed successors of `sled` that readers see. */
export function endorsedSuccessors(ix: StatementIndex, sled: SledId, readable: Readable): SledId[] {
  return (ix.successors.get(sled) ?? []).filter((s) => ix.successions.get(s)?.endorsed === true && readable(s, 0))
}

/** The chain of `sled`: its predecessors, successors and revocations as this node reads them. */
export function chainOf(
  ix: StatementIndex,
  sled: SledId,
  retiredFrom: ReadonlyMap<SledId, number>,
  adminKeys: ReadonlySet<SledId>,
  readable: Readable,
): ChainView {
  const link = (s: SledId): ChainLink | undefined => {
    const l = ix.successions.get(s)
    return l !== undefined && readable(s, 0) ? l : undefined
  }
  let contested = false
  const predecessors: ChainLink[] = []
  const seen = new Set<SledId>([sled])
  for (let l = link(sled); l !== undefined && predecessors.length < MAX_CHAIN; l = link(l.predecessor)) {
    predecessors.push(l)
    if (endorsedSuccessors(ix, l.predecessor, readable).length > 1) contested = true
    if (seen.has(l.predecessor)) break
    seen.add(l.predecessor)
  }
  const successors: ChainLink[] = []
  let generation = [sled]
  for (let depth = 0; depth < MAX_CHAIN && generation.length > 0; depth++) {
    const next: SledId[] = []
    for (const p of generation) {
      const children = (ix.successors.get(p) ?? []).map(link).filter((l): l is ChainLink => l !== undefined)
      if (children.filter((c) => c.endorsed).length > 1) contested = true
      for (const c of children) {
        if (seen.has(c.sled)) continue
        seen.add(c.sled)
        successors.push(c)
        next.push(c.sled)
      }
    }
    generation = next
  }
  const revocations = (ix.revocations.get(sled) ?? [])
    .filter((r) => readable(r.carrier, r.seq))
    .map((r) => ({ ...r, effective: isEffective(r, adminKeys) }))
  return { sled, retiredFrom: retiredFrom.get(sled) ?? null, predecessors, successors, revocations, contested }
}

/** The verdict on a chain a peer presented (see {@link admitByChain}). */
export type ChainVerdict =
  | { readonly ok: true; readonly via: SledId; readonly links: readonly ChainLink[] }
  | { readonly ok: false; readonly reason: string }

/**
 * Whether `sled` may be admitted as a signed successor of a sled `allowed` admits: `records` are
 * succession records, the first `sled`'s entry 0, each next one the entry 0 of the previous
 * one's predecessor (at most {@link MAX_CHAIN}). Each must open (PROTOCOL.md §4.3: canonical,
 * signed by its sled, endorsement verified) and be endorsed; the walk admits at the first
 * predecessor `allowed` admits. `refuse` may veto a link (a contested predecessor, a successor
 * retired from seq 0). Pure: the records are the peer's claim, checked here byte for byte.
 */
export function admitByChain(
  sled: SledId,
  records: readonly string[],
  verifier: EntryVerifier,
  allowed: (s: SledId) => boolean,
  refuse: (link: ChainLink) => string | undefined = () => undefined,
): ChainVerdict {
  if (records.length === 0) return { ok: false, reason: 'no succession chain presented' }
  if (records.length > MAX_CHAIN) return { ok: false, reason: `a chain of more than ${MAX_CHAIN} successions` }
  const links: ChainLink[] = []
  let expect = sled
  for (const record of records) {
    let e: ReturnType<typeof openRecord>['entry']
    try {
      e = openRecord(record, verifier).entry
    } catch (err) {
      return { ok: false, reason: `a presented succession record does not open: ${(err as Error).message}` }
    }
    if (e.kind !== 'succession') return { ok: false, reason: `a presented record is a ${e.kind}, not a succession` }
    if (e.sled !== expect)
      return { ok: false, reason: `a presented succession is ${e.sled.slice(0, 12)}…'s, not ${expect.slice(0, 12)}…'s` }
    if (e.endorsement === null)
      return { ok: false, reason: `${e.sled.slice(0, 12)}…'s succession is not endorsed by its predecessor` }
    const link: ChainLink = {
      sled: e.sled,
      predecessor: e.predecessor,
      lastSeq: e.lastSeq,
      reason: e.reason,
      endorsed: true,
      ts: e.ts,
    }
    const vetoed = refuse(link)
    if (vetoed !== undefined) return { ok: false, reason: vetoed }
    links.push(link)
    if (allowed(e.predecessor)) return { ok: true, via: e.predecessor, links }
    expect = e.predecessor
  }
  // A longer chain cannot be shown in a handshake: say what the operator can do about it.
  if (records.length === MAX_CHAIN)
    return {
      ok: false,
      reason:
        `the chain ends at ${expect.slice(0, 12)}… after ${MAX_CHAIN} successions, the most a handshake ` +
        `carries: allow-list ${sled.slice(0, 12)}… or one of its last ${MAX_CHAIN} predecessors`,
    }
  return { ok: false, reason: `the presented chain ends at ${expect.slice(0, 12)}…, which is not on the allow-list` }
}

/**
 * The predecessors a presented chain proves `sled` succeeds, nearest first: those of its records up
 * to the first that fails a check of {@link admitByChain} (every one before it opened, is `sled`'s
 * or the previous predecessor's entry 0, is endorsed and passed `refuse`). Empty when the first
 * fails. Whom a node trusts can then be asked of each (the link cap prefers the signed successor
 * of a preferred peer, sync/server.ts) without checking the signatures again.
 */
export function verifiedPredecessors(
  sled: SledId,
  records: readonly string[],
  verifier: EntryVerifier,
  refuse?: (link: ChainLink) => string | undefined,
): SledId[] {
  const out: SledId[] = []
  // admitByChain asks `allowed` of a predecessor only once its record passed every check.
  admitByChain(
    sled,
    records,
    verifier,
    (s) => {
      out.push(s)
      return false
    },
    refuse,
  )
  return out
}

/**
 * True when a record the log holds (checked when it came in) is a succession or revocation, read
 * from its `kind` field without parsing: the JSON text starts at character 87 with `{"sled":"`,
 * 64 hex digits and `","seq":`, and the first `,"kind":"` after that is the kind field (seq and
 * ts are digits). Costs a short scan per record, so the log can index statements as it applies.
 */
export function isStatementRecord(record: string): boolean {
  const at = record.indexOf(',"kind":"', SIG_CHARS + 81)
  if (at < 0) return false
  const c = record.charCodeAt(at + 9)
  return c === 0x73 /* s */ || c === 0x72 /* r */
}

/**
 * The guard: decides whether an update that is not a local append may touch the doc
 * (docs/PROTOCOL.md §6, DESIGN.md "Yjs is not safe against hostile peers").
 *
 * Pure: it reads the current log through a {@link LogView} and returns either the new records to
 * apply (as runs for the canonical encoder) plus any equivocation evidence, or a rejection. A
 * rejected update changes nothing; an accepted one is applied only as re-encoded runs, so bytes
 * from a peer or the disk never reach `Y.applyUpdate`.
 */
import { isSledlogError, sledlogError, type RejectCode } from '../errors.js'
import { parseEntryJson, type Entry } from './entry.js'
import { clientIdOf, rootNameOf, sledOfRootName, type SledId } from './ids.js'
import { openRecord, splitRecord, type EntryVerifier } from './signing.js'
import { decodeUpdate, type DecodedStruct, type Run } from './update-codec.js'

/** What the guard needs to know of the current log. */
export interface LogView {
  /** Number of records held for a client, i.e. its next clock (Yjs state). */
  length(client: number): number
  /** The record at `(client, clock)`, if held. */
  recordAt(client: number, clock: number): string | undefined
}

/** Two validly signed records for one (sled, seq). Records are sorted, so evidence is canonical. */
export interface Equivocation {
  readonly sled: SledId
  readonly seq: number
  readonly records: readonly [string, string]
}

/** How much of each new record the guard checks. */
export type GuardLevel =
  /** Parse, bind and verify every signature: for peers and untrusted disk data. */
  | 'full'
  /** Structure and chain only, no per-record parse: for disk records whose MAC verified. */
  | 'trusted'

/** Guard limits and collaborators. */
export interface GuardOptions {
  readonly verifier: EntryVerifier
  readonly level: GuardLevel
  /** Largest accepted update, in bytes. */
  readonly maxUpdateBytes: number
  /** Largest accepted record, in UTF-8 bytes. */
  readonly maxRecordBytes: number
}

/** An accepted update. */
export interface GuardAccept {
  readonly ok: true
  /** New records, one run per client, contiguous with the view. Empty when nothing is new. */
  readonly runs: readonly Run[]
  /** Parsed entries of the new records (empty at level 'trusted'). */
  readonly entries: readonly Entry[]
  /** Records the view already held, byte for byte. */
  readonly duplicates: number
  /** Conflicting records found at positions the view already held. */
  readonly equivocations: readonly Equivocation[]
}

/** A rejected update; nothing of it may be applied. */
export interface GuardReject {
  readonly ok: false
  readonly code: RejectCode
  readonly message: string
  /** For UPDATE_GAP: the client and the clock range the update offered past the local head. */
  readonly gap?: {
    readonly client: number
    readonly sled: SledId | undefined
    readonly from: number
    readonly to: number
  }
}

/** The guard's verdict. */
export type GuardResult = GuardAccept | GuardReject

class Rejection extends Error {
  constructor(
    readonly code: RejectCode,
    message: string,
    readonly gap?: GuardReject['gap'],
  ) {
    super(message)
  }
}

function fail(code: RejectCode, message: string, gap?: GuardReject['gap']): never {
  throw new Rejection(code, message, gap)
}

/** Checks an entry's binding to the Yjs position it was found at. */
function checkBinding(entry: Entry, client: number, clock: number, sled: SledId | undefined): void {
  if (clientIdOf(entry.sled) !== client)
    fail('UPDATE_BAD_BINDING', `entry of sled ${entry.sled.slice(0, 12)}… sits in client ${client}`)
  if (entry.seq !== clock) fail('UPDATE_BAD_BINDING', `entry with seq ${entry.seq} sits at clock ${clock}`)
  if (sled !== undefined && entry.sled !== sled) fail('UPDATE_BAD_BINDING', `client ${client} mixes sleds`)
}

/** The codes opening a record gives (PROTOCOL.md §4.3): each is the update's rejection. */
const RECORD_CODES: ReadonlySet<string> = new Set<RejectCode>([
  'ENTRY_INVALID',
  'UPDATE_BAD_SIGNATURE',
  'SUCCESSION_INVALID',
  'SUCCESSION_BAD_ENDORSEMENT',
  'REVOCATION_BAD_SIGNATURE',
])

/** Parses (and at level 'full' verifies) a record, mapping errors to rejections. */
function open(record: string, opts: GuardOptions, verify: boolean): Entry {
  try {
    if (verify) return openRecord(record, opts.verifier).entry
    const parts = splitRecord(record)
    if (parts === undefined) fail('ENTRY_INVALID', 'record does not start with a signature')
    return parseEntryJson(parts.json)
  } catch (err) {
    if (err instanceof Rejection) throw err
    if (isSledlogError(err) && RECORD_CODES.has(err.code)) fail(err.code as RejectCode, err.message)
    throw err
  }
}

/** Sled a client's first struct binds to, from its root name; checks the chain shape. */
function checkShape(s: DecodedStruct, client: number): SledId | undefined {
  if (s.origin === null) {
    if (s.clock !== 0) fail('UPDATE_NOT_APPEND', `root item of client ${client} at clock ${s.clock}, not 0`)
    const sled = s.parentKey === null ? undefined : sledOfRootName(s.parentKey)
    if (sled === undefined)
      fail('UPDATE_NOT_APPEND', `item in root ${JSON.stringify(s.parentKey?.slice(0, 80))}, not a sled log`)
    if (clientIdOf(sled) !== client)
      fail('UPDATE_BAD_BINDING', `client ${client} writes into the log of ${sled.slice(0, 12)}…`)
    return sled
  }
  if (s.origin.client !== client || s.origin.clock !== s.clock - 1) {
    fail('UPDATE_NOT_APPEND', `item (${client}, ${s.clock}) is not appended after its own predecessor`)
  }
  return undefined
}

function guardClient(
  structs: readonly DecodedStruct[],
  view: LogView,
  opts: GuardOptions,
  out: { runs: Run[]; entries: Entry[]; duplicates: number; equivocations: Equivocation[] },
): void {
  const first = structs[0] as DecodedStruct
  const client = first.client
  const head = view.length(client)
  const held0 = head > 0 ? view.recordAt(client, 0) : undefined
  let sled = held0 === undefined ? undefined : splitRecordSled(held0)
  for (const s of structs) {
    const rooted = checkShape(s, client)
    if (rooted === undefined) continue
    if (sled !== undefined && rooted !== sled)
      fail('UPDATE_BAD_BINDING', `client ${client} is already bound to another sled`)
    sled = rooted
  }
  const last = structs[structs.length - 1] as DecodedStruct
  const end = last.clock + last.records.length
  if (first.clock > head) {
    fail('UPDATE_GAP', `client ${client}: update starts at ${first.clock}, local head is ${head}`, {
      client,
      sled: proveGap(last.records[last.records.length - 1] as string, client, end - 1, sled, opts),
      from: first.clock,
      to: end - 1,
    })
  }
  const fresh: string[] = []
  for (const s of structs) {
    for (let i = 0; i < s.records.length; i++) {
      const clock = s.clock + i
      const record = s.records[i] as string
      if (clock < head) {
        const held = view.recordAt(client, clock)
        if (held === record) {
          out.duplicates++
          continue
        }
        const entry = open(record, opts, true)
        checkBinding(entry, client, clock, sled)
        const pair = [held as string, record].sort() as [string, string]
        out.equivocations.push({ sled: entry.sled, seq: clock, records: pair })
        continue
      }
      if (opts.level === 'full') {
        const entry = open(record, opts, true)
        checkBinding(entry, client, clock, sled)
        sled = entry.sled
        out.entries.push(entry)
      }
      fresh.push(record)
    }
  }
  if (fresh.length > 0) {
    if (sled === undefined) fail('UPDATE_BAD_BINDING', `client ${client} has no sled root`)
    out.runs.push({ client, clock: end - fresh.length, rootName: rootNameOf(sled), records: fresh })
  }
}

/**
 * The sled of the last record offered past the local head. It is verified (one signature), so
 * the log can report the missing range without trusting unsigned claims, and so a peer cannot
 * send forgeries past the head forever as mere gaps: an unproven gap is rejected as what it is.
 */
function proveGap(record: string, client: number, clock: number, sled: SledId | undefined, opts: GuardOptions): SledId {
  const entry = open(record, opts, true)
  checkBinding(entry, client, clock, sled)
  return entry.sled
}

/** The sled named in a held record (held records were checked when they were applied). */
function splitRecordSled(record: string): SledId | undefined {
  const m = /"sled":"([0-9a-f]{64})"/.exec(record.slice(87, 87 + 80))
  return m?.[1] as SledId | undefined
}

/**
 * Checks an update against the current log. Never throws for bad input: every problem comes
 * back as a {@link GuardReject} with a stable code.
 */
export function guardUpdate(update: Uint8Array, view: LogView, opts: GuardOptions): GuardResult {
  try {
    if (update.length > opts.maxUpdateBytes) {
      fail('UPDATE_TOO_LARGE', `update of ${update.length} bytes exceeds ${opts.maxUpdateBytes}`)
    }
    let decoded: ReturnType<typeof decodeUpdate>
    try {
      decoded = decodeUpdate(update, opts.maxRecordBytes)
    } catch (err) {
      if (isSledlogError(err)) fail(err.code as RejectCode, err.message)
      throw err
    }
    const byClient = new Map<number, DecodedStruct[]>()
    for (const s of decoded.structs) {
      const list = byClient.get(s.client)
      if (list === undefined) byClient.set(s.client, [s])
      else list.push(s)
    }
    const out = { runs: [] as Run[], entries: [] as Entry[], duplicates: 0, equivocations: [] as Equivocation[] }
    for (const structs of byClient.values()) guardClient(structs, view, opts, out)
    return { ok: true, ...out }
  } catch (err) {
    if (err instanceof Rejection) {
      return err.gap === undefined
        ? { ok: false, code: err.code, message: err.message }
        : { ok: false, code: err.code, message: err.message, gap: err.gap }
    }
    return { ok: false, code: 'UPDATE_MALFORMED', message: `unexpected guard failure: ${String(err)}` }
  }
}

/** Throws the rejection as a SledlogError; for callers that treat a rejection as fatal. */
export function assertAccepted(result: GuardResult, context: string): GuardAccept {
  if (result.ok) return result
  throw sledlogError(
    result.code,
    `${context}: ${result.message}`,
    result.gap === undefined ? undefined : { ...result.gap },
  )
}

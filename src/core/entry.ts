/**
 * Entries and their exact JSON text (docs/PROTOCOL.md §3).
 *
 * The JSON text of an entry is what gets signed, byte for byte. It has exactly one valid form:
 * the fields in a fixed order, serialised as ECMAScript `JSON.stringify` does. A verifier parses
 * the text, checks the fields, and checks that re-serialising gives back the same text; that
 * rules out duplicate keys, reordering and whitespace, so every implementation reads the same
 * fields out of the same signed bytes.
 */
import { sledlogError } from '../errors.js'
import { isSledId, type SledId } from './ids.js'

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** Fields every entry has. */
export interface EntryHeader {
  /** The writing sled. */
  readonly sled: SledId
  /** Position in the sled's log: contiguous from 0. */
  readonly seq: number
  /** Writer's wall clock in ms since the epoch (informational; not ordered). */
  readonly ts: number
}

/** An application event. */
export interface EventEntry extends EntryHeader {
  readonly kind: 'event'
  /** Application-defined event type. */
  readonly type: string
  /** Application data. */
  readonly payload: JsonValue
  /** Producer-side logical id assigned by the ingest bus (see gap sentinels). */
  readonly lid?: number
  /** Optional idempotency id chosen by the producer; a sled never holds two entries with one id. */
  readonly id?: string
}

/** A gap sentinel: producer-side logical ids `[from, to]` (inclusive) were dropped before append. */
export interface GapEntry extends EntryHeader {
  readonly kind: 'gap'
  readonly from: number
  readonly to: number
}

/** Why a successor key was made (docs/PROTOCOL.md §3.5). */
export type SuccessionReason = 'rotation' | 'recovery'

/**
 * A succession record: the first entry (seq 0) of a successor sled, naming the sled it succeeds
 * and the last of the predecessor's seqs the node vouches for (docs/PROTOCOL.md §3.5).
 */
export interface SuccessionEntry extends EntryHeader {
  readonly kind: 'succession'
  /** The sled this one succeeds; never the sled itself. */
  readonly predecessor: SledId
  /** The predecessor's last seq the node vouches for; -1 for none. */
  readonly lastSeq: number
  readonly reason: SuccessionReason
  /**
   * base64url Ed25519 signature by the predecessor's key over the endorsement message (§4.4), or
   * null when that key is lost: an unendorsed succession is shown as such and retires nothing.
   */
  readonly endorsement: string | null
}

/** Who signs a revocation: the target's own key, or an admin key. */
export type RevocationAuthority = 'self' | 'admin'

/**
 * A revocation record: retires sled `target` from seq `fromSeq` on (docs/PROTOCOL.md §3.6). It
 * may be carried in any sled's log; its authority is its own signature, not the carrier's.
 */
export interface RevocationEntry extends EntryHeader {
  readonly kind: 'revocation'
  readonly target: SledId
  readonly fromSeq: number
  readonly authority: RevocationAuthority
  /** The admin public key (a sled id) that signed it; present exactly when authority is admin. */
  readonly admin?: SledId
  /** base64url Ed25519 signature by the target (self) or the admin key over the revocation message (§4.4). */
  readonly signature: string
}

/** A log entry. */
export type Entry = EventEntry | GapEntry | SuccessionEntry | RevocationEntry

/** The body of an entry: what a writer chooses; the log adds sled, seq and ts. */
export type EntryBody =
  | {
      readonly kind: 'event'
      readonly type: string
      readonly payload: JsonValue
      readonly lid?: number
      readonly id?: string
    }
  | { readonly kind: 'gap'; readonly from: number; readonly to: number }
  | Omit<SuccessionEntry, keyof EntryHeader>
  | Omit<RevocationEntry, keyof EntryHeader>

/** Every entry kind, as readers filter them. */
export const ENTRY_KINDS = ['event', 'gap', 'succession', 'revocation'] as const

/** An entry kind. */
export type EntryKind = (typeof ENTRY_KINDS)[number]

/** The format of a base64url Ed25519 signature (docs/PROTOCOL.md §4.1): 86 characters, no padding. */
export const SIGNATURE_RE = /^[A-Za-z0-9_-]{85}[AQgw]$/

/** Limits on entry fields. */
export const ENTRY_LIMITS = {
  /** Max length of `type`, in UTF-16 code units. */
  typeLength: 256,
  /** Max length of `id`, in UTF-16 code units. */
  idLength: 256,
  /** Max nesting depth of `payload`. */
  payloadDepth: 64,
} as const

function invalid(message: string, details?: Record<string, unknown>): never {
  throw sledlogError('ENTRY_INVALID', message, details)
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
}

function onlyFields(b: Record<string, unknown>, fields: readonly string[]): void {
  for (const k of Object.keys(b)) if (!fields.includes(k)) invalid(`unknown field ${k}`, { field: k })
}

function checkSignatureField(value: unknown, field: string): void {
  if (typeof value !== 'string' || !SIGNATURE_RE.test(value))
    invalid(`${field} must be an 86-character base64url Ed25519 signature`, { field })
}

function checkShortString(value: unknown, field: string, max: number): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    invalid(`${field} must be a string of 1..${max} characters`, { field })
  }
}

/**
 * Throws ENTRY_INVALID unless `value` is plain JSON data: no undefined, functions, symbols,
 * bigints, non-finite numbers, class instances, symbol keys, arrays with extra properties or
 * holes, and nesting deeper than {@link ENTRY_LIMITS.payloadDepth} (which also rules out cycles).
 * `JSON.stringify` would silently change such values, and a signed entry must mean exactly what
 * the writer passed. (-0 is accepted and written as 0: JSON has no negative zero.)
 */
export function assertJsonValue(value: unknown, path = 'payload', depth = 0): asserts value is JsonValue {
  if (depth > ENTRY_LIMITS.payloadDepth) invalid(`${path} nests deeper than ${ENTRY_LIMITS.payloadDepth}`)
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) invalid(`${path} holds a non-finite number`)
    return
  }
  if (Array.isArray(value)) {
    // Extra named or symbol properties on an array would vanish in JSON.stringify.
    if (Reflect.ownKeys(value).length !== value.length + 1) invalid(`${path} is an array with extra properties`)
    for (let i = 0; i < value.length; i++) assertJsonValue(value[i], `${path}[${i}]`, depth + 1)
    return
  }
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) invalid(`${path} is not a plain object`)
    if (Object.getOwnPropertySymbols(value).length > 0) invalid(`${path} has symbol keys, which JSON drops`)
    for (const [k, v] of Object.entries(value)) assertJsonValue(v, `${path}.${k}`, depth + 1)
    return
  }
  invalid(`${path} holds a ${typeof value}, which is not JSON`)
}

/** Throws ENTRY_INVALID unless `body` is a well-formed entry body. */
export function assertEntryBody(body: unknown): asserts body is EntryBody {
  if (typeof body !== 'object' || body === null) invalid('entry must be an object')
  const b = body as Record<string, unknown>
  if (b.kind === 'event') {
    checkShortString(b.type, 'type', ENTRY_LIMITS.typeLength)
    if (!('payload' in b)) invalid('payload is required (use null for none)')
    assertJsonValue(b.payload)
    if (b.id !== undefined) checkShortString(b.id, 'id', ENTRY_LIMITS.idLength)
    if (b.lid !== undefined && !isSeq(b.lid)) invalid('lid must be a non-negative safe integer')
    onlyFields(b, ['kind', 'type', 'payload', 'id', 'lid'])
    return
  }
  if (b.kind === 'gap') {
    if (!isSeq(b.from) || !isSeq(b.to) || b.from > b.to) invalid('gap needs integers 0 <= from <= to')
    onlyFields(b, ['kind', 'from', 'to'])
    return
  }
  if (b.kind === 'succession') {
    if (!isSledId(b.predecessor)) invalid('predecessor must be a sled id (64 lowercase hex)', { field: 'predecessor' })
    if (!(isSeq(b.lastSeq) || b.lastSeq === -1)) invalid('lastSeq must be an integer >= -1', { field: 'lastSeq' })
    if (b.reason !== 'rotation' && b.reason !== 'recovery')
      invalid('reason must be "rotation" or "recovery"', { field: 'reason' })
    if (b.endorsement !== null) checkSignatureField(b.endorsement, 'endorsement')
    onlyFields(b, ['kind', 'predecessor', 'lastSeq', 'reason', 'endorsement'])
    return
  }
  if (b.kind === 'revocation') {
    if (!isSledId(b.target)) invalid('target must be a sled id (64 lowercase hex)', { field: 'target' })
    if (!isSeq(b.fromSeq)) invalid('fromSeq must be a non-negative safe integer', { field: 'fromSeq' })
    if (b.authority === 'self') {
      if ('admin' in b) invalid('a self revocation has no admin field', { field: 'admin' })
    } else if (b.authority === 'admin') {
      if (!isSledId(b.admin)) invalid('admin must be the admin public key (64 lowercase hex)', { field: 'admin' })
    } else invalid('authority must be "self" or "admin"', { field: 'authority' })
    checkSignatureField(b.signature, 'signature')
    onlyFields(b, ['kind', 'target', 'fromSeq', 'authority', 'admin', 'signature'])
    return
  }
  invalid('kind must be "event", "gap", "succession" or "revocation"')
}

/**
 * Serialises an entry to its one valid JSON text. Field order: sled, seq, ts, kind, then
 * type, payload, lid?, id? (events), from, to (gaps), predecessor, lastSeq, reason, endorsement
 * (successions) or target, fromSeq, authority, admin?, signature (revocations). `id` is last,
 * so {@link idOfEntryJson} can read it without parsing the payload.
 */
export function encodeEntryJson(e: Entry): string {
  const head = `{"sled":"${e.sled}","seq":${e.seq},"ts":${e.ts},"kind":"${e.kind}"`
  if (e.kind === 'gap') return `${head},"from":${e.from},"to":${e.to}}`
  if (e.kind === 'succession') {
    const endorsement = e.endorsement === null ? 'null' : `"${e.endorsement}"`
    const pred = `,"predecessor":"${e.predecessor}","lastSeq":${e.lastSeq}`
    return `${head}${pred},"reason":"${e.reason}","endorsement":${endorsement}}`
  }
  if (e.kind === 'revocation') {
    const admin = e.admin === undefined ? '' : `,"admin":"${e.admin}"`
    const target = `,"target":"${e.target}","fromSeq":${e.fromSeq},"authority":"${e.authority}"`
    return `${head}${target}${admin},"signature":"${e.signature}"}`
  }
  const lid = e.lid === undefined ? '' : `,"lid":${e.lid}`
  const id = e.id === undefined ? '' : `,"id":${JSON.stringify(e.id)}`
  return `${head},"type":${JSON.stringify(e.type)},"payload":${JSON.stringify(e.payload)}${lid}${id}}`
}

/**
 * Parses and checks an entry's JSON text; throws ENTRY_INVALID if it is not the canonical text
 * of a well-formed entry.
 */
export function parseEntryJson(json: string): Entry {
  let v: unknown
  try {
    v = JSON.parse(json)
  } catch {
    invalid('entry is not valid JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid('entry must be a JSON object')
  const o = v as Record<string, unknown>
  if (!isSledId(o.sled)) invalid('sled must be 64 lowercase hex characters')
  if (!isSeq(o.seq)) invalid('seq must be a non-negative safe integer')
  if (!isSeq(o.ts)) invalid('ts must be a non-negative safe integer')
  const { sled, seq, ts, ...body } = o
  assertEntryBody(body)
  const entry = { sled, seq, ts, ...body } as Entry
  if (encodeEntryJson(entry) !== json) invalid('entry JSON is not in canonical form')
  if (entry.kind === 'succession') assertSuccessionPlace(entry)
  return entry
}

/**
 * Throws SUCCESSION_INVALID unless a succession sits where it may (docs/PROTOCOL.md §3.5): at
 * seq 0 of its sled (it opens the successor's log), naming another sled as its predecessor.
 */
export function assertSuccessionPlace(e: {
  readonly sled: SledId
  readonly seq: number
  readonly predecessor: SledId
}): void {
  if (e.seq !== 0)
    throw sledlogError('SUCCESSION_INVALID', `a succession record must be entry 0 of its sled, not ${e.seq}`, {
      seq: e.seq,
    })
  if (e.predecessor === e.sled)
    throw sledlogError('SUCCESSION_INVALID', 'a succession record names its own sled as its predecessor')
}

/**
 * The idempotency id of an entry's canonical JSON text, read from its tail without parsing the
 * payload (used to index a large log quickly on open). Sound because `id` is the last field and a
 * raw `,"id":"` cannot occur inside a JSON string (its quotes would be escaped); a payload object
 * ending in an "id" key is told apart by the second closing brace.
 */
export function idOfEntryJson(json: string): string | undefined {
  if (!json.endsWith('"}')) return undefined
  const at = json.lastIndexOf(',"id":"')
  if (at < 0) return undefined
  try {
    const v: unknown = JSON.parse(json.slice(at + 6, -1))
    return typeof v === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

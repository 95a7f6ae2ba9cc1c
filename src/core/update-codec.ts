/**
 * A strict codec for the subset of the Yjs v1 update format that a sledlog doc can hold
 * (docs/PROTOCOL.md §5).
 *
 * Peer and disk bytes are never handed to Yjs: they are parsed here, checked by the guard, and
 * re-encoded by {@link encodeRuns} into canonical bytes that Yjs then applies. The grammar admits
 * only `Item`s with `ContentAny` of strings, each appended after its own client's previous item
 * (or, at clock 0, at the start of a root array), and an empty delete set. Everything else is
 * rejected here, before any allocation that the input size does not bound.
 */
import * as encoding from 'lib0/encoding'
import { sledlogError, type RejectCode } from '../errors.js'

/** Yjs v1 info byte of an Item with ContentAny and no origin (root start). */
const INFO_ANY_ROOT = 0x08
/** Yjs v1 info byte of an Item with ContentAny and a left origin. */
const INFO_ANY_ORIGIN = 0x88
/** lib0 `writeAny` tag of a string. */
const ANY_STRING = 119

/** One struct of a decoded update: consecutive records of one client. */
export interface DecodedStruct {
  readonly client: number
  readonly clock: number
  /** Left origin `(client, clock)`, or null at the start of a root array. */
  readonly origin: { readonly client: number; readonly clock: number } | null
  /** Root array name when `origin` is null. */
  readonly parentKey: string | null
  readonly records: readonly string[]
}

/** A decoded update. */
export interface DecodedUpdate {
  readonly structs: readonly DecodedStruct[]
  /** Number of clients named by the delete set (all with no ranges). */
  readonly emptyDeleteSetClients: number
}

/** A contiguous range of one client's records, as the encoder writes it. */
export interface Run {
  readonly client: number
  /** Clock (= seq) of the first record. */
  readonly clock: number
  /** Root array name; written only when `clock` is 0. */
  readonly rootName: string
  readonly records: readonly string[]
}

/** Thrown by {@link decodeUpdate}; carries the guard rejection code. */
function reject(code: RejectCode, message: string): never {
  throw sledlogError(code, message)
}

// ignoreBOM: a leading U+FEFF is content (lib0 keeps it too), not a marker to strip.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

interface Cursor {
  readonly buf: Uint8Array
  pos: number
}

function readByte(c: Cursor): number {
  const b = c.buf[c.pos]
  if (b === undefined) reject('UPDATE_MALFORMED', 'unexpected end of update')
  c.pos++
  return b
}

/** Reads a minimal lib0 varuint of at most 53 bits. */
function readVarUint(c: Cursor): number {
  let num = 0
  let mult = 1
  for (let i = 0; i < 8; i++) {
    const b = readByte(c)
    num += (b & 0x7f) * mult
    if (b < 0x80) {
      if (b === 0 && i > 0) reject('UPDATE_MALFORMED', 'overlong varuint')
      if (num > Number.MAX_SAFE_INTEGER) reject('UPDATE_MALFORMED', 'varuint exceeds 2^53')
      return num
    }
    mult *= 128
  }
  return reject('UPDATE_MALFORMED', 'varuint longer than 8 bytes')
}

/**
 * Reads a varString. With `maxRecordBytes` it is a log element, and its length is checked against
 * the record size rule as soon as the prefix is read: before truncation and UTF-8, so a length
 * that is both too large and past the end is ENTRY_TOO_LARGE (first violation in reading order).
 */
function readVarString(c: Cursor, maxRecordBytes?: number): string {
  const len = readVarUint(c)
  if (maxRecordBytes !== undefined) checkRecordBytes(len, maxRecordBytes)
  if (len > c.buf.length - c.pos) reject('UPDATE_MALFORMED', 'string runs past the end of the update')
  const bytes = c.buf.subarray(c.pos, c.pos + len)
  c.pos += len
  try {
    return utf8.decode(bytes)
  } catch {
    return reject('UPDATE_MALFORMED', 'string is not valid UTF-8')
  }
}

function describeInfo(info: number): string {
  const ref = info & 0x1f
  if (ref === 0) return 'a GC struct (deleted range)'
  if (ref === 10) return 'a Skip struct'
  if (info & 0x40) return 'an item with a right origin (insertion, not append)'
  if (info & 0x20) return 'a map-style item (parentSub key)'
  return `an item with content type ${ref} (only ContentAny=8 is allowed)`
}

/**
 * Decodes a Yjs v1 update under the sledlog grammar. Throws a SledlogError with an UPDATE_* code
 * on anything else: the first rule broken in reading order decides the code. `maxRecordBytes` bounds
 * each record's UTF-8 length ({@link checkRecordBytes}).
 */
export function decodeUpdate(update: Uint8Array, maxRecordBytes: number): DecodedUpdate {
  const c: Cursor = { buf: update, pos: 0 }
  const structs: DecodedStruct[] = []
  const seenClients = new Set<number>()
  const nClients = readVarUint(c)
  for (let ci = 0; ci < nClients; ci++) {
    let nStructs = readVarUint(c)
    const client = readVarUint(c)
    let clock = readVarUint(c)
    if (seenClients.has(client)) reject('UPDATE_MALFORMED', `client ${client} appears twice`)
    seenClients.add(client)
    if (nStructs === 0) reject('UPDATE_MALFORMED', 'client block with no structs')
    for (; nStructs > 0; nStructs--) {
      const info = readByte(c)
      let origin: DecodedStruct['origin'] = null
      let parentKey: string | null = null
      if (info === INFO_ANY_ORIGIN) {
        origin = { client: readVarUint(c), clock: readVarUint(c) }
      } else if (info === INFO_ANY_ROOT) {
        if (readVarUint(c) !== 1) reject('UPDATE_NOT_APPEND', 'item parent is not a root type')
        parentKey = readVarString(c)
      } else {
        reject('UPDATE_NOT_APPEND', `update holds ${describeInfo(info)}`)
      }
      const len = readVarUint(c)
      if (len === 0) reject('UPDATE_MALFORMED', 'empty ContentAny')
      // Each element takes at least two bytes, so a lying length fails at the end of the buffer.
      if (len * 2 > update.length - c.pos) reject('UPDATE_MALFORMED', 'content length runs past the end of the update')
      // The next clock must stay a safe integer (it becomes the state vector's entry).
      if (clock + len > Number.MAX_SAFE_INTEGER) reject('UPDATE_MALFORMED', 'clock exceeds 2^53 - 1')
      const records: string[] = []
      for (let i = 0; i < len; i++) {
        if (readByte(c) !== ANY_STRING) reject('UPDATE_NOT_APPEND', 'a log element is not a string')
        records.push(readVarString(c, maxRecordBytes))
      }
      structs.push({ client, clock, origin, parentKey, records })
      clock += len
    }
  }
  let emptyDeleteSetClients = 0
  const nDs = readVarUint(c)
  for (let i = 0; i < nDs; i++) {
    readVarUint(c) // client
    const nRanges = readVarUint(c)
    for (let r = 0; r < nRanges; r++) {
      readVarUint(c) // clock
      if (readVarUint(c) > 0) reject('UPDATE_DELETION', 'update deletes entries; sledlog logs are grow-only')
    }
    emptyDeleteSetClients++
  }
  if (c.pos !== update.length)
    reject('UPDATE_MALFORMED', `${update.length - c.pos} trailing bytes after the delete set`)
  return { structs, emptyDeleteSetClients }
}

/**
 * The record size rule (docs/PROTOCOL.md §3.4), one rule for writers and verifiers alike: a
 * record's UTF-8 length may not exceed `maxRecordBytes`. Throws ENTRY_TOO_LARGE.
 */
export function checkRecordBytes(bytes: number, maxRecordBytes: number): void {
  if (bytes > maxRecordBytes) {
    throw sledlogError('ENTRY_TOO_LARGE', `record of ${bytes} UTF-8 bytes exceeds ${maxRecordBytes}`, {
      bytes,
      maxRecordBytes,
    })
  }
}

/**
 * Bytes a record takes inside an update, counted generously: UTF-8 length, the 0x77 tag and a
 * length prefix of up to 5 bytes (exact prefixes are 3 bytes for 16 KiB ≤ n < 2 MiB). Only the
 * chunkers use it, to keep chunks near their target; it is not the record size rule.
 */
export function recordWireSize(record: string): number {
  return Buffer.byteLength(record, 'utf8') + 6
}

/** Bytes of a minimal varuint. */
function varUintSize(n: number): number {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    size++
  }
  return size
}

/** Writes a minimal varuint at `pos`; returns the next position. */
function putVarUint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = 0x80 | (n % 0x80)
    n = Math.floor(n / 0x80)
  }
  buf[pos++] = n
  return pos
}

/** Writes a lib0 varString (byte length, UTF-8 bytes) whose byte length is known. */
function putVarString(buf: Buffer, pos: number, s: string, bytes: number): number {
  pos = putVarUint(buf, pos, bytes)
  return pos + buf.write(s, pos, bytes, 'utf8')
}

/**
 * Encodes runs as one canonical Yjs v1 update: clients in descending id order (as Yjs writes
 * them), one struct per client, empty delete set. Runs must have distinct clients and at least
 * one record each. Sized up front and written with native UTF-8 encoding: lib0's encoder copies
 * strings byte by byte, which cost ~10 % of an append.
 */
export function encodeRuns(runs: readonly Run[]): Uint8Array {
  const sorted = [...runs].sort((a, b) => b.client - a.client)
  const lengths = sorted.map((run) => run.records.map((r) => Buffer.byteLength(r, 'utf8')))
  let size = varUintSize(sorted.length) + 1
  sorted.forEach((run, i) => {
    if (run.records.length === 0) throw new RangeError('a run needs at least one record')
    size += 1 + varUintSize(run.client) + varUintSize(run.clock) + 1
    if (run.clock === 0) {
      const root = Buffer.byteLength(run.rootName, 'utf8')
      size += 1 + varUintSize(root) + root
    } else {
      size += varUintSize(run.client) + varUintSize(run.clock - 1)
    }
    size += varUintSize(run.records.length)
    for (const b of lengths[i] as number[]) size += 1 + varUintSize(b) + b
  })
  const buf = Buffer.allocUnsafe(size)
  let pos = putVarUint(buf, 0, sorted.length)
  sorted.forEach((run, i) => {
    pos = putVarUint(buf, pos, 1)
    pos = putVarUint(buf, pos, run.client)
    pos = putVarUint(buf, pos, run.clock)
    if (run.clock === 0) {
      buf[pos++] = INFO_ANY_ROOT
      pos = putVarUint(buf, pos, 1)
      pos = putVarString(buf, pos, run.rootName, Buffer.byteLength(run.rootName, 'utf8'))
    } else {
      buf[pos++] = INFO_ANY_ORIGIN
      pos = putVarUint(buf, pos, run.client)
      pos = putVarUint(buf, pos, run.clock - 1)
    }
    pos = putVarUint(buf, pos, run.records.length)
    const bytes = lengths[i] as number[]
    run.records.forEach((r, k) => {
      buf[pos++] = ANY_STRING
      pos = putVarString(buf, pos, r, bytes[k] as number)
    })
  })
  buf[pos++] = 0 // empty delete set
  if (pos !== size) throw new Error(`encodeRuns sized ${size} bytes but wrote ${pos}`)
  return new Uint8Array(buf.buffer, buf.byteOffset, size)
}

/**
 * Encodes runs as a sequence of canonical updates of at most about `maxBytes` each (a single
 * record larger than that gets an update of its own). Applied in order, they equal
 * `encodeRuns(runs)`. Used for snapshots and for chunked initial sync.
 */
export function encodeRunsChunked(runs: readonly Run[], maxBytes: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let pending: Run[] = []
  let size = 0
  const flush = (): void => {
    if (pending.length > 0) out.push(encodeRuns(pending))
    pending = []
    size = 0
  }
  for (const run of runs) {
    let start = 0
    while (start < run.records.length) {
      let end = start
      while (end < run.records.length) {
        const s = recordWireSize(run.records[end] as string)
        if (size + s > maxBytes && (end > start || size > 0)) break
        size += s
        end++
      }
      if (end > start) {
        pending.push({
          client: run.client,
          clock: run.clock + start,
          rootName: run.rootName,
          records: run.records.slice(start, end),
        })
        start = end
      }
      if (start < run.records.length) flush()
    }
  }
  flush()
  return out
}

/**
 * Decodes a Yjs v1 state vector (`varuint n`, then n × `varuint client, varuint clock`) strictly:
 * minimal varuints, no duplicate client, nothing trailing. Throws UPDATE_MALFORMED.
 */
export function decodeStateVector(sv: Uint8Array): Map<number, number> {
  const c: Cursor = { buf: sv, pos: 0 }
  const n = readVarUint(c)
  if (n * 2 > sv.length) reject('UPDATE_MALFORMED', 'state vector count runs past its end')
  const out = new Map<number, number>()
  for (let i = 0; i < n; i++) {
    const client = readVarUint(c)
    const clock = readVarUint(c)
    if (out.has(client)) reject('UPDATE_MALFORMED', `state vector names client ${client} twice`)
    out.set(client, clock)
  }
  if (c.pos !== sv.length) reject('UPDATE_MALFORMED', 'trailing bytes after the state vector')
  return out
}

/** Encodes a state vector in Yjs v1 form, clients in descending order as Yjs writes them. */
export function encodeStateVector(sv: ReadonlyMap<number, number>): Uint8Array {
  const enc = encoding.createEncoder()
  const entries = [...sv].sort((a, b) => b[0] - a[0])
  encoding.writeVarUint(enc, entries.length)
  for (const [client, clock] of entries) {
    encoding.writeVarUint(enc, client)
    encoding.writeVarUint(enc, clock)
  }
  return encoding.toUint8Array(enc)
}

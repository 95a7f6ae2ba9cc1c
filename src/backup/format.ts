/**
 * The line formats of exports and backups (docs/PROTOCOL.md §7.3, §7.4): logical, a stream of
 * the signed record strings with their (sled, seq), independent of how a store lays entries out.
 * An export is record lines alone; a backup adds a header, fork proofs, consumer cursors and a
 * trailer whose SHA-256 covers every byte before it, so a truncated or damaged file is refused.
 */
import { createHash, type Hash } from 'node:crypto'
import { isSledId, type SledId } from '../core/ids.js'
import type { Heads } from '../core/query.js'
import { sledlogError } from '../errors.js'

/** `format` of a backup's header line. */
export const BACKUP_FORMAT = 'sledlog-backup'

/** Version of the backup format. */
export const BACKUP_VERSION = 1

/**
 * Longest line a reader accepts, in bytes: a fork line holds two records of at most 64 KiB
 * (escaped, up to 6 bytes per code unit); a consumer's cursor names every sled it read.
 */
export const MAX_LINE_BYTES = 8 * 1024 * 1024

/** The bound every reader of these files puts on a line (a `readLines` limit). */
export const LINE_LIMIT = {
  maxChars: MAX_LINE_BYTES,
  tooLong: (n: number): Error => sledlogError('BACKUP_INVALID', `line ${n} is longer than ${MAX_LINE_BYTES} bytes`),
} as const

/** One signed record with its place: an export line, and a backup's record line. */
export interface RecordLine {
  readonly sled: SledId
  readonly seq: number
  /** The record as on the wire: base64url signature "." canonical entry JSON (PROTOCOL.md §4.1). */
  readonly record: string
}

/** A backup's first line. */
export interface BackupHeader {
  readonly format: typeof BACKUP_FORMAT
  readonly v: typeof BACKUP_VERSION
  /** The sled id of the node backed up (its key is not in the backup). */
  readonly node: SledId
  /** When the snapshot was taken, ms since the epoch. */
  readonly createdAt: number
  /** Records held per sled at that moment, sleds ascending: the record lines are seqs 0 … n − 1 of each. */
  readonly sleds: Readonly<Record<string, number>>
  /** Fork lines that follow the records. */
  readonly forks: number
  /** Consumer lines that follow the forks. */
  readonly consumers: number
}

/** A fork proof as a backup carries it (PROTOCOL.md §6.2). */
export interface ForkLine {
  readonly sled: SledId
  readonly seq: number
  readonly records: readonly [string, string]
}

/** A durable consumer's acknowledged cursor. */
export interface ConsumerLine {
  readonly name: string
  readonly cursor: Heads
}

/** What one line of a backup holds. */
export type BackupItem =
  | { readonly kind: 'header'; readonly header: BackupHeader }
  | { readonly kind: 'record'; readonly line: RecordLine }
  | { readonly kind: 'fork'; readonly fork: ForkLine }
  | { readonly kind: 'consumer'; readonly consumer: ConsumerLine }
  | { readonly kind: 'end' }

/** The text of a record line (no newline): `{"sled":…,"seq":…,"record":…}`, in that key order. */
export function recordLine(sled: SledId, seq: number, record: string): string {
  return JSON.stringify({ sled, seq, record })
}

function invalid(n: number, why: string): never {
  throw sledlogError('BACKUP_INVALID', `line ${n}: ${why}`, { line: n })
}

/** Parses a line into a JSON object, or fails with BACKUP_INVALID naming line `n`. */
export function parseLineObject(text: string, n: number): Record<string, unknown> {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    invalid(n, 'not JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(n, 'not a JSON object')
  return v as Record<string, unknown>
}

function keysAre(o: Record<string, unknown>, keys: readonly string[]): boolean {
  const have = Object.keys(o)
  return have.length === keys.length && keys.every((k) => Object.hasOwn(o, k))
}

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** Checks a parsed record line: exactly `sled`, `seq`, `record` of the right types. */
export function asRecordLine(o: Record<string, unknown>, n: number): RecordLine {
  if (!keysAre(o, ['sled', 'seq', 'record'])) invalid(n, 'a record line has exactly the keys sled, seq, record')
  if (typeof o.sled !== 'string' || !isSledId(o.sled)) invalid(n, 'sled is not a sled id (64 lowercase hex)')
  if (!isSeq(o.seq)) invalid(n, 'seq is not a non-negative integer')
  if (typeof o.record !== 'string') invalid(n, 'record is not a string')
  return { sled: o.sled, seq: o.seq, record: o.record }
}

function asHeader(o: Record<string, unknown>, n: number): BackupHeader {
  if (o.format !== BACKUP_FORMAT) invalid(n, `not a sledlog backup (the first line's format is not "${BACKUP_FORMAT}")`)
  if (o.v !== BACKUP_VERSION) invalid(n, `backup format version ${JSON.stringify(o.v)} is not ${BACKUP_VERSION}`)
  if (!keysAre(o, ['format', 'v', 'node', 'createdAt', 'sleds', 'forks', 'consumers'])) invalid(n, 'header keys')
  if (typeof o.node !== 'string' || !isSledId(o.node)) invalid(n, 'node is not a sled id')
  if (!isSeq(o.createdAt) || !isSeq(o.forks) || !isSeq(o.consumers)) invalid(n, 'createdAt, forks, consumers')
  const sleds = o.sleds
  if (typeof sleds !== 'object' || sleds === null || Array.isArray(sleds)) invalid(n, 'sleds is not an object')
  let prev = ''
  for (const [sled, held] of Object.entries(sleds)) {
    if (!isSledId(sled) || !isSeq(held) || held === 0) invalid(n, 'sleds maps sled ids to record counts ≥ 1')
    if (sled <= prev) invalid(n, 'sleds are not in ascending order')
    prev = sled
  }
  return o as unknown as BackupHeader
}

function asFork(o: Record<string, unknown>, n: number): ForkLine {
  const f = o.fork as Record<string, unknown>
  if (!keysAre(o, ['fork']) || typeof f !== 'object' || f === null || !keysAre(f, ['sled', 'seq', 'records']))
    invalid(n, 'a fork line is {"fork":{sled, seq, records}}')
  const r = f.records
  if (typeof f.sled !== 'string' || !isSledId(f.sled) || !isSeq(f.seq)) invalid(n, 'fork sled or seq')
  if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string' || typeof r[1] !== 'string' || r[0] >= r[1])
    invalid(n, 'fork records are two distinct strings, smaller first')
  return { sled: f.sled, seq: f.seq, records: [r[0], r[1]] }
}

function asConsumer(o: Record<string, unknown>, n: number): ConsumerLine {
  const c = o.consumer as Record<string, unknown>
  if (!keysAre(o, ['consumer']) || typeof c !== 'object' || c === null || !keysAre(c, ['name', 'cursor']))
    invalid(n, 'a consumer line is {"consumer":{name, cursor}}')
  const cursor = c.cursor
  if (typeof c.name !== 'string' || typeof cursor !== 'object' || cursor === null || Array.isArray(cursor))
    invalid(n, 'consumer name or cursor')
  return { name: c.name, cursor: cursor as Heads }
}

/**
 * Writes a backup: each call returns the text of one line with its newline, and the trailer
 * carries the SHA-256 of every line before it.
 */
export class BackupEncoder {
  readonly #hash: Hash = createHash('sha256')
  #records = 0

  #line(text: string): string {
    const line = `${text}\n`
    this.#hash.update(line)
    return line
  }

  /** The header line. */
  header(h: BackupHeader): string {
    return this.#line(JSON.stringify(h))
  }

  /** A record line. */
  record(sled: SledId, seq: number, record: string): string {
    this.#records++
    return this.#line(recordLine(sled, seq, record))
  }

  /** A fork line. */
  fork(f: ForkLine): string {
    return this.#line(JSON.stringify({ fork: { sled: f.sled, seq: f.seq, records: f.records } }))
  }

  /** A consumer line. */
  consumer(c: ConsumerLine): string {
    return this.#line(JSON.stringify({ consumer: { name: c.name, cursor: c.cursor } }))
  }

  /** The trailer: record count and the SHA-256 (hex) of every byte before it. */
  end(): string {
    return `${JSON.stringify({ end: { records: this.#records, sha256: this.#hash.digest('hex') } })}\n`
  }
}

/**
 * Reads a backup line by line and checks its structure as it goes: the header first, then every
 * record of each sled the header lists (ascending, seqs 0 … n − 1), the forks and consumers it
 * announces, and the trailer, whose checksum must match. Anything else, and a file that ends
 * before its trailer, is BACKUP_INVALID. It checks no signature: that is the guard's job.
 */
export class BackupDecoder {
  readonly #hash: Hash = createHash('sha256')
  #header: BackupHeader | null = null
  #sleds: Array<[string, number]> = []
  #sledIndex = 0
  #nextSeq = 0
  #records = 0
  #forks = 0
  #consumers = 0
  #ended = false

  /** The header, once read. */
  get header(): BackupHeader | null {
    return this.#header
  }

  /** Record lines read so far. */
  get records(): number {
    return this.#records
  }

  /** Total records the header announces (0 before it). */
  get totalRecords(): number {
    return this.#sleds.reduce((a, [, k]) => a + k, 0)
  }

  /** Checks line `n` (its text, without the newline) and says what it holds. */
  line(text: string, n: number): BackupItem {
    if (this.#ended) invalid(n, 'a line after the trailer')
    const o = parseLineObject(text, n)
    if (this.#header === null) {
      const header = asHeader(o, n)
      this.#header = header
      this.#sleds = Object.entries(header.sleds)
      this.#hash.update(`${text}\n`)
      return { kind: 'header', header }
    }
    const item = this.#item(o, n)
    if (item.kind === 'end') {
      const end = o.end as Record<string, unknown>
      if (typeof end !== 'object' || end === null || !keysAre(o, ['end']) || !keysAre(end, ['records', 'sha256']))
        invalid(n, 'a trailer is {"end":{records, sha256}}')
      if (end.records !== this.#records)
        invalid(n, `the trailer counts ${String(end.records)} records, the file holds ${this.#records}`)
      if (end.sha256 !== this.#hash.digest('hex')) invalid(n, 'checksum mismatch: the file is damaged')
      this.#ended = true
      return item
    }
    this.#hash.update(`${text}\n`)
    return item
  }

  #item(o: Record<string, unknown>, n: number): BackupItem {
    const h = this.#header as BackupHeader
    const recordsDone = this.#sledIndex >= this.#sleds.length
    if (Object.hasOwn(o, 'record')) {
      const line = asRecordLine(o, n)
      const want = this.#sleds[this.#sledIndex]
      if (want === undefined) invalid(n, 'more records than the header lists')
      if (line.sled !== want[0] || line.seq !== this.#nextSeq)
        invalid(n, `expected ${want[0].slice(0, 12)}…/${this.#nextSeq}, found ${line.sled.slice(0, 12)}…/${line.seq}`)
      this.#records++
      if (++this.#nextSeq === want[1]) {
        this.#sledIndex++
        this.#nextSeq = 0
      }
      return { kind: 'record', line }
    }
    if (!recordsDone) invalid(n, `the records end early: ${this.#records} of ${this.totalRecords}`)
    if (Object.hasOwn(o, 'fork')) {
      if (this.#forks >= h.forks || this.#consumers > 0) invalid(n, 'a fork line out of place')
      this.#forks++
      return { kind: 'fork', fork: asFork(o, n) }
    }
    if (this.#forks < h.forks) invalid(n, `${this.#forks} fork lines of ${h.forks}`)
    if (Object.hasOwn(o, 'consumer')) {
      if (this.#consumers >= h.consumers) invalid(n, 'more consumer lines than the header lists')
      this.#consumers++
      return { kind: 'consumer', consumer: asConsumer(o, n) }
    }
    if (this.#consumers < h.consumers) invalid(n, `${this.#consumers} consumer lines of ${h.consumers}`)
    if (Object.hasOwn(o, 'end')) return { kind: 'end' }
    return invalid(n, 'not a record, fork, consumer or trailer line')
  }

  /** Throws BACKUP_INVALID unless the trailer was read: the file was cut short. */
  finish(lines: number): void {
    if (this.#header === null) invalid(lines + 1, 'the file is empty: no backup header')
    if (!this.#ended) invalid(lines + 1, 'the file ends before its trailer: it is truncated')
  }
}

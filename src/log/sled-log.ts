/**
 * The log of one node: a Yjs doc of signed entries, persisted in a {@link LevelStore}
 * (docs/ARCHITECTURE.md).
 *
 * Every change goes through one serial commit pipeline: jobs (local appends, remote updates)
 * queue up; a flush checks them against the doc plus what the flush already staged, writes their
 * canonical updates in one LevelDB batch, and only then applies them to the doc and resolves the
 * callers. So nothing is visible (to readers or to replication) before it is durable, appends in
 * the same tick share one batch, and a failed write changes nothing.
 */
import { createHash, type Hash } from 'node:crypto'
import * as Y from 'yjs'
import type { EntryBody } from '../core/entry.js'
import { assertEntryBody, idOfEntryJson, type JsonValue } from '../core/entry.js'
import { guardUpdate, type Equivocation, type GuardOptions, type LogView } from '../core/guard.js'
import { clientIdOf, rootNameOf, sledOfRootName, type ClientId, type SledId } from '../core/ids.js'
import { recordToEntry, runQuery, type Heads, type Query, type QueryResult, type StoredEntry } from '../core/query.js'
import {
  createSigner,
  createVerifier,
  openRecord,
  SIG_CHARS,
  type EntrySigner,
  type EntryVerifier,
  type KeyPair,
} from '../core/signing.js'
import { checkRecordBytes, encodeRuns, encodeRunsChunked, recordWireSize, type Run } from '../core/update-codec.js'
import { sledlogError, type ErrorCode, type RejectCode, type SledlogError } from '../errors.js'
import { isEvidenceShape, type LevelStore } from '../store/level-store.js'
import { docView, overlayView } from './doc-view.js'
import { installLinearMerge } from './yjs-linear.js'

/** Size limits of a log. */
export interface LogLimits {
  /** Largest record (signature + entry JSON), UTF-8 bytes. */
  readonly maxRecordBytes: number
  /** Largest update accepted from a peer or read from disk. */
  readonly maxUpdateBytes: number
  /** Most entries in one `appendBatch`. */
  readonly maxBatchEntries: number
}

/** Default limits. */
export const DEFAULT_LIMITS: LogLimits = {
  maxRecordBytes: 64 * 1024,
  maxUpdateBytes: 16 * 1024 * 1024,
  maxBatchEntries: 10_000,
}

/** Caps on stored equivocation evidence (a hostile sled can sign endless versions). */
export const EVIDENCE_LIMITS = {
  /** Distinct versions kept per (sled, seq). */
  versionsPerSlot: 8,
  /** Evidence pairs kept per sled. */
  pairsPerSled: 1024,
} as const

/** Options of a {@link SledLog}. */
export interface SledLogOptions {
  /** This node's identity. */
  readonly keys: KeyPair
  /** Where the log is persisted; the log opens and closes it. */
  readonly store: LevelStore
  /** Signature verifier; defaults to node:crypto. */
  readonly verifier?: EntryVerifier
  readonly limits?: Partial<LogLimits>
  /** Clock for entry timestamps (ms); defaults to Date.now. */
  readonly now?: () => number
  /**
   * How stored records are checked on open: 'mac' (default) trusts records whose MAC verifies
   * and fully guards the rest; 'full' verifies every signature.
   */
  readonly verifyOnOpen?: 'mac' | 'full'
  /**
   * Move stored records the guard refuses on open into quarantine, out of reach of compaction
   * (default true). False opens without writing anything (inspection tools).
   */
  readonly quarantineOnOpen?: boolean
  /** Compact the updates since the last compaction into snapshot chunks past this many bytes… */
  readonly snapshotMinBytes?: number
  /** …or past this many updates (each stored update costs ~30 µs on open; chunks far less). */
  readonly snapshotMaxUpdates?: number
  /** Target size of a snapshot chunk (at most half of `limits.maxUpdateBytes`). */
  readonly snapshotChunkBytes?: number
  /**
   * Remote update bytes checked per flush (~1k entries, ~75 ms of verification): bounds the
   * event-loop lag a flood of peer updates can cause.
   */
  readonly remoteFlushBytes?: number
}

/** What an application appends: an event (the log adds sled, seq and ts). */
export interface AppendInput {
  readonly type: string
  readonly payload: unknown
  readonly id?: string
}

/** Outcome of {@link SledLog.applyUpdate}. */
export type ApplyResult =
  | { readonly ok: true; readonly added: number; readonly duplicates: number; readonly equivocations: number }
  | { readonly ok: false; readonly code: RejectCode | 'STORE_WRITE_FAILED' | 'LOG_CLOSED'; readonly message: string }

/** A committed change, as listeners see it. */
export interface CommitEvent {
  /** Canonical update bytes that were applied (what replication forwards). */
  readonly update: Uint8Array
  /** The new records, per client. */
  readonly runs: readonly Run[]
  /** True for this node's own appends. */
  readonly local: boolean
  /** The origin passed to {@link SledLog.applyUpdate} (e.g. a peer), undefined for local. */
  readonly origin: unknown
  /**
   * The entries of one of `runs` as {@link SledLog.get} reads them (with equivocation evidence:
   * the chosen version and its flag). Parsed on first call and shared by every listener of this
   * commit, so N subscribers cost one parse.
   */
  entries(run: Run): readonly StoredEntry[]
}

/** A lazy answer to a peer's state vector (see {@link SledLog.updateStream}). */
export interface UpdateStream {
  /** The next update, or null once the peer would hold everything the log holds now. */
  next(): Uint8Array | null
  /**
   * The peer holds `client`'s entries in [`from`, `end`): the stream does not send them. Only
   * applied when the stream has sent everything below `from` (the peer's log is contiguous, so
   * it then holds all below `end`); pass `from` 0 for what the peer itself said it holds (a
   * state vector, or entries it sent).
   */
  skip(client: number, end: number, from?: number): void
}

/** Verification status of the log. */
export interface LogStatus {
  readonly sled: SledId
  readonly heads: Heads
  /** Entries held (all verified on entry). */
  readonly entries: number
  readonly rejected: { readonly total: number; readonly byCode: Readonly<Partial<Record<ErrorCode, number>>> }
  /** Records received again that were already held. */
  readonly duplicates: number
  readonly equivocations: readonly Equivocation[]
  /** Seq ranges known to exist (offered by peers) but not held, per sled; inclusive. */
  readonly missing: Readonly<Record<string, readonly [number, number][]>>
  /** Set when appends are refused because this node lost some of its own entries. */
  readonly ownHeadBehind: { readonly have: number; readonly written: number } | null
  /** Set after a failed write: the log refuses writes until reopened. */
  readonly writeFailed: string | null
  readonly store: {
    readonly updatesSinceSnapshot: number
    readonly snapshotBytes: number
    /** Stored records refused on open and kept aside (see docs/ARCHITECTURE.md "Persistence"). */
    readonly quarantined: number
    /** Why the last compaction failed, until one succeeds (nothing is lost: updates stay). */
    readonly compactionFailed: string | null
  }
}

type Job =
  | { kind: 'local'; bodies: EntryBody[]; resolve: (e: StoredEntry[]) => void; reject: (err: unknown) => void }
  | { kind: 'remote'; update: Uint8Array; origin: unknown; resolve: (r: ApplyResult) => void }

interface Staged {
  readonly update: Uint8Array
  readonly runs: readonly Run[]
  readonly local: boolean
  readonly origin: unknown
}

/** A node's signed, durable, grow-only log. Lifecycle: `open()` → use → `close()`. */
export class SledLog {
  readonly #keys: KeyPair
  readonly #store: LevelStore
  readonly #signer: EntrySigner
  readonly #verifier: EntryVerifier
  readonly #limits: LogLimits
  readonly #now: () => number
  readonly #verifyOnOpen: 'mac' | 'full'
  readonly #quarantineOnOpen: boolean
  readonly #snapshotMinBytes: number
  /** Largest update written to the store: snapshot chunks and pieces of large flushes. */
  readonly #storeChunkBytes: number
  readonly #snapshotMaxUpdates: number
  /** Per client, how many records the snapshot chunks hold (the next compaction starts there). */
  readonly #compacted = new Map<number, number>()
  readonly #remoteFlushBytes: number
  readonly #doc = new Y.Doc({ gc: false })
  readonly #view = docView(this.#doc)
  readonly #client: ClientId
  readonly #sleds = new Map<number, SledId>()
  #sortedSleds: SledId[] | null = []
  readonly #evidence = new Map<string, Set<string>>()
  readonly #evidenceList: Equivocation[] = []
  readonly #evidenceBySled = new Map<SledId, number>()
  readonly #rejected = new Map<ErrorCode, number>()
  #duplicates = 0
  readonly #knownHeads = new Map<SledId, number>()
  readonly #listeners = new Set<(e: CommitEvent) => void>()
  #queue: Job[] = []
  #flushing: Promise<void> | null = null
  #state: 'new' | 'open' | 'closing' | 'closed' = 'new'
  #closing: Promise<void> | null = null
  #writeFailure: SledlogError | null = null
  #compactionFailure: string | null = null
  #gate: Promise<void> | null = null
  /** Idempotency ids of this sled's entries → seq. */
  readonly #ids = new Map<string, number>()
  readonly #remoteHeadListeners = new Set<(sled: SledId, seq: number) => void>()
  /** Running SHA-256 over each client's chosen records; null when evidence made it stale. */
  readonly #digests = new Map<number, Hash | null>()

  constructor(opts: SledLogOptions) {
    installLinearMerge()
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits }
    if (this.#limits.maxRecordBytes > this.#limits.maxUpdateBytes / 2) {
      throw sledlogError(
        'CONFIG_INVALID',
        `maxRecordBytes (${this.#limits.maxRecordBytes}) must be at most half of maxUpdateBytes (${this.#limits.maxUpdateBytes})`,
      )
    }
    this.#keys = opts.keys
    this.#store = opts.store
    this.#signer = createSigner(opts.keys)
    this.#verifier = opts.verifier ?? createVerifier()
    this.#now = opts.now ?? Date.now
    this.#verifyOnOpen = opts.verifyOnOpen ?? 'mac'
    this.#quarantineOnOpen = opts.quarantineOnOpen ?? true
    this.#snapshotMinBytes = opts.snapshotMinBytes ?? 8 * 1024 * 1024
    // A stored update whose MAC fails (corruption, a changed key) goes through the full guard,
    // size limit included; stored pieces stay well under it (half leaves room for the
    // per-run headers the chunker does not count), so one bad byte costs one piece, not a batch.
    this.#storeChunkBytes = Math.min(
      opts.snapshotChunkBytes ?? 4 * 1024 * 1024,
      Math.floor(this.#limits.maxUpdateBytes / 2),
    )
    this.#snapshotMaxUpdates = opts.snapshotMaxUpdates ?? 4096
    this.#remoteFlushBytes = opts.remoteFlushBytes ?? 256 * 1024
    this.#client = clientIdOf(opts.keys.sled)
  }

  /** This node's sled id. */
  get sled(): SledId {
    return this.#keys.sled
  }

  /** The Yjs client id this node writes with. */
  get clientId(): ClientId {
    return this.#client
  }

  /** True when opening found no stored log and created an empty one (new node or lost disk). */
  get storeCreated(): boolean {
    return this.#store.created
  }

  /** The underlying Yjs doc. Read-only by contract: write only through this class. */
  get doc(): Y.Doc {
    return this.#doc
  }

  /** Opens the store and rebuilds the doc from it: snapshot chunks, then updates, each guarded. */
  async open(): Promise<void> {
    if (this.#state !== 'new') throw sledlogError('LOG_CLOSED', 'a log can be opened once')
    this.#state = 'closing' // not usable until loaded
    try {
      await this.#store.open()
    } catch (err) {
      this.#state = 'closed'
      throw err
    }
    try {
      await this.#load()
    } catch (err) {
      this.#state = 'closed'
      await this.#store.close()
      throw err
    }
    this.#state = 'open'
  }

  async #load(): Promise<void> {
    for (const raw of await this.#store.evidence()) this.#loadEvidence(raw)
    // A record whose MAC verifies is this node's own write: the size limit guards against peers
    // and corruption, and must not drop what this node acknowledged (older stores may hold
    // flushes written before they were split).
    const trustedOpts = { ...this.#guardOptions('trusted'), maxUpdateBytes: Number.POSITIVE_INFINITY }
    const fullOpts = this.#guardOptions('full')
    // Refused records are kept in quarantine, not left where compaction would delete them: one
    // behind a corrupt predecessor holds valid entries that apply once peers fill the gap.
    const refused: string[] = []
    const restored: Array<{ key: string; update: Uint8Array | undefined }> = []
    for await (const stored of this.#store.updates()) {
      const trusted = stored.trusted && this.#verifyOnOpen === 'mac'
      const verdict = guardUpdate(stored.update, this.#view, trusted ? trustedOpts : fullOpts)
      if (!verdict.ok) {
        this.#countRejection(verdict.code)
        if (verdict.gap !== undefined) this.#noteGap(verdict.gap)
        if (!stored.quarantined) refused.push(stored.key)
        continue
      }
      this.#duplicates += verdict.duplicates
      this.#addEvidence(verdict.equivocations)
      // A trusted record holds exactly this node's canonical bytes; anything else is re-encoded.
      const clean =
        verdict.runs.length === 0
          ? undefined
          : trusted && verdict.duplicates === 0
            ? stored.update
            : encodeRuns(verdict.runs)
      if (stored.quarantined) restored.push({ key: stored.key, update: clean })
      if (clean === undefined) continue
      this.#apply({ update: clean, runs: verdict.runs, local: false, origin: 'store' })
      if (stored.key.startsWith('s:')) {
        for (const run of verdict.runs) this.#compacted.set(run.client, run.clock + run.records.length)
      }
    }
    if (this.#quarantineOnOpen) await this.#store.settleLoad(refused, restored)
    // Digests are computed on first use, not while loading (hashing every record is a third of
    // the open time, and a node without peers never needs them).
    for (const client of this.#digests.keys()) this.#digests.set(client, null)
  }

  /** Flushes pending work, then closes the store. Idempotent; concurrent calls share one close. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const wasOpen = this.#state === 'open'
    this.#state = 'closing'
    while (this.#flushing !== null) await this.#flushing
    this.#listeners.clear()
    if (wasOpen) await this.#store.close()
    this.#doc.destroy()
    this.#state = 'closed'
  }

  /** Appends one event; resolves with the stored entry once it is durable. */
  async append(input: AppendInput): Promise<StoredEntry> {
    const [entry] = await this.appendBatch([input])
    return entry as StoredEntry
  }

  /** Appends events atomically with contiguous seqs; resolves once all are durable. */
  appendBatch(inputs: readonly AppendInput[]): Promise<StoredEntry[]> {
    return this.appendBodies(
      inputs.map(
        (i): EntryBody =>
          i.id === undefined
            ? { kind: 'event', type: i.type, payload: i.payload as JsonValue }
            : ({ kind: 'event', ...i } as EntryBody),
      ),
    )
  }

  /**
   * Appends entry bodies (events, possibly with `lid`, and gap sentinels) atomically with
   * contiguous seqs, in order. Events whose idempotency id this sled already holds are not
   * appended again: their existing entry is returned in their place.
   */
  appendBodies(bodies: readonly EntryBody[]): Promise<StoredEntry[]> {
    try {
      if (bodies.length === 0) return Promise.resolve([])
      if (bodies.length > this.#limits.maxBatchEntries) {
        throw sledlogError('ENTRY_INVALID', `a batch holds at most ${this.#limits.maxBatchEntries} entries`)
      }
      for (const b of bodies) assertEntryBody(b)
      return this.#enqueueLocal([...bodies])
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Appends a gap sentinel for dropped producer ids `[from, to]`. */
  async appendGap(from: number, to: number): Promise<StoredEntry> {
    const [entry] = await this.appendBodies([{ kind: 'gap', from, to }])
    return entry as StoredEntry
  }

  /**
   * Guards and applies an update from a peer (or any source that is not a local append).
   * Never throws for bad input: the verdict says what happened, and rejections are counted.
   */
  applyUpdate(update: Uint8Array, origin?: unknown): Promise<ApplyResult> {
    if (this.#state !== 'open') return Promise.resolve({ ok: false, code: 'LOG_CLOSED', message: 'log is not open' })
    return new Promise((resolve) => {
      this.#queue.push({ kind: 'remote', update, origin, resolve })
      this.#schedule()
    })
  }

  /** Registers a listener for committed changes; returns the unsubscribe function. */
  onCommit(listener: (e: CommitEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Reads entries in (sled, seq) order; see {@link Query}. */
  query(q: Query = {}): QueryResult {
    return runQuery(this.#querySource(), q)
  }

  /** The entry at (sled, seq), if held. */
  get(sled: SledId, seq: number): StoredEntry | undefined {
    const record = this.#chosenRecord(sled, seq)
    return record === undefined ? undefined : recordToEntry(record, this.#evidence.has(`${sled}:${seq}`))
  }

  /** Last seq held per sled. */
  heads(): Heads {
    const out: Record<string, number> = {}
    for (const sled of this.#sortedSledList()) out[sled] = this.#view.length(clientIdOf(sled)) - 1
    return out
  }

  /** Number of entries held for a sled, i.e. its next seq. */
  length(sled: SledId): number {
    return this.#sleds.has(clientIdOf(sled)) ? this.#view.length(clientIdOf(sled)) : 0
  }

  /** True when this sled already holds an entry with idempotency id `id`. */
  hasId(id: string): boolean {
    return this.#ids.has(id)
  }

  /** Reads a small persistent metadata value (consumer cursors, ingest state). */
  readMeta(name: string): Promise<string | undefined> {
    return this.#store.getMeta(name)
  }

  /** Reads persistent metadata values whose names start with `prefix`. */
  readMetaPrefix(prefix: string): Promise<Map<string, string>> {
    return this.#store.metaWithPrefix(prefix)
  }

  /** Writes persistent metadata values atomically (not ordered with appends). */
  writeMeta(values: Readonly<Record<string, string>>): Promise<void> {
    if (this.#state !== 'open') return Promise.reject(sledlogError('LOG_CLOSED', `log is ${this.#state}`))
    return this.#store.putMeta(values)
  }

  /** The sled whose entries a Yjs client id holds here, if any. */
  sledOfClient(client: number): SledId | undefined {
    return this.#sleds.get(client)
  }

  /**
   * Holds local appends until `until` settles: appends made meanwhile wait, then run in order.
   * Used while a node that may have lost its disk recovers its own head from peers, so it
   * cannot reuse a seq.
   */
  holdAppends(until: Promise<unknown>): void {
    const gate = until.then(
      () => undefined,
      () => undefined,
    )
    this.#gate = gate
    void gate.then(() => {
      if (this.#gate === gate) this.#gate = null
    })
  }

  /** True while appends are held (see {@link holdAppends}). */
  get appendsHeld(): boolean {
    return this.#gate !== null
  }

  /** Records that a peer holds `sled` up to `seq`, so missing ranges can be reported. */
  noteRemoteHead(sled: SledId, seq: number): void {
    const known = this.#knownHeads.get(sled)
    if (known !== undefined && seq <= known) return
    this.#knownHeads.set(sled, seq)
    if (seq >= this.length(sled)) for (const l of this.#remoteHeadListeners) l(sled, seq)
  }

  /** Registers a listener for peers announcing a sled head past what this log holds. */
  onRemoteHead(listener: (sled: SledId, seq: number) => void): () => void {
    this.#remoteHeadListeners.add(listener)
    return () => this.#remoteHeadListeners.delete(listener)
  }

  /**
   * The seqs of `sled` (inclusive) known to exist but not held here, or null: one sled's entry
   * of {@link LogStatus.missing}, without building the whole status (the replicator asks on
   * every synced link).
   */
  missingRange(sled: SledId): readonly [number, number] | null {
    const held = this.length(sled)
    const known = this.#knownHeads.get(sled) ?? -1
    if (sled === this.sled) {
      // Own entries this node wrote but no longer holds are missing too, whether or not a peer
      // has announced them yet.
      const written = this.#store.ownNext
      if (written > held) return [held, Math.max(written - 1, known)]
    }
    return known >= held ? [held, known] : null
  }

  /** The verification status. */
  status(): LogStatus {
    const heads = this.heads()
    let entries = 0
    for (const h of Object.values(heads)) entries += h + 1
    const byCode: Partial<Record<ErrorCode, number>> = {}
    let total = 0
    for (const [code, n] of this.#rejected) {
      byCode[code] = n
      total += n
    }
    const have = this.#view.length(this.#client)
    const written = this.#store.ownNext
    const missing: Record<string, [number, number][]> = {}
    for (const sled of [...this.#knownHeads.keys(), this.sled]) {
      const range = this.missingRange(sled)
      if (range !== null) missing[sled] = [[range[0], range[1]]]
    }
    return {
      sled: this.sled,
      heads,
      entries,
      rejected: { total, byCode },
      duplicates: this.#duplicates,
      equivocations: [...this.#evidenceList],
      missing,
      ownHeadBehind: have < written ? { have, written } : null,
      writeFailed: this.#writeFailure?.message ?? null,
      store: {
        updatesSinceSnapshot: this.#store.updateCount,
        snapshotBytes: this.#store.snapshotBytes,
        quarantined: this.#store.quarantined,
        compactionFailed: this.#compactionFailure,
      },
    }
  }

  /**
   * Per-client SHA-256 over the chosen record of every held seq (records joined by newlines,
   * which neither signatures nor JSON text contain), combined with the sled's equivocation
   * evidence. Two nodes with equal state vectors but different content or evidence (an
   * equivocation one of them has not seen both sides of) differ here.
   */
  digests(): Array<{ client: number; length: number; hash: Uint8Array }> {
    const out: Array<{ client: number; length: number; hash: Uint8Array }> = []
    for (const [client, sled] of this.#sleds) {
      let h = this.#digests.get(client) ?? null
      if (h === null) {
        h = hashRecords(this.#querySource().records(sled, 0, this.#view.length(client)), createHash('sha256'))
        this.#digests.set(client, h)
      }
      // Evidence is part of the digest, so a node that has not seen an equivocation differs
      // from one that has, fetches the sled, and records the evidence too.
      const versions = this.#evidenceBySled.has(sled)
        ? this.#evidenceList.filter((e) => e.sled === sled).flatMap((e) => e.records)
        : []
      const base = h.copy().digest()
      const hash =
        versions.length === 0
          ? base
          : createHash('sha256')
              .update(base)
              .update([...new Set(versions)].sort().join('\n'))
              .digest()
      out.push({ client, length: this.#view.length(client), hash: new Uint8Array(hash) })
    }
    return out
  }

  /** The Yjs state vector (per-client next clock), v1 encoding, as sync step 1 sends it. */
  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.#doc)
  }

  /**
   * Canonical updates holding everything this log has past `stateVector`, in chunks of about
   * `maxBytes` (so initial sync never needs one giant frame), followed by one small update per
   * other known version of each equivocated slot in the range (the evidence): all of
   * {@link updateStream} at once.
   */
  updatesSince(stateVector: ReadonlyMap<number, number>, maxBytes: number): Uint8Array[] {
    const stream = this.updateStream(stateVector, maxBytes)
    const out: Uint8Array[] = []
    for (let u = stream.next(); u !== null; u = stream.next()) out.push(u)
    return out
  }

  /**
   * What a peer at `stateVector` lacks, as a lazy series of updates of at most `maxBytes` each
   * (a record larger than that goes alone), so answering a peer that lacks a million entries
   * holds one chunk in memory, not the whole answer. Each `next()` reads the log as it is then:
   * entries committed while an answer is being sent go out in it too. Runs come first, then
   * one update per other known version of each equivocated slot the answer transferred (the
   * peer holds the slot by then, so its guard records the same evidence; without this a peer
   * holding only the larger version would read a different entry forever). `next()` returns
   * null once the peer would hold everything this log holds.
   */
  updateStream(stateVector: ReadonlyMap<number, number>, maxBytes: number): UpdateStream {
    const from = new Map(stateVector)
    const sent = new Map(stateVector)
    const evidenceSent = new Set<string>()
    const nextRuns = (): Uint8Array | null => {
      const runs: Run[] = []
      let size = 0
      for (const [client, sled] of this.#sleds) {
        const first = sent.get(client) ?? 0
        const end = this.#view.length(client)
        let next = first
        const records: string[] = []
        fill: while (next < end) {
          for (const r of this.#view.records(client, next, Math.min(end, next + 64))) {
            const s = recordWireSize(r)
            if (size + s > maxBytes && size > 0) break fill
            size += s
            records.push(r)
            next++
          }
        }
        if (records.length > 0) {
          runs.push({ client, clock: first, rootName: rootNameOf(sled), records })
          sent.set(client, next)
        }
        if (next < end) break // this chunk is full
      }
      return runs.length === 0 ? null : encodeRuns(runs)
    }
    const nextEvidence = (): Uint8Array | null => {
      for (const [key, versions] of this.#evidence) {
        const colon = key.lastIndexOf(':')
        const sled = key.slice(0, colon) as SledId
        const client = clientIdOf(sled)
        const seq = Number(key.slice(colon + 1))
        if (seq < (from.get(client) ?? 0) || seq >= (sent.get(client) ?? 0)) continue
        const held = this.#view.recordAt(client, seq)
        for (const v of [...versions].sort()) {
          const id = `${key}\n${v}`
          if (v === held || evidenceSent.has(id)) continue
          evidenceSent.add(id)
          return encodeRuns([{ client, clock: seq, rootName: rootNameOf(sled), records: [v] }])
        }
      }
      return null
    }
    return {
      next: () => nextRuns() ?? nextEvidence(),
      skip: (client, end, start = 0) => {
        const at = sent.get(client) ?? 0
        if (start <= at && at < end) sent.set(client, end)
      },
    }
  }

  // ---- internals ----

  #guardOptions(level: GuardOptions['level']): GuardOptions {
    return {
      verifier: this.#verifier,
      level,
      maxUpdateBytes: this.#limits.maxUpdateBytes,
      maxRecordBytes: this.#limits.maxRecordBytes,
    }
  }

  #enqueueLocal(bodies: EntryBody[]): Promise<StoredEntry[]> {
    if (this.#gate !== null) return this.#gate.then(() => this.#enqueueLocal(bodies))
    if (this.#state !== 'open')
      return Promise.reject(
        sledlogError(this.#state === 'new' ? 'LOG_NOT_OPEN' : 'LOG_CLOSED', `log is ${this.#state}`),
      )
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind: 'local', bodies, resolve, reject })
      this.#schedule()
    })
  }

  #schedule(): void {
    if (this.#flushing !== null) return
    this.#flushing = new Promise<void>((done) => {
      setImmediate(() => {
        this.#drain().then(done, done)
      })
    }).finally(() => {
      this.#flushing = null
      if (this.#queue.length > 0) this.#schedule()
    })
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const jobs = this.#takeJobs()
      await this.#flush(jobs)
      // Let I/O (and other peers) in between flushes even when a flush wrote nothing.
      if (this.#queue.length > 0) await new Promise((r) => setImmediate(r))
      if (this.#store.updateBytes > this.#snapshotMinBytes || this.#store.updateCount > this.#snapshotMaxUpdates) {
        try {
          await this.#snapshot()
          this.#compactionFailure = null
        } catch (err) {
          // A failed compaction loses nothing (the updates stay in the store) and is retried
          // after the next flush; status reports it meanwhile.
          this.#compactionFailure = (err as Error).message
        }
      }
    }
  }

  /**
   * Takes the next flush's jobs: every queued local append, and remote updates up to
   * `remoteFlushBytes` (at least one), so checking signatures never blocks the event loop for
   * long however much peers send.
   */
  #takeJobs(): Job[] {
    let bytes = 0
    let n = 0
    for (; n < this.#queue.length; n++) {
      const job = this.#queue[n] as Job
      if (job.kind !== 'remote') continue
      if (bytes > 0 && bytes + job.update.length > this.#remoteFlushBytes) break
      bytes += job.update.length
    }
    return this.#queue.splice(0, n)
  }

  async #flush(jobs: Job[]): Promise<void> {
    if (this.#writeFailure !== null) {
      const err = this.#writeFailure
      for (const job of jobs) {
        if (job.kind === 'local') job.reject(err)
        else job.resolve({ ok: false, code: 'STORE_WRITE_FAILED', message: err.message })
      }
      return
    }
    const view = overlayView(this.#view)
    const staged: Staged[] = []
    const newEvidence: Equivocation[] = []
    const remoteResults: Array<[Job & { kind: 'remote' }, ApplyResult]> = []
    const full = this.#guardOptions('full')
    for (const job of jobs) {
      if (job.kind !== 'remote') continue
      const verdict = guardUpdate(job.update, view, full)
      if (!verdict.ok) {
        this.#countRejection(verdict.code)
        if (verdict.gap !== undefined) this.#noteGap(verdict.gap)
        remoteResults.push([job, { ok: false, code: verdict.code, message: verdict.message }])
        continue
      }
      this.#duplicates += verdict.duplicates
      for (const e of verdict.equivocations) {
        if (
          this.#hasEvidence(e) ||
          newEvidence.some((n) => n.sled === e.sled && n.seq === e.seq && n.records[1] === e.records[1])
        )
          continue
        // Past the caps the version is dropped; the sled stays flagged by the evidence it has.
        if (this.#evidenceRoom(e, newEvidence)) newEvidence.push(e)
      }
      let added = 0
      for (const run of verdict.runs) {
        view.stage(run)
        added += run.records.length
      }
      if (verdict.runs.length > 0)
        staged.push({ update: encodeRuns(verdict.runs), runs: verdict.runs, local: false, origin: job.origin })
      remoteResults.push([
        job,
        { ok: true, added, duplicates: verdict.duplicates, equivocations: verdict.equivocations.length },
      ])
    }
    const local = this.#stageLocal(jobs, view)
    if (local.run !== undefined)
      staged.push({ update: encodeRuns([local.run]), runs: [local.run], local: true, origin: undefined })
    if (staged.length > 0 || newEvidence.length > 0) {
      try {
        await this.#store.commit({
          updates: staged.flatMap((s) =>
            s.update.length <= this.#storeChunkBytes ? [s.update] : encodeRunsChunked(s.runs, this.#storeChunkBytes),
          ),
          evidence: newEvidence,
          ...(local.run === undefined ? {} : { ownNext: local.run.clock + local.run.records.length }),
        })
      } catch (cause) {
        // LevelDB may or may not hold the failed batch (it stops writing after an I/O error), so
        // the in-memory state can no longer be trusted to match the disk: assigning these seqs
        // again could equivocate. Refuse all further writes until a reopen re-reads the truth.
        const err = sledlogError(
          'STORE_WRITE_FAILED',
          `write failed (${(cause as Error).message}); the log refuses writes until it is reopened`,
          undefined,
          cause,
        )
        this.#writeFailure = err
        for (const [job] of remoteResults) job.resolve({ ok: false, code: 'STORE_WRITE_FAILED', message: err.message })
        for (const { job } of local.accepted) job.reject(err)
        return
      }
    }
    this.#addEvidence(newEvidence)
    for (const s of staged) this.#apply(s)
    for (const [job, result] of remoteResults) job.resolve(result)
    for (const { job, entries } of local.accepted) job.resolve(entries)
  }

  /** Signs the local jobs' entries with the next seqs; rejects jobs that cannot be appended. */
  #stageLocal(
    jobs: Job[],
    view: LogView & { stage(run: Run): void },
  ): { run: Run | undefined; accepted: Array<{ job: Job & { kind: 'local' }; entries: StoredEntry[] }> } {
    const accepted: Array<{ job: Job & { kind: 'local' }; entries: StoredEntry[] }> = []
    const records: string[] = []
    const stagedIds = new Map<string, number>()
    const start = view.length(this.#client)
    let seq = start
    for (const job of jobs) {
      if (job.kind !== 'local') continue
      if (start < this.#store.ownNext) {
        job.reject(
          sledlogError(
            'OWN_HEAD_BEHIND',
            `this node wrote ${this.#store.ownNext} entries but holds ${start}; waiting to recover them from peers`,
            {
              have: start,
              written: this.#store.ownNext,
            },
          ),
        )
        continue
      }
      try {
        // Entries of this job: existing ones (idempotency id already held or staged) or new.
        const out: Array<string | StoredEntry> = []
        const signed: string[] = []
        const jobIds = new Map<string, number>()
        for (const body of job.bodies) {
          const id = body.kind === 'event' ? body.id : undefined
          if (id !== undefined) {
            const existing = this.#ids.get(id) ?? stagedIds.get(id) ?? jobIds.get(id)
            if (existing !== undefined) {
              out.push(
                existing < start
                  ? (this.get(this.sled, existing) as StoredEntry)
                  : ((records[existing - start] ?? signed[existing - seq]) as string),
              )
              continue
            }
            jobIds.set(id, seq + signed.length)
          }
          const record = this.#signer.signEntry({ sled: this.sled, seq: seq + signed.length, ts: this.#now(), ...body })
          // The verifiers' rule exactly (PROTOCOL.md §3.4): what this writes, every peer accepts.
          checkRecordBytes(Buffer.byteLength(record, 'utf8'), this.#limits.maxRecordBytes)
          signed.push(record)
          out.push(record)
        }
        for (const r of signed) records.push(r)
        for (const [id, at] of jobIds) stagedIds.set(id, at)
        seq += signed.length
        accepted.push({ job, entries: out.map((r) => (typeof r === 'string' ? recordToEntry(r, false) : r)) })
      } catch (err) {
        job.reject(err)
      }
    }
    if (records.length === 0) return { run: undefined, accepted }
    const run: Run = { client: this.#client, clock: start, rootName: rootNameOf(this.sled), records }
    view.stage(run)
    return { run, accepted }
  }

  /** Applies canonical bytes to the doc and tells listeners. Bytes are ours, so this cannot fail. */
  #apply(s: Staged): void {
    Y.applyUpdate(this.#doc, s.update, s.origin)
    for (const run of s.runs) {
      if (run.client === this.#client) this.#indexIds(run.records, run.clock)
      const h = this.#digests.get(run.client)
      if (this.#state !== 'open') this.#digests.set(run.client, null)
      else if (h === undefined) this.#digests.set(run.client, hashRecords(run.records, createHash('sha256')))
      else if (h !== null) hashRecords(run.records, h)
      if (!this.#sleds.has(run.client)) {
        const sled = sledOfRootName(run.rootName) as SledId
        this.#sleds.set(run.client, sled)
        this.#sortedSleds = null
      }
    }
    if (this.#state !== 'open') return
    const parsed = new Map<Run, StoredEntry[]>()
    const entries = (run: Run): StoredEntry[] => {
      let e = parsed.get(run)
      if (e === undefined) {
        const sled = this.#sleds.get(run.client) as SledId
        e = run.records.map((_, i) => this.get(sled, run.clock + i) as StoredEntry)
        parsed.set(run, e)
      }
      return e
    }
    const event: CommitEvent = { update: s.update, runs: s.runs, local: s.local, origin: s.origin, entries }
    for (const l of this.#listeners) {
      try {
        l(event)
      } catch {
        // A listener's bug must not break the commit pipeline.
      }
    }
  }

  #indexIds(records: readonly string[], firstSeq: number): void {
    for (let i = 0; i < records.length; i++) {
      const id = idOfEntryJson((records[i] as string).slice(SIG_CHARS + 1))
      if (id !== undefined && !this.#ids.has(id)) this.#ids.set(id, firstSeq + i)
    }
  }

  /** Compacts the updates written since the last compaction into snapshot chunks. */
  async #snapshot(): Promise<void> {
    const runs: Run[] = []
    for (const [client, sled] of this.#sleds) {
      const from = this.#compacted.get(client) ?? 0
      const to = this.#view.length(client)
      if (from < to)
        runs.push({ client, clock: from, rootName: rootNameOf(sled), records: this.#view.records(client, from, to) })
    }
    await this.#store.appendSnapshot(encodeRunsChunked(runs, this.#storeChunkBytes))
    // Recorded before the removal: once the chunks are written, retrying must not write them again.
    for (const run of runs) this.#compacted.set(run.client, run.clock + run.records.length)
    await this.#store.dropCovered()
  }

  #countRejection(code: ErrorCode): void {
    this.#rejected.set(code, (this.#rejected.get(code) ?? 0) + 1)
  }

  #noteGap(gap: { sled: SledId | undefined; to: number }): void {
    if (gap.sled !== undefined) this.noteRemoteHead(gap.sled, gap.to)
  }

  /**
   * Caps evidence a sled can make us keep (it can sign endless versions of its own slots):
   * {@link EVIDENCE_LIMITS}. The sled is flagged either way; past the caps versions are counted
   * and dropped.
   */
  #evidenceRoom(e: Equivocation, pending: readonly Equivocation[]): boolean {
    const slot =
      (this.#evidence.get(`${e.sled}:${e.seq}`)?.size ?? 0) +
      pending.filter((p) => p.sled === e.sled && p.seq === e.seq).length
    const sled = (this.#evidenceBySled.get(e.sled) ?? 0) + pending.filter((p) => p.sled === e.sled).length
    return slot < EVIDENCE_LIMITS.versionsPerSlot && sled < EVIDENCE_LIMITS.pairsPerSled
  }

  #hasEvidence(e: Equivocation): boolean {
    const set = this.#evidence.get(`${e.sled}:${e.seq}`)
    return set !== undefined && e.records.every((r) => set.has(r))
  }

  #addEvidence(list: readonly Equivocation[]): void {
    for (const e of list) {
      if (this.#hasEvidence(e)) continue
      const key = `${e.sled}:${e.seq}`
      const set = this.#evidence.get(key) ?? new Set<string>()
      for (const r of e.records) set.add(r)
      this.#evidence.set(key, set)
      this.#evidenceList.push(e)
      this.#evidenceBySled.set(e.sled, (this.#evidenceBySled.get(e.sled) ?? 0) + 1)
      // The chosen record of this slot may change: recompute the sled's digest when next asked.
      if (this.#digests.has(clientIdOf(e.sled))) this.#digests.set(clientIdOf(e.sled), null)
    }
  }

  /** Checks stored evidence: both records validly signed by the sled for the seq, and distinct. */
  #loadEvidence(raw: unknown): void {
    try {
      if (!isEvidenceShape(raw) || raw.records[0] === raw.records[1]) throw new Error('bad shape')
      for (const r of raw.records) {
        const { entry } = openRecord(r, this.#verifier)
        if (entry.sled !== raw.sled || entry.seq !== raw.seq) throw new Error('mismatch')
      }
      this.#addEvidence([{ sled: raw.sled, seq: raw.seq, records: [...raw.records].sort() as [string, string] }])
    } catch {
      this.#countRejection('STORE_CORRUPT')
    }
  }

  /** The record readers see at (sled, seq): with equivocation, the smallest known version. */
  #chosenRecord(sled: SledId, seq: number): string | undefined {
    const held = this.#view.recordAt(clientIdOf(sled), seq)
    if (held === undefined) return undefined
    const versions = this.#evidence.get(`${sled}:${seq}`)
    if (versions === undefined) return held
    let min = held
    for (const v of versions) if (v < min) min = v
    return min
  }

  #sortedSledList(): SledId[] {
    if (this.#sortedSleds === null) this.#sortedSleds = [...this.#sleds.values()].sort()
    return this.#sortedSleds
  }

  #querySource() {
    return {
      sleds: () => this.#sortedSledList(),
      length: (sled: SledId) => this.length(sled),
      records: (sled: SledId, from: number, to: number) => {
        const out = this.#view.records(clientIdOf(sled), from, to)
        if (this.#evidence.size > 0) {
          for (let i = 0; i < out.length; i++) {
            if (this.#evidence.has(`${sled}:${from + i}`)) out[i] = this.#chosenRecord(sled, from + i) as string
          }
        }
        return out
      },
      isEquivocated: (sled: SledId, seq: number) => this.#evidence.has(`${sled}:${seq}`),
    }
  }
}

function hashRecords(records: readonly string[], h: Hash): Hash {
  for (const r of records) h.update(r).update('\n')
  return h
}

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
import type { Entry, EntryBody, RevocationEntry, SuccessionEntry } from '../core/entry.js'
import { assertEntryBody, assertSuccessionPlace, idOfEntryJson, type JsonValue } from '../core/entry.js'
import { joinFork, verifyFork, type Fork } from '../core/fork.js'
import { guardUpdate, type GuardOptions, type LogView } from '../core/guard.js'
import { clientIdOf, isSledId, rootNameOf, sledOfRootName, type ClientId, type SledId } from '../core/ids.js'
import {
  recordToEntry,
  runQuery,
  type Heads,
  type Query,
  type QueryResult,
  type QuerySource,
  type StoredEntry,
} from '../core/query.js'
import {
  createSigner,
  createVerifier,
  SIG_CHARS,
  type EntrySigner,
  type EntryVerifier,
  type KeyPair,
} from '../core/signing.js'
import { checkStatement } from '../core/statements.js'
import {
  chainOf,
  emptyIndex,
  endorsedSuccessors,
  indexStatement,
  MAX_CHAIN,
  isStatementRecord,
  retirements,
  type ChainLink,
  type ChainView,
  type StatementIndex,
} from '../core/succession.js'
import { checkRecordBytes, encodeRuns, encodeRunsChunked, recordWireSize, type Run } from '../core/update-codec.js'
import { sledlogError, type ErrorCode, type RejectCode, type SledlogError } from '../errors.js'
import { forkKey, type LevelStore, type StoredJson } from '../store/level-store.js'
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

/** Forks listed in {@link LogStatus.forks} (the rest are paged with {@link SledLog.forks}). */
export const STATUS_FORK_SAMPLE = 8

/** Largest page of {@link SledLog.forks}. */
export const MAX_FORK_PAGE = 1000

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
  /**
   * Admin public keys (sled ids) whose revocations retire their target (PROTOCOL.md §6.5). Every
   * node of a cluster must have the same set, or they read different `retired` flags.
   */
  readonly adminKeys?: readonly SledId[]
}

/** What an application appends: an event (the log adds sled, seq and ts). */
export interface AppendInput {
  readonly type: string
  readonly payload: unknown
  readonly id?: string
}

/** Options of {@link SledLog.appendBodies}. */
export interface AppendOptions {
  /**
   * An event whose idempotency id this sled already holds for another type or payload:
   * 'refuse' (default) rejects the batch with ENTRY_ID_CONFLICT; 'existing' answers it with the
   * entry that holds the id, whatever it says (the ingest writer, which records such an event's
   * lid as a sentinel). An exact repeat is always answered with the existing entry.
   */
  readonly idConflict?: 'refuse' | 'existing'
}

/** One fork as {@link SledLog.forks} pages them. */
export interface ForkInfo {
  readonly sled: SledId
  /** F: reads of the sled serve only seqs below it. */
  readonly seq: number
}

/** A page of {@link SledLog.forks}. */
export interface ForkPage {
  /** Forks in ascending sled order. */
  readonly forks: readonly ForkInfo[]
  /** Pass as `after` for the next page; null when this page reached the end. */
  readonly next: SledId | null
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
   * The entries of one of `runs` that readers see, as {@link SledLog.get} reads them: all of
   * them, or for a forked sled only those below its fork (a prefix of the run, possibly empty).
   * Parsed on first call and shared by every listener of this commit, so N subscribers cost
   * one parse.
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

/**
 * Forks in {@link LogStatus}: counts and a few sled ids, never records, so the status stays
 * small however many sleds equivocate. Page forks with {@link SledLog.forks}; fetch a proof with
 * {@link SledLog.forkProof}.
 */
export interface ForkStatus {
  /** Sleds known to be forked. */
  readonly sleds: number
  /** Validly signed versions received that differ from the held one (from peers or disk), since open. */
  readonly equivocations: number
  /** Of those, versions at a seq past their sled's fork: verified, then dropped. */
  readonly ignored: number
  /** Entries held past the forks (withheld from reads). */
  readonly withheld: number
  /** The fork seq of this node's own sled, or null; when set its appends are refused (SLED_FORKED). */
  readonly own: number | null
  /** The first {@link STATUS_FORK_SAMPLE} forks in sled order. */
  readonly first: readonly ForkInfo[]
}

/** Retired sleds listed in {@link SuccessionStatus.first}. */
export const STATUS_RETIRED_SAMPLE = 8

/**
 * Key succession in {@link LogStatus}: this node's own chain and counts (PROTOCOL.md §6.5); any
 * sled's chain comes from {@link SledLog.chain}.
 */
export interface SuccessionStatus {
  /** This node's own chain, walking back: the succession its sled opens with, its predecessor's, … */
  readonly chain: readonly ChainLink[]
  /** Succession records held. */
  readonly successions: number
  /** Revocation records held. */
  readonly revocations: number
  /** Sleds retired from some seq (their entries from there on read `retired: true`). */
  readonly retired: number
  /** This node's own retirement seq, or null; appends that would reach it are refused (SLED_RETIRED). */
  readonly own: number | null
  /** The first {@link STATUS_RETIRED_SAMPLE} retired sleds in sled order, with their retirement seqs. */
  readonly first: ReadonlyArray<{ readonly sled: SledId; readonly seq: number }>
}

/** Verification status of the log. */
export interface LogStatus {
  readonly sled: SledId
  /** Last seq readers see per sled (as {@link SledLog.heads}). */
  readonly heads: Heads
  /** Entries readers see (all verified on entry). */
  readonly entries: number
  readonly rejected: { readonly total: number; readonly byCode: Readonly<Partial<Record<ErrorCode, number>>> }
  /** Records received again that were already held. */
  readonly duplicates: number
  readonly forks: ForkStatus
  readonly succession: SuccessionStatus
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
  | {
      kind: 'local'
      bodies: EntryBody[]
      returnExisting: boolean
      resolve: (e: StoredEntry[]) => void
      reject: (err: unknown) => void
    }
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
  /** Fork state per forked sled: O(1) each (the proof's two records, shared with the doc when held). */
  readonly #forks = new Map<SledId, ForkState>()
  #sortedForks: SledId[] | null = []
  #equivocations = 0
  #ignoredEquivocations = 0
  readonly #forkListeners = new Set<(sled: SledId, seq: number) => void>()
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
  /** While the gate is closed: the error appends are refused with at once (none: they wait). */
  #gateRefusal: (() => Error | null) | null = null
  /** Idempotency ids of this sled's entries → seq. */
  readonly #ids = new Map<string, number>()
  /**
   * Idempotency ids of the entries this node's earlier keys vouched for (its own chain's
   * predecessors, up to each succession's lastSeq) → where; built when an id misses `#ids`,
   * dropped when the chain or those entries change. A write retried after a move to a successor
   * key (a lost disk) must find the entry the old key signed, not append the event again.
   */
  #priorIds: Map<string, { readonly client: ClientId; readonly seq: number }> | null = null
  /** The predecessors' clients `#priorIds` covers, and the last seq each covers. */
  #priorRange = new Map<number, number>()
  readonly #remoteHeadListeners = new Set<(sled: SledId, seq: number) => void>()
  /** Per client, a running SHA-256 over its first `n` records (PROTOCOL.md §8.4), caught up when asked. */
  readonly #digests = new Map<number, { hash: Hash; n: number }>()
  readonly #adminKeys: ReadonlySet<SledId>
  /** Succession and revocation records held (PROTOCOL.md §6.5). */
  readonly #statements: StatementIndex = emptyIndex()
  /** Statements applied since retirements were last computed. */
  #statementsChanged = false
  /** Retirement seq per retired sled, recomputed when statements or forks change. */
  #retired = new Map<SledId, number>()
  readonly #retireListeners = new Set<(sled: SledId, seq: number | null) => void>()

  constructor(opts: SledLogOptions) {
    installLinearMerge()
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits }
    if (this.#limits.maxRecordBytes > this.#limits.maxUpdateBytes / 2) {
      throw sledlogError(
        'CONFIG_INVALID',
        `maxRecordBytes (${this.#limits.maxRecordBytes}) ` +
          `must be at most half of maxUpdateBytes (${this.#limits.maxUpdateBytes})`,
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
    this.#adminKeys = new Set(opts.adminKeys ?? [])
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
    // Fork proofs first (they verify themselves); then what the stored updates and the earlier
    // evidence layout add to them is joined in and, when it changes a proof, written back.
    const forks = new Map<SledId, Fork>()
    for (const stored of await this.#store.forks()) {
      const f = this.#storedProof(stored, (sled) => stored.key === forkKey(sled))
      if (f !== undefined) forks.set(f.sled, joinFork(forks.get(f.sled), f))
    }
    this.#installForks(forks, false)
    const changed = new Map<SledId, Fork>()
    const loadTally = { seen: 0, ignored: 0 }
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
      for (const e of verdict.equivocations) if (this.#join(changed, e)) loadTally.ignored++
      loadTally.seen += verdict.equivocations.length
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
    // The earlier layout kept up to 1024 pairs per sled: fold them into one proof each.
    const legacy = await this.#store.legacyEvidence()
    for (const stored of legacy) {
      const f = this.#storedProof(stored, (sled) => stored.key.startsWith(`e:${sled}:`))
      if (f !== undefined) this.#join(changed, f)
    }
    if (this.#quarantineOnOpen) await this.#store.settleForks([...changed.values()], legacy.length > 0)
    this.#installForks(changed, false)
    this.#countEquivocations(loadTally)
    for (const sled of this.#forks.keys()) this.#shareProof(sled)
    this.#refreshRetirements(false)
  }

  /**
   * A stored proof, verified (both signatures, PROTOCOL.md §6.2) and filed under the right key;
   * undefined, counted as STORE_CORRUPT, when it is not.
   */
  #storedProof(stored: StoredJson, keyFits: (sled: SledId) => boolean): Fork | undefined {
    try {
      const f = verifyFork(stored.value, this.#verifier)
      if (keyFits(f.sled)) return f
    } catch {
      // counted below
    }
    this.#countRejection('STORE_CORRUPT')
    return undefined
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
   * contiguous seqs, in order. An event whose idempotency id this sled already holds (or an
   * earlier body of the batch carries) is not appended again: when it has the same type and
   * payload (the same canonical JSON) the existing entry is returned in its place; otherwise the
   * whole batch is refused with ENTRY_ID_CONFLICT (see {@link AppendOptions.idConflict}).
   * While this node's own sled is forked every append is refused with SLED_FORKED.
   */
  appendBodies(bodies: readonly EntryBody[], opts: AppendOptions = {}): Promise<StoredEntry[]> {
    try {
      if (bodies.length === 0) return Promise.resolve([])
      if (bodies.length > this.#limits.maxBatchEntries) {
        throw sledlogError('ENTRY_INVALID', `a batch holds at most ${this.#limits.maxBatchEntries} entries`)
      }
      for (const b of bodies) assertEntryBody(b)
      return this.#enqueueLocal([...bodies], opts.idConflict === 'existing')
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

  /**
   * Reads entries in (sled, seq) order; see {@link Query}. A forked sled's entries come only from
   * below its fork, and the result's `forked` names the forked sleds the page covered.
   */
  query(q: Query = {}): QueryResult {
    return runQuery(this.#querySource(), q)
  }

  /**
   * The entry at (sled, seq) if readers may see it: held, and for a forked sled below its fork.
   * Once replicas have exchanged what they hold, what it returns is the same on all of them.
   */
  get(sled: SledId, seq: number): StoredEntry | undefined {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= this.length(sled)) return undefined
    const record = this.#view.recordAt(clientIdOf(sled), seq)
    return record === undefined ? undefined : recordToEntry(record, this.#retired.get(sled))
  }

  /**
   * The retirement seq of `sled` (PROTOCOL.md §6.5): its entries from there on read `retired:
   * true`. Undefined when no succession or revocation this node holds retires it.
   */
  retiredAt(sled: SledId): number | undefined {
    return this.#retired.get(sled)
  }

  /** Every retired sled with its retirement seq, in sled order. */
  retiredSleds(): Array<{ readonly sled: SledId; readonly seq: number }> {
    return [...this.#retired].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([sled, seq]) => ({ sled, seq }))
  }

  /**
   * The chain of any sled as this node reads it: the successions walking back from it and
   * forward from it, the revocations targeting it, and its retirement seq (PROTOCOL.md §6.5).
   */
  chain(sled: SledId): ChainView {
    if (!isSledId(sled)) throw sledlogError('ENTRY_INVALID', 'sled must be a sled id (64 lowercase hex characters)')
    return chainOf(this.#statements, sled, this.#retired, this.#adminKeys, (s, seq) => seq < this.length(s))
  }

  /**
   * The succession records that present `from` (default this node's sled) as a signed successor
   * in a handshake (PROTOCOL.md §8.2): its entry 0, then its predecessor's, … while each is an
   * endorsed succession held here (at most {@link MAX_CHAIN}). Empty when it succeeds none. Of
   * another sled: what admits a peer that lost its store, and with it its own chain.
   */
  successionRecords(from: SledId = this.sled): string[] {
    const out: string[] = []
    const seen = new Set<SledId>()
    for (let sled = from; out.length < MAX_CHAIN && !seen.has(sled); ) {
      seen.add(sled)
      const link = this.#statements.successions.get(sled)
      const record = link?.endorsed === true ? this.#view.recordAt(clientIdOf(sled), 0) : undefined
      if (link === undefined || record === undefined) break
      out.push(record)
      sled = link.predecessor
    }
    return out
  }

  /**
   * Why a link of a chain a peer presents must not admit it (PROTOCOL.md §8.2), or undefined:
   * its predecessor's key endorsed another successor too (contested: a stolen key, or a rotation
   * run twice), or the successor is retired from seq 0.
   */
  chainVeto(link: ChainLink): string | undefined {
    const readable = (s: SledId, seq: number): boolean => seq < this.length(s)
    const others = endorsedSuccessors(this.#statements, link.predecessor, readable).filter((s) => s !== link.sled)
    if (others.length > 0) {
      return (
        `${link.predecessor.slice(0, 12)}…'s key endorsed another successor too (${others[0]?.slice(0, 12)}…): ` +
        'contested, so only an explicit allow-list entry admits either'
      )
    }
    if (this.#retired.get(link.sled) === 0) return `${link.sled.slice(0, 12)}… is retired from seq 0`
    return undefined
  }

  /**
   * Registers a listener told `(sled, seq)` when a sled becomes retired or its retirement seq
   * changes (`null`: no longer retired), before the commit that caused it is delivered; returns
   * the unsubscribe function.
   */
  onRetire(listener: (sled: SledId, seq: number | null) => void): () => void {
    this.#retireListeners.add(listener)
    return () => this.#retireListeners.delete(listener)
  }

  /**
   * Last seq readers see per sled, ascending by sled: for a forked sled the last below its fork.
   * A sled with nothing to read (none held, or forked at 0) is absent.
   */
  heads(): Heads {
    const out: Record<string, number> = {}
    for (const sled of this.#sortedSledList()) {
      const n = this.length(sled)
      if (n > 0) out[sled] = n - 1
    }
    return out
  }

  /** Number of a sled's entries readers see: all held, or for a forked sled those below its fork. */
  length(sled: SledId): number {
    const held = this.held(sled)
    const fork = this.#forks.get(sled)
    return fork === undefined ? held : Math.min(held, fork.fork.seq)
  }

  /** Every sled this node holds records of, ascending (forked ones included, even at F = 0). */
  sleds(): readonly SledId[] {
    return this.#sortedSledList()
  }

  /**
   * Number of a sled's records this node holds, i.e. its next seq (what replication compares),
   * including those withheld from reads past a fork.
   */
  held(sled: SledId): number {
    return this.#sleds.has(clientIdOf(sled)) ? this.#view.length(clientIdOf(sled)) : 0
  }

  /**
   * The records of `sled` this node holds at seqs [`from`, `to`), as stored (signature "."
   * JSON), withheld ones past a fork included; at most `to - from` of them, fewer only when the
   * log holds fewer. The one read of raw records that backups use: a record below
   * {@link held} never changes, so a reader that fixed the lengths first reads a consistent
   * snapshot however long it takes.
   */
  heldRecords(sled: SledId, from: number, to: number): readonly string[] {
    if (!this.#sleds.has(clientIdOf(sled))) return []
    return this.#view.records(clientIdOf(sled), Math.max(0, from), Math.min(to, this.held(sled)))
  }

  /**
   * Forked sleds in ascending sled order, `limit` (default 100, at most {@link MAX_FORK_PAGE})
   * per page, starting after the sled `after`: what a `/v1/evidence` listing serves.
   */
  forks(opts: { readonly after?: SledId; readonly limit?: number } = {}): ForkPage {
    const limit = opts.limit ?? 100
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_FORK_PAGE)
      throw sledlogError('ENTRY_INVALID', `limit must be an integer in 1..${MAX_FORK_PAGE}`)
    if (opts.after !== undefined && !isSledId(opts.after))
      throw sledlogError('ENTRY_INVALID', 'after must be a sled id (64 lowercase hex characters)')
    const sorted = this.#sortedForkList()
    let i = 0
    if (opts.after !== undefined) {
      // First sled past `after`, by binary search: pages cost O(limit + log forks).
      let hi = sorted.length
      while (i < hi) {
        const mid = (i + hi) >>> 1
        if ((sorted[mid] as SledId) <= opts.after) i = mid + 1
        else hi = mid
      }
    }
    const page = sorted.slice(i, i + limit)
    const forks = page.map((sled) => ({ sled, seq: (this.#forks.get(sled) as ForkState).fork.seq }))
    return { forks, next: i + limit < sorted.length ? (page[page.length - 1] as SledId) : null }
  }

  /**
   * The proof that `sled` is forked: `{sled, seq: F, records: [a, b]}`, the two smallest
   * distinct validly signed records known at F, ascending. Anyone can check it with the sled's
   * public key alone (PROTOCOL.md §4.3, `verifyFork`). Undefined when the sled is not forked.
   */
  forkProof(sled: SledId): Fork | undefined {
    return this.#forks.get(sled)?.fork
  }

  /**
   * Registers a listener told `(sled, F)` when a sled becomes forked or its fork moves to a lower
   * seq, before the commit that caused it is delivered; returns the unsubscribe function.
   */
  onFork(listener: (sled: SledId, seq: number) => void): () => void {
    this.#forkListeners.add(listener)
    return () => this.#forkListeners.delete(listener)
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

  /** Removes persistent metadata values atomically (a deleted consumer's cursor). */
  deleteMeta(names: readonly string[]): Promise<void> {
    if (this.#state !== 'open') return Promise.reject(sledlogError('LOG_CLOSED', `log is ${this.#state}`))
    return this.#store.deleteMeta(names)
  }

  /** The sled whose entries a Yjs client id holds here, if any. */
  sledOfClient(client: number): SledId | undefined {
    return this.#sleds.get(client)
  }

  /**
   * Holds local appends until `until` settles. Used while a node that may have lost its disk
   * proves its own head, so it cannot reuse a seq. With `refuse`, appends made meanwhile are
   * refused at once with the error it builds (a recovery may last until an operator acts: a
   * caller must hear why now, not wait unboundedly), or wait when it builds none (the hold is
   * just ending); without it they all wait, then run in order.
   */
  holdAppends(until: Promise<unknown>, refuse?: () => Error | null): void {
    const gate = until.then(
      () => undefined,
      () => undefined,
    )
    this.#gate = gate
    this.#gateRefusal = refuse ?? null
    void gate.then(() => {
      if (this.#gate !== gate) return
      this.#gate = null
      this.#gateRefusal = null
    })
  }

  /** True while appends are held (see {@link holdAppends}). */
  get appendsHeld(): boolean {
    return this.#gate !== null
  }

  /**
   * Records that `sled` has entries up to `seq` that this node lacks, so missing ranges and holes
   * are reported. Only for signed proof (the guard's gap verdict verifies the record at `seq`):
   * a state vector or digest is an unsigned claim and must never reach here.
   */
  noteRemoteHead(sled: SledId, seq: number): void {
    const known = this.#knownHeads.get(sled)
    if (known !== undefined && seq <= known) return
    this.#knownHeads.set(sled, seq)
    // Past a fork nothing is readable, so nothing there is missing for readers.
    const readable = Math.min(seq, (this.#forks.get(sled)?.fork.seq ?? Number.POSITIVE_INFINITY) - 1)
    if (readable >= this.held(sled)) for (const l of this.#remoteHeadListeners) l(sled, readable)
  }

  /**
   * Registers a listener for peers announcing a sled head past what this log holds (for a
   * forked sled, only the part below the fork).
   */
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
    const held = this.held(sled)
    let known = this.#knownHeads.get(sled) ?? -1
    if (sled === this.sled) {
      // Own entries this node wrote but no longer holds are missing too, whether or not a peer
      // has announced them yet.
      const written = this.#store.ownNext
      if (written > held) return [held, Math.max(written - 1, known)]
    }
    // A forked sled's entries from its fork on are withheld from readers, not missing.
    const fork = this.#forks.get(sled)
    if (fork !== undefined) known = Math.min(known, fork.fork.seq - 1)
    return known >= held ? [held, known] : null
  }

  /** The verification status: counts, never records, so it stays small (see {@link ForkStatus}). */
  status(): LogStatus {
    const heads = this.heads()
    let entries = 0
    for (const h of Object.values(heads)) entries += h + 1
    let withheld = 0
    for (const [sled] of this.#forks) withheld += this.held(sled) - this.length(sled)
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
      forks: {
        sleds: this.#forks.size,
        equivocations: this.#equivocations,
        ignored: this.#ignoredEquivocations,
        withheld,
        own: this.#forks.get(this.sled)?.fork.seq ?? null,
        first: this.forks({ limit: STATUS_FORK_SAMPLE }).forks,
      },
      succession: this.#successionStatus(),
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

  #successionStatus(): SuccessionStatus {
    let revocations = 0
    for (const list of this.#statements.revocations.values()) revocations += list.length
    const retired = this.retiredSleds()
    return {
      chain: this.chain(this.sled).predecessors,
      successions: this.#statements.successions.size,
      revocations,
      retired: retired.length,
      own: this.#retired.get(this.sled) ?? null,
      first: retired.slice(0, STATUS_RETIRED_SAMPLE),
    }
  }

  /**
   * Per-client digest (PROTOCOL.md §8.4): SHA-256 over the records below min(length, F), one
   * newline after each (neither signatures nor JSON text contain one), and for a forked sled
   * combined with its fork state (F and the proof). Replicas with equal state vectors but
   * different records or fork states (an equivocation one of them has not seen) differ here; at
   * quiescence equal digests mean equal reads. Running hashes catch up on the records added
   * since the last call, so a call costs O(new records + sleds).
   */
  digests(): Array<{ client: number; length: number; hash: Uint8Array }> {
    const out: Array<{ client: number; length: number; hash: Uint8Array }> = []
    for (const [client, sled] of this.#sleds) {
      const length = this.#view.length(client)
      const fork = this.#forks.get(sled)
      const upTo = fork === undefined ? length : Math.min(length, fork.fork.seq)
      let d = this.#digests.get(client)
      if (d === undefined || d.n > upTo) {
        // First use (not while loading: hashing every record is a third of the open time), or
        // a fork moved below what was hashed.
        d = { hash: createHash('sha256'), n: 0 }
        this.#digests.set(client, d)
      }
      while (d.n < upTo) {
        const to = Math.min(upTo, d.n + 4096)
        for (const r of this.#view.records(client, d.n, to)) d.hash.update(r).update('\n')
        d.n = to
      }
      const base = d.hash.copy().digest()
      const hash = fork === undefined ? base : createHash('sha256').update(base).update(fork.proofHash).digest()
      out.push({ client, length, hash: new Uint8Array(hash) })
    }
    return out
  }

  /** The Yjs state vector (per-client next clock), v1 encoding, as sync step 1 sends it. */
  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.#doc)
  }

  /**
   * Canonical updates holding everything this log has past `stateVector`, in chunks of about
   * `maxBytes` (so initial sync never needs one giant frame), followed by the fork proofs in
   * the range: all of {@link updateStream} at once.
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
   * entries committed while an answer is being sent go out in it too. Runs come first, then,
   * for every forked sled whose fork seq F lies in the range the answer covered, the two proof
   * records at F, one single-record update each (PROTOCOL.md §8.3): the peer holds the slot by
   * then, so its guard dedupes the version it holds and takes the other as an equivocation,
   * and the fork state spreads with two records per forked sled, however many versions exist.
   * `next()` returns null once the peer would hold everything this log holds.
   */
  updateStream(stateVector: ReadonlyMap<number, number>, maxBytes: number): UpdateStream {
    const from = new Map(stateVector)
    const sent = new Map(stateVector)
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
    // Forks are walked once per answer with a live iterator (a fork found meanwhile is still
    // visited; one moved lower is visited with its new seq if not passed yet).
    let forks: Iterator<ForkState> | null = null
    let second: Uint8Array | null = null
    const nextProof = (): Uint8Array | null => {
      if (second !== null) {
        const u = second
        second = null
        return u
      }
      forks ??= this.#forks.values()
      for (let it = forks.next(); it.done !== true; it = forks.next()) {
        const { fork, client } = it.value
        if (fork.seq < (from.get(client) ?? 0) || fork.seq >= (sent.get(client) ?? 0)) continue
        const [a, b] = fork.records.map((r) =>
          encodeRuns([{ client, clock: fork.seq, rootName: rootNameOf(fork.sled), records: [r] }]),
        )
        second = b as Uint8Array
        return a as Uint8Array
      }
      return null
    }
    return {
      next: () => nextRuns() ?? nextProof(),
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

  #enqueueLocal(bodies: EntryBody[], returnExisting: boolean): Promise<StoredEntry[]> {
    if (this.#gate !== null) {
      const refusal = this.#gateRefusal?.() ?? null
      if (refusal !== null) return Promise.reject(refusal)
      return this.#gate.then(() => this.#enqueueLocal(bodies, returnExisting))
    }
    if (this.#state !== 'open')
      return Promise.reject(
        sledlogError(this.#state === 'new' ? 'LOG_NOT_OPEN' : 'LOG_CLOSED', `log is ${this.#state}`),
      )
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind: 'local', bodies, returnExisting, resolve, reject })
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
    const forkChanges = new Map<SledId, Fork>()
    const tally = { seen: 0, ignored: 0 }
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
      for (const e of verdict.equivocations) if (this.#join(forkChanges, e)) tally.ignored++
      tally.seen += verdict.equivocations.length
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
    const local = this.#stageLocal(jobs, view, forkChanges.get(this.sled) ?? this.#forks.get(this.sled)?.fork)
    if (local.run !== undefined)
      staged.push({ update: encodeRuns([local.run]), runs: [local.run], local: true, origin: undefined })
    if (staged.length > 0 || forkChanges.size > 0) {
      try {
        await this.#store.commit({
          updates: staged.flatMap((s) =>
            s.update.length <= this.#storeChunkBytes ? [s.update] : encodeRunsChunked(s.runs, this.#storeChunkBytes),
          ),
          forks: [...forkChanges.values()],
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
    // Forks first: listeners hear of a fork before the commit that carried it, whose entries
    // past the fork readers no longer see.
    this.#installForks(forkChanges, true)
    this.#countEquivocations(tally)
    // A fork withholds what lies past it, statements included: retirements may change.
    if (forkChanges.size > 0) {
      this.#statementsChanged = true
      this.#priorIds = null
    }
    for (const s of staged) this.#apply(s)
    if (this.#statementsChanged) this.#refreshRetirements(true)
    for (const sled of forkChanges.keys()) this.#shareProof(sled)
    for (const [job, result] of remoteResults) job.resolve(result)
    for (const { job, entries } of local.accepted) job.resolve(entries)
  }

  /**
   * Signs the local jobs' entries with the next seqs; rejects jobs that cannot be appended (all
   * of them while this node's own sled is forked, `ownFork`).
   */
  #stageLocal(
    jobs: Job[],
    view: LogView & { stage(run: Run): void },
    ownFork: Fork | undefined,
  ): { run: Run | undefined; accepted: Array<{ job: Job & { kind: 'local' }; entries: StoredEntry[] }> } {
    const accepted: Array<{ job: Job & { kind: 'local' }; entries: StoredEntry[] }> = []
    const records: string[] = []
    const stagedIds = new Map<string, number>()
    const start = view.length(this.#client)
    let seq = start
    const ownRetired = this.#retired.get(this.sled)
    for (const job of jobs) {
      if (job.kind !== 'local') continue
      if (ownFork !== undefined) {
        job.reject(
          sledlogError(
            'SLED_FORKED',
            `this node's sled signed two versions of its seq ${ownFork.seq} (history re-signed after a lost ` +
              'disk, or its key in use elsewhere): readers everywhere stop below it, and appends are refused; ' +
              'the sled needs a new key (key succession: sledlog recover --new-key --data DIR, node stopped)',
            { seq: ownFork.seq },
          ),
        )
        continue
      }
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
        // Records of this job's entries: existing ones (idempotency id already held or staged)
        // or new.
        const out: string[] = []
        const signed: string[] = []
        const jobIds = new Map<string, number>()
        for (const body of job.bodies) {
          const id = body.kind === 'event' ? body.id : undefined
          if (id !== undefined) {
            const existing = this.#ids.get(id) ?? stagedIds.get(id) ?? jobIds.get(id)
            const prior = existing === undefined ? this.#priorIdsIndex().get(id) : undefined
            if (prior !== undefined) {
              const record = view.recordAt(prior.client, prior.seq) as string
              if (!job.returnExisting) assertSameEvent(record, body, prior.seq)
              out.push(record)
              continue
            }
            if (existing !== undefined) {
              const record = (
                existing < start
                  ? view.recordAt(this.#client, existing)
                  : (records[existing - start] ?? signed[existing - seq])
              ) as string
              if (!job.returnExisting) assertSameEvent(record, body, existing)
              out.push(record)
              continue
            }
            jobIds.set(id, seq + signed.length)
          }
          const entry = { sled: this.sled, seq: seq + signed.length, ts: this.#now(), ...body } as Entry
          if (ownRetired !== undefined && entry.seq >= ownRetired) {
            throw sledlogError(
              'SLED_RETIRED',
              `this node's sled is retired from seq ${ownRetired} (a succession or revocation it holds): ` +
                `entry ${entry.seq} would be flagged retired everywhere; appends are refused. ` +
                'Move the node to a new key: sledlog rotate-key --data DIR (node stopped)',
              { seq: ownRetired },
            )
          }
          // Never sign what verifiers would refuse: a succession out of place, a statement that
          // does not verify (PROTOCOL.md §4.3).
          if (entry.kind === 'succession') assertSuccessionPlace(entry)
          checkStatement(entry, this.#verifier)
          const record = this.#signer.signEntry(entry)
          // The verifiers' rule exactly (PROTOCOL.md §3.4): what this writes, every peer accepts.
          checkRecordBytes(Buffer.byteLength(record, 'utf8'), this.#limits.maxRecordBytes)
          signed.push(record)
          out.push(record)
        }
        for (const r of signed) records.push(r)
        for (const [id, at] of jobIds) stagedIds.set(id, at)
        seq += signed.length
        accepted.push({ job, entries: out.map((r) => recordToEntry(r)) })
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
      else if (run.clock <= (this.#priorRange.get(run.client) ?? -1)) this.#priorIds = null
      if (!this.#sleds.has(run.client)) {
        const sled = sledOfRootName(run.rootName) as SledId
        this.#sleds.set(run.client, sled)
        this.#sortedSleds = null
      }
      this.#indexStatements(run.records)
    }
    if (this.#state !== 'open') return
    // Listeners hear of a retirement before the commit that carried it, whose entries carry the flag.
    if (this.#statementsChanged) this.#refreshRetirements(true)
    const parsed = new Map<Run, StoredEntry[]>()
    const entries = (run: Run): StoredEntry[] => {
      let e = parsed.get(run)
      if (e === undefined) {
        // The run holds what was just applied; readers see the part below the sled's fork.
        const sled = this.#sleds.get(run.client) as SledId
        const readable = this.length(sled) - run.clock
        const retiredFrom = this.#retired.get(sled)
        e = run.records.slice(0, Math.max(0, readable)).map((r) => recordToEntry(r, retiredFrom))
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

  /** Indexes the succession and revocation records among `records` (PROTOCOL.md §6.5). */
  #indexStatements(records: readonly string[]): void {
    for (const r of records) {
      if (!isStatementRecord(r)) continue
      const e = JSON.parse(r.slice(SIG_CHARS + 1)) as SuccessionEntry | RevocationEntry
      if (indexStatement(this.#statements, e)) {
        this.#statementsChanged = true
        this.#priorIds = null
      }
    }
  }

  /**
   * Recomputes every sled's retirement seq from the statements readers see, and (when `notify`)
   * tells the retire listeners of each sled whose seq changed (null: no longer retired, when a
   * fork withdrew the records that retired it).
   */
  #refreshRetirements(notify: boolean): void {
    this.#statementsChanged = false
    const next = retirements(this.#statements, this.#adminKeys, (sled, seq) => seq < this.length(sled))
    const prev = this.#retired
    this.#retired = next
    if (!notify) return
    const changed: Array<[SledId, number | null]> = []
    for (const [sled, seq] of next) if (prev.get(sled) !== seq) changed.push([sled, seq])
    for (const sled of prev.keys()) if (!next.has(sled)) changed.push([sled, null])
    for (const [sled, seq] of changed) {
      for (const l of this.#retireListeners) {
        try {
          l(sled, seq)
        } catch {
          // A listener's bug must not break the commit pipeline.
        }
      }
    }
  }

  /** `#priorIds`, built anew when stale: one pass over the predecessors' vouched entries. */
  #priorIdsIndex(): ReadonlyMap<string, { readonly client: ClientId; readonly seq: number }> {
    if (this.#priorIds !== null) return this.#priorIds
    const ids = new Map<string, { client: ClientId; seq: number }>()
    const range = new Map<number, number>()
    const seen = new Set<SledId>([this.sled])
    // The nearest predecessor first: an id found there wins over an older key's.
    for (let link = this.#statements.successions.get(this.sled); link !== undefined; ) {
      const pred = link.predecessor
      if (seen.has(pred) || seen.size > MAX_CHAIN) break
      seen.add(pred)
      const client = clientIdOf(pred)
      range.set(client, link.lastSeq)
      const last = Math.min(link.lastSeq, this.length(pred) - 1)
      for (let seq = 0; seq <= last; seq++) {
        const record = this.#view.recordAt(client, seq)
        const id = record === undefined ? undefined : idOfEntryJson(record.slice(SIG_CHARS + 1))
        if (id !== undefined && !ids.has(id)) ids.set(id, { client, seq })
      }
      link = this.#statements.successions.get(pred)
    }
    this.#priorIds = ids
    this.#priorRange = range
    return ids
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
   * Joins an equivocation (or a proof) into `changes`, the fork states this flush or load changes
   * over the current ones ({@link joinFork}). Returns true when it lies past the sled's fork: read
   * nowhere, so it changes nothing (verified, then dropped).
   */
  #join(changes: Map<SledId, Fork>, seen: Fork): boolean {
    const cur = changes.get(seen.sled) ?? this.#forks.get(seen.sled)?.fork
    const next = joinFork(cur, seen)
    if (next !== cur) changes.set(seen.sled, next)
    return cur !== undefined && seen.seq > cur.seq
  }

  /** Counts equivocations received, once what they changed is durable (status reads both at once). */
  #countEquivocations(tally: { seen: number; ignored: number }): void {
    this.#equivocations += tally.seen
    this.#ignoredEquivocations += tally.ignored
  }

  /** Makes fork states current (after they are durable) and tells the fork listeners. */
  #installForks(changes: ReadonlyMap<SledId, Fork>, notify: boolean): void {
    for (const [sled, fork] of changes) {
      if (!this.#forks.has(sled)) this.#sortedForks = null
      const proofHash = createHash('sha256')
        .update(`${fork.seq}\n`)
        .update(fork.records[0])
        .update('\n')
        .update(fork.records[1])
        .update('\n')
        .digest()
      this.#forks.set(sled, { fork, client: clientIdOf(sled), proofHash })
      if (!notify) continue
      for (const l of this.#forkListeners) {
        try {
          l(sled, fork.seq)
        } catch {
          // A listener's bug must not break the commit pipeline.
        }
      }
    }
  }

  /**
   * Lets a proof share the doc's string for the version the doc holds at the fork seq (the same
   * text decoded twice is two copies in memory): a fork then costs at most one record beyond
   * what the doc holds anyway.
   */
  #shareProof(sled: SledId): void {
    const state = this.#forks.get(sled)
    if (state === undefined) return
    const { fork, client } = state
    const held = this.#view.recordAt(client, fork.seq)
    const [a, b] = fork.records
    if (held !== a && held !== b) return
    const records: [string, string] = held === a ? [held, b] : [a, held as string]
    this.#forks.set(sled, { ...state, fork: { sled, seq: fork.seq, records } })
  }

  #sortedSledList(): SledId[] {
    if (this.#sortedSleds === null) this.#sortedSleds = [...this.#sleds.values()].sort()
    return this.#sortedSleds
  }

  #sortedForkList(): SledId[] {
    if (this.#sortedForks === null) this.#sortedForks = [...this.#forks.keys()].sort()
    return this.#sortedForks
  }

  #querySource(): QuerySource {
    return {
      sleds: () => this.#sortedSledList(),
      length: (sled) => this.length(sled),
      records: (sled, from, to) => this.#view.records(clientIdOf(sled), from, to),
      forkedAt: (sled) => this.#forks.get(sled)?.fork.seq,
      retiredAt: (sled) => this.#retired.get(sled),
    }
  }
}

/** A forked sled's state: its fork, its client, and the digest of its proof (PROTOCOL.md §8.4). */
interface ForkState {
  readonly fork: Fork
  readonly client: number
  /** SHA-256(decimal F ‖ "\n" ‖ a ‖ "\n" ‖ b ‖ "\n"), cached: digests are asked for every 15 s per link. */
  readonly proofHash: Uint8Array
}

/**
 * Refuses an event that reuses an idempotency id `record` (entry `seq`) already holds with another
 * type or payload: an id names one event, and answering with the old entry would tell the
 * caller its new event was stored.
 */
function assertSameEvent(record: string, body: EntryBody, seq: number): void {
  const held = JSON.parse(record.slice(SIG_CHARS + 1)) as { kind: string; type?: string; payload?: unknown }
  if (
    body.kind === 'event' &&
    held.kind === 'event' &&
    held.type === body.type &&
    JSON.stringify(held.payload) === JSON.stringify(body.payload)
  )
    return
  const id = body.kind === 'event' ? body.id : undefined
  throw sledlogError(
    'ENTRY_ID_CONFLICT',
    `idempotency id ${JSON.stringify(id)} already names entry ${seq}, with another type or payload`,
    { id, seq },
  )
}

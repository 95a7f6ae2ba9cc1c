/**
 * Durable storage of a log's Yjs updates in LevelDB (docs/ARCHITECTURE.md "Persistence").
 *
 * Layout (all keys UTF-8):
 * - `m:format`            "1"
 * - `m:own-next`          decimal: how many entries this node has ever written (its next seq)
 * - `s:<8 hex>`           snapshot chunk i: MAC ‖ canonical update (chunks only ever appended)
 * - `u:<16 hex>`          update n since the snapshot: MAC ‖ canonical update
 * - `f:<sled>`            the sled's fork proof (PROTOCOL.md §6.2), one key per forked sled:
 *                         JSON `{sled, seq, records: [a, b]}`; not MAC-protected (it verifies itself)
 * - `e:<sled>:…`          equivocation evidence of the earlier layout (one key per pair of
 *                         versions): read once on open, folded into `f:` keys and removed
 * - `q:<key>@<13 digits>` a snapshot chunk or update the guard refused on open, moved out of
 *                         reach of compaction with its value unchanged (the MAC still covers the
 *                         original key): kept, and retried on every open
 *
 * Every update and snapshot value starts with a 16-byte HMAC-SHA256 over key and value, keyed by
 * a secret derived from the node's seed: a record whose MAC verifies was written by this node
 * after its entries were verified, so loading it needs no signature checks. Random corruption
 * fails the MAC and the record goes through the full guard instead.
 */
import { createHmac } from 'node:crypto'
import type { AbstractLevel } from 'abstract-level'
import { Level } from 'level'
import type { Fork } from '../core/fork.js'
import { sledlogError } from '../errors.js'

const MAC_BYTES = 16
const FORMAT = '1'

/** One stored update as read back on load. */
export interface StoredUpdate {
  /** The update bytes (MAC removed). */
  readonly update: Uint8Array
  /** True when the MAC verified: the bytes are exactly what this node wrote. */
  readonly trusted: boolean
  /** The LevelDB key, for error messages. */
  readonly key: string
  /** True for a record in quarantine (refused on an earlier open). */
  readonly quarantined: boolean
}

/** What a commit writes in one atomic batch. */
export interface CommitBatch {
  /** Canonical updates, in apply order. */
  readonly updates: readonly Uint8Array[]
  /** New value of `m:own-next`, when local entries are part of the batch. */
  readonly ownNext?: number
  /** Fork proofs that are new or changed (one `f:` key per sled, replaced). */
  readonly forks?: readonly Fork[]
}

/** A stored value as read back, parsed as JSON (undefined when it is not JSON). */
export interface StoredJson {
  readonly key: string
  readonly value: unknown
}

/**
 * The key-value database a store runs on: LevelDB on disk (`level`) in a node, or any other
 * abstract-level database with string keys and byte values (`memory-level` in tests that run
 * many nodes in one process).
 */
// biome-ignore lint/suspicious/noExplicitAny: the database's own key/value types for its options are not used
export type StoreDatabase = AbstractLevel<any, string, Uint8Array>

/** Options of a {@link LevelStore}. */
export type LevelStoreOptions = StoreLocation & {
  /** Secret for record MACs (derive it with {@link deriveMacKey}). */
  readonly macKey: Uint8Array
  /** fsync every batch (survives power loss, ~2.8k batches/s) rather than only process death. */
  readonly sync?: boolean
}

/** Where a store keeps its data: a LevelDB directory, or a database the caller opened. */
export type StoreLocation =
  | { /** Directory of the LevelDB database. */ readonly path: string }
  | {
      /**
       * A database (closed, or open) with `utf8` keys and `view` values; the store opens and
       * closes it, and a closed one can be handed to a new store to reopen the same data.
       */
      readonly db: StoreDatabase
    }

/** Derives the record MAC key from a node's seed. */
export function deriveMacKey(seed: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', seed).update('sledlog/store-mac/v1').digest())
}

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0')
const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8')
const text = (v: Uint8Array | undefined): string | undefined =>
  v === undefined ? undefined : Buffer.from(v).toString('utf8')

type Op = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }

/** LevelDB-backed update log with snapshots. Lifecycle: `open()` → use → `close()`. */
export class LevelStore {
  readonly #db: StoreDatabase
  readonly #macKey: Uint8Array
  readonly #sync: boolean
  #nextUpdate = 0
  #firstUpdate = 0
  #snapshotChunks = 0
  #snapshotBytes = 0
  #updateBytes = 0
  #ownNext = 0
  #created = false
  /** First update key not covered by the snapshot chunks (what compaction may remove below). */
  #covered = 0
  #quarantined = 0

  constructor(opts: LevelStoreOptions) {
    this.#db =
      'db' in opts ? opts.db : new Level<string, Uint8Array>(opts.path, { keyEncoding: 'utf8', valueEncoding: 'view' })
    this.#macKey = opts.macKey
    this.#sync = opts.sync ?? false
  }

  /** Opens (creating if needed) the database and reads its counters. */
  async open(): Promise<void> {
    await this.#db.open()
    const format = text(await this.#db.get('m:format'))
    this.#created = format === undefined
    if (format === undefined) await this.#db.put('m:format', utf8(FORMAT))
    else if (format !== FORMAT) throw sledlogError('STORE_CORRUPT', `unknown store format ${JSON.stringify(format)}`)
    const own = text(await this.#db.get('m:own-next'))
    this.#ownNext = own === undefined ? 0 : Number(own)
    if (!Number.isSafeInteger(this.#ownNext) || this.#ownNext < 0)
      throw sledlogError('STORE_CORRUPT', 'm:own-next is not a count')
    for await (const key of this.#db.keys({ gte: 's:', lt: 's;', reverse: true, limit: 1 })) {
      this.#snapshotChunks = parseInt(key.slice(2), 16) + 1
    }
    for await (const key of this.#db.keys({ gte: 'u:', lt: 'u;', limit: 1 }))
      this.#firstUpdate = parseInt(key.slice(2), 16)
    this.#covered = this.#firstUpdate
    for await (const key of this.#db.keys({ gte: 'u:', lt: 'u;', reverse: true, limit: 1 })) {
      this.#nextUpdate = parseInt(key.slice(2), 16) + 1
    }
  }

  /** Closes the database. */
  async close(): Promise<void> {
    await this.#db.close()
  }

  /** True when `open()` found no database and created it (a new node, or a lost disk). */
  get created(): boolean {
    return this.#created
  }

  /** Entries this node has durably written, i.e. its next seq, as of the last commit. */
  get ownNext(): number {
    return this.#ownNext
  }

  /** Bytes of updates written since the last snapshot (only counted for this process). */
  get updateBytes(): number {
    return this.#updateBytes
  }

  /** Bytes of the last snapshot written or read. */
  get snapshotBytes(): number {
    return this.#snapshotBytes
  }

  /** Number of update records since the snapshot. */
  get updateCount(): number {
    return this.#nextUpdate - this.#firstUpdate
  }

  /** Records in quarantine, as of the last open. */
  get quarantined(): number {
    return this.#quarantined
  }

  /** Writes `ops` in one atomic batch; a failure is STORE_WRITE_FAILED, saying `what` failed. */
  async #write(ops: Op[], what: string): Promise<void> {
    try {
      // `sync` is classic-level's (LevelDB) option; other databases ignore it.
      await this.#db.batch(ops, { sync: this.#sync } as object)
    } catch (err) {
      throw sledlogError('STORE_WRITE_FAILED', `${what}: ${(err as Error).message}`, undefined, err)
    }
  }

  #mac(key: string, value: Uint8Array): Buffer {
    return createHmac('sha256', this.#macKey).update(key).update('\0').update(value).digest().subarray(0, MAC_BYTES)
  }

  #seal(key: string, update: Uint8Array): Uint8Array {
    const out = new Uint8Array(MAC_BYTES + update.length)
    out.set(this.#mac(key, update), 0)
    out.set(update, MAC_BYTES)
    return out
  }

  #unseal(key: string, value: Uint8Array): StoredUpdate {
    const quarantined = key.startsWith('q:')
    const macKey = quarantined ? key.slice(2, key.lastIndexOf('@')) : key
    const update = value.subarray(MAC_BYTES)
    const trusted = value.length > MAC_BYTES && this.#mac(macKey, update).equals(value.subarray(0, MAC_BYTES))
    return { update, trusted, key, quarantined }
  }

  /** Yields the snapshot chunks, then the updates since, then quarantined records, in apply order. */
  async *updates(): AsyncGenerator<StoredUpdate> {
    for await (const [key, value] of this.#db.iterator({ gte: 's:', lt: 's;' })) {
      this.#snapshotBytes += value.length
      yield this.#unseal(key, value)
    }
    for await (const [key, value] of this.#db.iterator({ gte: 'u:', lt: 'u;' })) {
      this.#updateBytes += value.length
      yield this.#unseal(key, value)
    }
    this.#quarantined = 0
    for await (const [key, value] of this.#db.iterator({ gte: 'q:', lt: 'q;' })) {
      this.#quarantined++
      yield this.#unseal(key, value)
    }
  }

  /**
   * After a load: moves the records the guard `refused` into quarantine, so compaction (which
   * removes every update it covers) cannot delete entries that only wait for a missing
   * predecessor; and turns quarantined records that `restored` (they applied this time, as
   * the canonical bytes of what was new in them, or nothing when all of it was already held)
   * back into ordinary updates. One atomic batch.
   */
  async settleLoad(
    refused: readonly string[],
    restored: ReadonlyArray<{ key: string; update: Uint8Array | undefined }>,
  ): Promise<void> {
    const ops: Op[] = []
    const stamp = String(Date.now()).padStart(13, '0')
    let moved = 0
    for (const key of refused) {
      const value = await this.#db.get(key)
      if (value === undefined) continue
      ops.push({ type: 'put', key: `q:${key}@${stamp}`, value }, { type: 'del', key })
      moved++
    }
    let n = this.#nextUpdate
    for (const r of restored) {
      ops.push({ type: 'del', key: r.key })
      if (r.update === undefined) continue
      const key = 'u:' + hex(n++, 16)
      ops.push({ type: 'put', key, value: this.#seal(key, r.update) })
    }
    if (ops.length === 0) return
    await this.#write(ops, 'quarantine write failed')
    this.#nextUpdate = n
    this.#quarantined += moved - restored.length
  }

  /**
   * Re-seals every stored update whose MAC verifies under `oldMacKey` (a key this store was
   * written with before a key rotation) with this store's MAC key, in batches of about 16 MiB.
   * Values already sealed with this key, and values that verify under neither (damaged: the
   * load guards them fully anyway), are left as they are. Safe to repeat after a crash: a
   * half-done pass left every value under one key or the other. Returns how many it re-sealed.
   */
  async remac(oldMacKey: Uint8Array): Promise<number> {
    const previous = new LevelStore({ db: this.#db, macKey: oldMacKey })
    let ops: Op[] = []
    let bytes = 0
    let n = 0
    for (const prefix of ['s:', 'u:', 'q:']) {
      for await (const [key, value] of this.#db.iterator({ gte: prefix, lt: prefix.slice(0, -1) + ';' })) {
        if (this.#unseal(key, value).trusted || !previous.#unseal(key, value).trusted) continue
        const macKey = key.startsWith('q:') ? key.slice(2, key.lastIndexOf('@')) : key
        ops.push({ type: 'put', key, value: this.#seal(macKey, value.subarray(MAC_BYTES)) })
        bytes += value.length
        n++
        if (bytes >= 16 * 1024 * 1024) {
          await this.#write(ops, 're-sealing stored updates failed')
          ops = []
          bytes = 0
        }
      }
    }
    if (ops.length > 0) await this.#write(ops, 're-sealing stored updates failed')
    return n
  }

  /** Reads a small metadata value (`m:` keys) as text. */
  async getMeta(name: string): Promise<string | undefined> {
    return text(await this.#db.get('m:' + name))
  }

  /** Writes small metadata values (`m:` keys) in one atomic batch. */
  async putMeta(values: Readonly<Record<string, string>>): Promise<void> {
    const ops: Op[] = Object.entries(values).map(([k, v]) => ({ type: 'put', key: 'm:' + k, value: utf8(v) }))
    await this.#write(ops, 'metadata write failed')
  }

  /** Removes metadata values (`m:` keys) in one atomic batch; absent names are fine. */
  async deleteMeta(names: readonly string[]): Promise<void> {
    await this.#write(
      names.map((k) => ({ type: 'del', key: 'm:' + k })),
      'metadata delete failed',
    )
  }

  /** Reads all metadata values whose name starts with `prefix`. */
  async metaWithPrefix(prefix: string): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    for await (const [key, value] of this.#db.iterator({ gte: 'm:' + prefix, lt: 'm:' + prefix + '\uffff' })) {
      out.set(key.slice(2), text(value) as string)
    }
    return out
  }

  /** Reads every stored fork proof (`f:` keys). They verify themselves: the log checks them. */
  forks(): Promise<StoredJson[]> {
    return this.#readJson('f:')
  }

  /** Reads the equivocation evidence of the earlier layout (`e:` keys), for migration. */
  legacyEvidence(): Promise<StoredJson[]> {
    return this.#readJson('e:')
  }

  async #readJson(prefix: string): Promise<StoredJson[]> {
    const out: StoredJson[] = []
    for await (const [key, value] of this.#db.iterator({ gte: prefix, lt: prefix.slice(0, -1) + ';' })) {
      let parsed: unknown
      try {
        parsed = JSON.parse(text(value) as string)
      } catch {
        parsed = undefined
      }
      out.push({ key, value: parsed })
    }
    return out
  }

  /**
   * After a load: writes the fork proofs that loading changed (folded from the earlier layout,
   * or found in stored updates) and removes every `e:` key of the earlier layout, in one atomic
   * batch. A crash before it leaves the old keys, which the next open folds again.
   */
  async settleForks(forks: readonly Fork[], dropLegacy: boolean): Promise<void> {
    const ops: Op[] = forks.map((f) => forkOp(f))
    if (dropLegacy) for await (const key of this.#db.keys({ gte: 'e:', lt: 'e;' })) ops.push({ type: 'del', key })
    if (ops.length > 0) await this.#write(ops, 'fork proof write failed')
  }

  /**
   * Writes a commit in one atomic LevelDB batch. Resolves once LevelDB has written it to its
   * log (with `sync`, once fsynced); rejects with STORE_WRITE_FAILED and then nothing of it is
   * stored.
   */
  async commit(batch: CommitBatch): Promise<void> {
    const ops: Op[] = []
    let n = this.#nextUpdate
    let bytes = 0
    for (const u of batch.updates) {
      const key = 'u:' + hex(n++, 16)
      ops.push({ type: 'put', key, value: this.#seal(key, u) })
      bytes += u.length
    }
    if (batch.ownNext !== undefined) ops.push({ type: 'put', key: 'm:own-next', value: utf8(String(batch.ownNext)) })
    for (const f of batch.forks ?? []) ops.push(forkOp(f))
    if (ops.length === 0) return
    await this.#write(ops, 'LevelDB batch failed')
    this.#nextUpdate = n
    this.#updateBytes += bytes
    if (batch.ownNext !== undefined) this.#ownNext = batch.ownNext
  }

  /**
   * Compaction, step 1: appends `chunks` (canonical updates holding exactly the records of
   * every update written since the last compaction) after the existing snapshot chunks, in one
   * atomic batch. Records never change, so a compaction only rewrites what is new: total work
   * stays linear in the log size. Rejects with STORE_WRITE_FAILED and then nothing is written.
   */
  async appendSnapshot(chunks: readonly Uint8Array[]): Promise<void> {
    const ops: Op[] = []
    let bytes = 0
    chunks.forEach((c, i) => {
      const key = 's:' + hex(this.#snapshotChunks + i, 8)
      ops.push({ type: 'put', key, value: this.#seal(key, c) })
      bytes += c.length
    })
    if (ops.length > 0) await this.#write(ops, 'compaction failed')
    this.#snapshotChunks += chunks.length
    this.#snapshotBytes += bytes
    this.#updateBytes = 0
    this.#covered = this.#nextUpdate
  }

  /**
   * Compaction, step 2: removes the updates the snapshot chunks cover. Safe to retry; a crash
   * or failure before it only leaves updates that re-apply as duplicates.
   */
  async dropCovered(): Promise<void> {
    if (this.#firstUpdate >= this.#covered) return
    try {
      await this.#db.clear({ gte: 'u:', lt: 'u:' + hex(this.#covered, 16) })
    } catch (err) {
      throw sledlogError(
        'STORE_WRITE_FAILED',
        `removing compacted updates failed: ${(err as Error).message}`,
        undefined,
        err,
      )
    }
    this.#firstUpdate = this.#covered
  }
}

/** The key of a sled's fork proof. */
export function forkKey(sled: string): string {
  return `f:${sled}`
}

/** The write of a fork proof: its one key, replaced. */
function forkOp(f: Fork): Op {
  return {
    type: 'put',
    key: forkKey(f.sled),
    value: utf8(JSON.stringify({ sled: f.sled, seq: f.seq, records: [f.records[0], f.records[1]] })),
  }
}

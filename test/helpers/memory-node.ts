/**
 * A replicating node without sockets or disk, for protocol tests: a real {@link SledLog} on a
 * `memory-level` database (closing and reopening the same database is a restart) and the
 * replicator's wiring of sessions to the log ({@link relayLog}: commits and fork proofs), over
 * whatever {@link PeerLink}s the test hands it.
 *
 * It counts the log work it started (appends, updates handed to the log by its sessions), so a
 * test can wait until the node is idle instead of sleeping.
 */
import { MemoryLevel } from 'memory-level'
import type { StoredEntry } from '../../src/core/query.js'
import type { KeyPair } from '../../src/core/signing.js'
import { SledLog, type AppendInput, type SledLogOptions } from '../../src/log/sled-log.js'
import { deriveMacKey, LevelStore } from '../../src/store/level-store.js'
import { PeerSession, type PeerLink, type SessionLimits, type SessionStats } from '../../src/sync/peer-session.js'
import { relayLog } from '../../src/sync/relay.js'

/** Options of a {@link MemoryNode}. */
export interface MemoryNodeOptions {
  readonly keys: KeyPair
  /** Short name for messages ("n0", "twin 2"…). */
  readonly name: string
  readonly limits?: Partial<SessionLimits>
  /** Log options besides keys, store and clock. */
  readonly log?: Omit<SledLogOptions, 'keys' | 'store' | 'now'>
  /** Entry timestamps start here and grow by one per entry, so runs replay byte for byte. */
  readonly firstTs?: number
}

/** Timers the tests drive themselves: never let a session's own clock act during a run. */
const NEVER_MS = 1_000_000_000

/** A node over memory. Lifecycle: `open()` → use (`restart()`…) → `close()`. */
export class MemoryNode {
  readonly #o: MemoryNodeOptions
  readonly #db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' })
  #log: SledLog | null = null
  /** The log as sessions see it: the same object with its `applyUpdate` calls counted. */
  #counted: SledLog | null = null
  #unsubscribe: (() => void) | null = null
  #busy = 0
  #ts: number
  /** Open sessions, in the order they were created (the relay plan's "oldest link first"). */
  readonly #sessions = new Set<PeerSession>()
  /** Stats of sessions that ended, for checks that span the whole run. */
  readonly ended: SessionStats[] = []

  constructor(opts: MemoryNodeOptions) {
    this.#o = opts
    this.#ts = opts.firstTs ?? 1_700_000_000_000
  }

  get name(): string {
    return this.#o.name
  }

  get keys(): KeyPair {
    return this.#o.keys
  }

  /** The open log. */
  get log(): SledLog {
    if (this.#log === null) throw new Error(`${this.name} is not open`)
    return this.#log
  }

  /** True while log work this node started (appends, peer updates) is unfinished. */
  get busy(): boolean {
    return this.#busy > 0
  }

  /** The open sessions. */
  get sessions(): readonly PeerSession[] {
    return [...this.#sessions]
  }

  /** Opens the log on this node's database (created empty the first time). */
  async open(): Promise<void> {
    const log = new SledLog({
      ...this.#o.log,
      keys: this.#o.keys,
      store: new LevelStore({ db: this.#db, macKey: deriveMacKey(this.#o.keys.seed) }),
      now: () => this.#ts++,
    })
    await log.open()
    this.#log = log
    this.#counted = this.#countingView(log)
    this.#unsubscribe = relayLog(log, this.#sessions)
  }

  /** Closes the log (pending work is finished first) and reopens it: a process restart. */
  async restart(): Promise<void> {
    await this.close()
    await this.open()
  }

  /** Stops every session and closes the log. */
  async close(): Promise<void> {
    for (const s of this.#sessions) this.endSession(s, 'node closing')
    this.#unsubscribe?.()
    this.#unsubscribe = null
    const log = this.#log
    this.#log = null
    this.#counted = null
    await log?.close()
  }

  /** Appends events in one batch; the promise is counted as work in progress until it settles. */
  append(inputs: readonly AppendInput[]): Promise<StoredEntry[]> {
    return this.#track(this.log.appendBatch(inputs))
  }

  /** A session of this node over `link`; it relays this node's commits until {@link endSession}. */
  session(role: 'client' | 'server', link: PeerLink, label: string): PeerSession {
    if (this.#counted === null) throw new Error(`${this.name} is not open`)
    const s = new PeerSession({
      log: this.#counted,
      keys: this.#o.keys,
      auth: {},
      role,
      link,
      label,
      limits: { handshakeMs: NEVER_MS, resyncMs: NEVER_MS, ...this.#o.limits },
    })
    this.#sessions.add(s)
    return s
  }

  /** Stops a session (if it has not stopped itself) and keeps its final stats. */
  endSession(s: PeerSession, reason: string): void {
    if (!this.#sessions.delete(s)) return
    s.stop(reason)
    this.ended.push(s.stats())
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#busy++
    const done = (): void => {
      this.#busy--
    }
    p.then(done, done)
    return p
  }

  /**
   * The log with `applyUpdate` counted (sessions hand it every peer update). A proxy, not a
   * subclass: SledLog's private fields need the real object as `this`, so methods are bound.
   */
  #countingView(log: SledLog): SledLog {
    return new Proxy(log, {
      get: (target, key) => {
        if (key === 'applyUpdate') {
          return (update: Uint8Array, origin?: unknown) => this.#track(target.applyUpdate(update, origin))
        }
        const v: unknown = Reflect.get(target, key)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
  }
}

/**
 * Replication of a node's log: the inbound sync endpoint, one dialer per configured peer, relay
 * of every commit to every other link, and the recovery gate that holds local appends until a
 * node that may have lost its disk has its own entries back from peers.
 */
import type { Server } from 'node:http'
import type { KeyPair } from '../core/signing.js'
import type { SledLog } from '../log/sled-log.js'
import { PeerDialer } from './dialer.js'
import type { AuthConfig } from './handshake.js'
import { DEFAULT_SESSION_LIMITS, type PeerSession, type SessionLimits, type SessionStats } from './peer-session.js'
import { SyncServer } from './server.js'

/** Options of a {@link Replicator}. */
export interface ReplicatorOptions {
  readonly log: SledLog
  readonly keys: KeyPair
  /** Peer base URLs to dial (`ws://host:port`). */
  readonly peers: readonly string[]
  readonly auth: AuthConfig
  readonly limits?: Partial<SessionLimits>
  /** Longest reconnect backoff. */
  readonly maxBackoffMs?: number
  /** Ping interval of inbound links. */
  readonly pingMs?: number
  /**
   * How long a node with no entries of its own waits to sync with its peers before it appends
   * anyway (a new node, or one that lost its disk and has no reachable peer).
   */
  readonly recoveryTimeoutMs?: number
}

/** State of one configured or inbound link, for status. */
export interface PeerStatus extends Partial<SessionStats> {
  readonly url: string | null
  readonly connected: boolean
}

/** Replicates a log with peers. Lifecycle: `start(httpServer)` → `stop()`. */
export class Replicator {
  readonly #o: ReplicatorOptions
  readonly #server: SyncServer
  readonly #dialers: PeerDialer[]
  readonly #sessions = new Set<PeerSession>()
  readonly #syncedPeers = new Set<string>()
  #unsubscribe: (() => void) | null = null
  #recovered: Promise<'synced' | 'timeout' | 'not-needed'> = Promise.resolve('not-needed')
  #recoveryTimer: NodeJS.Timeout | null = null
  #resolveRecovery: ((v: 'synced' | 'timeout') => void) | null = null

  constructor(opts: ReplicatorOptions) {
    this.#o = opts
    const limits = { ...DEFAULT_SESSION_LIMITS, ...opts.limits }
    const maxPayload = limits.maxUpdateBytes + 64
    const onSession = (s: PeerSession, event: 'open' | 'close'): void => {
      if (event === 'open') this.#sessions.add(s)
      else this.#sessions.delete(s)
    }
    const session = {
      keys: opts.keys,
      auth: opts.auth,
      limits,
      onSynced: (s: PeerSession) => this.#onSynced(s),
    }
    this.#server = new SyncServer({
      session: { ...session, log: opts.log },
      maxPayload,
      onSession,
      ...(opts.pingMs === undefined ? {} : { pingMs: opts.pingMs }),
    })
    this.#dialers = opts.peers.map(
      (url) =>
        new PeerDialer({
          url,
          log: opts.log,
          session,
          maxPayload,
          onSession,
          ...(opts.maxBackoffMs === undefined ? {} : { maxBackoffMs: opts.maxBackoffMs }),
        }),
    )
  }

  /**
   * Resolves when appends may proceed: at once for a node that holds its own entries; for a
   * node with none, once every configured peer has synced with it, or after the recovery
   * timeout.
   */
  get recovered(): Promise<'synced' | 'timeout' | 'not-needed'> {
    return this.#recovered
  }

  /** Starts serving on `http` and dialing peers. */
  start(http: Server): void {
    const log = this.#o.log
    this.#unsubscribe = log.onCommit((event) => {
      for (const s of this.#sessions) s.relay(event)
    })
    if (log.length(log.sled) === 0 && this.#dialers.length > 0) {
      // No entries of our own: a new node, or one whose disk was lost. Appending now could
      // reuse seqs that peers hold, so wait until they have sent us what they have.
      this.#recovered = new Promise((resolve) => {
        this.#resolveRecovery = resolve
        this.#recoveryTimer = setTimeout(() => resolve('timeout'), this.#o.recoveryTimeoutMs ?? 10_000)
      })
      log.holdAppends(this.#recovered)
    }
    this.#server.attach(http)
    for (const d of this.#dialers) d.start()
  }

  /** Closes every link. */
  async stop(): Promise<void> {
    this.#unsubscribe?.()
    if (this.#recoveryTimer !== null) clearTimeout(this.#recoveryTimer)
    this.#resolveRecovery?.('timeout')
    for (const d of this.#dialers) d.stop()
    await this.#server.stop()
  }

  /** Every configured peer and every inbound link. */
  status(): PeerStatus[] {
    const out: PeerStatus[] = []
    for (const d of this.#dialers) {
      const s = d.session
      out.push(s === null ? { url: d.url, connected: false } : { url: d.url, connected: s.ready, ...s.stats() })
    }
    for (const s of this.#server.sessions()) out.push({ url: null, connected: s.ready, ...s.stats() })
    return out
  }

  #onSynced(s: PeerSession): void {
    const dialer = this.#dialers.find((d) => d.session === s)
    if (dialer !== undefined) this.#syncedPeers.add(dialer.url)
    if (this.#resolveRecovery !== null && this.#dialers.every((d) => this.#syncedPeers.has(d.url))) {
      if (this.#recoveryTimer !== null) clearTimeout(this.#recoveryTimer)
      this.#resolveRecovery('synced')
      this.#resolveRecovery = null
    }
  }
}

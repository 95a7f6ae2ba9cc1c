/**
 * Replication of a node's log: the inbound sync endpoint, one dialer per configured peer, relay
 * of every commit to every other link, what a recovering node's gate (recovery.ts) learns from
 * its links (which sled each dialed peer is, each peer's holds receipt), and what configured peers
 * proved they hold of this node's sled (peer-holds.ts: what `acks=N` waits on).
 */
import type { Server } from 'node:http'
import type { SledId } from '../core/ids.js'
import type { KeyPair } from '../core/signing.js'
import type { SledLog } from '../log/sled-log.js'
import type { HandshakeCaps } from './admission.js'
import { RewindAllowance } from './answer-plan.js'
import { AnswerScheduler, type AnswerSchedulerOptions, type AnswerSchedulerStats } from './answer-scheduler.js'
import { PeerDialer, type DialError, type Refusal } from './dialer.js'
import type { AuthConfig } from './handshake.js'
import { SyncLedger, type LedgerSnapshot, type SyncLogger } from './ledger.js'
import { DEFAULT_SESSION_LIMITS, type PeerSession, type SessionLimits, type SessionStats } from './peer-session.js'
import { configuredPeerCount, countsForAcks, PeerHolds, type AckPeer, type AckPeersConfig } from './peer-holds.js'
import { loadPeerTrust, type PeerTlsConfig } from './peer-tls.js'
import type { RecoveryGate, RecoveryOutcome } from './recovery.js'
import { relayLog } from './relay.js'
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
  /** Wait before dialing a peer again after it refused this node (44xx); default 60 s. */
  readonly refusedRetryMs?: number
  /** Ping interval of inbound links. */
  readonly pingMs?: number
  /**
   * The recovery gate of a node that may have lost entries it signed (its owner starts and
   * stops it): told which sled each dialed peer is and every verified holds receipt.
   */
  readonly recovery?: RecoveryGate
  /** Trust for `wss://` peers (CA bundle, certificate pins). */
  readonly peerTls?: PeerTlsConfig
  /** Most authenticated inbound links (default 256; see admission.ts for who gets evicted). */
  readonly maxConnections?: number
  /** Handshake slots per remote address and in all (default 8 and 64). */
  readonly maxHandshaking?: HandshakeCaps
  /** Turns among step-1 answers (answer-scheduler.ts). */
  readonly answers?: AnswerSchedulerOptions
  /** Where kicks are warned about (the node's logger). */
  readonly logger?: SyncLogger
  /** Peers tracked one by one in the ledger (default 256). */
  readonly ledgerPeers?: number
}

/** How often a held-back step 1 checks whether the answer it waits for still progresses. */
const ASK_CHECK_MS = 1000
/** Fewer new entries than this in {@link ASK_CHECK_MS} count as a stalled answer. */
const ASK_STALL_ENTRIES = 100

export type { RecoveryOutcome } from './recovery.js'

/** State of one configured or inbound link, for status. */
export interface PeerStatus extends Partial<SessionStats> {
  readonly url: string | null
  readonly connected: boolean
  /**
   * A configured peer that refused this node (44xx close): its code and reason, and when the
   * dialer tries again (ms since the epoch).
   */
  readonly refused?: Refusal
  /** A configured peer: why its last dial or link failed, and when. */
  readonly lastError?: DialError
}

/** Replication-wide counters that outlive links, for status and metrics. */
export interface ReplicationStats {
  /** Every rejection and kick, per peer (ledger.ts). */
  readonly ledger: LedgerSnapshot
  /** Step-1 answers streaming and waiting. */
  readonly answers: AnswerSchedulerStats
  /** Connections in the handshake now. */
  readonly handshaking: number
}

/** Replicates a log with peers. Lifecycle: `start(httpServer)` → `stop()`. */
export class Replicator {
  readonly #o: ReplicatorOptions
  readonly #server: SyncServer
  readonly #dialers: PeerDialer[]
  readonly #sessions = new Set<PeerSession>()
  readonly #ledger: SyncLedger
  readonly #answers: AnswerScheduler
  /** Sleds this node reached by dialing: preferred at the inbound link cap, counted for acks. */
  readonly #dialedSleds = new Set<SledId>()
  /** Who counts for acknowledgements, and what each counted peer proved it holds of our sled. */
  readonly #ackPeers: AckPeersConfig
  readonly #holds: PeerHolds
  #unsubscribe: (() => void) | null = null
  /** Links whose first step 1 waits for the answer another link is streaming to us. */
  readonly #deferredAsks = new Set<PeerSession>()
  #askTimer: NodeJS.Timeout | null = null
  /** Entries the awaited links had received at the last check of their progress. */
  #askProgress = 0

  constructor(opts: ReplicatorOptions) {
    this.#o = opts
    const limits = { ...DEFAULT_SESSION_LIMITS, ...opts.limits }
    const maxPayload = limits.maxUpdateBytes + 64
    const onSession = (s: PeerSession, event: 'open' | 'close'): void => {
      if (event === 'open') this.#sessions.add(s)
      else {
        this.#sessions.delete(s)
        this.#deferredAsks.delete(s)
        this.#holds.linkClosed(s)
        if (!this.#awaitingOtherThan(null)) this.#releaseAsks()
      }
    }
    this.#ledger = new SyncLedger({
      log: opts.log,
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      ...(opts.ledgerPeers === undefined ? {} : { maxPeers: opts.ledgerPeers }),
    })
    this.#answers = new AnswerScheduler(opts.answers)
    this.#ackPeers = { self: opts.keys.sled, peers: opts.peers, ...(opts.auth.allow ? { allow: opts.auth.allow } : {}) }
    this.#holds = new PeerHolds((sled) => countsForAcks(this.#ackPeers, this.#dialedSleds, sled))
    const rewinds = new RewindAllowance()
    const trust = loadPeerTrust(opts.peerTls)
    const session = {
      keys: opts.keys,
      auth: opts.auth,
      limits,
      ledger: this.#ledger,
      answers: this.#answers,
      mayRewind: (sled: SledId, client: number) => rewinds.take(sled, client),
      onReady: (s: PeerSession) => {
        if (s.remoteSled === null) return
        const dialer = this.#dialers.find((d) => d.session === s)
        if (dialer === undefined) {
          // A peer that dialed in is back; a recovering node counts a dialed peer's receipt
          // only once its own link to that URL says which sled it is: do not wait out backoffs.
          if (opts.recovery?.waiting === true) for (const d of this.#dialers) if (d.session === null) d.redialNow()
        } else {
          this.#dialedSleds.add(s.remoteSled)
          // Its receipts are noted as the sled it stands for (a successor admitted by its chain
          // as an allow-listed sled): the URL must name the same sled, or it never answers.
          opts.recovery?.noteSled(dialer.url, s.standsFor ?? s.remoteSled)
        }
        // A successor admitted by its chain counts as the allow-listed sled it succeeds.
        this.#holds.linkReady(s, s.standsFor ?? s.remoteSled)
      },
      onSynced: () => this.#releaseAsks(),
      onHolds: (s: PeerSession, length: number) => {
        const sled = s.standsFor
        if (sled === null) return
        this.#holds.linkHolds(s, sled, length)
        opts.recovery?.noteReceipt(sled, length)
      },
      mayAsk: (s: PeerSession) => this.#mayAsk(s),
    }
    this.#server = new SyncServer({
      session: { ...session, log: opts.log },
      maxPayload,
      onSession,
      ledger: this.#ledger,
      preferred: (sled) => opts.auth.allow?.has(sled) === true || this.#dialedSleds.has(sled),
      ...(opts.pingMs === undefined ? {} : { pingMs: opts.pingMs }),
      ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }),
      ...(opts.maxHandshaking === undefined ? {} : { maxHandshaking: opts.maxHandshaking }),
    })
    this.#dialers = opts.peers.map(
      (url) =>
        new PeerDialer({
          url,
          log: opts.log,
          session,
          maxPayload,
          onSession,
          trust,
          ledger: this.#ledger,
          ...(opts.pingMs === undefined ? {} : { pingMs: opts.pingMs }),
          ...(opts.maxBackoffMs === undefined ? {} : { maxBackoffMs: opts.maxBackoffMs }),
          ...(opts.refusedRetryMs === undefined ? {} : { refusedRetryMs: opts.refusedRetryMs }),
        }),
    )
  }

  /**
   * Resolves when appends may proceed: at once ('not-needed') without a recovery gate, else when
   * the gate ends ('proven', 'accepted', or 'stopped' when its owner stopped it first).
   */
  get recovered(): Promise<RecoveryOutcome> {
    return this.#o.recovery?.done ?? Promise.resolve('not-needed')
  }

  /** Starts serving on `http` and dialing peers. */
  start(http: Server): void {
    const log = this.#o.log
    this.#unsubscribe = relayLog(log, this.#sessions)
    void this.#ledger.open()
    this.#server.attach(http)
    for (const d of this.#dialers) d.start()
  }

  /** Closes every link. */
  async stop(): Promise<void> {
    if (this.#askTimer !== null) clearInterval(this.#askTimer)
    this.#askTimer = null
    this.#unsubscribe?.()
    this.#holds.stop()
    for (const d of this.#dialers) d.stop()
    await this.#server.stop()
    this.#answers.stop()
    await this.#ledger.close()
  }

  /**
   * What configured peers proved (holds receipts) they durably hold of this node's sled, and the
   * writes waiting for it: what `acks=N` waits on. Only configured peers count (peer-holds.ts).
   */
  get holds(): PeerHolds {
    return this.#holds
  }

  /** How many peers are configured: the most acknowledgements a write may ask for. */
  get configuredPeers(): number {
    return configuredPeerCount(this.#ackPeers)
  }

  /** Every configured peer known by sled (allow-listed, or reached by dialing) and what it holds of us. */
  ackPeers(): AckPeer[] {
    return this.#holds.peers(this.#ackPeers.allow ?? this.#dialedSleds)
  }

  /** Counters that outlive links: the ledger of rejections and kicks, answers, handshakes. */
  stats(): ReplicationStats {
    return { ledger: this.#ledger.snapshot(), answers: this.#answers.stats(), handshaking: this.#server.handshaking() }
  }

  /** Every configured peer and every inbound link. */
  status(): PeerStatus[] {
    const out: PeerStatus[] = []
    for (const d of this.#dialers) {
      const s = d.session ?? d.lastSession
      const refused = d.session === null && d.refused !== null ? { refused: d.refused } : {}
      const failed = d.lastError === null ? {} : { lastError: d.lastError }
      out.push(
        s === null
          ? { url: d.url, connected: false, ...refused, ...failed }
          : { url: d.url, ...s.stats(), connected: d.session !== null && s.ready, ...refused, ...failed },
      )
    }
    for (const s of this.#server.sessions()) out.push({ url: null, connected: s.ready, ...s.stats() })
    return out
  }

  /**
   * Catch up from one link at a time: every peer answers a step 1 with everything we lack, so
   * asking all of them at once (in a mesh where both sides dial, two links per peer) makes each
   * missing entry arrive once per link. A link that becomes ready while another link's answer
   * is still coming waits; it asks once that answer is complete, the link closes, or the answer
   * stalls (under {@link ASK_STALL_ENTRIES} new entries in {@link ASK_CHECK_MS}), and its answer
   * is then only what the first peer did not have.
   */
  #mayAsk(s: PeerSession): boolean {
    if (!this.#awaitingOtherThan(s)) return true
    this.#deferredAsks.add(s)
    if (this.#askTimer === null) {
      this.#askProgress = this.#awaitedProgress()
      this.#askTimer = setInterval(() => {
        const now = this.#awaitedProgress()
        const stalled = now - this.#askProgress < ASK_STALL_ENTRIES
        this.#askProgress = now
        if (stalled) this.#releaseAsks()
      }, ASK_CHECK_MS)
    }
    return false
  }

  /** True while a link other than `s` waits for the answer to its step 1. */
  #awaitingOtherThan(s: PeerSession | null): boolean {
    for (const o of this.#sessions) if (o !== s && o.awaitingAnswer) return true
    return false
  }

  #awaitedProgress(): number {
    let n = 0
    for (const o of this.#sessions) if (o.awaitingAnswer) n += o.stats().entriesReceived
    return n
  }

  #releaseAsks(): void {
    if (this.#askTimer !== null) clearInterval(this.#askTimer)
    this.#askTimer = null
    const waiting = [...this.#deferredAsks]
    this.#deferredAsks.clear()
    for (const s of waiting) s.ask()
  }
}

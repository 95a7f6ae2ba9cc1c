/**
 * One authenticated replication link with a peer, whichever side dialed (docs/PROTOCOL.md §8).
 *
 * The session runs the handshake, then the y-protocols exchange: each side sends step 1 (its
 * state vector); the other answers with chunked updates ending in a step 2; live commits are
 * relayed as updates. Every update goes through the log's guard. Violations are counted per
 * code and the link is closed after `maxViolations`. Reading pauses while too many of the peer's
 * updates wait in the log's pipeline, so a flood cannot grow memory without bound.
 */
import { clientIdOf, publicKeyOf, rootNameOf, type SledId } from '../core/ids.js'
import { decodeStateVector, encodeRunsChunked, encodeRuns, encodeStateVector } from '../core/update-codec.js'
import { SIG_CHARS, type KeyPair } from '../core/signing.js'
import { isSledlogError, type ErrorCode } from '../errors.js'
import type { ApplyResult, CommitEvent, SledLog, UpdateStream } from '../log/sled-log.js'
import { leastClaim, planAnswer } from './answer-plan.js'
import { AnswerScheduler, type AnswerJob, type PumpResult } from './answer-scheduler.js'
import { CLOSE } from './close-codes.js'
import { clientStart, handshakeStep, serverStart, type HandshakeState } from './handshake-flow.js'
import type { AuthConfig } from './handshake.js'
import { linkReceipts, receiptLink, type LinkReceipts } from './holds.js'
import type { LedgerPeer, SyncLedger } from './ledger.js'
import {
  decodeMessage,
  encodeDenied,
  encodeDigest,
  encodeHolds,
  encodeStep1,
  encodeStep2,
  encodeUpdate,
  type WireMessage,
} from './messages.js'

export { CLOSE } from './close-codes.js'

/** What a session needs of its transport. */
export interface PeerLink {
  send(msg: Uint8Array): void
  /**
   * Closes with a close frame; `lingerMs` is how long the peer may take to answer it before the
   * socket is destroyed.
   */
  close(code: number, reason: string, lingerMs?: number): void
  /** Bytes queued for sending. */
  bufferedAmount(): number
  /** Stops reading from the peer (backpressure). */
  pause(): void
  resume(): void
}

/** Session tuning. */
export interface SessionLimits {
  /** Rejected updates and protocol errors tolerated before closing the link. */
  readonly maxViolations: number
  /** Target size of sync chunks and relayed updates. */
  readonly chunkBytes: number
  /** Largest update accepted from this peer. */
  readonly maxUpdateBytes: number
  /** Stop relaying live updates while more than this many bytes are queued to the peer. */
  readonly highWaterBytes: number
  /**
   * Most bytes of a step-1 answer queued to the peer at once (capped by `highWaterBytes`).
   * Smaller than the relay limit: a peer catching up verifies ~4 MB/s, and whatever is queued
   * when it tells us it got those entries over another link is sent for nothing.
   */
  readonly answerBufferBytes: number
  /** Updates of this peer waiting in the log before reading pauses. */
  readonly maxInflight: number
  /** Send step 1 this often (anti-entropy and keep-alive). */
  readonly resyncMs: number
  /** Close the link if the handshake does not finish in this time. */
  readonly handshakeMs: number
  /**
   * Close an authenticated link that sent no message for this long (4510). Peers send step 1
   * every `resyncMs`, so a link silent for three periods is dead or a stranger holding a slot.
   */
  readonly idleMs: number
  /**
   * Close the link (4511) when our step 1 is unanswered and nothing of the answer arrived for
   * this long: a peer that reads but never answers would hold back catch-up for good.
   */
  readonly answerTimeoutMs: number
  /**
   * Least time between two step 1s planned on a link; those in between are merged (least claim
   * per client) and planned together once it has passed. Planning and answering a step 1 costs
   * O(sleds held) whatever it claims, so a flood of 4-byte asks must not buy one plan each.
   */
  readonly step1EveryMs: number
}

/** Defaults: chunks of 128 KiB (~500 entries, ~40 ms to verify). */
export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxViolations: 3,
  chunkBytes: 128 * 1024,
  maxUpdateBytes: 1024 * 1024,
  highWaterBytes: 8 * 1024 * 1024,
  answerBufferBytes: 1024 * 1024,
  maxInflight: 8,
  resyncMs: 15_000,
  handshakeMs: 10_000,
  idleMs: 45_000,
  answerTimeoutMs: 60_000,
  step1EveryMs: 250,
}

/** The succession chain a peer presented in its handshake (PROTOCOL.md §8.2). */
export interface PresentedSuccession {
  /** The records, nearest first (empty: none). */
  readonly chain: readonly string[]
  /** The allow-listed sled the chain admitted the peer as a signed successor of. */
  readonly via?: SledId
}

/** A refusal of an authenticated peer by the server's link policy. */
export interface LinkRefusal {
  readonly code: number
  readonly reason: string
}

/** Options of a {@link PeerSession}. */
export interface PeerSessionOptions {
  readonly log: SledLog
  readonly keys: KeyPair
  readonly auth: AuthConfig
  /** 'server' accepted the connection, 'client' dialed it. */
  readonly role: 'server' | 'client'
  readonly link: PeerLink
  /** Human label of the peer (address or URL). */
  readonly label: string
  /** Who the peer is before it authenticates (its remote address, or the URL dialed). */
  readonly address?: string
  readonly limits?: Partial<SessionLimits>
  /** Called once the handshake succeeded. */
  readonly onReady?: (s: PeerSession) => void
  /** Called each time the peer finished answering our step 1 (we hold all it had). */
  readonly onSynced?: (s: PeerSession) => void
  /**
   * Called when the peer proves (a verified receipt, holds.ts) that it durably holds more of
   * this node's own sled: `length` entries from seq 0.
   */
  readonly onHolds?: (s: PeerSession, length: number) => void
  /**
   * Asked once the handshake succeeded: false holds our first step 1 back until {@link
   * PeerSession.ask} (the replicator catches up from one link at a time, so two peers do not
   * both stream the same entries to us).
   */
  readonly mayAsk?: (s: PeerSession) => boolean
  /**
   * Server side: whether an authenticated peer gets its link (the link cap); a refusal closes
   * it before the handshake's ok. Default: every peer. `succession` is the chain the peer
   * presented and, when the allow-list admitted it by that chain, the listed sled it succeeds.
   */
  readonly admit?: (s: PeerSession, sled: SledId, succession: PresentedSuccession) => LinkRefusal | null
  /** Takes turns among the node's answers; default: one of the session's own. */
  readonly answers?: AnswerScheduler
  /**
   * Whether `sled` may have entries of `client` resent that a link already sent it (a rewind,
   * see answer-plan.ts). Default: always.
   */
  readonly mayRewind?: (sled: SledId, client: number) => boolean
  /** Where rejections and kicks are counted for good. */
  readonly ledger?: SyncLedger
}

/** Counters and state of a session, for status and metrics. */
export interface SessionStats {
  readonly label: string
  readonly role: 'server' | 'client'
  readonly state: 'handshake' | 'ready' | 'closed'
  readonly sled: SledId | null
  readonly synced: boolean
  readonly connectedAt: number
  readonly violations: number
  readonly rejected: Readonly<Partial<Record<ErrorCode, number>>>
  readonly entriesReceived: number
  readonly messagesSent: number
  readonly liveUpdatesDropped: number
  /** Entries the peer asked for again that this link had sent it, and were not resent. */
  readonly entriesCoalesced: number
  /** Step 1s that came within `step1EveryMs` of the last one planned and were merged into the next. */
  readonly asksMerged: number
  /** Entries of this node's own sled the peer proved (signed receipt) it durably holds; null: none yet. */
  readonly holdsOurs: number | null
  /** Entries we hold that the peer's last state vector did not: how far behind it is. */
  readonly peerLag: number
  readonly closeReason: string | null
  /** The close code this node sent, or null. */
  readonly closeCode: number | null
}

/**
 * Least time between two receipts sent, and between two verified, on a link: a receipt costs a
 * signature (~50 µs) each way, and only the latest matters, so at most one per period is signed
 * and a flood of them costs one verification per period.
 */
const RECEIPT_EVERY_MS = 5

/** Least time between two digest comparisons on a link, ms (at most half the resync period). */
const DIGEST_EVERY_MS = 1000

/** Rejection codes that do not count against a peer. */
const NOT_A_VIOLATION = new Set<string>(['UPDATE_GAP', 'STORE_WRITE_FAILED', 'LOG_CLOSED'])

/** The answer being sent to the peer's step 1, paced by the send buffer. */
interface Answer {
  readonly stream: UpdateStream
  pending: Uint8Array | null
  /** Clients whose honored rewind arrived mid-answer: answered again from here once done. */
  readonly followUp: Map<number, number>
}

/** A replication link. Lifecycle: `start()` → `receive()`… → `stop()`. */
export class PeerSession {
  readonly #o: PeerSessionOptions
  readonly #limits: SessionLimits
  readonly #answers: AnswerScheduler
  readonly #ownsAnswers: boolean
  #state: 'handshake' | 'ready' | 'closed' = 'handshake'
  #hs: HandshakeState
  #remote: SledId | null = null
  /** The allow-listed sled the peer was admitted as a successor of (its chain), if any. */
  #via: SledId | null = null
  /**
   * Receipts on this link, bound to its finished handshake; keys checked and imported once per
   * link, not once per receipt.
   */
  #receipts: LinkReceipts | null = null
  /** The length of the peer's sled our last receipt stated; -1 before the first. */
  #ourReceipt = -1
  #ourReceiptAt = Number.NEGATIVE_INFINITY
  /** A receipt is due once the period allows (its timer is pending). */
  #ourReceiptDue = false
  /** The longest verified receipt of the peer (entries of our sled it holds); null: none yet. */
  #theirReceipt: number | null = null
  /** The peer's latest receipt waiting for its check's timer (only the latest is verified). */
  #receiptPending: { length: number; signature: Uint8Array } | null = null
  #receiptCheckedAt = Number.NEGATIVE_INFINITY
  /** The sled a refused peer proved (itself, or one off the allow-list), for the ledger. */
  #proven: SledId | null = null
  #synced = false
  readonly #connectedAt = Date.now()
  #violations = 0
  readonly #rejected = new Map<ErrorCode, number>()
  #entriesReceived = 0
  #messagesSent = 0
  #dropped = 0
  #coalesced = 0
  #asksMerged = 0
  /** Step 1s waiting for their turn's timer (see `step1EveryMs`), merged; null when none waits. */
  #askPending: Map<number, number> | null = null
  /** When the last step 1 was planned. */
  #askPlannedAt = Number.NEGATIVE_INFINITY
  #inflight = 0
  #paused = false
  /** The peer's last state vector: a hint, shown as lag, never trusted. */
  #remoteSv: Map<number, number> | null = null
  /**
   * Per client, the prefix this link knows the peer holds: claimed by it, sent by it, or sent to
   * it on this link (contiguously). A step 1 asking for less is a rewind (see answer-plan.ts).
   */
  readonly #held = new Map<number, number>()
  #lastGapResync = 0
  /** Our step 1 went out and its step 2 has not come back yet. */
  #awaiting = false
  /** When the answer we await last made progress (our ask, or an update of it). */
  #answerProgressAt = 0
  #lastMessageAt = Date.now()
  /** The first step 1 is held back until {@link ask} (see {@link PeerSessionOptions.mayAsk}). */
  #askDeferred = false
  #applyQueue: Array<{ update: Uint8Array; isStep2: boolean }> = []
  #answer: Answer | null = null
  readonly #job: AnswerJob
  readonly #refetchedAt = new Map<number, number>()
  /** When the last digest was compared: comparing costs O(sleds held), a digest only its bytes. */
  #digestAt = Number.NEGATIVE_INFINITY
  /** Per forked sled, the proof this link carried (see {@link offerFork}). */
  readonly #forksOffered = new Map<SledId, string>()
  #closeReason: string | null = null
  #closeCode: number | null = null
  /** Pending timers; each removes itself when it fires (a link lives for days: 5,760 resyncs a day). */
  readonly #timers = new Set<NodeJS.Timeout>()

  constructor(opts: PeerSessionOptions) {
    this.#o = opts
    this.#limits = { ...DEFAULT_SESSION_LIMITS, ...opts.limits }
    this.#ownsAnswers = opts.answers === undefined
    this.#answers = opts.answers ?? new AnswerScheduler()
    this.#hs = clientStart()
    const session = this
    this.#job = {
      get key() {
        return session.#remote ?? ''
      },
      pump: (budget) => this.#pumpAnswer(budget),
    }
  }

  /** The authenticated peer's sled id, once known. */
  get remoteSled(): SledId | null {
    return this.#remote
  }

  /**
   * Whom the peer counts as for this node's policies (acknowledgements, recovery quorum): the
   * allow-listed sled it proved, by its succession chain, that it succeeds; else itself. A node
   * that moved to a successor key stays the configured peer it was. Null before the handshake.
   */
  get standsFor(): SledId | null {
    return this.#via ?? this.#remote
  }

  /** True once the handshake succeeded and until the session stops. */
  get ready(): boolean {
    return this.#state === 'ready'
  }

  /** True while a step 1 of the peer waits for its turn to be planned (see `step1EveryMs`). */
  get askWaiting(): boolean {
    return this.#askPending !== null
  }

  /** True once the session stopped (its socket may still be closing). */
  get closed(): boolean {
    return this.#state === 'closed'
  }

  /** Who the peer is, for the ledger: its sled once proven, else its address. */
  get ledgerPeer(): LedgerPeer {
    const sled = this.#remote ?? this.#proven
    if (sled !== null) return { kind: 'sled', id: sled }
    return { kind: 'address', id: this.#o.address ?? this.#o.label }
  }

  /** Starts the handshake (the server speaks first). */
  start(): void {
    this.#later(() => {
      if (this.#state === 'handshake') this.#close(CLOSE.HANDSHAKE_TIMEOUT, 'handshake timed out')
    }, this.#limits.handshakeMs)
    if (this.#o.role === 'server') {
      const step = serverStart(this.#o.keys)
      this.#hs = step.state
      for (const m of step.send) this.#o.link.send(m)
    }
  }

  /** Stops timers; the transport is closed by its owner (or by {@link PeerSession} on error). */
  stop(reason = 'stopped'): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#closeReason ??= reason
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    this.#askPending = null
    this.#receiptPending = null
    this.#answers.cancel(this.#job)
    if (this.#ownsAnswers) this.#answers.stop()
    // Updates the peer sent but the log has not taken yet die with the link.
    this.#applyQueue = []
    this.#answer = null
  }

  /**
   * Closes the link from this side (a kick: counted in the ledger and warned about). `lingerMs`:
   * how long the peer may take to answer the close frame (default 1 s; 0 for a stranger whose
   * slot another connection needs now).
   */
  close(code: number, reason: string, lingerMs?: number): void {
    this.#close(code, reason, lingerMs)
  }

  /**
   * Records a close the transport made on its own (ws closes with 1009 when a message exceeds
   * its limit): counted in the ledger as a kick.
   */
  noteTransportClose(code: number, reason: string): void {
    if (this.#closeCode !== null) return
    this.#closeCode = code
    this.#closeReason = reason
    this.#o.ledger?.kick(this.ledgerPeer, code, reason, this.#o.label)
  }

  /** Handles one message from the peer. Never throws. */
  receive(buf: Uint8Array): void {
    if (this.#state === 'closed') return
    this.#lastMessageAt = Date.now()
    let msg: WireMessage
    try {
      msg = decodeMessage(buf)
    } catch (err) {
      this.#violation(isSledlogError(err) ? err.code : 'PEER_PROTOCOL', (err as Error).message)
      return
    }
    if (this.#state === 'handshake') {
      this.#handshake(msg)
      return
    }
    switch (msg.t) {
      case 'step1':
        this.#answerStep1(msg.stateVector)
        return
      case 'step2':
      case 'update':
        this.#applyFromPeer(msg.update, msg.t === 'step2')
        return
      case 'digest':
        this.#compareDigests(msg.digests)
        return
      case 'holds':
        this.#receiveReceipt(msg.length, msg.signature)
        return
      case 'awareness':
      case 'query-awareness':
        return // keep-alives; sledlog has no awareness state
      default:
        this.#violation('PEER_PROTOCOL', `unexpected ${msg.t} after the handshake`)
    }
  }

  /**
   * Relays a committed change to the peer unless it came from this peer. The replicator uses
   * {@link noteHeld} instead for links whose peer already has it (see relay-plan.ts).
   */
  relay(event: CommitEvent): void {
    if (this.#state !== 'ready') return
    this.#receiptIfTheirs(event)
    if (event.origin === this) {
      this.#peerHolds(event, 'own')
      return
    }
    // An answer in progress reads the log as it goes, so it carries this change too, in order;
    // sent now, it would reach the peer ahead of the answer's earlier entries (a gap).
    if (this.#answer !== null) return
    if (this.#o.link.bufferedAmount() > this.#limits.highWaterBytes) {
      // The peer is slow: drop the live update; it will fetch the range on its next step 1
      // (a gap it sees triggers one at once).
      this.#dropped++
      return
    }
    const chunks =
      event.update.length <= this.#limits.chunkBytes
        ? [event.update]
        : encodeRunsChunked(event.runs, this.#limits.chunkBytes)
    for (const c of chunks) this.#send(encodeUpdate(c))
    this.#peerHolds(event, 'sent')
  }

  /**
   * Sends this node's proof of `sled`'s fork, its two records at the fork seq as single-record
   * updates (PROTOCOL.md §8.3), unless this link already carried this very proof: when the fork
   * state changes (relay.ts) and when the peer's digest of a forked sled differs from ours (it
   * lacks the fork, or knows another proof). Once per proof per link, so a peer that lies in its
   * digests cannot make us send anything twice; a peer that is not reading gets it at the next
   * digest that differs.
   */
  offerFork(sled: SledId): void {
    if (this.#state !== 'ready') return
    const proof = this.#o.log.forkProof(sled)
    if (proof === undefined) return
    const [a, b] = proof.records
    const id = `${proof.seq} ${a.slice(0, SIG_CHARS)} ${b.slice(0, SIG_CHARS)}`
    if (this.#forksOffered.get(sled) === id) return
    if (this.#o.link.bufferedAmount() > this.#limits.highWaterBytes) return
    this.#forksOffered.set(sled, id)
    const client = clientIdOf(sled)
    for (const r of proof.records) {
      this.#send(encodeUpdate(encodeRuns([{ client, clock: proof.seq, rootName: rootNameOf(sled), records: [r] }])))
    }
  }

  /** Notes that the peer holds a change it sent or was sent over another link (for lag). */
  noteHeld(event: CommitEvent): void {
    if (this.#state !== 'ready') return
    this.#receiptIfTheirs(event)
    this.#peerHolds(event, event.origin === this ? 'own' : 'elsewhere')
  }

  // ---- holds receipts (holds.ts) ----

  /** A commit that added entries of the peer's own sled: tell it, once the period allows. */
  #receiptIfTheirs(event: CommitEvent): void {
    const client = this.#remote === null ? undefined : clientIdOf(this.#remote)
    if (event.runs.some((r) => r.client === client)) this.#sendReceipt()
  }

  /**
   * Signs and sends what this node holds of the peer's sled, if more than the last receipt said;
   * at most one per {@link RECEIPT_EVERY_MS}. Commits are on disk before listeners hear of them
   * (SledLog commits, then applies), so `held` is what the store holds.
   */
  #sendReceipt(): void {
    if (this.#ourReceiptDue) return
    const wait = this.#ourReceiptAt + RECEIPT_EVERY_MS - Date.now()
    const send = (): void => {
      this.#ourReceiptDue = false
      const receipts = this.#receipts
      if (this.#state !== 'ready' || receipts === null || this.#remote === null) return
      const length = this.#o.log.held(this.#remote)
      if (length <= this.#ourReceipt) return
      this.#ourReceipt = length
      this.#ourReceiptAt = Date.now()
      this.#send(encodeHolds(length, receipts.sign(length)))
    }
    if (wait <= 0) send()
    else {
      this.#ourReceiptDue = true
      this.#later(send, wait)
    }
  }

  /** Keeps the peer's latest receipt and verifies it once the period allows. */
  #receiveReceipt(length: number, signature: Uint8Array): void {
    const checkPending = this.#receiptPending !== null
    this.#receiptPending = { length, signature }
    if (checkPending) return
    const wait = this.#receiptCheckedAt + RECEIPT_EVERY_MS - Date.now()
    if (wait <= 0) this.#checkReceipt()
    else this.#later(() => this.#checkReceipt(), wait)
  }

  #checkReceipt(): void {
    const r = this.#receiptPending
    this.#receiptPending = null
    const receipts = this.#receipts
    if (r === null || receipts === null || this.#state !== 'ready') return
    this.#receiptCheckedAt = Date.now()
    if (!receipts.verify(r.length, r.signature)) {
      this.#violation('PEER_PROTOCOL', `holds receipt for ${r.length} entries does not verify`)
      return
    }
    // Receipts only grow: a lower one is stale (sent before a later one overtook it), not news.
    if (this.#theirReceipt !== null && r.length <= this.#theirReceipt) return
    this.#theirReceipt = r.length
    this.#o.onHolds?.(this, r.length)
  }

  /**
   * Advances what we believe the peer holds (for lag, and so an answer in progress does not
   * send it back) by a change it sent (`own`), we sent it on this link (`sent`) or another
   * link carries (`elsewhere`). Only the first two count for coalescing: a change sent on
   * another link is lost if that link dies with it queued.
   */
  #peerHolds(event: CommitEvent, how: 'own' | 'sent' | 'elsewhere'): void {
    const sv = this.#remoteSv
    for (const run of event.runs) {
      const end = run.clock + run.records.length
      if (sv !== null && (sv.get(run.client) ?? 0) < end) sv.set(run.client, end)
      this.#answer?.stream.skip(run.client, end, how === 'own' ? 0 : run.clock)
      if (how !== 'elsewhere' && (this.#held.get(run.client) ?? 0) >= run.clock)
        this.#held.set(run.client, Math.max(end, this.#held.get(run.client) ?? 0))
    }
  }

  /** Counters for status and metrics. */
  stats(): SessionStats {
    const rejected: Partial<Record<ErrorCode, number>> = {}
    for (const [k, v] of this.#rejected) rejected[k] = v
    let peerLag = 0
    if (this.#remoteSv !== null) {
      for (const sled of Object.keys(this.#o.log.heads()) as SledId[]) {
        const have = this.#o.log.held(sled)
        const theirs = this.#remoteSv.get(clientIdOf(sled)) ?? 0
        if (have > theirs) peerLag += have - theirs
      }
    }
    return {
      label: this.#o.label,
      role: this.#o.role,
      state: this.#state,
      sled: this.#remote,
      synced: this.#synced,
      connectedAt: this.#connectedAt,
      violations: this.#violations,
      rejected,
      entriesReceived: this.#entriesReceived,
      messagesSent: this.#messagesSent,
      liveUpdatesDropped: this.#dropped,
      entriesCoalesced: this.#coalesced,
      asksMerged: this.#asksMerged,
      holdsOurs: this.#theirReceipt,
      peerLag,
      closeReason: this.#closeReason,
      closeCode: this.#closeCode,
    }
  }

  // ---- handshake ----

  #handshake(msg: WireMessage): void {
    const step = handshakeStep(this.#hs, msg, { keys: this.#o.keys, auth: this.#o.auth })
    this.#hs = step.state
    const out = step.outcome
    switch (out.kind) {
      case 'continue':
        for (const m of step.send) this.#o.link.send(m)
        return
      case 'ignored':
        return
      case 'violation':
        this.#violation('PEER_PROTOCOL', out.message)
        return
      case 'refused':
        this.#proven = out.peer ?? null
        if (out.error !== undefined) this.#count(out.error)
        for (const m of step.send) this.#o.link.send(m)
        this.#close(out.close, out.reason)
        return
      case 'ready': {
        this.#remote = out.peer
        this.#via = out.via ?? null
        this.#receipts = linkReceipts(this.#o.keys, publicKeyOf(out.peer), receiptLink(out.transcript))
        const succession = { chain: out.chain, ...(out.via === undefined ? {} : { via: out.via }) }
        const refusal = this.#o.admit?.(this, out.peer, succession) ?? null
        if (refusal !== null) {
          this.#o.link.send(encodeDenied(refusal.reason))
          this.#close(refusal.code, refusal.reason)
          return
        }
        for (const m of step.send) this.#o.link.send(m)
        this.#becomeReady()
      }
    }
  }

  #becomeReady(): void {
    this.#state = 'ready'
    this.#lastMessageAt = Date.now()
    this.#o.onReady?.(this)
    if (this.#state !== 'ready') return // the ready hook closed the link
    if (this.#o.mayAsk?.(this) ?? true) this.#sendStep1()
    else this.#askDeferred = true
    // A receipt at once, even for 0 entries: a node recovering from a lost disk needs each
    // peer's word on its head, and "none" is an answer too.
    this.#sendReceipt()
    const tick = (): void => {
      if (this.#state !== 'ready') return
      this.#sendStep1()
      this.#later(tick, this.#limits.resyncMs)
    }
    this.#later(tick, this.#limits.resyncMs)
    const every = Math.max(50, Math.min(this.#limits.idleMs, this.#limits.answerTimeoutMs) / 4)
    const watch = (): void => {
      if (this.#state !== 'ready') return
      this.#watchdog()
      this.#later(watch, every)
    }
    this.#later(watch, every)
  }

  /** Runs `fn` after `ms` unless the session stops first. */
  #later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t)
      fn()
    }, ms)
    this.#timers.add(t)
  }

  /** Closes links that went silent, and links whose answer to our step 1 stopped coming. */
  #watchdog(): void {
    const now = Date.now()
    // While this node holds the peer's messages back (backpressure), silence is ours.
    if (this.#paused || this.#inflight > 0) {
      this.#lastMessageAt = now
      if (this.#awaiting) this.#answerProgressAt = now
      return
    }
    if (now - this.#lastMessageAt >= this.#limits.idleMs) {
      this.#close(CLOSE.IDLE, `no message for ${Math.round((now - this.#lastMessageAt) / 1000)} s`)
      return
    }
    if (this.#awaiting && now - this.#answerProgressAt >= this.#limits.answerTimeoutMs)
      this.#close(CLOSE.SYNC_STALLED, `step 1 unanswered for ${Math.round((now - this.#answerProgressAt) / 1000)} s`)
  }

  // ---- sync ----

  /** Sends the step 1 that {@link PeerSessionOptions.mayAsk} held back (no-op otherwise). */
  ask(): void {
    if (this.#state === 'ready' && this.#askDeferred) this.#sendStep1()
  }

  /** True while our step 1 is unanswered (its step 2 not yet applied). */
  get awaitingAnswer(): boolean {
    return this.#state === 'ready' && this.#awaiting
  }

  #sendStep1(): void {
    this.#askDeferred = false
    if (!this.#awaiting) this.#answerProgressAt = Date.now()
    this.#awaiting = true
    this.#send(encodeStep1(this.#o.log.stateVector()))
    this.#send(encodeDigest(this.#o.log.digests()))
  }

  /**
   * Where the peer holds as many entries of a sled as we do but its digest differs, one of us
   * holds a record the other has not seen (an equivocation): ask for that sled from seq 0, so the
   * guard sees both versions and records the evidence. Rate-limited per sled.
   */
  #compareDigests(theirs: readonly { client: number; length: number; hash: Uint8Array }[]): void {
    // A digest is a hint an honest peer sends every resync period. Our side of the comparison
    // costs O(sleds held) whatever the digest carries, so a flood of 2-byte digests once cost
    // ~3 ms of CPU each at 1,000 sleds: compare at most one per half period, drop the rest.
    const now = Date.now()
    if (theirs.length === 0 || now - this.#digestAt < Math.min(DIGEST_EVERY_MS, this.#limits.resyncMs / 2)) return
    this.#digestAt = now
    const ours = new Map(this.#o.log.digests().map((d) => [d.client, d]))
    const refetch = new Map<number, number>()
    for (const d of theirs) {
      const mine = ours.get(d.client)
      if (mine === undefined || Buffer.from(mine.hash).equals(d.hash)) continue
      // A forked sled's digest covers only the records below the fork and the proof (§8.4), so
      // it differs whatever the lengths only when the peer lacks our fork state: two records fix
      // that, no refetch needed.
      const sled = this.#o.log.sledOfClient(d.client)
      if (sled !== undefined) this.offerFork(sled)
      if (mine.length !== d.length) continue
      if (now - (this.#refetchedAt.get(d.client) ?? 0) < 60_000) continue
      this.#refetchedAt.set(d.client, now)
      refetch.set(d.client, 0)
    }
    if (refetch.size === 0) return
    const sv = decodeStateVector(this.#o.log.stateVector())
    for (const [client] of refetch) sv.set(client, 0)
    this.#send(encodeStep1(encodeStateVector(sv)))
  }

  /**
   * Answers a step 1. The state vector is the peer's unsigned claim: it only ever makes the
   * answer smaller, never reports a hole or a missing range (holes come from signed entries:
   * the guard's gap proof). Asks for what this link already sent are coalesced (answer-plan.ts).
   */
  #answerStep1(sv: Uint8Array): void {
    let claim: Map<number, number>
    try {
      claim = decodeStateVector(sv)
    } catch (err) {
      this.#violation('UPDATE_MALFORMED', (err as Error).message)
      return
    }
    // Only clients this node holds can be answered or coalesced. Remembering the others let a
    // peer grow #held (and so every later plan) without bound with made-up clients: 40 step 1s
    // of 50,000 clients each grew a node by 600 MB and stalled it for a minute.
    for (const client of claim.keys()) if (this.#o.log.sledOfClient(client) === undefined) claim.delete(client)
    const wait = this.#askPlannedAt + this.#limits.step1EveryMs - Date.now()
    if (wait > 0 || this.#askPending !== null) {
      // Merging costs what the step 1 carried; the plan it waits for costs what the node holds.
      this.#asksMerged++
      if (this.#askPending !== null) {
        this.#askPending = leastClaim(this.#askPending, claim)
        return
      }
      this.#askPending = claim
      this.#later(
        () => {
          const merged = this.#askPending
          this.#askPending = null
          if (merged !== null && this.#state === 'ready') this.#planStep1(merged)
        },
        Math.max(0, wait),
      )
      return
    }
    this.#planStep1(claim)
  }

  #planStep1(claim: Map<number, number>): void {
    this.#askPlannedAt = Date.now()
    this.#remoteSv = new Map(claim)
    const sled = this.#remote as SledId
    const plan = planAnswer({
      claim,
      held: this.#held,
      mayRewind: (client) => this.#o.mayRewind?.(sled, client) ?? true,
    })
    this.#coalesced += plan.coalesced
    for (const [client, from] of plan.from) if (from > (this.#held.get(client) ?? 0)) this.#held.set(client, from)
    const a = this.#answer
    if (a !== null) {
      // Asked again mid-answer (anti-entropy, or a gap): what is already on the wire arrives
      // first, so the answer in progress, minus what the peer now says it holds, answers both
      // (skipping only what it claims: what this link sent before may be what the answer in
      // progress resends on purpose); an honored rewind is answered again once it is done.
      const rewound = new Set(plan.rewound)
      for (const [client, from] of plan.from) {
        if (rewound.has(client)) a.followUp.set(client, Math.min(from, a.followUp.get(client) ?? from))
        else a.stream.skip(client, claim.get(client) ?? 0)
      }
      return
    }
    this.#startAnswer(plan.from)
  }

  #startAnswer(from: ReadonlyMap<number, number>): void {
    this.#answer = {
      stream: this.#o.log.updateStream(from, this.#limits.chunkBytes),
      pending: null,
      followUp: new Map(),
    }
    this.#answers.submit(this.#job)
  }

  /**
   * Sends about `budget` bytes of the answer while the peer keeps reading (at most
   * `answerBufferBytes` queued), the last update as the step 2. Called by the scheduler.
   */
  #pumpAnswer(budget: number): { result: PumpResult; sent: number } {
    const a = this.#answer
    if (a === null || this.#state !== 'ready') return { result: 'done', sent: 0 }
    const limit = Math.min(this.#limits.answerBufferBytes, this.#limits.highWaterBytes)
    let sent = 0
    while (sent < budget) {
      if (this.#o.link.bufferedAmount() > limit) return { result: 'blocked', sent }
      const next = a.stream.next()
      if (next === null) {
        const last = a.pending ?? encodeRuns([])
        this.#answer = null
        this.#send(encodeStep2(last))
        this.#answered(a)
        // A follow-up answer (a rewind that came mid-answer) keeps this turn.
        return { result: this.#answer === null ? 'done' : 'more', sent: sent + last.length }
      }
      if (a.pending !== null) {
        this.#send(encodeUpdate(a.pending))
        sent += a.pending.length
      }
      a.pending = next
    }
    return { result: 'more', sent }
  }

  /** The peer now holds everything we held as the answer ended; rewinds that came meanwhile go next. */
  #answered(a: Answer): void {
    const now = decodeStateVector(this.#o.log.stateVector())
    for (const [client, length] of now) if (length > (this.#held.get(client) ?? 0)) this.#held.set(client, length)
    if (a.followUp.size === 0) return
    for (const [client, from] of a.followUp) now.set(client, from)
    this.#startAnswer(now)
  }

  #applyFromPeer(update: Uint8Array, isStep2: boolean): void {
    if (this.#awaiting) this.#answerProgressAt = Date.now()
    if (update.length > this.#limits.maxUpdateBytes) {
      this.#violation('UPDATE_TOO_LARGE', `update of ${update.length} bytes exceeds ${this.#limits.maxUpdateBytes}`)
      return
    }
    // Queue here and hand the log at most maxInflight at a time: ws still delivers frames it had
    // read before a pause, and those must not all reach the log (or outlive a close).
    this.#applyQueue.push({ update, isStep2 })
    if (this.#applyQueue.length >= this.#limits.maxInflight && !this.#paused) {
      this.#paused = true
      this.#o.link.pause()
    }
    this.#pumpApply()
  }

  #pumpApply(): void {
    while (this.#state !== 'closed' && this.#inflight < this.#limits.maxInflight && this.#applyQueue.length > 0) {
      const { update, isStep2 } = this.#applyQueue.shift() as { update: Uint8Array; isStep2: boolean }
      this.#inflight++
      void this.#o.log.applyUpdate(update, this).then((result) => {
        this.#inflight--
        this.#onApplied(result, isStep2)
        this.#pumpApply()
        if (this.#paused && this.#applyQueue.length <= this.#limits.maxInflight / 2 && this.#state !== 'closed') {
          this.#paused = false
          this.#o.link.resume()
        }
      })
    }
  }

  #onApplied(result: ApplyResult, isStep2: boolean): void {
    if (this.#state === 'closed') return
    if (this.#awaiting) this.#answerProgressAt = Date.now()
    if (result.ok) {
      this.#entriesReceived += result.added
      if (isStep2) {
        this.#synced = true
        this.#awaiting = false
        this.#o.onSynced?.(this)
      }
      return
    }
    if (result.code === 'UPDATE_GAP') {
      this.#count('UPDATE_GAP')
      // We miss predecessors (a dropped live update, or updates racing on two links): ask.
      const now = Date.now()
      if (now - this.#lastGapResync > 1000) {
        this.#lastGapResync = now
        this.#sendStep1()
      }
      return
    }
    if (NOT_A_VIOLATION.has(result.code)) this.#count(result.code)
    else this.#violation(result.code, result.message)
  }

  // ---- plumbing ----

  #send(msg: Uint8Array): void {
    if (this.#state === 'closed') return
    this.#messagesSent++
    this.#o.link.send(msg)
  }

  #count(code: ErrorCode): void {
    this.#rejected.set(code, (this.#rejected.get(code) ?? 0) + 1)
    if (!NOT_A_VIOLATION.has(code)) this.#o.ledger?.count(this.ledgerPeer, code)
  }

  #violation(code: ErrorCode, message: string): void {
    this.#count(code)
    this.#violations++
    if (this.#violations >= this.#limits.maxViolations) {
      this.#close(
        this.#o.role === 'server' ? CLOSE.VIOLATIONS : CLOSE.PEER_MISBEHAVED,
        `closing after ${this.#violations} violations (last: ${code}: ${message.slice(0, 80)})`,
      )
    }
  }

  #close(code: number, reason: string, lingerMs?: number): void {
    if (this.#state === 'closed') return
    this.#closeReason = reason
    this.#closeCode = code
    this.stop(reason)
    this.#o.ledger?.kick(this.ledgerPeer, code, reason, this.#o.label)
    // Close reasons must fit in a control frame (123 bytes).
    this.#o.link.close(code, Buffer.from(reason).subarray(0, 120).toString(), lingerMs)
  }
}

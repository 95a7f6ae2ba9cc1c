/**
 * One authenticated replication link with a peer, whichever side dialed (docs/PROTOCOL.md §8).
 *
 * The session runs the handshake, then the y-protocols exchange: each side sends step 1 (its
 * state vector); the other answers with chunked updates ending in a step 2; live commits are
 * relayed as updates. Every update goes through the log's guard. Violations are counted per
 * code and the link is closed after `maxViolations`. Reading pauses while too many of the peer's
 * updates wait in the log's pipeline, so a flood cannot grow memory without bound.
 */
import { clientIdOf, sledIdFromPublicKey, type SledId } from '../core/ids.js'
import { decodeStateVector, encodeRunsChunked, encodeRuns, encodeStateVector } from '../core/update-codec.js'
import type { KeyPair } from '../core/signing.js'
import { isSledlogError, type ErrorCode } from '../errors.js'
import type { ApplyResult, CommitEvent, SledLog, UpdateStream } from '../log/sled-log.js'
import {
  allowListVerdict,
  checkTokenProof,
  newNonce,
  signTranscript,
  tokenProof,
  verifyTranscript,
  type AuthConfig,
  type Transcript,
} from './handshake.js'
import {
  AUTH_VERSION,
  decodeMessage,
  encodeDenied,
  encodeDigest,
  encodeHello,
  encodeOk,
  encodeProve,
  encodeStep1,
  encodeStep2,
  encodeUpdate,
  type WireMessage,
} from './messages.js'

/** Websocket close codes sledlog uses. 44xx: refused (the dialer retries only after 60 s); 45xx: retry with backoff. */
export const CLOSE = {
  AUTH_FAILED: 4401,
  NOT_ALLOWED: 4403,
  VIOLATIONS: 4408,
  SELF: 4409,
  HANDSHAKE_TIMEOUT: 4508,
  PEER_MISBEHAVED: 4509,
  SHUTDOWN: 1001,
} as const

/** What a session needs of its transport. */
export interface PeerLink {
  send(msg: Uint8Array): void
  close(code: number, reason: string): void
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
  readonly limits?: Partial<SessionLimits>
  /** Called once the handshake succeeded. */
  readonly onReady?: (s: PeerSession) => void
  /** Called each time the peer finished answering our step 1 (we hold all it had). */
  readonly onSynced?: (s: PeerSession) => void
  /**
   * Asked once the handshake succeeded: false holds our first step 1 back until {@link
   * PeerSession.ask} (the replicator catches up from one link at a time, so two peers do not
   * both stream the same entries to us).
   */
  readonly mayAsk?: (s: PeerSession) => boolean
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
  /** Entries we hold that the peer's last state vector did not: how far behind it is. */
  readonly peerLag: number
  readonly closeReason: string | null
}

/** Rejection codes that do not count against a peer. */
const NOT_A_VIOLATION = new Set<string>(['UPDATE_GAP', 'STORE_WRITE_FAILED', 'LOG_CLOSED'])

/** A replication link. Lifecycle: `start()` → `receive()`… → `stop()`. */
export class PeerSession {
  readonly #o: PeerSessionOptions
  readonly #limits: SessionLimits
  #state: 'handshake' | 'ready' | 'closed' = 'handshake'
  #transcript: Partial<{ -readonly [K in keyof Transcript]: Transcript[K] }> = {}
  #remote: SledId | null = null
  #synced = false
  readonly #connectedAt = Date.now()
  #violations = 0
  readonly #rejected = new Map<ErrorCode, number>()
  #entriesReceived = 0
  #messagesSent = 0
  #dropped = 0
  #inflight = 0
  #paused = false
  #remoteSv: Map<number, number> | null = null
  #lastGapResync = 0
  /** Our step 1 went out and its step 2 has not come back yet. */
  #awaiting = false
  /** The first step 1 is held back until {@link ask} (see {@link PeerSessionOptions.mayAsk}). */
  #askDeferred = false
  #applyQueue: Array<{ update: Uint8Array; isStep2: boolean }> = []
  /** The answer being sent to the peer's step 1, paced by the send buffer. */
  #answer: { readonly stream: UpdateStream; pending: Uint8Array | null } | null = null
  #answerTimer: NodeJS.Timeout | null = null
  readonly #refetchedAt = new Map<number, number>()
  #closeReason: string | null = null
  #timers: NodeJS.Timeout[] = []

  constructor(opts: PeerSessionOptions) {
    this.#o = opts
    this.#limits = { ...DEFAULT_SESSION_LIMITS, ...opts.limits }
  }

  /** The authenticated peer's sled id, once known. */
  get remoteSled(): SledId | null {
    return this.#remote
  }

  /** True once the handshake succeeded and until the session stops. */
  get ready(): boolean {
    return this.#state === 'ready'
  }

  /** Starts the handshake (the server speaks first). */
  start(): void {
    this.#timers.push(
      setTimeout(() => {
        if (this.#state === 'handshake') this.#close(CLOSE.HANDSHAKE_TIMEOUT, 'handshake timed out')
      }, this.#limits.handshakeMs),
    )
    if (this.#o.role === 'server') {
      this.#transcript.serverKey = this.#o.keys.publicKey
      this.#transcript.serverNonce = newNonce()
      this.#o.link.send(encodeHello(this.#o.keys.publicKey, this.#transcript.serverNonce))
    }
  }

  /** Stops timers; the transport is closed by its owner (or by {@link PeerSession} on error). */
  stop(reason = 'stopped'): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#closeReason ??= reason
    for (const t of this.#timers) clearTimeout(t)
    this.#timers = []
    if (this.#answerTimer !== null) clearTimeout(this.#answerTimer)
    // Updates the peer sent but the log has not taken yet die with the link.
    this.#applyQueue = []
    this.#answer = null
  }

  /** Handles one message from the peer. Never throws. */
  receive(buf: Uint8Array): void {
    if (this.#state === 'closed') return
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
    if (event.origin === this) {
      this.#peerHolds(event, true)
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
    this.#peerHolds(event, false)
  }

  /** Notes that the peer holds a change it sent or was sent over another link (for lag). */
  noteHeld(event: CommitEvent): void {
    if (this.#state === 'ready') this.#peerHolds(event, false)
  }

  /**
   * Advances what we believe the peer holds (for lag, and so an answer in progress does not
   * send it back) by a change it sent (`own`) or was sent over another link.
   */
  #peerHolds(event: CommitEvent, own: boolean): void {
    const sv = this.#remoteSv
    for (const run of event.runs) {
      const end = run.clock + run.records.length
      if (sv !== null && (sv.get(run.client) ?? 0) < end) sv.set(run.client, end)
      this.#answer?.stream.skip(run.client, end, own ? 0 : run.clock)
    }
  }

  /** Counters for status and metrics. */
  stats(): SessionStats {
    const rejected: Partial<Record<ErrorCode, number>> = {}
    for (const [k, v] of this.#rejected) rejected[k] = v
    let peerLag = 0
    if (this.#remoteSv !== null) {
      for (const sled of Object.keys(this.#o.log.heads()) as SledId[]) {
        const have = this.#o.log.length(sled)
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
      peerLag,
      closeReason: this.#closeReason,
    }
  }

  // ---- handshake ----

  #handshake(msg: WireMessage): void {
    const t = this.#transcript
    const { auth, keys, role } = this.#o
    if (role === 'client' && msg.t === 'hello') {
      if (msg.version !== AUTH_VERSION) {
        this.#authFail(`peer speaks handshake v${msg.version}, this node v${AUTH_VERSION}`)
        return
      }
      t.serverKey = msg.publicKey
      t.serverNonce = msg.nonce
      t.clientKey = keys.publicKey
      t.clientNonce = newNonce()
      const full = t as Transcript
      this.#o.link.send(
        encodeProve(
          keys.publicKey,
          full.clientNonce,
          signTranscript(keys, 'client', full),
          tokenProof(auth.token, 'client', full),
        ),
      )
      return
    }
    if (role === 'server' && msg.t === 'prove') {
      t.clientKey = msg.publicKey
      t.clientNonce = msg.nonce
      const full = t as Transcript
      if (!verifyTranscript('client', full, msg.signature)) {
        this.#authFail('handshake signature does not verify')
        return
      }
      if (!checkTokenProof(auth.token, 'client', full, msg.tokenProof)) {
        this.#authFail('wrong shared token')
        return
      }
      if (!this.#admit(msg.publicKey)) return
      this.#o.link.send(encodeOk(signTranscript(keys, 'server', full), tokenProof(auth.token, 'server', full)))
      this.#becomeReady()
      return
    }
    if (role === 'client' && msg.t === 'ok' && t.clientNonce !== undefined) {
      const full = t as Transcript
      if (!verifyTranscript('server', full, msg.signature)) {
        this.#authFail('server handshake signature does not verify')
        return
      }
      if (!checkTokenProof(auth.token, 'server', full, msg.tokenProof)) {
        this.#authFail('server does not know the shared token')
        return
      }
      if (!this.#admit(full.serverKey)) return
      this.#becomeReady()
      return
    }
    if (msg.t === 'denied') {
      this.#close(CLOSE.AUTH_FAILED, `peer denied access: ${msg.reason}`)
      return
    }
    // y-websocket clients send step 1 and awareness as soon as the socket opens: ignore them
    // until the peer has proven its key; we send our own step 1 once ready.
    if (msg.t === 'step1' || msg.t === 'awareness' || msg.t === 'query-awareness') return
    this.#violation('PEER_PROTOCOL', `unexpected ${msg.t} during the handshake`)
  }

  #admit(peerKey: Uint8Array): boolean {
    const sled = sledIdFromPublicKey(peerKey)
    if (sled === this.#o.keys.sled) {
      this.#close(CLOSE.SELF, 'connected to itself (same sled id)')
      return false
    }
    const refused = allowListVerdict(this.#o.auth, peerKey)
    if (refused !== undefined) {
      this.#count('PEER_NOT_ALLOWED')
      this.#o.link.send(encodeDenied(`sled ${refused} is not on the allow-list`))
      this.#close(CLOSE.NOT_ALLOWED, `sled ${refused.slice(0, 16)}… is not on the allow-list`)
      return false
    }
    this.#remote = sled
    return true
  }

  #authFail(reason: string): void {
    this.#count('PEER_AUTH_FAILED')
    if (this.#o.role === 'server') this.#o.link.send(encodeDenied(reason))
    this.#close(CLOSE.AUTH_FAILED, reason)
  }

  #becomeReady(): void {
    this.#state = 'ready'
    this.#o.onReady?.(this)
    if (this.#o.mayAsk?.(this) ?? true) this.#sendStep1()
    else this.#askDeferred = true
    const tick = (): void => {
      if (this.#state !== 'ready') return
      this.#sendStep1()
      this.#timers.push(setTimeout(tick, this.#limits.resyncMs))
    }
    this.#timers.push(setTimeout(tick, this.#limits.resyncMs))
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
    const ours = new Map(this.#o.log.digests().map((d) => [d.client, d]))
    const now = Date.now()
    const refetch = new Map<number, number>()
    for (const d of theirs) {
      const mine = ours.get(d.client)
      if (mine === undefined || mine.length !== d.length || Buffer.from(mine.hash).equals(d.hash)) continue
      if (now - (this.#refetchedAt.get(d.client) ?? 0) < 60_000) continue
      this.#refetchedAt.set(d.client, now)
      refetch.set(d.client, 0)
    }
    if (refetch.size === 0) return
    const sv = decodeStateVector(this.#o.log.stateVector())
    for (const [client] of refetch) sv.set(client, 0)
    this.#send(encodeStep1(encodeStateVector(sv)))
  }

  #answerStep1(sv: Uint8Array): void {
    let remote: Map<number, number>
    try {
      remote = decodeStateVector(sv)
    } catch (err) {
      this.#violation('UPDATE_MALFORMED', (err as Error).message)
      return
    }
    this.#remoteSv = remote
    for (const [client, clock] of remote) {
      // This node's own client is known even when it holds none of its entries (a lost disk):
      // the peer's count of them is what recovery waits for.
      const sled = client === this.#o.log.clientId ? this.#o.log.sled : this.#o.log.sledOfClient(client)
      if (sled !== undefined && clock > 0) this.#o.log.noteRemoteHead(sled, clock - 1)
    }
    if (this.#answer !== null) {
      // Asked again mid-answer (anti-entropy, or a gap): what is already on the wire arrives
      // first, so the answer in progress, minus what the peer now says it holds, answers both.
      for (const [client, clock] of remote) this.#answer.stream.skip(client, clock)
      return
    }
    this.#answer = { stream: this.#o.log.updateStream(remote, this.#limits.chunkBytes), pending: null }
    this.#pumpAnswer()
  }

  /**
   * Sends the answer while the peer keeps reading: up to `highWaterBytes` queued, at most that
   * much per event-loop turn, and the last update as the step 2. A peer that asks without
   * reading gets one answer's worth of memory, not one per ask.
   */
  #pumpAnswer(): void {
    const a = this.#answer
    if (a === null || this.#state !== 'ready') return
    const limit = Math.min(this.#limits.answerBufferBytes, this.#limits.highWaterBytes)
    let budget = limit
    while (budget > 0 && this.#o.link.bufferedAmount() <= limit) {
      const next = a.stream.next()
      if (next === null) {
        this.#answer = null
        this.#send(encodeStep2(a.pending ?? encodeRuns([])))
        return
      }
      if (a.pending !== null) {
        this.#send(encodeUpdate(a.pending))
        budget -= a.pending.length
      }
      a.pending = next
    }
    // Blocked on the peer, or yielding so other links and requests get a turn.
    if (this.#answerTimer === null) {
      this.#answerTimer = setTimeout(
        () => {
          this.#answerTimer = null
          this.#pumpAnswer()
        },
        budget > 0 ? 20 : 0,
      )
    }
  }

  #applyFromPeer(update: Uint8Array, isStep2: boolean): void {
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

  #close(code: number, reason: string): void {
    if (this.#state === 'closed') return
    this.#closeReason = reason
    this.stop(reason)
    // Close reasons must fit in a control frame (123 bytes).
    this.#o.link.close(code, Buffer.from(reason).subarray(0, 120).toString())
  }
}

/**
 * An in-memory replication link for protocol tests: two {@link PeerLink} ends with one FIFO
 * queue per direction, in the spirit of Yjs' TestConnector. Nothing arrives until the test
 * delivers it, so the test (not the event loop) decides which message lands next, and it can
 * drop, duplicate or reorder sync traffic in between.
 *
 * A websocket is ordered and its handshake frames come first; the faults here only ever touch
 * sync traffic (step 1, step 2, updates, digests), so the handshake completes as on a real link
 * and what the sessions must survive is what a lossy relay path or a buggy peer produces.
 */
import { decodeMessage, type WireMessage } from '../../src/sync/messages.js'
import type { PeerLink, PeerSession } from '../../src/sync/peer-session.js'

/** One end of a link: 0 is the dialing side (client), 1 the accepting side (server). */
export type Side = 0 | 1

/** What can happen to a queued sync message. */
export type Fault = 'drop' | 'dup' | 'swap'

/** How and by whom a link was closed. */
export interface LinkClose {
  /** The side whose session closed the link, or 'network' for a cut. */
  readonly by: Side | 'network'
  readonly code: number
  readonly reason: string
}

/** Options of a {@link MemoryLink}. */
export interface MemoryLinkOptions {
  /**
   * Rewrites what side `side` sends before it is queued (a lying peer): return the bytes to
   * queue instead, or null to swallow the message.
   */
  readonly rewrite?: (side: Side, msg: Uint8Array, type: MessageType) => Uint8Array | null
  /** Called once when the link closes, whoever closed it. */
  readonly onClose?: (close: LinkClose) => void
}

/** A message's kind as the link classifies it ('garbage' when it does not decode). */
export type MessageType = WireMessage['t'] | 'garbage'

interface Queued {
  readonly bytes: Uint8Array
  readonly type: MessageType
}

const FAULTABLE = new Set<MessageType>(['step1', 'step2', 'update', 'digest'])

function typeOf(bytes: Uint8Array): MessageType {
  try {
    return decodeMessage(bytes).t
  } catch {
    return 'garbage'
  }
}

const other = (s: Side): Side => (s === 0 ? 1 : 0)

/** A pair of connected in-memory {@link PeerLink}s. Lifecycle: attach both sessions → … → close. */
export class MemoryLink {
  readonly #o: MemoryLinkOptions
  /** `#toward[s]`: messages travelling to side s, oldest first. */
  readonly #toward: [Queued[], Queued[]] = [[], []]
  readonly #bytesToward: [number, number] = [0, 0]
  readonly #paused: [boolean, boolean] = [false, false]
  readonly #sessions: [PeerSession | null, PeerSession | null] = [null, null]
  /**
   * `#owes[s]`: side s was handed a step 1 after the last step 2 it sent. A step 1 that arrives
   * mid-answer folds into that answer, so "owes" ends with the next step 2 either way.
   */
  readonly #owes: [boolean, boolean] = [false, false]
  #closed: LinkClose | null = null
  /** The two ends, for the sessions of side 0 and side 1. */
  readonly ends: readonly [PeerLink, PeerLink]

  constructor(opts: MemoryLinkOptions = {}) {
    this.#o = opts
    this.ends = [this.#end(0), this.#end(1)]
  }

  /** Binds the session that reads side `side`'s incoming messages. */
  attach(side: Side, session: PeerSession): void {
    this.#sessions[side] = session
  }

  /** True while open with both sessions past the handshake. */
  ready(): boolean {
    return this.#closed === null && this.#sessions.every((s) => s?.ready === true)
  }

  /** Messages queued toward side `side`. */
  queued(side: Side): number {
    return this.#toward[side].length
  }

  /** Bytes side `side` has sent that the other side has not received (its `bufferedAmount`). */
  buffered(side: Side): number {
    return this.#bytesToward[other(side)]
  }

  /** True when a message can be delivered to side `side` now (queued, and the side reads). */
  canDeliver(side: Side): boolean {
    return this.#closed === null && !this.#paused[side] && this.#toward[side].length > 0
  }

  /**
   * True while side `side` owes an answer to a step 1 it was handed (its session sends the
   * step 2 once the answer is done, paced by its send buffer), or holds one back for its turn.
   */
  owesAnswer(side: Side): boolean {
    const session = this.#sessions[side]
    return this.#closed === null && session?.ready === true && (this.#owes[side] || session.askWaiting)
  }

  /** Delivers the oldest message queued toward `side`. Returns false if there was none. */
  deliver(side: Side): boolean {
    if (!this.canDeliver(side)) return false
    const m = this.#take(side, 0)
    const session = this.#sessions[side]
    if (session === null) return true
    if (m.type === 'step1' && session.ready) this.#owes[side] = true
    session.receive(m.bytes)
    return true
  }

  /**
   * Applies `fault` to sync message number `pick` (modulo their count) among those queued on
   * this link. 'dup' queues a copy right behind it; 'swap' exchanges it with the next sync
   * message in its queue (handshake frames never move). Returns false when nothing qualifies.
   */
  fault(fault: Fault, pick: number): boolean {
    if (this.#closed !== null) return false
    const candidates: Array<[Side, number]> = []
    for (const side of [0, 1] as const) {
      this.#toward[side].forEach((m, i) => {
        if (FAULTABLE.has(m.type)) candidates.push([side, i])
      })
    }
    if (candidates.length === 0) return false
    const [side, i] = candidates[pick % candidates.length] as [Side, number]
    const q = this.#toward[side]
    const m = q[i] as Queued
    if (fault === 'drop') {
      this.#take(side, i)
    } else if (fault === 'dup') {
      q.splice(i + 1, 0, m)
      this.#bytesToward[side] += m.bytes.length
    } else {
      const j = q.findIndex((n, k) => k > i && FAULTABLE.has(n.type))
      if (j < 0) return false
      q[i] = q[j] as Queued
      q[j] = m
    }
    return true
  }

  /** Closes the link as the network (a cut): both sessions stop, queued messages are lost. */
  cut(reason = 'link cut'): void {
    this.#close({ by: 'network', code: 1006, reason })
  }

  #take(side: Side, i: number): Queued {
    const [m] = this.#toward[side].splice(i, 1) as [Queued]
    this.#bytesToward[side] -= m.bytes.length
    return m
  }

  #close(close: LinkClose): void {
    if (this.#closed !== null) return
    this.#closed = close
    this.#toward[0] = []
    this.#toward[1] = []
    this.#bytesToward[0] = 0
    this.#bytesToward[1] = 0
    for (const s of this.#sessions) s?.stop(close.reason)
    this.#o.onClose?.(close)
  }

  #end(side: Side): PeerLink {
    return {
      send: (msg) => {
        if (this.#closed !== null) return
        const type = typeOf(msg)
        const bytes = this.#o.rewrite === undefined ? msg : this.#o.rewrite(side, msg, type)
        // The step 2 ends what this side owed, whatever a rewriter does to it on the wire.
        if (type === 'step2') this.#owes[side] = false
        if (bytes === null) return
        const to = other(side)
        this.#toward[to].push({ bytes, type: bytes === msg ? type : typeOf(bytes) })
        this.#bytesToward[to] += bytes.length
      },
      close: (code, reason) => this.#close({ by: side, code, reason }),
      bufferedAmount: () => this.#bytesToward[other(side)],
      pause: () => {
        this.#paused[side] = true
      },
      resume: () => {
        this.#paused[side] = false
      },
    }
  }
}

/**
 * A network of {@link MemoryNode}s joined by {@link MemoryLink}s, and the scheduler that drives
 * it: the test delivers messages one at a time (picked at random from a seeded stream), injects
 * faults, cuts and reconnects links, restarts nodes, and waits for quiescence by watching the
 * work in progress, never by sleeping for a fixed time.
 */
import type { Random } from '../../src/harness/random.js'
import type { SessionLimits } from '../../src/sync/peer-session.js'
import { DEFAULT_SESSION_LIMITS } from '../../src/sync/peer-session.js'
import { MemoryLink, type Fault, type LinkClose, type MemoryLinkOptions, type Side } from './memory-link.js'
import type { MemoryNode } from './memory-node.js'

/** A configured connection between two nodes (index `a` dials index `b`). */
export interface LinkSpec {
  readonly a: number
  readonly b: number
  /** Rewrites what one end sends (a lying peer); see {@link MemoryLinkOptions.rewrite}. */
  readonly rewrite?: MemoryLinkOptions['rewrite']
}

/** A link the sessions themselves closed (a protocol verdict, not a cut). */
export interface ProtocolClose extends LinkClose {
  readonly link: number
  /** The node whose session closed it. */
  readonly node: string
}

/** How long {@link MemoryNetwork.idle} may wait before it declares the network stuck. */
const STUCK_MS = 30_000

/** How far to move the timers for a paced answer (PeerSession waits 20 ms while the peer's buffer is full). */
const ANSWER_PACING_MS = 20

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Options of a {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** The session limits every node uses (for the answer buffer limit). */
  readonly limits?: Partial<SessionLimits>
  /**
   * Moves the sessions' timers on by `ms` (fake timers: a run then replays exactly and never
   * waits); default: real time passes (1 ms at a time).
   */
  readonly advanceTimers?: (ms: number) => void | Promise<void>
}

/** Nodes and links under one scheduler. Lifecycle: build → `connect`… → `close()`. */
export class MemoryNetwork {
  readonly nodes: readonly MemoryNode[]
  readonly specs: readonly LinkSpec[]
  readonly #links: Array<MemoryLink | null>
  /** Bytes an answer may queue before its pump waits for the peer (the session's own limit). */
  readonly #answerLimit: number
  /** Links closed by their sessions (violations, refusals). */
  readonly protocolCloses: ProtocolClose[] = []
  /** What the scheduler did so far: messages delivered, faults injected, cuts, restarts. */
  readonly counts = { delivered: 0, drop: 0, dup: 0, swap: 0, cut: 0, restart: 0 }

  readonly #advance: (ms: number) => void | Promise<void>

  constructor(nodes: readonly MemoryNode[], specs: readonly LinkSpec[], opts: MemoryNetworkOptions = {}) {
    this.nodes = nodes
    this.specs = specs
    this.#links = specs.map(() => null)
    const l = { ...DEFAULT_SESSION_LIMITS, ...opts.limits }
    this.#answerLimit = Math.min(l.answerBufferBytes, l.highWaterBytes)
    this.#advance = opts.advanceTimers ?? ((ms) => new Promise((r) => setTimeout(r, Math.min(ms, 1))))
  }

  /** True when link `i` is up. */
  isUp(i: number): boolean {
    return this.#links[i] !== null
  }

  /** Opens link `i` (no-op when it is up): a fresh session on each side, handshake first. */
  connect(i: number): void {
    const spec = this.specs[i]
    if (spec === undefined || this.#links[i] !== null) return
    const a = this.nodes[spec.a] as MemoryNode
    const b = this.nodes[spec.b] as MemoryNode
    const link: MemoryLink = new MemoryLink({
      ...(spec.rewrite === undefined ? {} : { rewrite: spec.rewrite }),
      onClose: (close) => {
        if (this.#links[i] === link) this.#links[i] = null
        a.endSession(client, close.reason)
        b.endSession(server, close.reason)
        if (close.by !== 'network') this.protocolCloses.push({ ...close, link: i, node: (close.by ? b : a).name })
      },
    })
    const client = a.session('client', link.ends[0], `${a.name}->${b.name}#${i}`)
    const server = b.session('server', link.ends[1], `${b.name}<-${a.name}#${i}`)
    link.attach(0, client)
    link.attach(1, server)
    this.#links[i] = link
    server.start()
    client.start()
  }

  /** Cuts link `i` (no-op when it is down): both sessions stop, messages in flight are lost. */
  cut(i: number): void {
    const link = this.#links[i]
    if (link === null || link === undefined) return
    this.counts.cut++
    link.cut()
  }

  /** Restarts node `n`: its links drop (queued messages lost), its log reopens, its links redial. */
  async restart(n: number): Promise<void> {
    const mine = this.specs.flatMap((s, i) => ((s.a === n || s.b === n) && this.isUp(i) ? [i] : []))
    for (const i of mine) this.cut(i)
    this.counts.restart++
    await (this.nodes[n] as MemoryNode).restart()
    for (const i of mine) this.connect(i)
  }

  /** Delivers one message, picked at random among the links and directions that can take one. */
  deliverRandom(rand: Random): boolean {
    const ready: Array<[MemoryLink, Side]> = []
    for (const link of this.#links) {
      if (link === null) continue
      for (const side of [0, 1] as const) if (link.canDeliver(side)) ready.push([link, side])
    }
    if (ready.length === 0) return false
    const [link, side] = ready[Math.floor(rand() * ready.length)] as [MemoryLink, Side]
    this.counts.delivered++
    return link.deliver(side)
  }

  /** Applies `fault` to a random queued sync message anywhere in the network. */
  fault(fault: Fault, rand: Random): boolean {
    const up = this.#links.filter((l): l is MemoryLink => l !== null)
    if (up.length === 0) return false
    const start = Math.floor(rand() * up.length)
    const pick = Math.floor(rand() * 1_000_000)
    for (let k = 0; k < up.length; k++) {
      if ((up[(start + k) % up.length] as MemoryLink).fault(fault, pick)) {
        this.counts[fault]++
        return true
      }
    }
    return false
  }

  /** Messages queued anywhere (including toward paused readers). */
  queued(): number {
    let n = 0
    for (const l of this.#links) if (l !== null) n += l.queued(0) + l.queued(1)
    return n
  }

  /**
   * Resolves once no node has log work in progress and every answer still owed is blocked on
   * its link's buffer (only a delivery can move it on). Answers that can progress wait for the
   * session's pacing timer: once the logs are idle, the timers are moved on.
   */
  async idle(): Promise<void> {
    // Not Date.now: runs may fake the clock.
    const t0 = performance.now()
    let quiet = 0
    for (;;) {
      await turn()
      const busy = this.nodes.some((n) => n.busy)
      const moving = this.#answersMoving()
      if (!busy && !moving) {
        // Two quiet turns in a row: a commit's listeners and a session's follow-ups have run.
        if (++quiet >= 2) return
        continue
      }
      quiet = 0
      if (performance.now() - t0 > STUCK_MS) {
        throw new Error(`network not idle after ${STUCK_MS} ms: ${this.describe()}`)
      }
      if (moving && !busy) await this.#advance(ANSWER_PACING_MS)
    }
  }

  /**
   * Delivers every message (in random order across links, FIFO per direction) and waits for the
   * work it causes, until nothing is queued and the network is idle.
   */
  async drain(rand: Random, maxRounds = 10_000): Promise<void> {
    for (let round = 0; round < maxRounds; round++) {
      while (this.deliverRandom(rand)) {
        // keep delivering; replies queue behind
      }
      await this.idle()
      if (this.queued() === 0) return
    }
    throw new Error(`network did not drain in ${maxRounds} rounds: ${this.describe()}`)
  }

  /**
   * Quiescence: every link up and healthy, every message delivered, then anti-entropy rounds
   * until one changes nothing: each round reconnects the links (fresh handshake, step 1 and
   * digests both ways) that may still carry something, i.e. those with an end whose
   * `fingerprint` changed in the previous round. A link whose ends did not change since its
   * last exchange would replay that exchange (states only grow, and it changed nothing).
   * Returns the rounds it took, or null if it never settled.
   *
   * Equivocation evidence travels one hop per round (a node passes on what it learned only
   * when its links next compare digests), so the default bound grows with the node count.
   */
  async settle(
    rand: Random,
    fingerprint: (node: MemoryNode) => string,
    maxRounds = 2 * this.nodes.length + 2,
  ): Promise<number | null> {
    for (let i = 0; i < this.specs.length; i++) this.connect(i)
    await this.drain(rand)
    let changed = new Set(this.nodes.map((_, n) => n))
    for (let round = 1; round <= maxRounds; round++) {
      const before = this.nodes.map(fingerprint)
      for (const [i, s] of this.specs.entries()) {
        if (!changed.has(s.a) && !changed.has(s.b)) continue
        this.cut(i)
        this.connect(i)
      }
      await this.drain(rand)
      changed = new Set(this.nodes.flatMap((node, n) => (fingerprint(node) === before[n] ? [] : [n])))
      if (changed.size === 0) return round
    }
    return null
  }

  /** Links that are down or whose sessions have not both finished the handshake. */
  unhealthy(): string[] {
    return this.#links.flatMap((l, i) => (l?.ready() ? [] : [this.#name(i)]))
  }

  /** One line per link state, for error messages. */
  describe(): string {
    return this.#links
      .map((l, i) => {
        const name = this.#name(i)
        if (l === null) return `${name}: down`
        return `${name}: queued ${l.queued(0)}/${l.queued(1)} owes ${l.owesAnswer(0)}/${l.owesAnswer(1)}`
      })
      .concat(this.nodes.filter((n) => n.busy).map((n) => `${n.name} busy`))
      .join('; ')
  }

  /** Cuts every link and closes every node. */
  async close(): Promise<void> {
    for (let i = 0; i < this.specs.length; i++) this.cut(i)
    await Promise.allSettled(this.nodes.map((n) => n.close()))
  }

  #name(i: number): string {
    const s = this.specs[i] as LinkSpec
    return `#${i} ${this.nodes[s.a]?.name}->${this.nodes[s.b]?.name}`
  }

  #answersMoving(): boolean {
    for (const l of this.#links) {
      if (l === null) continue
      for (const side of [0, 1] as const) if (l.owesAnswer(side) && l.buffered(side) <= this.#answerLimit) return true
    }
    return false
  }
}

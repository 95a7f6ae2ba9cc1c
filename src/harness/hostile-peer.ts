/**
 * The harness's hostile peer: a sync client with a key of its own that connects straight to a
 * node's `/v1/sync` (nodes without an allow-list admit any peer that completes the handshake),
 * authenticates honestly, and then attacks: forged and tampered entries of honest sleds (bad
 * signatures), real Yjs deletions, entries rebound to other sleds' clients and roots, garbage
 * frames, and equivocations signed by its own key. It counts everything it sends; the checker
 * then searches every node's log for the marked forgeries and any change to honest sleds.
 *
 * Between attacks it also appends valid entries of its own sled, so it is a real (if evil)
 * writer whose entries every node must hold after the run.
 */
import { WebSocket } from 'ws'
import type { SledId } from '../core/ids.js'
import type { StoredEntry } from '../core/query.js'
import type { KeyPair } from '../core/signing.js'
import { clientStart, handshakeStep, type HandshakeState } from '../sync/handshake-flow.js'
import { decodeMessage, encodeUpdate, type WireMessage } from '../sync/messages.js'
import { SYNC_PATH } from '../sync/server.js'
import { toBytes } from '../sync/ws-link.js'
import {
  attackerKeys,
  deletionUpdate,
  forgedRecord,
  garbageFrame,
  HOSTILE_TYPES,
  FORGED_MARKER,
  ownRecord,
  placeRecord,
  placeRun,
  reboundRecord,
  recordOf,
  signAs,
  tamperedRecord,
  type AttackerKeys,
  type GarbageKind,
} from './forgery.js'
import { intIn, pick, type Random } from './random.js'

/** The attacks the hostile peer knows. */
export const HOSTILE_ATTACKS = [
  'forge',
  'tamper',
  'delete',
  'rebind',
  'garbage',
  'equivocate',
  'equivocate-one',
] as const

/** One kind of attack. */
export type HostileAttack = (typeof HOSTILE_ATTACKS)[number]

/**
 * The attacks a run uses unless told otherwise: all of them. (Both equivocation attacks once
 * exposed a bug, fixed since: nodes did not pass equivocation evidence on; docs/HARNESS.md
 * "Findings".)
 */
export const DEFAULT_ATTACKS: readonly HostileAttack[] = HOSTILE_ATTACKS

/** A node the hostile peer may attack. */
export interface HostileTarget {
  /** Name in messages (`node 2`). */
  readonly name: string
  /** Base URL of the node's HTTP API (the sync endpoint is on the same port). */
  readonly url: string
  /** False while the node cannot answer (down, SIGSTOPped, restarting): skipped then. */
  readonly available: () => boolean
}

/** What the hostile peer sent and saw. */
export interface HostileStats {
  /** Websocket connections opened. */
  connections: number
  /** Handshakes completed. */
  handshakes: number
  /** Connections or handshakes that failed (a node going down mid-attack, say). */
  failedConnections: number
  /** Forged entries of honest sleds (signed by the attacker). */
  forged: number
  /** Honest entries with changed content and their original signature. */
  tampered: number
  /** Yjs updates deleting (or deleting and rewriting) honest entries. */
  deletions: number
  /** Valid records placed in another sled's client or root array. */
  rebound: number
  /** Garbage frames. */
  garbage: number
  /** Equivocations split between two nodes (one version each). */
  equivocations: number
  /** Equivocations with both versions sent to one node. */
  equivocationsOneNode: number
  /** Valid entries of the attacker's own sled. */
  ownEntries: number
  /** Frames sent in all. */
  framesSent: number
  /** Frames received (handshake, sync, relays), counted and dropped. */
  framesReceived: number
  /** How the nodes closed the attacker's links, by close code. */
  closes: Record<string, number>
}

function emptyStats(): HostileStats {
  return {
    connections: 0,
    handshakes: 0,
    failedConnections: 0,
    forged: 0,
    tampered: 0,
    deletions: 0,
    rebound: 0,
    garbage: 0,
    equivocations: 0,
    equivocationsOneNode: 0,
    ownEntries: 0,
    framesSent: 0,
    framesReceived: 0,
    closes: {},
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * One authenticated websocket link to a node. Received frames are only counted (a connected
 * peer is sent every relayed update of the cluster; keeping them would grow without bound),
 * except the handshake messages it waits for.
 */
export class HostileLink {
  readonly #ws: WebSocket
  readonly #onReceived: () => void
  /** Messages received during the handshake (null after it: later frames are only counted). */
  #inbox: WireMessage[] | null = []
  #wake: (() => void) | null = null
  /** Set once the link closed. */
  closeCode: number | null = null
  /** Resolves with the close code. */
  readonly closed: Promise<number>

  private constructor(ws: WebSocket, onReceived: () => void) {
    this.#ws = ws
    this.#onReceived = onReceived
    ws.on('message', (data, isBinary) => {
      this.#onReceived()
      if (this.#inbox === null || !isBinary) return
      try {
        this.#inbox.push(decodeMessage(toBytes(data)))
        this.#wake?.()
      } catch {
        // not a message we wait for
      }
    })
    ws.on('error', () => undefined)
    this.closed = new Promise((resolve) => {
      ws.on('close', (code) => {
        this.closeCode = code
        resolve(code)
      })
    })
  }

  /**
   * Connects to `url`'s sync endpoint and completes the handshake as `keys`. Throws when the
   * node refuses, closes, or does not answer within `timeoutMs`.
   */
  static async open(
    url: string,
    keys: KeyPair,
    timeoutMs: number,
    onReceived: () => void = () => undefined,
  ): Promise<HostileLink> {
    const ws = new WebSocket(url.replace(/^http/, 'ws').replace(/\/+$/, '') + SYNC_PATH, {
      maxPayload: 64 * 1024 * 1024,
      handshakeTimeout: timeoutMs,
    })
    const link = new HostileLink(ws, onReceived)
    const deadline = setTimeout(() => ws.terminate(), timeoutMs)
    try {
      // The node's own handshake steps, run honestly: the attack starts after it.
      let state: HandshakeState = clientStart()
      for (;;) {
        const step = handshakeStep(state, await link.#next(), { keys, auth: {} })
        state = step.state
        for (const m of step.send) await link.send(m)
        const out = step.outcome
        if (out.kind === 'ready') return link
        if (out.kind === 'refused') throw new Error(`handshake refused: ${out.reason}`)
        if (out.kind === 'violation') throw new Error(out.message)
      }
    } catch (err) {
      ws.terminate()
      throw err
    } finally {
      clearTimeout(deadline)
      link.#inbox = null
    }
  }

  /** True while open. */
  get open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN
  }

  /** Sends a binary frame, or a text frame for a string; resolves once written (or at once when closed). */
  send(frame: Uint8Array | string): Promise<void> {
    if (this.#ws.readyState !== WebSocket.OPEN) return Promise.resolve()
    return new Promise((resolve) => this.#ws.send(frame, { binary: typeof frame !== 'string' }, () => resolve()))
  }

  /** Closes the link from this side (no-op once closed). */
  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING)
      this.#ws.close(1000, 'done')
  }

  /** Drops the TCP connection. */
  terminate(): void {
    this.#ws.terminate()
  }

  /** The next message the node sent during the handshake. */
  async #next(): Promise<WireMessage> {
    const closed = this.closed.then((code) => {
      throw new Error(`closed (${code}) during the handshake`)
    })
    closed.catch(() => undefined) // handled by the race below; unobserved once the handshake is done
    for (;;) {
      const m = this.#inbox?.shift()
      if (m !== undefined) return m
      await Promise.race([new Promise<void>((r) => (this.#wake = r)), closed])
    }
  }
}

/** What the attacker learns about a target before attacking it. */
interface TargetView {
  readonly heads: Readonly<Record<string, number>>
  /** Honest sleds (every sled but the attacker's) with at least one entry. */
  readonly honest: SledId[]
}

/** Options of a {@link HostilePeer}. */
export interface HostilePeerOptions {
  /** Run seed: the attacker's keys derive from it. */
  readonly seed: number
  /** Random source for choices (seeded stream). */
  readonly random: Random
  /** Attacks to use; default {@link DEFAULT_ATTACKS}. */
  readonly attacks?: readonly HostileAttack[]
  /** Connect + handshake timeout; default 3 s. */
  readonly timeoutMs?: number
  /** Pause between attack rounds, `[min, max]` ms; default [150, 600]. */
  readonly pauseMs?: readonly [number, number]
}

/**
 * The attacker. Lifecycle: {@link attack} runs one campaign until its signal aborts; campaigns
 * may repeat (its own sled's history carries over).
 */
export class HostilePeer {
  readonly keys: AttackerKeys
  readonly stats: HostileStats = emptyStats()
  readonly #rand: Random
  readonly #attacks: readonly HostileAttack[]
  readonly #timeoutMs: number
  readonly #pause: readonly [number, number]
  /** The attacker's own records by seq (the first version of each equivocated slot). */
  readonly #own: string[] = []
  #n = 0

  constructor(opts: HostilePeerOptions) {
    this.keys = attackerKeys(opts.seed)
    this.#rand = opts.random
    this.#attacks = opts.attacks ?? DEFAULT_ATTACKS
    this.#timeoutMs = opts.timeoutMs ?? 3000
    this.#pause = opts.pauseMs ?? [150, 600]
  }

  /** The attacker's sleds: its own (whose entries nodes accept) and the rebinding one (never accepted). */
  get sleds(): readonly SledId[] {
    return [this.keys.main.sled, this.keys.rebind.sled]
  }

  /** Entries of its own sled it has signed (= the length nodes must converge to). */
  get ownLength(): number {
    return this.#own.length
  }

  /** Attacks `targets` round after round until `signal` aborts; never throws. */
  async attack(targets: readonly HostileTarget[], signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const live = targets.filter((t) => t.available())
      const choices = this.#attacks.filter((a) => a !== 'equivocate' || live.length >= 2)
      if (live.length > 0 && choices.length > 0) {
        try {
          await this.#round(pick(this.#rand, choices), live)
        } catch {
          // A target went down mid-round: that is the cluster's business, not a finding.
        }
      }
      await sleep(intIn(this.#rand, this.#pause[0], this.#pause[1]))
    }
  }

  async #round(attack: HostileAttack, live: readonly HostileTarget[]): Promise<void> {
    if (attack === 'equivocate') {
      const a = pick(this.#rand, live)
      const b = pick(
        this.#rand,
        live.filter((t) => t !== a),
      )
      await this.#withLinks([a, b], async (links) => {
        const [la, lb] = links as [HostileLink, HostileLink]
        const seq = this.#own.length
        const n = this.#n++
        const v1 = ownRecord(this.keys.main, seq, n, 1)
        const v2 = ownRecord(this.keys.main, seq, n, 2)
        this.#own.push(v1)
        // Sent at once, so each node gets its version straight from the attacker (before any
        // relay of the other): both versions then live in some node's doc.
        await Promise.all([
          this.#sendUpdate(la, placeRecord(this.keys.main.sled, seq, v1)),
          this.#sendUpdate(lb, placeRecord(this.keys.main.sled, seq, v2)),
        ])
        this.stats.equivocations++
      })
      return
    }
    const target = pick(this.#rand, live)
    await this.#withLinks([target], async (links, views) => {
      const link = links[0] as HostileLink
      const view = views[0] as TargetView
      await this.#appendOwn(link)
      const x = view.honest.length > 0 ? pick(this.#rand, view.honest) : undefined
      switch (attack) {
        case 'equivocate-one': {
          const seq = this.#own.length - 1
          const n = this.#n++
          // Let the node commit the first version before it sees the second.
          await sleep(100)
          await this.#sendUpdate(link, placeRecord(this.keys.main.sled, seq, ownRecord(this.keys.main, seq, n, 3)))
          this.stats.equivocationsOneNode++
          break
        }
        case 'forge':
          if (x === undefined) break
          // The sled's next slot, and sometimes a slot it already holds (rewriting history).
          for (let i = intIn(this.#rand, 1, 2); i > 0; i--) {
            const head = view.heads[x] ?? -1
            const seq = i === 1 ? head + 1 : intIn(this.#rand, 0, Math.max(0, head))
            await this.#sendUpdate(link, placeRecord(x, seq, forgedRecord(this.keys.main, x, seq, this.#n++)))
            this.stats.forged++
          }
          break
        case 'tamper': {
          if (x === undefined) break
          const head = view.heads[x] ?? 0
          const honest = await this.#entries(target, x, head > 0 ? head - 1 : undefined, 1)
          const e = honest[0]
          if (e === undefined) break
          await this.#sendUpdate(link, placeRecord(x, e.seq, tamperedRecord(e, this.#n++)))
          this.stats.tampered++
          break
        }
        case 'delete': {
          if (x === undefined) break
          const records = (await this.#entries(target, x, undefined, 4)).map(recordOf)
          if (records.length === 0) break
          const at = intIn(this.#rand, 0, records.length - 1)
          const count = intIn(this.#rand, 1, records.length - at)
          const rewrite = this.#rand() < 0.4
          const record = forgedRecord(this.keys.main, x, at, this.#n++)
          await this.#sendUpdate(
            link,
            deletionUpdate(x, records, at, count, rewrite ? { attacker: this.keys.main, record } : undefined),
          )
          this.stats.deletions++
          break
        }
        case 'rebind': {
          if (x === undefined) break
          const variant = intIn(this.#rand, 0, 2)
          if (variant === 0) {
            // The attacker's own, validly signed entry placed in an honest sled's client.
            const seq = (view.heads[x] ?? -1) + 1
            await this.#sendUpdate(link, placeRecord(x, seq, reboundRecord(this.keys.main, seq, this.#n++)))
          } else if (variant === 1 && view.honest.length >= 2) {
            // An honest record of one sled placed in another honest sled's client.
            const y = pick(
              this.#rand,
              view.honest.filter((s) => s !== x),
            )
            const [first] = await this.#entries(target, x, undefined, 1)
            if (first === undefined) break
            await this.#sendUpdate(link, placeRecord(y, (view.heads[y] ?? -1) + 1, recordOf(first)))
          } else {
            // A second key's first entry written into an honest sled's root array.
            const rebind = this.keys.rebind
            const record = signAs(rebind, {
              sled: rebind.sled,
              seq: 0,
              ts: Date.now(),
              kind: 'event',
              type: HOSTILE_TYPES.rebound,
              payload: { marker: FORGED_MARKER, n: this.#n++ },
            })
            await this.#sendUpdate(link, placeRecord(rebind.sled, 0, record, x))
          }
          this.stats.rebound++
          break
        }
        case 'garbage': {
          const kinds: GarbageKind[] = ['random', 'bad-update', 'text', 'truncated', 'late-hello']
          for (let i = intIn(this.#rand, 1, 4); i > 0; i--) {
            const sample = encodeUpdate(
              placeRecord(this.keys.main.sled, this.#own.length, ownRecord(this.keys.main, this.#own.length, -1)),
            )
            await this.#send(link, garbageFrame(this.#rand, pick(this.#rand, kinds), sample))
            this.stats.garbage++
          }
          break
        }
      }
    })
  }

  /**
   * Opens a link to each target (with a fresh view of its heads), catches each up on the
   * attacker's own sled, runs `body`, waits a moment for the nodes to react, then closes.
   */
  async #withLinks(
    targets: readonly HostileTarget[],
    body: (links: HostileLink[], views: TargetView[]) => Promise<void>,
  ): Promise<void> {
    const links: HostileLink[] = []
    try {
      const views = await Promise.all(targets.map((t) => this.#view(t)))
      for (const t of targets) {
        this.stats.connections++
        try {
          links.push(await HostileLink.open(t.url, this.keys.main, this.#timeoutMs, () => this.stats.framesReceived++))
        } catch (err) {
          this.stats.failedConnections++
          throw err
        }
        this.stats.handshakes++
      }
      for (let i = 0; i < links.length; i++) await this.#catchUp(links[i] as HostileLink, views[i] as TargetView)
      await body(links, views)
      // Give the nodes time to judge what was sent (and close the link after 3 violations).
      await Promise.race([Promise.all(links.map((l) => l.closed)), sleep(intIn(this.#rand, 150, 400))])
    } finally {
      for (const l of links) {
        if (l.closeCode !== null)
          this.stats.closes[String(l.closeCode)] = (this.stats.closes[String(l.closeCode)] ?? 0) + 1
        l.close()
      }
    }
  }

  /** Sends the node the attacker's own entries it lacks (from its head on), as one update. */
  async #catchUp(link: HostileLink, view: TargetView): Promise<void> {
    const from = (view.heads[this.keys.main.sled] ?? -1) + 1
    if (from >= this.#own.length) return
    const records = this.#own.slice(from)
    await this.#sendUpdate(link, placeRun(this.keys.main.sled, from, records))
  }

  /** Appends one valid entry of the attacker's own sled, sent to this node. */
  async #appendOwn(link: HostileLink): Promise<void> {
    const seq = this.#own.length
    const record = ownRecord(this.keys.main, seq, this.#n++)
    this.#own.push(record)
    await this.#sendUpdate(link, placeRecord(this.keys.main.sled, seq, record))
    this.stats.ownEntries++
  }

  #sendUpdate(link: HostileLink, update: Uint8Array): Promise<void> {
    return this.#send(link, encodeUpdate(update))
  }

  #send(link: HostileLink, frame: Uint8Array | string): Promise<void> {
    if (!link.open) return Promise.resolve()
    this.stats.framesSent++
    return link.send(frame)
  }

  async #view(t: HostileTarget): Promise<TargetView> {
    const st = (await this.#get(t, '/v1/status')) as { heads: Record<string, number> }
    const mine = new Set<string>(this.sleds)
    return { heads: st.heads, honest: (Object.keys(st.heads) as SledId[]).filter((s) => !mine.has(s)).sort() }
  }

  async #entries(t: HostileTarget, sled: SledId, afterSeq: number | undefined, limit: number): Promise<StoredEntry[]> {
    const q = new URLSearchParams({ sled, limit: String(limit) })
    if (afterSeq !== undefined) q.set('afterSeq', String(afterSeq))
    return ((await this.#get(t, `/v1/events?${q.toString()}`)) as { entries: StoredEntry[] }).entries
  }

  async #get(t: HostileTarget, path: string): Promise<unknown> {
    const res = await fetch(t.url + path, { signal: AbortSignal.timeout(this.#timeoutMs) })
    if (!res.ok) throw new Error(`${t.name}: GET ${path} → ${res.status}`)
    return res.json()
  }
}

/**
 * The websocket sync endpoint: accepts peers on an HTTP server's upgrade path and runs a
 * {@link PeerSession} for each (docs/PROTOCOL.md §8).
 *
 * Every socket has an error path: Node's HTTP server drops its own 'error' listener from a
 * socket once it emits 'upgrade', so a client resetting a refused upgrade would otherwise raise
 * an uncaught ECONNRESET and stop the node.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { SledId } from '../core/ids.js'
import { createVerifier } from '../core/signing.js'
import { verifiedPredecessors } from '../core/succession.js'
import { admitLink, HandshakeSlots, type HandshakeCaps } from './admission.js'
import { CLOSE } from './close-codes.js'
import type { SyncLedger } from './ledger.js'
import { Liveness } from './liveness.js'
import { PeerSession, type LinkRefusal, type PeerSessionOptions, type PresentedSuccession } from './peer-session.js'
import { isTooLarge, toBytes, wsLink } from './ws-link.js'

/** Path of the sync endpoint (y-websocket: server URL `ws://host:port/v1`, room `sync`). */
export const SYNC_PATH = '/v1/sync'

/** Options of a {@link SyncServer}. */
export interface SyncServerOptions {
  /** Session options shared by every inbound link (role, link and label are set per link). */
  readonly session: Omit<PeerSessionOptions, 'role' | 'link' | 'label'>
  /** Largest websocket message accepted (ws closes the link with 1009 above it). */
  readonly maxPayload: number
  /** Ping interval; a link that missed a pong by the next ping is dropped as half-open. */
  readonly pingMs?: number
  /**
   * Most authenticated inbound links. Default 256. Past it a newcomer gets a link only by
   * evicting one (admission.ts): the same sled's oldest, or for a preferred peer a stranger's.
   */
  readonly maxConnections?: number
  /**
   * Handshake slots (connections not yet authenticated), per remote address and in all.
   * Default 8 and 64. When all are taken the newcomer evicts the oldest pending handshake of
   * the address holding the most; an address at its own cap is refused (429).
   */
  readonly maxHandshaking?: HandshakeCaps
  /**
   * Peers that may evict strangers at the link cap (allow-listed, or dialed by this node). A
   * peer that proves, by the succession chain of its handshake, that it succeeds one of them is
   * preferred like it.
   */
  readonly preferred?: (sled: SledId) => boolean
  /** Where refusals and kicks are counted. */
  readonly ledger?: SyncLedger
  /** Called with each new session (and again when it ends). */
  readonly onSession?: (s: PeerSession, event: 'open' | 'close') => void
}

interface Live {
  readonly liveness: Liveness
  readonly session: PeerSession
  /** Accepted order, for "oldest" in the link policy. */
  readonly seq: number
  /**
   * The sleds the peer proved it is a signed successor of (PROTOCOL.md §8.2), set when it
   * authenticates: at the link cap it is preferred if any of them is.
   */
  successorOf: readonly SledId[]
}

/** How long a refused upgrade may take to read its answer before its socket is destroyed. */
const REFUSAL_LINGER_MS = 2000

/** Accepts replication links. Lifecycle: `attach(server)` → `stop()`. */
export class SyncServer {
  readonly #o: SyncServerOptions
  readonly #wss: WebSocketServer
  readonly #live = new Map<WebSocket, Live>()
  /** Links still in the handshake, per remote address. */
  readonly #slots: HandshakeSlots<Duplex>
  /** The ws of each upgrade socket once accepted (to close an evicted handshake cleanly). */
  readonly #wsOf = new Map<Duplex, WebSocket>()
  #seq = 0
  #http: Server | null = null
  #pinger: NodeJS.Timeout | null = null
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#upgrade(req, socket, head)

  constructor(opts: SyncServerOptions) {
    this.#o = opts
    this.#slots = new HandshakeSlots(opts.maxHandshaking ?? { perAddress: 8, total: 64 })
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload })
  }

  /** The sessions of open links. */
  sessions(): PeerSession[] {
    return [...this.#live.values()].map((l) => l.session)
  }

  /** Connections in the handshake, from `address` or in all. */
  handshaking(address?: string): number {
    return this.#slots.count(address)
  }

  /** Starts serving upgrades on `server` at {@link SYNC_PATH}. */
  attach(server: Server): void {
    this.#http = server
    server.on('upgrade', this.#onUpgrade)
    this.#pinger = setInterval(() => {
      for (const [ws, live] of this.#live) {
        if (live.liveness.tick(ws.bufferedAmount) === 'ping') {
          ws.ping()
          continue
        }
        live.session.stop('no pong: the link is dead or what this node sends is lost')
        ws.terminate()
      }
    }, this.#o.pingMs ?? 10_000)
  }

  /** Closes every link and stops accepting new ones. */
  async stop(): Promise<void> {
    if (this.#pinger !== null) clearInterval(this.#pinger)
    this.#http?.off('upgrade', this.#onUpgrade)
    for (const [ws, live] of this.#live) {
      live.session.stop('node shutting down')
      ws.close(CLOSE.SHUTDOWN, 'node shutting down')
    }
    const closing = [...this.#live.keys()].map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve()
          const t = setTimeout(() => {
            ws.terminate()
            resolve()
          }, 1000)
          ws.once('close', () => {
            clearTimeout(t)
            resolve()
          })
        }),
    )
    await Promise.all(closing)
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()))
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Before anything else: a client may reset at any point from here on.
    socket.on('error', () => undefined)
    const address = req.socket.remoteAddress ?? '?'
    const path = (req.url ?? '').split('?')[0]
    if (path !== SYNC_PATH) {
      refuse(socket, '404 Not Found')
      return
    }
    const caps = this.#o.maxHandshaking ?? { perAddress: 8, total: 64 }
    // A backstop only: authenticated links are capped when they authenticate, handshakes by
    // their slots, so this many sockets means something else is wrong. Links being closed (an
    // evicted stranger that never answers the close frame lingers a second) do not count.
    let open = 0
    for (const l of this.#live.values()) if (!l.session.closed) open++
    if (open >= (this.#o.maxConnections ?? 256) + caps.total) {
      this.#o.ledger?.count({ kind: 'address', id: address }, 'http:503')
      refuse(socket, '503 Service Unavailable')
      return
    }
    const slot = this.#slots.admit(address, socket)
    if (!slot.admitted) {
      this.#o.ledger?.count({ kind: 'address', id: address }, 'http:429')
      refuse(socket, '429 Too Many Requests', 'Retry-After: 10\r\n')
      return
    }
    if (slot.evict !== null) this.#evictHandshake(slot.evict)
    socket.once('close', () => {
      this.#slots.release(socket)
      this.#wsOf.delete(socket)
    })
    // handleUpgrade may refuse a bad upgrade request itself (400) and never call back; the
    // slot is freed when that socket closes.
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, socket, address))
  }

  /** Frees a slot held by a pending handshake: closed as evicted (or dropped before accept). */
  #evictHandshake(socket: Duplex): void {
    const ws = this.#wsOf.get(socket)
    const session = ws === undefined ? undefined : this.#live.get(ws)?.session
    // No lingering: the stranger's socket would otherwise stay open for a second, and under a
    // flood such closing sockets would pile up.
    if (session !== undefined) session.close(CLOSE.HANDSHAKE_EVICTED, 'handshake slot taken by a newer connection', 0)
    else socket.destroy()
  }

  #accept(ws: WebSocket, req: IncomingMessage, socket: Duplex, address: string): void {
    const label = `${address}:${req.socket.remotePort ?? '?'}`
    const onReady = this.#o.session.onReady
    const session = new PeerSession({
      ...this.#o.session,
      onReady: (s) => {
        this.#slots.release(socket)
        onReady?.(s)
      },
      admit: (s, sled, succession) => this.#admit(s, sled, succession),
      role: 'server',
      label,
      address,
      link: wsLink(ws),
      ...(this.#o.ledger === undefined ? {} : { ledger: this.#o.ledger }),
    })
    const live: Live = { liveness: new Liveness(), session, seq: this.#seq++, successorOf: [] }
    this.#live.set(ws, live)
    this.#wsOf.set(socket, ws)
    ws.on('pong', () => live.liveness.pong())
    ws.on('message', (data, isBinary) => {
      live.liveness.received(Array.isArray(data) ? Buffer.concat(data).length : data.byteLength)
      if (!isBinary) {
        session.receive(new Uint8Array(0)) // text frames are not part of the protocol
        return
      }
      session.receive(toBytes(data))
    })
    // Followed by 'close'; ws reports a frame over maxPayload here, then closes with 1009.
    ws.on('error', (err) => {
      if (isTooLarge(err)) session.noteTransportClose(CLOSE.TOO_LARGE, 'message too large')
    })
    ws.on('close', () => {
      session.stop('link closed')
      this.#live.delete(ws)
      this.#o.onSession?.(session, 'close')
    })
    this.#o.onSession?.(session, 'open')
    session.start()
  }

  /** The link policy for a peer that just authenticated (admission.ts). */
  #admit(s: PeerSession, sled: SledId, succession: PresentedSuccession): LinkRefusal | null {
    const preferred = (x: SledId): boolean => this.#o.preferred?.(x) ?? false
    const successorOf = this.#successorOf(sled, succession, preferred)
    for (const l of this.#live.values()) if (l.session === s) l.successorOf = successorOf
    const isPreferred = (x: SledId, of: readonly SledId[]): boolean => preferred(x) || of.some(preferred)
    const open = [...this.#live.values()]
      .filter((l) => l.session !== s && l.session.ready && l.session.remoteSled !== null)
      .map((l) => ({
        live: l,
        sled: l.session.remoteSled as SledId,
        preferred: isPreferred(l.session.remoteSled as SledId, l.successorOf),
        openedAt: l.seq,
      }))
    const newcomer = { sled, preferred: isPreferred(sled, successorOf) }
    const verdict = admitLink(newcomer, open, this.#o.maxConnections ?? 256)
    if (!verdict.admitted) return { code: CLOSE.LINK_LIMIT, reason: 'link limit reached; retry later' }
    if (verdict.evict !== null) {
      const why =
        verdict.evict.sled === sled ? 'replaced by a newer link of the same sled' : 'evicted for a preferred peer'
      verdict.evict.live.session.close(CLOSE.LINK_LIMIT, why)
    }
    return null
  }

  /**
   * Whom a peer proved it succeeds: the allow-listed sled its chain admitted it as a successor of
   * (checked by the handshake), else, for a peer not preferred itself, every predecessor its chain
   * proves (each record opened and endorsed; a record that does not proves nothing from there
   * on). A chain costs at most 8 records' signatures once per link, what an allow-list already
   * pays per handshake; whether a predecessor is preferred is asked anew at each decision (a peer
   * this node dials is preferred once reached).
   */
  #successorOf(sled: SledId, s: PresentedSuccession, preferred: (x: SledId) => boolean): readonly SledId[] {
    if (s.via !== undefined) return [s.via]
    if (s.chain.length === 0 || preferred(sled)) return []
    return verifiedPredecessors(sled, s.chain, createVerifier(16), this.#o.session.auth.succession?.refuse)
  }
}

/** Answers a refused upgrade and closes its socket, destroyed if the client does not read. */
function refuse(socket: Duplex, status: string, headers = ''): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n${headers}Content-Length: 0\r\n\r\n`)
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref()
}

/**
 * The websocket sync endpoint: accepts peers on an HTTP server's upgrade path and runs a
 * {@link PeerSession} for each (docs/PROTOCOL.md §8).
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { PeerSession, CLOSE, type PeerLink, type PeerSessionOptions } from './peer-session.js'

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
  /** Most simultaneous inbound links. Default 256. */
  readonly maxConnections?: number
  /**
   * Most inbound links still in the handshake (not yet authenticated), from one remote address
   * and in all. Default 8 and 64: a handshake may take 10 s, so without a cap one client could
   * fill every slot with connections that never authenticate and keep real peers out.
   */
  readonly maxHandshaking?: { readonly perAddress: number; readonly total: number }
  /** Called with each new session (and again when it ends). */
  readonly onSession?: (s: PeerSession, event: 'open' | 'close') => void
}

interface Live {
  alive: boolean
  session: PeerSession
}

/** Accepts replication links. Lifecycle: `attach(server)` → `stop()`. */
export class SyncServer {
  readonly #o: SyncServerOptions
  readonly #wss: WebSocketServer
  readonly #live = new Map<WebSocket, Live>()
  /** Links still in the handshake, per remote address. */
  readonly #handshaking = new Map<string, number>()
  #http: Server | null = null
  #pinger: NodeJS.Timeout | null = null
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#upgrade(req, socket, head)

  constructor(opts: SyncServerOptions) {
    this.#o = opts
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload })
  }

  /** The sessions of open links. */
  sessions(): PeerSession[] {
    return [...this.#live.values()].map((l) => l.session)
  }

  /** Starts serving upgrades on `server` at {@link SYNC_PATH}. */
  attach(server: Server): void {
    this.#http = server
    server.on('upgrade', this.#onUpgrade)
    this.#pinger = setInterval(() => {
      for (const [ws, live] of this.#live) {
        if (!live.alive) {
          live.session.stop('no pong: half-open link')
          ws.terminate()
          continue
        }
        live.alive = false
        ws.ping()
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
    const path = (req.url ?? '').split('?')[0]
    if (path !== SYNC_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    if (this.#live.size >= (this.#o.maxConnections ?? 256)) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const address = req.socket.remoteAddress ?? '?'
    const cap = this.#o.maxHandshaking ?? { perAddress: 8, total: 64 }
    let total = 0
    for (const n of this.#handshaking.values()) total += n
    if ((this.#handshaking.get(address) ?? 0) >= cap.perAddress || total >= cap.total) {
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 10\r\nContent-Length: 0\r\n\r\n')
      return
    }
    this.#handshaking.set(address, (this.#handshaking.get(address) ?? 0) + 1)
    // Counted from here: handleUpgrade may still fail (bad upgrade headers) and never call back.
    let counted = true
    const release = (): void => {
      if (!counted) return
      counted = false
      const n = (this.#handshaking.get(address) ?? 1) - 1
      if (n === 0) this.#handshaking.delete(address)
      else this.#handshaking.set(address, n)
    }
    socket.once('close', release)
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, release))
  }

  #accept(ws: WebSocket, req: IncomingMessage, release: () => void): void {
    const label = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`
    const session = new PeerSession({
      ...this.#o.session,
      onReady: (s) => {
        release()
        this.#o.session.onReady?.(s)
      },
      role: 'server',
      label,
      link: wsLink(ws),
    })
    const live: Live = { alive: true, session }
    this.#live.set(ws, live)
    ws.on('pong', () => (live.alive = true))
    ws.on('message', (data, isBinary) => {
      live.alive = true
      if (!isBinary) {
        session.receive(new Uint8Array(0)) // text frames are not part of the protocol
        return
      }
      session.receive(toBytes(data))
    })
    ws.on('error', () => undefined) // followed by 'close'; ws reports oversize frames here
    ws.on('close', () => {
      session.stop('link closed')
      this.#live.delete(ws)
      this.#o.onSession?.(session, 'close')
    })
    this.#o.onSession?.(session, 'open')
    session.start()
  }
}

/** Normalises ws message data to one Uint8Array. */
export function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data))
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

/** A {@link PeerLink} over a `ws` socket (either side). */
export function wsLink(ws: WebSocket): PeerLink {
  return {
    send: (m) => {
      if (ws.readyState === ws.OPEN) ws.send(m)
    },
    close: (code, reason) => {
      // A paused socket would never read the peer's close frame: resume it first, and terminate
      // if the closing handshake has not finished within a second.
      ws.resume()
      ws.close(code, reason)
      setTimeout(() => {
        if (ws.readyState !== ws.CLOSED) ws.terminate()
      }, 1000).unref()
    },
    bufferedAmount: () => ws.bufferedAmount,
    pause: () => ws.pause(),
    resume: () => ws.resume(),
  }
}

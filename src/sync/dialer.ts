/**
 * Dials one configured peer with y-websocket's `WebsocketProvider` and runs a
 * {@link PeerSession} over each connection it makes.
 *
 * The provider is kept for what it does well, connection lifecycle and reconnect backoff, and
 * is kept away from the doc: its update broadcaster is detached (the session relays chunked
 * commits itself) and every incoming message goes to the session, never to y-protocols'
 * handlers, which would apply peer bytes to the doc unchecked and log errors instead of
 * reporting them.
 */
import type { TLSSocket } from 'node:tls'
import { WebsocketProvider } from 'y-websocket'
import { WebSocket } from 'ws'
import type { SledLog } from '../log/sled-log.js'
import { CLOSE } from './close-codes.js'
import type { SyncLedger } from './ledger.js'
import { Liveness } from './liveness.js'
import { PeerSession, type PeerSessionOptions } from './peer-session.js'
import { pinMismatch, tlsOptions, type PeerTrust } from './peer-tls.js'
import { SYNC_PATH } from './server.js'
import { isTooLarge, toBytes, wsLink } from './ws-link.js'

/** Options of a {@link PeerDialer}. */
export interface PeerDialerOptions {
  /** Peer base URL, e.g. `ws://10.0.0.2:7400` or `wss://peer.example:7400`. */
  readonly url: string
  readonly log: SledLog
  /** Session options (role, link and label are set by the dialer). */
  readonly session: Omit<PeerSessionOptions, 'role' | 'link' | 'label' | 'log'>
  /** Largest websocket message accepted from the peer. */
  readonly maxPayload: number
  /** Longest wait between reconnect attempts (exponential backoff from 200 ms). */
  readonly maxBackoffMs?: number
  /**
   * Wait before dialing again after the peer refused this node (a 44xx close: wrong
   * token, not on its allow-list, a bad signature, too many violations, dialing itself).
   * Default 60 s: a refusal is usually a configuration mismatch, and once the operator fixes
   * the peer's side the link must come back without restarting this node, but retrying at
   * reconnect speed would only hammer a peer that has said no.
   */
  readonly refusedRetryMs?: number
  /**
   * Ping interval. A link whose pong has not come back by the next ping is dropped: the peer is
   * gone, or what this node sends is lost on the way (a one-way partition). Default 10 s.
   */
  readonly pingMs?: number
  /** Trust for `wss://` peers (CA bundle and pins). */
  readonly trust?: PeerTrust
  /** Where kicks of this link are counted (1009 from the transport). */
  readonly ledger?: SyncLedger
  /** Called with each new session (and again when it ends). */
  readonly onSession?: (s: PeerSession, event: 'open' | 'close') => void
}

/** A peer's refusal of this node (a 44xx close) and when the dialer tries again. */
export interface Refusal {
  readonly code: number
  readonly reason: string
  /** Next attempt, ms since the epoch. */
  readonly retryAt: number
}

/**
 * Why the last attempt or link to a peer failed. `code` is stable: a system error code
 * (`ECONNREFUSED`, `ENOTFOUND`, a TLS code such as `DEPTH_ZERO_SELF_SIGNED_CERT`),
 * `HTTP_<status>` for a refused upgrade, `CLOSE_<code>` for a closed link, `NO_PONG`,
 * `TLS_PIN_MISMATCH`, or `ERROR`.
 */
export interface DialError {
  readonly code: string
  readonly reason: string
  /** When it happened, ms since the epoch. */
  readonly at: number
}

/** A stable code and a reason for an error a dial raised. */
export function describeDialError(err: unknown): { code: string; reason: string } {
  const e = err as { code?: unknown; message?: unknown } | null
  const message = typeof e?.message === 'string' ? e.message : String(err)
  const status = /Unexpected server response: (\d{3})/.exec(message)
  const code = status !== null ? `HTTP_${status[1]}` : typeof e?.code === 'string' ? e.code : 'ERROR'
  return { code, reason: message.slice(0, 200) }
}

/** The provider's `ws` field, seen as the ws library's socket it really is. */
type Socket = InstanceType<typeof WebSocket>

/** Keeps a link to one peer. Lifecycle: `start()` → `stop()`. */
export class PeerDialer {
  readonly #o: PeerDialerOptions
  #provider: WebsocketProvider | null = null
  #session: PeerSession | null = null
  #last: PeerSession | null = null
  #refused: Refusal | null = null
  #lastError: DialError | null = null
  /** Sockets whose failure is already recorded (their later close says less). */
  readonly #failed = new WeakSet<Socket>()
  #retryTimer: ReturnType<typeof setTimeout> | null = null
  #pinger: ReturnType<typeof setInterval> | null = null
  #liveness: Liveness | null = null

  constructor(opts: PeerDialerOptions) {
    this.#o = opts
  }

  /** The peer URL. */
  get url(): string {
    return this.#o.url
  }

  /** The current session, if connected. */
  get session(): PeerSession | null {
    return this.#session
  }

  /** The most recent session, open or closed (its stats say why a link went down). */
  get lastSession(): PeerSession | null {
    return this.#last
  }

  /**
   * Set while the peer's last close was a refusal (44xx): y-websocket stops reconnecting then,
   * and the dialer tries again once at `retryAt` (ms since the epoch).
   */
  get refused(): Refusal | null {
    return this.#refused
  }

  /** Why the last dial or link failed, and when (kept after a later success: it is history). */
  get lastError(): DialError | null {
    return this.#lastError
  }

  /**
   * Starts dialing; reconnects with backoff until stopped. After a refusal (44xx) it waits
   * `refusedRetryMs` before the next attempt.
   */
  start(): void {
    const dialer = this
    const maxPayload = this.#o.maxPayload
    const secure = /^wss:/i.test(this.#o.url)
    const tls = secure && this.#o.trust !== undefined ? tlsOptions(this.#o.trust) : {}
    const trust = this.#o.trust
    // The socket class handed to the provider: bounded messages, TLS trust, every error
    // recorded, and onmessage routed to the session (wrapped, so a malformed frame can never
    // throw out of a socket callback).
    const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage') as PropertyDescriptor
    class PeerSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { maxPayload, handshakeTimeout: 10_000, ...tls })
        this.on('error', (err) => dialer.#socketError(this, err))
        if (secure && trust !== undefined) {
          // Before 'open': no sledlog byte goes to a server whose certificate is not pinned.
          this.once('upgrade', (res) => {
            const why = pinMismatch(trust, res.socket as TLSSocket)
            if (why === null) return
            dialer.#fail(this, 'TLS_PIN_MISMATCH', why)
            this.terminate()
          })
        }
        Object.defineProperty(this, 'onmessage', {
          configurable: true,
          get: () => onmessage.get?.call(this) as unknown,
          set: (fn: unknown) => {
            const wrapped = fn === null ? null : (ev: { data: ArrayBuffer | Buffer }) => dialer.#receive(this, ev.data)
            onmessage.set?.call(this, wrapped)
          },
        })
      }
    }
    const base = this.#o.url.replace(/\/+$/, '')
    const provider = new WebsocketProvider(
      base + SYNC_PATH.slice(0, SYNC_PATH.lastIndexOf('/')),
      'sync',
      this.#o.log.doc,
      {
        WebSocketPolyfill: PeerSocket as unknown as typeof globalThis.WebSocket,
        disableBc: true,
        connect: false,
        maxBackoffTime: this.#o.maxBackoffMs ?? 30_000,
      },
    )
    provider.doc.off('update', provider._updateHandler)
    provider.awareness.destroy()
    provider.on('status', ({ status }: { status: string }) => {
      if (status === 'connected') this.#open(provider.ws as unknown as Socket)
    })
    provider.on('connection-close', (event: { code: number; reason: string } | null) => {
      this.#noteClose(provider.ws as unknown as Socket | null, event)
      this.#closeSession('link closed')
    })
    // y-websocket treats 44xx as final and stops; a refusal here is a configuration mismatch
    // that the peer's operator may fix, so come back slowly instead of never.
    provider.on('closed', ({ code, reason }: { code: number; reason: string }) => {
      const wait = this.#o.refusedRetryMs ?? 60_000
      this.#refused = { code, reason, retryAt: Date.now() + wait }
      if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null
        if (this.#provider === provider) provider.connect()
      }, wait)
      this.#retryTimer.unref()
    })
    this.#provider = provider
    provider.connect()
  }

  /**
   * Dials at once when waiting out a reconnect backoff (the peer is known to be back, e.g. it
   * just dialed this node); no-op while linked, connecting, refused (44xx) or stopped.
   */
  redialNow(): void {
    const p = this.#provider
    if (p === null || p.ws !== null || !p.shouldConnect) return
    p.wsUnsuccessfulReconnects = 0
    p.connect()
  }

  /** Stops dialing and closes the link. */
  stop(): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    this.#retryTimer = null
    this.#closeSession('node shutting down')
    const p = this.#provider
    this.#provider = null
    if (p !== null) {
      p.disconnect()
      p.destroy()
    }
  }

  #open(ws: Socket): void {
    this.#refused = null
    this.#closeSession('replaced by a new connection')
    const provider = this.#provider
    const session = new PeerSession({
      ...this.#o.session,
      onSynced: (s) => {
        // y-websocket resets its backoff only on its own `synced` flag, which this dialer never
        // sets (sessions sync, not the provider): reset it here, or every drop doubles the wait.
        if (provider !== null) provider.wsUnsuccessfulReconnects = 0
        this.#o.session.onSynced?.(s)
      },
      log: this.#o.log,
      role: 'client',
      label: this.#o.url,
      address: this.#o.url,
      link: wsLink(ws),
      ...(this.#o.ledger === undefined ? {} : { ledger: this.#o.ledger }),
    })
    this.#session = session
    this.#last = session
    this.#startPinging(ws)
    this.#o.onSession?.(session, 'open')
    session.start()
  }

  /** Pings the peer; a pong not back by the next ping means the round trip is broken (liveness.ts). */
  #startPinging(ws: Socket): void {
    const every = this.#o.pingMs ?? 10_000
    const liveness = new Liveness()
    this.#liveness = liveness
    ws.on('pong', () => liveness.pong())
    this.#pinger = setInterval(() => {
      if (ws.readyState !== ws.OPEN) return
      if (liveness.tick(ws.bufferedAmount) === 'ping') {
        ws.ping()
        return
      }
      this.#fail(ws, 'NO_PONG', `no pong within ${every} ms: the peer is gone or what this node sends is lost`)
      this.#session?.stop('no pong')
      ws.terminate()
    }, every)
  }

  #receive(ws: Socket, data: ArrayBuffer | Buffer): void {
    const provider = this.#provider
    if (provider === null || (provider.ws as unknown) !== ws) return
    // The provider's watchdog reconnects after 30 s without a message; we consume messages
    // ourselves, so tell it one arrived.
    provider.wsLastMessageReceived = Date.now()
    const bytes = typeof data === 'string' ? new Uint8Array(0) : toBytes(data)
    this.#liveness?.received(bytes.length)
    this.#session?.receive(bytes)
  }

  #socketError(ws: Socket, err: Error): void {
    if (isTooLarge(err)) {
      this.#fail(ws, `CLOSE_${CLOSE.TOO_LARGE}`, 'the peer sent a message over our limit')
      if ((this.#provider?.ws as unknown) === ws)
        this.#session?.noteTransportClose(CLOSE.TOO_LARGE, 'message too large')
      return
    }
    const { code, reason } = describeDialError(err)
    this.#fail(ws, code, reason)
  }

  /** Records why `ws` failed, once per socket (its first failure is the cause). */
  #fail(ws: Socket, code: string, reason: string): void {
    if (this.#provider === null || this.#failed.has(ws)) return
    this.#failed.add(ws)
    this.#lastError = { code, reason, at: Date.now() }
  }

  /**
   * A link ended: records why (the code it closed with, and who closed it), unless its
   * socket's failure is already recorded.
   */
  #noteClose(ws: Socket | null, event: { code: number; reason: string } | null): void {
    if (ws === null) return
    const ours = this.#session?.stats()
    // 1005/1006: no code on the wire (an abrupt end); what this node decided, if anything, says more.
    const wire = event !== null && event.code !== 1005 && event.code !== 1006 ? event.code : null
    const code = wire ?? ours?.closeCode ?? null
    if (code === null || code === 1000) return
    const byUs = ours?.closeCode === code
    const why = byUs
      ? `closed by this node: ${ours?.closeReason ?? ''}`
      : event !== null && event.reason !== ''
        ? `closed by the peer: ${event.reason}`
        : 'link closed'
    this.#fail(ws, `CLOSE_${code}`, why)
  }

  #closeSession(reason: string): void {
    if (this.#pinger !== null) clearInterval(this.#pinger)
    this.#pinger = null
    this.#liveness = null
    const s = this.#session
    if (s === null) return
    this.#session = null
    s.stop(reason)
    this.#o.onSession?.(s, 'close')
  }
}

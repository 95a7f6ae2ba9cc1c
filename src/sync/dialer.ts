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
import { WebsocketProvider } from 'y-websocket'
import { WebSocket } from 'ws'
import type { SledLog } from '../log/sled-log.js'
import { PeerSession, type PeerSessionOptions } from './peer-session.js'
import { SYNC_PATH, toBytes, wsLink } from './server.js'

/** Options of a {@link PeerDialer}. */
export interface PeerDialerOptions {
  /** Peer base URL, e.g. `ws://10.0.0.2:7400`. */
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

/** The provider's `ws` field, seen as the ws library's socket it really is. */
type Socket = InstanceType<typeof WebSocket>

/** Keeps a link to one peer. Lifecycle: `start()` → `stop()`. */
export class PeerDialer {
  readonly #o: PeerDialerOptions
  #provider: WebsocketProvider | null = null
  #session: PeerSession | null = null
  #last: PeerSession | null = null
  #refused: Refusal | null = null
  #retryTimer: ReturnType<typeof setTimeout> | null = null

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

  /**
   * Starts dialing; reconnects with backoff until stopped. After a refusal (44xx) it waits
   * `refusedRetryMs` before the next attempt.
   */
  start(): void {
    const dialer = this
    const maxPayload = this.#o.maxPayload
    // The socket class handed to the provider: bounded messages, and onmessage routed to the
    // session (wrapped, so a malformed frame can never throw out of a socket callback).
    const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage') as PropertyDescriptor
    class PeerSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { maxPayload, handshakeTimeout: 10_000 })
        this.on('error', () => undefined)
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
    provider.on('connection-close', () => this.#closeSession('link closed'))
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
      link: wsLink(ws),
    })
    this.#session = session
    this.#last = session
    this.#o.onSession?.(session, 'open')
    session.start()
  }

  #receive(ws: Socket, data: ArrayBuffer | Buffer): void {
    const provider = this.#provider
    if (provider === null || (provider.ws as unknown) !== ws) return
    // The provider's watchdog reconnects after 30 s without a message; we consume messages
    // ourselves, so tell it one arrived.
    provider.wsLastMessageReceived = Date.now()
    this.#session?.receive(typeof data === 'string' ? new Uint8Array(0) : toBytes(data))
  }

  #closeSession(reason: string): void {
    const s = this.#session
    if (s === null) return
    this.#session = null
    s.stop(reason)
    this.#o.onSession?.(s, 'close')
  }
}

/**
 * Hostile sync peers on raw `ws` sockets, for attacking a node's replication endpoint.
 *
 * - {@link HostileClient} dials a node's sync endpoint (`ws://127.0.0.1:<port>/v1/sync`), can
 *   complete the signed handshake with its own key pair or break it on purpose, and then sends
 *   arbitrary frames.
 * - {@link HostileServer} listens on loopback, speaks the handshake (or not) and runs a script on
 *   every connection a real node makes to it, to attack the node's dialing side.
 *
 * Both record every frame they receive (decoded where possible) and the close code and reason.
 */
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { sledIdFromPublicKey, type SledId } from '../../src/core/ids.js'
import type { KeyPair } from '../../src/core/signing.js'
import {
  buildOk,
  buildProve,
  handshakeStep,
  serverStart,
  type OkInputs,
  type ProveInputs,
} from '../../src/sync/handshake-flow.js'
import { newNonce, verifyTranscript, type Transcript } from '../../src/sync/handshake.js'
import { decodeMessage, encodeStep1, encodeUpdate, type WireMessage } from '../../src/sync/messages.js'
import { SYNC_PATH } from '../../src/sync/server.js'
import { toBytes } from '../../src/sync/ws-link.js'

/** How a link was closed, as this end saw it. */
export interface CloseInfo {
  readonly code: number
  readonly reason: string
}

/** A received frame. */
export interface Frame {
  readonly data: Uint8Array
  readonly binary: boolean
  /** The decoded message, or undefined when it does not decode. */
  readonly msg: WireMessage | undefined
}

type HelloMsg = Extract<WireMessage, { t: 'hello' }>
type ProveMsg = Extract<WireMessage, { t: 'prove' }>
type OkMsg = Extract<WireMessage, { t: 'ok' }>

function tryDecode(b: Uint8Array): WireMessage | undefined {
  try {
    return decodeMessage(b)
  } catch {
    return undefined
  }
}

/** One end of a raw websocket that records what it receives. */
export class RawEnd {
  readonly frames: Frame[] = []
  /** Set once the link closed. */
  closeInfo: CloseInfo | null = null
  readonly closed: Promise<CloseInfo>
  /** Errors the socket reported (ws reports oversize frames here before closing). */
  readonly errors: Error[] = []

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const bytes = isBinary ? toBytes(data) : new Uint8Array(Buffer.from(toBytes(data)))
      this.frames.push({ data: bytes, binary: isBinary, msg: isBinary ? tryDecode(bytes) : undefined })
    })
    ws.on('error', (err) => this.errors.push(err))
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        resolve(this.closeInfo)
      })
    })
  }

  /** Decoded messages received so far. */
  get messages(): WireMessage[] {
    return this.frames.flatMap((f) => (f.msg === undefined ? [] : [f.msg]))
  }

  /** True while the socket is open. */
  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  /** Sends a binary frame (no-op once closed). Resolves when ws has written it. */
  send(bytes: Uint8Array): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve()
    return new Promise((resolve) => this.ws.send(bytes, { binary: true }, () => resolve()))
  }

  /**
   * Sends binary frames in one burst: the socket is corked, so they leave in as few TCP writes
   * as possible and the peer reads many of them in one chunk.
   */
  sendBurst(frames: readonly Uint8Array[]): void {
    if (this.ws.readyState !== WebSocket.OPEN) return
    const socket = (this.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket
    socket.cork()
    for (const f of frames) this.ws.send(f, { binary: true })
    socket.uncork()
  }

  /** Sends a text frame. */
  sendText(text: string): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve()
    return new Promise((resolve) => this.ws.send(text, { binary: false }, () => resolve()))
  }

  /** Sends a sync update (type 0, sub-type 2) carrying `update`. */
  sendUpdate(update: Uint8Array): Promise<void> {
    return this.send(encodeUpdate(update))
  }

  /** Sends sync step 1 with a raw state vector. */
  sendStep1(stateVector: Uint8Array): Promise<void> {
    return this.send(encodeStep1(stateVector))
  }

  /** Waits until `pick` returns something other than undefined/false. */
  async waitFor<T>(pick: () => T | undefined | false, what: string, ms = 5000): Promise<T> {
    const t0 = Date.now()
    for (;;) {
      const v = pick()
      if (v !== undefined && v !== false) return v
      if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 5))
    }
  }

  /** Waits for the first message (at or after index `from` of {@link messages}) matching `pred`. */
  waitMessage<M extends WireMessage>(pred: (m: WireMessage) => m is M, what: string, from = 0, ms = 5000): Promise<M> {
    return this.waitFor(() => this.messages.slice(from).find(pred), what, ms)
  }

  /** Waits for the link to close; throws after `ms`. */
  async waitClose(ms = 5000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`link still open after ${ms} ms`)), ms)
    })
    try {
      return await Promise.race([this.closed, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Closes the link from this side. */
  close(code = 1000, reason = ''): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(code, reason)
  }

  /** Drops the TCP connection without a close frame. */
  terminate(): void {
    this.ws.terminate()
  }
}

/**
 * How a hostile client builds its prove message: the inputs of the node's own
 * {@link buildProve}, all optional (default: an honest proof). `signWith` signs while the
 * client's own key is presented; `token` replaces the client's token (undefined: none).
 */
export type ProveTweak = Omit<ProveInputs, 'keys' | 'token' | 'presentKey'> & {
  readonly presentKey?: Uint8Array
  readonly signWith?: KeyPair
  readonly token?: string | undefined
}

/** Options of a {@link HostileClient}. */
export interface HostileClientOptions {
  readonly keys: KeyPair
  readonly token?: string
  /** Largest frame accepted from the node (default 256 MiB). */
  readonly maxPayload?: number
  /** Path (default the sync endpoint). */
  readonly path?: string
  /** Local address to connect from (any 127.x.y.z on Linux: many "clients" from one test). */
  readonly localAddress?: string
  /** TLS options for `wss://` (e.g. `rejectUnauthorized: false` for a self-signed node). */
  readonly tls?: { readonly rejectUnauthorized?: boolean }
}

/** A raw websocket client attacking a node's sync endpoint. */
export class HostileClient extends RawEnd {
  readonly keys: KeyPair
  readonly token: string | undefined
  /** The last prove message sent. */
  lastProve: Uint8Array | null = null
  /** The transcript of the last prove sent. */
  transcript: Transcript | null = null

  private constructor(ws: WebSocket, opts: HostileClientOptions) {
    super(ws)
    this.keys = opts.keys
    this.token = opts.token
  }

  /** Connects to `baseUrl` (`ws://127.0.0.1:<port>`) and waits for the socket to open. */
  static async connect(baseUrl: string, opts: HostileClientOptions): Promise<HostileClient> {
    const ws = new WebSocket(baseUrl.replace(/\/+$/, '') + (opts.path ?? SYNC_PATH), {
      maxPayload: opts.maxPayload ?? 256 * 1024 * 1024,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
      ...opts.tls,
    })
    const client = new HostileClient(ws, opts)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('close', (code) => reject(new Error(`closed (${code}) before opening`)))
    })
    return client
  }

  /** This client's sled id. */
  get sled(): SledId {
    return this.keys.sled
  }

  /** The local TCP port (the node labels inbound links `address:port`). */
  get localPort(): number {
    return (this.ws as unknown as { _socket: { localPort: number } })._socket.localPort
  }

  /** Waits for the node's hello. */
  hello(ms = 5000): Promise<HelloMsg> {
    return this.waitMessage((m): m is HelloMsg => m.t === 'hello', 'hello', 0, ms)
  }

  /** Builds a prove message answering `hello` with the node's own code, honest unless tweaked. */
  proveFor(hello: HelloMsg, tweak: ProveTweak = {}): { bytes: Uint8Array; transcript: Transcript } {
    const { signWith, ...rest } = tweak
    return buildProve(hello, {
      ...rest,
      keys: signWith ?? this.keys,
      presentKey: tweak.presentKey ?? this.keys.publicKey,
      token: 'token' in tweak ? tweak.token : this.token,
    })
  }

  /** Sends a prove message (honest unless tweaked) without waiting for the answer. */
  async sendProve(tweak: ProveTweak = {}): Promise<Uint8Array> {
    const { bytes, transcript } = this.proveFor(await this.hello(), tweak)
    this.lastProve = bytes
    this.transcript = transcript
    await this.send(bytes)
    return bytes
  }

  /**
   * Completes the handshake honestly: waits for hello, proves, waits for the node's ok and checks
   * its signature. Throws when the node closes the link instead.
   */
  async handshake(tweak: ProveTweak = {}): Promise<{ transcript: Transcript; serverProofValid: boolean }> {
    await this.sendProve(tweak)
    const ok = await this.waitFor(
      () =>
        this.messages.find((m): m is OkMsg => m.t === 'ok') ?? (this.closeInfo !== null ? this.closeInfo : undefined),
      'ok',
    )
    if (!('t' in ok)) throw new Error(`handshake refused: ${ok.code} ${ok.reason}`)
    const t = this.transcript as Transcript
    // The node's own client step judges the server's proof.
    const id = { keys: this.keys, auth: this.token === undefined ? {} : { token: this.token } }
    const step = handshakeStep({ step: 'await-ok', transcript: t }, ok, id)
    return { transcript: t, serverProofValid: step.outcome.kind === 'ready' }
  }

  /** Connects and completes the handshake. */
  static async authenticated(baseUrl: string, opts: HostileClientOptions): Promise<HostileClient> {
    const c = await HostileClient.connect(baseUrl, opts)
    await c.handshake()
    return c
  }
}

/**
 * How a hostile server answers a prove: the inputs of the node's own {@link buildOk}, all
 * optional (default: an honest ok). `token` replaces the server's token (undefined: none).
 */
export type OkTweak = Omit<OkInputs, 'keys' | 'token'> & {
  readonly signWith?: KeyPair
  readonly token?: string | undefined
}

/** One connection a node made to a {@link HostileServer}. */
export class HostileConn extends RawEnd {
  /** The transcript once the node proved itself. */
  transcript: Transcript | null = null
  /** True when the node's prove verified. */
  proveValid: boolean | null = null
  /** The node's sled once it sent a prove. */
  peerSled: SledId | null = null

  constructor(
    ws: WebSocket,
    readonly server: HostileServer,
    readonly index: number,
  ) {
    super(ws)
  }

  /** Sends hello; returns the nonce. */
  async sendHello(): Promise<Uint8Array> {
    const nonce = newNonce()
    for (const m of serverStart(this.server.keys, nonce).send) await this.send(m)
    return nonce
  }

  /** Sends hello, waits for the node's prove and answers ok (honest unless tweaked). */
  async handshake(tweak: OkTweak = {}): Promise<Transcript> {
    const nonce = await this.sendHello()
    const prove = await this.waitMessage((m): m is ProveMsg => m.t === 'prove', 'prove')
    const t: Transcript = {
      serverKey: this.server.keys.publicKey,
      serverNonce: nonce,
      clientKey: prove.publicKey,
      clientNonce: prove.nonce,
    }
    this.transcript = t
    this.peerSled = sledIdFromPublicKey(prove.publicKey)
    this.proveValid = verifyTranscript('client', t, prove.signature)
    const { signWith, ...rest } = tweak
    await this.send(
      buildOk(t, {
        ...rest,
        keys: signWith ?? this.server.keys,
        token: 'token' in tweak ? tweak.token : this.server.token,
      }),
    )
    return t
  }
}

/** Options of a {@link HostileServer}. */
export interface HostileServerOptions {
  readonly keys: KeyPair
  readonly token?: string
  /**
   * What to do on each connection (default: complete the handshake, then stay silent). Errors
   * are collected in {@link HostileServer.scriptErrors}.
   */
  readonly script?: (conn: HostileConn) => Promise<void> | void
  readonly maxPayload?: number
}

/** A ws server on loopback that real nodes dial as a peer. */
export class HostileServer {
  readonly conns: HostileConn[] = []
  readonly scriptErrors: unknown[] = []
  readonly keys: KeyPair
  readonly token: string | undefined
  #stopping = false

  private constructor(
    readonly wss: WebSocketServer,
    readonly url: string,
    opts: HostileServerOptions,
  ) {
    this.keys = opts.keys
    this.token = opts.token
    const script =
      opts.script ??
      (async (c: HostileConn) => {
        await c.handshake()
      })
    wss.on('connection', (ws) => {
      if (this.#stopping) return ws.terminate() // a node redialing while the server stops
      const conn = new HostileConn(ws, this, this.conns.length)
      this.conns.push(conn)
      Promise.resolve()
        .then(() => script(conn))
        .catch((err: unknown) => {
          if (conn.closeInfo === null) this.scriptErrors.push(err)
        })
    })
  }

  /** Starts listening on 127.0.0.1 (random port). `url` is the base URL a node dials. */
  static async start(opts: HostileServerOptions): Promise<HostileServer> {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      path: SYNC_PATH,
      maxPayload: opts.maxPayload ?? 256 * 1024 * 1024,
    })
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
    const port = (wss.address() as AddressInfo).port
    return new HostileServer(wss, `ws://127.0.0.1:${port}`, opts)
  }

  /** Waits until at least `n` connections were made. */
  async waitConnections(n: number, ms = 5000): Promise<HostileConn> {
    const t0 = Date.now()
    while (this.conns.length < n) {
      if (Date.now() - t0 > ms) throw new Error(`only ${this.conns.length} of ${n} connections after ${ms} ms`)
      await new Promise((r) => setTimeout(r, 5))
    }
    return this.conns[n - 1] as HostileConn
  }

  /** Stops listening and drops every connection (also those a node makes meanwhile). */
  async stop(): Promise<void> {
    this.#stopping = true
    const closed = new Promise<void>((resolve) => this.wss.close(() => resolve()))
    for (const c of this.conns) c.terminate()
    await closed
  }
}

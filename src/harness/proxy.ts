/**
 * A fault-injecting TCP proxy for the multi-node harness.
 *
 * Every replication link of a harness cluster runs through one of these: node i dials the
 * proxy's port, the proxy dials node j. Because it works on raw TCP it needs to know nothing
 * about websockets or the sync protocol, so the faults it injects are the ones a real network
 * produces: refused and reset connections (cut), silent loss (blackhole), delay (latency and
 * jitter) and a slow pipe (bandwidth). Faults are set per direction where that makes sense:
 * `forward` is what the dialing node sends (client → target), `backward` what it receives.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * Which way a fault applies. `forward`: bytes from the dialing side to the target; `backward`:
 * bytes from the target back to the dialer; `both`: either way.
 */
export type Direction = 'both' | 'forward' | 'backward'

/** Options of a {@link FaultProxy}. */
export interface FaultProxyOptions {
  /** Port of the real server the proxy forwards to. */
  readonly targetPort: number
  /** Host of the real server; default 127.0.0.1. */
  readonly targetHost?: string
  /** Host to listen on; default 127.0.0.1. */
  readonly host?: string
  /** Port to listen on; default 0 (a free one, see {@link FaultProxy.port}). */
  readonly port?: number
  /** Name used in errors and {@link FaultProxy.toString}, e.g. `"0→1"`. */
  readonly label?: string
  /** Random source in [0, 1) for jitter; pass a seeded PRNG for replayable runs. */
  readonly random?: () => number
}

/** Counters of a proxy, for assertions and reports. */
export interface ProxyStats {
  /** Connections accepted and forwarded. */
  readonly accepted: number
  /** Connections refused (reset at once) while the proxy was cut. */
  readonly refused: number
  /** Connections open now. */
  readonly active: number
  /** Bytes delivered, per direction. */
  readonly delivered: { readonly forward: number; readonly backward: number }
  /** Bytes silently dropped by a blackhole, per direction. */
  readonly dropped: { readonly forward: number; readonly backward: number }
}

/** The shaping state of one direction. */
interface Flow {
  blackholed: boolean
  latencyMs: number
  jitterMs: number
  /** null = unlimited. */
  bytesPerSec: number | null
}

function cleanFlow(): Flow {
  return { blackholed: false, latencyMs: 0, jitterMs: 0, bytesPerSec: null }
}

/**
 * Bytes queued in one direction (waiting for their delivery time) above which the proxy stops
 * reading from the sender. Without it a shaped, slow direction would buffer without bound;
 * with it the sender sees TCP backpressure, as behind a real slow link.
 */
const QUEUE_HIGH_WATER = 1024 * 1024

/** One direction of one proxied connection: reads `src`, delays/limits/drops, writes `dst`. */
class Pipe {
  readonly #queue: Array<{ buf: Buffer; at: number }> = []
  #queuedBytes = 0
  #timer: NodeJS.Timeout | null = null
  /** Delivery time of the last queued chunk: later chunks never overtake it (TCP is ordered). */
  #lastAt = 0
  /** When the simulated wire finishes sending what is queued (bandwidth). */
  #wireFreeAt = 0
  #dstBlocked = false
  #srcEnded = false
  /** Set when bytes were dropped: this byte stream now has a hole in it. */
  tainted = false

  constructor(
    readonly src: Socket,
    readonly dst: Socket,
    readonly flow: () => Flow,
    readonly random: () => number,
    readonly count: (delivered: number, dropped: number) => void,
  ) {
    src.on('data', (chunk: Buffer) => this.#onData(chunk))
    src.on('end', () => {
      this.#srcEnded = true
      this.#maybeEnd()
    })
    dst.on('drain', () => {
      this.#dstBlocked = false
      this.#pump()
      this.#maybeResume()
    })
  }

  /** Drops what is queued (a blackhole also swallows bytes already "on the wire"). */
  dropQueued(): void {
    if (this.#queue.length === 0) return
    this.count(0, this.#queuedBytes)
    this.#queue.length = 0
    this.#queuedBytes = 0
    this.tainted = true
    this.#maybeResume()
    this.#maybeEnd()
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#queue.length = 0
    this.#queuedBytes = 0
  }

  #onData(chunk: Buffer): void {
    const f = this.flow()
    if (f.blackholed) {
      this.count(0, chunk.length)
      this.tainted = true
      return
    }
    if (f.latencyMs === 0 && f.jitterMs === 0 && f.bytesPerSec === null && this.#queue.length === 0) {
      // Fast path: nothing to shape, so behave like a plain pipe with backpressure.
      this.#write(chunk)
      return
    }
    const now = performance.now()
    const delay = (): number => f.latencyMs + (f.jitterMs > 0 ? this.random() * f.jitterMs : 0)
    if (f.bytesPerSec === null) {
      this.#enqueue(chunk, Math.max(now + delay(), this.#lastAt))
    } else {
      // Split into slices of ~50 ms of wire time so a big chunk trickles out instead of
      // arriving in one lump after a long pause.
      const slice = Math.max(512, Math.min(64 * 1024, Math.floor(f.bytesPerSec / 20)))
      for (let off = 0; off < chunk.length; off += slice) {
        const part = chunk.subarray(off, off + slice)
        // Serialisation delay on the (simulated) wire, then propagation delay.
        this.#wireFreeAt = Math.max(now, this.#wireFreeAt) + (part.length * 1000) / f.bytesPerSec
        this.#enqueue(part, Math.max(this.#wireFreeAt + delay(), this.#lastAt))
      }
    }
    if (this.#queuedBytes > QUEUE_HIGH_WATER) this.src.pause()
  }

  #enqueue(buf: Buffer, at: number): void {
    this.#lastAt = at
    this.#queue.push({ buf, at })
    this.#queuedBytes += buf.length
    this.#arm()
  }

  #arm(): void {
    if (this.#timer !== null || this.#dstBlocked) return
    const head = this.#queue[0]
    if (head === undefined) return
    const wait = Math.max(0, head.at - performance.now())
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#pump()
    }, wait)
  }

  #pump(): void {
    const now = performance.now()
    while (!this.#dstBlocked) {
      const head = this.#queue[0]
      if (head === undefined || head.at > now + 0.5) break
      this.#queue.shift()
      this.#queuedBytes -= head.buf.length
      this.#write(head.buf)
    }
    this.#arm()
    this.#maybeResume()
    this.#maybeEnd()
  }

  #write(buf: Buffer): void {
    if (this.dst.destroyed) return
    this.count(buf.length, 0)
    if (!this.dst.write(buf)) {
      // The receiver is slow: stop reading from the sender until it drains.
      this.#dstBlocked = true
      this.src.pause()
    }
  }

  #maybeResume(): void {
    if (!this.#dstBlocked && this.#queuedBytes <= QUEUE_HIGH_WATER / 2 && !this.src.destroyed) this.src.resume()
  }

  /** Forwards the sender's FIN once everything before it was delivered. */
  #maybeEnd(): void {
    if (this.#srcEnded && this.#queue.length === 0 && !this.dst.destroyed) this.dst.end()
  }
}

/** One proxied connection: the accepted client socket and the socket to the target. */
interface Conn {
  readonly client: Socket
  readonly upstream: Socket
  readonly forward: Pipe
  readonly backward: Pipe
}

/**
 * A TCP proxy from a listen port to a target port with injectable faults.
 * Lifecycle: `start()` → faults… → `stop()`. All fault methods apply at once and may be called
 * in any order; {@link FaultProxy.heal} returns the proxy to a clean pipe.
 */
export class FaultProxy {
  readonly #o: FaultProxyOptions
  readonly #conns = new Set<Conn>()
  readonly #flows: { forward: Flow; backward: Flow } = { forward: cleanFlow(), backward: cleanFlow() }
  readonly #random: () => number
  #targetPort: number
  #targetHost: string
  #server: Server | null = null
  #cut = false
  #accepted = 0
  #refused = 0
  readonly #delivered = { forward: 0, backward: 0 }
  readonly #dropped = { forward: 0, backward: 0 }

  constructor(opts: FaultProxyOptions) {
    this.#o = opts
    this.#targetPort = opts.targetPort
    this.#targetHost = opts.targetHost ?? '127.0.0.1'
    this.#random = opts.random ?? Math.random
  }

  /** The port the proxy listens on (after {@link start}). */
  get port(): number {
    const addr = this.#server?.address() as AddressInfo | null | undefined
    if (addr === null || addr === undefined) throw new Error(`proxy ${this.toString()} is not started`)
    return addr.port
  }

  /** `ws://host:port` of the proxy, the URL a node dials to reach the target through it. */
  get wsUrl(): string {
    return `ws://${this.#o.host ?? '127.0.0.1'}:${this.port}`
  }

  /** True while {@link cut}. */
  get isCut(): boolean {
    return this.#cut
  }

  /** Counters (see {@link ProxyStats}). */
  get stats(): ProxyStats {
    return {
      accepted: this.#accepted,
      refused: this.#refused,
      active: this.#conns.size,
      delivered: { ...this.#delivered },
      dropped: { ...this.#dropped },
    }
  }

  /** Starts listening. */
  async start(): Promise<void> {
    if (this.#server !== null) return
    // allowHalfOpen: the proxy forwards each side's FIN itself, after the bytes queued before
    // it, instead of letting Node end the other direction early.
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#accept(s))
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#o.port ?? 0, this.#o.host ?? '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  }

  /** Stops listening and destroys every connection. Idempotent. */
  async stop(): Promise<void> {
    const server = this.#server
    this.#server = null
    this.#destroyAll()
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /**
   * Points the proxy at another target port (a node restarted on a new port). Existing
   * connections keep their old target.
   */
  retarget(port: number, host?: string): void {
    this.#targetPort = port
    if (host !== undefined) this.#targetHost = host
  }

  /**
   * Cuts the link: destroys every open connection (both ends see a reset) and refuses new ones
   * until {@link heal}. The proxy keeps listening while cut, so no other process can take its
   * port and the dialer keeps seeing an explicit failure, like a firewall sending resets.
   */
  cut(): void {
    this.#cut = true
    this.#destroyAll()
  }

  /**
   * Silently drops bytes, keeping sockets open: a partition neither end notices until its own
   * timeouts fire. `direction` gives a one-way partition (e.g. `backward`: the dialer's bytes
   * arrive but it hears nothing back). Bytes already queued by latency/bandwidth are dropped too.
   */
  blackhole(direction: Direction = 'both'): void {
    for (const d of this.#dirs(direction)) this.#flows[d].blackholed = true
    for (const c of this.#conns) for (const d of this.#dirs(direction)) c[d].dropQueued()
  }

  /**
   * Delays every chunk by `ms` plus a uniform random `[0, jitterMs)`. Order is kept (a chunk
   * never overtakes an earlier one), as on a TCP stream.
   */
  latency(ms: number, jitterMs = 0, direction: Direction = 'both'): void {
    if (!(ms >= 0 && jitterMs >= 0)) throw new RangeError('latency and jitter must be >= 0')
    for (const d of this.#dirs(direction)) {
      this.#flows[d].latencyMs = ms
      this.#flows[d].jitterMs = jitterMs
    }
  }

  /** Limits throughput to `bytesPerSec` (null: unlimited). Readers see TCP backpressure. */
  bandwidth(bytesPerSec: number | null, direction: Direction = 'both'): void {
    if (bytesPerSec !== null && !(bytesPerSec > 0)) throw new RangeError('bandwidth must be > 0 bytes/s or null')
    for (const d of this.#dirs(direction)) this.#flows[d].bytesPerSec = bytesPerSec
  }

  /**
   * Removes every fault: accepts connections again, stops dropping, delaying and limiting.
   * Connections that lost bytes to a blackhole are destroyed: their byte streams have holes a
   * real TCP stack would never deliver (it would retransmit or time the connection out), so
   * letting them continue would only feed the endpoints garbage. They reconnect as after a
   * timeout.
   */
  heal(): void {
    this.#cut = false
    this.#flows.forward = cleanFlow()
    this.#flows.backward = cleanFlow()
    for (const c of [...this.#conns]) {
      if (c.forward.tainted || c.backward.tainted) this.#destroy(c)
    }
  }

  /** `FaultProxy(label :port → host:port)`. */
  toString(): string {
    const port = this.#server?.address() as AddressInfo | null | undefined
    return `FaultProxy(${this.#o.label ?? ''} :${port?.port ?? '?'} → ${this.#targetHost}:${this.#targetPort})`
  }

  #dirs(direction: Direction): Array<'forward' | 'backward'> {
    return direction === 'both' ? ['forward', 'backward'] : [direction]
  }

  /** The pipe carrying one direction: it reads that direction's current faults and counts into its totals. */
  #pipe(dir: 'forward' | 'backward', from: Socket, to: Socket): Pipe {
    return new Pipe(
      from,
      to,
      () => this.#flows[dir],
      this.#random,
      (n, d) => {
        this.#delivered[dir] += n
        this.#dropped[dir] += d
      },
    )
  }

  #accept(client: Socket): void {
    if (this.#cut || this.#server === null) {
      // Refuse with a reset rather than a clean close: that is what a dropped route or a
      // firewall rejecting the connection looks like to the dialer.
      this.#refused++
      client.on('error', () => undefined)
      client.resetAndDestroy()
      return
    }
    this.#accepted++
    // Hold the client's bytes until the target answers, so none are lost or reordered.
    client.pause()
    client.setNoDelay(true)
    const upstream = createConnection({
      host: this.#targetHost,
      port: this.#targetPort,
      allowHalfOpen: true,
      noDelay: true,
    })
    upstream.pause()
    const conn: Conn = {
      client,
      upstream,
      forward: this.#pipe('forward', client, upstream),
      backward: this.#pipe('backward', upstream, client),
    }
    this.#conns.add(conn)
    upstream.once('connect', () => {
      client.resume()
      upstream.resume()
    })
    // An error on either socket (including a target that refuses the connection) resets the
    // pair: a proxied connection is one connection to both ends. A clean close is not an
    // error: the FIN was forwarded in order by the pipe, and the pair is forgotten once both
    // sockets have closed.
    const down = (): void => this.#destroy(conn)
    const closed = (hadError: boolean): void => {
      if (hadError || (client.closed && upstream.closed)) this.#destroy(conn)
    }
    client.on('error', down)
    upstream.on('error', down)
    client.on('close', closed)
    upstream.on('close', closed)
  }

  #destroy(c: Conn): void {
    if (!this.#conns.delete(c)) return
    c.forward.stop()
    c.backward.stop()
    // resetAndDestroy sends an RST, so both ends learn at once that the connection is gone
    // (destroy() would send a FIN, which a peer may read as an orderly end of stream).
    for (const s of [c.client, c.upstream]) {
      if (s.destroyed) continue
      if (s.connecting || s.pending) s.destroy()
      else s.resetAndDestroy()
    }
  }

  #destroyAll(): void {
    for (const c of [...this.#conns]) this.#destroy(c)
  }
}

/**
 * Websocket abuse for tests against real node processes: raw upgrade requests (from any
 * 127.x.y.z, which Linux accepts as a local source address), a handshake flood that keeps
 * connections open from many addresses, throwaway sleds a peer relays, and the open descriptors
 * of a process. The well-behaved client and memory probes are probe.ts and rss.ts; raw HTTP
 * abuse is abuse.ts.
 */
import { readdirSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { onTestFinished } from 'vitest'
import { encodeRuns } from '../../src/core/update-codec.js'
import { SYNC_PATH } from '../../src/sync/server.js'
import type { HostileClient } from './hostile-peer.js'
import { signedRun, testKeys } from './keys.js'

/** The upgrade request a websocket client sends (RFC 6455's sample key). */
export function upgradeRequest(path = SYNC_PATH, extraHeaders = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`
  )
}

/** Options of {@link rawRequest}. */
export interface RawRequestOptions {
  readonly port: number
  /** Bytes to send once connected (default: an upgrade request to the sync endpoint). */
  readonly request?: string
  readonly localAddress?: string
}

/**
 * Sends a raw request and resolves with the status code of the answer's first line (0 when the
 * connection ended without one) and the still-open socket, destroyed when the test finishes.
 */
export function rawRequest(opts: RawRequestOptions): Promise<{ status: number; socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(
      {
        port: opts.port,
        host: '127.0.0.1',
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
      },
      () => socket.write(opts.request ?? upgradeRequest()),
    )
    onTestFinished(() => void socket.destroy())
    let head = ''
    socket.on('error', reject)
    socket.on('data', function first(d: Buffer) {
      head += d.toString('latin1')
      if (!head.includes('\r\n')) return
      socket.off('data', first)
      socket.off('error', reject)
      socket.on('error', () => undefined)
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), socket, head })
    })
    socket.on('close', () => resolve({ status: 0, socket, head }))
  })
}

/** What a {@link HandshakeFlood} saw. */
export interface FloodStats {
  /** Upgrade answers by status (101 = a slot taken). */
  readonly statuses: Record<string, number>
  /** Connections open now. */
  readonly open: number
  /** Connection errors (resets, refusals). */
  readonly errors: number
}

/**
 * Keeps up to `perAddress` upgraded-but-never-authenticated websocket connections open from
 * each address, reopening each one as soon as the node closes it (after its handshake timeout
 * or an eviction) or refuses it (after `retryMs`): strangers holding handshake slots.
 */
export class HandshakeFlood {
  readonly #statuses: Record<string, number> = {}
  readonly #sockets = new Set<Socket>()
  #errors = 0
  #running = false

  constructor(
    readonly port: number,
    readonly addresses: readonly string[],
    readonly perAddress: number,
    readonly retryMs = 100,
  ) {}

  /** Starts the flood (stopped when the test finishes). */
  start(): void {
    this.#running = true
    onTestFinished(() => this.stop())
    for (const a of this.addresses) for (let i = 0; i < this.perAddress; i++) this.#loop(a)
  }

  /** Closes every connection and stops reopening them. */
  stop(): void {
    this.#running = false
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
  }

  get stats(): FloodStats {
    return { statuses: { ...this.#statuses }, open: this.#sockets.size, errors: this.#errors }
  }

  #loop(address: string): void {
    if (!this.#running) return
    const socket = createConnection({ port: this.port, host: '127.0.0.1', localAddress: address }, () =>
      socket.write(upgradeRequest()),
    )
    this.#sockets.add(socket)
    let head = ''
    let status = 0
    socket.on('data', (d: Buffer) => {
      if (status !== 0) return // a websocket frame (hello, close): never answered
      head += d.toString('latin1')
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head)
      if (m === null) return
      status = Number(m[1])
      this.#statuses[status] = (this.#statuses[status] ?? 0) + 1
    })
    socket.on('error', () => this.#errors++)
    socket.on('close', () => {
      this.#sockets.delete(socket)
      setTimeout(() => this.#loop(address), status === 101 ? 0 : this.retryMs).unref()
    })
  }
}

/** `n` loopback addresses from `127.0.0.<from>` on (skipping .0 and .255 host bytes). */
export function loopbackAddresses(n: number, from = 2): string[] {
  const out: string[] = []
  for (let k = from; out.length < n; k++) if (k % 256 !== 0 && k % 256 !== 255) out.push(`127.0.${k >> 8}.${k % 256}`)
  return out
}

/** Open file descriptors of process `pid` (sockets included) (Linux). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/**
 * Sends one valid entry each of `n` throwaway sleds (test keys `firstKey`…) over an
 * authenticated link, 100 sleds an update: what any peer may relay, since a sled is only a key.
 */
export async function sendThrowawaySleds(link: HostileClient, firstKey: number, n: number): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    const runs = Array.from({ length: Math.min(100, n - i) }, (_, j) => signedRun(testKeys(firstKey + i + j), 0, 1))
    await link.sendUpdate(encodeRuns(runs))
  }
}

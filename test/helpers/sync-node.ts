/**
 * In-process replicating nodes for sync tests, built like test/sync/replicator.test.ts: a real
 * LevelDB log in a temp dir, a real HTTP server on loopback and a real {@link Replicator}.
 * Everything is stopped when the test finishes (or earlier with `stop()`, e.g. to restart a
 * node on the same data directory).
 */
import { createServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { onTestFinished } from 'vitest'
import * as Y from 'yjs'
import type { SledId } from '../../src/core/ids.js'
import { clientIdOf } from '../../src/core/ids.js'
import { openRecord, createVerifier, type KeyPair } from '../../src/core/signing.js'
import type { OpenLogOptions } from '../../src/log/open-log.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { loadIdentity } from '../../src/store/identity.js'
import type { HandshakeCaps } from '../../src/sync/admission.js'
import type { AnswerSchedulerOptions } from '../../src/sync/answer-scheduler.js'
import type { AuthConfig } from '../../src/sync/handshake.js'
import type { SyncLogger } from '../../src/sync/ledger.js'
import type { PeerTlsConfig } from '../../src/sync/peer-tls.js'
import type { SessionLimits } from '../../src/sync/peer-session.js'
import { RecoveryGate, type RecoveryGateOptions } from '../../src/sync/recovery.js'
import { Replicator, type PeerStatus } from '../../src/sync/replicator.js'
import { SYNC_PATH } from '../../src/sync/server.js'
import { testLog } from './logs.js'

/** Options of {@link syncNode}. */
export interface SyncNodeOptions {
  /** Data directory (default: a fresh temp dir); reuse one to restart a node. */
  readonly dir?: string
  /** Peer base URLs, or a function of the node's own base URL (to dial itself). */
  readonly peers?: readonly string[] | ((selfUrl: string) => readonly string[])
  readonly auth?: AuthConfig
  readonly limits?: Partial<SessionLimits>
  /**
   * 'hold': recover the node's own head through a {@link RecoveryGate} (as a node whose key
   * predates its store does); default 'skip'.
   */
  readonly recovery?: 'hold' | 'skip'
  /**
   * Options of the gate besides its log and peers (allow comes from `auth.allow`). Its mode is
   * `resume` unless given: an in-process node has no owner to move it to a successor key
   * (SledNode does that: test/node/succession-recovery.test.ts).
   */
  readonly gate?: Partial<Omit<RecoveryGateOptions, 'log' | 'peers'>>
  readonly maxBackoffMs?: number
  readonly refusedRetryMs?: number
  readonly pingMs?: number
  /** Listen on this port (default: any free one); to bring a node back at the same URL. */
  readonly port?: number
  /** Options of the log. */
  readonly log?: OpenLogOptions
  /** Start the replicator right away (default true). */
  readonly start?: boolean
  /** Serve HTTPS/WSS with this PEM certificate and key (the node's URL is then `wss://`). */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer }
  /** Trust for `wss://` peers. */
  readonly peerTls?: PeerTlsConfig
  readonly maxConnections?: number
  readonly maxHandshaking?: HandshakeCaps
  readonly answers?: AnswerSchedulerOptions
  readonly logger?: SyncLogger
}

/** A running in-process node. */
export interface SyncNode {
  readonly log: SledLog
  readonly keys: KeyPair
  readonly dir: string
  /** Base URL, `ws://127.0.0.1:<port>` (what peers are configured with). */
  readonly url: string
  /** The sync endpoint, `ws://127.0.0.1:<port>/v1/sync`. */
  readonly syncUrl: string
  readonly port: number
  readonly http: Server
  readonly rep: Replicator
  /** The recovery gate (with `recovery: 'hold'`), started with the replicator. */
  readonly gate: RecoveryGate | null
  /** The raw sockets of inbound upgrade requests, in arrival order (to watch write queues). */
  readonly upgrades: Socket[]
  /** Starts the replicator (when created with `start: false`). */
  start(): void
  /** Stops replication, the HTTP server and the log. Idempotent. */
  stop(): Promise<void>
}

/** Starts a node for the current test. */
export async function syncNode(opts: SyncNodeOptions = {}): Promise<SyncNode> {
  const { log, dir } = await testLog(opts.dir, opts.log ?? {})
  const keys = (await loadIdentity(dir)) as KeyPair
  const handler = (_req: unknown, res: { end(): void }) => res.end()
  // An https.Server emits the same 'upgrade' events; the replicator only listens to those.
  const http = (opts.tls === undefined ? createServer(handler) : createHttpsServer(opts.tls, handler)) as Server
  const upgrades: Socket[] = []
  let started = false
  http.on('upgrade', (_req, socket: Socket) => {
    upgrades.push(socket)
    // Before the replicator attaches, nothing answers an upgrade: refuse it, as a server with
    // no sync endpoint does, instead of leaving the dialer waiting for its handshake timeout.
    if (!started) socket.destroy()
  })
  await new Promise<void>((r) => http.listen(opts.port ?? 0, '127.0.0.1', r))
  const port = (http.address() as AddressInfo).port
  const url = `${opts.tls === undefined ? 'ws' : 'wss'}://127.0.0.1:${port}`
  const peers = typeof opts.peers === 'function' ? opts.peers(url) : (opts.peers ?? [])
  const allow = opts.auth?.allow
  const gate =
    opts.recovery === 'hold'
      ? new RecoveryGate({ log, peers, mode: 'resume', ...(allow === undefined ? {} : { allow }), ...opts.gate })
      : null
  const rep = new Replicator({
    log,
    keys,
    peers,
    auth: opts.auth ?? {},
    maxBackoffMs: opts.maxBackoffMs ?? 500,
    ...(gate === null ? {} : { recovery: gate }),
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    ...(opts.pingMs === undefined ? {} : { pingMs: opts.pingMs }),
    ...(opts.refusedRetryMs === undefined ? {} : { refusedRetryMs: opts.refusedRetryMs }),
    ...(opts.peerTls === undefined ? {} : { peerTls: opts.peerTls }),
    ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }),
    ...(opts.maxHandshaking === undefined ? {} : { maxHandshaking: opts.maxHandshaking }),
    ...(opts.answers === undefined ? {} : { answers: opts.answers }),
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  })
  let stopping: Promise<void> | null = null
  const node: SyncNode = {
    log,
    keys,
    dir,
    url,
    syncUrl: url + SYNC_PATH,
    port,
    http,
    rep,
    gate,
    upgrades,
    start() {
      if (started) return
      started = true
      gate?.start()
      rep.start(http)
    },
    stop() {
      stopping ??= (async () => {
        gate?.stop()
        if (started) await rep.stop()
        http.closeAllConnections()
        await new Promise((r) => http.close(r))
        await log.close()
      })()
      return stopping
    },
  }
  onTestFinished(() => node.stop())
  if (opts.start ?? true) node.start()
  return node
}

/** Polls `cond` every 10 ms until it holds; throws `what` after `ms`. */
export async function until(cond: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The status entries of a node's links to (or from) `sled`. */
export function linksOf(node: SyncNode, sled: SledId): PeerStatus[] {
  return node.rep.status().filter((s) => s.sled === sled)
}

/** The single status entry of the inbound link whose remote port is `port` (before the handshake). */
export function inboundByPort(node: SyncNode, port: number): PeerStatus | undefined {
  return node.rep.status().find((s) => s.url === null && s.label?.endsWith(`:${port}`) === true)
}

/** What a log holds, to compare before and after an attack. */
export interface LogSnapshot {
  /** Yjs state vector (client → next clock). */
  readonly sv: Readonly<Record<string, number>>
  /** Hex of the whole Yjs doc state. */
  readonly state: string
  /** Every record, per sled. */
  readonly records: Readonly<Record<string, readonly string[]>>
  /** Forked sleds. */
  readonly forks: number
}

/** Snapshots a log (small logs only: it encodes the whole doc). */
export function snapshotLog(log: SledLog): LogSnapshot {
  const sv: Record<string, number> = {}
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(log.doc))) sv[String(client)] = clock
  const records: Record<string, string[]> = {}
  for (const sled of log.sleds()) {
    records[sled] = log.doc.getArray<string>('log:' + sled).toArray()
  }
  return {
    sv,
    state: Buffer.from(Y.encodeStateAsUpdate(log.doc)).toString('hex'),
    records,
    forks: log.status().forks.sleds,
  }
}

const verifier = createVerifier()

/**
 * Checks that `log` holds everything of `before` byte for byte, that only the sleds in `grown`
 * gained entries (exactly as many as given, or at least as many with `atLeast`), that the doc
 * state vector equals the per-sled heads (clock == seq binding), and that every held record is
 * validly signed by its sled for its seq.
 */
export function expectOnlyGrown(
  log: SledLog,
  before: LogSnapshot,
  grown: Readonly<Record<string, number>> = {},
  atLeast = false,
): void {
  const after = snapshotLog(log)
  const problems: string[] = []
  const clients = new Set([...Object.keys(before.sv), ...Object.keys(after.sv)])
  const grownByClient = new Map<string, number>()
  for (const [sled, n] of Object.entries(grown)) grownByClient.set(String(clientIdOf(sled as SledId)), n)
  for (const c of clients) {
    const was = before.sv[c] ?? 0
    const is = after.sv[c] ?? 0
    const want = grownByClient.get(c) ?? 0
    if (atLeast && want > 0 ? is < was + want : is !== was + want)
      problems.push(`client ${c}: clock ${was} -> ${is}, expected +${want}`)
  }
  for (const [sled, recs] of Object.entries(before.records)) {
    const now = after.records[sled] ?? []
    for (let i = 0; i < recs.length; i++) if (now[i] !== recs[i]) problems.push(`${sled.slice(0, 8)}/${i} changed`)
  }
  for (const [sled, recs] of Object.entries(after.records)) {
    if (after.sv[String(clientIdOf(sled as SledId))] !== recs.length)
      problems.push(`${sled.slice(0, 8)}: state vector != entries`)
    recs.forEach((r, seq) => {
      try {
        const { entry } = openRecord(r, verifier)
        if (entry.sled !== sled || entry.seq !== seq)
          problems.push(`${sled.slice(0, 8)}/${seq} holds ${entry.sled.slice(0, 8)}/${entry.seq}`)
      } catch (err) {
        problems.push(`${sled.slice(0, 8)}/${seq}: ${(err as Error).message}`)
      }
    })
  }
  if (problems.length > 0) throw new Error(`log changed unexpectedly:\n  ${problems.slice(0, 20).join('\n  ')}`)
}

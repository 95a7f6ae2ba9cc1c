/**
 * A running sledlog node: its log, one HTTP server carrying both the API and the websocket sync
 * endpoint, and replication with its peers.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { TokenStore } from '../auth/token-store.js'
import { readTokensFile, tokensPath } from '../auth/tokens.js'
import type { SledId } from '../core/ids.js'
import { ackMetrics, ackSection } from '../http/acks.js'
import { createApi, type Api, type ApiLogger } from '../http/api.js'
import { sendError } from '../http/respond.js'
import { createApiServer, readTls, type ServerLimits } from '../http/server.js'
import type { StreamLimits } from '../http/sse.js'
import { SledLog, type AppendInput, type LogLimits } from '../log/sled-log.js'
import { assertNoPendingRotation, loadIdentity, loadOrCreateIdentity, retiredKeyPath } from '../store/identity.js'
import { deriveMacKey, LevelStore } from '../store/level-store.js'
import { IngestWriter, type IngestWriterOptions } from '../ingest/writer.js'
import { isSledlogError, sledlogError, type SledlogError } from '../errors.js'
import { replicationMetrics, replicationSection } from '../http/replication.js'
import { recoveryMetrics, recoverySection, type RecoveryControl } from '../http/recovery.js'
import { configuredPeerCount } from '../sync/peer-holds.js'
import { Replicator } from '../sync/replicator.js'
import { RecoveryGate, type RecoveryMode, type RecoveryStatus } from '../sync/recovery.js'
import {
  AckedAppends,
  ackSettingsProblem,
  DEFAULT_ACK_TIMEOUT_MS,
  type AckedAppend,
  type AckOptions,
} from './acked-appends.js'
import { DB_DIR } from './init-data-dir.js'
import { finishNodeRotation, rotateKey, type RotateResult } from './key-rotation.js'
import { RecoveryMarker } from './recovery-marker.js'
import type { SessionLimits } from '../sync/peer-session.js'
import { checkSecurity, securityStatus, type SecurityFacts } from './security.js'

/** Where a node logs; a pino logger fits. */
export interface NodeLogger extends ApiLogger {
  warn(obj: Readonly<Record<string, unknown>>, msg: string): void
}

/** Node settings (validated by the CLI's config layer). */
export interface NodeConfig {
  /** Data directory: key file and LevelDB. */
  readonly dataDir: string
  readonly host: string
  /** Port for HTTP and websocket sync; 0 picks a free one. */
  readonly port: number
  /** Peer base URLs to dial. */
  readonly peers: readonly string[]
  /** Allowed peer sled ids (and their signed successors); absent = any authenticated peer. */
  readonly allow?: readonly SledId[]
  /** Admin public keys whose revocations retire their target (PROTOCOL.md §6.5); the same on every node. */
  readonly adminKeys?: readonly SledId[]
  /** Shared token both sides must prove. */
  readonly token?: string
  /** fsync every commit. */
  readonly sync?: boolean
  /**
   * Configured peers that must prove they durably hold a write before it is answered, when the
   * write does not say (`acks`); 0 (default): durable on this node. At most the configured peers.
   */
  readonly minAcks?: number
  /** How long a write waits for its acknowledgements when it does not say, ms (default 10 s). */
  readonly ackTimeoutMs?: number
  /**
   * A recovering node warns after this long (default 10 s), then ever more rarely; it never
   * ends a recovery (docs/ARCHITECTURE.md "Recovery").
   */
  readonly recoveryTimeoutMs?: number
  /**
   * Configured peers whose holds receipts prove a recovering node's head; default every dialed
   * peer (every allow-listed one when it dials none).
   */
  readonly recoveryQuorum?: number
  /**
   * What a proven recovery leads to (docs/ARCHITECTURE.md "Recovery"): `succession` (default), the
   * node moves to a successor key and no seq is ever signed twice; `resume`, it appends on under
   * its key, signing again the seqs of entries no peer held (acks=0 writes lost with the disk).
   */
  readonly recoveryMode?: RecoveryMode
  /** Told when the node moved to a successor key by itself (the CLI prints it for supervisors). */
  readonly onSuccession?: (r: RotateResult) => void
  readonly maxBodyBytes?: number
  readonly limits?: Partial<LogLimits>
  readonly sessionLimits?: Partial<SessionLimits>
  readonly maxBackoffMs?: number
  /** Wait before dialing a peer again after it refused this node (44xx); default 60 s. */
  readonly refusedRetryMs?: number
  /** Ingest bus and writer tuning. */
  readonly ingest?: Omit<IngestWriterOptions, 'log'>
  /**
   * Where the node reports internal errors and security warnings, and replication warns about
   * the peers it closes (default: silent).
   */
  readonly logger?: NodeLogger
  /**
   * API tokens (hashed, with scopes), managed by `sledlog token`; default
   * `<dataDir>/api-tokens.json`. With at least one token every API request but /healthz needs
   * `Authorization: Bearer <token>` with the route's scope.
   */
  readonly apiTokensFile?: string
  /**
   * The operator's explicit opt-out of the non-loopback safety checks (a node listening off
   * loopback otherwise refuses to start without API tokens and without a replication allow-list
   * or token). Warned about at start and shown in status.
   */
  readonly insecure?: boolean
  /** Serve HTTPS and WSS with this PEM certificate chain and key (file paths). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string }
  /**
   * How `wss://` peers are trusted: a PEM CA bundle (file path) instead of the system roots,
   * and/or SHA-256 certificate fingerprints (hex, colons optional) to pin.
   */
  readonly peerTls?: { readonly caFile?: string; readonly pins?: readonly string[] }
  /**
   * Host header values the API answers besides loopback names and IP literals (DNS rebinding
   * defence), e.g. the node's public DNS name.
   */
  readonly allowedHosts?: readonly string[]
  /** Browser origins allowed to call the API cross-origin (CORS); none by default. */
  readonly corsOrigins?: readonly string[]
  /** Caps on event streams (defaults: docs/API.md "Limits"). */
  readonly streamLimits?: Partial<StreamLimits>
  /** HTTP server timeouts and header size (defaults: docs/API.md "Limits"). */
  readonly serverLimits?: Partial<ServerLimits>
}

export { RECOVERING_FILE } from './recovery-marker.js'

/** Metadata key of the last recovery's outcome (its final status), shown in status later. */
export const RECOVERY_META_KEY = 'recovery'

/** A node. Lifecycle: `start()` → `stop()`. */
export class SledNode {
  readonly #config: NodeConfig
  #log: SledLog | null = null
  #http: Server | null = null
  #replicator: Replicator | null = null
  #ingest: IngestWriter | null = null
  #api: Api | null = null
  #tokens: TokenStore | null = null
  #appends: AckedAppends | null = null
  #recovery: RecoveryGate | null = null
  #facts: SecurityFacts | null = null
  #warnings: readonly string[] = []
  /** What this run does once replication says appends may proceed (its recovery ended). */
  #settling: Promise<void> = Promise.resolve()
  /** A move to a successor key under way (after a proven recovery), and its failure if it failed. */
  #switching: Promise<void> | null = null
  #switchFailed: unknown = null
  #stopping = false

  constructor(config: NodeConfig) {
    this.#config = config
  }

  /** The node's log (after start; the successor's after a move to a successor key). */
  get log(): SledLog {
    if (this.#log === null) throw new Error('node not started')
    return this.#log
  }

  /** The replicator (after start). */
  get replicator(): Replicator {
    if (this.#replicator === null) throw new Error('node not started')
    return this.#replicator
  }

  /** The recovery gate of this run, if the node started recovering its own head (after start). */
  get recovery(): RecoveryGate | null {
    return this.#recovery
  }

  /**
   * Resolves once this run's recovery (if any) has ended and, when it led to a move to a
   * successor key, the move has finished (then `log` is the successor's); rejects if it failed.
   */
  get succession(): Promise<void> {
    return this.#settled()
  }

  /** The ingest writer, whose bus producers publish onto (after start). */
  get ingest(): IngestWriter {
    if (this.#ingest === null) throw new Error('node not started')
    return this.#ingest
  }

  /**
   * Appends events atomically (the append path of POST /v1/events) and resolves once they are
   * durable here and, with `acks` N ≥ 1 (default the node's `minAcks`), once N configured peers
   * proved they durably hold them. NOT_ENOUGH_PEERS: fewer connected, nothing appended;
   * ACKS_TIMEOUT: stored here, not held by N in time (`details` say what is known).
   */
  append(inputs: readonly AppendInput[], opts: AckOptions = {}): Promise<AckedAppend> {
    if (this.#appends === null)
      return Promise.reject(this.#switching === null ? new Error('node not started') : this.#betweenKeys())
    return this.#appends.append(inputs, opts)
  }

  /** The base URL the node listens on (after start). */
  get url(): string {
    const addr = this.#http?.address() as AddressInfo | null
    if (addr === null || addr === undefined) throw new Error('node not started')
    const host = this.#config.host.includes(':') ? `[${this.#config.host}]` : this.#config.host
    return `${this.#config.tls === undefined ? 'http' : 'https'}://${host}:${addr.port}`
  }

  /** Opens the log, starts listening and starts replicating. */
  async start(): Promise<void> {
    const c = this.#config
    // Checked before the data directory is touched: a refused start changes nothing.
    const tokensFile = c.apiTokensFile ?? tokensPath(c.dataDir)
    const facts: SecurityFacts = {
      host: c.host,
      apiTokens: ((await readTokensFile(tokensFile)) ?? []).length,
      tokensFile,
      allow: c.allow?.length,
      syncToken: c.token !== undefined && c.token !== '',
      tls: c.tls !== undefined,
      insecure: c.insecure ?? false,
      allowedHosts: c.allowedHosts ?? [],
      corsOrigins: c.corsOrigins ?? [],
    }
    const warnings = checkSecurity(facts)
    const ackTimeoutMs = c.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS
    const peerCount = configuredPeerCount({ peers: c.peers, ...(c.allow ? { allow: new Set(c.allow) } : {}) })
    const ackProblem = ackSettingsProblem(c.minAcks ?? 0, ackTimeoutMs, peerCount)
    if (ackProblem !== undefined) throw sledlogError('CONFIG_INVALID', ackProblem)
    const tls = c.tls === undefined ? undefined : await readTls(c.tls)
    for (const w of warnings) c.logger?.warn({ host: c.host }, w)
    this.#facts = facts
    this.#warnings = warnings
    // A move to a successor key this node began and a crash cut short is finished first; an
    // operator's half-done rotation must be finished by the operator: sled.key may be retired.
    const finished = await finishNodeRotation(c.dataDir, c.adminKeys)
    if (finished !== null) this.#announce(finished, 'finished at start')
    await assertNoPendingRotation(c.dataDir)
    const tokens = new TokenStore(tokensFile, c.logger)
    await tokens.start()
    this.#tokens = tokens
    // One server for every key this run uses: a move to a successor key keeps the port.
    const http = createApiServer((req, res) => this.#handle(req, res), {
      ...(tls === undefined ? {} : { tls }),
      ...(c.serverLimits === undefined ? {} : { limits: c.serverLimits }),
    })
    this.#http = http
    await this.#open(http, finished === null ? undefined : { successor: finished, status: null })
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(c.port, c.host, () => {
        http.off('error', reject)
        resolve()
      })
    })
  }

  /** Stops replication and the server, then flushes and closes the log. */
  async stop(): Promise<void> {
    this.#stopping = true
    // A move to a successor key is journaled: let it end rather than cut it short.
    await this.#switching?.catch(() => undefined)
    await this.#close()
    this.#tokens?.stop()
    const http = this.#http
    if (http !== null) {
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
    await this.#log?.close()
  }

  async #settled(): Promise<void> {
    // A move opens a new run with its own settling: wait until no newer one replaced it.
    for (;;) {
      const s = this.#settling
      await s
      await this.#switching
      if (this.#settling === s) return
    }
  }

  /** Routes a request to the API of the key in use; between two keys, a clear 503. */
  #handle(req: IncomingMessage, res: ServerResponse): void {
    const api = this.#api
    if (api !== null) {
      api.handle(req, res)
      return
    }
    sendError(res, this.#betweenKeys())
  }

  /** What is refused between the old key's run and the successor's. */
  #betweenKeys(): SledlogError {
    const failed = this.#switchFailed
    // A key that already has a successor is refused before anything is written: a restart
    // does not help, the operator must start the node with the right key.
    const retry = isSledlogError(failed, 'SLED_RETIRED') ? '' : ': restart it; it finishes the move'
    return sledlogError(
      'RECOVERING',
      failed === null
        ? 'this node proved its head after a lost store and is moving to a successor key: retry in a moment'
        : `this node could not move to a successor key (${errorText(failed)})${retry}`,
    )
  }

  /**
   * Opens the log under the data directory's key and starts everything that uses it. `after`:
   * this run follows a move to a successor key (its outcome is stored with the recovery's status).
   */
  async #open(http: Server, after?: { successor: RotateResult; status: RecoveryStatus | null }): Promise<void> {
    const c = this.#config
    const facts = this.#facts as SecurityFacts
    const warnings = this.#warnings
    const tokens = this.#tokens as TokenStore
    const ackTimeoutMs = c.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS
    // A key that existed before this start, over a store that did not, means a lost disk.
    const existingKey = await loadIdentity(c.dataDir)
    const keys = existingKey ?? (await loadOrCreateIdentity(c.dataDir))
    const store = new LevelStore({
      path: join(c.dataDir, DB_DIR),
      macKey: deriveMacKey(keys.seed),
      sync: c.sync ?? false,
    })
    const log = new SledLog({
      keys,
      store,
      ...(c.limits === undefined ? {} : { limits: c.limits }),
      ...(c.adminKeys === undefined ? {} : { adminKeys: c.adminKeys }),
    })
    await log.open()
    this.#log = log
    // A move whose key swap a crash followed before the new run recorded it (the journal is gone)
    // is recorded now, and announced again: a supervisor may not have heard of it.
    let lastRecovery = parseLastRecovery(await log.readMeta(RECOVERY_META_KEY))
    const unrecorded = after === undefined ? unrecordedMove(c.dataDir, log, lastRecovery) : null
    if (unrecorded !== null) this.#announce(unrecorded, 'recorded at start')
    const moved = after ?? (unrecorded === null ? undefined : { successor: unrecorded, status: null })
    if (moved !== undefined) {
      const base = moved.status ?? lastRecovery
      if (base !== null) {
        lastRecovery = { ...base, successor: { sled: moved.successor.successor, lastSeq: moved.successor.lastSeq } }
        await log.writeMeta({ [RECOVERY_META_KEY]: JSON.stringify(lastRecovery) })
      }
    }
    // A key that predates the store, or a recovery an earlier run did not finish: prove the head.
    const marker = new RecoveryMarker(c.dataDir)
    const resumed = await marker.read()
    let gate: RecoveryGate | null = null
    if ((existingKey !== undefined && log.storeCreated) || resumed !== null) {
      const resume = resumed ?? { since: Date.now(), need: 0 }
      await marker.write(resume)
      gate = new RecoveryGate({
        log,
        peers: c.peers,
        mode: c.recoveryMode ?? 'succession',
        ...(c.allow === undefined ? {} : { allow: new Set(c.allow) }),
        ...(c.recoveryQuorum === undefined ? {} : { quorum: c.recoveryQuorum }),
        ...(c.recoveryTimeoutMs === undefined ? {} : { warnAfterMs: c.recoveryTimeoutMs }),
        ...(c.logger === undefined ? {} : { logger: c.logger }),
        resume,
        persist: (r) => {
          marker.write(r).catch((err: unknown) => c.logger?.error({ err }, 'recovery: could not update RECOVERING'))
        },
      })
    }
    this.#recovery = gate
    const recovery = recoveryControl(gate, lastRecovery)
    const replicator = new Replicator({
      log,
      keys,
      peers: c.peers,
      ...(gate === null ? {} : { recovery: gate }),
      auth: {
        ...(c.allow === undefined ? {} : { allow: new Set(c.allow) }),
        ...(c.token === undefined ? {} : { token: c.token }),
        // Signed successors of allowed sleds are admitted by the chain they present.
        succession: {
          present: () => log.successionRecords(),
          known: (sled) => log.successionRecords(sled),
          refuse: (link) => log.chainVeto(link),
        },
      },
      ...(c.sessionLimits === undefined ? {} : { limits: c.sessionLimits }),
      ...(c.maxBackoffMs === undefined ? {} : { maxBackoffMs: c.maxBackoffMs }),
      ...(c.refusedRetryMs === undefined ? {} : { refusedRetryMs: c.refusedRetryMs }),
      ...(c.peerTls === undefined ? {} : { peerTls: c.peerTls }),
      ...(c.logger === undefined ? {} : { logger: c.logger }),
    })
    this.#replicator = replicator
    const appends = new AckedAppends({ log, replication: replicator, minAcks: c.minAcks ?? 0, ackTimeoutMs })
    this.#appends = appends
    const ingest = new IngestWriter({ log, ...c.ingest })
    this.#ingest = ingest
    const api = createApi({
      log,
      ingest,
      appends,
      peers: () => replicator.status(),
      ...(c.maxBodyBytes === undefined ? {} : { maxBodyBytes: c.maxBodyBytes }),
      ...(c.logger === undefined ? {} : { logger: c.logger }),
      tokens,
      access: { listenHost: c.host, allowedHosts: facts.allowedHosts, corsOrigins: facts.corsOrigins, tls: facts.tls },
      ...(c.streamLimits === undefined ? {} : { streams: c.streamLimits }),
      statusSections: [
        {
          name: 'security',
          read: () => securityStatus(facts, warnings, { enabled: tokens.required, tokens: tokens.size }),
        },
        replicationSection(() => replicator.stats()),
        ackSection(() => appends.stats()),
        recoverySection(recovery),
      ],
      metricsSources: [
        replicationMetrics(() => replicator.stats()),
        ackMetrics(
          () => appends.stats(),
          () => appends.waits(),
        ),
        recoveryMetrics(recovery),
      ],
      recovery,
    })
    this.#api = api
    gate?.start()
    replicator.start(http)
    // Started after replication: a node recovering its own entries must know its last lid.
    this.#settling = replicator.recovered
      .then(async (outcome) => {
        if (outcome === 'stopped') return // still recovering at the next start
        if (gate !== null) {
          // Recorded before the marker goes, so a crash in between recovers again rather than
          // forgetting how this one ended.
          const status = gate.status()
          await log.writeMeta({ [RECOVERY_META_KEY]: JSON.stringify(status) })
          if (outcome === 'proven' && status.mode === 'succession') return this.#moveToSuccessor(http, status)
          await marker.remove()
        }
        await ingest.start()
      })
      .catch((err: unknown) => c.logger?.error({ err }, 'recovery: could not record its end or start ingest'))
  }

  /**
   * After a proven recovery the old key never appends again: everything using it stops, the
   * data directory moves to a successor key (endorsed by the old one, vouching for the seqs held:
   * key-rotation.ts, journaled) and everything starts again under it, on the same server.
   */
  #moveToSuccessor(http: Server, status: RecoveryStatus): Promise<void> {
    const c = this.#config
    const move = (async () => {
      await this.#close()
      await this.#log?.close()
      // Stopped for good: a stop() during the move has nothing of the old key's run left to stop.
      this.#replicator = null
      this.#ingest = null
      this.#recovery = null
      this.#appends = null
      const r = await rotateKey(c.dataDir, {
        reason: 'recovery',
        byNode: true,
        ...(c.adminKeys === undefined ? {} : { adminKeys: c.adminKeys }),
      })
      this.#announce(r, 'after a proven recovery')
      if (this.#stopping) return
      await this.#open(http, { successor: r, status })
    })()
    this.#switching = move
    return move.catch((err: unknown) => {
      this.#switchFailed = err
      c.logger?.error({ err }, 'recovery: could not move to a successor key; restart the node to finish it')
      throw err
    })
  }

  #announce(r: RotateResult, when: string): void {
    this.#config.logger?.warn(
      { predecessor: r.predecessor, successor: r.successor, lastSeq: r.lastSeq, endorsed: r.endorsed },
      `recovery: moved to successor key ${r.successor.slice(0, 12)} (${when}); the old sled ` +
        `${r.predecessor.slice(0, 12)} vouches for seqs 0..${r.lastSeq} and signs nothing more`,
    )
    this.#config.onSuccession?.(r)
  }

  /** Stops everything that uses the current key but its log (the server stays). */
  async #close(): Promise<void> {
    const api = this.#api
    // Between two keys requests get a clear 503 rather than a closed log.
    if (!this.#stopping) this.#api = null
    // Writes are refused first, so none races the ingest drain or the log's close.
    api?.refuseWrites()
    await this.#ingest?.stop()
    this.#recovery?.stop()
    await this.#replicator?.stop()
    // Streams end and consumer cursors are written before the log they read closes.
    await api?.close()
  }
}

/**
 * The move to a successor key a proven recovery led to, when the stored outcome does not name it
 * (a kill between the key swap and the new run's record): the log's own sled opens with a
 * recovery succession. Null otherwise.
 */
function unrecordedMove(dataDir: string, log: SledLog, last: RecoveryStatus | null): RotateResult | null {
  if (last === null || last.state !== 'proven' || last.mode !== 'succession' || last.successor != null) return null
  const link = log.status().succession.chain[0]
  if (link === undefined || link.sled !== log.sled || link.reason !== 'recovery') return null
  return {
    predecessor: link.predecessor,
    successor: link.sled,
    lastSeq: link.lastSeq,
    reason: link.reason,
    endorsed: link.endorsed,
    retiredKeyFile: existsSync(retiredKeyPath(dataDir, link.predecessor))
      ? retiredKeyPath(dataDir, link.predecessor)
      : null,
    resumed: true,
  }
}

/** An error's message without its class name (an operator reads it in a 503). */
function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The last recovery's status as stored, or null (none, or unreadable: it is only shown). */
function parseLastRecovery(text: string | undefined): RecoveryStatus | null {
  if (text === undefined) return null
  try {
    const v = JSON.parse(text) as unknown
    return typeof v === 'object' && v !== null ? (v as RecoveryStatus) : null
  } catch {
    return null
  }
}

/** What the API may do with this run's recovery gate (none: the last recovery, for status). */
function recoveryControl(gate: RecoveryGate | null, last: RecoveryStatus | null): RecoveryControl {
  return {
    status: () => gate?.status() ?? { state: 'not-needed', last },
    refusal: () => gate?.refusal() ?? null,
    acceptHead(head, by) {
      if (gate === null)
        throw sledlogError('RECOVERY_NOT_ACCEPTED', 'this node is not recovering (no recovery this run)')
      return gate.acceptHead(head, by)
    },
  }
}

/**
 * What the HTTP API's route handlers share: the node's parts and the API's own registries.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TokenStore } from '../auth/token-store.js'
import { sledlogError } from '../errors.js'
import type { IngestWriter } from '../ingest/writer.js'
import type { AppendInput, SledLog } from '../log/sled-log.js'
import type { AckedAppend, AckOptions } from '../node/acked-appends.js'
import type { PeerStatus } from '../sync/replicator.js'
import type { RecoveryControl } from './recovery.js'
import type { AccessOptions, Principal } from './access.js'
import type { ConsumerRegistry } from './consumer-registry.js'
import type { NodeMetrics } from './node-metrics.js'
import type { Pacer } from './pacer.js'
import type { Exposition } from './prometheus.js'
import type { RuntimeMetrics } from './runtime-metrics.js'
import type { StreamLimits } from './sse.js'
import type { SubscriberRegistry } from './subscribers.js'

/**
 * Where the API reports failures that are bugs (answered 500 INTERNAL). A pino logger fits; the
 * default discards them.
 */
export interface ApiLogger {
  error(obj: Readonly<Record<string, unknown>>, msg: string): void
  /** Refusals worth an operator's attention (streams cut off); optional. */
  warn?(obj: Readonly<Record<string, unknown>>, msg: string): void
}

/**
 * A section of GET /v1/status beside the API's own (e.g. `security`, or another part's ledger):
 * `read` is called at each request. Adding a section to the status is one entry in
 * {@link ApiOptions.statusSections}.
 */
export interface StatusSection {
  readonly name: string
  read(): unknown
}

/**
 * The node's append path behind POST /v1/events (src/node/acked-appends.ts): a durable append,
 * answered once the configured peers the write asks for hold it.
 */
export interface AppendPath {
  /** Configured peers: the largest `acks` a write may ask for. */
  readonly configuredPeers: number
  append(inputs: readonly AppendInput[], opts: AckOptions): Promise<AckedAppend>
}

/** Adds metric families to each /metrics scrape (another part's counters). */
export type MetricsSource = (x: Exposition) => void

/** What a node hands its API. */
export interface ApiOptions {
  readonly log: SledLog
  /** The ingest writer behind POST /v1/ingest. */
  readonly ingest: IngestWriter
  /** The append path of POST /v1/events; default: the log's, local acknowledgements only. */
  readonly appends?: AppendPath
  /** Peer states for /v1/status and /metrics. */
  readonly peers: () => PeerStatus[]
  /** Largest request body, in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number
  /** Interval of the comment heartbeat on event streams (default 15 s). */
  readonly heartbeatMs?: number
  /** Where unexpected handler failures are logged (default: nowhere). */
  readonly logger?: ApiLogger
  /** API tokens; absent: an open API (the node allows that on loopback only). */
  readonly tokens?: TokenStore
  /** Host, Origin and CORS settings (default: loopback names and IP literals, no CORS). */
  readonly access?: Partial<Omit<AccessOptions, 'tokens'>>
  /** Caps on event streams (defaults in sse.ts). */
  readonly streams?: Partial<StreamLimits>
  /** More sections of GET /v1/status, in order after the API's own. */
  readonly statusSections?: readonly StatusSection[]
  /** More metric families of GET /metrics. */
  readonly metricsSources?: readonly MetricsSource[]
  /** The node's recovery (writes refused while it runs, the operator's decision route). */
  readonly recovery?: RecoveryControl
}

/** The handlers' shared state. */
export interface ApiContext {
  readonly log: SledLog
  readonly ingest: IngestWriter
  readonly appends: AppendPath
  readonly peers: () => PeerStatus[]
  readonly maxBodyBytes: number
  readonly heartbeatMs: number
  readonly subscribers: SubscriberRegistry
  readonly consumers: ConsumerRegistry
  readonly metrics: NodeMetrics
  /** The standard process and runtime metrics (prom-client). */
  readonly runtime: RuntimeMetrics
  /** Where unexpected handler failures (500 INTERNAL) are logged. */
  readonly logger: ApiLogger
  /** Set when the node starts shutting down: from then on every write is refused. */
  readonly lifecycle: { stopping: boolean }
  readonly access: AccessOptions
  readonly streams: StreamLimits
  /** Shares the event loop fairly between event streams. */
  readonly pacer: Pacer
  readonly statusSections: readonly StatusSection[]
  readonly metricsSources: readonly MetricsSource[]
  /** Null for a node that has none to control (tests, tools). */
  readonly recovery: RecoveryControl | null
  /** Whether a backup (GET /v1/backup) is streaming: one runs at a time. */
  readonly backups: { active: boolean }
}

/** Throws NODE_STOPPING once the node is shutting down (writes would race its shutdown). */
export function assertAcceptingWrites(ctx: ApiContext): void {
  if (ctx.lifecycle.stopping)
    throw sledlogError('NODE_STOPPING', 'the node is shutting down; retry on another node or after restart')
}

/** A matched request: the parsed URL and the path parameters of its route. */
export interface RouteRequest {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly url: URL
  readonly path: Readonly<Record<string, string>>
  /** Who sent it (a token, or the address on an open API). */
  readonly principal: Principal
}

/** A route handler. */
export type Handler = (ctx: ApiContext, r: RouteRequest) => Promise<void> | void

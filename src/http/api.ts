/**
 * The HTTP API of a node (docs/API.md): the route table and the API's lifecycle. Handlers live
 * one route group per file; errors all go through the one format and status table.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sledlogError } from '../errors.js'
import { getBackup } from './backup.js'
import { ConsumerRegistry } from './consumer-registry.js'
import { ackConsumer, deleteConsumer, getConsumer, listConsumers, putConsumer } from './consumers.js'
import type { ApiContext, ApiLogger, ApiOptions } from './context.js'
import { EVIDENCE_PARAMS, getEvidence, listEvidence } from './evidence.js'
import { APPEND_PARAMS, getEvents, postEvents, postIngest, QUERY_PARAMS } from './events.js'
import { getHealth, getStatus } from './health.js'
import { getMetrics } from './metrics.js'
import { postAcceptHead } from './recovery.js'
import { NodeMetrics } from './node-metrics.js'
import { Pacer } from './pacer.js'
import { RuntimeMetrics } from './runtime-metrics.js'
import { createRouter, type Route } from './router.js'
import { DEFAULT_STREAM_LIMITS } from './sse.js'
import { getStream, STREAM_PARAMS, streamScope } from './stream.js'
import { getChain, postRevocation } from './succession.js'
import { SubscriberRegistry } from './subscribers.js'

export type { ApiContext, ApiLogger, ApiOptions, AppendPath, MetricsSource, StatusSection } from './context.js'

/** Every route of the API, with the token scope each method needs (docs/API.md "Authentication"). */
export const ROUTES: readonly Route[] = [
  { path: '/healthz', methods: { GET: { handler: getHealth, scope: null } } },
  { path: '/metrics', methods: { GET: { handler: getMetrics, scope: 'read' } } },
  { path: '/v1/status', methods: { GET: { handler: getStatus, scope: 'read' } } },
  {
    path: '/v1/events',
    methods: {
      GET: { handler: getEvents, params: QUERY_PARAMS, scope: 'read' },
      POST: { handler: postEvents, params: APPEND_PARAMS, scope: 'append' },
    },
  },
  { path: '/v1/ingest', methods: { POST: { handler: postIngest, scope: 'append' } } },
  { path: '/v1/stream', methods: { GET: { handler: getStream, params: STREAM_PARAMS, scope: streamScope } } },
  { path: '/v1/evidence', methods: { GET: { handler: listEvidence, params: EVIDENCE_PARAMS, scope: 'read' } } },
  { path: '/v1/evidence/:sled', methods: { GET: { handler: getEvidence, scope: 'read' } } },
  { path: '/v1/sleds/:sled/chain', methods: { GET: { handler: getChain, scope: 'read' } } },
  { path: '/v1/revocations', methods: { POST: { handler: postRevocation, scope: 'admin' } } },
  { path: '/v1/consumers', methods: { GET: { handler: listConsumers, scope: 'read' } } },
  {
    path: '/v1/consumers/:name',
    methods: {
      GET: { handler: getConsumer, scope: 'read' },
      PUT: { handler: putConsumer, scope: 'consume' },
      DELETE: { handler: deleteConsumer, scope: 'consume' },
    },
  },
  { path: '/v1/consumers/:name/ack', methods: { POST: { handler: ackConsumer, scope: 'consume' } } },
  { path: '/v1/backup', methods: { GET: { handler: getBackup, scope: 'admin' } } },
  {
    path: '/v1/recovery/accept-head-risking-fork',
    methods: { POST: { handler: postAcceptHead, scope: 'admin' } },
  },
  {
    // The websocket endpoint (sync/server.ts) takes upgrades only; say so to a plain request.
    path: '/v1/sync',
    methods: {
      GET: {
        scope: null,
        handler: () => {
          throw sledlogError(
            'HTTP_BAD_REQUEST',
            '/v1/sync is the replication endpoint: it accepts websocket upgrades only',
          )
        },
      },
    },
  },
]

/** A running API. */
export interface Api {
  /** The `request` listener of the node's HTTP server. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void
  /** The shared state (for tests and status). */
  readonly context: ApiContext
  /**
   * Refuses every write from now on (POST /v1/events, /v1/ingest and consumer acks answer 503
   * NODE_STOPPING): the first step of a shutdown, so no write races the ingest drain or the
   * log's close. Reads go on until {@link Api.close}.
   */
  refuseWrites(): void
  /** Refuses writes, ends every event stream and closes the consumers; call before closing the log. */
  close(): Promise<void>
}

const SILENT: ApiLogger = { error: () => undefined }

/** Creates the API of a node. */
export function createApi(opts: ApiOptions): Api {
  const streams = { ...DEFAULT_STREAM_LIMITS, ...opts.streams }
  const context: ApiContext = {
    log: opts.log,
    ingest: opts.ingest,
    appends: opts.appends ?? {
      configuredPeers: 0,
      append: async (inputs) => ({ entries: await opts.log.appendBatch(inputs), acks: 0 }),
    },
    peers: opts.peers,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    subscribers: new SubscriberRegistry(streams),
    consumers: new ConsumerRegistry(opts.log),
    metrics: new NodeMetrics(opts.log),
    runtime: new RuntimeMetrics(),
    logger: opts.logger ?? SILENT,
    lifecycle: { stopping: false },
    access: {
      tokens: opts.tokens ?? null,
      listenHost: opts.access?.listenHost ?? '127.0.0.1',
      allowedHosts: opts.access?.allowedHosts ?? [],
      corsOrigins: opts.access?.corsOrigins ?? [],
      tls: opts.access?.tls ?? false,
    },
    streams,
    pacer: new Pacer(),
    statusSections: opts.statusSections ?? [],
    metricsSources: opts.metricsSources ?? [],
    recovery: opts.recovery ?? null,
    backups: { active: false },
  }
  const route = createRouter(context, ROUTES)
  let closing: Promise<void> | null = null
  return {
    handle: (req, res) => void route(req, res),
    context,
    refuseWrites() {
      context.lifecycle.stopping = true
    },
    close() {
      context.lifecycle.stopping = true
      closing ??= (async () => {
        context.subscribers.endAll()
        context.metrics.close()
        context.runtime.close()
        await context.consumers.close()
      })()
      return closing
    },
  }
}

/**
 * The HTTP API of a node (docs/API.md): the route table and the API's lifecycle. Handlers live
 * one route group per file; errors all go through the one format and status table.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sledlogError } from '../errors.js'
import { ConsumerRegistry } from './consumer-registry.js'
import { ackConsumer, getConsumer, listConsumers } from './consumers.js'
import type { ApiContext, ApiLogger, ApiOptions } from './context.js'
import { getEvents, postEvents, postIngest, QUERY_PARAMS } from './events.js'
import { getHealth, getStatus } from './health.js'
import { getMetrics } from './metrics.js'
import { NodeMetrics } from './node-metrics.js'
import { createRouter, type Route } from './router.js'
import { getStream, STREAM_PARAMS } from './stream.js'
import { SubscriberRegistry } from './subscribers.js'

export type { ApiContext, ApiLogger, ApiOptions } from './context.js'

/** Every route of the API. */
export const ROUTES: readonly Route[] = [
  { path: '/healthz', methods: { GET: { handler: getHealth } } },
  { path: '/metrics', methods: { GET: { handler: getMetrics } } },
  { path: '/v1/status', methods: { GET: { handler: getStatus } } },
  { path: '/v1/events', methods: { GET: { handler: getEvents, params: QUERY_PARAMS }, POST: { handler: postEvents } } },
  { path: '/v1/ingest', methods: { POST: { handler: postIngest } } },
  { path: '/v1/stream', methods: { GET: { handler: getStream, params: STREAM_PARAMS } } },
  { path: '/v1/consumers', methods: { GET: { handler: listConsumers } } },
  { path: '/v1/consumers/:name', methods: { GET: { handler: getConsumer } } },
  { path: '/v1/consumers/:name/ack', methods: { POST: { handler: ackConsumer } } },
  {
    // The websocket endpoint (sync/server.ts) takes upgrades only; say so to a plain request.
    path: '/v1/sync',
    methods: {
      GET: {
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
  const context: ApiContext = {
    log: opts.log,
    ingest: opts.ingest,
    peers: opts.peers,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    subscribers: new SubscriberRegistry(),
    consumers: new ConsumerRegistry(opts.log),
    metrics: new NodeMetrics(opts.log),
    logger: opts.logger ?? SILENT,
    lifecycle: { stopping: false },
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
        await context.consumers.close()
      })()
      return closing
    },
  }
}

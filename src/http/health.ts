/**
 * GET /healthz (liveness, cheap) and GET /v1/status (everything a person or a harness wants to
 * see about the node: log verification state, peers, ingest, streams).
 */
import type { Handler } from './context.js'
import { sendJson } from './respond.js'

/** GET /healthz. */
export const getHealth: Handler = (ctx, { res }) => {
  sendJson(res, 200, { ok: true, sled: ctx.log.sled })
}

/** GET /v1/status. */
export const getStatus: Handler = (ctx, { res }) => {
  sendJson(res, 200, {
    ...ctx.log.status(),
    appendsHeld: ctx.log.appendsHeld,
    peers: ctx.peers(),
    ingest: ctx.ingest.stats(),
    subscribers: { current: ctx.subscribers.current, total: ctx.subscribers.total, lagged: ctx.subscribers.lagged },
  })
}

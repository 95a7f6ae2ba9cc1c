/**
 * GET /healthz (liveness, cheap) and GET /v1/status (everything a person or a harness wants to
 * see about the node: log verification state, peers, ingest, streams).
 */
import type { PeerStatus } from '../sync/replicator.js'
import type { Handler } from './context.js'
import { sendJson } from './respond.js'

/**
 * GET /healthz: 503 once a log write has failed, since the log then refuses every write until
 * the node restarts (a restart is what an orchestrator does with an unhealthy node).
 */
export const getHealth: Handler = (ctx, { res }) => {
  const writeFailed = ctx.log.status().writeFailed
  if (writeFailed !== null) sendJson(res, 503, { ok: false, sled: ctx.log.sled, writeFailed })
  else sendJson(res, 200, { ok: true, sled: ctx.log.sled })
}

/**
 * A peer's link state: a configured peer that refused this node reads `refused` until the
 * dialer's next attempt; one that has never had a session has no session state yet, it is
 * being dialed (with backoff), so it reads `connecting` rather than lacking the field.
 */
function withState(p: PeerStatus): Omit<PeerStatus, 'state'> & { readonly state: string } {
  if (p.refused !== undefined) return { ...p, state: 'refused' }
  return p.state === undefined ? { ...p, state: 'connecting' } : { ...p, state: p.state }
}

/** GET /v1/status. */
export const getStatus: Handler = (ctx, { res }) => {
  sendJson(res, 200, {
    ...ctx.log.status(),
    appendsHeld: ctx.log.appendsHeld,
    peers: ctx.peers().map(withState),
    ingest: ctx.ingest.stats(),
    subscribers: { current: ctx.subscribers.current, total: ctx.subscribers.total, lagged: ctx.subscribers.lagged },
  })
}

/**
 * GET /healthz (liveness, cheap) and GET /v1/status (everything a person or a harness wants to
 * see about the node: log verification state, peers, ingest, streams).
 */
import type { PeerStatus } from '../sync/replicator.js'
import { mayRead } from './access.js'
import type { Handler } from './context.js'
import { sendJson } from './respond.js'

/**
 * GET /healthz: 503 once a log write has failed, since the log then refuses every write until
 * the node restarts (a restart is what an orchestrator does with an unhealthy node). Open to
 * anyone, so it says no more than `ok` unless the caller may read (open API, or a read token).
 */
export const getHealth: Handler = (ctx, { res, principal }) => {
  const writeFailed = ctx.log.status().writeFailed
  const status = writeFailed === null ? 200 : 503
  if (!mayRead(principal)) sendJson(res, status, { ok: writeFailed === null })
  else if (writeFailed !== null) sendJson(res, 503, { ok: false, sled: ctx.log.sled, writeFailed })
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

/** GET /v1/status: the API's own sections, then those the node adds (`security`, …). */
export const getStatus: Handler = (ctx, { res }) => {
  const s = ctx.subscribers
  const body: Record<string, unknown> = {
    ...ctx.log.status(),
    appendsHeld: ctx.log.appendsHeld,
    peers: ctx.peers().map(withState),
    ingest: ctx.ingest.stats(),
    subscribers: { current: s.current, total: s.total, lagged: s.lagged, refused: s.refused, cutOff: s.cutOff },
  }
  for (const section of ctx.statusSections) body[section.name] = section.read()
  sendJson(res, 200, body)
}

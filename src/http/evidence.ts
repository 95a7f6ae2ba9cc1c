/**
 * Fork evidence (docs/API.md "Evidence"): GET /v1/evidence pages the sleds this node knows to be
 * forked, GET /v1/evidence/SLED returns one fork's proof, the two smallest validly signed
 * versions of its lowest equivocated seq (PROTOCOL.md §6.2), which anyone can check with the
 * sled's key. The status only counts forks: records are fetched here, one sled at a time, so no
 * number of forks makes a status answer large.
 */
import { isSledId, type SledId } from '../core/ids.js'
import { sledlogError } from '../errors.js'
import { MAX_FORK_PAGE } from '../log/sled-log.js'
import type { Handler } from './context.js'
import { intParam, type ParamSpec } from './params.js'
import { sendJson } from './respond.js'

/** Query parameters of GET /v1/evidence. */
export const EVIDENCE_PARAMS: ParamSpec = { single: ['after', 'limit'] }

function sledParam(value: string, name: string): SledId {
  if (!isSledId(value)) {
    throw sledlogError('HTTP_BAD_REQUEST', `${name} must be a sled id (64 lowercase hex)`, { param: name })
  }
  return value
}

/** GET /v1/evidence: forked sleds in sled order, `{forks: [{sled, seq}], next}`. */
export const listEvidence: Handler = (ctx, { res, url }) => {
  const after = url.searchParams.get('after')
  const limit = intParam(url.searchParams, 'limit', 1, MAX_FORK_PAGE)
  const page = ctx.log.forks({
    ...(after === null ? {} : { after: sledParam(after, 'after') }),
    ...(limit === undefined ? {} : { limit }),
  })
  sendJson(res, 200, page)
}

/** GET /v1/evidence/SLED: the proof `{sled, seq, records: [a, b]}`; 404 when not forked here. */
export const getEvidence: Handler = (ctx, { res, path }) => {
  const sled = sledParam(path.sled as string, 'sled')
  const proof = ctx.log.forkProof(sled)
  if (proof === undefined) throw sledlogError('HTTP_NOT_FOUND', `this node knows no fork of sled ${sled}`)
  sendJson(res, 200, proof)
}

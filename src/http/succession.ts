/**
 * Key succession over HTTP (docs/API.md "Key succession"): GET /v1/sleds/SLED/chain returns any
 * sled's chain and retirement seq as this node reads them (PROTOCOL.md §6.5); POST
 * /v1/revocations appends a revocation the caller signed (with the target's own key or an admin
 * key) to this node's log, so it replicates to every peer. The node never needs the revoking key.
 */
import { assertEntryBody, type EntryBody } from '../core/entry.js'
import { isSledId } from '../core/ids.js'
import { sledlogError } from '../errors.js'
import { readJson, strictObject } from './body.js'
import { assertAcceptingWrites, type Handler } from './context.js'
import { sendJson } from './respond.js'

/** GET /v1/sleds/SLED/chain: predecessors, successors, revocations and the retirement seq. */
export const getChain: Handler = (ctx, { res, path }) => {
  const sled = path.sled as string
  if (!isSledId(sled))
    throw sledlogError('HTTP_BAD_REQUEST', 'sled must be a sled id (64 lowercase hex)', { param: 'sled' })
  sendJson(res, 200, ctx.log.chain(sled))
}

/**
 * POST /v1/revocations: `{target, fromSeq, authority, admin?, signature}` (PROTOCOL.md §3.6).
 * The signature is checked before anything is signed (REVOCATION_BAD_SIGNATURE). A statement
 * this node's log already carries is answered with that entry (200), so a retry appends nothing.
 */
export const postRevocation: Handler = async (ctx, { req, res }) => {
  const o = strictObject(await readJson(req, res, ctx.maxBodyBytes), 'revocation', [
    'target',
    'fromSeq',
    'authority',
    'admin',
    'signature',
  ])
  const body = { kind: 'revocation', ...o } as EntryBody
  assertEntryBody(body)
  if (body.kind !== 'revocation') throw new Error('unreachable: the body was built as a revocation')
  assertAcceptingWrites(ctx) // shutdown may have begun while the body was read
  const own = ctx.log.sled
  const held = ctx.log
    .chain(body.target)
    .revocations.find((r) => r.carrier === own && r.signature === body.signature && r.fromSeq === body.fromSeq)
  const existing = held === undefined ? undefined : ctx.log.get(own, held.seq)
  if (existing !== undefined) {
    sendJson(res, 200, existing)
    return
  }
  const [entry] = await ctx.log.appendBodies([body])
  sendJson(res, 201, entry)
}

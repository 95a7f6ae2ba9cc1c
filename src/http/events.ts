/**
 * Routes that read and write entries: GET /v1/events (query), POST /v1/events (durable append)
 * and POST /v1/ingest (fire-and-forget onto the ingest bus).
 */
import { assertEntryBody, ENTRY_KINDS, ENTRY_LIMITS, type EntryKind } from '../core/entry.js'
import { isSledId, type SledId } from '../core/ids.js'
import { checkQuery, MAX_LIMIT, type Query } from '../core/query.js'
import { isSledlogError, sledlogError } from '../errors.js'
import type { AppendInput } from '../log/sled-log.js'
import type { AckOptions } from '../node/acked-appends.js'
import { MAX_ACK_TIMEOUT_MS } from './acks.js'
import { readJson, strictObject } from './body.js'
import { assertAcceptingWrites, type Handler } from './context.js'
import { intParam, sledParams, type ParamSpec } from './params.js'
import { sendJson } from './respond.js'
import { assertNotRecovering } from './recovery.js'
import { assertIngestOpen } from './writes.js'

/** Query parameters of POST /v1/events: acknowledgements asked of peers, and how long to wait. */
export const APPEND_PARAMS: ParamSpec = { single: ['acks', 'ackTimeoutMs'] }

/** Query parameters of GET /v1/events. */
export const QUERY_PARAMS: ParamSpec = {
  single: ['after', 'afterSeq', 'since', 'until', 'limit'],
  multi: ['sled', 'type', 'kind'],
}

const MAX_TS = Number.MAX_SAFE_INTEGER

/**
 * Turns an append body into inputs: one event object, an array of events, or `{events: [...]}`.
 * Every event is checked here (with its index in the message) before anything is appended.
 */
export function appendInputs(body: unknown): { inputs: AppendInput[]; single: boolean } {
  let items: unknown[]
  let single = false
  if (Array.isArray(body)) items = body
  else if (typeof body === 'object' && body !== null && 'events' in body) {
    const wrapper = strictObject(body, 'body', ['events'])
    if (!Array.isArray(wrapper.events)) throw sledlogError('ENTRY_INVALID', 'events must be an array')
    items = wrapper.events as unknown[]
  } else {
    items = [body]
    single = true
  }
  if (items.length === 0) throw sledlogError('ENTRY_INVALID', 'no events to append')
  const seen = new Map<string, { index: number; content: string }>()
  const inputs = items.map((item, i): AppendInput => {
    const where = single ? 'event' : `events[${i}]`
    const o = strictObject(item, where, ['type', 'payload', 'id'])
    if (typeof o.type !== 'string') throw sledlogError('ENTRY_INVALID', `${where}: type must be a string`, { index: i })
    if (!('payload' in o))
      throw sledlogError('ENTRY_INVALID', `${where}: payload is required (use null for none)`, { index: i })
    if (o.id !== undefined && typeof o.id !== 'string')
      throw sledlogError('ENTRY_INVALID', `${where}: id must be a string`, { index: i })
    const input: AppendInput =
      o.id === undefined ? { type: o.type, payload: o.payload } : { type: o.type, payload: o.payload, id: o.id }
    try {
      assertEntryBody({ kind: 'event', ...input })
    } catch (err) {
      if (isSledlogError(err)) throw sledlogError(err.code, `${where}: ${err.message}`, { ...err.details, index: i })
      throw err
    }
    if (input.id !== undefined) {
      // The log keeps the first event of an id and answers the second with it: within one batch
      // that silently drops an event that differs, which can only be a producer bug. An exact
      // repeat is harmless and deduplicated as usual.
      const content = JSON.stringify([input.type, input.payload])
      const first = seen.get(input.id)
      if (first === undefined) seen.set(input.id, { index: i, content })
      else if (first.content !== content) {
        throw sledlogError(
          'ENTRY_INVALID',
          `${where}: id ${JSON.stringify(input.id)} is also the id of events[${first.index}], ` +
            'with a different type or payload',
          {
            index: i,
            field: 'id',
          },
        )
      }
    }
    return input
  })
  return { inputs, single }
}

/** Parses GET /v1/events parameters into a {@link Query}; anything malformed is HTTP_BAD_REQUEST. */
export function parseQuery(params: URLSearchParams): Query {
  const q: { -readonly [K in keyof Query]: Query[K] } = {}
  const sleds = sledParams(params)
  if (sleds.length === 1) q.sled = sleds[0] as SledId
  else if (sleds.length > 1) q.sled = sleds
  const after = params.get('after')
  if (after !== null) {
    const m = /^([0-9a-f]{64}):(\d{1,16})$/.exec(after)
    const seq = Number(m?.[2])
    if (m === null || !isSledId(m[1]) || !Number.isSafeInteger(seq))
      throw sledlogError('HTTP_BAD_REQUEST', 'after must be <sled>:<seq>', { param: 'after' })
    q.after = { sled: m[1], seq }
  }
  const afterSeq = intParam(params, 'afterSeq', -1, Number.MAX_SAFE_INTEGER)
  if (afterSeq !== undefined) q.afterSeq = afterSeq
  const since = intParam(params, 'since', 0, MAX_TS)
  if (since !== undefined) q.since = since
  const until = intParam(params, 'until', 0, MAX_TS)
  if (until !== undefined) q.until = until
  const types = params.getAll('type')
  for (const t of types) {
    // No entry can have such a type: the filter would silently match nothing.
    if (t.length === 0 || t.length > ENTRY_LIMITS.typeLength)
      throw sledlogError('HTTP_BAD_REQUEST', `type must be 1..${ENTRY_LIMITS.typeLength} characters`, {
        param: 'type',
      })
  }
  if (types.length > 0) q.types = types
  const kinds = params.getAll('kind')
  for (const k of kinds)
    if (!(ENTRY_KINDS as readonly string[]).includes(k))
      throw sledlogError('HTTP_BAD_REQUEST', `kind must be one of ${ENTRY_KINDS.join(', ')}`, { param: 'kind' })
  if (kinds.length > 0) q.kinds = kinds as EntryKind[]
  const limit = intParam(params, 'limit', 1, MAX_LIMIT)
  if (limit !== undefined) q.limit = limit
  try {
    checkQuery(q)
  } catch (err) {
    // Combinations the query layer refuses (afterSeq without exactly one sled) are bad
    // parameters here, reported under the HTTP code like every other parameter error.
    if (isSledlogError(err, 'ENTRY_INVALID')) throw sledlogError('HTTP_BAD_REQUEST', err.message)
    throw err
  }
  return q
}

/** GET /v1/events: one page of entries and the cursor of the next. */
export const getEvents: Handler = (ctx, { res, url }) => {
  const result = ctx.log.query(parseQuery(url.searchParams))
  sendJson(res, 200, {
    entries: result.entries,
    next: result.next === null ? null : `${result.next.sled}:${result.next.seq}`,
    // A forked sled's entries from its fork seq on are withheld: say so, or a reader would take
    // the page's end for the sled's end.
    forked: result.forked,
    // Entries of a retired key stay readable, flagged: say which sleds from which seq.
    retired: result.retired,
  })
}

/** The `acks` and `ackTimeoutMs` parameters of POST /v1/events; absent ones take the node's defaults. */
export function ackParams(params: URLSearchParams, configuredPeers: number): AckOptions {
  let acks: number | undefined
  try {
    acks = intParam(params, 'acks', 0, configuredPeers)
  } catch {
    throw sledlogError(
      'HTTP_BAD_REQUEST',
      `acks must be an integer in 0..${configuredPeers}: this node has ${configuredPeers} configured ` +
        `peer${configuredPeers === 1 ? '' : 's'} ` +
        '(allow-listed sleds, or --peer URLs without an allow-list)',
      { param: 'acks' },
    )
  }
  const ackTimeoutMs = intParam(params, 'ackTimeoutMs', 1, MAX_ACK_TIMEOUT_MS)
  return { ...(acks === undefined ? {} : { acks }), ...(ackTimeoutMs === undefined ? {} : { ackTimeoutMs }) }
}

/**
 * POST /v1/events: appends atomically; answers once the entries are durable here and, with
 * `acks=N` (or the node's `--min-acks`), held by N configured peers: then with their count too.
 */
export const postEvents: Handler = async (ctx, { req, res, url }) => {
  assertNotRecovering(ctx.recovery)
  const opts = ackParams(url.searchParams, ctx.appends.configuredPeers)
  const { inputs, single } = appendInputs(await readJson(req, res, ctx.maxBodyBytes))
  assertAcceptingWrites(ctx) // shutdown may have begun while the body was read
  const { entries, acks } = await ctx.appends.append(inputs, opts)
  // A local ack answers as before acks existed; a replicated one adds how many peers hold it.
  const held = acks > 0 ? { acks } : {}
  sendJson(res, 201, single ? { ...entries[0], ...held } : { entries, ...held })
}

/**
 * POST /v1/ingest: publishes onto the bounded bus and answers at once (202: accepted, not yet
 * durable); events dropped for lack of room are recorded as gap sentinels.
 */
export const postIngest: Handler = async (ctx, { req, res }) => {
  assertNotRecovering(ctx.recovery)
  const { inputs } = appendInputs(await readJson(req, res, ctx.maxBodyBytes))
  assertAcceptingWrites(ctx) // shutdown may have begun while the body was read
  assertNotRecovering(ctx.recovery)
  if (!ctx.ingest.started)
    throw sledlogError('APPENDS_HELD', 'ingest starts once this node has recovered from its peers')
  assertIngestOpen(ctx)
  // Every event was checked by appendInputs and the bus is open (publishing is synchronous, so
  // it cannot close meanwhile): publishing cannot fail half-way.
  sendJson(res, 202, { results: inputs.map((i) => ctx.ingest.bus.publish(i)) })
}

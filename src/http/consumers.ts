/**
 * Durable consumer routes: list, create, read a cursor, acknowledge, delete. Streaming from a
 * consumer's cursor is GET /v1/stream?consumer=NAME (stream.ts).
 */
import { isSledId, type SledId } from '../core/ids.js'
import type { Heads } from '../core/query.js'
import { sledlogError } from '../errors.js'
import type { SledLog } from '../log/sled-log.js'
import { readJson, strictObject } from './body.js'
import { assertAcceptingWrites, type Handler } from './context.js'
import { sendJson } from './respond.js'

/** Entries the log holds past `cursor`: what the consumer has not acknowledged yet. */
function pending(log: SledLog, cursor: Heads): number {
  let n = 0
  for (const [sled, head] of Object.entries(log.heads())) n += head - (cursor[sled] ?? -1)
  return n
}

/** Checks an ack body, `{sled, seq}` or a non-empty array of them, against the log. */
export function parseAcks(body: unknown, log: SledLog): Array<{ sled: SledId; seq: number }> {
  const single = !Array.isArray(body)
  const items: unknown[] = single ? [body] : (body as unknown[])
  if (items.length === 0) throw sledlogError('ENTRY_INVALID', 'no acknowledgements given')
  return items.map((item, i) => {
    const where = single ? 'ack' : `acks[${i}]`
    const o = strictObject(item, where, ['sled', 'seq'])
    if (!isSledId(o.sled))
      throw sledlogError('ENTRY_INVALID', `${where}: sled must be a sled id (64 lowercase hex)`, { index: i })
    if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) {
      throw sledlogError('ENTRY_INVALID', `${where}: seq must be a non-negative integer`, { index: i })
    }
    // Checked for all before any is applied, so a refused request acknowledges nothing.
    if (o.seq >= log.held(o.sled))
      throw sledlogError('ENTRY_INVALID', `${where}: this node does not hold ${o.sled.slice(0, 16)}…:${o.seq}`, {
        index: i,
      })
    return { sled: o.sled, seq: o.seq }
  })
}

/** GET /v1/consumers: the known consumer names. */
export const listConsumers: Handler = async (ctx, { res }) => {
  sendJson(res, 200, { consumers: await ctx.consumers.names() })
}

/** GET /v1/consumers/NAME: the acknowledged cursor and how many entries lie past it. */
export const getConsumer: Handler = async (ctx, { res, path }) => {
  const name = path.name as string
  const cursor = await ctx.consumers.cursor(name)
  sendJson(res, 200, { name, cursor, pending: pending(ctx.log, cursor) })
}

/** PUT /v1/consumers/NAME: creates the consumer (201), or answers the existing one (200). */
export const putConsumer: Handler = async (ctx, { res, path }) => {
  const name = path.name as string
  const { consumer, created } = await ctx.consumers.create(name)
  const cursor = consumer.cursor()
  sendJson(res, created ? 201 : 200, { name, cursor, pending: pending(ctx.log, cursor) })
}

/** DELETE /v1/consumers/NAME: deletes the consumer and ends its streams. */
export const deleteConsumer: Handler = async (ctx, { res, path }) => {
  const name = path.name as string
  await ctx.consumers.delete(name)
  sendJson(res, 200, { name, deleted: true })
}

/** POST /v1/consumers/NAME/ack: acknowledges entries; answers once the cursor is durable. */
export const ackConsumer: Handler = async (ctx, { req, res, path }) => {
  const name = path.name as string
  const consumer = await ctx.consumers.get(name)
  const body = await readJson(req, res, ctx.maxBodyBytes)
  const acks = parseAcks(body, ctx.log)
  assertAcceptingWrites(ctx) // shutdown may have begun while the body was read
  await Promise.all(acks.map((a) => consumer.ack(a.sled, a.seq)))
  const cursor = consumer.cursor()
  sendJson(res, 200, { name, cursor, pending: pending(ctx.log, cursor) })
}

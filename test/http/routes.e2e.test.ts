/**
 * Every route of the API against a real node process.
 */
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp.js'
import { parseExposition, sampleValue } from './exposition-parser.js'
import { call, startNode, waitFor } from './node-process.js'
import { SseClient } from './sse-client.js'

describe('HTTP API routes (node process)', () => {
  it('serves health, status, append, query, ingest, stream, consumers, metrics', async () => {
    const node = await startNode(await tempDir())
    const u = node.url

    const health = await call(u, 'GET', '/healthz')
    expect(health).toMatchObject({ status: 200, body: { ok: true, sled: node.sled } })

    // Append: one event (answered with the entry), an array and the {events} wrapper (answered
    // with {entries}); an idempotency id already held returns the entry it named.
    const one = await call(u, 'POST', '/v1/events', { type: 'order', payload: { n: 1 }, id: 'o-1' })
    expect(one.status).toBe(201)
    expect(one.body).toMatchObject({
      sled: node.sled,
      seq: 0,
      kind: 'event',
      type: 'order',
      payload: { n: 1 },
      id: 'o-1',
    })
    expect(one.body.sig).toMatch(/^[A-Za-z0-9_-]{86}$/)
    const arr = await call(u, 'POST', '/v1/events', [
      { type: 'order', payload: { n: 2 } },
      { type: 'note', payload: 'hi' },
    ])
    expect(arr.status).toBe(201)
    expect(arr.body.entries.map((e: { seq: number }) => e.seq)).toEqual([1, 2])
    const wrapped = await call(u, 'POST', '/v1/events', { events: [{ type: 'order', payload: null }] })
    expect(wrapped.body.entries[0].seq).toBe(3)
    const again = await call(u, 'POST', '/v1/events', { type: 'order', payload: { n: 1 }, id: 'o-1' })
    expect(again.body).toEqual(one.body)

    // Query: filters and paging.
    const all = await call(u, 'GET', '/v1/events')
    expect(all.body.entries.map((e: { seq: number }) => e.seq)).toEqual([0, 1, 2, 3])
    expect(all.body.next).toBeNull()
    const page = await call(u, 'GET', '/v1/events?limit=2')
    expect(page.body.next).toBe(`${node.sled}:1`)
    const rest = await call(u, 'GET', `/v1/events?after=${page.body.next}`)
    expect(rest.body.entries.map((e: { seq: number }) => e.seq)).toEqual([2, 3])
    const orders = await call(u, 'GET', `/v1/events?type=order&sled=${node.sled}&afterSeq=0`)
    expect(orders.body.entries.map((e: { seq: number }) => e.seq)).toEqual([1, 3])
    const ts = one.body.ts as number
    const since = await call(u, 'GET', `/v1/events?since=${ts}&until=${ts + 1}&kind=event`)
    expect(since.body.entries.every((e: { ts: number }) => e.ts === ts)).toBe(true)

    // Ingest: accepted at once, durable shortly after.
    const ing = await call(u, 'POST', '/v1/ingest', [
      { type: 'metric', payload: 1 },
      { type: 'metric', payload: 2, id: 'm-2' },
    ])
    expect(ing.status).toBe(202)
    expect(ing.body.results).toEqual([
      { lid: 0, queued: true, duplicate: false },
      { lid: 1, queued: true, duplicate: false },
    ])
    const ingested = await waitFor(async () => {
      const r = await call(u, 'GET', '/v1/events?type=metric')
      return r.body.entries.length === 2 ? r.body.entries : undefined
    })
    expect(ingested.map((e: { lid: number }) => e.lid)).toEqual([0, 1])

    // Stream: history then live; then live only.
    const s = await SseClient.open(`${u}/v1/stream?from=start`)
    expect(s.status).toBe(200)
    const history = await s.until((e) => e.event === 'live')
    expect(history.filter((e) => e.event === 'entry').map((e) => JSON.parse(e.data).seq)).toEqual([0, 1, 2, 3, 4, 5])
    expect(history.at(-1)).toMatchObject({
      event: 'live',
      id: `${node.sled.slice(0, 16)}:5`,
      data: JSON.stringify({ cursor: { [node.sled]: 5 } }),
    })
    const now = await SseClient.open(`${u}/v1/stream?from=now&sled=${node.sled}`)
    expect(await now.next()).toMatchObject({ event: 'live', id: `${node.sled.slice(0, 16)}:5` })
    const appended = await call(u, 'POST', '/v1/events', { type: 'late', payload: 7 })
    for (const client of [s, now]) {
      const e = await client.next()
      expect(e.event).toBe('entry')
      expect(JSON.parse(e.data)).toEqual(appended.body)
      expect(e.id).toBe(`${node.sled.slice(0, 16)}:6`)
    }
    // A sled filter naming a sled this node does not hold: nothing but live.
    const other = await SseClient.open(`${u}/v1/stream?from=start&sled=${'e'.repeat(64)}`)
    expect(await other.next()).toMatchObject({ event: 'live', id: '-' })

    // Status shows the open streams.
    const status = await call(u, 'GET', '/v1/status')
    expect(status.status).toBe(200)
    expect(status.body).toMatchObject({
      sled: node.sled,
      heads: { [node.sled]: 6 },
      entries: 7,
      appendsHeld: false,
      peers: [],
      ingest: { published: 2, appended: 2 },
      subscribers: { current: 3, total: 3, lagged: 0 },
    })
    for (const c of [s, now, other]) c.close()

    // Consumers: create, list, read, acknowledge (the cursor moves over contiguous acks only).
    expect((await call(u, 'GET', '/v1/consumers')).body).toEqual({ consumers: [] })
    // A consumer exists only once created: a typo is a 404 everywhere, and creates nothing.
    for (const [method, path] of [
      ['GET', '/v1/consumers/billing'],
      ['POST', '/v1/consumers/billing/ack'],
      ['DELETE', '/v1/consumers/billing'],
    ] as const) {
      const r = await call(u, method, path, method === 'POST' ? { sled: node.sled, seq: 0 } : undefined)
      expect([method, path, r.status, r.body.error.code]).toEqual([method, path, 404, 'CONSUMER_NOT_FOUND'])
    }
    const typo = await SseClient.open(`${u}/v1/stream?consumer=billing`)
    expect([typo.status, (typo.errorBody as { error: { code: string } }).error.code]).toEqual([
      404,
      'CONSUMER_NOT_FOUND',
    ])
    expect((await call(u, 'GET', '/v1/consumers')).body).toEqual({ consumers: [] })
    const created = await call(u, 'PUT', '/v1/consumers/billing')
    expect(created).toMatchObject({ status: 201, body: { name: 'billing', cursor: {}, pending: 7 } })
    expect((await call(u, 'PUT', '/v1/consumers/billing')).status).toBe(200)
    expect((await call(u, 'GET', '/v1/consumers/billing')).body).toEqual({ name: 'billing', cursor: {}, pending: 7 })
    const ack = await call(u, 'POST', '/v1/consumers/billing/ack', [
      { sled: node.sled, seq: 0 },
      { sled: node.sled, seq: 1 },
      { sled: node.sled, seq: 3 },
    ])
    expect(ack).toMatchObject({ status: 200, body: { name: 'billing', cursor: { [node.sled]: 1 }, pending: 5 } })
    const ack2 = await call(u, 'POST', '/v1/consumers/billing/ack', { sled: node.sled, seq: 2 })
    expect(ack2.body).toEqual({ name: 'billing', cursor: { [node.sled]: 3 }, pending: 3 })
    expect((await call(u, 'GET', '/v1/consumers')).body).toEqual({ consumers: ['billing'] })
    const cs = await SseClient.open(`${u}/v1/stream?consumer=billing`)
    const fromCursor = await cs.until((e) => e.event === 'live')
    expect(fromCursor.filter((e) => e.event === 'entry').map((e) => JSON.parse(e.data).seq)).toEqual([4, 5, 6])

    // Deleting a consumer ends its streams with the reason and forgets its cursor.
    const gone = await call(u, 'DELETE', '/v1/consumers/billing')
    expect(gone).toMatchObject({ status: 200, body: { name: 'billing', deleted: true } })
    const closed = await cs.until((e) => e.event === 'closed')
    expect(JSON.parse(closed.at(-1)?.data ?? '')).toMatchObject({ reason: 'consumer-deleted' })
    await cs.waitEnd()
    expect((await call(u, 'GET', '/v1/consumers/billing')).status).toBe(404)
    expect((await call(u, 'GET', '/v1/consumers')).body).toEqual({ consumers: [] })
    const recreated = await call(u, 'PUT', '/v1/consumers/billing')
    expect(recreated).toMatchObject({ status: 201, body: { cursor: {} } })
    expect((await call(u, 'DELETE', '/v1/consumers/billing')).status).toBe(200)

    // Metrics.
    const m = await fetch(`${u}/metrics`)
    expect(m.status).toBe(200)
    expect(m.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const fams = parseExposition(await m.text())
    expect(sampleValue(fams, 'sledlog_appends_total')).toBe(7)
    expect(sampleValue(fams, 'sledlog_entries', { sled: node.sled })).toBe(7)
    expect(sampleValue(fams, 'sledlog_ingest_published_total')).toBe(2)
    expect(sampleValue(fams, 'sledlog_subscribers_opened_total')).toBe(4)
    expect(sampleValue(fams, 'sledlog_subscribers_cut_off_total', { reason: 'consumer-deleted' })).toBe(1)
    // The standard process and runtime metrics (prom-client).
    expect(sampleValue(fams, 'process_resident_memory_bytes')).toBeGreaterThan(0)
    expect(fams.get('nodejs_eventloop_lag_p99_seconds')?.type).toBe('gauge')

    // The sync endpoint takes websocket upgrades only.
    expect(await call(u, 'GET', '/v1/sync')).toMatchObject({
      status: 400,
      body: { error: { code: 'HTTP_BAD_REQUEST' } },
    })

    // A clean stop ends open streams rather than waiting for their clients.
    const open = await SseClient.open(`${u}/v1/stream`)
    await open.next()
    await node.stop()
    expect(node.child.exitCode).toBe(0)
    await open.waitEnd(5000)
  })
})

/**
 * Bad input on every route, against a real node process: each gets a 4xx with a stable code
 * and the documented error format, and none changes the log.
 */
import { describe, expect, it } from 'vitest'
import type { ERROR_CODES } from '../../src/errors.js'
import { HTTP_STATUS } from '../../src/http/status-codes.js'
import { rawExchange } from '../helpers/abuse.js'
import { tempDir } from '../helpers/tmp.js'
import { call, startNode } from './node-process.js'
import { SseClient } from './sse-client.js'

const MiB = 1024 * 1024

describe('HTTP API bad input (node process)', () => {
  it('answers every bad request with a 4xx and a stable code, and changes nothing', async () => {
    const node = await startNode(await tempDir())
    const u = node.url
    const sled = node.sled
    const ok = { type: 't', payload: 1 }
    await call(u, 'POST', '/v1/events', [ok, ok])
    expect((await call(u, 'PUT', '/v1/consumers/c')).status).toBe(201)

    type Case = [
      what: string,
      method: string,
      path: string,
      body: unknown,
      code: keyof typeof ERROR_CODES,
      headers?: Record<string, string>,
    ]
    const cases: Case[] = [
      // routing
      ['unknown route', 'GET', '/v1/nope', undefined, 'HTTP_NOT_FOUND'],
      ['trailing slash', 'GET', '/v1/events/', undefined, 'HTTP_NOT_FOUND'],
      ['unknown consumer sub-route', 'GET', '/v1/consumers/a/b', undefined, 'HTTP_NOT_FOUND'],
      ['wrong method', 'DELETE', '/v1/events', undefined, 'HTTP_METHOD_NOT_ALLOWED'],
      ['GET on a POST route', 'GET', '/v1/ingest', undefined, 'HTTP_METHOD_NOT_ALLOWED'],
      ['POST on a GET route', 'POST', '/metrics', '{}', 'HTTP_METHOD_NOT_ALLOWED'],
      ['GET on ack', 'GET', '/v1/consumers/c/ack', undefined, 'HTTP_METHOD_NOT_ALLOWED'],
      // bodies
      ['bad JSON', 'POST', '/v1/events', '{"type":', 'HTTP_BAD_JSON'],
      ['empty body', 'POST', '/v1/events', '', 'HTTP_BAD_JSON'],
      ['not UTF-8', 'POST', '/v1/events', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'HTTP_BAD_JSON'],
      ['body not an object', 'POST', '/v1/events', 42, 'ENTRY_INVALID'],
      ['null body', 'POST', '/v1/events', null, 'ENTRY_INVALID'],
      ['empty batch', 'POST', '/v1/events', [], 'ENTRY_INVALID'],
      ['type not a string', 'POST', '/v1/events', { type: 5, payload: 1 }, 'ENTRY_INVALID'],
      ['missing payload', 'POST', '/v1/events', { type: 't' }, 'ENTRY_INVALID'],
      ['id not a string', 'POST', '/v1/events', { type: 't', payload: 1, id: 3 }, 'ENTRY_INVALID'],
      ['unknown field', 'POST', '/v1/events', { type: 't', payload: 1, lid: 3 }, 'ENTRY_INVALID'],
      ['unknown wrapper field', 'POST', '/v1/events', { events: [ok], extra: 1 }, 'ENTRY_INVALID'],
      ['events not an array', 'POST', '/v1/events', { events: ok }, 'ENTRY_INVALID'],
      ['empty type', 'POST', '/v1/events', { type: '', payload: 1 }, 'ENTRY_INVALID'],
      [
        'one bad event spoils the batch',
        'POST',
        '/v1/events',
        [ok, { type: 't', payload: 1, x: 1 }, ok],
        'ENTRY_INVALID',
      ],
      [
        'one oversized event spoils the batch',
        'POST',
        '/v1/events',
        [ok, { type: 't', payload: 'x'.repeat(70_000) }],
        'ENTRY_TOO_LARGE',
      ],
      [
        'one id on two different events of a batch',
        'POST',
        '/v1/events',
        [{ type: 't', payload: 1, id: 'dup' }, ok, { type: 't', payload: 2, id: 'dup' }],
        'ENTRY_INVALID',
      ],
      [
        'one id on two different ingest events',
        'POST',
        '/v1/ingest',
        [
          { type: 't', payload: 1, id: 'dup' },
          { type: 'u', payload: 1, id: 'dup' },
        ],
        'ENTRY_INVALID',
      ],
      ['bad ingest event', 'POST', '/v1/ingest', [ok, { type: 7, payload: 1 }], 'ENTRY_INVALID'],
      [
        'body too large',
        'POST',
        '/v1/events',
        JSON.stringify({ type: 't', payload: 'x'.repeat(1.5 * MiB) }),
        'HTTP_PAYLOAD_TOO_LARGE',
      ],
      [
        'ingest body too large',
        'POST',
        '/v1/ingest',
        JSON.stringify([{ type: 't', payload: 'x'.repeat(1.1 * MiB) }]),
        'HTTP_PAYLOAD_TOO_LARGE',
      ],
      // query parameters
      ['unknown query parameter', 'GET', '/v1/events?limt=5', undefined, 'HTTP_BAD_REQUEST'],
      ['parameter on a route without any', 'GET', '/healthz?x=1', undefined, 'HTTP_BAD_REQUEST'],
      ['repeated single parameter', 'GET', '/v1/events?limit=1&limit=2', undefined, 'HTTP_BAD_REQUEST'],
      ['limit not an integer', 'GET', '/v1/events?limit=ten', undefined, 'HTTP_BAD_REQUEST'],
      ['limit zero', 'GET', '/v1/events?limit=0', undefined, 'HTTP_BAD_REQUEST'],
      ['limit too big', 'GET', '/v1/events?limit=10001', undefined, 'HTTP_BAD_REQUEST'],
      ['bad sled', 'GET', '/v1/events?sled=ABC', undefined, 'HTTP_BAD_REQUEST'],
      ['bad after', 'GET', `/v1/events?after=${sled}:1:2`, undefined, 'HTTP_BAD_REQUEST'],
      ['afterSeq without a sled', 'GET', '/v1/events?afterSeq=3', undefined, 'HTTP_BAD_REQUEST'],
      ['negative since', 'GET', '/v1/events?since=-1', undefined, 'HTTP_BAD_REQUEST'],
      ['bad kind', 'GET', '/v1/events?kind=other', undefined, 'HTTP_BAD_REQUEST'],
      ['empty type', 'GET', '/v1/events?type=', undefined, 'HTTP_BAD_REQUEST'],
      ['one empty type of two', 'GET', '/v1/events?type=t&type=', undefined, 'HTTP_BAD_REQUEST'],
      ['type too long', 'GET', `/v1/events?type=${'t'.repeat(257)}`, undefined, 'HTTP_BAD_REQUEST'],
      ['create consumer with a bad name', 'PUT', '/v1/consumers/a%20b', undefined, 'HTTP_BAD_REQUEST'],
      ['delete unknown consumer', 'DELETE', '/v1/consumers/nobody', undefined, 'CONSUMER_NOT_FOUND'],
      ['read unknown consumer', 'GET', '/v1/consumers/nobody', undefined, 'CONSUMER_NOT_FOUND'],
      ['ack unknown consumer', 'POST', '/v1/consumers/nobody/ack', { sled, seq: 0 }, 'CONSUMER_NOT_FOUND'],
      ['stream unknown consumer', 'GET', '/v1/stream?consumer=nobody', undefined, 'CONSUMER_NOT_FOUND'],
      ['text body', 'POST', '/v1/events', '{}', 'HTTP_UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' }],
      ['bad from', 'GET', '/v1/stream?from=yesterday', undefined, 'HTTP_BAD_REQUEST'],
      ['bad buffer', 'GET', '/v1/stream?buffer=0', undefined, 'HTTP_BAD_REQUEST'],
      ['bad stream sled', 'GET', '/v1/stream?sled=x', undefined, 'HTTP_BAD_REQUEST'],
      ['consumer with from', 'GET', '/v1/stream?consumer=c&from=start', undefined, 'HTTP_BAD_REQUEST'],
      ['bad consumer name in stream', 'GET', '/v1/stream?consumer=a%20b', undefined, 'HTTP_BAD_REQUEST'],
      ['unknown stream parameter', 'GET', '/v1/stream?form=start', undefined, 'HTTP_BAD_REQUEST'],
      ['bad Last-Event-ID', 'GET', '/v1/stream', undefined, 'HTTP_BAD_REQUEST', { 'last-event-id': 'garbage' }],
      [
        'Last-Event-ID with a short prefix',
        'GET',
        '/v1/stream',
        undefined,
        'HTTP_BAD_REQUEST',
        { 'last-event-id': `${sled.slice(0, 15)}:1` },
      ],
      // consumers
      ['bad consumer name', 'GET', '/v1/consumers/no%20spaces', undefined, 'HTTP_BAD_REQUEST'],
      ['bad percent-encoding', 'GET', '/v1/consumers/%E0%A4%A', undefined, 'HTTP_BAD_REQUEST'],
      ['consumer name too long', 'GET', `/v1/consumers/${'n'.repeat(65)}`, undefined, 'HTTP_BAD_REQUEST'],
      ['ack bad JSON', 'POST', '/v1/consumers/c/ack', 'nope', 'HTTP_BAD_JSON'],
      ['ack missing seq', 'POST', '/v1/consumers/c/ack', { sled }, 'ENTRY_INVALID'],
      ['ack seq not an integer', 'POST', '/v1/consumers/c/ack', { sled, seq: '1' }, 'ENTRY_INVALID'],
      ['ack negative seq', 'POST', '/v1/consumers/c/ack', { sled, seq: -1 }, 'ENTRY_INVALID'],
      ['ack bad sled', 'POST', '/v1/consumers/c/ack', { sled: 'x', seq: 0 }, 'ENTRY_INVALID'],
      ['ack unknown field', 'POST', '/v1/consumers/c/ack', { sled, seq: 0, force: true }, 'ENTRY_INVALID'],
      ['ack entry not held', 'POST', '/v1/consumers/c/ack', { sled, seq: 99 }, 'ENTRY_INVALID'],
      [
        'ack batch with one not held',
        'POST',
        '/v1/consumers/c/ack',
        [
          { sled, seq: 0 },
          { sled, seq: 99 },
        ],
        'ENTRY_INVALID',
      ],
      ['empty ack batch', 'POST', '/v1/consumers/c/ack', [], 'ENTRY_INVALID'],
      ['ack bad consumer name', 'POST', '/v1/consumers/a%2Fb/ack', { sled, seq: 0 }, 'HTTP_BAD_REQUEST'],
      [
        'ack body too large',
        'POST',
        '/v1/consumers/c/ack',
        JSON.stringify({ sled, seq: 0, pad: 'x'.repeat(1.2 * MiB) }),
        'HTTP_PAYLOAD_TOO_LARGE',
      ],
    ]
    for (const [what, method, path, body, code, headers] of cases) {
      const r = await call(u, method, path, body, headers)
      expect({ what, status: r.status, code: r.body?.error?.code }).toEqual({ what, status: HTTP_STATUS[code], code })
      expect(r.status, what).toBeGreaterThanOrEqual(400)
      expect(r.status, what).toBeLessThan(500)
      expect(typeof r.body.error.message, what).toBe('string')
      expect(Object.keys(r.body), what).toEqual(['error'])
    }

    // A conflicting id names both events; an exact repeat in one batch is just deduplicated.
    const dup = await call(u, 'POST', '/v1/events', [
      { type: 't', payload: 1, id: 'dup' },
      { type: 't', payload: { x: 1 }, id: 'dup' },
    ])
    expect(dup.body.error).toMatchObject({ details: { index: 1, field: 'id' } })
    expect(dup.body.error.message).toMatch(/events\[1\]: .*"dup".*events\[0\]/)

    // 405 says what is allowed.
    const m = await call(u, 'PUT', '/v1/events', '{}')
    expect(m.headers.get('allow')).toBe('GET, POST')

    // A huge declared body is refused before it is read, and the connection is closed.
    const huge = await rawExchange(
      u,
      'POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${200 * MiB}\r\n\r\n{"type":`,
    )
    expect(huge).toMatch(/^HTTP\/1\.1 413 /)
    expect(huge).toMatch(/connection: close/i)
    expect(huge).toContain('"HTTP_PAYLOAD_TOO_LARGE"')

    // An absolute-form or otherwise odd request target is not a route.
    const odd = await rawExchange(u, 'GET //healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
    expect(odd).toMatch(/^HTTP\/1\.1 404 /)

    // A refused stream request is a JSON error, not a stream.
    const s = await SseClient.open(`${u}/v1/stream`, { 'last-event-id': 'zz' })
    expect(s.status).toBe(400)
    expect(s.errorBody).toMatchObject({ error: { code: 'HTTP_BAD_REQUEST' } })

    // Nothing of any refused request was applied.
    const status = await call(u, 'GET', '/v1/status')
    expect(status.body.heads).toEqual({ [sled]: 1 })
    expect(status.body.ingest.published).toBe(0)
    expect((await call(u, 'GET', '/v1/consumers/c')).body.cursor).toEqual({})
    // And the node still serves.
    expect((await call(u, 'POST', '/v1/events', ok)).status).toBe(201)
    const repeat = await call(u, 'POST', '/v1/events', [
      { type: 'r', payload: 1, id: 'rep' },
      { type: 'r', payload: 1, id: 'rep' },
    ])
    expect(repeat.status).toBe(201)
    expect(repeat.body.entries[1]).toEqual(repeat.body.entries[0])
  })
})

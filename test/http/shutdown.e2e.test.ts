/**
 * A node process's API during its shutdown, and the status of a peer it cannot reach.
 */
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { tempDir } from '../helpers/tmp.js'
import { call, startNode, waitFor } from './node-process.js'

describe('a node process stopping', () => {
  it('refuses writes with 503 NODE_STOPPING from the signal on, and keeps answering reads', async () => {
    const node = await startNode(await tempDir())
    const u = node.url
    expect((await call(u, 'POST', '/v1/events', { type: 't', payload: 0 })).status).toBe(201)
    expect((await call(u, 'PUT', '/v1/consumers/c')).status).toBe(201)
    expect((await call(u, 'POST', '/v1/consumers/c/ack', { sled: node.sled, seq: 0 })).status).toBe(200)

    // A sync link that never reads keeps the shutdown open: the node waits (up to a second) for
    // its close handshake before it closes the HTTP server. Requests sent meanwhile see the
    // stopping node.
    const ws = new WebSocket(`${u.replace('http', 'ws')}/v1/sync`)
    await once(ws, 'open')
    ws.pause()
    node.child.kill('SIGTERM')
    await waitFor(() => (node.stderr().includes('"shutting down"') ? true : undefined), 10_000, 'the shutdown to begin')

    for (const [path, body] of [
      ['/v1/events', { type: 't', payload: 1 }],
      ['/v1/ingest', [{ type: 't', payload: 2 }]],
      ['/v1/consumers/c/ack', { sled: node.sled, seq: 0 }],
    ] as const) {
      const r = await call(u, 'POST', path, body)
      expect({ path, status: r.status, code: r.body.error?.code }).toEqual({ path, status: 503, code: 'NODE_STOPPING' })
    }
    const read = await call(u, 'GET', '/v1/events')
    expect(read.status).toBe(200)
    expect(read.body.entries).toHaveLength(1)

    ws.terminate()
    const [code] = (await once(node.child, 'exit')) as [number | null]
    expect(code).toBe(0)
    expect(node.stderr()).not.toMatch(/"level":"(error|fatal)"/)
  })
})

describe('GET /v1/status peers', () => {
  it('gives a configured peer that never connected the state connecting', async () => {
    // Port 1 on loopback refuses connections: the dialer keeps retrying with backoff.
    const node = await startNode(await tempDir(), ['--peer', 'ws://127.0.0.1:1'])
    const st = await call(node.url, 'GET', '/v1/status')
    const [peer, ...rest] = st.body.peers
    // lastError (why the last dial failed) appears once the first attempt has failed.
    const { lastError, ...fields } = peer
    expect(fields).toEqual({ url: 'ws://127.0.0.1:1', connected: false, state: 'connecting' })
    if (lastError !== undefined) expect(lastError.code).toBe('ECONNREFUSED')
    expect(rest).toEqual([])
    await node.stop()
  })
})

/**
 * The event stream in-process (an API over a real log on a local HTTP server), for what a node
 * process cannot be made to do on cue: a 50 ms heartbeat, peers announcing holes, shutdown.
 */
import { describe, expect, it } from 'vitest'
import { createApi, type Api } from '../../src/http/api.js'
import { IngestWriter } from '../../src/ingest/writer.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { serveLocal } from '../helpers/local-http.js'
import { testLog } from '../helpers/logs.js'
import { waitFor } from './node-process.js'
import { SseClient } from './sse-client.js'

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

async function serve(log: SledLog): Promise<{ api: Api; url: string }> {
  const api = createApi({ log, ingest: new IngestWriter({ log }), peers: () => [], heartbeatMs: 50 })
  const url = await serveLocal(api.handle, () => api.close())
  return { api, url }
}

describe('GET /v1/stream (in-process)', () => {
  it('sends a comment heartbeat and a retry hint', async () => {
    const { log } = await testLog()
    const { url } = await serve(log)
    const s = await SseClient.open(`${url}/v1/stream`)
    expect(s.status).toBe(200)
    expect(s.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(await s.next()).toMatchObject({ event: 'live', id: '-' })
    expect(await s.nextComment(2000)).toBe('heartbeat')
    expect(s.retries).toEqual([2000])
    s.close()
  })

  it('announces holes peers report and when they fill', async () => {
    const { log } = await testLog()
    await log.appendBatch(range(2).map((i) => ({ type: 't', payload: i })))
    const { url } = await serve(log)
    const s = await SseClient.open(`${url}/v1/stream?from=now`)
    expect((await s.next()).event).toBe('live')
    // A peer says it holds this sled up to seq 5; this node has 0..1.
    log.noteRemoteHead(log.sled, 5)
    const hole = await s.next()
    expect(hole.event).toBe('hole')
    expect(JSON.parse(hole.data)).toEqual({ sled: log.sled, from: 2, to: 5 })
    await log.appendBatch(range(4).map((i) => ({ type: 't', payload: i })))
    const events = await s.until((e) => e.event === 'hole-filled')
    expect(events.filter((e) => e.event === 'entry').map((e) => JSON.parse(e.data).seq)).toEqual([2, 3, 4, 5])
    expect(JSON.parse(events.at(-1)?.data ?? '')).toEqual({ sled: log.sled, upTo: 5 })
    s.close()
  })

  it('tells a subscriber that overflows its buffer what it missed, then delivers it', async () => {
    const { log } = await testLog()
    const { api, url } = await serve(log)
    const s = await SseClient.open(`${url}/v1/stream?from=now&buffer=1`)
    expect((await s.next()).event).toBe('live')
    await log.appendBatch(range(10).map((i) => ({ type: 't', payload: i })))
    const events = await s.until((_, all) => all.filter((e) => e.event === 'entry').length === 10)
    const lagged = events.find((e) => e.event === 'lagged')
    expect(JSON.parse(lagged?.data ?? '')).toEqual({ missed: { [log.sled]: [1, 9] } })
    expect(events.filter((e) => e.event === 'entry').map((e) => JSON.parse(e.data).seq)).toEqual(range(10))
    expect(api.context.subscribers.lagged).toBe(1)
    s.close()
  })

  it('delivers a large history through backpressure to a client that stalls, in order', async () => {
    const { log } = await testLog()
    for (let i = 0; i < 2; i++)
      await log.appendBatch(range(4000).map((j) => ({ type: 't', payload: 'x'.repeat(300) + j })))
    const { url } = await serve(log)
    const s = await SseClient.open(`${url}/v1/stream?from=start`)
    expect((await s.next()).event).toBe('entry')
    // Stop reading long enough for the socket buffers to fill and the server to wait for drain.
    await new Promise((r) => setTimeout(r, 300))
    const rest = await s.until((e) => e.event === 'live', 20_000)
    const seqs = rest.filter((e) => e.event === 'entry').map((e) => JSON.parse(e.data).seq as number)
    expect(seqs).toEqual(range(8000).slice(1))
    s.close()
  })

  it('ends the subscription when the client goes away, and every stream when the API closes', async () => {
    const { log } = await testLog()
    const { api, url } = await serve(log)
    const a = await SseClient.open(`${url}/v1/stream`)
    const b = await SseClient.open(`${url}/v1/stream`)
    await a.next()
    await b.next()
    expect(api.context.subscribers.current).toBe(2)
    a.close()
    await waitFor(() => (api.context.subscribers.current === 1 ? true : undefined), 5000, 'the stream to be dropped')
    await api.close()
    await b.waitEnd(5000)
    expect(api.context.subscribers.current).toBe(0)
  })
})

/**
 * The SSE writer's safety nets on a real socket whose client never reads: a writer that
 * ignores backpressure is cut off at its byte budget, one that waits is cut off after the stall
 * time, each with its reason, and neither takes other streams with it.
 */
import type { ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { type CutReason, SseWriter } from '../../src/http/sse.js'
import { neverReads, rawGet } from '../helpers/abuse.js'
import { serveLocal } from '../helpers/local-http.js'

const serve = (onStream: (res: ServerResponse) => void): Promise<string> => serveLocal((_req, res) => onStream(res))

const event = 'x'.repeat(8 * 1024)

describe('SseWriter cut-off', () => {
  it('cuts a stream off past its byte budget when the writer ignores backpressure', async () => {
    const cuts: CutReason[] = []
    let closedByServer!: () => void
    const closed = new Promise<void>((r) => (closedByServer = r))
    const url = await serve((res) => {
      const sse = new SseWriter(res, {
        heartbeatMs: 60_000,
        maxQueuedBytes: 256 * 1024,
        stallMs: 60_000,
        onCut: (r) => cuts.push(r),
      })
      res.once('close', () => closedByServer())
      sse.open()
      // Far more than any socket buffer holds, without ever awaiting drained().
      const timer = setInterval(() => {
        for (let i = 0; i < 64 && !sse.closed; i++) sse.send('entry', event)
        if (sse.closed) clearInterval(timer)
      }, 1)
    })
    await neverReads(url, rawGet(url, '/'))
    await closed
    expect(cuts).toEqual([{ code: 'over-budget', message: 'more than 262144 bytes queued for the client' }])
  })

  it('cuts a stream off when its client reads nothing for the stall time', async () => {
    const cuts: CutReason[] = []
    let drainedAt = 0
    const url = await serve((res) => {
      const sse = new SseWriter(res, {
        heartbeatMs: 60_000,
        maxQueuedBytes: 64 * 1024 * 1024,
        stallMs: 300,
        onCut: (r) => cuts.push(r),
      })
      sse.open()
      void (async () => {
        while (!sse.closed) if (!sse.send('entry', event)) await sse.drained()
        drainedAt = Date.now()
      })()
    })
    const t0 = Date.now()
    await neverReads(url, rawGet(url, '/'))
    await expect.poll(() => cuts.length, { timeout: 10_000 }).toBe(1)
    expect(cuts[0]?.code).toBe('stalled')
    await expect.poll(() => drainedAt, { timeout: 5000 }).toBeGreaterThan(0)
    expect(drainedAt - t0).toBeGreaterThanOrEqual(300)
  })
})

import type { ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { ndjson, runMain } from './cli-process.js'
import { entryJson, fakeNode, json, sse } from './fake-node.js'

/** A stand-in for GET /v1/stream whose connections follow a script, one per connection. */
function fakeStream(script: Array<(res: ServerResponse) => void>) {
  return fakeNode((_req, res, n) => {
    const step = script[n]
    if (step === undefined) res.writeHead(503).end()
    else step(res)
  })
}

const entry = (seq: number): string => JSON.stringify(entryJson(seq))

describe('sledlog tail', () => {
  it('reconnects after a dropped stream and resumes with Last-Event-ID', async () => {
    const fake = await fakeStream([
      (res) => {
        const entries = `event: entry\nid: c1\ndata: ${entry(0)}\n\nevent: entry\nid: c2\ndata: ${entry(1)}\n\n`
        sse(res, `retry: 10\n\n: heartbeat\n\n${entries}`)
        // Cut the connection mid-stream, as a restarting node or a proxy would.
        setTimeout(() => res.destroy(), 20)
      },
      (res) => {
        const hole = 'event: hole\ndata: {"sled":"b","from":1,"to":2}\n\n'
        sse(res, `event: entry\nid: c3\ndata: ${entry(2)}\n\n${hole}event: live\nid: c3\ndata: {}\n\n`)
      },
    ])
    const r = await runMain(['tail', '--url', fake.url, '--from', 'start', '--sled', 'a'.repeat(64), '--until-live'])
    expect(r.code, r.stderr).toBe(0)
    expect(ndjson(r.stdout).map((e) => e.seq)).toEqual([0, 1, 2])
    expect(fake.requests.map((q) => q.url)).toEqual([
      `/v1/stream?from=start&sled=${'a'.repeat(64)}`,
      `/v1/stream?from=start&sled=${'a'.repeat(64)}`,
    ])
    expect(fake.requests[0]?.headers['last-event-id']).toBeUndefined()
    expect(fake.requests[1]?.headers['last-event-id']).toBe('c2')
    expect(r.stderr).toMatch(/reconnecting/)
    expect(r.stderr).toMatch(/hole: peers hold entries/)
    expect(r.stderr).toMatch(/live/)
    expect(r.stderr).toMatch(/resume with --last-event-id c3\n$/)
  })

  it('stops after --limit entries, and gives up on a refused resume position with exit 1', async () => {
    const fake = await fakeStream([
      (res) => sse(res, `event: entry\nid: c1\ndata: ${entry(0)}\n\nevent: entry\nid: c2\ndata: ${entry(1)}\n\n`),
      (res) => json(res, 400, { error: { code: 'HTTP_BAD_REQUEST', message: 'Last-Event-ID is not a stream cursor' } }),
    ])
    const first = await runMain(['tail', '--url', fake.url, '--limit', '1', '--quiet'])
    expect(first).toMatchObject({ code: 0, stderr: '' })
    expect(ndjson(first.stdout)).toHaveLength(1)
    const refused = await runMain(['tail', '--url', fake.url, '--last-event-id', 'junk'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/HTTP_BAD_REQUEST: Last-Event-ID is not a stream cursor/)
    expect(refused.stderr).not.toContain('resume with')
    expect(fake.requests[1]?.headers['last-event-id']).toBe('junk')
  })
})

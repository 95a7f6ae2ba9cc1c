/**
 * Clients that misbehave against a real node process: event streams that never read, slowloris
 * connections, resets on every refusal path, oversized headers. Each test prints what it
 * measured (connections held, RSS, the latency a well-behaved client saw meanwhile) and asserts
 * only generous bounds that the unprotected node failed (it stalled for 25-31 s and grew by
 * 1.1 GB under 200 unread streams; by 315 MB with a 9.4 s stall under the 50 of the first test).
 */
import { describe, expect, it } from 'vitest'
import { newToken, tokensPath, writeTokensFile } from '../../src/auth/tokens.js'
import { neverReads, rawExchange, rawGet, sendAndReset, slowSender } from '../helpers/abuse.js'
import { LatencyProbe, type ProbeFigures } from '../helpers/probe.js'
import { RssSampler } from '../helpers/rss.js'
import { tempDir } from '../helpers/tmp.js'
import { call, startNodeWithConfig, waitFor, type NodeProcess } from './node-process.js'

const MB = 1024 * 1024

/** Appends `n` entries of about `bytes` each, in batches. */
async function fill(node: NodeProcess, n: number, bytes: number, headers: Record<string, string> = {}): Promise<void> {
  const text = 'x'.repeat(bytes)
  for (let i = 0; i < n; i += 200) {
    const batch = Array.from({ length: Math.min(200, n - i) }, (_, k) => ({
      type: 'fill',
      payload: { i: i + k, text },
    }))
    expect((await call(node.url, 'POST', '/v1/events', batch, headers)).status).toBe(201)
  }
}

function show(what: string, figures: readonly ProbeFigures[], extra: Record<string, unknown>): void {
  const probes = figures.map(
    (f) =>
      `${f.path}: ${f.requests} req, p50 ${f.p50Ms.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms, ` +
      `max ${f.maxMs.toFixed(1)} ms, ${f.failures} failed`,
  )
  console.log(`[abuse] ${what}: ${JSON.stringify(extra)}\n  ${probes.join('\n  ')}`)
}

function expectServed(figures: readonly ProbeFigures[]): void {
  for (const f of figures) {
    expect(f.requests, f.path).toBeGreaterThan(5)
    expect(f.failures, f.path).toBe(0)
    expect(f.maxMs, f.path).toBeLessThan(5000)
  }
}

describe('event streams that never read (node process)', () => {
  it('cuts 50 stuck readers off, keeps RSS bounded and keeps serving everyone else', async () => {
    const node = await startNodeWithConfig(await tempDir(), {
      streamLimits: { stallMs: 3000, maxStreams: 100, maxStreamsPerClient: 50 },
    })
    // ~8 MB of log: more than the kernel buffers of one unread socket hold, so every stream blocks.
    await fill(node, 4000, 2000)
    const rss = await new RssSampler(node.child.pid as number).start()
    const probe = new LatencyProbe(node.url, ['/healthz', '/v1/events?limit=10']).start()
    const stuck = await Promise.all(
      Array.from({ length: 50 }, () => neverReads(node.url, rawGet(node.url, '/v1/stream?from=start'))),
    )
    const held = await waitFor(
      async () => {
        const s = (await call(node.url, 'GET', '/v1/status')).body.subscribers
        return s.current >= 50 ? s.current : undefined
      },
      30_000,
      'the 50 streams to be open',
    )
    // The per-client cap answers a 51st stream with 429 and Retry-After, as JSON.
    const over = await fetch(`${node.url}/v1/stream?from=now`)
    expect(over.status).toBe(429)
    expect(over.headers.get('retry-after')).toBe('5')
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('HTTP_TOO_MANY_STREAMS')

    const cut = await waitFor(
      async () => {
        const s = (await call(node.url, 'GET', '/v1/status')).body.subscribers
        return (s.cutOff.stalled ?? 0) >= 50 ? s : undefined
      },
      60_000,
      'every stuck stream to be cut off',
    )
    const figures = await probe.stop()
    rss.stop()
    const mem = rss.figures()
    show('50 unread streams from=start over 4000 entries of 2 kB', figures, {
      held,
      cutOff: cut.cutOff,
      current: cut.current,
      rssBaselineMB: Math.round(mem.baseline / MB),
      rssPeakMB: Math.round(mem.peak / MB),
      rssGrowthMB: Math.round(mem.growth / MB),
    })
    expect(cut.current).toBe(0)
    expectServed(figures)
    // The node before this change grew by 315 MB here (and answered /healthz after up to 9.4 s).
    expect(mem.growth).toBeLessThan(150 * MB)
    expect(node.stderr()).toContain('event stream cut off')
    for (const s of stuck) s.destroy()
    // The node still streams to a client that reads.
    const ok = await fetch(`${node.url}/v1/stream?from=now`)
    expect(ok.status).toBe(200)
    await ok.body?.cancel()
  })

  it('tells a stalled reader why it was cut off, if it reads again within the grace period', async () => {
    const node = await startNodeWithConfig(await tempDir(), { streamLimits: { stallMs: 1500 } })
    await fill(node, 3000, 2000)
    const socket = await neverReads(node.url, rawGet(node.url, '/v1/stream?from=start'))
    await waitFor(() => (node.stderr().includes('event stream cut off') ? true : undefined), 30_000, 'the cut-off')
    let got = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      got = (got + d).slice(-4096)
    })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.resume()
    await closed
    // The last chunk of the (chunked) response is the reason, then the response's end.
    expect(got).toMatch(
      /event: closed\ndata: \{"reason":"stalled","message":"the client read nothing for 1500 ms"\}\n\n\r\n0\r\n\r\n$/,
    )
  })
})

describe('slow and resetting clients (node process)', () => {
  it('closes slowloris connections with a JSON 408 and serves everyone else meanwhile', async () => {
    const node = await startNodeWithConfig(await tempDir(), {
      serverLimits: { headersTimeoutMs: 2000, requestTimeoutMs: 4000 },
    })
    const probe = new LatencyProbe(node.url, ['/healthz', '/v1/events?limit=10']).start()
    const t0 = Date.now()
    const slow = await Promise.all(
      Array.from({ length: 100 }, () =>
        slowSender(node.url, `${rawGet(node.url, '/v1/events', { 'x-pad': 'y'.repeat(200) })}`, 200),
      ),
    )
    await Promise.all(slow.map((s) => s.closed))
    const heldMs = Date.now() - t0
    const figures = await probe.stop()
    show('100 slowloris connections (a header byte every 200 ms)', figures, { heldMs })
    expectServed(figures)
    // Each was answered 408 in the one JSON format (or reset once it stopped reading), in time.
    const answered = slow.filter((s) => s.received().startsWith('HTTP/1.1 408 '))
    expect(answered.length).toBeGreaterThan(90)
    for (const s of answered) expect(s.received()).toContain('{"error":{"code":"HTTP_REQUEST_TIMEOUT"')
    expect(heldMs).toBeLessThan(15_000)
  })

  it('answers oversized headers with a JSON 431 and survives a reset on every refusal path', async () => {
    const dir = await tempDir()
    const made = newToken('reader', ['read'])
    await writeTokensFile(tokensPath(dir), [made.record])
    const node = await startNodeWithConfig(dir, { streamLimits: { maxStreamsPerClient: 1 } })
    const u = node.url
    const auth = { authorization: `Bearer ${made.token}` }

    const big = await rawExchange(u, rawGet(u, '/healthz', { 'x-big': 'z'.repeat(20_000), connection: 'close' }))
    expect(big).toMatch(/^HTTP\/1\.1 431 /)
    expect(big).toContain('{"error":{"code":"HTTP_HEADERS_TOO_LARGE"')
    const longUrl = await rawExchange(u, rawGet(u, `/v1/events?type=${'t'.repeat(20_000)}`, { connection: 'close' }))
    expect(longUrl).toMatch(/^HTTP\/1\.1 431 /)
    expect(longUrl).toContain('{"error":{"code":"HTTP_HEADERS_TOO_LARGE"')
    const garbage = await rawExchange(u, 'NOT HTTP AT ALL\r\n\r\n')
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /)
    expect(garbage).toContain('{"error":{"code":"HTTP_BAD_REQUEST"')

    const host = new URL(u).host
    const post = (path: string, extra: string, body = '{}'): string =>
      `POST ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`
    const held = await fetch(`${u}/v1/stream`, { headers: auth }) // takes the one stream slot
    const refusals: Array<[string, string]> = [
      ['401', rawGet(u, '/v1/events')],
      ['401 bad token', rawGet(u, '/v1/events', { authorization: 'Bearer sl_000000000000_x' })],
      ['403 scope', post('/v1/events', `Authorization: Bearer ${made.token}\r\nContent-Type: application/json\r\n`)],
      ['403 host', rawGet(u, '/healthz', { host: 'attacker.example' })],
      ['403 origin', rawGet(u, '/v1/events', { ...auth, origin: 'https://evil.example' })],
      ['404', rawGet(u, '/nope', auth)],
      ['405', rawGet(u, '/v1/ingest', auth)],
      ['400 params', rawGet(u, '/v1/events?bogus=1', auth)],
      ['415', post('/v1/events', 'Content-Type: text/plain\r\n')],
      ['413', post('/v1/events', 'Content-Type: application/json\r\n', 'x'.repeat(100)).replace('100', '999999999')],
      ['429', rawGet(u, '/v1/stream', auth)],
      ['431', rawGet(u, '/healthz', { 'x-big': 'z'.repeat(20_000) })],
      ['400 parser', 'GET / HTTP/9.9\r\n\r\n'],
      ['stream', rawGet(u, '/v1/stream?from=start', auth)],
    ]
    for (const [what, req] of refusals) {
      for (const afterMs of [0, 2, 20]) {
        await sendAndReset(u, req, afterMs)
        expect([what, afterMs, node.child.exitCode]).toEqual([what, afterMs, null])
      }
    }
    await held.body?.cancel()
    expect((await call(u, 'GET', '/healthz')).status).toBe(200)
    expect((await call(u, 'GET', '/v1/events', undefined, auth)).status).toBe(200)
    expect(node.stderr()).not.toMatch(/uncaught|unhandled|"level":"(error|fatal)"/)
    await node.stop()
    expect(node.child.exitCode).toBe(0)
  })
})

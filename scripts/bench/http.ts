/**
 * Group "http": one real node process (`sledlog node`, started by the harness's cluster of one)
 * driven over plain HTTP/1.1 with keep-alive, as a client library would: the cost of the HTTP
 * layer on top of the log's commit pipeline.
 *
 * - single: one POST /v1/events of one event at a time, each awaited: appends/s, p50/p99.
 * - batch-100: POSTs of 100 events, each awaited: entries/s and per-request p50/p99.
 * - concurrent-16: 16 clients, each posting one event at a time: appends/s and p50/p99.
 *
 * Only the public API is used (no token, loopback, `Content-Type: application/json`), so the
 * same scenario measures any version of the HTTP layer. `SLEDLOG_BENCH_HTTP_URL=http://…` points
 * it at a server already running instead (another build, or a prototype on another framework).
 */
import { Agent, request } from 'node:http'
import type { Cluster } from '../../src/harness/cluster.js'
import { fmt, latencySummary, now, type BenchContext, type BenchGroup, type BenchScenario } from './harness.js'
import { eventsBody, startCluster } from './multi.js'

interface Sizes {
  warmup: number
  single: number
  batches: number
  concurrentPerClient: number
}

const sizes = (quick: boolean): Sizes =>
  quick
    ? { warmup: 300, single: 1_000, batches: 50, concurrentPerClient: 100 }
    : { warmup: 2_000, single: 5_000, batches: 300, concurrentPerClient: 500 }

const CLIENTS = 16

/** POSTs a pre-serialized body to `path` and resolves once the whole 201 answer has been read. */
function post(agent: Agent, url: URL, body: string, path = '/v1/events'): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          text += d
        })
        res.on('end', () =>
          res.statusCode === 201 ? resolve() : reject(new Error(`POST → ${res.statusCode}: ${text.slice(0, 200)}`)),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** Runs `n` awaited POSTs of `batch` events each to `path` on one connection; returns per-request ms. */
export async function sequential(
  agent: Agent,
  url: URL,
  n: number,
  batch: number,
  path = '/v1/events',
): Promise<Float64Array> {
  const bodies = Array.from({ length: n }, () => eventsBody(batch))
  const lat = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t = now()
    await post(agent, url, bodies[i] as string, path)
    lat[i] = now() - t
  }
  return lat
}

function report(ctx: BenchContext, scenario: string, lat: Float64Array, wallMs: number, perRequest: number): void {
  const s = latencySummary(lat)
  const entries = lat.length * perRequest
  ctx.record(scenario, 'entries/s', (entries / wallMs) * 1000, 'entries/s', `${lat.length} requests of ${perRequest}`)
  ctx.record(scenario, 'request p50', s.p50, 'ms')
  ctx.record(scenario, 'request p99', s.p99, 'ms')
  ctx.progress(`${scenario}: max ${fmt(s.max)} ms`)
}

async function withNode(ctx: BenchContext, fn: (url: URL, agent: Agent) => Promise<void>): Promise<void> {
  const external = process.env.SLEDLOG_BENCH_HTTP_URL
  const cluster: Cluster | null = external === undefined ? await startCluster(ctx, 1) : null
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })
  try {
    const url = new URL(cluster === null ? (external as string) : cluster.node(0).url)
    await sequential(agent, url, sizes(ctx.quick).warmup, 1)
    await fn(url, agent)
  } finally {
    agent.destroy()
    await cluster?.stop()
  }
}

/** A scenario of `count(sizes)` awaited POSTs of `batch` events each, on one connection. */
function sequentialScenario(name: string, batch: number, count: (z: Sizes) => number): BenchScenario {
  return {
    name,
    run: (ctx) =>
      withNode(ctx, async (url, agent) => {
        const t0 = now()
        const lat = await sequential(agent, url, count(sizes(ctx.quick)), batch)
        report(ctx, name, lat, now() - t0, batch)
      }),
  }
}

/** The `http` group. */
export const httpGroup: BenchGroup = {
  name: 'http',
  description: 'HTTP API of one node process: POST /v1/events one at a time, in batches, from 16 clients',
  scenarios: [
    sequentialScenario('single', 1, (z) => z.single),
    sequentialScenario('batch-100', 100, (z) => z.batches),
    {
      name: 'concurrent-16',
      run: (ctx) =>
        withNode(ctx, async (url, agent) => {
          const n = sizes(ctx.quick).concurrentPerClient
          const t0 = now()
          const all = await Promise.all(Array.from({ length: CLIENTS }, () => sequential(agent, url, n, 1)))
          const wall = now() - t0
          const lat = new Float64Array(all.reduce((k, a) => k + a.length, 0))
          let off = 0
          for (const a of all) {
            lat.set(a, off)
            off += a.length
          }
          report(ctx, 'concurrent-16', lat, wall, 1)
        }),
    },
  ],
}

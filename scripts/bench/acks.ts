/**
 * Group "acks": what replicated acknowledgements cost. A 3-node mesh of real node processes
 * (`sledlog node`, each dialing the other two directly: no fault proxies in between, whose hop
 * through this process would add to every receipt), driven over HTTP/1.1 keep-alive at node 0
 * with POST /v1/events as a client would, at three levels:
 *
 * - local: answered once durable on node 0 (`acks=0`, the default);
 * - acks=1: once one peer proved (signed holds receipt) it durably holds the write;
 * - acks=2: once both peers did.
 *
 * The levels take turns in rounds within one cluster (local, acks=1, acks=2, local, …), so load
 * from other work on the machine falls on all three alike. Scenarios: `single` (one event per
 * request, one at a time: latency), `concurrent-16` (16 clients, one event each: how waits
 * share receipts), `batch-100` (100 events per request).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Agent } from 'node:http'
import { createInterface } from 'node:readline'
import { freePort, nodeCommand } from '../../src/harness/cluster.js'
import { fmt, latencySummary, now, type BenchContext, type BenchGroup, type BenchScenario } from './harness.js'
import { sequential } from './http.js'
import { NODE_EXTRA_ARGS, waitReady } from './multi.js'

/** The acknowledgement levels compared, as query strings of POST /v1/events. */
const LEVELS = [
  { name: 'local', query: '' },
  { name: 'acks=1', query: '?acks=1' },
  { name: 'acks=2', query: '?acks=2' },
] as const

/** Rounds the levels take turns in. */
const ROUNDS = 5

const CLIENTS = 16

interface Sizes {
  warmup: number
  /** Requests per level, split over the rounds. */
  single: number
  perClient: number
  batches: number
}

const sizes = (quick: boolean): Sizes =>
  quick
    ? { warmup: 200, single: 300, perClient: 25, batches: 30 }
    : { warmup: 1_000, single: 3_000, perClient: 150, batches: 200 }

/** A running node process of the bench cluster. */
interface BenchNode {
  readonly url: string
  readonly child: ChildProcess
}

/** Starts `sledlog node` on `port` dialing `peers`; resolves once it listens. */
async function startNode(dir: string, port: number, peers: readonly number[]): Promise<BenchNode> {
  const args = ['node', '--data', dir, '--host', '127.0.0.1', '--port', String(port), ...NODE_EXTRA_ARGS]
  for (const p of peers) args.push('--peer', `ws://127.0.0.1:${p}`)
  const cmd = nodeCommand(args)
  const child = spawn(cmd.command, cmd.args, { cwd: cmd.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-8_000)
  })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node on port ${port} did not start:\n${stderr}`)), 60_000)
    lines.on('line', (line) => {
      if (!line.includes('"listening"')) return
      clearTimeout(timer)
      resolve((JSON.parse(line) as { url: string }).url)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`node on port ${port} exited (${code}):\n${stderr}`))
    })
  })
  return { url, child }
}

/** Stops the nodes (SIGTERM, then SIGKILL after 10 s). */
async function stopAll(nodes: readonly BenchNode[]): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      if (n.child.exitCode !== null || n.child.signalCode !== null) return
      const exited = once(n.child, 'exit')
      n.child.kill('SIGTERM')
      const timer = setTimeout(() => n.child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }),
  )
}

/** Runs `fn` against node 0 of a fresh 3-node mesh, every link up and synced. */
async function withMesh(ctx: BenchContext, fn: (url: URL, agent: Agent) => Promise<void>): Promise<void> {
  const ports = [await freePort(), await freePort(), await freePort()]
  const nodes: BenchNode[] = []
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })
  try {
    for (let i = 0; i < 3; i++) {
      const dir = await ctx.tempDir(`acks-${i}`)
      nodes.push(
        await startNode(
          dir,
          ports[i] as number,
          ports.filter((_, j) => j !== i),
        ),
      )
    }
    // Each node dials both others and is dialed by them: 4 links each.
    await waitReady(
      nodes.map((n) => n.url),
      4,
    )
    const url = new URL((nodes[0] as BenchNode).url)
    const warm = sizes(ctx.quick).warmup
    for (const level of LEVELS) await requests(agent, url, level.query, Math.round(warm / LEVELS.length), 1)
    await fn(url, agent)
  } finally {
    agent.destroy()
    await stopAll(nodes)
  }
}

/** `n` awaited POSTs of `batch` events each to `url` + `query`; the latency of each, ms. */
async function requests(agent: Agent, url: URL, query: string, n: number, batch: number): Promise<number[]> {
  return [...(await sequential(agent, url, n, batch, `/v1/events${query}`))]
}

/** Latencies and wall time per level, gathered over the rounds. */
type Tally = Map<string, { lat: number[]; wallMs: number }>

/** Runs `round(level)` for each level, {@link ROUNDS} times in turn; sums what each returned. */
async function inTurns(round: (query: string) => Promise<number[]>): Promise<Tally> {
  const tally: Tally = new Map(LEVELS.map((l) => [l.name, { lat: [], wallMs: 0 }]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const level of LEVELS) {
      const t0 = now()
      const lat = await round(level.query)
      const t = tally.get(level.name) as { lat: number[]; wallMs: number }
      t.wallMs += now() - t0
      t.lat.push(...lat)
    }
  }
  return tally
}

function report(ctx: BenchContext, scenario: string, tally: Tally, perRequest: number): void {
  for (const [level, t] of tally) {
    const s = latencySummary(Float64Array.from(t.lat))
    const entries = t.lat.length * perRequest
    const name = `acks/${scenario}/${level}`
    ctx.record(name, 'entries/s', (entries / t.wallMs) * 1000, 'entries/s', `${t.lat.length} requests of ${perRequest}`)
    ctx.record(name, 'request p50', s.p50, 'ms')
    ctx.record(name, 'request p99', s.p99, 'ms')
    ctx.progress(`${name}: max ${fmt(s.max)} ms`)
  }
}

/** A scenario of awaited POSTs of `batch` events, one connection, levels in turns. */
function sequentialScenario(name: string, batch: number, count: (z: Sizes) => number): BenchScenario {
  return {
    name,
    run: (ctx) =>
      withMesh(ctx, async (url, agent) => {
        const per = Math.max(1, Math.round(count(sizes(ctx.quick)) / ROUNDS))
        report(ctx, name, await inTurns((q) => requests(agent, url, q, per, batch)), batch)
      }),
  }
}

/** The `acks` group. */
export const acksGroup: BenchGroup = {
  name: 'acks',
  description: '3-node mesh of processes: POST /v1/events with local acks, acks=1 and acks=2 (latency, throughput)',
  scenarios: [
    sequentialScenario('single', 1, (z) => z.single),
    {
      name: 'concurrent-16',
      run: (ctx) =>
        withMesh(ctx, async (url, agent) => {
          const per = Math.max(1, Math.round(sizes(ctx.quick).perClient / ROUNDS))
          const round = async (q: string): Promise<number[]> =>
            (await Promise.all(Array.from({ length: CLIENTS }, () => requests(agent, url, q, per, 1)))).flat()
          report(ctx, 'concurrent-16', await inTurns(round), 1)
        }),
    },
    sequentialScenario('batch-100', 100, (z) => z.batches),
  ],
  ratios: [
    ...(['acks=1', 'acks=2'] as const).flatMap((level) =>
      (['request p50', 'request p99'] as const).map((metric) => ({
        name: `single ${level} / local, ${metric}`,
        numerator: { scenario: `acks/single/${level}`, metric },
        denominator: { scenario: 'acks/single/local', metric },
        note: 'added latency of waiting for peers’ receipts, one request at a time',
      })),
    ),
  ],
}

/**
 * Group "scaling": how append, replication and open costs grow with the log, on real node
 * processes (two nodes; node 1 dials node 0 over one harness link; everything through the HTTP
 * API). At each size S (10k, 100k, and 1M in the full run) of node 0's log:
 *
 * - append: node 0 grows to S with POST /v1/events batches of 1000 (node 1 down);
 * - open: node 0 restarts (SIGTERM, start): process start → healthy, opening S entries;
 * - catch-up: node 1's database is wiped and it restarts: start → holds all S (every signature
 *   verified), so a full replication of S entries;
 * - live: with both up, a window of appends on node 0 until node 1 holds them (entries/s), and
 *   paced single appends: POST ack and append→visible on node 1's SSE stream, p50/p99.
 *
 * Then per-entry cost at the largest size over the smallest (1.0 = linear). In-process append
 * and open figures are not re-measured: the single-node group's `scaling` and `open/*` results
 * of the same run are reused in the plot when present. The plot (hand-written SVG) goes to
 * docs/bench-scaling.svg on a full run, bench-results/bench-scaling-quick.svg on a quick one.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Cluster } from '../../src/harness/cluster.js'
import { fmt, latencySummary, now, REPO_ROOT, type BenchContext, type BenchGroup, type BenchResult } from './harness.js'
import {
  appendVia,
  eventsBody,
  label,
  honestRejections,
  postRaw,
  seqOfAnswer,
  sleep,
  startCluster,
  statusOf,
  StreamWatch,
  waitHeads,
  waitReady,
} from './multi.js'
import { renderScalingSvg, type Series } from './svg.js'

interface Sizes {
  steps: number[]
  window: number
  probe: number
  probeIntervalMs: number
}

const sizes = (quick: boolean): Sizes =>
  quick
    ? { steps: [4_000, 10_000], window: 1_000, probe: 60, probeIntervalMs: 5 }
    : { steps: [10_000, 100_000, 1_000_000], window: 10_000, probe: 300, probeIntervalMs: 5 }

interface Point {
  size: number
  appendRate: number
  restartMs: number
  catchUpMs: number
  liveRate: number
  ackP50: number
  ackP99: number
  visP50: number
  visP99: number
}

async function headOf(url: string, sled: string): Promise<number> {
  return (await statusOf(url)).heads[sled] ?? -1
}

/** Paced single appends on `a` with an SSE watch on `b`: ack and visibility latencies. */
async function probe(
  a: string,
  b: string,
  sled: string,
  n: number,
  intervalMs: number,
): Promise<{ ack: Float64Array; vis: Float64Array }> {
  const watch = new StreamWatch(b, sled)
  try {
    await watch.open()
    const sent = new Map<number, number>()
    const ack = new Float64Array(n)
    let last = -1
    for (let i = 0; i < n; i++) {
      const t = now()
      last = seqOfAnswer(await postRaw(a, eventsBody(1).slice(1, -1)))
      ack[i] = now() - t
      sent.set(last, t)
      const wait = intervalMs - (now() - t)
      if (wait > 0) await sleep(wait)
    }
    await watch.until(last)
    const vis = new Float64Array(n)
    let i = 0
    for (const [seq, t] of sent) vis[i++] = (watch.arrivals.get(seq) as number) - t
    return { ack, vis }
  } finally {
    watch.close()
  }
}

async function run(ctx: BenchContext): Promise<void> {
  const z = sizes(ctx.quick)
  const cluster: Cluster = await startCluster(ctx, 2, [[1, 0]])
  const points: Point[] = []
  try {
    const n0 = cluster.node(0)
    const n1 = cluster.node(1)
    const sled = n0.sled
    await waitReady([n0.url, n1.url], 1)
    // Warm-up of append, relay and verify paths.
    await appendVia(n0.url, ctx.quick ? 500 : 2000, 500)
    await waitHeads([n1.url], { [sled]: await headOf(n0.url, sled) }, now())
    // Baselines with a nearly empty log: restart of node 0, restart of node 1 with nothing missed.
    let t0 = now()
    await cluster.restart(0)
    const restartBase = now() - t0
    await waitReady([n1.url], 1)
    t0 = now()
    await cluster.restart(1)
    await waitReady([n1.url], 1)
    const rejoinBase = now() - t0
    ctx.record(
      'scale/base',
      'node restart → healthy',
      restartBase,
      'ms',
      `log of ${label((await headOf(n0.url, sled)) + 1)}: process start (node + tsx), open, listen`,
    )
    ctx.record('scale/base', 'rejoin, nothing missed', rejoinBase, 'ms', 'node 1 restart → link synced')
    await cluster.kill(1)
    for (const size of z.steps) {
      const s = `scale/${label(size)}`
      const have = (await headOf(n0.url, sled)) + 1
      ctx.progress(`${s}: growing node 0 from ${label(have)} to ${label(size)} (node 1 down)`)
      const appendMs = await appendVia(n0.url, size - have, 1000)
      const appendRate = ((size - have) * 1000) / appendMs
      ctx.record(
        s,
        'append entries/s',
        appendRate,
        'entries/s',
        `HTTP batches of 1000, ${label(have)}→${label(size)}, node 1 down`,
      )
      // Open: restart node 0 with S entries.
      t0 = now()
      await cluster.restart(0)
      const restartMs = now() - t0
      ctx.record(
        s,
        'restart → healthy',
        restartMs,
        'ms',
        `node 0 opens ${label(size)} entries (HMAC-checked records); base ${Math.round(restartBase)} ms`,
      )
      // Catch-up: node 1 from an empty database.
      await cluster.wipe(1)
      ctx.progress(`${s}: node 1 catching up ${label(size)} from empty`)
      t0 = now()
      await cluster.revive(1)
      const [catchUpMs] = (await waitHeads([n1.url], { [sled]: size - 1 }, t0, {
        intervalMs: 10,
        timeoutMs: 1_800_000,
      })) as [number]
      ctx.record(
        s,
        'catch-up from empty',
        catchUpMs / 1000,
        's',
        `node 1 wiped, restart → holds all ${label(size)} (verified); rejoin base ${Math.round(rejoinBase)} ms`,
      )
      ctx.record(s, 'catch-up entries/s', (size * 1000) / catchUpMs, 'entries/s')
      await waitReady([n0.url, n1.url], 1)
      // Live window.
      const base = await headOf(n0.url, sled)
      t0 = now()
      const done = waitHeads([n1.url], { [sled]: base + z.window }, t0, { intervalMs: 5 })
      await appendVia(n0.url, z.window, 100)
      const [liveMs] = (await done) as [number]
      const liveRate = (z.window * 1000) / liveMs
      ctx.record(
        s,
        'live replication entries/s',
        liveRate,
        'entries/s',
        `${label(z.window)} appended in POSTs of 100 at size ${label(size)}, until node 1 holds them`,
      )
      // Latency probe.
      const { ack, vis } = await probe(n0.url, n1.url, sled, z.probe, z.probeIntervalMs)
      const a = latencySummary(ack)
      const v = latencySummary(vis)
      ctx.record(s, 'append ack p50', a.p50, 'ms', `${z.probe} paced single POSTs, one every ${z.probeIntervalMs} ms`)
      ctx.record(s, 'append ack p99', a.p99, 'ms')
      ctx.record(s, 'append→visible on node 1 p50', v.p50, 'ms', 'SSE arrival on node 1')
      ctx.record(s, 'append→visible on node 1 p99', v.p99, 'ms')
      points.push({
        size,
        appendRate,
        restartMs,
        catchUpMs,
        liveRate,
        ackP50: a.p50,
        ackP99: a.p99,
        visP50: v.p50,
        visP99: v.p99,
      })
      await cluster.kill(1)
    }
    const rejected = honestRejections(await statusOf(n0.url))
    if (rejected !== 0) throw new Error(`scaling: ${rejected} updates rejected`)
  } catch (err) {
    process.stderr.write(cluster.describe(2000) + '\n')
    throw err
  } finally {
    await cluster.stop()
  }
  recordGrowth(ctx, points)
  await plot(ctx, points)
}

/** Per-entry cost at the largest size over the smallest: 1.0 = linear growth. */
function recordGrowth(ctx: BenchContext, points: readonly Point[]): void {
  const first = points[0]
  const last = points[points.length - 1]
  if (first === undefined || last === undefined || first === last) return
  const s = `scale/${label(first.size)}→${label(last.size)}`
  const restartBase =
    ctx.results().find((r) => r.scenario === 'scale/base' && r.metric === 'node restart → healthy')?.value ?? 0
  const rejoin =
    ctx.results().find((r) => r.scenario === 'scale/base' && r.metric === 'rejoin, nothing missed')?.value ?? 0
  const note = '1.0 = linear; > 1: each entry costs more in a bigger log'
  ctx.record(s, 'append µs/entry last/first', first.appendRate / last.appendRate, 'ratio', `${note} (HTTP append)`)
  ctx.record(
    s,
    'catch-up s/entry last/first',
    last.catchUpMs / last.size / (first.catchUpMs / first.size),
    'ratio',
    'raw (process start included: flatters the larger size)',
  )
  ctx.record(
    s,
    'catch-up s/entry last/first, net',
    (last.catchUpMs - rejoin) / last.size / ((first.catchUpMs - rejoin) / first.size),
    'ratio',
    `rejoin base (${Math.round(rejoin)} ms) subtracted`,
  )
  ctx.record(
    s,
    'open ms/entry last/first, net',
    (last.restartMs - restartBase) / last.size / ((first.restartMs - restartBase) / first.size),
    'ratio',
    `restart base (${Math.round(restartBase)} ms) subtracted`,
  )
  ctx.record(s, 'live replication µs/entry last/first', first.liveRate / last.liveRate, 'ratio', note)
  ctx.record(
    s,
    'append→visible p50 last/first',
    last.visP50 / first.visP50,
    'ratio',
    '1.0 = latency independent of log size',
  )
}

/** single-node group results reused: in-process append step rates and open times. */
function reused(results: readonly BenchResult[]): { append: Array<[number, number]>; open: Array<[number, number]> } {
  const parse = (t: string): number => Number(t.replace('M', 'e6').replace('k', 'e3'))
  const append: Array<[number, number]> = []
  const open: Array<[number, number]> = []
  for (const r of results) {
    if (r.group !== 'single-node') continue
    if (r.scenario === 'scaling' && /^appends\/s [0-9.]+[kM]?→[0-9.]+[kM]?$/.test(r.metric))
      append.push([parse(r.metric.slice(r.metric.indexOf('→') + 1)), r.value])
    const m = /^open\/([0-9.]+[kM]?)$/.exec(r.scenario)
    if (m !== null && r.metric === 'open rate (mac)') open.push([parse(m[1] as string), r.value])
  }
  return { append, open }
}

async function plot(ctx: BenchContext, points: readonly Point[]): Promise<void> {
  if (points.length === 0) return
  const restartBase =
    ctx.results().find((r) => r.scenario === 'scale/base' && r.metric === 'node restart → healthy')?.value ?? 0
  const r = reused(ctx.results())
  const throughput: Series[] = [
    { name: 'append, node HTTP API (batches of 1000)', points: points.map((p) => [p.size, p.appendRate]) },
    { name: 'catch-up from empty, 2 processes', points: points.map((p) => [p.size, (p.size * 1000) / p.catchUpMs]) },
    { name: 'live replication window, 2 processes', points: points.map((p) => [p.size, p.liveRate]) },
    {
      name: 'open on restart (net of process start)',
      points: points.map((p) => [p.size, (p.size * 1000) / Math.max(1, p.restartMs - restartBase)]),
    },
  ]
  if (r.append.length > 0)
    throughput.unshift({ name: 'append in-process, bursts of 1000 (single-node)', points: r.append })
  if (r.open.length > 0) throughput.push({ name: 'open in-process, HMAC (single-node)', points: r.open })
  const latency: Series[] = [
    { name: 'append ack p50', points: points.map((p) => [p.size, p.ackP50]) },
    { name: 'append ack p99', points: points.map((p) => [p.size, p.ackP99]), dashed: true },
    { name: 'append→visible on peer p50', points: points.map((p) => [p.size, p.visP50]) },
    { name: 'append→visible on peer p99', points: points.map((p) => [p.size, p.visP99]), dashed: true },
  ]
  const machine = ctx.results().find((x) => x.scenario === 'crypto/node' && x.metric === 'verify')
  const subtitle =
    `${ctx.quick ? 'quick' : 'full'} run ${new Date().toISOString().slice(0, 10)}; ` +
    (machine === undefined ? '' : `Ed25519 verify ${fmt(machine.value)}/s/core this run; `) +
    `2 cores, Node ${process.version}`
  const svg = renderScalingSvg({
    title: 'sledlog scaling: throughput and latency vs log size',
    subtitle,
    throughput,
    latency,
  })
  const path = ctx.quick
    ? join(REPO_ROOT, 'bench-results', 'bench-scaling-quick.svg')
    : join(REPO_ROOT, 'docs', 'bench-scaling.svg')
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, svg)
  ctx.progress(`scaling plot written to ${path}`)
}

export const scalingGroup: BenchGroup = {
  name: 'scaling',
  description:
    '2 node processes: append, open, catch-up, live replication and latency at 10k/100k/1M entries; SVG plot',
  scenarios: [{ name: 'nodes', run }],
}

/**
 * Group "replication": three real node processes (src/harness/cluster.ts: `sledlog node` each,
 * full mesh, every link through the harness's TCP proxy in the benchmark process), driven through
 * the public HTTP API as a user would.
 *
 * - throughput: entries/s until every node holds (so has verified: every peer entry passes the
 *   guard with its signature checked) everything appended, with one writer and with all three.
 * - latency: append on node 0, time until the entry arrives on GET /v1/stream (SSE) of nodes 1
 *   and 2; paced single appends (idle cluster) and back-to-back batches (loaded cluster).
 * - catch-up: a node that was down while many entries were appended elsewhere restarts; time
 *   until it holds them all.
 *
 * Throughputs are also reported as a fraction of the single-core Ed25519 verify rate of the
 * same run: each receiving node must verify every entry it did not write.
 */
import type { Cluster, Topology } from '../../src/harness/cluster.js'
import { fmt, latencySummary, now, type BenchContext, type BenchGroup, type RatioDef } from './harness.js'
import {
  appendVia,
  duplicatesOf,
  eventsBody,
  label,
  postRaw,
  seqOfAnswer,
  sleep,
  startCluster,
  honestRejections,
  statusOf,
  StreamWatch,
  verifyLimit,
  waitHeads,
  waitReady,
  wireBytes,
} from './multi.js'

interface Sizes {
  oneWriter: number
  allWriters: number
  paced: number
  pacedIntervalMs: number
  loaded: number
  loadedBatch: number
  catchUp: number
}

const sizes = (quick: boolean): Sizes =>
  quick
    ? {
        oneWriter: 4_000,
        allWriters: 3_000,
        paced: 200,
        pacedIntervalMs: 5,
        loaded: 2_000,
        loadedBatch: 100,
        catchUp: 6_000,
      }
    : {
        oneWriter: 100_000,
        allWriters: 60_000,
        paced: 2_000,
        pacedIntervalMs: 5,
        loaded: 30_000,
        loadedBatch: 100,
        catchUp: 100_000,
      }

/** HTTP batch size of bulk appends (POST /v1/events with an array). */
const BULK_BATCH = 1000

const NODES = 3
/** Links each node has in a full mesh of 3 where every node dials every other: 2 dialed + 2 accepted. */
const LINKS = 2 * (NODES - 1)

/** One link per pair (node i dials node j < i), instead of the mesh's two. */
const TRIANGLE: Topology = [
  [1, 0],
  [2, 0],
  [2, 1],
]

async function withCluster(
  ctx: BenchContext,
  fn: (c: Cluster) => Promise<void>,
  topology: Topology = 'mesh',
): Promise<void> {
  const t0 = now()
  const cluster = await startCluster(ctx, NODES, topology)
  try {
    await waitReady(
      cluster.nodes.map((n) => n.url),
      topology === 'mesh' ? LINKS : NODES - 1,
    )
    ctx.progress(`3-node cluster up in ${Math.round(now() - t0)} ms`)
    await fn(cluster)
  } catch (err) {
    process.stderr.write(cluster.describe(2000) + '\n')
    throw err
  } finally {
    await cluster.stop()
  }
}

/** Small appends on every node, converged: JIT warm-up of sign, verify and relay paths. */
async function warmUp(cluster: Cluster, quick: boolean): Promise<void> {
  const urls = cluster.nodes.map((n) => n.url)
  await Promise.all(urls.map((u) => appendVia(u, quick ? 500 : 1500, 250)))
  const want: Record<string, number> = {}
  for (const n of cluster.nodes) want[n.sled] = (await statusOf(n.url)).heads[n.sled] as number
  await waitHeads(urls, want, now())
}

async function headsOf(cluster: Cluster): Promise<Record<string, number>> {
  return (await statusOf(cluster.node(0).url)).heads
}

async function rejectedTotal(cluster: Cluster): Promise<number> {
  const st = await Promise.all(cluster.nodes.map((n) => statusOf(n.url)))
  return st.reduce((a, s) => a + honestRejections(s), 0)
}

/**
 * Records `rate` as a fraction of what one core verifies: every replicated entry is verified, so
 * this is how close replication runs to its bound. `note` follows "on one core" in the remark.
 */
function recordVerifyFraction(
  ctx: BenchContext,
  s: string,
  rate: number,
  limit: { rate: number; source: string },
  note = ` (${limit.source})`,
): void {
  ctx.record(
    s,
    'fraction of verify limit',
    rate / limit.rate,
    'ratio',
    `vs ${fmt(limit.rate)} verifies/s on one core${note}`,
  )
}

/** Appends `n` on node 0 (HTTP batches) and times until every node holds them. */
async function oneWriter(
  ctx: BenchContext,
  cluster: Cluster,
  s: string,
  n: number,
  limit: { rate: number; source: string },
): Promise<void> {
  const urls = cluster.nodes.map((x) => x.url)
  {
    const base = await headsOf(cluster)
    const sled0 = cluster.node(0).sled
    const want = { [sled0]: (base[sled0] ?? -1) + n }
    const dup0 = await duplicatesOf(cluster.nodes)
    const w0 = wireBytes(cluster)
    ctx.progress(`one writer: appending ${label(n)} on node 0 in batches of ${BULK_BATCH}`)
    const t0 = now()
    const done = waitHeads(urls, want, t0)
    const producerMs = await appendVia(urls[0] as string, n, BULK_BATCH)
    const at = await done
    const allMs = Math.max(...at)
    const dup = (await duplicatesOf(cluster.nodes)).map((d, i) => d - (dup0[i] as number))
    const rate = (n * 1000) / allMs
    ctx.record(
      s,
      'entries/s (all 3 nodes hold all)',
      rate,
      'entries/s',
      `n=${label(n)} appended on node 0 (HTTP batches of ${BULK_BATCH}); 2 nodes verify each`,
    )
    ctx.record(
      s,
      'producer appends/s (node 0 acks)',
      (n * 1000) / producerMs,
      'entries/s',
      'POST /v1/events answered (durable on node 0)',
    )
    ctx.record(
      s,
      'last node behind producer',
      allMs - producerMs,
      'ms',
      `per-node done at ${at.map((x) => (x / 1000).toFixed(2)).join(' / ')} s`,
    )
    recordVerifyFraction(ctx, s, rate, limit)
    ctx.record(
      s,
      'wire bytes per entry',
      (wireBytes(cluster) - w0) / n,
      'B',
      `all links, both ways; duplicates received per node ${dup.join('/')}`,
    )
  }
}

const throughputScenario = {
  name: 'throughput',
  async run(ctx: BenchContext): Promise<void> {
    const z = sizes(ctx.quick)
    const limit = verifyLimit(ctx)
    await withCluster(ctx, async (cluster) => {
      await warmUp(cluster, ctx.quick)
      const urls = cluster.nodes.map((n) => n.url)
      // One writer: everything appended on node 0, the two others verify all of it.
      await oneWriter(ctx, cluster, 'replication/one-writer', z.oneWriter, limit)
      // All writers: a third on each node, concurrently; each node verifies two thirds.
      {
        const n = z.allWriters
        const per = Math.floor(n / NODES)
        const base = await headsOf(cluster)
        const want: Record<string, number> = {}
        for (const node of cluster.nodes) want[node.sled] = (base[node.sled] ?? -1) + per
        const w0 = wireBytes(cluster)
        ctx.progress(`all writers: appending ${label(per)} on each node`)
        const t0 = now()
        const done = waitHeads(urls, want, t0)
        const producerMs = await Promise.all(urls.map((u) => appendVia(u, per, BULK_BATCH)))
        const at = await done
        const allMs = Math.max(...at)
        const total = per * NODES
        const s = 'replication/all-writers'
        const rate = (total * 1000) / allMs
        ctx.record(
          s,
          'entries/s (all 3 nodes hold all)',
          rate,
          'entries/s',
          `${label(per)} appended on each node concurrently; each node verifies 2/3`,
        )
        ctx.record(s, 'producer appends/s (sum of acks)', (total * 1000) / Math.max(...producerMs), 'entries/s')
        recordVerifyFraction(ctx, s, rate, limit, '; each node verifies 2/3 of them')
        ctx.record(s, 'wire bytes per entry', (wireBytes(cluster) - w0) / total, 'B', 'all 6 links, both ways')
      }
      const rejected = await rejectedTotal(cluster)
      if (rejected !== 0) throw new Error(`replication: ${rejected} updates rejected during an honest run`)
    })
    // Full run: the same one-writer load over one link per pair (node i dials node j < i), to
    // show what the mesh's second link per pair and relays cost.
    if (!ctx.quick) {
      await withCluster(
        ctx,
        async (cluster) => {
          await warmUp(cluster, ctx.quick)
          await oneWriter(ctx, cluster, 'replication/one-writer-1-link-per-pair', z.oneWriter, limit)
        },
        TRIANGLE,
      )
    }
  },
}

const latencyScenario = {
  name: 'latency',
  async run(ctx: BenchContext): Promise<void> {
    const z = sizes(ctx.quick)
    await withCluster(ctx, async (cluster) => {
      await warmUp(cluster, ctx.quick)
      const a = cluster.node(0)
      const watches = [0, 1, 2].map((i) => new StreamWatch(cluster.node(i).url, a.sled))
      try {
        await Promise.all(watches.map((w) => w.open()))
        const [local, ...remote] = watches as [StreamWatch, StreamWatch, StreamWatch]
        // Idle cluster: one event at a time, paced, each POST awaited.
        const paced = async (n: number, record: boolean): Promise<void> => {
          const sent = new Map<number, number>()
          const ack: number[] = []
          let last = -1
          for (let i = 0; i < n; i++) {
            const t = now()
            const text = await postRaw(a.url, eventsBody(1).slice(1, -1))
            const t1 = now()
            last = seqOfAnswer(text)
            sent.set(last, t)
            ack.push(t1 - t)
            const wait = z.pacedIntervalMs - (now() - t)
            if (wait > 0) await sleep(wait)
          }
          await Promise.all(watches.map((w) => w.until(last)))
          if (!record) return
          const s = `replication/latency-paced`
          const rem: number[] = []
          const loc: number[] = []
          for (const [seq, t] of sent) {
            for (const w of remote) rem.push((w.arrivals.get(seq) as number) - t)
            loc.push((local.arrivals.get(seq) as number) - t)
          }
          const r = latencySummary(Float64Array.from(rem))
          const l = latencySummary(Float64Array.from(loc))
          const k = latencySummary(Float64Array.from(ack))
          const note = `${n} single appends on node 0, one every ${z.pacedIntervalMs} ms`
          ctx.record(s, 'append→visible on peers p50', r.p50, 'ms', `${note}; SSE arrival on nodes 1 and 2`)
          ctx.record(s, 'append→visible on peers p99', r.p99, 'ms', `max ${fmt(r.max)} ms`)
          ctx.record(s, 'append→visible locally p50', l.p50, 'ms', 'SSE of node 0 itself')
          ctx.record(s, 'append→visible locally p99', l.p99, 'ms')
          ctx.record(s, 'append ack p50', k.p50, 'ms', 'POST /v1/events round trip')
          ctx.record(s, 'append ack p99', k.p99, 'ms')
        }
        await paced(ctx.quick ? 50 : 200, false)
        await paced(z.paced, true)
        // Loaded cluster: batches back to back; an entry's latency counts from its batch's POST.
        {
          const n = z.loaded
          const b = z.loadedBatch
          const sent: Array<[number, number, number]> = []
          const t0 = now()
          for (let done = 0; done < n; done += b) {
            const t = now()
            const text = await postRaw(a.url, eventsBody(b))
            sent.push([seqOfAnswer(text), b, t])
          }
          const lastSeq = (sent[sent.length - 1] as [number, number, number])[0] + b - 1
          await Promise.all(watches.map((w) => w.until(lastSeq)))
          const allMs = Math.max(...remote.map((w) => w.arrivals.get(lastSeq) as number)) - t0
          const rem: number[] = []
          for (const [first, k, t] of sent)
            for (let q = first; q < first + k; q++) for (const w of remote) rem.push((w.arrivals.get(q) as number) - t)
          const r = latencySummary(Float64Array.from(rem))
          const s = 'replication/latency-loaded'
          const lagged = remote.reduce((x, w) => x + w.lagged, 0)
          ctx.record(
            s,
            'append→visible on peers p50',
            r.p50,
            'ms',
            `${label(n)} entries in back-to-back POSTs of ${b}; from the batch's POST` +
              (lagged > 0 ? `; ${lagged} lagged notices` : ''),
          )
          ctx.record(s, 'append→visible on peers p99', r.p99, 'ms', `max ${fmt(r.max)} ms`)
          ctx.record(s, 'entries/s (visible on both peers)', (n * 1000) / allMs, 'entries/s', 'with 3 SSE streams open')
        }
      } finally {
        for (const w of watches) w.close()
      }
    })
  },
}

const catchUpScenario = {
  name: 'catch-up',
  async run(ctx: BenchContext): Promise<void> {
    const z = sizes(ctx.quick)
    const limit = verifyLimit(ctx)
    await withCluster(ctx, async (cluster) => {
      await warmUp(cluster, ctx.quick)
      const c = cluster.node(2)
      const sled0 = cluster.node(0).sled
      const s = `replication/catch-up-${label(z.catchUp)}`
      // Baseline: restart with nothing missed (process start, open, handshakes, step 1/2).
      {
        const heads = await headsOf(cluster)
        await cluster.kill(2)
        const t0 = now()
        await cluster.revive(2)
        const healthy = now() - t0
        await waitHeads([c.url], heads, t0)
        await waitReady([c.url], 2)
        ctx.record(
          s,
          'restart, nothing missed',
          now() - t0,
          'ms',
          `to healthy ${Math.round(healthy)} ms, then links synced`,
        )
      }
      await cluster.kill(2)
      ctx.progress(`catch-up: node 2 down; appending ${label(z.catchUp)} on node 0`)
      const base = await headsOf(cluster)
      const target = { [sled0]: (base[sled0] ?? -1) + z.catchUp }
      await appendVia(cluster.node(0).url, z.catchUp, BULK_BATCH)
      await waitHeads([cluster.node(1).url], target, now())
      const w0 = wireBytes(cluster)
      ctx.progress('catch-up: restarting node 2')
      const t0 = now()
      await cluster.revive(2)
      const healthy = now() - t0
      const [doneMs] = (await waitHeads([c.url], target, t0, { intervalMs: 10 })) as [number]
      const dup = (await statusOf(c.url)).duplicates
      const rate = (z.catchUp * 1000) / doneMs
      ctx.record(
        s,
        'restart → holds all',
        doneMs / 1000,
        's',
        `node 2 missed ${label(z.catchUp)} entries; process start included (healthy after ${Math.round(healthy)} ms)`,
      )
      ctx.record(s, 'entries/s', rate, 'entries/s', `missed entries / (restart → holds all)`)
      recordVerifyFraction(ctx, s, rate, limit)
      ctx.record(
        s,
        'duplicates received',
        dup,
        'records',
        'records node 2 received more than once (over a second link or from a second peer)',
      )
      ctx.record(
        s,
        'wire bytes per missed entry',
        (wireBytes(cluster) - w0) / z.catchUp,
        'B',
        'all links, both ways, restart → holds all',
      )
      // Everything checked, not just heads: every node's whole log read back and compared.
      ctx.progress('catch-up: checking invariants (identical logs everywhere)')
      await waitHeads(
        cluster.nodes.map((n) => n.url),
        await headsOf(cluster),
        now(),
      )
      const violations = await cluster.check({ converged: true, acked: [] })
      if (violations.length > 0)
        throw new Error(`catch-up: invariants violated:\n${violations.slice(0, 10).join('\n')}`)
      const rejected = await rejectedTotal(cluster)
      if (rejected !== 0) throw new Error(`catch-up: ${rejected} updates rejected during an honest run`)
    })
  },
}

function ratios(quick: boolean): RatioDef[] {
  const verify = { scenario: 'crypto/node', metric: 'verify' }
  const cu = `replication/catch-up-${label(sizes(quick).catchUp)}`
  return [
    {
      name: 'replication one-writer / node verify',
      numerator: { scenario: 'replication/one-writer', metric: 'entries/s (all 3 nodes hold all)' },
      denominator: verify,
      note: 'fraction of the single-core verify limit; each of 2 receivers verifies every entry',
    },
    {
      name: 'replication all-writers / node verify',
      numerator: { scenario: 'replication/all-writers', metric: 'entries/s (all 3 nodes hold all)' },
      denominator: verify,
    },
    {
      name: `${cu} / node verify`,
      numerator: { scenario: cu, metric: 'entries/s' },
      denominator: verify,
    },
    {
      name: 'replication one-writer / single-node append/batch-1000',
      numerator: { scenario: 'replication/one-writer', metric: 'entries/s (all 3 nodes hold all)' },
      denominator: { scenario: 'append/batch-1000', metric: 'appends/s' },
      note: 'replicated to 3 nodes vs appended on one',
    },
  ]
}

export const replicationGroup: BenchGroup = {
  name: 'replication',
  description:
    '3 node processes (full mesh, HTTP API): replicated entries/s, append→visible latency, catch-up after downtime',
  scenarios: [throughputScenario, latencyScenario, catchUpScenario],
  ratios,
}

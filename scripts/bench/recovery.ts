/**
 * Group "recovery": a node process that lost its database (key kept) proves its head from one
 * peer process that holds all of its own entries (docs/ARCHITECTURE.md "Recovery"). Measured from
 * the restart until appends are open again (recovery `proven` and a write answered 201), with
 * writes sent every 50 ms meanwhile: how many got 503 RECOVERING and how fast those answers came.
 * Sizes: 10k and 100k own entries (quick: 2k).
 */
import type { Cluster } from '../../src/harness/cluster.js'
import { latencySummary, now, type BenchContext, type BenchGroup } from './harness.js'
import { appendVia, label, sleep, startCluster, statusOf, waitHeads, waitReady } from './multi.js'

/** HTTP batch size of the bulk appends before the loss. */
const BULK_BATCH = 1000

/** One write attempt on `url`: its status and how long the answer took. */
async function probeWrite(url: string): Promise<{ status: number; code: string | undefined; ms: number }> {
  const t0 = now()
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    body: '{"type":"probe","payload":null}',
    headers: { 'content-type': 'application/json' },
  })
  const body = (await res.json()) as { error?: { code?: string } }
  return { status: res.status, code: body.error?.code, ms: now() - t0 }
}

async function recoverOnce(ctx: BenchContext, n: number): Promise<void> {
  const cluster: Cluster = await startCluster(ctx, 2)
  try {
    await waitReady(
      cluster.nodes.map((x) => x.url),
      2,
    )
    const a = cluster.node(0)
    ctx.progress(`recovery: appending ${label(n)} on node 0`)
    await appendVia(a.url, n, BULK_BATCH)
    await waitHeads([cluster.node(1).url], { [a.sled]: n - 1 }, now())
    await cluster.kill(0, 'SIGKILL')
    await cluster.wipe(0)
    ctx.progress('recovery: node 0 restarts without its database')
    const t0 = now()
    await cluster.revive(0)
    const healthy = now() - t0
    const refused: number[] = []
    let other = 0
    let openMs: number | null = null
    while (openMs === null) {
      const p = await probeWrite(a.url)
      if (p.status === 201) openMs = now() - t0
      else if (p.status === 503 && p.code === 'RECOVERING') refused.push(p.ms)
      else other++
      if (openMs === null) await sleep(50)
      if (now() - t0 > 600_000) throw new Error('recovery: not done within 10 minutes')
    }
    const st = (await statusOf(a.url)) as unknown as { heads: Record<string, number>; recovery?: { state?: string } }
    if (st.heads[a.sled] !== n) throw new Error(`recovery: the first append after recovery is not seq ${n}`)
    const s = `recovery/${label(n)}`
    ctx.record(
      s,
      'restart → appends open',
      openMs / 1000,
      's',
      `one peer holds all ${label(n)}; process start included (healthy after ${Math.round(healthy)} ms)`,
    )
    ctx.record(s, 'own entries/s', (n * 1000) / openMs, 'entries/s', `${label(n)} / (restart → appends open)`)
    const lat = latencySummary(Float64Array.from(refused))
    ctx.record(s, 'writes refused (503 RECOVERING)', refused.length, 'requests', `one every 50 ms; ${other} other`)
    ctx.record(s, '503 answer p50', lat.p50, 'ms', 'time to the refusal of a write during recovery')
    ctx.record(s, '503 answer p99', lat.p99, 'ms')
  } catch (err) {
    process.stderr.write(cluster.describe(2000) + '\n')
    throw err
  } finally {
    await cluster.stop()
  }
}

const proveScenario = {
  name: 'prove-head',
  async run(ctx: BenchContext): Promise<void> {
    for (const n of ctx.quick ? [2_000] : [10_000, 100_000]) await recoverOnce(ctx, n)
  },
}

export const recoveryGroup: BenchGroup = {
  name: 'recovery',
  description: '2 node processes: a node that lost its database proves its head from its peer; 503s meanwhile',
  scenarios: [proveScenario],
}

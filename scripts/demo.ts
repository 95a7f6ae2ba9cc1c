/**
 * `npm run demo`: starts a local 3-node mesh under ./.sledlog/demo (fresh each run), appends a
 * few events on every node over HTTP, waits until all nodes hold the same log, prints it and
 * each node's status, then stops the nodes.
 */
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Cluster, eventually, type NodeStatus } from '../src/harness/cluster.js'

const BASE = fileURLToPath(new URL('../.sledlog/demo', import.meta.url))

/** What each node appends: a tiny shop, one service per node. */
const EVENTS: ReadonlyArray<ReadonlyArray<{ type: string; payload: unknown }>> = [
  [
    { type: 'user.signed-up', payload: { user: 'ada', plan: 'pro' } },
    { type: 'user.signed-up', payload: { user: 'grace', plan: 'free' } },
  ],
  [
    { type: 'order.placed', payload: { order: 1001, user: 'ada', total: 42.5 } },
    { type: 'order.placed', payload: { order: 1002, user: 'grace', total: 9.99 } },
    { type: 'order.paid', payload: { order: 1001 } },
  ],
  [
    { type: 'parcel.shipped', payload: { order: 1001, carrier: 'dhl' } },
    { type: 'note', payload: 'warehouse B restocked' },
  ],
]

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  const [head, ...body] = rows
  return [line(head ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…'
}

async function main(): Promise<void> {
  const t0 = Date.now()
  await rm(BASE, { recursive: true, force: true })
  const cluster = new Cluster({ size: 3, topology: 'mesh', baseDir: BASE })
  const stop = (): void => {
    void cluster.stop().finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  try {
    console.log(`starting a 3-node mesh in ${BASE} …`)
    await cluster.start()
    for (const n of cluster.nodes) console.log(`  ${n.name}: ${n.url}  sled ${n.sled.slice(0, 16)}…`)

    await Promise.all(cluster.nodes.map((n, i) => n.append(EVENTS[i] ?? [])))
    const counts = EVENTS.map((e) => e.length).join(' + ')
    console.log(`appended ${cluster.acked.length} events (${counts}) over HTTP; waiting for convergence …`)
    await cluster.converge(20_000)
    // Also wait for every link to report synced, so the status below shows the steady state.
    await eventually(
      async () => {
        for (const n of cluster.nodes) {
          const st = await n.status()
          if (!st.peers.filter((p) => p.url !== null).every((p) => p.connected && p.synced === true)) return false
        }
        return true
      },
      10_000,
      { what: 'links synced' },
    )

    const nodeOf = new Map(cluster.nodes.map((n) => [n.sled, n.index]))
    const entries = await cluster.node(0).readAll()
    console.log(`\nthe log, identical on all ${cluster.size} nodes (sorted by sled, seq):\n`)
    const rows = [['sled', 'node', 'seq', 'type', 'payload']]
    for (const e of entries) {
      rows.push([
        e.sled.slice(0, 8) + '…',
        String(nodeOf.get(e.sled) ?? '?'),
        String(e.seq),
        e.kind === 'event' ? e.type : e.kind === 'gap' ? `gap ${e.from}-${e.to}` : e.kind,
        e.kind === 'event' ? clip(JSON.stringify(e.payload), 60) : '',
      ])
    }
    console.log(table(rows))

    console.log('\nnode status:\n')
    const statuses: NodeStatus[] = await Promise.all(cluster.nodes.map((n) => n.status()))
    const srows = [['node', 'entries', 'heads (sled:last seq)', 'peers connected/synced', 'rejected', 'forked sleds']]
    statuses.forEach((st, i) => {
      const heads = Object.entries(st.heads)
        .map(([s, h]) => `${s.slice(0, 6)}:${h}`)
        .join(' ')
      const connected = st.peers.filter((p) => p.connected).length
      const synced = st.peers.filter((p) => p.synced === true).length
      srows.push([
        String(i),
        String(st.entries),
        heads,
        `${connected}/${synced} of ${st.peers.length}`,
        String(st.rejected.total),
        String(st.forks.sleds),
      ])
    })
    console.log(table(srows))
    console.log("\n(peers count each node's outbound links and the inbound links of the others)")
  } finally {
    process.off('SIGINT', stop)
    await cluster.stop()
  }
  console.log(`\nstopped all nodes; done in ${((Date.now() - t0) / 1000).toFixed(1)} s (data left in ${BASE})`)
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
})

/**
 * Multi-process cluster tests: real `sledlog node` processes replicating through fault proxies.
 * Every phase ends with an invariant check on every running node (no duplicate or missing seq,
 * acknowledged appends kept, no seq reused, same signature everywhere), and convergence is
 * awaited by polling the nodes' HTTP APIs.
 */
import { describe, expect, it } from 'vitest'
import type { Cluster, ClusterNode, Topology } from '../../src/harness/cluster.js'
import { HttpError } from '../../src/harness/cluster.js'
import type { RecoveryStatus } from '../../src/sync/recovery.js'
import { checkInvariants, divergence, type LogEntry, type NodeLog } from '../../src/harness/invariants.js'
import { assertNoViolations, eventually, statusWhen, testCluster } from '../helpers/cluster.js'
import { prng, testSeed } from '../helpers/seed.js'

/** Generous: on 2 busy cores a reconnect after backoff plus a resync can take a few seconds. */
const CONVERGE_MS = 20_000

const TYPES = ['order.created', 'order.paid', 'parcel.shipped', 'note'] as const

/**
 * A random stream per (seed, node, phase), so the draws do not depend on how concurrent
 * appends interleave.
 */
function streamFor(seed: number, node: number, phase: string): () => number {
  let h = (seed ^ Math.imul(node + 1, 0x9e3779b1)) >>> 0
  for (let i = 0; i < phase.length; i++) h = Math.imul(h ^ phase.charCodeAt(i), 0x01000193) >>> 0
  return prng(h)
}

/** Waits until `node`'s recovery ended; returns its recovery status. */
async function recovered(node: ClusterNode): Promise<RecoveryStatus> {
  const st = await statusWhen(
    node,
    (st) => {
      const s = st.recovery
      // Proven, then moved to a successor: the new run's status keeps how the recovery ended.
      const ended = s.state === 'not-needed' ? s.last : s
      return (ended !== null && ended.state !== 'waiting' && ended.successor !== null) || [`recovery ${s.state}`]
    },
    `${node.name} to recover`,
    CONVERGE_MS,
  )
  const s = st.recovery
  return (s.state === 'not-needed' ? s.last : s) as RecoveryStatus
}

/** Appends `rounds` batches of 1-4 random events to `node`; returns how many were acknowledged. */
async function workload(node: ClusterNode, rand: () => number, rounds: number, phase: string): Promise<number> {
  let n = 0
  for (let r = 0; r < rounds; r++) {
    const size = 1 + Math.floor(rand() * 4)
    const events = Array.from({ length: size }, (_, k) => ({
      type: TYPES[Math.floor(rand() * TYPES.length)] as string,
      payload: { phase, round: r, k, from: node.index, v: Math.floor(rand() * 1e6) },
    }))
    n += (await node.append(events)).length
  }
  return n
}

/** Concurrent workload on the given nodes. */
async function appendEverywhere(
  c: Cluster,
  nodes: readonly number[],
  seed: number,
  rounds: number,
  phase: string,
): Promise<void> {
  await Promise.all(nodes.map((i) => workload(c.node(i), streamFor(seed, i, phase), rounds, phase)))
}

/** Checks the invariants that hold at any moment on every running node; throws on violation. */
async function checkNow(c: Cluster, phase: string, nodes?: readonly number[]): Promise<void> {
  assertNoViolations(phase, await c.check(nodes === undefined ? {} : { nodes }))
}

/** Every configured (dialed) link of the given nodes is connected and synced. */
async function linksSynced(c: Cluster, nodes: readonly number[]): Promise<string[]> {
  const out: string[] = []
  for (const i of nodes) {
    const st = await c.node(i).status()
    for (const p of st.peers)
      if (p.url !== null && !(p.connected && p.synced === true)) out.push(`node ${i}: link to ${p.url} not synced`)
  }
  return out
}

describe('cluster of node processes', () => {
  const topologies: Array<[string, Topology, number]> = [
    ['mesh', 'mesh', 4],
    ['star (hub 0)', 'star', 5],
    ['chain A-B-C-D (relayed)', 'chain', 4],
  ]
  it.each(topologies)(
    '%s converges to identical logs after concurrent appends on every node',
    async (name, topology, size) => {
      const seed = testSeed(`cluster ${name}`)
      const c = await testCluster({ size, topology })
      const all = c.nodes.map((n) => n.index)

      await appendEverywhere(c, all, seed, 4, 'first')
      await checkNow(c, 'first appends')
      await c.converge(CONVERGE_MS)

      // A second wave while links are live: relayed updates, not only the initial sync.
      await eventually(() => linksSynced(c, all), CONVERGE_MS, { what: 'links synced' })
      await appendEverywhere(c, all, seed, 3, 'second')
      await checkNow(c, 'second appends')
      await c.converge(CONVERGE_MS)

      const logs = await c.logs()
      const expected = c.acked.length
      for (const l of logs) expect(l.entries).toHaveLength(expected)
      if (topology === 'chain') {
        // The ends are not linked: A holds D's entries only because B and C relayed them.
        expect(() => c.link(size - 1, 0)).toThrow()
        expect(logs[0]?.entries.filter((e) => e.sled === c.node(size - 1).sled).length).toBeGreaterThan(0)
      }
    },
  )

  it('a node stopped by SIGTERM, then SIGKILL, mid-run catches up and keeps its acknowledged appends', async () => {
    const seed = testSeed('cluster restart')
    const c = await testCluster({ size: 3, topology: 'mesh' })
    await appendEverywhere(c, [0, 1, 2], seed, 3, 'warmup')
    await c.converge(CONVERGE_MS)

    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      // Writers on the survivors keep going while node 2 goes down and comes back.
      let running = true
      // Settled promises: a failure must fail this test, not leak as an unhandled rejection.
      const writers = Promise.allSettled(
        [0, 1].map(async (i) => {
          const rand = streamFor(seed, i, `during-${signal}`)
          let rounds = 0
          while (running) {
            await workload(c.node(i), rand, 1, `during-${signal}`)
            rounds++
          }
          return rounds
        }),
      )
      // Node 2 itself is appending when it dies: in-flight appends may fail and are not
      // acknowledged; everything it acknowledged must survive the kill.
      const victim = (async () => {
        const rand = streamFor(seed, 2, `victim-${signal}`)
        for (;;) {
          try {
            await workload(c.node(2), rand, 1, `victim-${signal}`)
          } catch {
            return
          }
        }
      })()
      try {
        await new Promise((r) => setTimeout(r, 300))
        const exit = await c.kill(2, signal)
        expect(exit).toEqual(signal === 'SIGTERM' ? { code: 0, signal: null } : { code: null, signal: 'SIGKILL' })
        await victim
        await checkNow(c, `node 2 ${signal}`) // survivors only
        await new Promise((r) => setTimeout(r, 300))
        await c.revive(2)
        await checkNow(c, `node 2 back after ${signal}`)
      } finally {
        running = false
      }
      const rounds = (await writers).map((r) => {
        if (r.status === 'rejected') throw r.reason
        return r.value
      })
      expect(Math.min(...rounds)).toBeGreaterThan(0)
      await c.converge(CONVERGE_MS)
    }
    // After both restarts node 2 still writes right after its head (which may include an
    // append that was committed but not acknowledged when it died), on every node.
    const sled = c.node(2).sled
    const heads = await Promise.all(c.nodes.map(async (n) => (await n.status()).heads[sled]))
    expect(new Set(heads).size).toBe(1)
    const [e] = await c.node(2).append({ type: 'after-restarts', payload: null })
    expect(e?.seq).toBe((heads[0] ?? -1) + 1)
    expect(Math.max(...c.acked.filter((a) => a.sled === sled && a !== c.acked.at(-1)).map((a) => a.seq))).toBeLessThan(
      e?.seq ?? 0,
    )
    await c.converge(CONVERGE_MS)
  })

  it.each(['cut', 'blackhole'] as const)(
    'a partition (%s) takes appends on both sides, then heals and converges',
    async (mode) => {
      const seed = testSeed(`cluster partition ${mode}`)
      const c = await testCluster({ size: 4, topology: 'mesh' })
      const left = [0, 1]
      const right = [2, 3]
      await appendEverywhere(c, [0, 1, 2, 3], seed, 2, 'before')
      await c.converge(CONVERGE_MS)
      const before = c.acked.length

      c.partition(left, right, mode)
      await appendEverywhere(c, [0, 1, 2, 3], seed, 3, 'split')
      const ackedBefore = c.acked.slice(0, before)
      for (const side of [left, right]) {
        // Each side converges on its own: everything from before plus its own side's appends.
        const acked = [...ackedBefore, ...c.acked.slice(before).filter((a) => side.some((i) => a.node === `node ${i}`))]
        await c.converge(CONVERGE_MS, { nodes: side, acked })
      }
      // …and the partition really held: no entry written on one side during it reached the other.
      const [l0, r0] = await c.logs([0, 2])
      const leftSleds = new Set(left.map((i) => c.node(i).sled))
      const leftNew = c.acked.slice(before).filter((a) => leftSleds.has(a.sled))
      const rightNew = c.acked.slice(before).filter((a) => !leftSleds.has(a.sled))
      expect(leftNew.length).toBeGreaterThan(0)
      expect(rightNew.length).toBeGreaterThan(0)
      const has = (entries: readonly { sled: string; seq: number }[], a: { sled: string; seq: number }): boolean =>
        entries.some((e) => e.sled === a.sled && e.seq === a.seq)
      expect(leftNew.filter((a) => has(r0?.entries ?? [], a))).toEqual([])
      expect(rightNew.filter((a) => has(l0?.entries ?? [], a))).toEqual([])
      await checkNow(c, 'partition')

      c.heal()
      await checkNow(c, 'heal')
      await c.converge(CONVERGE_MS)
      await appendEverywhere(c, [0, 1, 2, 3], seed, 1, 'after')
      await c.converge(CONVERGE_MS)
    },
  )

  it('a wiped node (disk lost, key kept) recovers its head from peers and never reuses a seq', async () => {
    const seed = testSeed('cluster wipe')
    const c = await testCluster({ size: 3, topology: 'mesh' })
    await appendEverywhere(c, [0, 1, 2], seed, 4, 'before')
    await c.converge(CONVERGE_MS)
    const victim = c.node(2)
    const oldHead = Math.max(...c.acked.filter((a) => a.sled === victim.sled).map((a) => a.seq))

    await c.kill(2, 'SIGKILL')
    await c.wipe(2)
    await checkNow(c, 'disk loss')
    // The peers are up: it proves its head from their receipts; writes meanwhile are refused.
    const old = victim.sled
    await c.restart(2)
    const r = await recovered(victim)
    // It proved its head, then moved to a successor key vouching for it: the old key signs no more.
    expect(r.successor).toEqual({ sled: victim.sled, lastSeq: oldHead })
    const appended = await victim.append([
      { type: 'after-wipe', payload: 1 },
      { type: 'after-wipe', payload: 2 },
    ])
    expect(appended.map((e) => [e.sled, e.seq])).toEqual([
      [victim.sled, 1],
      [victim.sled, 2],
    ])
    await checkNow(c, 'first append after disk loss')
    await appendEverywhere(c, [0, 1, 2], seed, 2, 'after')
    await checkNow(c, 'appends after disk loss')
    await c.converge(CONVERGE_MS)
    for (const n of c.nodes) {
      const st = await n.status()
      expect(st.heads[old]).toBe(oldHead)
      expect(st.heads[victim.sled]).toBe(c.acked.filter((a) => a.sled === victim.sled).length)
      expect(st.forks.sleds).toBe(0)
    }
  })

  it('a wiped star hub (dials no one) waits for every allow-listed leaf and never reuses a seq', async () => {
    const seed = testSeed('cluster hub wipe')
    const c = await testCluster({ size: 3, topology: 'star', allowList: true })
    await appendEverywhere(c, [0, 1, 2], seed, 2, 'before')
    await c.converge(CONVERGE_MS)
    const hub = c.node(0)
    const oldHead = Math.max(...c.acked.filter((a) => a.sled === hub.sled).map((a) => a.seq))
    await c.kill(0, 'SIGKILL')
    await c.wipe(0)
    // The hub cannot know which leaves will dial it but its allow-list names them: it waits
    // for both (the default quorum when a node dials no one).
    await c.restart(0)
    const st = await recovered(hub)
    expect(st).toMatchObject({ state: 'proven', quorum: { rule: 'every allow-listed peer', needed: 2, answered: 2 } })
    // The leaves' allow-lists name the old sled: they admit its endorsed successor by its chain.
    const [first] = await hub.append([{ type: 'after-wipe', payload: 1 }])
    expect(first).toMatchObject({ sled: hub.sled, seq: 1 })
    expect(st.successor).toEqual({ sled: hub.sled, lastSeq: oldHead })
    await checkNow(c, 'hub append after disk loss')
    await c.converge(CONVERGE_MS)
    for (const i of [0, 1, 2]) expect((await c.node(i).status()).forks.sleds).toBe(0)
  })

  it('token auth, allow-lists: cluster replicates; a node with a wrong token stays isolated until fixed', async () => {
    const seed = testSeed('cluster token')
    const c = await testCluster({
      size: 3,
      topology: 'mesh',
      token: 'cluster-secret',
      allowList: true,
      nodeSettings: (i) => (i === 2 ? { token: 'wrong-secret' } : {}),
    })
    await appendEverywhere(c, [0, 1, 2], seed, 2, 'auth')
    await c.converge(CONVERGE_MS, { nodes: [0, 1], acked: c.acked.filter((a) => a.node !== 'node 2') })
    // Node 2 and its peers dialed each other (the proxies accepted connections) and every such
    // link was closed again: the handshake failed. (Once closed, a session's rejection counts
    // and close reason are gone from /v1/status, so the proxies are the witnesses.)
    await eventually(
      async () => {
        const out: string[] = []
        for (const [a, b] of [
          [0, 2],
          [1, 2],
          [2, 0],
          [2, 1],
        ] as const) {
          const s = c.link(a, b).stats
          if (s.accepted === 0 || s.active > 0) out.push(`link ${a}>${b}: accepted ${s.accepted}, active ${s.active}`)
        }
        const st = await c.node(2).status()
        if (st.peers.some((p) => p.connected)) out.push('node 2 has a connected peer')
        return out
      },
      CONVERGE_MS,
      { what: 'node 2 refused' },
    )
    const [l0, l2] = await c.logs([0, 2])
    expect(l2?.entries.every((e) => e.sled === c.node(2).sled)).toBe(true)
    expect(l0?.entries.some((e) => e.sled === c.node(2).sled)).toBe(false)
    await checkNow(c, 'wrong token')

    await c.restart(2, { token: 'cluster-secret' })
    await c.converge(CONVERGE_MS)
    // Appends through HTTP still need no token: the token guards replication only.
    await expect(c.node(0).append({ type: 'x', payload: null })).resolves.toHaveLength(1)
    await c.converge(CONVERGE_MS)
  })

  it('slow, jittery and throttled links still converge; a SIGSTOPped node catches up after SIGCONT', async () => {
    const seed = testSeed('cluster slow links')
    const c = await testCluster({ size: 3, topology: 'mesh', random: prng(seed) })
    for (const p of c.proxies.values()) p.latency(30, 20)
    c.link(0, 1).bandwidth(32 * 1024)
    c.link(1, 0).bandwidth(32 * 1024, 'backward')
    await appendEverywhere(c, [0, 1, 2], seed, 4, 'slow')
    await checkNow(c, 'appends over slow links')
    await c.converge(CONVERGE_MS)

    await c.kill(2, 'SIGSTOP')
    await appendEverywhere(c, [0, 1], seed, 3, 'frozen')
    await checkNow(c, 'appends while node 2 is frozen') // nodes 0 and 1; node 2 cannot answer
    await c.converge(CONVERGE_MS, { nodes: [0, 1], acked: c.acked.filter((a) => a.node !== 'node 2') })
    await c.kill(2, 'SIGCONT')
    c.heal()
    await c.converge(CONVERGE_MS)
  })

  it('rejects bad appends with an API error that is not recorded as acknowledged', async () => {
    const c = await testCluster({ size: 1, topology: [] })
    const err = await c
      .node(0)
      .append([{ type: 'x' } as unknown as { type: string; payload: unknown }])
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(HttpError)
    expect((err as HttpError).status).toBe(400)
    expect(c.acked).toHaveLength(0)
  })
})

describe('invariant checks (pure)', () => {
  const A = 'a'.repeat(64)
  const B = 'b'.repeat(64)
  const e = (sled: string, seq: number, sig = `${sled[0]}${seq}`): { sled: string; seq: number; sig: string } => ({
    sled,
    seq,
    sig,
  })
  const log = (node: string, ...entries: LogEntry[]): NodeLog => ({ node, entries })

  it('accepts identical, contiguous logs holding every acknowledged append', () => {
    const logs = [log('n0', e(A, 0), e(A, 1), e(B, 0)), log('n1', e(A, 0), e(A, 1), e(B, 0))]
    expect(checkInvariants({ logs, acked: [{ ...e(A, 1), node: 'n0' }], converged: true })).toEqual([])
    expect(divergence(logs)).toBe(0)
  })

  it('reports duplicates, holes and disorder', () => {
    const v = checkInvariants({
      logs: [log('n0', e(A, 0), e(A, 0), e(A, 2), e(B, 1), e(B, 2))],
    })
    expect(v.join('\n')).toMatch(/duplicate entry aaaaaaaaaaaa:0/)
    expect(v.join('\n')).toMatch(/seq 2 where 1 was expected/)
    expect(v.join('\n')).toMatch(/sled bbbbbbbbbbbb seq 1 where 0 was expected/)
    expect(checkInvariants({ logs: [log('n0', e(B, 0), e(A, 0))] }).join('\n')).toMatch(/out of order/)
  })

  it('reports lost and replaced acknowledged appends, different sigs across nodes and divergence', () => {
    const logs = [log('n0', e(A, 0), e(A, 1, 'x')), log('n1', e(A, 0))]
    const acked = [{ ...e(A, 1), node: 'n0' }]
    const v = checkInvariants({ logs, acked })
    expect(v.join('\n')).toMatch(/n0: holds a different entry at acknowledged aaaaaaaaaaaa:1/)
    expect(v.join('\n')).not.toMatch(/n1: lacks/) // not required on n1 until converged
    const conv = checkInvariants({ logs, acked, converged: true })
    expect(conv.join('\n')).toMatch(/n1: lacks acknowledged aaaaaaaaaaaa:1/)
    expect(conv.join('\n')).toMatch(/n1 diverges from n0: 1 vs 2 entries/)
    expect(divergence(logs)).toBe(1)
    expect(checkInvariants({ logs: [log('n0', e(A, 0, 's1')), log('n1', e(A, 0, 's2'))] }).join('\n')).toMatch(
      /aaaaaaaaaaaa:0 differs/,
    )
    expect(
      checkInvariants({
        logs: [],
        acked: [
          { ...e(A, 0, 's1'), node: 'n0' },
          { ...e(A, 0, 's2'), node: 'n0' },
        ],
      }).join('\n'),
    ).toMatch(/acknowledged twice/)
  })

  it('reports status flags: a forked honest sled, failed writes, and missing ranges once converged', () => {
    const forks = { sleds: 1, first: [{ sled: A }] }
    const statuses = [{ node: 'n0', forks, writeFailed: 'disk full', missing: { [A]: [[3, 4]] }, ownHeadBehind: null }]
    expect(checkInvariants({ logs: [], statuses })).toHaveLength(2)
    expect(checkInvariants({ logs: [], statuses, converged: true })).toHaveLength(3)
  })
})

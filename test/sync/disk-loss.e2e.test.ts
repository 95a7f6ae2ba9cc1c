/**
 * Disk loss against real `sledlog node` processes (issue 16): a node whose database is lost but
 * whose key is kept must never sign a seq twice. It refuses writes (503 RECOVERING) until a quorum
 * of its configured peers signed how many of its entries they hold and it holds that many again;
 * no timeout ends that. Then (default `--recovery-mode succession`) it moves to a successor key
 * vouching for the seqs it got back: an entry no peer held (acks=0) is lost with the disk, and its
 * seq is never signed again. Each scenario ends with the logs read on every node and, where no
 * fork is expected, `sledlog verify` on every stopped node.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { type Cluster, type ClusterNode, HttpError, type NodeStatus } from '../../src/harness/cluster.js'
import { checkInvariants } from '../../src/harness/invariants.js'
import type { RecoveryStatus } from '../../src/sync/recovery.js'
import { receiptLink, signReceipt } from '../../src/sync/holds.js'
import { encodeHolds } from '../../src/sync/messages.js'
import { runCli } from '../cli/cli-process.js'
import { eventually, movedOn, testCluster } from '../helpers/cluster.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { testKeys } from '../helpers/keys.js'

const CONVERGE_MS = 30_000

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

/** Appends `n` events to `node` in batches of 10. */
async function fill(node: ClusterNode, n: number, phase: string): Promise<void> {
  for (let i = 0; i < n; i += 10)
    await node.append(Array.from({ length: Math.min(10, n - i) }, (_, k) => ({ type: phase, payload: i + k })))
}

/** A 2-node cluster whose node 0 wrote `n` entries, node 1 holds them; both killed, node 0 wiped. */
async function lostWithPeerDown(n: number): Promise<Cluster> {
  const c = await testCluster({ size: 2, topology: 'mesh' })
  await fill(c.node(0), n, 'before')
  await holds(c, 1, c.node(0).sled, n)
  await c.kill(1, 'SIGKILL')
  await c.kill(0, 'SIGKILL')
  await c.wipe(0)
  return c
}

/** Waits until node `i` holds `n` entries of `sled`. */
async function holds(c: Cluster, i: number, sled: string, n: number): Promise<void> {
  await eventually(async () => ((await c.node(i).status()).heads[sled] ?? -1) === n - 1, CONVERGE_MS, {
    what: `${c.node(i).name} to hold ${n} of ${sled.slice(0, 8)}`,
  })
}

/** The node's recovery, once `pred` holds for it. */
async function recoveryWhen(node: ClusterNode, pred: (r: RecoveryStatus) => boolean): Promise<RecoveryStatus> {
  let out: RecoveryStatus | null = null
  await eventually(
    async () => {
      const r = (await node.status()).recovery
      if (r.state === 'not-needed' || !pred(r)) return [`recovery ${JSON.stringify(r).slice(0, 300)}`]
      out = r
      return true
    },
    CONVERGE_MS,
    { what: `${node.name}'s recovery` },
  )
  return out as unknown as RecoveryStatus
}

/**
 * Waits until `node` moved to a successor key after its recovery; returns its status then. The
 * harness follows the node's `succession` line, so `node.sled` is the successor's too.
 */
async function succeeded(node: ClusterNode, from: string): Promise<NodeStatus> {
  const st = await movedOn(node, from, CONVERGE_MS)
  expect(node.sled).toBe(st.sled)
  expect(node.sleds).toEqual([from, st.sled])
  return st
}

/** The chain of `sled` as `node` reads it (GET /v1/sleds/:sled/chain). */
async function chainOf(node: ClusterNode, sled: string): Promise<unknown> {
  return (await fetch(`${node.url}/v1/sleds/${sled}/chain`)).json()
}

/** The HTTP status and code a write to `node` gets now (201 when it is taken). */
async function write(node: ClusterNode, path: '/v1/events' | '/v1/ingest'): Promise<string> {
  if (path === '/v1/events') {
    try {
      await node.append([{ type: 'probe', payload: null }])
      return '201'
    } catch (err) {
      if (err instanceof HttpError) return `${err.status} ${err.code}`
      throw err
    }
  }
  const res = await fetch(node.url + path, {
    method: 'POST',
    body: '[{"type":"probe","payload":null}]',
    headers: { 'content-type': 'application/json' },
  })
  const body = (await res.json()) as { error?: { code?: string } }
  return `${res.status}${body.error?.code === undefined ? '' : ` ${body.error.code}`}`
}

/** Every write for `ms`, polled: each must be refused with 503 RECOVERING. Returns how many were. */
async function refusedFor(node: ClusterNode, ms: number): Promise<number> {
  const until = Date.now() + ms
  let n = 0
  while (Date.now() < until) {
    for (const path of ['/v1/events', '/v1/ingest'] as const) {
      expect(await write(node, path)).toBe('503 RECOVERING')
      n++
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  return n
}

/** Stops every node and runs `sledlog verify` on its data directory; returns the exit codes. */
async function verifyAll(c: Cluster): Promise<Array<number | null>> {
  for (const n of c.nodes) if (n.running) await c.kill(n.index, 'SIGTERM')
  return Promise.all(
    c.nodes.map(async (n) => (await runCli(['verify', '--data', n.dataDir], { timeoutMs: 60_000 })).code),
  )
}

/** No violation of the invariants over what every running node reads; `converged` too. */
async function checkLogs(c: Cluster, converged: boolean): Promise<void> {
  expect(await c.check({ converged })).toEqual([])
}

describe('disk loss (real node processes)', () => {
  it('lost while its only peer is down: refused for as long, then its history back under a successor key', async () => {
    const c = await lostWithPeerDown(50)
    const a = c.node(0)
    // Warnings after 1 s, 2 s more, 4 s more: the old timeout released it after about one.
    await c.restart(0, { recoveryTimeoutMs: 1000 })
    const t0 = Date.now()
    const refused = await refusedFor(a, 5000)
    const waiting = await recoveryWhen(a, (r) => r.warnings >= 2)
    expect(waiting).toMatchObject({ state: 'waiting', holding: 0, missing: [c.link(0, 1).wsUrl] })
    expect(waiting.waitingFor).toContain(c.link(0, 1).wsUrl)
    expect(a.stderr).toContain('recovery: still refusing writes')
    const metrics = await (await fetch(`${a.url}/metrics`)).text()
    expect(metrics).toMatch(/^sledlog_recovery_waiting 1$/m)
    expect(metrics).toMatch(/^sledlog_recovery_quorum_needed 1$/m)
    expect(metrics).toMatch(/^sledlog_recovery_peers_answered 0$/m)
    expect(Number(/^sledlog_recovery_timeout_warnings_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2)
    const text = (await runCli(['status', '--url', a.url])).stdout
    expect(text).toMatch(/appends +refused: recovering its own head \(RECOVERING\)/)
    expect(text).toContain(`${c.link(0, 1).wsUrl}  no answer`)
    console.log(`[disk loss, peer down] ${refused} writes refused with 503 RECOVERING over ${Date.now() - t0} ms`)

    const old = a.sled
    await c.revive(1)
    // Proven by the peer, then the old key signs nothing but its successor's endorsement.
    const st = await succeeded(a, old)
    expect(st.recovery).toMatchObject({
      state: 'not-needed',
      last: {
        state: 'proven',
        mode: 'succession',
        holding: 50,
        need: 50,
        quorum: { needed: 1, answered: 1 },
        successor: { sled: st.sled, lastSeq: 49 },
      },
    })
    expect(st.heads[old]).toBe(49)
    expect(a.stderr).toContain('recovery: moved to successor key')
    const [next] = await a.append([{ type: 'after', payload: 0 }])
    // Entry 0 of the successor is its succession record.
    expect(next).toMatchObject({ sled: st.sled, seq: 1 })
    await holds(c, 1, st.sled, 2)
    // Every node reads the chain: the old sled retired after 49 by its own endorsement.
    expect(await chainOf(c.node(1), old)).toMatchObject({
      sled: old,
      retiredFrom: 50,
      successors: [{ sled: st.sled, predecessor: old, lastSeq: 49, reason: 'recovery', endorsed: true }],
      contested: false,
    })
    await c.converge(CONVERGE_MS)
    await checkLogs(c, true)
    for (const i of [0, 1]) {
      const s = await c.node(i).status()
      expect(s.forks.sleds).toBe(0)
      expect(s.heads[old]).toBe(49)
    }
    expect(await verifyAll(c)).toEqual([0, 0])
  })

  it('holding acked entries no peer had: acks=1 survive, acks=0 go with the disk, none re-signed', async () => {
    const c = await testCluster({ size: 2, topology: 'mesh' })
    const a = c.node(0)
    const old = a.sled
    // acks count configured peers with a ready link (status `acks`), else NOT_ENOUGH_PEERS.
    await eventually(async () => (await a.status()).acks.connectedPeers === 1, CONVERGE_MS, {
      what: 'node 0 linked to the peer it dials',
    })
    for (let i = 0; i < 30; i += 10)
      await a.append(
        Array.from({ length: 10 }, (_, k) => ({ type: 'replicated', payload: i + k })),
        { acks: 1 },
      )
    c.partition([0], [1])
    await eventually(async () => (await a.status()).peers.every((p) => !p.connected), CONVERGE_MS, {
      what: 'node 0 cut off',
    })
    // Acknowledged by node 0's disk only (acks=0, the default), then an acks=1 write it cannot keep.
    await fill(a, 20, 'local-only')
    const refused = await a.append([{ type: 'needs-a-peer', payload: 0 }], { acks: 1, ackTimeoutMs: 500 }).then(
      () => 'acknowledged',
      (err: unknown) => (err instanceof HttpError ? `${err.status} ${err.code}` : String(err)),
    )
    expect(['503 NOT_ENOUGH_PEERS', '504 ACKS_TIMEOUT']).toContain(refused)
    const localOnly = c.acked.filter((x) => x.sled === old && x.seq >= 30)
    expect(localOnly.length).toBe(20)
    await c.kill(0, 'SIGKILL')
    await c.wipe(0)
    c.heal()
    await c.revive(0)
    const st = await succeeded(a, old)
    expect(st.recovery).toMatchObject({ last: { holding: 30, successor: { sled: st.sled, lastSeq: 29 } } })
    await eventually(async () => (await a.status()).acks.connectedPeers === 1, CONVERGE_MS, { what: 'linked again' })
    const [next] = await a.append([{ type: 'after', payload: 0 }], { acks: 1 })
    expect(next).toMatchObject({ sled: st.sled, seq: 1 })
    // Every acks=1 entry is on both nodes; the acks=0 ones are gone, and their seqs never
    // reappear with other content: the old sled ends at 29 everywhere.
    const kept = c.acked.filter((x) => !(x.sled === old && x.seq >= 30))
    await c.converge(CONVERGE_MS, { acked: kept })
    for (const log of await c.logs()) {
      const bySlot = new Map(log.entries.map((e) => [`${e.sled}:${e.seq}`, e.sig]))
      for (const x of kept) expect(bySlot.get(`${x.sled}:${x.seq}`), `${log.node} ${x.seq}`).toBe(x.sig)
      for (const x of localOnly) expect(bySlot.has(`${x.sled}:${x.seq}`)).toBe(false)
    }
    for (const n of c.nodes) expect((await n.status()).heads[old]).toBe(29)
    console.log(`[disk loss holding acks] ${kept.length} acks=1 kept, ${localOnly.length} acks=0 lost, 0 re-signed`)
    expect(await verifyAll(c)).toEqual([0, 0])
  })
})

describe('disk loss with entries one peer holds and another does not (3 nodes)', () => {
  /** Node 0 wrote 40: node 1 holds all, node 2 the first 20. Node 0 is wiped; node 1 is down. */
  async function setup(): Promise<Cluster> {
    const c = await testCluster({ size: 3, topology: 'mesh' })
    const a = c.node(0)
    await fill(a, 20, 'first')
    await holds(c, 2, a.sled, 20)
    await c.kill(2, 'SIGKILL')
    await fill(a, 20, 'second')
    await holds(c, 1, a.sled, 40)
    await c.kill(1, 'SIGKILL')
    await c.kill(0, 'SIGKILL')
    await c.wipe(0)
    await c.revive(2)
    return c
  }

  it('quorum of all (default): waits for the peer that holds more, across a restart, then a successor', async () => {
    const c = await setup()
    const a = c.node(0)
    await c.restart(0)
    await recoveryWhen(a, (r) => r.holding === 20 && r.quorum.answered === 1)
    await refusedFor(a, 1500)
    // A restart in the middle: the store now exists (20 entries), the recovery goes on.
    await c.kill(0, 'SIGKILL')
    await c.revive(0)
    const again = await recoveryWhen(a, (r) => r.quorum.answered === 1)
    expect(again).toMatchObject({ state: 'waiting', holding: 20, missing: [c.link(0, 1).wsUrl] })
    expect(await write(a, '/v1/events')).toBe('503 RECOVERING')
    const old = a.sled
    await c.revive(1)
    const st = await succeeded(a, old)
    expect(st.recovery).toMatchObject({ last: { holding: 40, successor: { lastSeq: 39 } } })
    const [next] = await a.append([{ type: 'after', payload: 0 }])
    expect(next).toMatchObject({ sled: st.sled, seq: 1 })
    await c.converge(CONVERGE_MS)
    await checkLogs(c, true)
    expect(await verifyAll(c)).toEqual([0, 0, 0])
  })

  it('--recovery-quorum 1: proven by the peer that holds less; what only the other holds reads retired', async () => {
    const c = await setup()
    const a = c.node(0)
    const old = a.sled
    await c.restart(0, { recoveryQuorum: 1 })
    const st = await succeeded(a, old)
    expect(st.recovery).toMatchObject({ last: { holding: 20, successor: { lastSeq: 19 } } })
    await a.append([{ type: 'after', payload: 0 }])
    await c.revive(1)
    // Node 1's seqs 20..39 of the old sled are past what the succession vouches for: every node
    // reads them, flagged retired alike; no seq was signed twice, so nothing forks.
    await c.converge(CONVERGE_MS)
    for (const log of await c.logs()) {
      const olds = log.entries.filter((e) => e.sled === old)
      expect(olds.length).toBe(40)
      expect(olds.filter((e) => e.retired === true).map((e) => e.seq)).toEqual(range(20, 40))
    }
    for (const n of c.nodes) expect((await n.status()).forks.sleds).toBe(0)
    expect(await verifyAll(c)).toEqual([0, 0, 0])
  })

  it('--recovery-mode resume, quorum 1: proven by the peer that holds less, its next seq forks the sled', async () => {
    const c = await setup()
    const a = c.node(0)
    await c.restart(0, { recoveryQuorum: 1, extraArgs: ['--recovery-mode', 'resume'] })
    const st = await recoveryWhen(a, (r) => r.state === 'proven')
    expect(st).toMatchObject({ holding: 20, quorum: { rule: 'any 1 configured peer', answered: 1 } })
    // The trade-off, precisely: seq 20 is signed again, and node 1 holds the other seq 20.
    const [resigned] = await a.append([{ type: 'after', payload: 0 }])
    expect(resigned?.seq).toBe(20)
    await c.revive(1)
    await eventually(
      async () => {
        const forks = await Promise.all(c.nodes.map(async (n) => (await n.status()).forks))
        return forks.every((f) => f.sleds === 1 && f.first[0]?.sled === a.sled && f.first[0]?.seq === 20)
      },
      CONVERGE_MS,
      { what: 'every node to flag the fork at seq 20' },
    )
    // Flagged everywhere, read alike everywhere (below the fork): never a silent divergence.
    const logs = await c.logs()
    expect(checkInvariants({ logs, converged: true, equivocators: new Set([a.sled]) })).toEqual([])
  })
})

describe('disk loss: a lying peer, and the operator', () => {
  it('a receipt longer than what exists keeps it waiting; `sledlog recover` decides, recorded', async () => {
    const c = await lostWithPeerDown(30)
    const a = c.node(0)
    await c.restart(0)
    // An authenticated stranger (no allow-list) signs that it holds 1,000 of a's entries.
    const mallory = testKeys(860)
    const client = await HostileClient.authenticated(a.url.replace('http:', 'ws:'), { keys: mallory })
    onTestFinished(() => client.terminate())
    const t = client.transcript
    if (t === null) throw new Error('no transcript')
    const subject = Buffer.from(a.sled, 'hex')
    await client.send(encodeHolds(1000, signReceipt(mallory, subject, receiptLink(t), 1000)))
    await recoveryWhen(a, (r) => r.need === 1000)
    await c.revive(1)
    // Node 1 answers and returns all 30: the quorum is met, the claim is not.
    const st = await recoveryWhen(a, (r) => r.holding === 30 && r.quorum.answered === 1)
    expect(st).toMatchObject({ state: 'waiting', need: 1000, others: { [mallory.sled]: 1000 } })
    expect(st.waitingFor).toContain('its own entries 30..999')
    expect(await write(a, '/v1/events')).toBe('503 RECOVERING')

    // Without the flag nothing happens; with it, the node resumes at 30, warned and recorded.
    const noFlag = await runCli(['recover', '--url', a.url])
    expect(noFlag.code).toBe(2)
    const stale = await runCli(['recover', '--accept-head-risking-fork', '--url', a.url, '--head', '29'])
    expect(stale.code).toBe(1)
    expect(stale.stderr).toContain('RECOVERY_NOT_ACCEPTED')
    const ok = await runCli(['recover', '--accept-head-risking-fork', '--url', a.url])
    expect(ok.code).toBe(0)
    expect(ok.stderr).toContain('seqs 30..999 will be forked for certain')
    expect(ok.stdout).toContain('recovery accepted by address')
    expect(a.stderr).toContain('accepted head 30 without proof')
    const [next] = await a.append([{ type: 'after', payload: 0 }])
    expect(next?.seq).toBe(30)
    // Visible later: after a restart the status still says how the last recovery ended.
    await c.restart(0)
    const last = (await a.status()).recovery
    expect(last).toMatchObject({
      state: 'not-needed',
      last: { state: 'accepted', decision: { decision: 'accept-head-risking-fork', head: 30, need: 1000 } },
    })
    const text = await runCli(['status', '--url', a.url])
    expect(text.stdout).toContain('last accepted')
    expect(text.stdout).toContain('ACCEPTED WITHOUT PROOF')
    await c.converge(CONVERGE_MS)
    await checkLogs(c, true)
    expect(await verifyAll(c)).toEqual([0, 0])
  })
})

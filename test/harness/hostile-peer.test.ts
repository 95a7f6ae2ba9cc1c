/**
 * The harness's hostile peer against two in-process nodes (real HTTP API, real replication):
 * every attack is refused, nothing forged, deleted or rebound reaches either log, the attacker's
 * own entries replicate, and the nodes keep working; equivocations end with every node holding
 * the evidence and reading the same entry.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import type { StoredEntry } from '../../src/core/query.js'
import { ownRecord, placeRecord, FORGED_MARKER, HOSTILE_TYPES } from '../../src/harness/forgery.js'
import { HostileLink, HostilePeer, type HostileAttack } from '../../src/harness/hostile-peer.js'
import { checkHostileData, checkInvariants, type NodeLog } from '../../src/harness/invariants.js'
import { prng } from '../../src/harness/random.js'
import { SledNode } from '../../src/node/node.js'
import { encodeUpdate } from '../../src/sync/messages.js'
import { eventually } from '../helpers/cluster.js'
import { testSeed } from '../helpers/seed.js'
import { tempDir } from '../helpers/tmp.js'

/** An in-process node; digests are exchanged every second so equivocations surface quickly. */
async function node(peers: readonly string[] = []): Promise<SledNode> {
  const n = new SledNode({
    dataDir: await tempDir('sledlog-hostile-'),
    host: '127.0.0.1',
    port: 0,
    peers,
    maxBackoffMs: 500,
    sessionLimits: { resyncMs: 1000 },
  })
  await n.start()
  onTestFinished(() => n.stop())
  return n
}

const wsOf = (n: SledNode): string => n.url.replace(/^http/, 'ws')

async function readLog(n: SledNode, name: string): Promise<NodeLog> {
  const res = await fetch(`${n.url}/v1/events?limit=10000`)
  return { node: name, entries: ((await res.json()) as { entries: StoredEntry[] }).entries }
}

async function pair(): Promise<[SledNode, SledNode]> {
  const a = await node()
  const b = await node([wsOf(a)])
  await a.log.appendBatch(Array.from({ length: 6 }, (_, i) => ({ type: 'honest', payload: { i } })))
  await b.log.appendBatch(Array.from({ length: 4 }, (_, i) => ({ type: 'honest', payload: { i } })))
  await eventually(() => a.log.length(b.log.sled) === 4 && b.log.length(a.log.sled) === 6, 10_000, {
    what: 'initial sync',
  })
  return [a, b]
}

describe('hostile peer (harness)', () => {
  it('forged, tampered, deleting, rebound and garbage updates are all refused; its own entries replicate', async () => {
    const seed = testSeed('harness hostile peer')
    const [a, b] = await pair()
    const attacks: HostileAttack[] = ['forge', 'tamper', 'delete', 'rebind', 'garbage']
    const peer = new HostilePeer({ seed, random: prng(seed), attacks, pauseMs: [20, 60] })
    const targets = [a, b].map((n, i) => ({ name: `node ${i}`, url: n.url, available: () => true }))
    const abort = new AbortController()
    const campaign = peer.attack(targets, abort.signal)
    try {
      // Until every kind of attack was made a few times (the choices are seeded).
      await eventually(
        () => {
          const s = peer.stats
          return [s.forged, s.tampered, s.deletions, s.rebound, s.garbage].every((n) => n >= 3)
        },
        30_000,
        { what: 'every attack made', intervalMs: 50 },
      )
    } finally {
      abort.abort()
      await campaign
    }
    const s = peer.stats
    expect(s.failedConnections).toBe(0)
    expect(s.handshakes).toBe(s.connections)
    expect(s.ownEntries).toBe(peer.ownLength)
    // The nodes refused the attacks by their guard codes…
    const codes = new Set([
      ...Object.keys(a.log.status().rejected.byCode),
      ...Object.keys(b.log.status().rejected.byCode),
    ])
    for (const code of ['UPDATE_BAD_SIGNATURE', 'UPDATE_BAD_BINDING']) expect(codes).toContain(code)
    expect(codes.has('UPDATE_DELETION') || codes.has('UPDATE_NOT_APPEND')).toBe(true)
    // …converge on the honest entries plus the attacker's own, and hold nothing hostile.
    await eventually(
      async () => {
        const logs = [await readLog(a, 'a'), await readLog(b, 'b')]
        const held = logs.map((l) => l.entries.filter((e) => e.sled === peer.keys.main.sled).length)
        return [
          ...checkInvariants({ logs, converged: true }),
          ...held.filter((n) => n !== peer.ownLength).map((n) => `attacker entries ${n} of ${peer.ownLength}`),
        ]
      },
      15_000,
      { what: 'convergence' },
    )
    const logs = [await readLog(a, 'a'), await readLog(b, 'b')]
    const spec = {
      attackerSled: peer.keys.main.sled,
      forbiddenSleds: [peer.keys.rebind.sled],
      ownType: HOSTILE_TYPES.own,
      typePrefix: 'hostile.',
      marker: FORGED_MARKER,
    }
    expect(checkHostileData(logs, spec)).toEqual({ violations: [], accepted: 0 })
    for (const log of logs) {
      expect(log.entries.filter((e) => e.sled === a.log.sled).map((e) => e.seq)).toEqual([0, 1, 2, 3, 4, 5])
      expect(log.entries.filter((e) => e.sled === b.log.sled).map((e) => e.seq)).toEqual([0, 1, 2, 3])
    }
    // Still alive and appending at the next seq.
    expect((await a.log.append({ type: 'after', payload: null })).seq).toBe(6)
  })

  it('equivocations split between two nodes end with both holding the same fork and reading the same', async () => {
    const seed = testSeed('harness hostile split equivocation')
    const [a, b] = await pair()
    const peer = new HostilePeer({ seed, random: prng(seed), attacks: ['equivocate'], pauseMs: [20, 60] })
    const abort = new AbortController()
    const campaign = peer.attack(
      [a, b].map((n, i) => ({ name: `node ${i}`, url: n.url, available: () => true })),
      abort.signal,
    )
    try {
      await eventually(() => peer.stats.equivocations >= 3, 20_000, { what: 'equivocations sent' })
    } finally {
      abort.abort()
      await campaign
    }
    await eventually(
      async () =>
        checkInvariants({
          logs: [await readLog(a, 'a'), await readLog(b, 'b')],
          converged: true,
          equivocators: new Set([peer.keys.main.sled]),
        }),
      15_000,
      {
        what: 'same reads on both nodes',
      },
    )
    const sled = peer.keys.main.sled
    await eventually(() => a.log.forkProof(sled) !== undefined && b.log.forkProof(sled) !== undefined, 15_000, {
      what: 'both nodes hold the fork',
    })
    expect(a.log.forkProof(sled)).toEqual(b.log.forkProof(sled))
  })

  // Found by `sledlog harness`: a node that received both versions of a slot once kept the
  // evidence to itself; a peer holding only the larger version then read a different entry forever.
  // The refetch that digest exchange triggers now carries the evidence.
  it('a fork seen by one node reaches its peers, so every node reads the same', async () => {
    const [a, b] = await pair()
    const peer = new HostilePeer({ seed: 1, random: prng(1) })
    const keys = peer.keys.main
    // Two versions of the attacker's seq 0.
    let v1 = ownRecord(keys, 0, 1, 1)
    let v2 = ownRecord(keys, 0, 1, 2)
    if (v2 > v1) [v1, v2] = [v2, v1]
    const link = await HostileLink.open(a.url, keys, 3000)
    onTestFinished(() => link.terminate())
    await link.send(encodeUpdate(placeRecord(keys.sled, 0, v1)))
    await eventually(() => b.log.length(keys.sled) === 1, 5000, { what: 'b holds the first version' })
    await link.send(encodeUpdate(placeRecord(keys.sled, 0, v2)))
    await eventually(() => a.log.status().forks.sleds === 1, 5000, { what: 'a holds the fork' })
    // Several digest exchanges (every second here) later, both nodes read the same entry.
    await eventually(
      async () =>
        checkInvariants({
          logs: [await readLog(a, 'a'), await readLog(b, 'b')],
          converged: true,
          equivocators: new Set([keys.sled]),
        }),
      6000,
      {
        what: 'same reads on both nodes',
      },
    )
    await eventually(() => b.log.forkProof(keys.sled) !== undefined, 6000, { what: 'b holds the fork' })
    expect(b.log.forkProof(keys.sled)).toEqual({ sled: keys.sled, seq: 0, records: [v2, v1] })
    expect(a.log.forkProof(keys.sled)).toEqual(b.log.forkProof(keys.sled))
  })
})

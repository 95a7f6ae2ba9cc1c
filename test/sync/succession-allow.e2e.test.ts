/**
 * Repeated disk losses in a cluster whose nodes dial each other and allow-list each other by the
 * sled ids they were configured with (an operator does not edit every node's configuration after
 * each lost disk): real `sledlog node` processes. A node that moved to a successor key must stay
 * the configured peer it was, for a peer's recovery quorum as for its admission, also when it
 * lost its disk again and no longer holds its own succession record to present.
 */
import { randomBytes } from 'node:crypto'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Cluster, NodeStatus } from '../../src/harness/cluster.js'
import { keyPairFromSeed } from '../../src/core/signing.js'
import { keyPath, saveKeyFile } from '../../src/store/identity.js'
import { runCli } from '../cli/cli-process.js'
import { eventually, movedOn, testCluster } from '../helpers/cluster.js'

const CONVERGE_MS = 30_000

/** A 2-node mesh; each node allow-lists the other's first sled, whatever keys it moves to later. */
async function allowListedPair(): Promise<{ c: Cluster; first: readonly string[]; seeds: readonly Buffer[] }> {
  const seeds = [randomBytes(32), randomBytes(32)]
  const first = seeds.map((s) => keyPairFromSeed(s).sled)
  const c = await testCluster({
    size: 2,
    topology: 'mesh',
    keySeed: (i) => seeds[i] as Uint8Array,
    nodeSettings: (i) => ({ extraArgs: ['--allow', first[1 - i] as string] }),
  })
  return { c, first, seeds }
}

/** Writes `n` events to node `i` and waits until the other node holds them. */
async function writeHeld(c: Cluster, i: number, n: number): Promise<void> {
  const node = c.node(i)
  const entries = await node.append(Array.from({ length: n }, (_, k) => ({ type: 'w', payload: k })))
  const last = entries[entries.length - 1]?.seq as number
  await eventually(async () => ((await c.node(1 - i).status()).heads[node.sled] ?? -1) >= last, CONVERGE_MS, {
    what: `node ${1 - i} to hold ${node.sled.slice(0, 8)}..${last}`,
  })
}

/** Kills node `i`, loses its database (its key kept), starts it again; resolves once it moved on. */
async function loseDisk(c: Cluster, i: number): Promise<NodeStatus> {
  const node = c.node(i)
  const from = node.sled
  await c.kill(i, 'SIGKILL')
  await c.wipe(i)
  await c.revive(i)
  return movedOn(node, from)
}

describe('repeated disk losses with allow-lists of the first sled ids', () => {
  it('a peer that moved on still answers a recovery that dialed it; a twice-lost node is admitted again', async () => {
    const { c, first } = await allowListedPair()
    await writeHeld(c, 0, 10)
    await writeHeld(c, 1, 10)
    // Node 0 loses its disk: node 1 (allow-listing node 0's first sled) proves its head.
    const a1 = await loseDisk(c, 0)
    expect(a1.recovery).toMatchObject({ last: { state: 'proven', successor: { lastSeq: 9 } } })
    await writeHeld(c, 0, 5)
    // Node 1 loses its disk: the peer it dials is node 0's successor, which its allow-list admits
    // by chain; its receipt must count for the dialed URL, or the recovery waits forever.
    const b1 = await loseDisk(c, 1)
    expect(b1.recovery).toMatchObject({ last: { state: 'proven', successor: { lastSeq: 9 } } })
    await writeHeld(c, 1, 5)
    // Node 0 loses its disk again: its store no longer holds its own succession record, so it
    // has no chain to present; node 1 holds that record and must admit it by it.
    const a2 = await loseDisk(c, 0)
    expect(a2.recovery).toMatchObject({ last: { state: 'proven', successor: { lastSeq: 5 } } })
    await writeHeld(c, 0, 1)
    await c.converge(CONVERGE_MS)
    expect(await c.check({ converged: true })).toEqual([])
    expect(c.node(0).sleds).toEqual([first[0], a1.sled, a2.sled])
    for (const n of c.nodes) await c.kill(n.index, 'SIGTERM')
    const codes = await Promise.all(
      c.nodes.map(async (n) => (await runCli(['verify', '--data', n.dataDir], { timeoutMs: 60_000 })).code),
    )
    expect(codes).toEqual([0, 0])
  })
})

describe('an operator restores a backup of a key the node has moved on from', () => {
  it('is refused before the old key endorses a second successor; the right key then recovers', async () => {
    const { c, first, seeds } = await allowListedPair()
    await writeHeld(c, 0, 10)
    const a1 = await loseDisk(c, 0)
    await writeHeld(c, 0, 3)
    // A new disk with the backup of the first key (README: keep a copy of sled.key).
    await c.kill(0, 'SIGKILL')
    const dir = c.node(0).dataDir
    const successorKey = await readFile(keyPath(dir))
    for (const f of await readdir(dir)) await rm(join(dir, f), { recursive: true, force: true })
    await saveKeyFile(keyPath(dir), keyPairFromSeed(seeds[0] as Uint8Array))
    await c.revive(0)
    // It proves its head from node 1, fetching the succession its key already endorsed, and stops
    // there: before the fix it moved to a second successor and both were contested everywhere.
    let refusal = ''
    await eventually(
      async () => {
        const res = await fetch(`${c.node(0).url}/v1/status`)
        refusal = ((await res.json()) as { error?: { message?: string } }).error?.message ?? ''
        return refusal.includes('already endorsed a successor') || [`${res.status}: ${refusal}`]
      },
      CONVERGE_MS,
      { what: 'node 0 to refuse a second successor' },
    )
    expect(refusal).toContain(a1.sled)
    expect(refusal).toContain('--predecessor')
    expect(refusal).not.toContain('restart it')
    // The harness lists each sled the node ran as, in order: the restored first key is a run too.
    expect(c.node(0).sleds).toEqual([first[0], a1.sled, first[0]])
    const chain = (await (await fetch(`${c.node(1).url}/v1/sleds/${first[0]}/chain`)).json()) as {
      successors: Array<{ sled: string }>
      contested: boolean
    }
    expect(chain).toMatchObject({ contested: false, successors: [{ sled: a1.sled }] })
    expect(await readdir(dir)).not.toContain('sled.key.next')
    // The operator does as told: the successor's key, on the empty disk again.
    await c.kill(0, 'SIGKILL')
    for (const f of await readdir(dir)) await rm(join(dir, f), { recursive: true, force: true })
    await writeFile(keyPath(dir), successorKey, { mode: 0o600 })
    await c.revive(0)
    const a2 = await movedOn(c.node(0), a1.sled)
    expect(a2.recovery).toMatchObject({ last: { state: 'proven', successor: { lastSeq: 3 } } })
    await writeHeld(c, 0, 1)
    await c.converge(CONVERGE_MS)
    expect(await c.check({ converged: true })).toEqual([])
    // One line of keys, contested nowhere: first → a1 → a2.
    const line = (await (await fetch(`${c.node(1).url}/v1/sleds/${a2.sled}/chain`)).json()) as typeof chain & {
      predecessors: Array<{ sled: string; predecessor: string }>
    }
    expect(line.contested).toBe(false)
    expect(line.predecessors.map((l) => l.predecessor)).toEqual([a1.sled, first[0]])
  })
})

/**
 * kill -9 in the middle of a node's move to a successor key after a proven recovery (real
 * `sledlog node` processes): killed at a seeded delay after it logged the proof (stopping its
 * old-key services, the journal, re-sealing thousands of stored updates, appending the
 * succession, the key swap, the new run's start), the node must come back as exactly one
 * successor, never append under the old key, and leave a log `sledlog verify` finds clean.
 */
import { describe, expect, it } from 'vitest'
import type { Cluster } from '../../src/harness/cluster.js'
import { runCli } from '../cli/cli-process.js'
import { eventually, movedOn, testCluster } from '../helpers/cluster.js'
import { prng, testSeed } from '../helpers/seed.js'

const CONVERGE_MS = 60_000
const PROVEN = 'own head proven'

/** Times `text` occurs in `s`. */
const count = (s: string, text: string): number => s.split(text).length - 1

/** Node 0's successor as node 1 reads the chain of `sled`: its endorsed successors and contest flag. */
async function successorsOf(c: Cluster, sled: string): Promise<{ successors: string[]; contested: boolean }> {
  const chain = (await (await fetch(`${c.node(1).url}/v1/sleds/${sled}/chain`)).json()) as {
    successors: Array<{ sled: string; predecessor: string }>
    contested: boolean
  }
  return {
    successors: chain.successors.filter((l) => l.predecessor === sled).map((l) => l.sled),
    contested: chain.contested,
  }
}

describe('kill -9 during the move to a successor key', () => {
  it('at seeded points after the proof: one successor each time, none signed by the old key after', async () => {
    const random = prng(testSeed('succession kill -9'))
    const c = await testCluster({ size: 2, topology: 'mesh' })
    const a = c.node(0)
    const rounds = 4
    const delays: number[] = []
    const outcomes: string[] = []
    for (let round = 0; round < rounds; round++) {
      // 3,000 entries a round: the move (proof → new key) took 270-290 ms on the shared machine.
      for (let i = 0; i < 3; i++)
        await a.append(Array.from({ length: 1000 }, (_, k) => ({ type: `r${round}`, payload: k })))
      const old = a.sled
      const head = (await a.status()).heads[old] as number
      await eventually(async () => ((await c.node(1).status()).heads[old] ?? -1) === head, CONVERGE_MS, {
        what: `node 1 to hold ${old.slice(0, 8)}..${head}`,
      })
      await c.kill(0, 'SIGKILL')
      await c.wipe(0)
      const seen = count(a.stderr, PROVEN)
      await c.revive(0)
      await eventually(() => count(a.stderr, PROVEN) > seen, CONVERGE_MS, { what: 'the proof' })
      const delay = Math.floor(random() * 400)
      delays.push(delay)
      await new Promise((r) => setTimeout(r, delay))
      await c.kill(0, 'SIGKILL')
      const before = a.stderr.length
      await c.revive(0)
      // Whatever point it was killed at: it recovers again or finishes the move, and writes as one
      // successor of the old sled.
      await movedOn(a, old, CONVERGE_MS)
      // Where the kill landed, as the next run tells: it recovered again (before the journal), it
      // finished the journaled move, or the move was done (after the key swap).
      const after = a.stderr.slice(before)
      outcomes.push(
        after.includes('finished at start') ? 'journal' : after.includes(PROVEN) ? 'before journal' : 'done',
      )
      // What the operator reads afterwards says which successor the recovery moved to.
      expect((await a.status()).recovery).toMatchObject({ last: { successor: { sled: a.sled, lastSeq: head } } })
      const [next] = await a.append([{ type: 'after', payload: round }])
      expect(next?.sled).toBe(a.sled)
      await eventually(
        async () => (await successorsOf(c, old)).successors.length > 0 || ['no successor yet'],
        CONVERGE_MS,
        { what: 'node 1 to see the successor' },
      )
      expect(await successorsOf(c, old)).toMatchObject({ successors: [a.sled], contested: false })
      // Nothing under the old key after the proof: node 1 holds exactly what it held before.
      const st1 = await c.node(1).status()
      expect(st1.heads[old]).toBe(head)
      expect(st1.forks.sleds).toBe(0)
    }
    console.log(`kill -9 after the proof: ${delays.map((d, i) => `${d} ms → ${outcomes[i]}`).join(', ')}`)
    expect(new Set(c.node(0).sleds).size).toBe(rounds + 1)
    await c.converge(CONVERGE_MS)
    expect(await c.check({ converged: true })).toEqual([])
    for (const n of c.nodes) await c.kill(n.index, 'SIGTERM')
    const codes = await Promise.all(
      c.nodes.map(async (n) => (await runCli(['verify', '--data', n.dataDir], { timeoutMs: 60_000 })).code),
    )
    expect(codes).toEqual([0, 0])
  }, 300_000)
})

/**
 * The "every replica agrees" scenarios of issue 15 against real node processes: an attacker sled
 * that signs many versions of its slots, sent to isolated nodes in different orders, then the
 * nodes linked; and peers that lie in their state vectors. After quiescence every node serves the
 * same entries and the same fork proof, the status stays small however many versions were sent,
 * and no hole is reported that no signed record proves.
 */
import { describe, expect, it } from 'vitest'
import { clientIdOf, type SledId } from '../../src/core/ids.js'
import { encodeRuns, encodeRunsChunked, encodeStateVector } from '../../src/core/update-codec.js'
import type { KeyPair } from '../../src/core/signing.js'
import { call, startNode, waitFor, type NodeProcess } from '../http/node-process.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { runOf, signedRecords, testKeys } from '../helpers/keys.js'
import { prng, testSeed } from '../helpers/seed.js'
import { tempDir } from '../helpers/tmp.js'
import { shuffled } from '../../src/harness/random.js'

const ATTACKER = testKeys(711)
const wsOf = (n: NodeProcess): string => n.url.replace(/^http/, 'ws')

/** Version `v` of every seq in [0, n): version 0 is the attacker's "real" history. */
const versions = (keys: KeyPair, n: number, v: number): string[] =>
  signedRecords(keys, 0, n, (seq) => ({ kind: 'event', type: 'v', payload: { seq, v } }))

/** What a reader of `node` sees of the attacker: every page of its entries, and its fork proof. */
async function readsOf(node: NodeProcess): Promise<string> {
  const sigs: string[] = []
  let after: string | null = null
  do {
    const q: string = after === null ? '' : `&after=${after}`
    const page = (await call(node.url, 'GET', `/v1/events?sled=${ATTACKER.sled}&limit=10000${q}`)).body
    for (const e of page.entries as { seq: number; sig: string }[]) sigs.push(`${e.seq}:${e.sig}`)
    after = page.next
  } while (after !== null)
  const proof = await call(node.url, 'GET', `/v1/evidence/${ATTACKER.sled}`)
  return JSON.stringify({ sigs, proof: proof.status === 200 ? proof.body : proof.status })
}

/** Sends `records` (one seq each, any order) as single-record updates, waiting for the node to take them. */
async function sendEach(c: HostileClient, keys: KeyPair, records: ReadonlyArray<readonly [number, string]>) {
  for (const [seq, r] of records) await c.sendUpdate(encodeRuns([runOf(keys, seq, [r])]))
}

async function statusOf(node: NodeProcess) {
  const res = await call(node.url, 'GET', '/v1/status')
  return { body: res.body, bytes: JSON.stringify(res.body).length }
}

describe('every replica agrees (node processes)', () => {
  it('versions of many slots, in any order, to isolated nodes, then linked: same reads and proof', async () => {
    const rand = prng(testSeed('equivocation e2e'))
    const SLOTS = 12_000
    const FORK = 1000
    const a = await startNode(await tempDir())
    const b = await startNode(await tempDir())
    const real = versions(ATTACKER, SLOTS, 0)
    // The same 12,000 entries to both: the attacker's one history.
    for (const n of [a, b]) {
      const c = await HostileClient.authenticated(wsOf(n), { keys: ATTACKER })
      for (const u of encodeRunsChunked([runOf(ATTACKER, 0, real)], 512 * 1024)) await c.sendUpdate(u)
      await waitFor(async () => (await statusOf(n)).body.heads[ATTACKER.sled] === SLOTS - 1, 30_000, 'history')
      c.close()
    }
    const small = await statusOf(a)
    // Then a second history from seq 1000 on (11,000 versions) and three more versions of every
    // hundredth slot from 1000 (330), to each node in a different order: the fork moves lower as
    // versions arrive, differently on each node, and ends at 1000 with five versions to choose from.
    const second = versions(ATTACKER, SLOTS, 1)
      .map((r, seq) => [seq, r] as const)
      .filter(([seq]) => seq >= FORK)
    const extraRecords = [2, 3, 4].flatMap((v) =>
      versions(ATTACKER, SLOTS, v)
        .map((r, seq) => [seq, r] as const)
        .filter(([seq]) => seq >= FORK && seq % 100 === 0),
    )
    expect(second.length + extraRecords.length).toBe(11_330)
    for (const n of [a, b]) {
      const c = await HostileClient.authenticated(wsOf(n), { keys: ATTACKER })
      await sendEach(c, ATTACKER, shuffled(rand, [...second, ...extraRecords]))
      await waitFor(
        async () => (await statusOf(n)).body.forks.equivocations >= second.length + extraRecords.length || undefined,
        60_000,
        'every version counted',
      )
      c.close()
    }
    // Isolated, each has seen the same versions in another order: identical reads and proof.
    const readA = await readsOf(a)
    expect(await readsOf(b)).toBe(readA)
    const expected = [0, 1, 2, 3, 4].map((v) => versions(ATTACKER, FORK + 1, v)[FORK] as string).sort()
    expect(JSON.parse(readA)).toEqual({
      sigs: real.slice(0, FORK).map((r, seq) => `${seq}:${r.slice(0, 86)}`),
      proof: { sled: ATTACKER.sled, seq: FORK, records: expected.slice(0, 2) },
    })
    const big = await statusOf(a)
    expect(big.body.forks).toMatchObject({ sleds: 1, own: null, first: [{ sled: ATTACKER.sled, seq: FORK }] })
    expect(big.body.forks.equivocations).toBeGreaterThanOrEqual(11_330)
    // Flat: the status after 10,300 versions is about what it was before any (no records inline).
    expect(big.bytes).toBeLessThan(small.bytes + 2048)
    console.log(
      `[equivocation e2e] status ${small.bytes} B before, ${big.bytes} B after ` +
        `${second.length + extraRecords.length} versions; fork at ${big.body.forks.first[0]?.seq}`,
    )
    // A third node linked to both learns the fork and reads the same.
    const c = await startNode(await tempDir(), ['--peer', wsOf(a), '--peer', wsOf(b)])
    await waitFor(async () => ((await readsOf(c)) === readA ? true : undefined), 30_000, 'the third node to agree')
    for (const n of [c, b, a]) await n.stop()
  })

  it('state vectors claiming 10^15 entries report no hole, no missing range, and hold nothing', async () => {
    const a = await startNode(await tempDir())
    await call(a.url, 'POST', '/v1/events', { type: 't', payload: 1 })
    const liar = await HostileClient.authenticated(wsOf(a), { keys: testKeys(712) })
    const claims = new Map([
      [clientIdOf(a.sled as SledId), 1e15],
      [clientIdOf(ATTACKER.sled), 1e15],
    ])
    for (let i = 0; i < 5; i++) await liar.sendStep1(encodeStateVector(claims))
    await new Promise((r) => setTimeout(r, 500))
    const st = (await call(a.url, 'GET', '/v1/status')).body
    expect(st.missing).toEqual({})
    expect(st.appendsHeld).toBe(false)
    expect((await call(a.url, 'POST', '/v1/events', { type: 't', payload: 2 })).status).toBe(201)
    const metrics = await fetch(`${a.url}/metrics`).then((r) => r.text())
    expect(metrics).not.toMatch(/^sledlog_missing_entries\{/m)
    liar.close()
    await a.stop()
  })
})

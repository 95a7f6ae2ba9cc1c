/**
 * Key succession end to end, with real node processes and the real CLI (PROTOCOL.md §3.5, §3.6,
 * §6.5, §8.2): node A appends, stops, `rotate-key`, restarts and appends under its successor; a
 * peer B that allow-lists only A's old sled still replicates with the successor; both read the
 * same chain and flags; a thief holding a backup of A's old data dir and key appends past the
 * retirement while partitioned, and after the heal those entries are flagged on every node; a
 * self revocation from seq 1 flags the old sled's entries from 1 on everywhere.
 */
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { call, startNode, waitFor, type NodeProcess } from '../http/node-process.js'
import { tempDir } from '../helpers/tmp.js'
import { runCli } from './cli-process.js'

const ws = (n: NodeProcess): string => n.url.replace(/^http/, 'ws')

/** [seq, retired] of every entry of `sled` a node serves. */
async function flags(n: NodeProcess, sled: string): Promise<Array<[number, boolean]>> {
  const r = await call(n.url, 'GET', `/v1/events?sled=${sled}&limit=100`)
  return (r.body.entries as Array<{ seq: number; retired?: boolean }>).map((e) => [e.seq, e.retired === true])
}

async function append(n: NodeProcess, payload: number): Promise<{ status: number; code?: string }> {
  const r = await call<{ error?: { code: string } }>(n.url, 'POST', '/v1/events', { type: 'e2e', payload })
  return { status: r.status, ...(r.body.error === undefined ? {} : { code: r.body.error.code }) }
}

describe('key succession with real processes', () => {
  it('rotate-key, a successor admitted by chain, flags after a stolen key appends, revocation', async () => {
    const [a, b, thief] = [await tempDir(), await tempDir(), await tempDir()]
    const idA = (await runCli(['keygen', '--data', a])).stdout.trim()
    const idB = (await runCli(['keygen', '--data', b])).stdout.trim()
    const nodeB = await startNode(b, ['--allow', idA])
    let nodeA = await startNode(a, ['--peer', ws(nodeB), '--allow', idB])
    for (let i = 0; i < 3; i++) expect((await append(nodeA, i)).status).toBe(201)
    await waitFor(async () => (await flags(nodeB, idA)).length === 3, 15_000, 'B to hold A’s 3 entries')

    // A stolen backup of A's data directory (key and store) before the rotation.
    await nodeA.stop()
    await cp(a, thief, { recursive: true })
    const rotated = await runCli(['rotate-key', '--data', a])
    expect(rotated.code, rotated.stderr).toBe(0)
    const idA2 = rotated.stdout.trim()
    expect(idA2).toMatch(/^[0-9a-f]{64}$/)
    expect(rotated.stderr).toMatch(/rotation .* vouching for its seqs 0\.\.2; endorsed/)
    // Running it again finds nothing to finish: sled.key is the successor now.
    expect((await runCli(['id', '--data', a])).stdout.trim()).toBe(idA2)

    nodeA = await startNode(a, ['--peer', ws(nodeB), '--allow', idB])
    expect(nodeA.sled).toBe(idA2)
    for (let i = 3; i < 5; i++) expect((await append(nodeA, i)).status).toBe(201)
    // B allow-lists only A's old sled, and admits the successor by the chain it presents.
    await waitFor(async () => (await flags(nodeB, idA2)).length === 3, 15_000, 'B to hold A2’s entries')
    const chainOn = async (n: NodeProcess, sled: string) => (await call(n.url, 'GET', `/v1/sleds/${sled}/chain`)).body
    const chain = await chainOn(nodeB, idA2)
    expect(chain).toMatchObject({
      sled: idA2,
      retiredFrom: null,
      predecessors: [{ sled: idA2, predecessor: idA, lastSeq: 2, reason: 'rotation', endorsed: true }],
      contested: false,
    })
    expect(await chainOn(nodeA, idA2)).toEqual(chain)
    expect(await chainOn(nodeA, idA)).toEqual(await chainOn(nodeB, idA))
    expect((await chainOn(nodeA, idA)).retiredFrom).toBe(3)
    const status = (await call(nodeA.url, 'GET', '/v1/status')).body
    expect(status.succession).toMatchObject({ chain: [{ predecessor: idA, lastSeq: 2 }], successions: 1 })
    const cliStatus = await runCli(['status', '--url', nodeA.url])
    expect(cliStatus.stdout).toMatch(/key +this key succeeds [0-9a-f]{12} after seq 2 \(rotation, endorsed\)/)

    // The thief, partitioned (no peers), appends under the old key past its retirement.
    let thiefNode = await startNode(thief, [])
    for (let i = 0; i < 2; i++) expect((await append(thiefNode, 100 + i)).status).toBe(201)
    await thiefNode.stop()
    // Heal: it dials B, which admits the old sled (it is allow-listed) and relays to A.
    thiefNode = await startNode(thief, ['--peer', ws(nodeB)])
    const want: Array<[number, boolean]> = [
      [0, false],
      [1, false],
      [2, false],
      [3, true],
      [4, true],
    ]
    for (const n of [nodeA, nodeB, thiefNode])
      await waitFor(async () => JSON.stringify(await flags(n, idA)) === JSON.stringify(want), 15_000, 'flags')
    // The thief's own (honest) node refuses to go on under a retired key once it knows.
    const refused = await append(thiefNode, 102)
    expect(refused).toEqual({ status: 409, code: 'SLED_RETIRED' })
    const table = await runCli(['read', '--url', nodeB.url, '--sled', idA, '--format', 'table'])
    expect(table.stdout.split('\n').filter((l) => l.includes('[retired]'))).toHaveLength(2)

    // A self revocation from seq 1, signed with the retired key rotate-key kept.
    const keyFile = join(a, `retired-${idA}.key`)
    const revoked = await runCli([
      'revoke-key',
      '--url',
      nodeA.url,
      '--sled',
      idA,
      '--from-seq',
      '1',
      '--key-file',
      keyFile,
    ])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(JSON.parse(revoked.stdout)).toMatchObject({ sled: idA2, kind: 'revocation', target: idA, fromSeq: 1 })
    const after: Array<[number, boolean]> = want.map(([s]) => [s, s >= 1])
    for (const n of [nodeA, nodeB, thiefNode])
      await waitFor(async () => JSON.stringify(await flags(n, idA)) === JSON.stringify(after), 15_000, 'revoked flags')
    for (const n of [nodeA, nodeB]) expect((await chainOn(n, idA)).retiredFrom).toBe(1)
    await Promise.all([thiefNode.stop(), nodeA.stop(), nodeB.stop()])
  }, 120_000)
})

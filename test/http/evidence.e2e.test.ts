/**
 * Forks, the replication ledger and idempotency conflicts through the API of a real node process:
 * the evidence routes serve the proof a peer's equivocation left (and never inline in the
 * status), reads say which sleds are forked, a peer refused by the node shows in the ledger of
 * status and /metrics, and an id reused with another payload is a 409 that appends nothing.
 */
import { describe, expect, it } from 'vitest'
import { encodeRuns } from '../../src/core/update-codec.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { runOf, signedRecord, signedRun, testKeys } from '../helpers/keys.js'
import { tempDir } from '../helpers/tmp.js'
import { call, startNode, waitFor } from './node-process.js'

const ATTACKER = testKeys(611)

describe('evidence, ledger and id conflicts (node process)', () => {
  it('serves a fork proof by sled, pages forks, flags forked sleds in reads, keeps records out of status', async () => {
    const node = await startNode(await tempDir())
    const c = await HostileClient.authenticated(node.url.replace(/^http/, 'ws'), { keys: ATTACKER })
    await c.sendUpdate(encodeRuns([signedRun(ATTACKER, 0, 4)]))
    await waitFor(
      async () => (await call(node.url, 'GET', '/v1/status')).body.heads[ATTACKER.sled] === 3,
      10_000,
      'entries',
    )
    expect((await call(node.url, 'GET', `/v1/evidence/${ATTACKER.sled}`)).status).toBe(404)
    const other = signedRecord(ATTACKER, 2, { kind: 'event', type: 'fork', payload: 'the other story' })
    await c.sendUpdate(encodeRuns([runOf(ATTACKER, 2, [other])]))
    await waitFor(async () => (await call(node.url, 'GET', '/v1/status')).body.forks.sleds === 1, 10_000, 'fork')

    const proof = await call(node.url, 'GET', `/v1/evidence/${ATTACKER.sled}`)
    expect(proof.status).toBe(200)
    expect(proof.body).toEqual({ sled: ATTACKER.sled, seq: 2, records: [signedRecord(ATTACKER, 2), other].sort() })
    expect((await call(node.url, 'GET', '/v1/evidence')).body).toEqual({
      forks: [{ sled: ATTACKER.sled, seq: 2 }],
      next: null,
    })
    expect((await call(node.url, 'GET', `/v1/evidence?after=${ATTACKER.sled}`)).body).toEqual({ forks: [], next: null })
    // Reads stop below the fork and say why.
    const read = await call(node.url, 'GET', `/v1/events?sled=${ATTACKER.sled}`)
    expect(read.body.entries.map((e: { seq: number }) => e.seq)).toEqual([0, 1])
    expect(read.body.forked).toEqual({ [ATTACKER.sled]: 2 })
    // The status counts and names, never carries records.
    const status = await call(node.url, 'GET', '/v1/status')
    expect(status.body.forks).toMatchObject({ sleds: 1, first: [{ sled: ATTACKER.sled, seq: 2 }] })
    expect(JSON.stringify(status.body)).not.toContain(other.slice(0, 86))
    // Bad parameters are refused, not ignored.
    for (const path of ['/v1/evidence/zz', '/v1/evidence?after=zz', '/v1/evidence?limit=0', '/v1/evidence?x=1']) {
      expect([path, (await call(node.url, 'GET', path)).status]).toEqual([path, 400])
    }
    c.close()
    await node.stop()
  })

  it('a peer closed for violations stays in the ledger of status and /metrics after its link is gone', async () => {
    const node = await startNode(await tempDir())
    const c = await HostileClient.authenticated(node.url.replace(/^http/, 'ws'), { keys: ATTACKER })
    for (let i = 0; i < 3; i++) await c.send(new Uint8Array([0, 2, 3, 0xff, 0xff, 0xff]))
    await c.waitClose()
    const ledger = await waitFor(
      async () => {
        const st = (await call(node.url, 'GET', '/v1/status')).body
        return st.replication.ledger.totals['close:4408'] === 1 ? st.replication.ledger : undefined
      },
      10_000,
      'the kick in the ledger',
    )
    const row = ledger.peers.find((p: { id: string }) => p.id === ATTACKER.sled)
    expect(row?.counts['close:4408']).toBe(1)
    const metrics = (await fetch(`${node.url}/metrics`).then((r) => r.text())).split('\n')
    expect(metrics).toContain('sledlog_sync_ledger_total{kind="close:4408"} 1')
    await node.stop()
  })

  it('an idempotency id reused with another payload is 409 ENTRY_ID_CONFLICT and appends nothing', async () => {
    const node = await startNode(await tempDir())
    const first = await call(node.url, 'POST', '/v1/events', { type: 't', payload: 1, id: 'order-1' })
    expect(first.status).toBe(201)
    const again = await call(node.url, 'POST', '/v1/events', { type: 't', payload: 1, id: 'order-1' })
    expect([again.status, again.body.seq]).toEqual([201, first.body.seq])
    const other = await call(node.url, 'POST', '/v1/events', [
      { type: 'u', payload: 0 },
      { type: 't', payload: 2, id: 'order-1' },
    ])
    expect(other.status).toBe(409)
    expect(other.body.error).toMatchObject({ code: 'ENTRY_ID_CONFLICT', details: { id: 'order-1', seq: 0 } })
    expect((await call(node.url, 'GET', '/v1/status')).body.heads).toEqual({ [node.sled]: 0 })
    await node.stop()
  })
})

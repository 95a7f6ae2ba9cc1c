/**
 * Holds receipts between real in-process nodes and against hostile clients (real LevelDB, real
 * websockets): a peer's signed word on how much of this node's sled it durably holds, the base
 * of head recovery and of replicated acknowledgements. Forged, replayed and flooded receipts
 * must change nothing.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { CLOSE } from '../../src/sync/close-codes.js'
import { receiptLink, signReceipt } from '../../src/sync/holds.js'
import { encodeHolds } from '../../src/sync/messages.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { testKeys } from '../helpers/keys.js'
import { linksOf, syncNode, until } from '../helpers/sync-node.js'

const MALLORY = testKeys(820)

async function authed(url: string): Promise<HostileClient> {
  const c = await HostileClient.authenticated(url, { keys: MALLORY })
  onTestFinished(() => c.terminate())
  return c
}

describe('holds receipts (in-process nodes)', () => {
  it("a peer's receipt follows what it durably holds of our sled, on every link", async () => {
    const b = await syncNode()
    const a = await syncNode({ peers: [b.url] })
    await until(() => linksOf(a, b.keys.sled)[0]?.holdsOurs === 0, "b's first receipt: none held")
    await a.log.appendBatch(Array.from({ length: 300 }, (_, i) => ({ type: 't', payload: i })))
    await until(() => linksOf(a, b.keys.sled)[0]?.holdsOurs === 300, 'b to prove it holds 300')
    expect(b.log.held(a.keys.sled)).toBe(300)
    // And the other way: b's entries reach a, and a's receipt says so on b's side.
    await b.log.appendBatch([{ type: 't', payload: 'b' }])
    await until(() => linksOf(b, a.keys.sled)[0]?.holdsOurs === 1, 'a to prove it holds 1')
  })

  it('a receipt that does not verify is a violation and counts for nothing', async () => {
    const node = await syncNode()
    await node.log.appendBatch([{ type: 't', payload: 1 }])
    const c = await authed(node.url)
    const t = c.transcript
    if (t === null) throw new Error('no transcript')
    // Signed by another key, for another subject, and a valid one bound to another link.
    const other = { serverNonce: new Uint8Array(32), clientNonce: t.clientNonce }
    const forged = [
      encodeHolds(1, signReceipt(testKeys(821), node.keys.publicKey, receiptLink(t), 1)),
      encodeHolds(1, signReceipt(MALLORY, testKeys(822).publicKey, receiptLink(t), 1)),
      encodeHolds(1, signReceipt(MALLORY, node.keys.publicKey, other, 1)),
    ]
    for (const f of forged) {
      await c.send(f)
      await new Promise((r) => setTimeout(r, 20))
    }
    const close = await c.waitClose()
    expect(close.code).toBe(CLOSE.VIOLATIONS)
    const row = node.rep.stats().ledger.peers.find((p) => p.id === MALLORY.sled)
    expect(row?.counts).toMatchObject({ PEER_PROTOCOL: 3, [`close:${CLOSE.VIOLATIONS}`]: 1 })
  })

  it('a flood of receipts keeps the link and the latest counts; a lower one later changes nothing', async () => {
    const node = await syncNode()
    await node.log.appendBatch(Array.from({ length: 10 }, (_, i) => ({ type: 't', payload: i })))
    const c = await authed(node.url)
    const link = receiptLink(c.transcript as NonNullable<typeof c.transcript>)
    // Only the latest receipt waiting is verified (one per 2 ms): the others are overtaken.
    const frames = Array.from({ length: 5_000 }, (_, i) =>
      encodeHolds(i, signReceipt(MALLORY, node.keys.publicKey, link, i)),
    )
    c.sendBurst(frames)
    await until(() => linksOf(node, MALLORY.sled)[0]?.holdsOurs === 4_999, 'the last receipt to count')
    expect(c.open).toBe(true)
    // A lower receipt later is stale, not news.
    await c.send(encodeHolds(3, signReceipt(MALLORY, node.keys.publicKey, link, 3)))
    await new Promise((r) => setTimeout(r, 50))
    expect(linksOf(node, MALLORY.sled)[0]?.holdsOurs).toBe(4_999)
  })
})

/**
 * Succession and revocation in a log (PROTOCOL.md §6.5): what the writer refuses to sign, the
 * `retired` flags on reads, commits and subscriptions, the same in any arrival order and after a
 * reopen, admin keys, a fork withdrawing a revocation, and the node's own retirement.
 */
import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { encodeRuns } from '../../src/core/update-codec.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { Subscription, type SubscriptionMessage } from '../../src/log/subscription.js'
import { applyAll, memLog, memoryDb } from '../helpers/forks.js'
import { runOf, signedRecord, signedRecords, testKeys } from '../helpers/keys.js'
import { revocationBody, revocationRecord, successionBody, successionRecord } from '../helpers/succession.js'

const A = testKeys(51) // the predecessor, whose entries get retired
const B = testKeys(52) // its successor
const X = testKeys(53) // another sled carrying revocations
const ADMIN = testKeys(54)

/** Updates holding A's entries 0..n-1, B's succession (A after `lastSeq`), and X's revocation record. */
function updates(n: number, lastSeq: number) {
  return {
    a: encodeRuns([runOf(A, 0, signedRecords(A, 0, n))]),
    b: encodeRuns([runOf(B, 0, [successionRecord(B, A, lastSeq)])]),
  }
}

/** What readers see of A: seq and flag of every entry, and the page's retired map. */
function readsOf(log: SledLog, sled: SledId = A.sled) {
  const page = log.query({ sled, limit: 1000 })
  return { entries: page.entries.map((e) => [e.seq, e.retired === true]), retired: page.retired }
}

describe('succession in a log: the writer', () => {
  it('appends an endorsed succession as entry 0 and refuses what verifiers would refuse', async () => {
    const { log } = await memLog({ keys: B })
    await expect(log.appendBodies([successionBody(B.sled, B, 3)])).rejects.toMatchObject({
      code: 'SUCCESSION_INVALID',
    })
    const forged = { ...(successionBody(B.sled, A, 3) as object), lastSeq: 4 }
    await expect(log.appendBodies([forged as never])).rejects.toMatchObject({ code: 'SUCCESSION_BAD_ENDORSEMENT' })
    const badRevocation = { ...(revocationBody(A, A.sled, 3) as object), fromSeq: 2 }
    await expect(log.appendBodies([badRevocation as never])).rejects.toMatchObject({
      code: 'REVOCATION_BAD_SIGNATURE',
    })
    expect(log.held(B.sled)).toBe(0) // nothing refused used a seq
    const [entry] = await log.appendBodies([successionBody(B.sled, A, 3)])
    expect(entry).toMatchObject({ seq: 0, kind: 'succession', predecessor: A.sled, lastSeq: 3 })
    await expect(log.appendBodies([successionBody(B.sled, A, 3)])).rejects.toMatchObject({
      code: 'SUCCESSION_INVALID',
    })
    expect(log.status().succession).toMatchObject({ chain: [{ sled: B.sled, predecessor: A.sled }], successions: 1 })
  })
})

describe('succession in a log: retired flags', () => {
  it('flags the predecessor’s entries after lastSeq, in any order of arrival and after a reopen', async () => {
    const u = updates(8, 4)
    const want = {
      entries: [0, 1, 2, 3, 4, 5, 6, 7].map((s) => [s, s >= 5]),
      retired: { [A.sled]: 5 },
    }
    const db = memoryDb()
    const first = await memLog({ db })
    await applyAll(first.log, [u.a, u.b])
    const second = await memLog()
    await applyAll(second.log, [u.b, u.a])
    expect(readsOf(first.log)).toEqual(want)
    expect(readsOf(second.log)).toEqual(want)
    expect(first.log.get(A.sled, 5)?.retired).toBe(true)
    expect(first.log.get(A.sled, 4)?.retired).toBeUndefined()
    expect(first.log.chain(A.sled)).toMatchObject({ retiredFrom: 5, successors: [{ sled: B.sled, lastSeq: 4 }] })
    // B's entries are not retired; an unknown sled's chain is empty.
    expect(readsOf(first.log, B.sled).retired).toEqual({})
    expect(first.log.chain(X.sled)).toMatchObject({ retiredFrom: null, predecessors: [], successors: [] })
    // The index is rebuilt from the store (MAC-trusted records, no re-verification).
    await first.log.close()
    const again = await memLog({ db, keys: first.keys })
    expect(readsOf(again.log)).toEqual(want)
    expect(again.log.status().succession).toMatchObject({
      successions: 1,
      retired: 1,
      first: [{ sled: A.sled, seq: 5 }],
    })
  })

  it('does not retire on an unendorsed succession; counts admin revocations only with the key configured', async () => {
    const unendorsed = encodeRuns([runOf(B, 0, [successionRecord(B, A.sled, 2, 'recovery')])])
    const admin = encodeRuns([runOf(X, 0, [revocationRecord(X, 0, ADMIN, A.sled, 3)])])
    const a = encodeRuns([runOf(A, 0, signedRecords(A, 0, 5))])
    const plain = await memLog()
    await applyAll(plain.log, [a, unendorsed, admin])
    expect(readsOf(plain.log).retired).toEqual({})
    expect(plain.log.chain(A.sled)).toMatchObject({
      successors: [{ sled: B.sled, endorsed: false, reason: 'recovery' }],
      revocations: [{ carrier: X.sled, fromSeq: 3, authority: 'admin', effective: false }],
    })
    const withAdmin = await memLog({ adminKeys: [ADMIN.sled] })
    await applyAll(withAdmin.log, [a, unendorsed, admin])
    expect(readsOf(withAdmin.log)).toEqual({
      entries: [0, 1, 2, 3, 4].map((s) => [s, s >= 3]),
      retired: { [A.sled]: 3 },
    })
  })

  it('withdraws a revocation that a fork of its carrier withholds', async () => {
    const { log } = await memLog()
    const retiredEvents: Array<[SledId, number | null]> = []
    log.onRetire((sled, seq) => retiredEvents.push([sled, seq]))
    const revocation = revocationRecord(X, 1, A, A.sled, 2)
    await applyAll(log, [
      encodeRuns([runOf(A, 0, signedRecords(A, 0, 4))]),
      encodeRuns([runOf(X, 0, [signedRecord(X, 0), revocation])]),
    ])
    expect(log.retiredAt(A.sled)).toBe(2)
    // X signs another version of seq 1: forked at 1, its seq 1 (the revocation) is withheld.
    await applyAll(log, [encodeRuns([runOf(X, 1, [signedRecord(X, 1)])])])
    expect(log.forkProof(X.sled)?.seq).toBe(1)
    expect(log.retiredAt(A.sled)).toBeUndefined()
    expect(retiredEvents).toEqual([
      [A.sled, 2],
      [A.sled, null],
    ])
  })
})

describe('succession in a log: subscriptions', () => {
  it('announces retired sleds at start and as they retire; live entries carry the flag', async () => {
    const { log } = await memLog()
    await applyAll(log, [encodeRuns([runOf(A, 0, signedRecords(A, 0, 3))])])
    await applyAll(log, [encodeRuns([runOf(X, 0, [revocationRecord(X, 0, A, A.sled, 5)])])])
    const sub = new Subscription(log, { from: 'start', sleds: [A.sled] }).start()
    const got: SubscriptionMessage[] = []
    const take = async (n: number): Promise<void> => {
      while (got.length < n) got.push((await sub.next()).value as SubscriptionMessage)
    }
    await take(5)
    expect(got[0]).toEqual({ type: 'retired', sled: A.sled, seq: 5 })
    expect(got.slice(1, 4).map((m) => m.type === 'entry' && m.entry.retired)).toEqual([undefined, undefined, undefined])
    expect(got[4]).toEqual({ type: 'live' })
    // A revocation from seq 3 lowers the retirement; entries 3 and 4 arrive flagged.
    await applyAll(log, [encodeRuns([runOf(X, 1, [revocationRecord(X, 1, A, A.sled, 3)])])])
    await applyAll(log, [encodeRuns([runOf(A, 3, signedRecords(A, 3, 2))])])
    await take(8)
    expect(got[5]).toEqual({ type: 'retired', sled: A.sled, seq: 3 })
    expect(got.slice(6).map((m) => (m.type === 'entry' ? [m.entry.seq, m.entry.retired] : m.type))).toEqual([
      [3, true],
      [4, true],
    ])
    sub.stop()
  })
})

describe('succession in a log: its own retirement', () => {
  it('refuses appends from the retirement seq on (SLED_RETIRED), below it they go on', async () => {
    const { log } = await memLog({ keys: A })
    await log.append({ type: 'x', payload: 0 })
    // A's key retires itself from seq 3 (carried by X, as after a rotation the successor would).
    await applyAll(log, [encodeRuns([runOf(X, 0, [revocationRecord(X, 0, A, A.sled, 3)])])])
    await log.appendBatch([
      { type: 'x', payload: 1 },
      { type: 'x', payload: 2 },
    ])
    await expect(log.append({ type: 'x', payload: 3 })).rejects.toMatchObject({
      code: 'SLED_RETIRED',
      message: expect.stringMatching(/retired from seq 3.*rotate-key/),
    })
    // A batch that would cross it is refused whole.
    expect(log.held(A.sled)).toBe(3)
    expect(log.status().succession.own).toBe(3)
  })
})

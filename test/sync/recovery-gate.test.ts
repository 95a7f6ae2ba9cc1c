/**
 * The recovery gate on its own (real LevelDB logs, no network): which peers count toward the
 * quorum and how often, what raises the head it needs, when it ends, what an operator's
 * decision and a stop do, and that its timeout only warns. Receipts and sleds are fed in as the
 * replicator would after verifying them.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { isSledlogError } from '../../src/errors.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { RecoveryGate, type RecoveryGateOptions, type RecoveryResume } from '../../src/sync/recovery.js'
import { testKeys } from '../helpers/keys.js'
import { cloneIdentity, syncInto, testLog } from '../helpers/logs.js'

const S1 = testKeys(871).sled
const S2 = testKeys(872).sled
const S3 = testKeys(873).sled
const U1 = 'ws://10.0.0.1:7400'
const U2 = 'ws://10.0.0.2:7400'

/** A log that wrote `n` entries, and a second log of the same key with a new store (a lost disk). */
async function lostDisk(n: number): Promise<{ before: SledLog; after: SledLog }> {
  const { log: before, dir } = await testLog()
  if (n > 0) await before.appendBatch(Array.from({ length: n }, (_, i) => ({ type: 't', payload: i })))
  const { log: after } = await testLog(await cloneIdentity(dir))
  return { before, after }
}

function gate(log: SledLog, opts: Partial<RecoveryGateOptions> = {}): RecoveryGate {
  const g = new RecoveryGate({ log, peers: [], ...opts })
  g.start()
  return g
}

async function refused(log: SledLog): Promise<string> {
  return log.append({ type: 'x', payload: null }).then(
    (e) => `appended at ${e.seq}`,
    (err: unknown) => (isSledlogError(err) ? err.code : String(err)),
  )
}

afterEach(() => {
  vi.useRealTimers()
})

describe('recovery gate: the quorum', () => {
  it('by default every dialed peer must answer; allow-listed ones count once, and not for that rule', async () => {
    const { after } = await lostDisk(0)
    const g = gate(after, { peers: [U1, U2], allow: new Set([S2, S3]) })
    g.noteSled(U2, S2)
    expect(g.status().peers).toEqual([
      { peer: U1, kind: 'dialed', sled: null, holds: null },
      { peer: U2, kind: 'dialed', sled: S2, holds: null },
      { peer: S3, kind: 'allow-listed', sled: S3, holds: null },
    ])
    g.noteReceipt(S2, 0)
    g.noteReceipt(S3, 0)
    expect(g.status()).toMatchObject({
      state: 'waiting',
      quorum: { rule: 'every dialed peer', needed: 2, answered: 2 },
      missing: [U1],
    })
    // U1's sled answered before its dialed link said who it is: it counts once it does.
    g.noteReceipt(S1, 0)
    expect(g.waiting).toBe(true)
    g.noteSled(U1, S1)
    expect(await g.done).toBe('proven')
  })

  it('two URLs of one sled are one peer; a node that dials none waits for every allow-listed one', async () => {
    const { after } = await lostDisk(0)
    const counted = gate(after, { peers: [U1, U2], quorum: 2 })
    counted.noteSled(U1, S1)
    counted.noteSled(U2, S1)
    counted.noteReceipt(S1, 0)
    expect(counted.status()).toMatchObject({
      state: 'waiting',
      quorum: { rule: 'any 2 configured peers', answered: 1 },
    })
    counted.stop()

    const { after: hub } = await lostDisk(0)
    const g = gate(hub, { allow: new Set([S1, S2]) })
    g.noteReceipt(S1, 0)
    expect(g.status().quorum).toEqual({ rule: 'every allow-listed peer', needed: 2, answered: 1 })
    g.noteReceipt(S2, 0)
    expect(await g.done).toBe('proven')
  })

  it('with no configured peer nobody can answer: receipts of others raise the need, not the quorum', async () => {
    const { after } = await lostDisk(0)
    const g = gate(after)
    g.noteReceipt(S1, 7)
    expect(g.status()).toMatchObject({
      state: 'waiting',
      quorum: { rule: 'no configured peer', needed: null, answered: 0 },
      need: 7,
      others: { [S1]: 7 },
    })
    expect(g.status().waitingFor).toMatch(/^an operator/)
    expect(await refused(after)).toBe('RECOVERING')
  })
})

describe('recovery gate: what it says', () => {
  it('never shows the credentials of a peer URL in its log or in the refusal writers get', async () => {
    const { after } = await lostDisk(0)
    const lines: string[] = []
    const url = 'wss://ops:hunter2@10.0.0.9:7400'
    const g = gate(after, { peers: [url], logger: { warn: (o, msg) => lines.push(JSON.stringify(o), msg) } })
    g.noteReceipt(S2, 3)
    const err = g.refusal()
    expect(err?.message).toContain('wss://***@10.0.0.9:7400')
    expect(JSON.stringify(err?.details)).not.toContain('hunter2')
    expect(err?.message).not.toContain('hunter2')
    expect(lines.length).toBeGreaterThan(1)
    for (const l of lines) expect(l).not.toContain('hunter2')
  })
})

describe('recovery gate: the head it needs', () => {
  it('holds until it has as many own entries as the longest receipt; a lower receipt changes nothing', async () => {
    const { before, after } = await lostDisk(30)
    const persisted: RecoveryResume[] = []
    const g = gate(after, { peers: [U1], persist: (r) => persisted.push(r) })
    g.noteSled(U1, S1)
    g.noteReceipt(S1, 30)
    g.noteReceipt(S1, 12)
    expect(g.status()).toMatchObject({ state: 'waiting', holding: 0, need: 30, quorum: { answered: 1 } })
    expect(g.status().waitingFor).toContain('its own entries 0..29')
    expect(persisted.map((r) => r.need)).toEqual([30])
    await syncInto(before, after)
    expect(await g.done).toBe('proven')
    expect(g.status()).toMatchObject({ state: 'proven', mode: 'succession', holding: 30, need: 30 })
    // Proven, but this key never appends again: its owner moves to a successor (SledNode).
    expect(await refused(after)).toBe('RECOVERING')
    expect(g.refusal()?.details).toMatchObject({ holding: 30, successorPending: true })
  })

  it('in resume mode a proof opens appends at the proven head', async () => {
    const { before, after } = await lostDisk(30)
    const g = gate(after, { peers: [U1], mode: 'resume' })
    g.noteSled(U1, S1)
    g.noteReceipt(S1, 30)
    expect(await refused(after)).toBe('RECOVERING')
    await syncInto(before, after)
    expect(await g.done).toBe('proven')
    expect(g.status()).toMatchObject({ state: 'proven', mode: 'resume' })
    expect((await after.append({ type: 'after', payload: 0 })).seq).toBe(30)
  })

  it('a need resumed from an earlier run binds even when the peers now say less', async () => {
    const { after } = await lostDisk(0)
    const g = gate(after, { peers: [U1], resume: { since: 1234, need: 5 } })
    g.noteSled(U1, S1)
    g.noteReceipt(S1, 0)
    expect(g.status()).toMatchObject({ state: 'waiting', since: 1234, need: 5, holding: 0 })
  })
})

describe('recovery gate: endings', () => {
  it('an operator accepts the head it holds, not another; the decision is kept', async () => {
    const { after } = await lostDisk(0)
    const g = gate(after, { peers: [U1] })
    g.noteReceipt(S2, 3) // an unconfigured peer claims 3
    let err: unknown
    try {
      g.acceptHead(1, 'token abc')
    } catch (e) {
      err = e
    }
    expect(isSledlogError(err, 'RECOVERY_NOT_ACCEPTED')).toBe(true)
    expect(g.waiting).toBe(true)
    const s = g.acceptHead(0, 'token abc')
    expect(s).toMatchObject({
      state: 'accepted',
      decision: { decision: 'accept-head-risking-fork', by: 'token abc', head: 0, need: 3, missing: [U1] },
    })
    expect(await g.done).toBe('accepted')
    expect((await after.append({ type: 'x', payload: 0 })).seq).toBe(0)
    expect(() => g.acceptHead(1, 'token abc')).toThrow(/not recovering \(recovery accepted\)/)
  })

  it('a stop ends the wait without opening appends', async () => {
    const { after } = await lostDisk(0)
    const g = gate(after, { peers: [U1] })
    g.stop()
    expect(await g.done).toBe('stopped')
    expect(await refused(after)).toBe('RECOVERING')
    g.noteReceipt(S1, 0)
    expect(g.status().state).toBe('stopped')
  })

  it('the timeout only warns: after 1 s, then 2 s later, then 4 s later; never a release', async () => {
    const { after } = await lostDisk(0)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const lines: string[] = []
    const g = gate(after, { peers: [U1], warnAfterMs: 1000, logger: { warn: (_o, msg) => lines.push(msg) } })
    const warned = (): number => g.status().warnings
    const at: number[] = []
    for (let t = 0; t < 8000; t += 500) {
      const n = warned()
      vi.advanceTimersByTime(500)
      if (warned() > n) at.push(t + 500)
    }
    expect(at).toEqual([1000, 3000, 7000])
    expect(g.waiting).toBe(true)
    expect(lines.filter((l) => l.startsWith('recovery: still refusing writes'))).toHaveLength(3)
    vi.useRealTimers()
    expect(await refused(after)).toBe('RECOVERING')
  })
})

/**
 * Replicated acknowledgements between real in-process nodes (real LevelDB, real websockets,
 * real Replicator; links through a fault proxy where a test cuts them): a write with acks=N is
 * answered only once N configured peers proved they durably hold it; too few peers refuse it
 * before anything is signed; a cut link ends in ACKS_TIMEOUT with what is known, and the retry
 * with the same idempotency ids signs nothing again; strangers never count, liars count once.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { isSledlogError, type SledlogError } from '../../src/errors.js'
import { FaultProxy } from '../../src/harness/proxy.js'
import { readdir } from 'node:fs/promises'
import { AckedAppends } from '../../src/node/acked-appends.js'
import { SledNode } from '../../src/node/node.js'
import { receiptLink, signReceipt } from '../../src/sync/holds.js'
import { encodeHolds } from '../../src/sync/messages.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { testKeys } from '../helpers/keys.js'
import { expectOnlyGrown, linksOf, snapshotLog, syncNode, until, type SyncNode } from '../helpers/sync-node.js'
import { tempDir } from '../helpers/tmp.js'

const MALLORY = testKeys(830)

/** A proxy in front of `node`'s port, stopped when the test finishes. */
async function proxyTo(node: SyncNode): Promise<FaultProxy> {
  const p = new FaultProxy({ targetPort: node.port })
  await p.start()
  onTestFinished(() => p.stop())
  return p
}

/** The append path of `node`, as SledNode builds it. */
function appendsOf(node: SyncNode, ackTimeoutMs = 5_000): AckedAppends {
  return new AckedAppends({ log: node.log, replication: node.rep, ackTimeoutMs })
}

/** The error `p` rejects with (fails when it resolves). */
async function failure(p: Promise<unknown>): Promise<SledlogError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
  if (!isSledlogError(err)) throw err
  return err
}

/** Authenticates as `keys` to `node` and sends a valid receipt claiming `length` of its sled. */
async function claimHolds(node: SyncNode, length: number): Promise<HostileClient> {
  const c = await HostileClient.authenticated(node.url, { keys: MALLORY })
  onTestFinished(() => c.terminate())
  const link = receiptLink(c.transcript as NonNullable<typeof c.transcript>)
  await c.send(encodeHolds(length, signReceipt(MALLORY, node.keys.publicKey, link, length)))
  await until(() => linksOf(node, MALLORY.sled)[0]?.holdsOurs === length, 'the claim to be verified')
  return c
}

const events = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ type: 'acked', payload: { tag, i }, id: `${tag}-${i}` }))

describe('acks=N between in-process nodes', () => {
  it('answers acks=1 and acks=2 once that many peers durably hold every entry', async () => {
    const b = await syncNode()
    const c = await syncNode()
    const a = await syncNode({ peers: [b.url, c.url] })
    const appends = appendsOf(a)
    expect(appends.configuredPeers).toBe(2)
    await until(() => a.rep.holds.connected().length === 2, 'both peers linked')

    const local = await appends.append(events('local', 3), { acks: 0 })
    expect(local.acks).toBe(0)

    const one = await appends.append(events('one', 50), { acks: 1 })
    expect(one.acks).toBeGreaterThanOrEqual(1)
    const last1 = one.entries.at(-1)?.seq as number
    expect(Math.max(b.log.held(a.log.sled), c.log.held(a.log.sled))).toBeGreaterThan(last1)

    const two = await appends.append(events('two', 50), { acks: 2 })
    expect(two.acks).toBe(2)
    const last2 = two.entries.at(-1)?.seq as number
    // Answered only after both stores hold the whole batch: nothing is read after the fact.
    expect(b.log.held(a.log.sled)).toBeGreaterThan(last2)
    expect(c.log.held(a.log.sled)).toBeGreaterThan(last2)

    // Asking more than the configured peers is refused before anything is appended.
    const before = snapshotLog(a.log)
    expect((await failure(appends.append(events('three', 1), { acks: 3 }))).code).toBe('ENTRY_INVALID')
    expectOnlyGrown(a.log, before)
    const s = appends.stats()
    expect(s).toMatchObject({ configuredPeers: 2, connectedPeers: 2, acked: 2, timeouts: 0, refused: 0, waiting: 0 })
    expect(s.peers.map((p) => p.sled)).toEqual([b.keys.sled, c.keys.sled].sort())
    expect(appends.waits().count).toBe(2)
  })

  it('refuses before signing when fewer configured peers are connected than asked for', async () => {
    const b = await syncNode()
    const c = await syncNode()
    const a = await syncNode({ peers: [b.url, c.url] })
    const appends = appendsOf(a)
    await until(() => a.rep.holds.connected().length === 2, 'both peers linked')
    await c.stop()
    await until(() => a.rep.holds.connected().length === 1, 'c gone')

    const before = snapshotLog(a.log)
    const err = await failure(appends.append(events('refused', 5), { acks: 2 }))
    expect(err.code).toBe('NOT_ENOUGH_PEERS')
    expect(err.details).toMatchObject({ required: 2, connected: 1, configured: 2, peers: [b.keys.sled] })
    expect(err.message).toContain('nothing was appended')
    expectOnlyGrown(a.log, before) // not one entry signed
    expect(appends.stats().refused).toBe(1)
    // One peer is still enough for acks=1.
    expect((await appends.append(events('one', 1), { acks: 1 })).acks).toBe(1)
  })

  it('a link cut mid-wait ends in ACKS_TIMEOUT saying what is known; the retry signs nothing again', async () => {
    const b = await syncNode()
    const proxy = await proxyTo(b)
    const a = await syncNode({ peers: [proxy.wsUrl] })
    const appends = appendsOf(a, 1_500)
    await until(() => a.rep.holds.connected().length === 1, 'b linked')
    await appends.append(events('warm', 2), { acks: 1 })

    // The peer stops answering (no byte either way), then the link is cut while the write waits.
    proxy.blackhole()
    const input = events('cut', 3)
    const pending = failure(appends.append(input, { acks: 1 }))
    setTimeout(() => proxy.cut(), 300)
    const err = await pending
    expect(err.code).toBe('ACKS_TIMEOUT')
    expect(err.details).toMatchObject({
      stored: true,
      seqs: [2, 3, 4],
      acks: 0,
      required: 1,
      heldBy: [],
      idempotent: true,
      timeoutMs: 1_500,
    })
    expect(err.message).toMatch(/3 entries are stored on this node \(seqs 2\.\.4\).*safe/)
    const stored = a.log.query({ sled: a.log.sled }).entries
    expect(stored.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4])
    expect(appends.stats().timeouts).toBe(1)

    // Back: the same write (same ids) waits again and succeeds without a new signature.
    proxy.heal()
    await until(() => a.rep.holds.connected().length === 1, 'b linked again')
    const retry = await appends.append(input, { acks: 1, ackTimeoutMs: 10_000 })
    expect(retry.acks).toBe(1)
    expect(retry.entries).toEqual(stored.slice(2))
    expect(a.log.length(a.log.sled)).toBe(5)
    expect(b.log.held(a.log.sled)).toBe(5)
  })

  it('without ids the timeout says a retry would append again', async () => {
    const b = await syncNode()
    const proxy = await proxyTo(b)
    const a = await syncNode({ peers: [proxy.wsUrl] })
    const appends = appendsOf(a, 300)
    await until(() => a.rep.holds.connected().length === 1, 'b linked')
    proxy.blackhole()
    const err = await failure(appends.append([{ type: 'x', payload: 1 }], { acks: 1 }))
    expect(err.code).toBe('ACKS_TIMEOUT')
    expect(err.details).toMatchObject({ seqs: [0], idempotent: false })
    expect(err.message).toMatch(/1 entry is stored on this node \(seq 0\).*give each event an id/)
  })

  it("a stranger's valid receipts count for nothing, neither as connected nor as holding", async () => {
    const b = await syncNode()
    const proxy = await proxyTo(b)
    const a = await syncNode({ peers: [proxy.wsUrl] }) // no allow-list: only the dialed sled counts
    const appends = appendsOf(a, 500)
    await until(() => a.rep.holds.connected().length === 1, 'b linked')
    // Mallory, who dialed in with a throwaway key, swears it holds everything a will ever write.
    await claimHolds(a, Number.MAX_SAFE_INTEGER)
    expect(a.rep.holds.connected()).toEqual([b.keys.sled])
    expect(appends.stats().peers.map((p) => p.sled)).toEqual([b.keys.sled])

    proxy.blackhole()
    const err = await failure(appends.append(events('s', 1), { acks: 1 }))
    expect(err.code).toBe('ACKS_TIMEOUT')
    expect(err.details).toMatchObject({ acks: 0, heldBy: [] })

    proxy.cut()
    await until(() => a.rep.holds.connected().length === 0, 'b gone')
    const before = snapshotLog(a.log)
    expect((await failure(appends.append(events('s2', 1), { acks: 1 }))).code).toBe('NOT_ENOUGH_PEERS')
    expectOnlyGrown(a.log, before)
  })

  it('an allow-listed peer lying with a huge receipt counts as one peer, never as N', async () => {
    const b = await syncNode()
    const proxy = await proxyTo(b)
    const allow = new Set<SledId>([b.keys.sled, MALLORY.sled])
    const a = await syncNode({ peers: [proxy.wsUrl], auth: { allow } })
    const appends = appendsOf(a, 500)
    expect(appends.configuredPeers).toBe(2)
    await until(() => a.rep.holds.connected().length === 1, 'b linked')
    await claimHolds(a, Number.MAX_SAFE_INTEGER)
    expect(a.rep.holds.connected()).toEqual([b.keys.sled, MALLORY.sled].sort())

    proxy.blackhole()
    const err = await failure(appends.append(events('lie', 2), { acks: 2 }))
    expect(err.code).toBe('ACKS_TIMEOUT')
    expect(err.details).toMatchObject({ acks: 1, required: 2, heldBy: [MALLORY.sled] })
    // Its word is all acks=1 asks for: a configured peer is trusted (docs/ARCHITECTURE.md).
    expect((await appends.append(events('lie1', 1), { acks: 1 })).acks).toBe(1)
  })

  it('a default of minAcks applies to writes that do not say, and stop ends waits', async () => {
    const b = await syncNode()
    const proxy = await proxyTo(b)
    const a = await syncNode({ peers: [proxy.wsUrl] })
    const appends = new AckedAppends({ log: a.log, replication: a.rep, minAcks: 1, ackTimeoutMs: 60_000 })
    await until(() => a.rep.holds.connected().length === 1, 'b linked')
    expect((await appends.append(events('d', 1))).acks).toBe(1)
    expect((await appends.append(events('d0', 1), { acks: 0 })).acks).toBe(0)
    proxy.blackhole()
    const pending = failure(appends.append(events('stop', 1)))
    await until(() => a.rep.holds.waiting === 1, 'the write to wait')
    await a.rep.stop()
    const err = await pending
    expect(err.code).toBe('NODE_STOPPING')
    expect(err.details).toMatchObject({ stored: true, seqs: [2], acks: 0, required: 1 })
  })

  it('refuses settings that could never acknowledge a write', async () => {
    const a = await syncNode({ peers: [] })
    expect(() => new AckedAppends({ log: a.log, replication: a.rep, minAcks: 1 })).toThrow(/minAcks: must be/)
    expect(() => new AckedAppends({ log: a.log, replication: a.rep, ackTimeoutMs: 0 })).toThrow(/ackTimeoutMs/)
    const appends = appendsOf(a)
    expect((await failure(appends.append(events('x', 1), { acks: 1 }))).code).toBe('ENTRY_INVALID')
    expect((await failure(appends.append(events('x', 1), { ackTimeoutMs: -1 }))).code).toBe('ENTRY_INVALID')
  })

  it('SledNode.append takes --min-acks as its default; an impossible one refuses to start', async () => {
    const start = async (peers: string[], extra: { minAcks?: number } = {}): Promise<SledNode> => {
      const n = new SledNode({ dataDir: await tempDir(), host: '127.0.0.1', port: 0, peers, ...extra })
      onTestFinished(() => n.stop())
      await n.start()
      return n
    }
    const b = await start([])
    const a = await start([b.url.replace('http', 'ws')], { minAcks: 1 })
    await until(() => a.replicator.holds.connected().length === 1, 'b linked')
    const done = await a.append(events('lib', 2))
    expect(done.acks).toBe(1)
    expect(b.log.held(a.log.sled)).toBe(2)
    expect((await a.append(events('lib0', 1), { acks: 0 })).acks).toBe(0)

    // More acknowledgements by default than peers: refused before the data directory is touched.
    const dir = await tempDir()
    const bad = new SledNode({
      dataDir: dir,
      host: '127.0.0.1',
      port: 0,
      peers: [b.url.replace('http', 'ws')],
      minAcks: 2,
    })
    await expect(bad.start()).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    expect(await readdir(dir)).toEqual([])
  })
})

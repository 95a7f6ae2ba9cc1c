/**
 * Recovery and bulk sync between in-process nodes (real LevelDB, HTTP server, Replicator,
 * RecoveryGate): a node that lost its disk refuses writes until a quorum of its configured peers
 * signed how much of its sled they hold and it holds that much again (it must never re-sign a
 * seq); time alone never ends the wait. And a large log syncs to an empty node in chunks that
 * respect the receiver's update size limit.
 */
import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { decodeUpdate } from '../../src/core/update-codec.js'
import { isSledlogError } from '../../src/errors.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { RECOVERING_FILE, RECOVERY_META_KEY, SledNode } from '../../src/node/node.js'
import { CLOSE } from '../../src/sync/close-codes.js'
import { receiptLink, signReceipt } from '../../src/sync/holds.js'
import { encodeHolds } from '../../src/sync/messages.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { testKeys } from '../helpers/keys.js'
import { syncNode, until, type SyncNode } from '../helpers/sync-node.js'

/** A URL on loopback where nothing listens. */
async function deadUrl(): Promise<string> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return `ws://127.0.0.1:${port}`
}

/** Every record of `sled` held by `log`, in seq order. */
function recordsOf(log: SledLog, sled: SledId): string[] {
  return log.doc.getArray<string>('log:' + sled).toArray()
}

function dialed(node: SyncNode, url: string) {
  return node.rep.status().find((s) => s.url === url)
}

/** Wipes `node`'s database (keeping its key) after stopping it. */
async function wipe(node: SyncNode): Promise<void> {
  await node.stop()
  await rm(join(node.dir, 'db'), { recursive: true, force: true })
}

/** A node `a` that wrote `n` entries and its peer `b` that holds them all. */
async function pairHolding(n: number, type = 'before'): Promise<{ a: SyncNode; b: SyncNode }> {
  const b = await syncNode()
  const a = await syncNode({ peers: [b.url] })
  await a.log.appendBatch(Array.from({ length: n }, (_, i) => ({ type, payload: { i } })))
  await until(() => b.log.length(a.log.sled) === n, `b holds a's ${n}`)
  return { a, b }
}

/** The error an append gets now (it must be refused at once, not wait). */
async function refusal(log: SledLog): Promise<unknown> {
  return log.append({ type: 'probe', payload: null }).then(
    (e) => new Error(`appended at seq ${e.seq}`),
    (err: unknown) => err,
  )
}

/** A logger that keeps every warning. */
function warnings(): { warn(obj: object, msg: string): void; lines: string[] } {
  const lines: string[] = []
  return { warn: (_obj, msg) => lines.push(msg), lines }
}

const MALLORY = testKeys(840)

describe('disk loss', () => {
  it('refuses writes until its peer signed what it holds and returned it; continues at seq 50', async () => {
    const { a, b } = await pairHolding(50)
    const sled = a.log.sled
    const original = recordsOf(a.log, sled)
    await wipe(a)

    const log = warnings()
    const a2 = await syncNode({ dir: a.dir, peers: [b.url], recovery: 'hold', gate: { logger: log }, start: false })
    expect(a2.log.length(sled)).toBe(0)
    a2.start()
    expect(a2.log.appendsHeld).toBe(true)
    // Refused at once with the code, saying what it waits for.
    const err = await refusal(a2.log)
    expect(isSledlogError(err, 'RECOVERING')).toBe(true)
    expect((err as Error).message).toContain(b.url)
    expect(await a2.rep.recovered).toBe('proven')
    await until(() => !a2.log.appendsHeld, 'the hold to end')
    expect(recordsOf(a2.log, sled)).toEqual(original)
    const s = a2.gate?.status()
    expect(s).toMatchObject({ state: 'proven', holding: 50, need: 50, missing: [], decision: null })
    expect(s?.quorum).toEqual({ rule: 'every dialed peer', needed: 1, answered: 1 })
    expect(s?.peers).toEqual([{ peer: b.url, kind: 'dialed', sled: b.keys.sled, holds: 50 }])
    expect((await a2.log.append({ type: 'after-loss', payload: 0 })).seq).toBe(50)
    // Start, the peer's answer and the end are warnings in the node's log.
    expect(log.lines.some((l) => l.startsWith('recovery: this node has a key but a new store'))).toBe(true)
    expect(log.lines.some((l) => l.includes('signed that it holds 50'))).toBe(true)
    expect(log.lines.some((l) => l.startsWith('recovery: own head proven by 1 configured peer'))).toBe(true)
    await until(() => b.log.length(sled) === 51, 'b got the new entry')
    expect(b.log.status().forks.sleds).toBe(0)
    expect(recordsOf(b.log, sled)).toEqual(recordsOf(a2.log, sled))
  })

  it('with its only peer unreachable it keeps refusing, long past the timeout, which only warns', async () => {
    const dead = await deadUrl()
    const log = warnings()
    const a = await syncNode({ peers: [dead], recovery: 'hold', gate: { warnAfterMs: 50, logger: log } })
    await until(() => (a.gate?.status().warnings ?? 0) >= 3, 'three timeout warnings', 5000)
    // 50 + 100 + 200 ms of warnings: the old timeout would have released it four times over.
    expect(isSledlogError(await refusal(a.log), 'RECOVERING')).toBe(true)
    const s = a.gate?.status()
    expect(s).toMatchObject({ state: 'waiting', missing: [dead], holding: 0, need: 0 })
    expect(s?.waitingFor).toContain(`missing: ${dead}`)
    expect(s?.options.some((o) => o.includes('--accept-head-risking-fork'))).toBe(true)
    expect(log.lines.filter((l) => l.startsWith('recovery: still refusing writes')).length).toBeGreaterThanOrEqual(3)
    expect(dialed(a, dead)).toMatchObject({ connected: false })
  })

  it('a peer that returns ends it: the node proves its head then, not before', async () => {
    const { a, b } = await pairHolding(30)
    const port = b.port
    await b.stop()
    await wipe(a)
    const a2 = await syncNode({ dir: a.dir, peers: [b.url], recovery: 'hold', gate: { warnAfterMs: 50 } })
    await until(() => (a2.gate?.status().warnings ?? 0) >= 2, 'two warnings')
    expect(a2.gate?.waiting).toBe(true)
    await syncNode({ dir: b.dir, port })
    expect(await a2.rep.recovered).toBe('proven')
    expect((await a2.log.append({ type: 'after', payload: 0 })).seq).toBe(30)
  })

  it('a peer that dials in again makes it redial at once, not after its dialer backed off', async () => {
    const { a, b } = await pairHolding(10)
    const port = b.port
    await b.stop()
    await wipe(a)
    // Something on b's port that refuses every dial and counts it, while the backoff grows.
    const attempts: number[] = []
    const refuser = createNetServer((sock) => {
      attempts.push(Date.now())
      sock.destroy()
    })
    await new Promise<void>((r) => refuser.listen(port, '127.0.0.1', r))
    const a2 = await syncNode({ dir: a.dir, peers: [b.url], recovery: 'hold', maxBackoffMs: 60_000 })
    // 7 failed dials take ~13 s; the dialer then waits 12.8 s before the next.
    await until(() => attempts.length >= 7, 'seven refused dials', 30_000)
    await new Promise<void>((r) => refuser.close(() => r()))
    const back = Date.now()
    await syncNode({ dir: b.dir, port, peers: [a2.url] })
    expect(await a2.rep.recovered).toBe('proven')
    // b dialed in, a redialed b at once (its URL must map to b's sled before b's receipt counts).
    expect(Date.now() - back).toBeLessThan(10_000)
    expect(attempts.length).toBe(7)
  }, 60_000)

  it('a node that kept its db does not recover', async () => {
    const b = await syncNode()
    const a = await syncNode({ peers: [b.url] })
    await a.log.append({ type: 'x', payload: 1 })
    await a.stop()
    const again = new SledNode({ dataDir: a.dir, host: '127.0.0.1', port: 0, peers: [await deadUrl()] })
    onTestFinished(() => again.stop())
    await again.start()
    expect(again.recovery).toBeNull()
    expect(again.log.appendsHeld).toBe(false)
    expect((await again.log.append({ type: 'x', payload: 2 })).seq).toBe(1)
  })

  it('waits for every entry the longest receipt covers: 20k arriving in 16 KiB chunks', async () => {
    const b = await syncNode()
    const a = await syncNode({ peers: [b.url] })
    for (let k = 0; k < 4; k++)
      await a.log.appendBatch(
        Array.from({ length: 5000 }, (_, i) => ({ type: 'before', payload: { i: k * 5000 + i } })),
      )
    await until(() => b.log.length(a.log.sled) === 20_000, 'b holds 20k of a', 60_000)
    await wipe(a)
    const a2 = await syncNode({ dir: a.dir, peers: [b.url], recovery: 'hold', limits: { chunkBytes: 16 * 1024 } })
    // The receipt (20k) comes long before the entries: the quorum is met early, the head is not.
    await until(() => a2.gate?.status().need === 20_000, "b's receipt")
    expect(await a2.rep.recovered).toBe('proven')
    expect(a2.log.held(a2.log.sled)).toBe(20_000)
    expect((await a2.log.append({ type: 'after', payload: 0 })).seq).toBe(20_000)
    expect(a2.log.status().forks.sleds).toBe(0)
  })
})

describe('disk loss: which peers count', () => {
  /** A hub and two spokes that dial it; s1 stops after 10 of the hub's entries, s2 holds 15. */
  async function hubAndSpokes(): Promise<{ hub: SyncNode; s1: SyncNode; s2: SyncNode }> {
    const hub = await syncNode()
    const s1 = await syncNode({ peers: [hub.url] })
    const s2 = await syncNode({ peers: [hub.url] })
    await hub.log.appendBatch(Array.from({ length: 10 }, (_, i) => ({ type: 'a', payload: i })))
    await until(() => s1.log.length(hub.log.sled) === 10 && s2.log.length(hub.log.sled) === 10, 'spokes hold 10')
    await s1.stop()
    await hub.log.appendBatch(Array.from({ length: 5 }, (_, i) => ({ type: 'b', payload: i })))
    await until(() => s2.log.length(hub.log.sled) === 15, 's2 holds 15')
    await s2.stop()
    await wipe(hub)
    return { hub, s1, s2 }
  }

  it('a hub with an allow-list waits for every allow-listed spoke, not the first that dials in', async () => {
    const { hub, s1, s2 } = await hubAndSpokes()
    const allow = new Set([s1.keys.sled, s2.keys.sled])
    const hub2 = await syncNode({ dir: hub.dir, recovery: 'hold', auth: { allow } })
    await syncNode({ dir: s1.dir, peers: [hub2.url] })
    await until(() => hub2.log.length(hub2.log.sled) === 10, 'hub has 10 back from s1')
    expect(hub2.gate?.status()).toMatchObject({
      state: 'waiting',
      quorum: { rule: 'every allow-listed peer', needed: 2, answered: 1 },
      missing: [s2.keys.sled],
    })
    expect(isSledlogError(await refusal(hub2.log), 'RECOVERING')).toBe(true)
    // s2 holds more than s1 did: it is what the wait was for.
    await syncNode({ dir: s2.dir, peers: [hub2.url] })
    expect(await hub2.rep.recovered).toBe('proven')
    expect((await hub2.log.append({ type: 'after', payload: 0 })).seq).toBe(15)
    expect(hub2.log.status().forks.sleds).toBe(0)
  })

  it('a hub with no configured peer waits for the operator, whatever dials in', async () => {
    const { hub, s1, s2 } = await hubAndSpokes()
    const hub2 = await syncNode({ dir: hub.dir, recovery: 'hold' })
    await syncNode({ dir: s1.dir, peers: [hub2.url] })
    await syncNode({ dir: s2.dir, peers: [hub2.url] })
    await until(() => hub2.log.length(hub2.log.sled) === 15, 'hub has 15 back')
    const s = hub2.gate?.status()
    // Their receipts raise what it needs, never the quorum.
    expect(s).toMatchObject({ state: 'waiting', quorum: { rule: 'no configured peer', needed: null }, need: 15 })
    expect(Object.keys(s?.others ?? {}).sort()).toEqual([s1.keys.sled, s2.keys.sled].sort())
    expect(s?.others[s2.keys.sled]).toBe(15)
    expect(s?.waitingFor).toContain('an operator')
    // A decision on a head the node no longer holds is refused; on the one it holds, taken.
    expect(() => hub2.gate?.acceptHead(10, 'test')).toThrow(/holds 15/)
    const after = hub2.gate?.acceptHead(15, 'token ops')
    expect(after).toMatchObject({ state: 'accepted', decision: { head: 15, need: 15, by: 'token ops' } })
    expect(await hub2.rep.recovered).toBe('accepted')
    expect((await hub2.log.append({ type: 'after', payload: 0 })).seq).toBe(15)
    expect(() => hub2.gate?.acceptHead(16, 'test')).toThrow(/not recovering/)
  })

  it('--recovery-quorum 1: the first configured peer that answers is enough (the documented risk)', async () => {
    const b = await syncNode()
    const c = await syncNode()
    const a = await syncNode({ peers: [b.url, c.url] })
    await a.log.appendBatch(Array.from({ length: 20 }, (_, i) => ({ type: 'x', payload: i })))
    await until(() => b.log.length(a.log.sled) === 20 && c.log.length(a.log.sled) === 20, 'b and c hold 20')
    await c.stop()
    await a.log.appendBatch(Array.from({ length: 20 }, (_, i) => ({ type: 'y', payload: i })))
    await until(() => b.log.length(a.log.sled) === 40, 'b holds 40')
    await b.stop()
    await wipe(a)
    await syncNode({ dir: c.dir, port: c.port })
    // Quorum of all: b is down, c's 20 are not enough.
    const all = await syncNode({ dir: a.dir, peers: [b.url, c.url], recovery: 'hold' })
    await until(() => all.log.held(all.log.sled) === 20, "a has c's 20")
    expect(all.gate?.status()).toMatchObject({ state: 'waiting', missing: [b.url], quorum: { needed: 2, answered: 1 } })
    await all.stop()
    // Quorum 1: c's word ends it at 20, although b holds 40: what an operator trades for speed.
    const one = await syncNode({ dir: a.dir, peers: [b.url, c.url], recovery: 'hold', gate: { quorum: 1 } })
    expect(await one.rep.recovered).toBe('proven')
    expect(one.gate?.status()).toMatchObject({ holding: 20, quorum: { rule: 'any 1 configured peer', answered: 1 } })
  })
})

describe('disk loss: receipts that lie or do not verify', () => {
  /** `a` with 30 entries held by `b`, wiped, and recovering from `b` with Mallory allow-listed. */
  async function recovering(quorum?: number): Promise<{ a2: SyncNode; b: SyncNode; client: HostileClient }> {
    const { a, b } = await pairHolding(30)
    const port = b.port
    await b.stop()
    await wipe(a)
    const allow = new Set([b.keys.sled, MALLORY.sled])
    const a2 = await syncNode({
      dir: a.dir,
      peers: [b.url],
      recovery: 'hold',
      auth: { allow },
      ...(quorum === undefined ? {} : { gate: { quorum } }),
    })
    const client = await HostileClient.authenticated(a2.url, { keys: MALLORY })
    onTestFinished(() => client.terminate())
    const b2 = await syncNode({ dir: b.dir, port })
    return { a2, b: b2, client }
  }

  it('a receipt longer than what its peer can deliver keeps the node waiting, and status says so', async () => {
    const { a2, client } = await recovering()
    const t = client.transcript
    if (t === null) throw new Error('no transcript')
    await client.send(encodeHolds(1_000_000, signReceipt(MALLORY, a2.keys.publicKey, receiptLink(t), 1_000_000)))
    await until(() => a2.gate?.status().need === 1_000_000, 'the lie counted as a claim')
    await until(() => a2.log.held(a2.log.sled) === 30, 'b returned the 30 it holds')
    const s = a2.gate?.status()
    expect(s).toMatchObject({ state: 'waiting', holding: 30, need: 1_000_000, quorum: { answered: 2 } })
    expect(s?.peers.find((p) => p.sled === MALLORY.sled)).toMatchObject({ kind: 'allow-listed', holds: 1_000_000 })
    expect(s?.waitingFor).toContain('its own entries 30..999999')
    // And it stays so: the proof it needs never comes.
    await new Promise((r) => setTimeout(r, 300))
    expect(a2.gate?.waiting).toBe(true)
    expect(isSledlogError(await refusal(a2.log), 'RECOVERING')).toBe(true)
  })

  it('a receipt that does not verify counts for nothing (and is a violation)', async () => {
    const { a2, client } = await recovering(2)
    const t = client.transcript
    if (t === null) throw new Error('no transcript')
    const other = { serverNonce: new Uint8Array(32), clientNonce: t.clientNonce }
    // Bound to another link: a replayed receipt.
    for (let i = 0; i < 3; i++) {
      await client.send(encodeHolds(30, signReceipt(MALLORY, a2.keys.publicKey, other, 30)))
      await new Promise((r) => setTimeout(r, 20))
    }
    expect((await client.waitClose()).code).toBe(CLOSE.VIOLATIONS)
    await until(() => a2.log.held(a2.log.sled) === 30, 'b returned 30')
    const s = a2.gate?.status()
    expect(s).toMatchObject({ state: 'waiting', quorum: { needed: 2, answered: 1 }, missing: [MALLORY.sled] })
    expect(a2.gate?.status().peers.find((p) => p.sled === MALLORY.sled)?.holds).toBeNull()
  })
})

describe('disk loss: a restart during recovery', () => {
  it('stays in recovery (the RECOVERING marker) and remembers what a peer proved', async () => {
    const { a, b } = await pairHolding(30)
    const port = b.port
    await b.stop()
    await a.stop()
    await rm(join(a.dir, 'db'), { recursive: true, force: true })
    const config = {
      dataDir: a.dir,
      host: '127.0.0.1',
      port: 0,
      peers: [b.url],
      allow: [b.keys.sled, MALLORY.sled],
      recoveryQuorum: 1,
    }
    // Starts recovering with b down; an allow-listed peer signs that it holds 40.
    const first = new SledNode(config)
    await first.start()
    expect(first.recovery?.waiting).toBe(true)
    const client = await HostileClient.authenticated(first.url.replace('http:', 'ws:'), { keys: MALLORY })
    onTestFinished(() => client.terminate())
    const t = client.transcript
    if (t === null) throw new Error('no transcript')
    await client.send(encodeHolds(40, signReceipt(MALLORY, a.keys.publicKey, receiptLink(t), 40)))
    await until(() => first.recovery?.status().need === 40, 'the receipt')
    await first.stop()
    const marker = JSON.parse(await readFile(join(a.dir, RECOVERING_FILE), 'utf8')) as { since: number; need: number }
    expect(marker.need).toBe(40)
    // The store exists now, empty. b holds 30 and one answer is the quorum, but the node
    // remembers the 40: it gets b's 30 and keeps waiting.
    await syncNode({ dir: b.dir, port })
    const second = new SledNode(config)
    onTestFinished(() => second.stop())
    await second.start()
    expect(second.recovery?.status()).toMatchObject({ state: 'waiting', since: marker.since, need: 40 })
    await until(() => second.log.held(second.log.sled) === 30, "b's 30 back")
    await until(() => second.recovery?.status().quorum.answered === 1, "b's answer")
    expect(second.recovery?.status()).toMatchObject({ state: 'waiting', holding: 30, need: 40 })
    expect(isSledlogError(await refusal(second.log), 'RECOVERING')).toBe(true)
  })

  it('a marker it cannot parse (an older, empty one) still means recovering; the end is recorded', async () => {
    const { a, b } = await pairHolding(5)
    await a.stop()
    await writeFile(join(a.dir, RECOVERING_FILE), '')
    const node = new SledNode({ dataDir: a.dir, host: '127.0.0.1', port: 0, peers: [b.url] })
    onTestFinished(() => node.stop())
    await node.start()
    expect(node.recovery?.status().need).toBe(0)
    expect(await node.replicator.recovered).toBe('proven')
    // Proven: the node moves to a successor key (the default), which appends from its seq 1.
    await node.succession
    expect(node.log.sled).not.toBe(a.keys.sled)
    expect((await node.log.append({ type: 'y', payload: 0 })).seq).toBe(1)
    expect(existsSync(join(a.dir, RECOVERING_FILE))).toBe(false)
    const recorded = JSON.parse((await node.log.readMeta(RECOVERY_META_KEY)) as string) as { state: string }
    expect(recorded).toMatchObject({ state: 'proven', holding: 5, successor: { sled: node.log.sled, lastSeq: 4 } })
    // Stopped here: the temp dir's cleanup runs before hooks registered after it.
    await node.stop()
  })
})

describe('chunked initial sync', () => {
  it('20k entries (~5 MB) reach an empty node in chunks within maxUpdateBytes, with no rejection', async () => {
    const limits = { maxUpdateBytes: 256 * 1024, chunkBytes: 64 * 1024 }
    const src = await syncNode({ limits, start: false })
    const pad = 'p'.repeat(5)
    for (let k = 0; k < 2; k++) {
      await src.log.appendBatch(
        Array.from({ length: 10_000 }, (_, i) => ({ type: 'bulk', payload: { i: k * 10_000 + i, pad } })),
      )
    }
    src.start()
    const sled = src.log.sled

    // What the node sends when asked for everything: chunks of about chunkBytes, ending in step 2.
    const observer = await HostileClient.authenticated(src.url, { keys: testKeys(401) })
    const from = observer.messages.length
    await observer.sendStep1(new Uint8Array([0]))
    await observer.waitMessage((m): m is Extract<typeof m, { t: 'step2' }> => m.t === 'step2', 'step 2', from, 30_000)
    const chunks = observer.messages.slice(from).flatMap((m) => (m.t === 'update' || m.t === 'step2' ? [m.update] : []))
    const total = chunks.reduce((n, c) => n + c.length, 0)
    const largest = Math.max(...chunks.map((c) => c.length))
    let records = 0
    for (const c of chunks) for (const s of decodeUpdate(c, 64 * 1024).structs) records += s.records.length
    console.log(
      `[chunked sync] ${records} entries, ${(total / 1e6).toFixed(2)} MB in ${chunks.length} chunks, ` +
        `largest ${largest} bytes`,
    )
    expect(records).toBe(20_000)
    expect(total).toBeGreaterThan(4_500_000)
    expect(largest).toBeLessThanOrEqual(limits.chunkBytes + 1024)
    observer.close()

    // A real empty node with the same limits converges without a single rejection.
    const dst = await syncNode({ peers: [src.url], limits })
    const t0 = Date.now()
    await until(() => dst.log.length(sled) === 20_000, 'dst holds 20k entries', 40_000)
    console.log(`[chunked sync] converged in ${Date.now() - t0} ms`)
    expect(dst.log.status().rejected.total).toBe(0)
    expect(dialed(dst, src.url)).toMatchObject({ connected: true, violations: 0, synced: true })
    expect(dialed(dst, src.url)?.rejected).toEqual({})
    expect(recordsOf(dst.log, sled)).toEqual(recordsOf(src.log, sled))

    // A live commit larger than chunkBytes is relayed in chunks too.
    await src.log.appendBatch(Array.from({ length: 1000 }, (_, i) => ({ type: 'live', payload: { i, pad } })))
    await until(() => dst.log.length(sled) === 21_000, 'live batch relayed', 20_000)
    expect(dst.log.status().rejected.total).toBe(0)
    expect(dialed(dst, src.url)?.violations).toBe(0)
  })
})

/**
 * Recovery and bulk sync between in-process nodes (real LevelDB, HTTP server, Replicator):
 * a node that lost its disk gets its entries back before it appends again (it must never
 * re-sign a seq its peers hold), and a large log syncs to an empty node in chunks that respect
 * the receiver's update size limit.
 */
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { decodeUpdate } from '../../src/core/update-codec.js'
import type { SledLog } from '../../src/log/sled-log.js'
import { RECOVERING_FILE, SledNode } from '../../src/node/node.js'
import { KEY_FILE } from '../../src/store/identity.js'
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

describe('disk loss', () => {
  it('a node that lost its db holds appends until a peer returned its entries, then continues at seq 50', async () => {
    const b = await syncNode()
    const a = await syncNode({ peers: [b.url] })
    // a brand-new node with a peer waits for it once (nothing to recover: b is empty)
    expect(await a.rep.recovered).toBe('synced')
    const written = await a.log.appendBatch(
      Array.from({ length: 50 }, (_, i) => ({ type: 'before-loss', payload: { i } })),
    )
    expect(written.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    await until(() => b.log.length(a.log.sled) === 50, 'b holds a’s 50 entries')
    const sled = a.log.sled
    const original = recordsOf(a.log, sled)

    // lose the database, keep the key
    await a.stop()
    await rm(join(a.dir, 'db'), { recursive: true, force: true })
    expect(existsSync(join(a.dir, KEY_FILE))).toBe(true)
    expect(existsSync(join(a.dir, 'db'))).toBe(false)

    const a2 = await syncNode({ dir: a.dir, peers: [b.url], recoveryTimeoutMs: 15_000, start: false })
    expect(a2.log.sled).toBe(sled)
    expect(a2.log.length(sled)).toBe(0)
    a2.start()
    // appends made right after start wait for recovery…
    expect(a2.log.appendsHeld).toBe(true)
    const t0 = Date.now()
    const first = a2.log.append({ type: 'after-loss', payload: 0 })
    const batch = a2.log.appendBatch([
      { type: 'after-loss', payload: 1 },
      { type: 'after-loss', payload: 2 },
    ])
    // …and then get the seqs after the recovered ones: no seq is signed twice
    expect((await first).seq).toBe(50)
    expect((await batch).map((e) => e.seq)).toEqual([51, 52])
    expect(await a2.rep.recovered).toBe('synced')
    expect(Date.now() - t0).toBeLessThan(15_000) // released by the sync, not by the timeout
    expect(a2.log.appendsHeld).toBe(false)
    expect(recordsOf(a2.log, sled).slice(0, 50)).toEqual(original)
    expect(a2.log.status()).toMatchObject({ heads: { [sled]: 52 }, forks: { sleds: 0 }, ownHeadBehind: null })
    await until(() => b.log.length(sled) === 53, 'b got the new entries')
    expect(b.log.status().forks.sleds).toBe(0)
    expect(b.log.status().rejected.total).toBe(0)
    expect(recordsOf(b.log, sled)).toEqual(recordsOf(a2.log, sled))
  })

  it('with no reachable peer the hold ends after recoveryTimeoutMs', async () => {
    const dead = await deadUrl()
    const a = await syncNode({ peers: [dead], recoveryTimeoutMs: 400 })
    expect(a.log.storeCreated).toBe(true)
    expect(a.log.appendsHeld).toBe(true)
    const t0 = Date.now()
    const e = await a.log.append({ type: 'x', payload: 1 })
    const waited = Date.now() - t0
    expect(waited).toBeGreaterThanOrEqual(350)
    expect(waited).toBeLessThan(5000)
    expect(e.seq).toBe(0)
    expect(await a.rep.recovered).toBe('timeout')
    expect(a.log.appendsHeld).toBe(false)
    expect(dialed(a, dead)).toMatchObject({ connected: false })
  })

  it('a node that kept its db does not hold appends', async () => {
    const b = await syncNode()
    const a = await syncNode({ peers: [b.url] })
    await a.rep.recovered
    await a.log.append({ type: 'x', payload: 1 })
    await a.stop()
    const dead = await deadUrl()
    const again = await syncNode({ dir: a.dir, peers: [dead], recoveryTimeoutMs: 10_000 })
    expect(again.log.appendsHeld).toBe(false)
    expect((await again.log.append({ type: 'x', payload: 2 })).seq).toBe(1)
  })
})

describe('disk loss: the hold outlasts what peers still have to send', () => {
  /** Wipes `node`'s database (keeping its key) after stopping it. */
  async function wipe(node: SyncNode): Promise<void> {
    await node.stop()
    await rm(join(node.dir, 'db'), { recursive: true, force: true })
  }

  it('a transfer still running at the timeout keeps the hold: the first append takes the next seq', async () => {
    const b = await syncNode()
    const a = await syncNode({ peers: [b.url], recovery: 'skip' })
    for (let k = 0; k < 4; k++)
      await a.log.appendBatch(
        Array.from({ length: 5000 }, (_, i) => ({ type: 'before', payload: { i: k * 5000 + i } })),
      )
    await until(() => b.log.length(a.log.sled) === 20_000, 'b holds 20k of a', 60_000)
    await wipe(a)
    // 20k verifies take seconds: far past a 100 ms timeout, so only progress can keep the hold.
    const a2 = await syncNode({ dir: a.dir, peers: [b.url], recoveryTimeoutMs: 100, limits: { chunkBytes: 16 * 1024 } })
    expect(a2.log.appendsHeld).toBe(true)
    expect((await a2.log.append({ type: 'after', payload: 0 })).seq).toBe(20_000)
    expect(a2.log.status().forks.sleds).toBe(0)
    await until(() => b.log.length(a2.log.sled) === 20_001, 'b got the new entry')
    expect(b.log.status().forks.sleds).toBe(0)
  })

  it('a node that dials no one is not released by the first peer that dials in', async () => {
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

    const hub2 = await syncNode({ dir: hub.dir, recoveryTimeoutMs: 1500 })
    expect(hub2.log.appendsHeld).toBe(true)
    await syncNode({ dir: s1.dir, peers: [hub2.url] })
    await until(() => hub2.log.length(hub2.log.sled) === 10, 'hub has 10 back from s1')
    const next = hub2.log.append({ type: 'after', payload: 0 })
    // s1 synced, but a spoke that has not dialed in yet may hold more: it does.
    await syncNode({ dir: s2.dir, peers: [hub2.url] })
    expect((await next).seq).toBe(15)
    expect(await hub2.rep.recovered).toBe('timeout')
    expect(hub2.log.status().forks.sleds).toBe(0)
  })
})

describe('disk loss: a restart during recovery', () => {
  it('holds appends again (RECOVERING marker) although the store now exists', async () => {
    const b = await syncNode()
    const a = await syncNode({ peers: [b.url], recovery: 'skip' })
    await a.log.appendBatch(Array.from({ length: 30 }, (_, i) => ({ type: 'before', payload: i })))
    await until(() => b.log.length(a.log.sled) === 30, 'b holds 30')
    await a.stop()
    await rm(join(a.dir, 'db'), { recursive: true, force: true })
    const dead = await deadUrl()
    const config = { dataDir: a.dir, host: '127.0.0.1', port: 0, recoveryTimeoutMs: 60_000 }
    // Starts recovering with no reachable peer, and is stopped before it recovered anything.
    const first = new SledNode({ ...config, peers: [dead] })
    await first.start()
    expect(first.log.appendsHeld).toBe(true)
    await first.stop()
    expect(existsSync(join(a.dir, RECOVERING_FILE))).toBe(true)
    // The store exists now, empty: without the marker this start would append at seq 0.
    const second = new SledNode({ ...config, peers: [b.url] })
    onTestFinished(() => second.stop())
    await second.start()
    expect(second.log.appendsHeld).toBe(true)
    expect((await second.log.append({ type: 'after', payload: 0 })).seq).toBe(30)
    await until(() => !existsSync(join(a.dir, RECOVERING_FILE)), 'marker removed after recovery')
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
    const dst = await syncNode({ peers: [src.url], limits, recovery: 'skip' })
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

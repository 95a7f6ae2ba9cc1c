/**
 * A node that lost its store moves to a successor key once it proved its head (SledNode, real
 * LevelDB, real websockets, in process): the old key signs nothing after the proof but the
 * successor's endorsement, so no seq of it is ever signed twice. A crash in the middle of the
 * move is finished at the next start; an operator's interrupted rotation is not.
 */
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { keyPairFromSeed } from '../../src/core/signing.js'
import { isSledlogError } from '../../src/errors.js'
import { rotateKey, type RotateResult } from '../../src/node/key-rotation.js'
import { RECOVERING_FILE, RECOVERY_META_KEY, SledNode, type NodeConfig } from '../../src/node/node.js'
import { loadIdentity, pendingKeyPath, retiredKeyPath, saveKeyFile } from '../../src/store/identity.js'
import { testKeys } from '../helpers/keys.js'
import { until } from '../helpers/sync-node.js'
import { tempDir } from '../helpers/tmp.js'

/** Starts a node on loopback (port 0), stopped when the test finishes. */
async function node(config: Partial<NodeConfig> & { dataDir: string }): Promise<SledNode> {
  const n = new SledNode({ host: '127.0.0.1', port: 0, peers: [], ...config })
  await n.start()
  onTestFinished(() => n.stop())
  return n
}

/** Node `a` (peer of `b`) wrote `count` entries that `b` holds; `a` is stopped and its store wiped. */
async function lostStore(count: number): Promise<{ aDir: string; b: SledNode; old: SledId }> {
  const b = await node({ dataDir: await tempDir() })
  const aDir = await tempDir()
  const a = await node({ dataDir: aDir, peers: [b.url.replace('http:', 'ws:')] })
  const old = a.log.sled
  await a.append(Array.from({ length: count }, (_, i) => ({ type: 'before', payload: i })))
  await until(() => b.log.held(old) === count, `b holds ${count}`)
  await a.stop()
  await rm(join(aDir, 'db'), { recursive: true, force: true })
  return { aDir, b, old }
}

/** What the node's API answers for a write now: `201` or `<status> <code>`. */
async function post(n: SledNode): Promise<string> {
  const res = await fetch(`${n.url}/v1/events`, {
    method: 'POST',
    body: '[{"type":"probe","payload":null}]',
    headers: { 'content-type': 'application/json' },
  })
  const body = (await res.json()) as { error?: { code?: string } }
  return res.status === 201 ? '201' : `${res.status} ${body.error?.code}`
}

describe('a proven recovery moves the node to a successor key', () => {
  it('endorsed by the old key, vouching for what peers held; the old key is kept retired', async () => {
    const { aDir, b, old } = await lostStore(12)
    const moves: RotateResult[] = []
    const a = await node({ dataDir: aDir, peers: [b.url.replace('http:', 'ws:')], onSuccession: (r) => moves.push(r) })
    expect(a.recovery?.waiting ?? false).toBe(true)
    await until(() => moves.length === 1, 'the move')
    await a.succession
    const successor = a.log.sled
    expect(successor).not.toBe(old)
    expect(moves[0]).toMatchObject({ predecessor: old, successor, lastSeq: 11, reason: 'recovery', endorsed: true })
    expect((await loadIdentity(aDir))?.sled).toBe(successor)
    expect(existsSync(retiredKeyPath(aDir, old))).toBe(true)
    expect(existsSync(join(aDir, RECOVERING_FILE))).toBe(false)
    expect(existsSync(pendingKeyPath(aDir))).toBe(false)
    // The new run needs no recovery: its key is new. The stored outcome names the successor.
    expect(a.recovery).toBeNull()
    const stored = JSON.parse((await a.log.readMeta(RECOVERY_META_KEY)) ?? 'null') as Record<string, unknown>
    expect(stored).toMatchObject({ state: 'proven', mode: 'succession', holding: 12, successor: { sled: successor } })
    // Appends go to the successor (entry 0 is the succession record); the old sled stays at 12.
    expect(await post(a)).toBe('201')
    const [e] = (await a.append([{ type: 'after', payload: 0 }])).entries
    expect(e).toMatchObject({ sled: successor, seq: 2 })
    expect(a.log.held(old)).toBe(12)
    await until(() => b.log.held(successor) === 3, 'b holds the successor')
    expect(b.log.retiredAt(old)).toBe(12)
    expect(b.log.held(old)).toBe(12)
    expect(b.log.status().forks.sleds).toBe(0)
  })

  it('--recovery-mode resume appends on under the old key at the proven head', async () => {
    const { aDir, b, old } = await lostStore(5)
    const a = await node({ dataDir: aDir, peers: [b.url.replace('http:', 'ws:')], recoveryMode: 'resume' })
    expect(await a.replicator.recovered).toBe('proven')
    await until(() => !a.log.appendsHeld, 'the hold to end')
    const [e] = (await a.append([{ type: 'after', payload: 0 }])).entries
    expect(e).toMatchObject({ sled: old, seq: 5 })
    expect((await loadIdentity(aDir))?.sled).toBe(old)
  })

  it('while proven but not yet moved, appends under the old key are refused, never taken', async () => {
    const { aDir, b } = await lostStore(3)
    const a = new SledNode({ host: '127.0.0.1', port: 0, peers: [b.url.replace('http:', 'ws:')], dataDir: aDir })
    onTestFinished(() => a.stop())
    await a.start()
    const oldLog = a.log
    expect(await a.replicator.recovered).toBe('proven')
    // The old log may already be closing: what matters is that it never takes an append.
    const err = await oldLog.append({ type: 'late', payload: 0 }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).not.toBeNull()
    if (isSledlogError(err)) expect(['RECOVERING', 'LOG_CLOSED']).toContain(err.code)
    await a.succession
    expect(a.log.held(oldLog.sled)).toBe(3)
    // Stopped here: the temp dir's cleanup runs before hooks registered after it.
    await a.stop()
  })
})

describe('a move cut short by a crash', () => {
  it('is finished at the next start when the node began it; an operator rotation is left to the operator', async () => {
    const dir = await tempDir()
    const first = await node({ dataDir: dir })
    const old = first.log.sled
    await first.append([{ type: 'e', payload: 0 }])
    await first.stop()
    const next = keyPairFromSeed(testKeys(905).seed)
    // An operator's `rotate-key` that crashed after writing its journal: the node refuses.
    await saveKeyFile(pendingKeyPath(dir), next, { rotation: { predecessor: old, lastSeq: 0, reason: 'rotation' } })
    await expect(new SledNode({ host: '127.0.0.1', port: 0, peers: [], dataDir: dir }).start()).rejects.toMatchObject({
      code: 'KEY_ROTATION_PENDING',
    })
    // The same journal written by the node itself: finished, announced, then started as the successor.
    await rm(pendingKeyPath(dir))
    await saveKeyFile(pendingKeyPath(dir), next, {
      rotation: { predecessor: old, lastSeq: 0, reason: 'recovery', byNode: true },
    })
    const moves: RotateResult[] = []
    const n = await node({ dataDir: dir, onSuccession: (r) => moves.push(r) })
    expect(moves).toMatchObject([{ predecessor: old, successor: next.sled, lastSeq: 0, resumed: true }])
    expect(n.log.sled).toBe(next.sled)
    expect(n.log.retiredAt(old)).toBe(1)
    expect(await post(n)).toBe('201')
  })

  it('killed after the key swap, before the new run recorded it: recorded and announced at next start', async () => {
    const { aDir, b, old } = await lostStore(4)
    const peers = [b.url.replace('http:', 'ws:')]
    const a = await node({ dataDir: aDir, peers })
    await a.succession
    const successor = a.log.sled
    // The state such a kill leaves: the outcome stored before the move, without its successor.
    const stored = JSON.parse((await a.log.readMeta(RECOVERY_META_KEY)) as string) as Record<string, unknown>
    await a.log.writeMeta({ [RECOVERY_META_KEY]: JSON.stringify({ ...stored, successor: null }) })
    await a.stop()
    const moves: RotateResult[] = []
    const again = await node({ dataDir: aDir, peers, onSuccession: (r) => moves.push(r) })
    expect(moves).toMatchObject([{ predecessor: old, successor, lastSeq: 3, reason: 'recovery', endorsed: true }])
    const last = JSON.parse((await again.log.readMeta(RECOVERY_META_KEY)) as string) as Record<string, unknown>
    expect(last).toMatchObject({ state: 'proven', successor: { sled: successor, lastSeq: 3 } })
    await again.stop()
    // Recorded once: the start after that announces nothing.
    const quiet: RotateResult[] = []
    await node({ dataDir: aDir, peers, onSuccession: (r) => quiet.push(r) })
    expect(quiet).toEqual([])
  })
})

describe('a peer that moved to a successor key stays the configured peer it was', () => {
  it('its receipts count for acks and for the recovery quorum of a node that allow-lists the old sled', async () => {
    const bDir = await tempDir()
    const aDir = await tempDir()
    // b dials no one and allow-lists a; a dials b. Both keys exist before the allow-lists name them.
    const b0 = await node({ dataDir: bDir })
    const a0 = await node({ dataDir: aDir })
    const [aOld, bSled] = [a0.log.sled, b0.log.sled]
    await a0.stop()
    await b0.stop()
    const bConfig = { dataDir: bDir, allow: [aOld] }
    const b = await node(bConfig)
    const bUrl = b.url.replace('http:', 'ws:')
    const r = await rotateKey(aDir, { reason: 'rotation' })
    const a = await node({ dataDir: aDir, peers: [bUrl], allow: [bSled] })
    expect(a.log.sled).toBe(r.successor)
    // Admitted by its chain, and counted as the allow-listed sled it succeeds.
    await until(() => b.replicator.status().some((p) => p.sled === r.successor && p.connected), 'a linked to b')
    const acked = await b.append([{ type: 'needs-a', payload: 0 }], { acks: 1, ackTimeoutMs: 5000 })
    expect(acked.acks).toBe(1)
    // b loses its store: its quorum is every allow-listed peer, i.e. a, which answers as its successor.
    const port = Number(new URL(b.url).port)
    await b.stop()
    await rm(join(bDir, 'db'), { recursive: true, force: true })
    const b2 = await node({ ...bConfig, port })
    expect(b2.recovery?.waiting).toBe(true)
    await b2.succession
    expect(b2.log.sled).not.toBe(bSled)
    expect(b2.log.held(bSled)).toBe(1)
    await b2.stop()
  })
})

/**
 * The sync ledger (src/sync/ledger.ts): counts per peer and kind, bounded by folding the least
 * recently counted peers into one row, persisted in a real log's metadata (and never trusting a
 * damaged record), and kicks warned about at most once per peer, code and interval.
 */
import { describe, expect, it } from 'vitest'
import { LEDGER_META_KEY, SyncLedger, type SyncLogger } from '../../src/sync/ledger.js'
import { testLog } from '../helpers/logs.js'

const sled = (c: string) => ({ kind: 'sled' as const, id: c.repeat(64) })
const addr = (a: string) => ({ kind: 'address' as const, id: a })

function recorder(): SyncLogger & { lines: Array<{ obj: Record<string, unknown>; msg: string }> } {
  const lines: Array<{ obj: Record<string, unknown>; msg: string }> = []
  return { lines, warn: (obj, msg) => void lines.push({ obj: { ...obj }, msg }) }
}

describe('SyncLedger', () => {
  it('counts per peer and kind, most recent first, with totals', () => {
    let now = 100
    const l = new SyncLedger({ now: () => now })
    l.count(sled('a'), 'UPDATE_BAD_SIGNATURE')
    l.count(addr('10.0.0.9'), 'http:429', 3)
    now = 200
    l.count(sled('a'), 'UPDATE_BAD_SIGNATURE')
    l.count(sled('a'), 'close:4408', 0) // nothing
    const s = l.snapshot()
    expect(s.peers.map((p) => p.id)).toEqual(['a'.repeat(64), '10.0.0.9'])
    expect(s.peers[0]).toEqual({
      kind: 'sled',
      id: 'a'.repeat(64),
      counts: { UPDATE_BAD_SIGNATURE: 2 },
      firstAt: 100,
      lastAt: 200,
    })
    expect(s.totals).toEqual({ UPDATE_BAD_SIGNATURE: 2, 'http:429': 3 })
  })

  it('is bounded: past maxPeers the least recently counted peer folds into the aggregate', () => {
    const l = new SyncLedger({ maxPeers: 3 })
    for (let i = 0; i < 10; i++) l.count(addr(`10.0.0.${i}`), 'PEER_AUTH_FAILED')
    l.count(addr('10.0.0.7'), 'close:4401')
    const s = l.snapshot()
    expect(s.peers.map((p) => p.id)).toEqual(['10.0.0.7', '10.0.0.9', '10.0.0.8'])
    expect(s.others).toEqual({ peers: 7, counts: { PEER_AUTH_FAILED: 7 } })
    expect(s.totals).toEqual({ PEER_AUTH_FAILED: 10, 'close:4401': 1 })
  })

  it('warns on a kick, then at most once per interval per peer and code, with the repeats left out', () => {
    let now = 0
    const logger = recorder()
    const l = new SyncLedger({ logger, warnEveryMs: 1000, now: () => now })
    l.kick(sled('a'), 4408, 'closing after 3 violations', '10.0.0.1:5000')
    for (let i = 0; i < 5; i++) l.kick(sled('a'), 4408, 'again')
    l.kick(sled('a'), 4510, 'idle') // another code: its own warning
    now = 1000
    l.kick(sled('a'), 4408, 'later')
    expect(logger.lines.map((x) => [x.obj.code, x.obj.repeats])).toEqual([
      [4408, 0],
      [4510, 0],
      [4408, 5],
    ])
    expect(logger.lines[0]).toMatchObject({
      msg: 'replication link closed by this node',
      obj: { peer: 'a'.repeat(64), peerKind: 'sled', reason: 'closing after 3 violations', label: '10.0.0.1:5000' },
    })
    expect(l.snapshot().totals).toEqual({ 'close:4408': 7, 'close:4510': 1 })
  })

  it('persists in the log metadata (at most every persistMs) and survives a restart', async () => {
    const { log } = await testLog()
    const a = new SyncLedger({ log, persistMs: 20 })
    await a.open()
    a.count(sled('a'), 'UPDATE_BAD_SIGNATURE', 2)
    a.kick(sled('a'), 4408, 'violations')
    expect(await log.readMeta(LEDGER_META_KEY)).toBeUndefined() // not at once: at most every persistMs
    let stored: string | undefined
    while (stored === undefined) {
      await new Promise((r) => setTimeout(r, 10))
      stored = await log.readMeta(LEDGER_META_KEY)
    }
    expect(JSON.parse(stored)).toMatchObject({ v: 1, peers: [{ counts: { UPDATE_BAD_SIGNATURE: 2 } }] })
    a.count(addr('10.0.0.5'), 'http:429')
    await a.close() // writes what changed since
    const b = new SyncLedger({ log })
    b.count(sled('a'), 'PEER_PROTOCOL') // counted before the load finished: added, not lost
    await b.open()
    const s = b.snapshot()
    expect(s.peers.find((p) => p.kind === 'sled')?.counts).toEqual({
      UPDATE_BAD_SIGNATURE: 2,
      'close:4408': 1,
      PEER_PROTOCOL: 1,
    })
    expect(s.totals['http:429']).toBe(1)
    await b.close()
  })

  it('drops a damaged or hostile stored record instead of trusting it', async () => {
    const { log } = await testLog()
    for (const bad of [
      'not json',
      '{"v":2,"peers":[]}',
      JSON.stringify({ v: 1, peers: [{ kind: 'sled', id: 'x', counts: { a: -1 }, firstAt: 0, lastAt: 0 }] }),
      JSON.stringify({ v: 1, peers: [{ kind: 'user', id: 'x', counts: {}, firstAt: 0, lastAt: 0 }] }),
      JSON.stringify({ v: 1, peers: 'x', others: { peers: 'many', counts: { a: 1e300 } } }),
    ]) {
      await log.writeMeta({ [LEDGER_META_KEY]: bad })
      const l = new SyncLedger({ log })
      await l.open()
      expect(l.snapshot(), bad).toEqual({ peers: [], others: { peers: 0, counts: {} }, totals: {} })
    }
    // A valid row next to an invalid one: the valid one is kept.
    const mixed = {
      v: 1,
      peers: [
        { kind: 'address', id: '10.0.0.1', counts: { 'http:429': 4 }, firstAt: 1, lastAt: 2 },
        { kind: 'address', id: '10.0.0.2', counts: { 'http:429': 'x' }, firstAt: 1, lastAt: 2 },
      ],
    }
    await log.writeMeta({ [LEDGER_META_KEY]: JSON.stringify(mixed) })
    const l = new SyncLedger({ log })
    await l.open()
    expect(l.snapshot().peers.map((p) => p.id)).toEqual(['10.0.0.1'])
  })
})

import { describe, expect, it } from 'vitest'
import { NodeWatch, type WatchedNode } from '../../src/cli/node-watch.js'
import { createLogger } from '../../src/cli/logger.js'
import type { PeerStatus } from '../../src/sync/replicator.js'

function harness() {
  const lines: Array<Record<string, unknown>> = []
  const logger = createLogger('debug', {
    write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>),
  })
  let peers: PeerStatus[] = []
  let byCode: Record<string, number> = {}
  let ownHeadBehind: { have: number; written: number } | null = null
  let dropped = 0
  const node: WatchedNode = {
    peers: () => peers,
    status: () => ({ rejected: { total: 0, byCode }, ownHeadBehind, writeFailed: null }),
    ingest: () => ({ dropped, error: null }),
  }
  let t = 0
  const watch = new NodeWatch(node, logger, { now: () => t, noisyEveryMs: 10_000 })
  return {
    lines,
    watch,
    msgs: () => lines.map((l) => l.msg),
    set: (o: {
      peers?: PeerStatus[]
      byCode?: Record<string, number>
      behind?: typeof ownHeadBehind
      dropped?: number
      t?: number
    }) => {
      if (o.peers !== undefined) peers = o.peers
      if (o.byCode !== undefined) byCode = o.byCode
      if (o.behind !== undefined) ownHeadBehind = o.behind
      if (o.dropped !== undefined) dropped = o.dropped
      if (o.t !== undefined) t = o.t
    },
  }
}

const link = (over: Partial<PeerStatus>): PeerStatus =>
  ({
    url: 'ws://b:7400',
    connected: true,
    label: 'ws://b:7400',
    sled: 'b'.repeat(64),
    synced: false,
    connectedAt: 1,
    rejected: {},
    ...over,
  }) as PeerStatus

describe('NodeWatch', () => {
  it('logs connect, synced and disconnect once each, and a reconnect as a new link', () => {
    const h = harness()
    h.set({ peers: [{ url: 'ws://b:7400', connected: false }] })
    h.watch.sample()
    expect(h.lines).toEqual([])
    h.set({ peers: [link({})] })
    h.watch.sample()
    h.watch.sample()
    h.set({ peers: [link({ synced: true, entriesReceived: 5 })] })
    h.watch.sample()
    h.set({ peers: [{ url: 'ws://b:7400', connected: false }] })
    h.watch.sample()
    h.set({ peers: [link({ connectedAt: 2 })] })
    h.watch.sample()
    expect(h.msgs()).toEqual(['peer connected', 'peer synced', 'peer disconnected', 'peer connected'])
    expect(h.lines[1]).toMatchObject({ peer: 'ws://b:7400', direction: 'outbound', entriesReceived: 5 })
  })

  it('logs an inbound link that vanished as disconnected', () => {
    const h = harness()
    h.set({ peers: [link({ url: null, label: '10.0.0.3:5555' })] })
    h.watch.sample()
    h.set({ peers: [] })
    h.watch.sample()
    expect(h.lines.map((l) => [l.msg, l.peer, l.direction])).toEqual([
      ['peer connected', '10.0.0.3:5555', 'inbound'],
      ['peer disconnected', '10.0.0.3:5555', 'inbound'],
    ])
  })

  it('logs a failing peer once per change of cause, not once per retry, and again after it linked', () => {
    const h = harness()
    const down = (code: string, at: number): PeerStatus => ({
      url: 'ws://b:7400',
      connected: false,
      lastError: { code, reason: `${code} reason`, at },
    })
    for (let i = 0; i < 5; i++) {
      h.set({ peers: [down('ECONNREFUSED', i)] }) // the dialer retries, same cause each time
      h.watch.sample()
    }
    h.set({ peers: [down('HTTP_429', 10)] })
    h.watch.sample()
    h.watch.sample()
    h.set({ peers: [link({ lastError: { code: 'HTTP_429', reason: '', at: 10 } })] })
    h.watch.sample()
    h.set({ peers: [down('HTTP_429', 20)] })
    h.watch.sample()
    const failing = h.lines.filter((l) => l.msg === 'peer link failing')
    expect(failing.map((l) => l.code)).toEqual(['ECONNREFUSED', 'HTTP_429', 'HTTP_429'])
    expect(failing[0]).toMatchObject({ level: 'warn', peer: 'ws://b:7400', reason: 'ECONNREFUSED reason' })
  })

  it('rate-limits rejections: the first at once, then one summary per interval', () => {
    const h = harness()
    h.set({ byCode: { UPDATE_BAD_SIGNATURE: 1 }, peers: [link({ rejected: { UPDATE_BAD_SIGNATURE: 1 } })] })
    h.watch.sample()
    for (let i = 2; i <= 50; i++) {
      h.set({
        byCode: { UPDATE_BAD_SIGNATURE: i },
        peers: [link({ rejected: { UPDATE_BAD_SIGNATURE: i } })],
        t: i * 100,
      })
      h.watch.sample()
    }
    let warns = h.lines.filter((l) => l.msg === 'updates rejected')
    expect(warns).toHaveLength(1)
    expect(warns[0]).toMatchObject({ level: 'warn', byCode: { UPDATE_BAD_SIGNATURE: 1 }, byPeer: { 'ws://b:7400': 1 } })
    h.set({ t: 10_000 })
    h.watch.sample()
    warns = h.lines.filter((l) => l.msg === 'updates rejected')
    expect(warns).toHaveLength(2)
    expect(warns[1]).toMatchObject({ byCode: { UPDATE_BAD_SIGNATURE: 49 } })
  })

  it('flushes pending summaries on stop and reports own-head loss and recovery', () => {
    const h = harness()
    h.set({ dropped: 3 })
    h.watch.sample()
    h.set({ dropped: 10, behind: { have: 1, written: 2 }, t: 1 })
    h.watch.sample()
    h.set({ behind: null as never })
    h.watch.stop()
    expect(h.lines.filter((l) => String(l.msg).startsWith('ingest events dropped')).map((l) => l.dropped)).toEqual([
      3, 7,
    ])
    expect(h.msgs()).toContain('own entries recovered; appends resume')
  })
})

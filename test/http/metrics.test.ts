/**
 * Peer metric series are stable: an inbound link's ephemeral port never becomes a label, and a
 * sled's inbound links (reconnects racing the old link's close) are one series.
 */
import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { peerGroups } from '../../src/http/metrics.js'
import type { PeerStatus } from '../../src/sync/replicator.js'

const A = 'a'.repeat(64) as SledId
const B = 'b'.repeat(64) as SledId

function link(over: Partial<PeerStatus> & { label: string }): PeerStatus {
  return {
    url: null,
    connected: true,
    role: 'server',
    state: 'ready',
    sled: A,
    synced: true,
    connectedAt: 0,
    violations: 0,
    rejected: {},
    entriesReceived: 0,
    messagesSent: 0,
    liveUpdatesDropped: 0,
    peerLag: 0,
    closeReason: null,
    ...over,
  } as PeerStatus
}

describe('peerGroups', () => {
  it('labels inbound links by remote sled only and aggregates them; outbound by URL', () => {
    const groups = peerGroups([
      link({ label: '127.0.0.1:40001', entriesReceived: 3, rejected: { UPDATE_GAP: 1 } }),
      link({ label: '127.0.0.1:40777', entriesReceived: 4, rejected: { UPDATE_GAP: 2 }, connected: false }),
      link({ label: '10.0.0.9:5555', sled: null, state: 'handshake', synced: false }),
      link({ label: 'ws://b:7400', url: 'ws://b:7400', role: 'client', sled: B, entriesReceived: 9 }),
    ])
    expect(groups.map((g) => g.labels)).toEqual([
      { peer: '', direction: 'in', remote_sled: A },
      { peer: '', direction: 'in', remote_sled: '' },
      { peer: 'ws://b:7400', direction: 'out', remote_sled: B },
    ])
    expect(groups[0]?.links.map((l) => l.entriesReceived)).toEqual([3, 4])
    const labelValues = groups.flatMap((g) => Object.values(g.labels)).join(' ')
    for (const port of ['40001', '40777', '5555']) expect(labelValues).not.toContain(port)
  })
})

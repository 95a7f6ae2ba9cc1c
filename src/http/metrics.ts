/**
 * GET /metrics: the node's counters and gauges in the Prometheus text format (docs/API.md
 * "Metrics"). Read from the node's parts at scrape time, so a scrape costs what /v1/status does.
 */
import type { ApiContext, Handler } from './context.js'
import { Exposition, PROMETHEUS_CONTENT_TYPE, type Sample } from './prometheus.js'
import { sendText } from './respond.js'
import type { PeerStatus } from '../sync/replicator.js'

function byLabel(
  label: string,
  counts: Readonly<Record<string, number | undefined>>,
  extra: Readonly<Record<string, string>> = {},
): Sample[] {
  return Object.entries(counts)
    .filter((e): e is [string, number] => e[1] !== undefined)
    .map(([k, value]) => ({ labels: { ...extra, [label]: k }, value }))
}

/**
 * Labels of each peer link: the dialed URL or the inbound address, the direction, and the
 * remote sled once known. Two links can look alike (a reconnect racing the old link's close);
 * a suffix keeps their series apart, as a repeated series would void the whole scrape.
 */
function peerLabels(peers: readonly PeerStatus[]): Array<{ peer: PeerStatus; labels: Record<string, string> }> {
  const seen = new Map<string, number>()
  return peers.map((peer) => {
    const base = peer.url ?? peer.label ?? 'unknown'
    const direction = peer.url !== null ? 'out' : 'in'
    const key = `${direction} ${base}`
    const n = (seen.get(key) ?? 0) + 1
    seen.set(key, n)
    return { peer, labels: { peer: n === 1 ? base : `${base}#${n}`, direction, remote_sled: peer.sled ?? '' } }
  })
}

/** Renders the exposition. */
export function renderMetrics(ctx: ApiContext): string {
  const status = ctx.log.status()
  const sled = { sled: status.sled }
  const x = new Exposition()
  x.family('sledlog_info', 'gauge', 'Identity of this node (always 1).', [{ labels: sled, value: 1 }])
  x.family(
    'sledlog_appends_total',
    'counter',
    'Entries this process appended to its own sled (events and gap sentinels).',
    ctx.metrics.appends,
  )
  x.family(
    'sledlog_entries',
    'gauge',
    'Entries readers see per sled (all verified; a forked sled only below its fork).',
    Object.entries(status.heads).map(([s, head]) => ({ labels: { sled: s }, value: head + 1 })),
  )
  x.family(
    'sledlog_rejected_total',
    'counter',
    'Updates the guard refused, by error code (from peers and from disk).',
    byLabel('code', status.rejected.byCode),
  )
  x.family('sledlog_duplicates_total', 'counter', 'Records received again that were already held.', status.duplicates)
  x.family(
    'sledlog_forked_sleds',
    'gauge',
    'Sleds known to have signed two versions of a seq (forked: read only below that seq).',
    status.forks.sleds,
  )
  x.family(
    'sledlog_equivocations_total',
    'counter',
    'Validly signed versions received that differ from the one held (each a proof of equivocation).',
    status.forks.equivocations,
  )
  const missing = Object.entries(status.missing)
  x.family(
    'sledlog_missing_ranges',
    'gauge',
    'Seq ranges peers announced but this node does not hold yet, per sled.',
    missing.map(([s, r]) => ({ labels: { sled: s }, value: r.length })),
  )
  x.family(
    'sledlog_missing_entries',
    'gauge',
    'Entries peers announced but this node does not hold yet, per sled.',
    missing.map(([s, r]) => ({ labels: { sled: s }, value: r.reduce((n, [from, to]) => n + to - from + 1, 0) })),
  )
  x.family(
    'sledlog_appends_held',
    'gauge',
    '1 while appends wait for this node to recover its own entries from peers.',
    ctx.log.appendsHeld ? 1 : 0,
  )
  x.family(
    'sledlog_write_failed',
    'gauge',
    '1 after a failed store write: the log refuses writes until reopened.',
    status.writeFailed === null ? 0 : 1,
  )

  const peers = peerLabels(ctx.peers())
  x.family('sledlog_peers', 'gauge', 'Replication links (configured peers and inbound links).', peers.length)
  x.family(
    'sledlog_peer_connected',
    'gauge',
    '1 when the link has completed the handshake and is open.',
    peers.map((p) => ({ labels: p.labels, value: p.peer.connected ? 1 : 0 })),
  )
  x.family(
    'sledlog_peer_synced',
    'gauge',
    '1 once the peer has sent everything it had at connect time.',
    peers.map((p) => ({ labels: p.labels, value: p.peer.synced === true ? 1 : 0 })),
  )
  const withStats = peers.filter((p) => p.peer.state !== undefined)
  x.family(
    'sledlog_peer_lag_entries',
    'gauge',
    "Entries this node holds that the peer's last state vector did not.",
    withStats.map((p) => ({ labels: p.labels, value: p.peer.peerLag ?? 0 })),
  )
  x.family(
    'sledlog_peer_rejected_total',
    'counter',
    'Updates from the peer the guard refused, by error code.',
    withStats.flatMap((p) => byLabel('code', p.peer.rejected ?? {}, p.labels)),
  )
  x.family(
    'sledlog_peer_violations_total',
    'counter',
    'Protocol violations by the peer (the link closes at the budget).',
    withStats.map((p) => ({ labels: p.labels, value: p.peer.violations ?? 0 })),
  )
  x.family(
    'sledlog_peer_entries_received_total',
    'counter',
    'New entries received from the peer.',
    withStats.map((p) => ({ labels: p.labels, value: p.peer.entriesReceived ?? 0 })),
  )
  x.family(
    'sledlog_peer_live_updates_dropped_total',
    'counter',
    "Live relays not sent because the peer's send buffer was full (it fetches them on its next sync).",
    withStats.map((p) => ({ labels: p.labels, value: p.peer.liveUpdatesDropped ?? 0 })),
  )

  const ingest = ctx.ingest.stats()
  x.family('sledlog_ingest_published_total', 'counter', 'Events accepted onto the ingest bus.', ingest.published)
  x.family(
    'sledlog_ingest_dropped_total',
    'counter',
    'Events dropped because the ingest bus was full (recorded in gap sentinels).',
    ingest.dropped,
  )
  x.family('sledlog_ingest_appended_total', 'counter', 'Ingested events appended as entries.', ingest.appended)
  x.family('sledlog_ingest_sentinels_total', 'counter', 'Gap sentinels the ingest writer wrote.', ingest.sentinels)
  x.family(
    'sledlog_ingest_rejected_total',
    'counter',
    'Ingested events the log refused (recorded in sentinels).',
    ingest.rejected,
  )
  x.family(
    'sledlog_ingest_deduplicated_total',
    'counter',
    'Ingested events not appended because their idempotency id was already held.',
    ingest.deduplicated,
  )
  x.family('sledlog_ingest_depth', 'gauge', 'Events waiting on the ingest bus.', ingest.depth)
  x.family('sledlog_ingest_capacity', 'gauge', 'Capacity of the ingest bus, in events.', ingest.capacity)

  x.family('sledlog_subscribers', 'gauge', 'Open event streams.', ctx.subscribers.current)
  x.family('sledlog_subscribers_opened_total', 'counter', 'Event streams opened.', ctx.subscribers.total)
  x.family(
    'sledlog_subscriber_lagged_total',
    'counter',
    'Lagged notices sent to streams whose buffer overflowed.',
    ctx.subscribers.lagged,
  )

  const delay = ctx.metrics.eventLoopDelay()
  const micros = (v: number): number => Math.round(v * 1e6) / 1e6
  const mem = process.memoryUsage()
  x.family(
    'sledlog_event_loop_delay_p99_seconds',
    'gauge',
    '99th percentile of event-loop delay over the last 10 s window.',
    micros(delay.p99),
  )
  x.family(
    'sledlog_event_loop_delay_max_seconds',
    'gauge',
    'Largest event-loop delay over the last 10 s window.',
    micros(delay.max),
  )
  x.family('sledlog_heap_used_bytes', 'gauge', 'V8 heap in use.', mem.heapUsed)
  x.family('sledlog_resident_memory_bytes', 'gauge', 'Resident set size of the process.', mem.rss)
  return x.text()
}

/** GET /metrics. */
export const getMetrics: Handler = (ctx, { res }) => {
  sendText(res, 200, PROMETHEUS_CONTENT_TYPE, renderMetrics(ctx))
}

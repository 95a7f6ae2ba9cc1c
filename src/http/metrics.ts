/**
 * GET /metrics: the node's counters and gauges in the Prometheus text format (docs/API.md
 * "Metrics"). Read from the node's parts at scrape time, so a scrape costs what /v1/status does;
 * the standard process and runtime families come from prom-client (runtime-metrics.ts).
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

/** Links that share one label set, and the labels. */
interface PeerGroup {
  readonly labels: Record<string, string>
  readonly links: PeerStatus[]
}

/**
 * Peer links grouped into stable series: an outbound link by the dialed URL (and the sled it
 * proved), inbound links by the remote sled alone, all of a sled's inbound links in one series.
 * Never by remote address or port: an inbound link's port is ephemeral, so labelling by it would
 * start a new series at every reconnect. Links still in the handshake have remote_sled "".
 */
export function peerGroups(peers: readonly PeerStatus[]): PeerGroup[] {
  const groups = new Map<string, PeerGroup>()
  for (const p of peers) {
    const labels = {
      peer: p.url ?? '',
      direction: p.url !== null ? 'out' : 'in',
      remote_sled: p.sled ?? '',
    }
    const key = `${labels.direction}\0${labels.peer}\0${labels.remote_sled}`
    const g: PeerGroup = groups.get(key) ?? { labels, links: [] }
    g.links.push(p)
    groups.set(key, g)
  }
  return [...groups.values()]
}

const sum = (links: readonly PeerStatus[], f: (p: PeerStatus) => number | undefined): number =>
  links.reduce((n, p) => n + (f(p) ?? 0), 0)

/** Sums each link's per-code rejection counts. */
function rejectedByCode(links: readonly PeerStatus[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of links)
    for (const [code, n] of Object.entries(p.rejected ?? {})) out[code] = (out[code] ?? 0) + (n ?? 0)
  return out
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
    'sledlog_retired_sleds',
    'gauge',
    'Sleds whose key a succession or revocation retired from some seq (their entries from there read retired).',
    status.succession.retired,
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

  const groups = peerGroups(ctx.peers())
  x.family('sledlog_peers', 'gauge', 'Replication links (configured peers and inbound links).', ctx.peers().length)
  x.family(
    'sledlog_peer_links',
    'gauge',
    'Links in the series (inbound links of one sled are one series).',
    groups.map((g) => ({ labels: g.labels, value: g.links.length })),
  )
  x.family(
    'sledlog_peer_connected',
    'gauge',
    '1 when a link of the series has completed the handshake and is open.',
    groups.map((g) => ({ labels: g.labels, value: g.links.some((p) => p.connected) ? 1 : 0 })),
  )
  x.family(
    'sledlog_peer_synced',
    'gauge',
    '1 once a link of the series has sent everything the peer had at connect time.',
    groups.map((g) => ({ labels: g.labels, value: g.links.some((p) => p.synced === true) ? 1 : 0 })),
  )
  const withStats = groups
    .map((g) => ({ labels: g.labels, links: g.links.filter((p) => p.state !== undefined) }))
    .filter((g) => g.links.length > 0)
  x.family(
    'sledlog_peer_lag_entries',
    'gauge',
    "Entries this node holds that the peer's last state vector did not (largest over its links).",
    withStats.map((g) => ({ labels: g.labels, value: Math.max(...g.links.map((p) => p.peerLag ?? 0)) })),
  )
  x.family(
    'sledlog_peer_rejected_total',
    'counter',
    'Updates from the peer the guard refused, by error code.',
    withStats.flatMap((g) => byLabel('code', rejectedByCode(g.links), g.labels)),
  )
  x.family(
    'sledlog_peer_violations_total',
    'counter',
    'Protocol violations by the peer (the link closes at the budget).',
    withStats.map((g) => ({ labels: g.labels, value: sum(g.links, (p) => p.violations) })),
  )
  x.family(
    'sledlog_peer_entries_received_total',
    'counter',
    'New entries received from the peer.',
    withStats.map((g) => ({ labels: g.labels, value: sum(g.links, (p) => p.entriesReceived) })),
  )
  x.family(
    'sledlog_peer_live_updates_dropped_total',
    'counter',
    "Live relays not sent because the peer's send buffer was full (it fetches them on its next sync).",
    withStats.map((g) => ({ labels: g.labels, value: sum(g.links, (p) => p.liveUpdatesDropped) })),
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
  x.family(
    'sledlog_subscribers_refused_total',
    'counter',
    'Event streams refused at the cap on open streams (429).',
    ctx.subscribers.refused,
  )
  x.family(
    'sledlog_subscribers_cut_off_total',
    'counter',
    'Event streams cut off because the client stopped reading or fell too far behind, by reason.',
    byLabel('reason', ctx.subscribers.cutOff),
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
  for (const source of ctx.metricsSources) source(x)
  return x.text()
}

/** GET /metrics: sledlog's families, then the standard process and runtime metrics. */
export const getMetrics: Handler = async (ctx, { res }) => {
  const own = renderMetrics(ctx)
  sendText(res, 200, PROMETHEUS_CONTENT_TYPE, own + (await ctx.runtime.text()))
}

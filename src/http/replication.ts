/**
 * Replication's own counters in the API (src/sync/ledger.ts, answer-scheduler.ts): a
 * `replication` section of GET /v1/status and the `sledlog_sync_*` families of /metrics. The
 * ledger keeps every rejection and kick per peer for good; metrics carry only its totals, by kind,
 * so a stranger cycling through keys cannot grow the number of series.
 */
import type { ReplicationStats } from '../sync/replicator.js'
import type { MetricsSource, StatusSection } from './context.js'

/** The `replication` section of GET /v1/status. */
export function replicationSection(stats: () => ReplicationStats): StatusSection {
  return { name: 'replication', read: stats }
}

/** The replication families of /metrics. */
export function replicationMetrics(stats: () => ReplicationStats): MetricsSource {
  return (x) => {
    const s = stats()
    x.family(
      'sledlog_sync_ledger_total',
      'counter',
      'Rejections, refused upgrades (http:<status>) and closes (close:<code>) of peer links, by kind, ' +
        'over every peer since the ledger began (it persists across restarts).',
      Object.entries(s.ledger.totals).map(([kind, value]) => ({ labels: { kind }, value })),
    )
    x.family('sledlog_sync_handshaking', 'gauge', 'Inbound connections in the handshake now.', s.handshaking)
    x.family('sledlog_sync_answers_active', 'gauge', 'Step-1 answers streaming now.', s.answers.active)
    x.family('sledlog_sync_answers_waiting', 'gauge', 'Step-1 answers waiting for their turn.', s.answers.waiting)
  }
}

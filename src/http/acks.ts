/**
 * Replicated acknowledgements in the API: the `acks` section of GET /v1/status and the
 * `sledlog_ack_*` families of /metrics (docs/API.md). The counts are the node's append path's
 * (src/node/acked-appends.ts); per-peer series are bounded by the configured peers, never by
 * whoever connects.
 */
import type { AckPeer } from '../sync/peer-holds.js'
import type { MetricsSource, StatusSection } from './context.js'
import type { HistogramSnapshot } from './histogram.js'

/** Longest wait for acknowledgements a write may ask for, ms (a client holding a request longer is stuck). */
export const MAX_ACK_TIMEOUT_MS = 600_000

/** What the node's append path reports about acknowledgements. */
export interface AckStats {
  /** Acknowledgements a write waits for when it does not say (`--min-acks`). */
  readonly minAcks: number
  /** How long a write waits for them when it does not say (`--ack-timeout`), ms. */
  readonly ackTimeoutMs: number
  /** Configured peers: the most acknowledgements a write may ask for. */
  readonly configuredPeers: number
  /** Configured peers with a link ready now. */
  readonly connectedPeers: number
  /** Each configured peer known by sled, and how much of this node's sled it proved it holds. */
  readonly peers: readonly AckPeer[]
  /** Writes waiting for acknowledgements now. */
  readonly waiting: number
  /** Writes acknowledged by the peers they asked for (acks ≥ 1). */
  readonly acked: number
  /** Writes whose acknowledgements did not come in time (ACKS_TIMEOUT; their entries are stored). */
  readonly timeouts: number
  /** Writes refused before signing because too few configured peers were connected (NOT_ENOUGH_PEERS). */
  readonly refused: number
}

/** The `acks` section of GET /v1/status. */
export function ackSection(stats: () => AckStats): StatusSection {
  return { name: 'acks', read: stats }
}

/** The acknowledgement families of /metrics. */
export function ackMetrics(stats: () => AckStats, waits: () => HistogramSnapshot): MetricsSource {
  return (x) => {
    const s = stats()
    x.histogram(
      'sledlog_ack_wait_seconds',
      'Time from a write being durable on this node to the acknowledgements it asked for (acks >= 1).',
      waits(),
    )
    x.family(
      'sledlog_ack_timeouts_total',
      'counter',
      'Writes stored on this node whose acknowledgements did not come in time (ACKS_TIMEOUT).',
      s.timeouts,
    )
    x.family(
      'sledlog_acks_refused_total',
      'counter',
      'Writes refused before signing: fewer configured peers connected than they asked for (NOT_ENOUGH_PEERS).',
      s.refused,
    )
    x.family('sledlog_ack_waiting', 'gauge', 'Writes waiting for acknowledgements now.', s.waiting)
    x.family(
      'sledlog_ack_peer_holds_entries',
      'gauge',
      "Entries of this node's sled each configured peer proved (signed receipt) it durably holds.",
      s.peers.flatMap((p) => (p.holdsOurs === null ? [] : [{ labels: { remote_sled: p.sled }, value: p.holdsOurs }])),
    )
  }
}

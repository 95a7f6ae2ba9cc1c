/**
 * Which replication links carry a committed change. Pure.
 *
 * A node may hold several links to one peer (in a mesh where both sides dial, two per pair).
 * Sending every commit on every link made each entry cross the network about ten times in a
 * 3-node mesh. The plan sends a change once per peer, and never to the peer it came from:
 *
 * - links to the sled the change came from (over any of its links) only note that the peer
 *   holds it;
 * - of the other links to one sled, the first ready one (the oldest, so the choice is stable)
 *   sends; the rest only note that the peer holds it.
 *
 * What a dropped link had sent but the peer never received is not lost: the peer's guard sees
 * the next update start past its head (UPDATE_GAP) and asks with a step 1, and every link
 * resyncs periodically (PROTOCOL.md §8.3).
 */
import type { SledId } from '../core/ids.js'

/** What the plan needs of a link. */
export interface RelayLink {
  /** The authenticated peer, once known. */
  readonly remoteSled: SledId | null
  /** Handshake done and not closed. */
  readonly ready: boolean
}

/** What one link does with a change: send it, or only note that the peer holds it. */
export type RelayAction = 'send' | 'held'

/**
 * Plans a commit's relay over `links` (in the order they opened). `origin` is the link the
 * change arrived on, or anything else (undefined for a local append). Links that are not ready
 * are left out of the plan.
 */
export function planRelay<L extends RelayLink>(links: Iterable<L>, origin: unknown): Map<L, RelayAction> {
  // The origin may have closed (and left `links`) while its update was being committed.
  const fromSled = isLink(origin) ? origin.remoteSled : null
  const plan = new Map<L, RelayAction>()
  const served = new Set<SledId>()
  for (const link of links) {
    if (!link.ready) continue
    const sled = link.remoteSled
    if (link === origin || (sled !== null && sled === fromSled)) {
      plan.set(link, 'held')
    } else if (sled !== null && served.has(sled)) {
      plan.set(link, 'held')
    } else {
      if (sled !== null) served.add(sled)
      plan.set(link, 'send')
    }
  }
  return plan
}

function isLink(x: unknown): x is RelayLink {
  return typeof x === 'object' && x !== null && 'remoteSled' in x
}

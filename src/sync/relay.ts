/**
 * What a node sends its peers unasked: every committed change, once per peer (relay-plan.ts),
 * and every change of a fork state, at once, to every peer (PROTOCOL.md §8.3).
 *
 * Fork proofs used to spread only through answers to a step 1, and a node that already held the
 * fork seq got them only after a digest mismatch made it refetch the whole sled (at most once a
 * minute per sled on each side): one hop per minute. Two records per change is cheap, and a peer
 * that holds the slot joins the fork at once; one that does not yet fetches the range (a gap).
 * Each link carries a given proof once (PeerSession.offerFork).
 */
import type { SledLog } from '../log/sled-log.js'
import type { PeerSession } from './peer-session.js'
import { planRelay } from './relay-plan.js'

/**
 * Relays `log`'s commits and fork changes over `sessions` (the live set of links, in the order
 * they opened; read at each event). Returns the function that stops relaying.
 */
export function relayLog(log: SledLog, sessions: Iterable<PeerSession>): () => void {
  const stopCommits = log.onCommit((event) => {
    for (const [s, action] of planRelay(sessions, event.origin)) {
      if (action === 'send') s.relay(event)
      else s.noteHeld(event)
    }
  })
  const stopForks = log.onFork((sled) => {
    for (const s of sessions) s.offerFork(sled)
  })
  return () => {
    stopCommits()
    stopForks()
  }
}

/**
 * Websocket close codes of the sync protocol (docs/PROTOCOL.md §8.5). Pure.
 *
 * 44xx means "refused": y-websocket stops reconnecting on them and sledlog's dialer tries once
 * more after `refusedRetryMs`. 45xx and 1xxx are transient: the dialer reconnects with backoff.
 */

/** Close codes sledlog sends. */
export const CLOSE = {
  /** Handshake signature, token or version wrong. */
  AUTH_FAILED: 4401,
  /** Sled not on the allow-list. */
  NOT_ALLOWED: 4403,
  /** Too many violations (closed by the server). */
  VIOLATIONS: 4408,
  /** Connected to itself. */
  SELF: 4409,
  /** Handshake did not finish in time. */
  HANDSHAKE_TIMEOUT: 4508,
  /** The server misbehaved (closed by the client). */
  PEER_MISBEHAVED: 4509,
  /** No message from the peer for `idleMs`. */
  IDLE: 4510,
  /** Our step 1 went unanswered: nothing of the answer arrived for `answerTimeoutMs`. */
  SYNC_STALLED: 4511,
  /** The server's link cap is reached: refused, or evicted to make room for a preferred peer. */
  LINK_LIMIT: 4512,
  /** A pending handshake evicted to give its slot to a newer connection. */
  HANDSHAKE_EVICTED: 4513,
  /** Node shutting down. */
  SHUTDOWN: 1001,
  /** Message larger than the receiver's limit (sent by ws itself). */
  TOO_LARGE: 1009,
} as const

/** True for a close that means "refused" (44xx): not retried at backoff speed. */
export function isRefusal(code: number): boolean {
  return code >= 4400 && code < 4500
}

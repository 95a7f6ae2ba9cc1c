/**
 * Recovery in the API (docs/API.md "Recovery"): the `recovery` section of GET /v1/status, its
 * /metrics families, and the operator's decision route, POST /v1/recovery/accept-head-risking-fork
 * (admin scope). The gate itself is src/sync/recovery.ts; the node hands the API a
 * {@link RecoveryControl} over it.
 */
import { sledlogError, type SledlogError } from '../errors.js'
import type { RecoveryStatus } from '../sync/recovery.js'
import { readJson, strictObject } from './body.js'
import type { Handler, MetricsSource, StatusSection } from './context.js'
import { sendJson } from './respond.js'

/** `recovery` in GET /v1/status of a node with no recovery this run: the last one, if any. */
export interface NoRecoveryStatus {
  readonly state: 'not-needed'
  /** How the last recovery of this store ended (kept in its metadata), or null. */
  readonly last: RecoveryStatus | null
}

/** What the API may do with a node's recovery. */
export interface RecoveryControl {
  /** The `recovery` section of GET /v1/status. */
  status(): RecoveryStatus | NoRecoveryStatus
  /** While recovering: the error writes are refused with (RECOVERING); null otherwise. */
  refusal(): SledlogError | null
  /**
   * The operator's decision to append from `head` own entries without proof (throws
   * RECOVERY_NOT_ACCEPTED when not recovering or when the head moved).
   */
  acceptHead(head: number, by: string): RecoveryStatus
}

/** Throws RECOVERING while the node is recovering (before a write reads its body). */
export function assertNotRecovering(recovery: RecoveryControl | null): void {
  const refusal = recovery?.refusal() ?? null
  if (refusal !== null) throw refusal
}

/**
 * POST /v1/recovery/accept-head-risking-fork, body `{"head": N}`: N is the count of own entries
 * the operator saw in the status (`recovery.holding`) and accepts as the head; a node whose head
 * moved since answers 409 RECOVERY_NOT_ACCEPTED, so a decision is never applied to a state
 * nobody looked at.
 */
export const postAcceptHead: Handler = async (ctx, { req, res, principal }) => {
  const body = strictObject(await readJson(req, res, 4096), 'body', ['head'])
  const head = body.head
  if (typeof head !== 'number' || !Number.isSafeInteger(head) || head < 0)
    throw sledlogError(
      'HTTP_BAD_REQUEST',
      'body.head must be the number of own entries the node holds (GET /v1/status: recovery.holding)',
    )
  if (ctx.recovery === null) throw sledlogError('RECOVERY_NOT_ACCEPTED', 'this node is not recovering')
  const by = principal.kind === 'token' ? `token ${principal.id}` : `address ${principal.address}`
  sendJson(res, 200, { recovery: ctx.recovery.acceptHead(head, by) })
}

/** The `recovery` section of GET /v1/status. */
export function recoverySection(recovery: RecoveryControl): StatusSection {
  return { name: 'recovery', read: () => recovery.status() }
}

/** The `sledlog_recovery_*` families of /metrics (zero when not recovering, so series stay stable). */
export function recoveryMetrics(recovery: RecoveryControl): MetricsSource {
  return (x) => {
    const s = recovery.status()
    const r = s.state === 'not-needed' ? null : s
    const waiting = r?.state === 'waiting'
    x.family(
      'sledlog_recovery_waiting',
      'gauge',
      '1 while writes are refused until this node has proven its own head after a lost store.',
      waiting ? 1 : 0,
    )
    x.family(
      'sledlog_recovery_quorum_needed',
      'gauge',
      'Configured peers whose receipts the recovery needs (0: not recovering, or no configured peer).',
      waiting ? (r?.quorum.needed ?? 0) : 0,
    )
    x.family(
      'sledlog_recovery_peers_answered',
      'gauge',
      "Configured peers that signed how many of this node's entries they hold, during a recovery.",
      waiting ? (r?.quorum.answered ?? 0) : 0,
    )
    x.family(
      'sledlog_recovery_own_entries_needed',
      'gauge',
      'Own entries a recovering node knows exist (longest receipt or signed record).',
      waiting ? (r?.need ?? 0) : 0,
    )
    x.family(
      'sledlog_recovery_own_entries_held',
      'gauge',
      'Own entries a recovering node holds now.',
      waiting ? (r?.holding ?? 0) : 0,
    )
    x.family(
      'sledlog_recovery_timeout_warnings_total',
      'counter',
      'Recovery timeout warnings of this run: the timeout warns, it never ends a recovery.',
      r?.warnings ?? 0,
    )
  }
}

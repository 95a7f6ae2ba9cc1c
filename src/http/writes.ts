/**
 * Whether the ingest bus takes events. It closes when the node stops or when its writer hit a
 * failed log write; publishing onto a closed bus throws a plain error, which would answer 500.
 */
import { sledlogError } from '../errors.js'
import { assertAcceptingWrites, type ApiContext } from './context.js'

/**
 * Throws when the ingest bus no longer accepts events: NODE_STOPPING when the node is stopping
 * (the bus closes first thing in a shutdown, whoever stops the node), STORE_WRITE_FAILED when the
 * writer stopped after a failed write (the log refuses writes until the node restarts).
 */
export function assertIngestOpen(ctx: ApiContext): void {
  assertAcceptingWrites(ctx)
  if (!ctx.ingest.bus.closed) return
  const error = ctx.ingest.stats().error
  if (error !== null)
    throw sledlogError('STORE_WRITE_FAILED', `ingest stopped after a failed write (${error}); restart the node`)
  throw sledlogError('NODE_STOPPING', 'the node is shutting down; retry on another node or after restart')
}

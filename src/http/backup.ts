/**
 * GET /v1/backup (admin scope): a consistent backup of the node (docs/PROTOCOL.md §7.4), streamed
 * as it is read. One at a time: a backup reads every record the node holds, and a second one
 * would only halve the speed of both. A client that stops reading for the streams' stall time is
 * cut off (its file then lacks the trailer and is refused), so it cannot pin the snapshot forever.
 */
import type { ServerResponse } from 'node:http'
import { takeSnapshot } from '../backup/snapshot.js'
import { sledlogError } from '../errors.js'
import type { Handler } from './context.js'

/** Seconds a refused second backup is told to wait (`Retry-After`). */
const BUSY_RETRY_S = 10

/** Resolves once `res` drains; rejects when the client read nothing for `stallMs` or went away. */
function drained(res: ServerResponse, stallMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer)
      res.off('drain', onDrain)
      res.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new Error('the client went away'))
    const timer = setTimeout(() => done(new Error(`the client read nothing for ${stallMs} ms`)), stallMs)
    res.on('drain', onDrain)
    res.on('close', onClose)
  })
}

/** GET /v1/backup. */
export const getBackup: Handler = async (ctx, { res }) => {
  if (ctx.backups.active)
    throw sledlogError('BACKUP_BUSY', 'another backup of this node is streaming; retry when it ends', {
      retryAfter: BUSY_RETRY_S,
    })
  ctx.backups.active = true
  try {
    const backup = await takeSnapshot(ctx.log)
    res.writeHead(200, {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'cache-control': 'no-store',
      'x-sledlog-backup-records': String(backup.records),
    })
    for await (const chunk of backup.chunks()) {
      if (ctx.lifecycle.stopping) throw sledlogError('NODE_STOPPING', 'the node is shutting down')
      if (res.destroyed) return
      if (!res.write(chunk)) await drained(res, ctx.streams.stallMs)
    }
    res.end()
  } catch (err) {
    // Past the headers the only signal left is a cut: the file then lacks its trailer.
    if (res.headersSent) {
      ctx.logger.warn?.({ err: String(err) }, 'backup stream cut off')
      res.destroy()
      return
    }
    throw err
  } finally {
    ctx.backups.active = false
  }
}

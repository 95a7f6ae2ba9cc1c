/**
 * Group "backup": throughput of backup, restore and export (docs/PROTOCOL.md §7.3, §7.4) at 100k
 * entries (20k with --quick) on real LevelDB: a backup of a stopped node's directory, one of a
 * running node over HTTP (GET /v1/backup, written and checked by the CLI's writer), a restore
 * (every record through the full guard, then a full verify), and an export with its verification.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { exportLines } from '../../src/backup/export.js'
import { backupDataDir, writeChecked } from '../../src/cli/commands/backup.js'
import { logSource } from '../../src/cli/commands/export.js'
import { restoreBackup } from '../../src/cli/commands/restore.js'
import { verifyExport } from '../../src/cli/commands/verify.js'
import { NodeClient } from '../../src/cli/http-client.js'
import { openLog } from '../../src/log/open-log.js'
import { SledNode } from '../../src/node/node.js'
import { makeEvent, now, type BenchContext, type BenchGroup } from './harness.js'

const SILENT_IO = {
  stdout: { write: () => true, once: () => undefined },
  stderr: { write: () => true, once: () => undefined },
  stdin: (async function* () {})(),
  env: {},
}

/** A stopped node's data directory holding `n` events of its own sled (~250-byte payloads). */
async function dataDir(ctx: BenchContext, n: number): Promise<string> {
  const dir = await ctx.tempDir('backup-src')
  const log = await openLog(dir)
  try {
    for (let i = 0; i < n; i += 10_000)
      await log.appendBatch(Array.from({ length: Math.min(10_000, n - i) }, (_, k) => makeEvent(i + k)))
  } finally {
    await log.close()
  }
  return dir
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`

async function backupAndRestore(ctx: BenchContext): Promise<void> {
  const n = ctx.quick ? 20_000 : 100_000
  ctx.progress(`writing ${n} entries`)
  const src = await dataDir(ctx, n)
  const work = await ctx.tempDir('backup-out')

  const file = join(work, 'data.backup')
  let t0 = now()
  const made = await backupDataDir(src, file, SILENT_IO)
  let ms = now() - t0
  const bytes = (await stat(file)).size
  ctx.record(
    'backup-data',
    'entries/s',
    (made.records / ms) * 1000,
    'entries/s',
    `${n} entries, ${mb(bytes)}, open included`,
  )

  // A running node answering GET /v1/backup, written and checked as `sledlog backup --url` does.
  const node = new SledNode({ dataDir: src, host: '127.0.0.1', port: 0, peers: [] })
  await node.start()
  try {
    const client = new NodeClient(node.url)
    const out = join(work, 'http.backup')
    t0 = now()
    const answer = await client.stream('/v1/backup', {}, new AbortController().signal)
    const got = await writeChecked(out, answer.body, () => undefined)
    ms = now() - t0
    client.close()
    ctx.record('backup-http', 'entries/s', (got.records / ms) * 1000, 'entries/s', `${n} entries over HTTP, checked`)
  } finally {
    await node.stop()
  }

  t0 = now()
  let applied = 0
  const restored = await restoreBackup({
    input: createReadStream(file),
    dir: join(work, 'restored'),
    onProgress: (done) => {
      applied = done
    },
  })
  ms = now() - t0
  if (restored.records !== n || applied !== n) throw new Error(`restored ${restored.records} of ${n}`)
  ctx.record('restore', 'entries/s', (n / ms) * 1000, 'entries/s', `${n} entries: guard (full) + full verify`)

  const log = await openLog(join(work, 'restored'))
  const exported = join(work, 'export.ndjson')
  try {
    const { createWriteStream } = await import('node:fs')
    const w = createWriteStream(exported)
    t0 = now()
    for await (const text of exportLines(logSource(log)))
      if (!w.write(text)) await new Promise<void>((r) => w.once('drain', () => r()))
    await new Promise<void>((r) => w.end(() => r()))
    ms = now() - t0
  } finally {
    await log.close()
  }
  ctx.record('export', 'entries/s', (n / ms) * 1000, 'entries/s', `${n} entries from a stopped node's log`)
  t0 = now()
  const report = await verifyExport(createReadStream(exported))
  ms = now() - t0
  if (!report.ok || report.verified !== n) throw new Error(`export verified ${report.verified} of ${n}`)
  ctx.record('verify-export', 'entries/s', (n / ms) * 1000, 'entries/s', `${n} records, every signature`)
}

/** The group. */
export const backupGroup: BenchGroup = {
  name: 'backup',
  description: 'backup (stopped and running node), restore (guard + verify), export and its verification',
  scenarios: [{ name: 'throughput', run: backupAndRestore }],
}

/**
 * Child process of the "single-node" open scenarios: opens a log directory in a fresh process,
 * the way a restarted node does, and reports open time and heap.
 *
 * Usage: node --expose-gc --import tsx scripts/bench/open-child.ts <dir> <mac|full>
 * Prints one JSON line.
 */
import { openLog } from '../../src/log/open-log.js'
import { cpuMicros, fullGc, now } from './harness.js'

const [dir, mode] = process.argv.slice(2)
if (dir === undefined || (mode !== 'mac' && mode !== 'full')) throw new Error('usage: open-child.ts <dir> <mac|full>')
if (!fullGc()) throw new Error('run with --expose-gc')

const before = process.memoryUsage()
const c0 = cpuMicros()
const t0 = now()
const log = await openLog(dir, { verifyOnOpen: mode })
const openMs = now() - t0
const openCpuMs = (cpuMicros() - c0) / 1000
// Process start to a usable log: node + tsx startup, module loading, open.
const readyUptimeMs = process.uptime() * 1000
const status = log.status()
fullGc()
const after = process.memoryUsage()
const t1 = now()
await log.close()
const closeMs = now() - t1
process.stdout.write(
  JSON.stringify({
    mode,
    entries: status.entries,
    rejected: status.rejected.total,
    updatesSinceSnapshot: status.store.updatesSinceSnapshot,
    snapshotBytes: status.store.snapshotBytes,
    openMs,
    openCpuMs,
    readyUptimeMs,
    closeMs,
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    rssAfter: after.rss,
    externalAfter: after.external,
    arrayBuffersAfter: after.arrayBuffers,
  }) + '\n',
)

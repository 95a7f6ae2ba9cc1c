/**
 * Child process of the "yjs-baseline" group: pushes sledlog-shaped records into a plain Y.Array
 * (no signing, no guard, no persistence) in a fresh process, so that yjs' `ContentAny` is either
 * patched by installLinearMerge or untouched.
 *
 * Usage: node --expose-gc --import tsx scripts/bench/yjs-child.ts <linear|plain> <batch> <m1,m2,...>
 * Prints one JSON line: per milestone, the pushes/s since the previous one, plus heap figures.
 */
import { randomBytes } from 'node:crypto'
import * as Y from 'yjs'
import { encodeEntryJson } from '../../src/core/entry.js'
import { clientIdOf, rootNameOf, sledIdFromPublicKey } from '../../src/core/ids.js'
import { installLinearMerge } from '../../src/log/yjs-linear.js'
import { cpuMicros, fullGc, makePayload, now } from './harness.js'

const [mode, batchArg, milestonesArg] = process.argv.slice(2)
if ((mode !== 'linear' && mode !== 'plain') || batchArg === undefined || milestonesArg === undefined) {
  throw new Error('usage: yjs-child.ts <linear|plain> <batch> <m1,m2,...>')
}
const batch = Number(batchArg)
const milestones = milestonesArg.split(',').map(Number)
if (mode === 'linear') installLinearMerge()

const sled = sledIdFromPublicKey(randomBytes(32))
const FAKE_SIG = 'A'.repeat(85) + 'A'
/** The record sledlog would store for seq `i`, with a placeholder signature. */
const record = (i: number): string =>
  FAKE_SIG +
  '.' +
  encodeEntryJson({ sled, seq: i, ts: Date.now(), kind: 'event', type: 'bench.event', payload: makePayload(i) })

/**
 * JIT warm-up on a throwaway doc, so the first milestone measures steady state. In a function of
 * its own, so that no interpreter register of the module keeps the doc alive for the heap reading.
 */
function warmUp(): void {
  const warm = new Y.Doc({ gc: false })
  const a = warm.getArray<string>('warm')
  for (let i = 0; i < 20_000; i++) a.push([record(i)])
  warm.destroy()
}
warmUp()

fullGc()
const heapBefore = process.memoryUsage().heapUsed
const doc = new Y.Doc({ gc: false })
doc.clientID = clientIdOf(sled)
const arr = doc.getArray<string>(rootNameOf(sled))

const decades: Array<{ to: number; pushesPerS: number; seconds: number; cpuUsPerPush: number }> = []
let n = 0
let recordChars = 0
const tStart = now()
for (const m of milestones) {
  const c0 = cpuMicros()
  const t0 = now()
  const from = n
  while (n < m) {
    const k = Math.min(batch, m - n)
    if (k === 1) {
      const r = record(n)
      recordChars += r.length
      arr.push([r])
    } else {
      const items: string[] = []
      for (let i = 0; i < k; i++) items.push(record(n + i))
      for (const r of items) recordChars += r.length
      arr.push(items)
    }
    n += k
  }
  const seconds = (now() - t0) / 1000
  decades.push({ to: m, pushesPerS: (n - from) / seconds, seconds, cpuUsPerPush: (cpuMicros() - c0) / (n - from) })
}
const totalSeconds = (now() - tStart) / 1000
// Encoding the doc (as any persisted or replicated doc is) also flattens the records, which are
// concatenated strings until something reads them; sledlog's records are flattened the same way
// when their update is encoded. Outside the timed part.
const updateBytes = Y.encodeStateAsUpdate(doc).length
fullGc()
const heapAfter = process.memoryUsage().heapUsed
const structs = doc.store.clients.get(doc.clientID)?.length ?? 0
if (arr.length !== n) throw new Error(`array holds ${arr.length}, pushed ${n}`)
process.stdout.write(
  JSON.stringify({
    mode,
    batch,
    entries: n,
    decades,
    totalSeconds,
    heapBytes: heapAfter - heapBefore,
    updateBytes,
    structs,
    avgRecordChars: recordChars / n,
  }) + '\n',
)

/**
 * Group "succession": what key succession costs (docs/PROTOCOL.md §6.5, §8.2). The read path of
 * a 100k-entry log with and without a retired sled (every entry read is checked against its
 * sled's retirement seq), the per-record scan the log runs on every applied record to find
 * statements, and the handshake: the size of a prove with a chain, and the time to check one.
 */
import { randomBytes } from 'node:crypto'
import { MemoryLevel } from 'memory-level'
import {
  createSigner,
  createVerifier,
  endorseSuccession,
  keyPairFromSeed,
  signRevocation,
  type KeyPair,
} from '../../src/core/signing.js'
import { admitByChain, isStatementRecord } from '../../src/core/succession.js'
import { encodeRuns } from '../../src/core/update-codec.js'
import { clientIdOf, rootNameOf } from '../../src/core/ids.js'
import type { StoredEntry } from '../../src/core/query.js'
import { SledLog } from '../../src/log/sled-log.js'
import { deriveMacKey, LevelStore } from '../../src/store/level-store.js'
import { encodeProve } from '../../src/sync/messages.js'
import { makeEvent, measureRate, now, type BenchContext, type BenchGroup } from './harness.js'

/** A log on an in-memory database holding `n` events of this node's own sled. */
async function logOf(n: number): Promise<{ log: SledLog; keys: KeyPair }> {
  const keys = keyPairFromSeed(randomBytes(32))
  const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' })
  const log = new SledLog({ keys, store: new LevelStore({ db, macKey: deriveMacKey(keys.seed) }) })
  await log.open()
  for (let i = 0; i < n; i += 10_000)
    await log.appendBatch(Array.from({ length: Math.min(10_000, n - i) }, (_, k) => makeEvent(i + k)))
  return { log, keys }
}

/** Reads every entry page by page; returns ms and the entries flagged retired. */
function scan(log: SledLog): { ms: number; retired: number } {
  const t0 = now()
  let retired = 0
  let page = log.query({ limit: 10_000 })
  for (;;) {
    for (const e of page.entries) if (e.retired === true) retired++
    if (page.next === null) break
    page = log.query({ after: page.next, limit: 10_000 })
  }
  return { ms: now() - t0, retired }
}

async function readPath(ctx: BenchContext): Promise<void> {
  const n = ctx.quick ? 20_000 : 100_000
  const plain = await logOf(n)
  const revoked = await logOf(n)
  try {
    // The second log's sled revokes itself from the middle, carried by another sled: half of its
    // entries read flagged. Scans alternate between the two logs, so load swings hit both alike.
    const x = keyPairFromSeed(randomBytes(32))
    const signature = signRevocation(revoked.keys, { target: revoked.log.sled, fromSeq: n / 2, authority: 'self' })
    const record = createSigner(x).signEntry({
      sled: x.sled,
      seq: 0,
      ts: 1,
      kind: 'revocation',
      target: revoked.log.sled,
      fromSeq: n / 2,
      authority: 'self',
      signature,
    })
    const applied = await revoked.log.applyUpdate(
      encodeRuns([{ client: clientIdOf(x.sled), clock: 0, rootName: rootNameOf(x.sled), records: [record] }]),
    )
    if (!applied.ok) throw new Error(`revocation refused: ${applied.code}`)
    const times: { plain: number[]; revoked: number[] } = { plain: [], revoked: [] }
    for (let round = 0; round < 7; round++) {
      times.plain.push(scan(plain.log).ms)
      const r = scan(revoked.log)
      if (r.retired !== n / 2) throw new Error(`expected ${n / 2} flagged entries, read ${r.retired}`)
      times.revoked.push(r.ms)
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
    const label = `${n / 1000}k`
    const note = 'median of 7, scans of the two logs alternating'
    ctx.record('succession/read', `scan ${label}, no retired sled`, (n / median(times.plain)) * 1000, 'entries/s', note)
    ctx.record('succession/read', `scan ${label}, half retired`, (n / median(times.revoked)) * 1000, 'entries/s', note)
    // The scan the log runs on every record it applies (load, sync, appends) to find statements.
    const own = plain.log.query({ sled: plain.log.sled, limit: 10_000 }).entries
    const records = own.map((e) => `${e.sig}.${JSON.stringify(stripSig(e))}`)
    let hits = 0
    const rate = measureRate(ctx.quick ? 100 : 1000, (k) => {
      for (let i = 0; i < k; i++) if (isStatementRecord(records[i % records.length] as string)) hits++
    })
    if (hits !== 0) throw new Error('an event was taken for a statement')
    ctx.record(
      'succession/read',
      'statement scan per record',
      rate.cpuUs * 1000,
      'ns',
      'isStatementRecord, ~400 B events',
    )
  } finally {
    await plain.log.close()
    await revoked.log.close()
  }
}

function stripSig(e: StoredEntry): Omit<StoredEntry, 'sig' | 'retired'> {
  const { sig: _, retired: __, ...rest } = e
  return rest
}

async function handshake(ctx: BenchContext): Promise<void> {
  const keys = Array.from({ length: 9 }, () => keyPairFromSeed(randomBytes(32)))
  // keys[i + 1] succeeds keys[i]; the chain presented by keys[8] walks back to keys[0].
  const chain = keys.slice(1).map((k, i) => {
    const pred = keys[i] as KeyPair
    const body = { successor: k.sled, lastSeq: 99_999, reason: 'rotation' } as const
    return createSigner(k).signEntry({
      sled: k.sled,
      seq: 0,
      ts: 1_760_000_000_000,
      kind: 'succession',
      predecessor: pred.sled,
      lastSeq: 99_999,
      reason: 'rotation',
      endorsement: endorseSuccession(pred, body),
    })
  })
  const presented = [...chain].reverse()
  const prove = (records: readonly string[]): number =>
    encodeProve(new Uint8Array(32), new Uint8Array(32), new Uint8Array(64), new Uint8Array(32), records).length
  ctx.record('succession/handshake', 'prove, no chain', prove([]), 'bytes', 'with a shared token')
  ctx.record('succession/handshake', 'prove, chain of 1', prove(presented.slice(-1)), 'bytes', 'with a shared token')
  ctx.record('succession/handshake', 'prove, chain of 8', prove(presented), 'bytes', 'with a shared token')
  const allowed = new Set([keys[0]?.sled])
  const rounds = ctx.quick ? 20 : 200
  const t0 = now()
  for (let i = 0; i < rounds; i++) {
    // A fresh verifier each time: a handshake pays for the keys it has not seen.
    const v = admitByChain(keys[8]?.sled as never, presented, createVerifier(), (s) => allowed.has(s))
    if (!v.ok) throw new Error(v.reason)
  }
  ctx.record('succession/handshake', 'check a chain of 8', ((now() - t0) / rounds) * 1000, 'µs', '16 signatures')
}

/** The group, run with `npm run bench -- --only succession`. */
export const successionGroup: BenchGroup = {
  name: 'succession',
  description: 'key succession: reads with retired sleds, the statement scan, handshake chains',
  scenarios: [
    { name: 'read', run: readPath },
    { name: 'handshake', run: handshake },
  ],
}

/**
 * The record size rule (docs/PROTOCOL.md §3.4) is one rule on both sides: the writer signs a
 * record of at most `maxRecordBytes` UTF-8 bytes and every verifier with the same limit accepts
 * exactly those. Before, the writer stopped 6 bytes short and the decoder allowed 5 bytes more
 * (length prefix included), so a peer could inject records no writer produces.
 */
import { describe, expect, it } from 'vitest'
import type { KeyPair } from '../../src/core/signing.js'
import { createSigner } from '../../src/core/signing.js'
import { clientIdOf, rootNameOf } from '../../src/core/ids.js'
import { encodeRuns } from '../../src/core/update-codec.js'
import { isSledlogError } from '../../src/errors.js'
import { loadIdentity } from '../../src/store/identity.js'
import { syncInto, testLog } from '../helpers/logs.js'

const TS = 1_700_000_000_000
const MAX = 2048

/** The record `keys` signs for seq `seq` with a payload of `n` ASCII characters, at the fixed ts. */
function recordOf(keys: KeyPair, seq: number, n: number): string {
  return createSigner(keys).signEntry({
    sled: keys.sled,
    seq,
    ts: TS,
    kind: 'event',
    type: 't',
    payload: 'x'.repeat(n),
  })
}

describe('record size: writer and verifier share one bound', () => {
  it('the writer signs a record of exactly maxRecordBytes and refuses one byte more without using a seq', async () => {
    const { log, dir } = await testLog(undefined, { limits: { maxRecordBytes: MAX }, now: () => TS })
    const keys = (await loadIdentity(dir)) as KeyPair
    const fill = MAX - Buffer.byteLength(recordOf(keys, 0, 0), 'utf8')
    expect(Buffer.byteLength(recordOf(keys, 0, fill), 'utf8')).toBe(MAX)
    const at = await log.append({ type: 't', payload: 'x'.repeat(fill) })
    expect(at.seq).toBe(0)
    const over = await log.append({ type: 't', payload: 'x'.repeat(fill + 1) }).catch((e: unknown) => e)
    expect(isSledlogError(over, 'ENTRY_TOO_LARGE')).toBe(true)
    expect((await log.append({ type: 't', payload: null })).seq).toBe(1)
  })

  it('a peer with the same limit accepts the largest record the writer signs, and refuses one byte more', async () => {
    const { log: writer, dir } = await testLog(undefined, { limits: { maxRecordBytes: MAX }, now: () => TS })
    const keys = (await loadIdentity(dir)) as KeyPair
    const fill = MAX - Buffer.byteLength(recordOf(keys, 0, 0), 'utf8')
    await writer.append({ type: 't', payload: 'x'.repeat(fill) })
    const { log: peer } = await testLog(undefined, { limits: { maxRecordBytes: MAX } })
    await syncInto(writer, peer)
    expect(peer.length(keys.sled)).toBe(1)

    // Validly signed and bound, one byte over: what only a hand-made writer could send.
    const big = recordOf(keys, 1, fill + 1)
    expect(Buffer.byteLength(big, 'utf8')).toBe(MAX + 1)
    const update = encodeRuns([
      { client: clientIdOf(keys.sled), clock: 1, rootName: rootNameOf(keys.sled), records: [big] },
    ])
    const refused = await peer.applyUpdate(update, 'test-peer')
    expect(refused.ok === false && refused.code).toBe('ENTRY_TOO_LARGE')
    const { log: roomier } = await testLog(undefined, { limits: { maxRecordBytes: MAX + 1 } })
    await syncInto(writer, roomier)
    expect((await roomier.applyUpdate(update, 'test-peer')).ok).toBe(true)
  })

  it('a peer with a smaller limit refuses the writer’s largest record as ENTRY_TOO_LARGE', async () => {
    const { log: writer, dir } = await testLog(undefined, { limits: { maxRecordBytes: MAX }, now: () => TS })
    const keys = (await loadIdentity(dir)) as KeyPair
    await writer.append({ type: 't', payload: 'x'.repeat(MAX - Buffer.byteLength(recordOf(keys, 0, 0), 'utf8')) })
    const { log: peer } = await testLog(undefined, { limits: { maxRecordBytes: MAX - 1 } })
    await expect(syncInto(writer, peer)).rejects.toThrow(/ENTRY_TOO_LARGE/)
    expect(peer.length(keys.sled)).toBe(0)
  })
})

/**
 * The hostile peer's builders (pure): what they make is exactly the attack it claims to be, as
 * the strict update codec and the signature check see it.
 */
import { describe, expect, it } from 'vitest'
import { createVerifier, openRecord } from '../../src/core/signing.js'
import { decodeUpdate } from '../../src/core/update-codec.js'
import { recordToEntry } from '../../src/core/query.js'
import {
  attackerKeys,
  deletionUpdate,
  forgedRecord,
  garbageFrame,
  ownRecord,
  placeRecord,
  reboundRecord,
  recordOf,
  tamperedRecord,
  FORGED_MARKER,
} from '../../src/harness/forgery.js'
import { prng } from '../../src/harness/random.js'
import { decodeMessage } from '../../src/sync/messages.js'
import { signedRecords, testKeys } from '../helpers/keys.js'

const verifier = createVerifier()
const HONEST = testKeys(701)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

describe('hostile builders', () => {
  const records = signedRecords(HONEST, 0, 4)
  const keys = attackerKeys(42)

  it('derives attacker keys from the seed', () => {
    expect(attackerKeys(42)).toEqual(keys)
    expect(attackerKeys(43).main.sled).not.toBe(keys.main.sled)
    expect(keys.rebind.sled).not.toBe(keys.main.sled)
  })

  it('rebuilds the exact record of an API entry', () => {
    for (const r of records) expect(recordOf(recordToEntry(r))).toBe(r)
  })

  it('forged and tampered records do not verify; own and rebound records do, as the attacker', () => {
    expect(() => openRecord(forgedRecord(keys.main, HONEST.sled, 4, 1), verifier)).toThrow()
    const tampered = tamperedRecord(recordToEntry(records[2] as string), 1)
    expect(tampered.slice(0, 86)).toBe((records[2] as string).slice(0, 86))
    expect(tampered).toContain(FORGED_MARKER)
    expect(() => openRecord(tampered, verifier)).toThrow()
    expect(openRecord(ownRecord(keys.main, 3, 1, 1), verifier).entry).toMatchObject({
      sled: keys.main.sled,
      seq: 3,
      type: 'hostile.own',
    })
    expect(openRecord(reboundRecord(keys.main, 7, 1), verifier).entry).toMatchObject({
      sled: keys.main.sled,
      seq: 7,
      type: 'hostile.rebound',
    })
    expect(ownRecord(keys.main, 3, 1, 1)).not.toBe(ownRecord(keys.main, 3, 1, 2))
  })

  it('deletions are real Yjs delete updates; a rewrite is an insertion, not an append', () => {
    const del = deletionUpdate(HONEST.sled, records, 1, 2)
    expect(codeOf(() => decodeUpdate(del, 65536))).toBe('UPDATE_DELETION')
    const rewrite = deletionUpdate(HONEST.sled, records, 0, 1, {
      attacker: keys.main,
      record: forgedRecord(keys.main, HONEST.sled, 0, 2),
    })
    expect(codeOf(() => decodeUpdate(rewrite, 65536))).toBe('UPDATE_NOT_APPEND')
  })

  it('placed records decode under the grammar (the guard, not the codec, must refuse them)', () => {
    const u = placeRecord(HONEST.sled, 5, reboundRecord(keys.main, 5, 1))
    expect(decodeUpdate(u, 65536).structs).toHaveLength(1)
    const rooted = placeRecord(keys.rebind.sled, 0, ownRecord(keys.rebind, 0, 1), HONEST.sled)
    expect(decodeUpdate(rooted, 65536).structs[0]?.parentKey).toBe(`log:${HONEST.sled}`)
  })

  it('garbage frames are never valid messages (or are text)', () => {
    const rand = prng(9)
    for (let i = 0; i < 200; i++) {
      for (const kind of ['random', 'truncated'] as const) {
        const f = garbageFrame(rand, kind)
        expect(typeof f).not.toBe('string')
        expect(() => decodeMessage(f as Uint8Array)).toThrow()
      }
      const bad = garbageFrame(rand, 'bad-update') as Uint8Array
      const m = decodeMessage(bad)
      expect(m.t).toBe('update')
      expect(codeOf(() => decodeUpdate((m as { update: Uint8Array }).update, 65536))).toMatch(
        /^UPDATE_|ENTRY_TOO_LARGE/,
      )
    }
    expect(typeof garbageFrame(rand, 'text')).toBe('string')
    expect(decodeMessage(garbageFrame(rand, 'late-hello') as Uint8Array).t).toBe('hello')
  })
})

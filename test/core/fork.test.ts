/**
 * The fork rule (PROTOCOL.md §6.2): the join of fork states is order- and grouping-independent
 * and equals the rule computed from the whole set of versions; proofs verify themselves.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { joinFork, verifyFork, type Fork } from '../../src/core/fork.js'
import type { SledId } from '../../src/core/ids.js'
import { createVerifier } from '../../src/core/signing.js'
import { forgedRecord, signedRecord, testKeys } from '../helpers/keys.js'
import { testSeed } from '../helpers/seed.js'

const S = 'a'.repeat(64) as SledId
const fork = (seq: number, a: string, b: string): Fork => ({ sled: S, seq, records: [a, b].sort() as [string, string] })

/** The rule from scratch: F = lowest seq with two versions; the two smallest versions there. */
function reference(versions: ReadonlyMap<number, ReadonlySet<string>>): Fork | undefined {
  const seqs = [...versions.entries()].filter(([, v]) => v.size >= 2).map(([s]) => s)
  if (seqs.length === 0) return undefined
  const f = Math.min(...seqs)
  const [a, b] = [...(versions.get(f) as ReadonlySet<string>)].sort()
  return { sled: S, seq: f, records: [a as string, b as string] }
}

describe('joinFork', () => {
  it('keeps the lower seq, and at equal seqs the two smallest distinct records', () => {
    const f5 = fork(5, 'm', 'q')
    expect(joinFork(undefined, f5)).toBe(f5)
    expect(joinFork(f5, fork(7, 'a', 'b'))).toBe(f5)
    expect(joinFork(f5, fork(3, 'x', 'y'))).toEqual(fork(3, 'x', 'y'))
    expect(joinFork(f5, fork(5, 'a', 'z'))).toEqual(fork(5, 'a', 'm'))
    expect(joinFork(f5, fork(5, 'n', 'z'))).toEqual(fork(5, 'm', 'n'))
    expect(joinFork(f5, fork(5, 'a', 'b'))).toEqual(fork(5, 'a', 'b'))
    // No change: the same object back, so callers see that nothing is to be written.
    expect(joinFork(f5, fork(5, 'q', 'z'))).toBe(f5)
    expect(joinFork(f5, fork(5, 'm', 'q'))).toBe(f5)
  })

  it('orders records by UTF-16 code units, as JavaScript compares strings', () => {
    // U+FF5E (one unit 0xFF5E) sorts after U+1F600 (units 0xD83D 0xDE00), unlike by code point.
    const high = '\uff5e'
    const astral = '\u{1f600}'
    expect(joinFork(fork(1, 'z', high), fork(1, 'z', astral))).toEqual(fork(1, astral, 'z'))
  })

  const seed = testSeed('fork join', 20261203)
  it(`is order- and grouping-independent and equals the rule over all versions (fast-check seed ${seed})`, () => {
    const record = fc.constantFrom('a', 'b', 'c', 'd', 'e', '\uff5e', '\u{1f600}', 'aa')
    const equivocation = fc
      .record({ seq: fc.integer({ min: 0, max: 4 }), pair: fc.uniqueArray(record, { minLength: 2, maxLength: 2 }) })
      .map(({ seq, pair }) => fork(seq, pair[0] as string, pair[1] as string))
    fc.assert(
      fc.property(
        fc.array(equivocation, { minLength: 1, maxLength: 12 }),
        fc.func(fc.integer()),
        fc.nat(),
        (list, shuffleKey, cut) => {
          const fold = (xs: readonly Fork[]): Fork | undefined =>
            xs.reduce<Fork | undefined>((acc, f) => joinFork(acc, f), undefined)
          const versions = new Map<number, Set<string>>()
          for (const f of list)
            for (const r of f.records) versions.set(f.seq, (versions.get(f.seq) ?? new Set()).add(r))
          const want = reference(versions)
          expect(fold(list)).toEqual(want)
          const shuffled = [...list].sort((x, y) => shuffleKey(x) - shuffleKey(y))
          expect(fold(shuffled)).toEqual(want)
          // Two replicas that each saw part, then exchanged their states.
          const k = cut % (list.length + 1)
          const left = fold(list.slice(0, k))
          const right = fold(list.slice(k))
          const joined = left === undefined ? right : right === undefined ? left : joinFork(left, right)
          expect(joined).toEqual(want)
          expect(joinFork(want, want as Fork)).toBe(want)
        },
      ),
      { seed, numRuns: 300 },
    )
  })
})

describe('verifyFork', () => {
  const verifier = createVerifier()
  const k = testKeys(1)
  const a = signedRecord(k, 3)
  const b = signedRecord(k, 3, { kind: 'event', type: 'other', payload: 'version b' })
  const [lo, hi] = [a, b].sort() as [string, string]

  it('accepts two distinct records validly signed for the slot, in either order, and sorts them', () => {
    expect(verifyFork({ sled: k.sled, seq: 3, records: [hi, lo] }, verifier)).toEqual({
      sled: k.sled,
      seq: 3,
      records: [lo, hi],
    })
  })

  it('refuses anything else, saying why', () => {
    const cases: Array<[unknown, string]> = [
      [null, 'ENTRY_INVALID'],
      [{ sled: 'x', seq: 3, records: [lo, hi] }, 'ENTRY_INVALID'],
      [{ sled: k.sled, seq: -1, records: [lo, hi] }, 'ENTRY_INVALID'],
      [{ sled: k.sled, seq: 3, records: [lo, lo] }, 'ENTRY_INVALID'],
      [{ sled: k.sled, seq: 3, records: [lo] }, 'ENTRY_INVALID'],
      [{ sled: k.sled, seq: 4, records: [lo, hi] }, 'ENTRY_INVALID'],
      [{ sled: testKeys(2).sled, seq: 3, records: [lo, hi] }, 'ENTRY_INVALID'],
      [{ sled: k.sled, seq: 3, records: [lo, forgedRecord(k.sled, 3)] }, 'UPDATE_BAD_SIGNATURE'],
      [{ sled: k.sled, seq: 3, records: [lo, `${hi.slice(0, 86)}x`] }, 'ENTRY_INVALID'],
    ]
    for (const [raw, code] of cases) {
      expect(() => verifyFork(raw, verifier), JSON.stringify(raw)?.slice(0, 60)).toThrow(
        expect.objectContaining({ code }),
      )
    }
  })
})

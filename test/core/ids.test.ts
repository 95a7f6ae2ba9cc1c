/**
 * Sled ids, their Yjs client ids and root names (docs/PROTOCOL.md §2).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  clientIdOf,
  isSledId,
  publicKeyOf,
  ROOT_PREFIX,
  rootNameOf,
  sledIdFromPublicKey,
  sledOfRootName,
  type SledId,
} from '../../src/core/ids.js'
import { keyPairFromSeed } from '../../src/core/signing.js'
import { testKeys } from '../helpers/keys.js'
import { testSeed } from '../helpers/seed.js'

const SEED = testSeed('ids.test', 20260312)
const RUNS = 500

const hexChar = fc.constantFrom(...'0123456789abcdef')
const sledArb = fc.string({ unit: hexChar, minLength: 64, maxLength: 64 }) as fc.Arbitrary<SledId>
const pubArb = fc.uint8Array({ minLength: 32, maxLength: 32 })

/** The spec formula spelled out on bytes: big-endian integer of bytes 0..6, shifted right by 3. */
function specClientId(pub: Uint8Array): number {
  let n = 0n
  for (let i = 0; i < 7; i++) n = (n << 8n) | BigInt(pub[i] as number)
  return Number(n >> 3n)
}

describe(`clientIdOf (fast-check seed ${SEED})`, () => {
  it('is a safe integer below 2^53 and matches the spec formula', () => {
    fc.assert(
      fc.property(pubArb, (pub) => {
        const sled = sledIdFromPublicKey(pub)
        const id = clientIdOf(sled)
        expect(Number.isSafeInteger(id)).toBe(true)
        expect(id).toBeGreaterThanOrEqual(0)
        expect(id).toBeLessThan(2 ** 53)
        expect(id).toBe(specClientId(pub))
        expect(id).toBe(Number(BigInt('0x' + sled.slice(0, 14)) >> 3n))
        // Equivalently: the 53 bits after dropping the low 3 bits of byte 6 (exact in doubles).
        expect(id).toBe(parseInt(sled.slice(0, 12), 16) * 32 + (parseInt(sled.slice(12, 14), 16) >> 3))
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('depends only on the first 53 bits of the key', () => {
    fc.assert(
      fc.property(sledArb, sledArb, (a, b) => {
        // Keep a's first 13 hex chars (52 bits) and the top bit of the 14th; take the rest from b.
        const c14 = parseInt(a[13] as string, 16)
        const other14 = ((c14 & 0b1000) | (parseInt(b[13] as string, 16) & 0b0111)).toString(16)
        const mixed = (a.slice(0, 13) + other14 + b.slice(14)) as SledId
        expect(clientIdOf(mixed)).toBe(clientIdOf(a))
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('spans the full 53-bit range at the extremes', () => {
    expect(clientIdOf('0'.repeat(64) as SledId)).toBe(0)
    expect(clientIdOf('f'.repeat(64) as SledId)).toBe(Number.MAX_SAFE_INTEGER)
    expect(clientIdOf(('00000000000008' + '0'.repeat(50)) as SledId)).toBe(1)
    expect(clientIdOf(('00000000000007' + 'f'.repeat(50)) as SledId)).toBe(0)
    expect(clientIdOf(('80000000000000' + '0'.repeat(50)) as SledId)).toBe(2 ** 52)
  })

  it('matches the golden key (seed 00..1f)', () => {
    const seed = new Uint8Array(Array.from({ length: 32 }, (_, i) => i))
    const keys = keyPairFromSeed(seed)
    expect(keys.sled).toBe('03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8')
    expect(clientIdOf(keys.sled)).toBe(Math.floor(0x03a107bff3ce10 / 8))
    expect(clientIdOf(keys.sled)).toBe(127684948425154)
  })
})

describe('isSledId', () => {
  const good = testKeys(1).sled

  it('accepts 64 lowercase hex characters', () => {
    expect(isSledId(good)).toBe(true)
    expect(isSledId('0'.repeat(64))).toBe(true)
    expect(isSledId('0123456789abcdef'.repeat(4))).toBe(true)
    fc.assert(
      fc.property(sledArb, (s) => isSledId(s)),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('rejects other lengths, uppercase, non-hex and non-strings', () => {
    expect(isSledId(good.slice(1))).toBe(false)
    expect(isSledId(good + '0')).toBe(false)
    expect(isSledId('')).toBe(false)
    expect(isSledId(good.toUpperCase())).toBe(false)
    expect(isSledId('A' + good.slice(1))).toBe(false)
    expect(isSledId('g' + good.slice(1))).toBe(false)
    expect(isSledId(good.slice(0, 63) + '\n')).toBe(false)
    expect(isSledId(good + '\n')).toBe(false)
    expect(isSledId(' ' + good.slice(1))).toBe(false)
    expect(isSledId('0x' + good.slice(2))).toBe(false)
    expect(isSledId(undefined)).toBe(false)
    expect(isSledId(null)).toBe(false)
    expect(isSledId(42)).toBe(false)
    expect(isSledId({ toString: () => good })).toBe(false)
    expect(isSledId([good])).toBe(false)
  })
})

describe('sled ids and public keys', () => {
  it('round-trip between 32 bytes and lowercase hex', () => {
    fc.assert(
      fc.property(pubArb, (pub) => {
        const sled = sledIdFromPublicKey(pub)
        expect(isSledId(sled)).toBe(true)
        expect(sled).toBe(Buffer.from(pub).toString('hex'))
        expect(publicKeyOf(sled)).toEqual(pub)
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('refuses a public key that is not 32 bytes', () => {
    expect(() => sledIdFromPublicKey(new Uint8Array(31))).toThrow(RangeError)
    expect(() => sledIdFromPublicKey(new Uint8Array(33))).toThrow(RangeError)
    expect(() => sledIdFromPublicKey(new Uint8Array(0))).toThrow(RangeError)
  })
})

describe('root names', () => {
  it("are 'log:' + sled id and round-trip", () => {
    expect(ROOT_PREFIX).toBe('log:')
    fc.assert(
      fc.property(sledArb, (sled) => {
        expect(rootNameOf(sled)).toBe('log:' + sled)
        expect(sledOfRootName(rootNameOf(sled))).toBe(sled)
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('sledOfRootName rejects names that are not sled roots', () => {
    const sled = testKeys(1).sled
    expect(sledOfRootName(sled)).toBeUndefined()
    expect(sledOfRootName('')).toBeUndefined()
    expect(sledOfRootName('log:')).toBeUndefined()
    expect(sledOfRootName('Log:' + sled)).toBeUndefined()
    expect(sledOfRootName('log: ' + sled)).toBeUndefined()
    expect(sledOfRootName('log:' + sled.toUpperCase())).toBeUndefined()
    expect(sledOfRootName('log:' + sled.slice(1))).toBeUndefined()
    expect(sledOfRootName('log:' + sled + '0')).toBeUndefined()
    expect(sledOfRootName('log:' + sled + '\n')).toBeUndefined()
    expect(sledOfRootName('log:log:' + sled)).toBeUndefined()
    expect(sledOfRootName('x' + 'log:' + sled)).toBeUndefined()
  })

  it('sledOfRootName never returns a non-sled id for arbitrary names', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (tail) => {
        const s = sledOfRootName('log:' + tail)
        expect(s === undefined || (isSledId(s) && s === tail)).toBe(true)
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })
})

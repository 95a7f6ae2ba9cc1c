/**
 * Ed25519 signing and the record format (docs/PROTOCOL.md §4): node:crypto (the hot path) and
 * @noble/ed25519 v3 (the portable implementation) must produce identical signatures and verify
 * each other's; records must split only in their one canonical form; openRecord must map each
 * failure to its stable code.
 */
import { createHash, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import * as ed from '@noble/ed25519'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeEntryJson, type Entry } from '../../src/core/entry.js'
import {
  createSigner,
  createVerifier,
  ENTRY_DOMAIN,
  formatRecord,
  keyPairFromSeed,
  openRecord,
  privateKeyObject,
  publicKeyObject,
  SIG_CHARS,
  signedMessage,
  splitRecord,
} from '../../src/core/signing.js'
import { isSledlogError } from '../../src/errors.js'
import { entryOf, forgedRecord, signedRecord, signJsonText, tamperSignature, testKeys } from '../helpers/keys.js'
import { testSeed } from '../helpers/seed.js'

const SEED = testSeed('signing.test cross-implementation', 20260311)
const RUNS = 150

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function nodeSignBytes(seed: Uint8Array, msg: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, msg, privateKeyObject(seed)))
}

function nodeVerifyBytes(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  try {
    return nodeVerify(null, msg, publicKeyObject(pub), sig)
  } catch {
    return false
  }
}

async function nobleVerify(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  try {
    return await ed.verifyAsync(sig, msg, pub)
  } catch {
    return false
  }
}

function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(b)
  const i = Math.floor(bit / 8) % out.length
  out[i] = (out[i] as number) ^ (1 << (bit % 8))
  return out
}

/** The SledlogError code `fn` throws (fails the test when it throws something else or nothing). */
function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (isSledlogError(err)) return err.code
    throw new Error(`expected a SledlogError, got ${String(err)}`)
  }
  throw new Error('expected a SledlogError, nothing was thrown')
}

const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 })
const msgArb = fc.uint8Array({ minLength: 0, maxLength: 300 })

describe(`node:crypto and @noble/ed25519 agree (fast-check seed ${SEED}, ${RUNS} runs each)`, () => {
  it('derive the same public key and sled id', async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, async (seed) => {
        const keys = keyPairFromSeed(seed)
        const noblePub = await ed.getPublicKeyAsync(seed)
        expect(hex(keys.publicKey)).toBe(hex(noblePub))
        expect(keys.sled).toBe(hex(noblePub))
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('produce identical signatures and verify each other', async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, msgArb, async (seed, msg) => {
        const pub = keyPairFromSeed(seed).publicKey
        const a = nodeSignBytes(seed, msg)
        const b = await ed.signAsync(msg, seed)
        expect(hex(a)).toBe(hex(b))
        expect(nodeVerifyBytes(pub, msg, b)).toBe(true)
        expect(await nobleVerify(pub, msg, a)).toBe(true)
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('both reject a tampered signature, message or key', async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, msgArb, fc.nat(), fc.nat(), fc.nat(), async (seed, msg, sigBit, msgBit, keyBit) => {
        const pub = keyPairFromSeed(seed).publicKey
        const sig = nodeSignBytes(seed, msg)
        const badSig = flipBit(sig, sigBit % 512)
        expect(nodeVerifyBytes(pub, msg, badSig)).toBe(false)
        expect(await nobleVerify(pub, msg, badSig)).toBe(false)
        const badMsg = msg.length === 0 ? new Uint8Array([msgBit & 0xff]) : flipBit(msg, msgBit % (msg.length * 8))
        expect(nodeVerifyBytes(pub, badMsg, sig)).toBe(false)
        expect(await nobleVerify(pub, badMsg, sig)).toBe(false)
        const badKey = flipBit(pub, keyBit % 256)
        expect(nodeVerifyBytes(badKey, msg, sig)).toBe(false)
        expect(await nobleVerify(badKey, msg, sig)).toBe(false)
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it('sign entries identically: the record signature is noble over domain + JSON', async () => {
    await fc.assert(
      fc.asyncProperty(
        seedArb,
        fc.nat({ max: 1_000_000 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
        fc.jsonValue({ maxDepth: 4 }),
        async (seed, seq, type, payload) => {
          const keys = keyPairFromSeed(seed)
          const entry: Entry = {
            sled: keys.sled,
            seq,
            ts: 1_700_000_000_000 + seq,
            kind: 'event',
            type,
            payload: payload as never,
          }
          const record = createSigner(keys).signEntry(entry)
          const json = encodeEntryJson(entry)
          const msg = signedMessage(json)
          expect(hex(msg)).toBe(hex(Buffer.concat([Buffer.from('sledlog/entry/v1\n'), Buffer.from(json, 'utf8')])))
          const nobleSig = await ed.signAsync(msg, seed)
          expect(record).toBe(formatRecord(nobleSig, json))
          // A noble-made record verifies with the node:crypto verifier, and vice versa.
          expect(openRecord(formatRecord(nobleSig, json), createVerifier()).entry.seq).toBe(seq)
          const parts = splitRecord(record)
          expect(parts).toBeDefined()
          expect(await nobleVerify(keys.publicKey, msg, parts?.sig ?? new Uint8Array(64))).toBe(true)
        },
      ),
      { seed: SEED, numRuns: RUNS },
    )
  })
})

describe('the signed message', () => {
  it('is the domain prefix followed by the UTF-8 JSON bytes', () => {
    expect(ENTRY_DOMAIN).toBe('sledlog/entry/v1\n')
    expect(hex(signedMessage('{"a":"é"}'))).toBe(hex(Buffer.from('sledlog/entry/v1\n{"a":"é"}', 'utf8')))
  })

  it('a signature over the bare JSON (no domain) does not verify as a record', () => {
    const keys = testKeys(1)
    const json = encodeEntryJson(entryOf(keys.sled, 0))
    const bare = nodeSign(null, Buffer.from(json, 'utf8'), privateKeyObject(keys.seed))
    expect(codeOf(() => openRecord(formatRecord(bare, json), createVerifier()))).toBe('UPDATE_BAD_SIGNATURE')
  })
})

describe('Ed25519 verification semantics (which verifier is normative)', () => {
  // Order-8 subgroup aside, the point (0, -1) has order 2: y = p - 1, sign bit 0.
  const P = 2n ** 255n - 19n
  const L = 2n ** 252n + 27742317777372353535851937790883648493n
  const le32 = (n: bigint): Uint8Array => {
    const out = new Uint8Array(32)
    for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn)
    return out
  }
  const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n)

  it('a non-canonical S (S + L) is rejected by both', async () => {
    const keys = testKeys(2)
    const msg = signedMessage('{"x":1}')
    const sig = nodeSignBytes(keys.seed, msg)
    const s = fromLe(sig.subarray(32))
    const malleated = new Uint8Array(64)
    malleated.set(sig.subarray(0, 32), 0)
    malleated.set(le32(s + L), 32)
    expect(nodeVerifyBytes(keys.publicKey, msg, malleated)).toBe(false)
    expect(await nobleVerify(keys.publicKey, msg, malleated)).toBe(false)
    expect(await ed.verifyAsync(malleated, msg, keys.publicKey, { zip215: false }).catch(() => false)).toBe(false)
  })

  it('node:crypto (cofactorless) rejects a torsion-tweaked signature that noble (cofactored) accepts', async () => {
    // Only the key holder can make such a signature (it needs the secret scalar), but a hostile
    // sled could use it to split verifiers that disagree; PROTOCOL.md §4 makes node:crypto's
    // cofactorless check (as RFC 8032 and OpenSSL do it) normative.
    const seed = testKeys(3).seed
    const { scalar, pointBytes } = await ed.utils.getExtendedPublicKeyAsync(seed)
    const msg = signedMessage('{"torsion":true}')
    const r = 123456789n
    const T = ed.Point.fromBytes(le32(P - 1n)) // (0, -1), order 2
    const Rt = ed.Point.BASE.multiply(r).add(T).toBytes()
    const k = fromLe(new Uint8Array(createHash('sha512').update(Rt).update(pointBytes).update(msg).digest())) % L
    const S = (r + k * scalar) % L
    const sig = new Uint8Array(64)
    sig.set(Rt, 0)
    sig.set(le32(S), 32)
    expect(nodeVerifyBytes(pointBytes, msg, sig)).toBe(false)
    expect(await ed.verifyAsync(sig, msg, pointBytes)).toBe(true)
    expect(await ed.verifyAsync(sig, msg, pointBytes, { zip215: false })).toBe(true)
  })
})

describe('splitRecord', () => {
  const keys = testKeys(1)
  const record = signedRecord(keys, 0)
  const sig = record.slice(0, SIG_CHARS)
  const json = record.slice(SIG_CHARS + 1)

  it('splits a well-formed record', () => {
    const parts = splitRecord(record)
    expect(parts?.json).toBe(json)
    expect(Buffer.from(parts?.sig ?? []).toString('base64url')).toBe(sig)
    expect(parts?.sig).toHaveLength(64)
  })

  it('rejects wrong signature lengths', () => {
    expect(splitRecord(sig.slice(1) + '.' + json)).toBeUndefined()
    expect(splitRecord(sig + 'A.' + json)).toBeUndefined()
    expect(splitRecord(sig + 'AAAA.' + json)).toBeUndefined()
    expect(splitRecord('')).toBeUndefined()
    expect(splitRecord('.' + json)).toBeUndefined()
  })

  it('rejects a record with no JSON after the dot', () => {
    expect(splitRecord(sig + '.')).toBeUndefined()
    expect(splitRecord(sig)).toBeUndefined()
  })

  it('rejects a missing or misplaced dot', () => {
    expect(splitRecord(sig + json)).toBeUndefined()
    expect(splitRecord(sig + ' ' + json)).toBeUndefined()
    expect(splitRecord(sig + ':' + json)).toBeUndefined()
    expect(splitRecord(sig.slice(0, 85) + '.A' + json)).toBeUndefined()
  })

  it('accepts only A, Q, g, w as the last signature character (the 4 unused bits are zero)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const accepted = [...alphabet].filter((c) => splitRecord(sig.slice(0, 85) + c + '.' + json) !== undefined)
    expect(accepted).toEqual(['A', 'Q', 'g', 'w'])
    // Without the check, these would decode to the same 64 bytes: a malleable record.
    const last = sig[85] as string
    const twin = alphabet[alphabet.indexOf(last) + 1] as string
    expect(Buffer.from(sig.slice(0, 85) + twin, 'base64url')).toEqual(Buffer.from(sig, 'base64url'))
    expect(splitRecord(sig.slice(0, 85) + twin + '.' + json)).toBeUndefined()
  })

  it('rejects standard base64 characters and padding', () => {
    expect(splitRecord('+' + sig.slice(1) + '.' + json)).toBeUndefined()
    expect(splitRecord('/' + sig.slice(1) + '.' + json)).toBeUndefined()
    expect(splitRecord(sig.slice(0, 84) + '==' + '.' + json)).toBeUndefined()
    expect(splitRecord(sig.slice(0, 85) + '=' + '.' + json)).toBeUndefined()
  })
})

describe('openRecord', () => {
  const keys = testKeys(1)
  const verifier = createVerifier()
  const record = signedRecord(keys, 5)

  it('opens a valid record', () => {
    const opened = openRecord(record, verifier)
    expect(opened.entry).toEqual(entryOf(keys.sled, 5))
    expect(Buffer.from(opened.sig).toString('base64url')).toBe(record.slice(0, SIG_CHARS))
  })

  it('throws ENTRY_INVALID for a record that does not split', () => {
    expect(codeOf(() => openRecord(record.slice(1), verifier))).toBe('ENTRY_INVALID')
    expect(codeOf(() => openRecord(record.replace('.', ''), verifier))).toBe('ENTRY_INVALID')
    expect(codeOf(() => openRecord(record.slice(0, SIG_CHARS + 1), verifier))).toBe('ENTRY_INVALID')
    expect(codeOf(() => openRecord('not a record', verifier))).toBe('ENTRY_INVALID')
  })

  it('throws ENTRY_INVALID for validly signed but non-canonical or invalid JSON (parsed before verifying)', () => {
    const canonical = encodeEntryJson(entryOf(keys.sled, 1))
    expect(codeOf(() => openRecord(signJsonText(keys, canonical.replace(',', ', ')), verifier))).toBe('ENTRY_INVALID')
    expect(codeOf(() => openRecord(signJsonText(keys, canonical + ' '), verifier))).toBe('ENTRY_INVALID')
    expect(codeOf(() => openRecord(signJsonText(keys, canonical.slice(0, -1)), verifier))).toBe('ENTRY_INVALID')
    expect(codeOf(() => openRecord(signJsonText(keys, '[]'), verifier))).toBe('ENTRY_INVALID')
    // And it would also fail with a bad signature: the structural check comes first.
    expect(codeOf(() => openRecord(tamperSignature(signJsonText(keys, '{}')), verifier))).toBe('ENTRY_INVALID')
  })

  it('throws UPDATE_BAD_SIGNATURE for a tampered signature', () => {
    expect(codeOf(() => openRecord(tamperSignature(record), verifier))).toBe('UPDATE_BAD_SIGNATURE')
  })

  it('throws UPDATE_BAD_SIGNATURE for tampered JSON under the original signature', () => {
    const other = encodeEntryJson(entryOf(keys.sled, 6))
    expect(codeOf(() => openRecord(record.slice(0, SIG_CHARS + 1) + other, verifier))).toBe('UPDATE_BAD_SIGNATURE')
  })

  it('throws UPDATE_BAD_SIGNATURE for a record signed by another key than the sled it names', () => {
    expect(codeOf(() => openRecord(forgedRecord(keys.sled, 0), verifier))).toBe('UPDATE_BAD_SIGNATURE')
  })

  it('createSigner refuses an entry naming another sled', () => {
    expect(codeOf(() => createSigner(keys).signEntry(entryOf(testKeys(2).sled, 0)))).toBe('ENTRY_INVALID')
  })
})

describe('weak public keys', () => {
  it('never verifies a signature under a small-order or invalid key, though node:crypto alone would', async () => {
    const { Point } = await import('@noble/ed25519')
    const { verify, createPublicKey } = await import('node:crypto')
    const {
      isWeakPublicKey,
      createVerifier: makeVerifier,
      signedMessage: msgOf,
    } = await import('../../src/core/signing.js')
    const identity = new Uint8Array(32)
    identity[0] = 1 // the identity point: every R with S = r verifies under it
    const r = 987654321n
    const R = Point.BASE.multiply(r).toBytes()
    const S = new Uint8Array(32)
    let x = r
    for (let i = 0; i < 32; i++, x >>= 8n) S[i] = Number(x & 0xffn)
    const sig = new Uint8Array([...R, ...S])
    const json = '{"x":1}'
    const raw = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity).toString('base64url') },
      format: 'jwk',
    })
    expect(verify(null, msgOf(json), raw, sig)).toBe(true) // the hole being closed
    expect(isWeakPublicKey(identity)).toBe(true)
    expect(makeVerifier().verifyJson(Buffer.from(identity).toString('hex') as never, json, sig)).toBe(false)
    expect(isWeakPublicKey(new Uint8Array(32).fill(0xff))).toBe(true)
  })
})

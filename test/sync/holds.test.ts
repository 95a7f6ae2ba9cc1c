/**
 * Holds receipts (src/sync/holds.ts): what a signature binds, and that changing any bound value
 * (holder, subject, either nonce, the length) or the signature makes it fail; and that a link's
 * receipts (keys checked once per link) sign the same bytes and give the same verdicts.
 */
import { verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { publicKeyObject } from '../../src/core/signing.js'
import { HOLDS_DOMAIN, linkReceipts, receiptBytes, signReceipt, verifyReceipt } from '../../src/sync/holds.js'
import { testKeys } from '../helpers/keys.js'

const HOLDER = testKeys(801)
const SUBJECT = testKeys(802)
const OTHER = testKeys(803)
const LINK = { serverNonce: new Uint8Array(32).fill(1), clientNonce: new Uint8Array(32).fill(2) }

describe('holds receipts', () => {
  it('signs domain, subject, holder, both nonces and the length as u64 big-endian', () => {
    const b = receiptBytes(SUBJECT.publicKey, HOLDER.publicKey, LINK, 258)
    const d = Buffer.from(HOLDS_DOMAIN)
    expect(b.length).toBe(d.length + 32 * 4 + 8)
    expect(b.subarray(0, d.length).toString()).toBe('sledlog/holds/v1\n')
    expect(Buffer.from(b.subarray(d.length, d.length + 32))).toEqual(Buffer.from(SUBJECT.publicKey))
    expect(Buffer.from(b.subarray(d.length + 32, d.length + 64))).toEqual(Buffer.from(HOLDER.publicKey))
    expect([...b.subarray(-8)]).toEqual([0, 0, 0, 0, 0, 0, 1, 2])
    expect(() => receiptBytes(SUBJECT.publicKey, HOLDER.publicKey, LINK, -1)).toThrow(RangeError)
    expect(() => receiptBytes(SUBJECT.publicKey, HOLDER.publicKey, LINK, 2 ** 53)).toThrow(RangeError)
  })

  it('verifies only with every bound value as signed', () => {
    const sig = signReceipt(HOLDER, SUBJECT.publicKey, LINK, 1000)
    expect(verifyReceipt(HOLDER.publicKey, SUBJECT.publicKey, LINK, 1000, sig)).toBe(true)
    // A receipt is not a receipt of another length, holder, subject or link.
    expect(verifyReceipt(HOLDER.publicKey, SUBJECT.publicKey, LINK, 1001, sig)).toBe(false)
    expect(verifyReceipt(OTHER.publicKey, SUBJECT.publicKey, LINK, 1000, sig)).toBe(false)
    expect(verifyReceipt(HOLDER.publicKey, OTHER.publicKey, LINK, 1000, sig)).toBe(false)
    const swapped = { serverNonce: LINK.clientNonce, clientNonce: LINK.serverNonce }
    expect(verifyReceipt(HOLDER.publicKey, SUBJECT.publicKey, swapped, 1000, sig)).toBe(false)
    const flipped = sig.slice()
    flipped[10] = (flipped[10] as number) ^ 1
    expect(verifyReceipt(HOLDER.publicKey, SUBJECT.publicKey, LINK, 1000, flipped)).toBe(false)
    expect(verifyReceipt(HOLDER.publicKey, SUBJECT.publicKey, LINK, 1000, sig.subarray(0, 63))).toBe(false)
    expect(verifyReceipt(HOLDER.publicKey, SUBJECT.publicKey, LINK, -1, sig)).toBe(false)
  })

  it('refuses a small-order holder key whatever the signature', () => {
    const weak = new Uint8Array(32)
    weak[0] = 1 // the identity point: every signature with R = identity, S = 0 would verify
    const sig = new Uint8Array(64)
    sig[0] = 1
    expect(verifyReceipt(weak, SUBJECT.publicKey, LINK, 5, sig)).toBe(false)
  })

  it("a link's receipts sign what signReceipt signs and refuse what verifyReceipt refuses", () => {
    // HOLDER's side of a link with SUBJECT: it signs receipts of SUBJECT's sled, verifies SUBJECT's.
    const mine = linkReceipts(HOLDER, SUBJECT.publicKey, LINK)
    const theirs = linkReceipts(SUBJECT, HOLDER.publicKey, LINK)
    for (const n of [0, 1, 258, 2 ** 53 - 1]) {
      expect(Buffer.from(mine.sign(n))).toEqual(Buffer.from(signReceipt(HOLDER, SUBJECT.publicKey, LINK, n)))
      expect(theirs.verify(n, mine.sign(n))).toBe(true)
    }
    expect(() => mine.sign(-1)).toThrow(RangeError)
    const sig = signReceipt(HOLDER, SUBJECT.publicKey, LINK, 1000)
    const flipped = sig.slice()
    flipped[10] = (flipped[10] as number) ^ 1
    const swapped = { serverNonce: LINK.clientNonce, clientNonce: LINK.serverNonce }
    const cases: Array<[string, number, Uint8Array]> = [
      ['as signed', 1000, sig],
      ['another length', 1001, sig],
      ['a flipped bit', 1000, flipped],
      ['a short signature', 1000, sig.subarray(0, 63)],
      ['a long signature', 1000, new Uint8Array([...sig, 0])],
      ['a negative length', -1, sig],
      ['a length past 2^53 - 1', 2 ** 53, sig],
      ['a fractional length', 0.5, sig],
      ['its own receipt reflected', 1000, mine.sign(1000)],
      ['the other direction', 1000, signReceipt(SUBJECT, HOLDER.publicKey, LINK, 1000)],
    ]
    for (const [name, n, s] of cases) {
      const want = verifyReceipt(HOLDER.publicKey, SUBJECT.publicKey, LINK, n, s)
      expect([name, theirs.verify(n, s)]).toEqual([name, want])
    }
    expect(theirs.verify(1000, sig)).toBe(true)
    // Bound to its link, holder and subject like the one-off check.
    expect(linkReceipts(SUBJECT, HOLDER.publicKey, swapped).verify(1000, sig)).toBe(false)
    expect(linkReceipts(OTHER, HOLDER.publicKey, LINK).verify(1000, sig)).toBe(false)
    expect(linkReceipts(SUBJECT, OTHER.publicKey, LINK).verify(1000, sig)).toBe(false)
  })

  it('a link with a small-order or malformed peer key verifies nothing, as the one-off check', () => {
    const identity = new Uint8Array(32)
    identity[0] = 1
    const sig = new Uint8Array(64)
    sig[0] = 1 // R = identity, S = 0: node:crypto alone accepts it under the identity key
    // So the weak-key check is what refuses it: node:crypto alone accepts.
    const raw = receiptBytes(SUBJECT.publicKey, identity, LINK, 5)
    expect(verify(null, raw, publicKeyObject(identity), sig)).toBe(true)
    const nonCanonical = new Uint8Array(32).fill(0xff) // y >= p
    for (const key of [identity, nonCanonical, new Uint8Array(31)]) {
      const link = linkReceipts(SUBJECT, key, LINK)
      for (const n of [0, 5]) {
        expect(link.verify(n, sig)).toBe(false)
        expect(verifyReceipt(key, SUBJECT.publicKey, LINK, n, sig)).toBe(false)
      }
    }
  })
})

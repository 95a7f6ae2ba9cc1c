/**
 * Holds receipts (src/sync/holds.ts): what a signature binds, and that changing any bound value
 * (holder, subject, either nonce, the length) or the signature makes it fail.
 */
import { describe, expect, it } from 'vitest'
import { HOLDS_DOMAIN, receiptBytes, signReceipt, verifyReceipt } from '../../src/sync/holds.js'
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
})

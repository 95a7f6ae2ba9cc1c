/**
 * Holds receipts (docs/PROTOCOL.md §8.6): a peer's signed statement that it durably holds the
 * first `length` entries of the receiving node's own sled. Pure.
 *
 * A state vector says the same in passing, but it is an unsigned claim that may be stale or a
 * lie, so it never counts. A receipt is what a node may act on: a recovering node proves its head
 * with a quorum of them, and a write asking for `acks=N` is acknowledged once N of them cover it.
 * The signature binds both keys and both handshake nonces, so a receipt cannot be replayed on
 * another link (where it might be stale) or passed off as another holder's.
 */
import { detachedSigner, detachedVerifier, signDetached, verifyDetached, type KeyPair } from '../core/signing.js'
import type { Transcript } from './handshake.js'

/** Domain separation prefix of receipt signatures (distinct from entry and handshake ones). */
export const HOLDS_DOMAIN = 'sledlog/holds/v1\n'

/** The largest length a receipt may state (lengths are seqs: safe integers). */
export const MAX_HOLDS_LENGTH = Number.MAX_SAFE_INTEGER

/** The link a receipt is bound to: both nonces of its handshake, in the transcript's order. */
export interface ReceiptLink {
  readonly serverNonce: Uint8Array
  readonly clientNonce: Uint8Array
}

/** The bytes a holder signs: domain, subject key, holder key, both nonces, length (u64 BE). */
export function receiptBytes(subject: Uint8Array, holder: Uint8Array, link: ReceiptLink, length: number): Buffer {
  return withLength(receiptPrefix(subject, holder, link), length)
}

/** Everything a receipt signs but its length: fixed for one holder, subject and link. */
function receiptPrefix(subject: Uint8Array, holder: Uint8Array, link: ReceiptLink): Buffer {
  return Buffer.concat([Buffer.from(HOLDS_DOMAIN), subject, holder, link.serverNonce, link.clientNonce])
}

function withLength(prefix: Buffer, length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`receipt length ${length} out of range`)
  const out = Buffer.alloc(prefix.length + 8)
  prefix.copy(out)
  out.writeBigUInt64BE(BigInt(length), prefix.length)
  return out
}

/** The link of a finished handshake. */
export function receiptLink(t: Transcript): ReceiptLink {
  return { serverNonce: t.serverNonce, clientNonce: t.clientNonce }
}

/** Signs "I (`holder`) durably hold `subject`'s entries 0..length-1" for this link. */
export function signReceipt(holder: KeyPair, subject: Uint8Array, link: ReceiptLink, length: number): Uint8Array {
  return signDetached(holder, receiptBytes(subject, holder.publicKey, link, length))
}

/** True when `signature` is `holder`'s receipt for `length` entries of `subject` on `link`. */
export function verifyReceipt(
  holder: Uint8Array,
  subject: Uint8Array,
  link: ReceiptLink,
  length: number,
  signature: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(length) || length < 0) return false
  return verifyDetached(holder, receiptBytes(subject, holder, link, length), signature)
}

/** The receipts of one link in both directions: what this node signs and what it verifies. */
export interface LinkReceipts {
  /** This node's receipt for `length` entries of the peer's sled. */
  sign(length: number): Uint8Array
  /** True when `signature` is the peer's receipt for `length` entries of this node's sled. */
  verify(length: number, signature: Uint8Array): boolean
}

/**
 * The receipts of a link between `own` (this node) and `peer`, bound to `link`. What is the same
 * for every receipt of the link is done once: the peer key's weak-key check and KeyObject, this
 * node's private KeyObject, the signed bytes but the length. A session makes one when its
 * handshake ends; verdicts are those of {@link verifyReceipt} (a weak peer key verifies nothing,
 * a length out of range is false).
 */
export function linkReceipts(own: KeyPair, peer: Uint8Array, link: ReceiptLink): LinkReceipts {
  const theirs = receiptPrefix(own.publicKey, peer, link)
  const ours = receiptPrefix(peer, own.publicKey, link)
  const check = detachedVerifier(peer)
  const signer = detachedSigner(own)
  return {
    sign: (length) => signer(withLength(ours, length)),
    verify(length, signature) {
      if (!Number.isSafeInteger(length) || length < 0) return false
      return check(withLength(theirs, length), signature)
    },
  }
}

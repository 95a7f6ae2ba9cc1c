/**
 * Succession and revocation fixtures: bodies and signed records of the statement kinds
 * (PROTOCOL.md §3.5, §3.6, §4.4), made with the real signing helpers.
 */
import type { EntryBody, RevocationAuthority, SuccessionReason } from '../../src/core/entry.js'
import type { SledId } from '../../src/core/ids.js'
import { endorseSuccession, signRevocation, type KeyPair } from '../../src/core/signing.js'
import { signEntry, TEST_TS } from './keys.js'

/** The body of `successor`'s succession of `predecessor`: endorsed by its key, or unendorsed (a sled id). */
export function successionBody(
  successor: SledId,
  predecessor: KeyPair | SledId,
  lastSeq: number,
  reason: SuccessionReason = 'rotation',
): EntryBody {
  if (typeof predecessor === 'string') return { kind: 'succession', predecessor, lastSeq, reason, endorsement: null }
  return {
    kind: 'succession',
    predecessor: predecessor.sled,
    lastSeq,
    reason,
    endorsement: endorseSuccession(predecessor, { successor, lastSeq, reason }),
  }
}

/** `successor`'s signed entry 0 succeeding `predecessor` (see {@link successionBody}). */
export function successionRecord(
  successor: KeyPair,
  predecessor: KeyPair | SledId,
  lastSeq: number,
  reason: SuccessionReason = 'rotation',
): string {
  const body = successionBody(successor.sled, predecessor, lastSeq, reason)
  return signEntry(successor, { sled: successor.sled, seq: 0, ts: TEST_TS, ...body } as never)
}

/** The body of a revocation of `target` from `fromSeq`, signed by `signer` (the target: self; else admin). */
export function revocationBody(signer: KeyPair, target: SledId, fromSeq: number): EntryBody {
  const authority: RevocationAuthority = signer.sled === target ? 'self' : 'admin'
  const signature = signRevocation(signer, { target, fromSeq, authority })
  return authority === 'self'
    ? { kind: 'revocation', target, fromSeq, authority, signature }
    : { kind: 'revocation', target, fromSeq, authority, admin: signer.sled, signature }
}

/** `carrier`'s signed entry `seq` carrying a revocation (see {@link revocationBody}). */
export function revocationRecord(carrier: KeyPair, seq: number, signer: KeyPair, target: SledId, fromSeq: number) {
  const body = revocationBody(signer, target, fromSeq)
  return signEntry(carrier, { sled: carrier.sled, seq, ts: TEST_TS + seq, ...body } as never)
}

/**
 * The statements inside succession and revocation records (docs/PROTOCOL.md §4.4): the exact
 * bytes an endorsement or a revocation signature covers, and the check a verifier runs on them.
 *
 * A succession record is signed twice when it is endorsed: as an entry by the successor's key
 * (§4.2), and inside it by the predecessor's key over the endorsement message. A revocation is
 * an entry of whichever sled carries it, and inside it a statement signed by the target's own key
 * or an admin key. Each statement has its own domain, so no statement signature is ever a valid
 * entry or handshake signature, nor the reverse.
 */
import { sledlogError } from '../errors.js'
import type { Entry, RevocationAuthority, SuccessionReason } from './entry.js'
import type { SledId } from './ids.js'
import type { EntryVerifier } from './signing.js'

/** Domain of an endorsement (the predecessor's signature inside a succession record). */
export const SUCCESSION_DOMAIN = 'sledlog/succession/v1\n'

/** Domain of a revocation statement. */
export const REVOCATION_DOMAIN = 'sledlog/revocation/v1\n'

/** What an endorsement binds. */
export interface SuccessionStatement {
  readonly successor: SledId
  readonly predecessor: SledId
  readonly lastSeq: number
  readonly reason: SuccessionReason
}

/** What a revocation signature binds. */
export interface RevocationStatement {
  readonly target: SledId
  readonly fromSeq: number
  readonly authority: RevocationAuthority
  /** The signing key: the target itself (self) or the admin key. */
  readonly signer: SledId
}

/**
 * The bytes an endorsement signs: the domain, then the successor, predecessor, lastSeq (decimal,
 * `-1` for none) and reason, each followed by a line feed.
 */
export function endorsementMessage(s: SuccessionStatement): Buffer {
  return Buffer.from(`${SUCCESSION_DOMAIN}${s.successor}\n${s.predecessor}\n${s.lastSeq}\n${s.reason}\n`, 'utf8')
}

/**
 * The bytes a revocation signs: the domain, then the target, fromSeq (decimal), authority and the
 * signing key, each followed by a line feed.
 */
export function revocationMessage(s: RevocationStatement): Buffer {
  return Buffer.from(`${REVOCATION_DOMAIN}${s.target}\n${s.fromSeq}\n${s.authority}\n${s.signer}\n`, 'utf8')
}

/** The key that must have signed a revocation: its target (self) or its admin key. */
export function revocationSigner(e: { readonly target: SledId; readonly admin?: SledId | undefined }): SledId {
  return e.admin ?? e.target
}

/**
 * Checks the statement inside a succession or revocation entry (nothing for other kinds). Throws
 * SUCCESSION_BAD_ENDORSEMENT when a present endorsement does not verify under the predecessor's
 * key, REVOCATION_BAD_SIGNATURE when a revocation's signature does not verify under the target's
 * (self) or the admin key. Weak keys never verify (§4.3).
 */
export function checkStatement(entry: Entry, verifier: EntryVerifier): void {
  if (entry.kind === 'succession') {
    if (entry.endorsement === null) return
    const msg = endorsementMessage({ ...entry, successor: entry.sled })
    if (!verifier.verifyMessage(entry.predecessor, msg, Buffer.from(entry.endorsement, 'base64url'))) {
      throw sledlogError(
        'SUCCESSION_BAD_ENDORSEMENT',
        `the endorsement in ${entry.sled.slice(0, 12)}…'s succession record does not verify under ` +
          `its predecessor ${entry.predecessor.slice(0, 12)}…`,
        { sled: entry.sled, predecessor: entry.predecessor },
      )
    }
    return
  }
  if (entry.kind === 'revocation') {
    const signer = revocationSigner(entry)
    const msg = revocationMessage({ ...entry, signer })
    if (!verifier.verifyMessage(signer, msg, Buffer.from(entry.signature, 'base64url'))) {
      throw sledlogError(
        'REVOCATION_BAD_SIGNATURE',
        `the revocation of ${entry.target.slice(0, 12)}… in ${entry.sled.slice(0, 12)}…/${entry.seq} does not ` +
          `verify under ${entry.authority === 'self' ? 'the target' : 'admin'} key ${signer.slice(0, 12)}…`,
        { sled: entry.sled, seq: entry.seq, target: entry.target },
      )
    }
  }
}

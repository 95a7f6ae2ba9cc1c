/**
 * Ed25519 signing of entries with node:crypto (the fast path) and the record string format
 * (docs/PROTOCOL.md §4).
 *
 * A record is `base64url(signature)` (86 chars, no padding) + `.` + the entry JSON. The signature
 * covers `ENTRY_DOMAIN` followed by the UTF-8 bytes of the JSON text exactly as stored.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { Point } from '@noble/ed25519'
import { sledlogError } from '../errors.js'
import {
  encodeEntryJson,
  parseEntryJson,
  type Entry,
  type RevocationAuthority,
  type SuccessionReason,
} from './entry.js'
import { sledIdFromPublicKey, type SledId } from './ids.js'
import { checkStatement, endorsementMessage, revocationMessage } from './statements.js'

/** Domain separation prefix of every entry signature. */
export const ENTRY_DOMAIN = 'sledlog/entry/v1\n'
const DOMAIN_BYTES = Buffer.from(ENTRY_DOMAIN, 'utf8')

/** Length of the base64url signature at the start of a record. */
export const SIG_CHARS = 86

/** A sled's secret key material and identity. */
export interface KeyPair {
  /** 32-byte Ed25519 seed (RFC 8032 private key). */
  readonly seed: Uint8Array
  /** 32-byte public key. */
  readonly publicKey: Uint8Array
  /** Hex of the public key. */
  readonly sled: SledId
}

/** Signs entries for one sled. Created once per key: building the KeyObject is the slow part. */
export interface EntrySigner {
  readonly sled: SledId
  /** Signs the entry and returns its record string. */
  signEntry(entry: Entry): string
}

/** Checks entry signatures; caches public KeyObjects per sled. */
export interface EntryVerifier {
  /** True when `sig` is a valid signature by `sled` over `json` (with the entry domain). */
  verifyJson(sled: SledId, json: string, sig: Uint8Array): boolean
  /**
   * True when `sig` is a valid signature by `key` over `message` as it is (its domain already in
   * it): the statements inside succession and revocation records (PROTOCOL.md §4.4).
   */
  verifyMessage(key: SledId, message: Uint8Array, sig: Uint8Array): boolean
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Builds a node:crypto private KeyObject from a 32-byte seed. */
export function privateKeyObject(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new RangeError('Ed25519 seed must be 32 bytes')
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

/** Builds a node:crypto public KeyObject from 32 raw bytes (JWK import: ~7 µs, DER: ~117 µs). */
export function publicKeyObject(pub: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pub).toString('base64url') },
    format: 'jwk',
  })
}

/** Derives the key pair of a seed. */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  const priv = privateKeyObject(seed)
  const jwk = createPublicKey(priv).export({ format: 'jwk' })
  if (typeof jwk.x !== 'string') throw new Error('node:crypto returned no public key')
  const publicKey = new Uint8Array(Buffer.from(jwk.x, 'base64url'))
  return { seed: new Uint8Array(seed), publicKey, sled: sledIdFromPublicKey(publicKey) }
}

/** The exact bytes an entry signature covers. */
export function signedMessage(json: string): Buffer {
  return Buffer.concat([DOMAIN_BYTES, Buffer.from(json, 'utf8')])
}

/** Joins a signature and an entry JSON text into a record string. */
export function formatRecord(sig: Uint8Array, json: string): string {
  return Buffer.from(sig).toString('base64url') + '.' + json
}

/** Splits a record into its signature bytes and JSON text; undefined when it is not a record. */
export function splitRecord(record: string): { sig: Uint8Array; json: string } | undefined {
  if (record.length <= SIG_CHARS + 1 || record.charCodeAt(SIG_CHARS) !== 0x2e /* . */) return undefined
  const b64 = record.slice(0, SIG_CHARS)
  if (!/^[A-Za-z0-9_-]{85}[AQgw]$/.test(b64)) return undefined
  return { sig: new Uint8Array(Buffer.from(b64, 'base64url')), json: record.slice(SIG_CHARS + 1) }
}

/** Creates a node:crypto signer for a key pair. */
export function createSigner(keys: KeyPair): EntrySigner {
  const priv = privateKeyObject(keys.seed)
  return {
    sled: keys.sled,
    signEntry(entry: Entry): string {
      if (entry.sled !== keys.sled) throw sledlogError('ENTRY_INVALID', 'entry names another sled')
      // Never sign what verifiers would refuse (e.g. a clock returning fractions).
      for (const f of ['seq', 'ts'] as const) {
        if (!Number.isSafeInteger(entry[f]) || entry[f] < 0)
          throw sledlogError('ENTRY_INVALID', `${f} must be a non-negative safe integer`)
      }
      const json = encodeEntryJson(entry)
      return formatRecord(sign(null, signedMessage(json), priv), json)
    },
  }
}

/**
 * True for a public key anyone could sign for: a small-order point (for which a signature with
 * S = r verifies under node:crypto) or a non-canonical or invalid encoding. Such a sled id would
 * let anyone fill its slots, so no signature under it is accepted. ~0.15 ms; callers cache it.
 */
export function isWeakPublicKey(pub: Uint8Array): boolean {
  try {
    return Point.fromBytes(pub, false).isSmallOrder()
  } catch {
    return true
  }
}

/** Signs messages (already domain-separated by the caller) with one key: raw 64-byte signatures. */
export type DetachedSigner = (message: Uint8Array) => Uint8Array

/** True when `signature` is the key's over `message` (its domain already in it). */
export type DetachedVerifier = (message: Uint8Array, signature: Uint8Array) => boolean

/**
 * A signer for `keys` that builds the private KeyObject once: a link signing many messages with
 * the node's key (holds receipts) pays the DER import (~0.4 ms, ten signatures) once, not per signature.
 */
export function detachedSigner(keys: KeyPair): DetachedSigner {
  const priv = privateKeyObject(keys.seed)
  return (message) => new Uint8Array(sign(null, message, priv))
}

/** Signs `message` (already domain-separated by the caller) with `keys`: a raw 64-byte signature. */
export function signDetached(keys: KeyPair, message: Uint8Array): Uint8Array {
  return detachedSigner(keys)(message)
}

/**
 * A verifier of `publicKey`'s signatures that checks the key and builds its KeyObject once (the
 * weak-key check costs ~80 µs, about a verification; the import ~15 µs): for a peer whose key
 * verifies many messages on one link. Same verdicts as {@link verifyDetached}: a weak key ({@link
 * isWeakPublicKey}) verifies nothing; a malformed key or signature is false, not thrown.
 */
export function detachedVerifier(publicKey: Uint8Array): DetachedVerifier {
  let key: KeyObject | null = null
  if (!isWeakPublicKey(publicKey)) {
    try {
      key = publicKeyObject(publicKey)
    } catch {
      key = null
    }
  }
  return (message, signature) => {
    if (key === null) return false
    try {
      return verify(null, message, key, signature)
    } catch {
      return false
    }
  }
}

/**
 * True when `signature` is `publicKey`'s over `message`. A weak key ({@link isWeakPublicKey})
 * would let anyone sign, so it verifies nothing; a malformed key or signature is false, not thrown.
 */
export function verifyDetached(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return detachedVerifier(publicKey)(message, signature)
}

/**
 * Creates a node:crypto verifier with a bounded cache of public KeyObjects. Weak keys
 * ({@link isWeakPublicKey}) never verify.
 */
export function createVerifier(maxCachedKeys = 4096): EntryVerifier {
  const cache = new Map<SledId, KeyObject | null>()
  const keyOf = (sled: SledId): KeyObject | null => {
    let key = cache.get(sled)
    if (key === undefined) {
      if (cache.size >= maxCachedKeys) cache.clear()
      const pub = Buffer.from(sled, 'hex')
      key = isWeakPublicKey(pub) ? null : publicKeyObject(pub)
      cache.set(sled, key)
    }
    return key
  }
  const check = (sled: SledId, message: Uint8Array, sig: Uint8Array): boolean => {
    const key = keyOf(sled)
    return key !== null && verify(null, message, key, sig)
  }
  return {
    verifyJson: (sled, json, sig) => check(sled, signedMessage(json), sig),
    verifyMessage: check,
  }
}

/**
 * The predecessor's endorsement of a successor (PROTOCOL.md §4.4): base64url of its signature
 * over the endorsement message, for a succession record's `endorsement` field.
 */
export function endorseSuccession(
  predecessor: KeyPair,
  s: { readonly successor: SledId; readonly lastSeq: number; readonly reason: SuccessionReason },
): string {
  const msg = endorsementMessage({ ...s, predecessor: predecessor.sled })
  return Buffer.from(sign(null, msg, privateKeyObject(predecessor.seed))).toString('base64url')
}

/**
 * A revocation signature (PROTOCOL.md §4.4) by `signer`: the target's own key (authority self)
 * or an admin key (authority admin), base64url, for a revocation record's `signature` field.
 */
export function signRevocation(
  signer: KeyPair,
  r: { readonly target: SledId; readonly fromSeq: number; readonly authority: RevocationAuthority },
): string {
  if (r.authority === 'self' && signer.sled !== r.target)
    throw sledlogError('ENTRY_INVALID', 'a self revocation must be signed by the target key itself')
  const msg = revocationMessage({ ...r, signer: signer.sled })
  return Buffer.from(sign(null, msg, privateKeyObject(signer.seed))).toString('base64url')
}

/** A record that passed {@link openRecord}. */
export interface OpenedRecord {
  readonly entry: Entry
  readonly sig: Uint8Array
}

/**
 * Parses a record and verifies its signature against the sled named inside it, then the
 * statement inside a succession or revocation record (PROTOCOL.md §4.3). Throws ENTRY_INVALID
 * (malformed), SUCCESSION_INVALID (a succession out of place), UPDATE_BAD_SIGNATURE (the entry
 * signature does not verify), SUCCESSION_BAD_ENDORSEMENT or REVOCATION_BAD_SIGNATURE.
 */
export function openRecord(record: string, verifier: EntryVerifier): OpenedRecord {
  const parts = splitRecord(record)
  if (parts === undefined)
    throw sledlogError('ENTRY_INVALID', 'record does not start with an 86-char signature and "."')
  const entry = parseEntryJson(parts.json)
  if (!verifier.verifyJson(entry.sled, parts.json, parts.sig)) {
    throw sledlogError(
      'UPDATE_BAD_SIGNATURE',
      `signature of ${entry.sled.slice(0, 12)}…/${entry.seq} does not verify`,
      {
        sled: entry.sled,
        seq: entry.seq,
      },
    )
  }
  checkStatement(entry, verifier)
  return { entry, sig: parts.sig }
}

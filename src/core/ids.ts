/**
 * Sled ids and their binding to Yjs client ids and root names (docs/PROTOCOL.md §2).
 */

/** Lowercase hex of a sled's 32-byte Ed25519 public key (64 chars). */
export type SledId = string & { readonly __brand: 'SledId' }

/** A Yjs client id derived from a sled id; an unsigned integer below 2^53. */
export type ClientId = number & { readonly __brand: 'ClientId' }

const SLED_ID_RE = /^[0-9a-f]{64}$/

/** Prefix of a sled's root `Y.Array` name in the Yjs doc. */
export const ROOT_PREFIX = 'log:'

/** True when `s` is a well-formed sled id. */
export function isSledId(s: unknown): s is SledId {
  return typeof s === 'string' && SLED_ID_RE.test(s)
}

/** Hex-encodes a 32-byte public key as a sled id. */
export function sledIdFromPublicKey(pub: Uint8Array): SledId {
  if (pub.length !== 32) throw new RangeError(`public key must be 32 bytes, got ${pub.length}`)
  return Buffer.from(pub).toString('hex') as SledId
}

/** Decodes a sled id back to its 32 raw public key bytes. */
export function publicKeyOf(sled: SledId): Uint8Array {
  return new Uint8Array(Buffer.from(sled, 'hex'))
}

/**
 * The Yjs client id a sled writes with: the first 56 bits of the public key shifted right by 3,
 * i.e. the top 53 bits, so it is a safe integer. 53 bits (not Yjs' usual 32) make grinding a key
 * whose client id collides with a victim's infeasible (2^53 key generations).
 */
export function clientIdOf(sled: SledId): ClientId {
  return Number(BigInt('0x' + sled.slice(0, 14)) >> 3n) as ClientId
}

/** The name of the root `Y.Array` holding a sled's entries. */
export function rootNameOf(sled: SledId): string {
  return ROOT_PREFIX + sled
}

/** The sled id named by a root array name, or undefined when the name is not a sled root. */
export function sledOfRootName(name: string): SledId | undefined {
  if (!name.startsWith(ROOT_PREFIX)) return undefined
  const s = name.slice(ROOT_PREFIX.length)
  return isSledId(s) ? s : undefined
}

/**
 * The signed challenge handshake between two peers (docs/PROTOCOL.md §8.2). Pure.
 *
 * Server → client: hello(serverKey, nonceS). Client → server: prove(clientKey, nonceC,
 * sig_client(T_client), token_client). Server → client: ok(sig_server(T_server), token_server).
 * Both transcripts bind both keys and both nonces, so a proof cannot be replayed on another
 * link or reflected back; the role tag keeps a client proof from passing as a server proof.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { sledIdFromPublicKey, type SledId } from '../core/ids.js'
import type { ChainLink } from '../core/succession.js'
import { signDetached, verifyDetached, type KeyPair } from '../core/signing.js'

/** Domain separation prefix of handshake signatures (distinct from entry signatures). */
export const AUTH_DOMAIN = 'sledlog/auth/v1\n'

/** Authentication settings of a node. */
export interface AuthConfig {
  /** When set, only these sleds may connect or be connected to. */
  readonly allow?: ReadonlySet<SledId>
  /** When set, both sides must prove knowledge of this shared token. */
  readonly token?: string
  /** Key succession (PROTOCOL.md §8.2): the chain this node presents, and vetoes on chains it is shown. */
  readonly succession?: SuccessionAuth
}

/** What the handshake asks of the log about key succession. */
export interface SuccessionAuth {
  /**
   * The succession records presenting this node as a signed successor: its own entry 0, its
   * predecessor's, … (empty when its key succeeds none). Asked at each handshake.
   */
  present(): readonly string[]
  /**
   * The succession records this node holds that present `sled` as a signed successor, in the
   * same order (empty when it holds none). A peer that lost its store since it moved to its key
   * has no chain left to present, yet the nodes it replicated to hold it; asked only when the
   * peer is off the allow-list and what it presented does not admit it.
   */
  known?(sled: SledId): readonly string[]
  /**
   * A reason to refuse a link of a chain a peer presents (a predecessor whose key endorsed two
   * successors, a successor retired from seq 0), or undefined.
   */
  refuse?(link: ChainLink): string | undefined
}

/** The values a handshake binds. */
export interface Transcript {
  readonly serverKey: Uint8Array
  readonly serverNonce: Uint8Array
  readonly clientKey: Uint8Array
  readonly clientNonce: Uint8Array
}

/** A fresh 32-byte challenge. */
export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(32))
}

/** The bytes one side signs. */
export function transcriptBytes(role: 'client' | 'server', t: Transcript): Buffer {
  return Buffer.concat([Buffer.from(AUTH_DOMAIN + role + '\n'), t.serverKey, t.serverNonce, t.clientKey, t.clientNonce])
}

/** Signs the transcript for `role` with this node's key. */
export function signTranscript(keys: KeyPair, role: 'client' | 'server', t: Transcript): Uint8Array {
  return signDetached(keys, transcriptBytes(role, t))
}

/** Verifies the other side's transcript signature. */
export function verifyTranscript(role: 'client' | 'server', t: Transcript, signature: Uint8Array): boolean {
  const key = role === 'client' ? t.clientKey : t.serverKey
  // A weak key would let anyone prove it, so it proves nothing (verifyDetached refuses it).
  return verifyDetached(key, transcriptBytes(role, t), signature)
}

/** Proof of the shared token for `role` (empty when no token is configured). */
export function tokenProof(token: string | undefined, role: 'client' | 'server', t: Transcript): Uint8Array {
  if (token === undefined) return new Uint8Array(0)
  return new Uint8Array(createHmac('sha256', token).update(transcriptBytes(role, t)).digest())
}

/** Checks the other side's token proof in constant time. */
export function checkTokenProof(
  token: string | undefined,
  role: 'client' | 'server',
  t: Transcript,
  proof: Uint8Array,
): boolean {
  if (token === undefined) return true
  const want = tokenProof(token, role, t)
  return proof.length === want.length && timingSafeEqual(proof, want)
}

/** Why a peer is refused, or undefined when the allow-list admits it. */
export function allowListVerdict(auth: AuthConfig, peer: Uint8Array): SledId | undefined {
  const sled = sledIdFromPublicKey(peer)
  return auth.allow === undefined || auth.allow.has(sled) ? undefined : sled
}

/**
 * The handshake as pure steps (docs/PROTOCOL.md §8.2): a state and a received message give the
 * messages to send, the next state and an outcome. The node's sessions, the harness's hostile
 * peer and the tests' raw clients all run these; a hostile client varies the inputs of
 * {@link buildProve} / {@link buildOk} (another key, nonce, role, token), never the code.
 */
import { sledIdFromPublicKey, type SledId } from '../core/ids.js'
import { createVerifier, type KeyPair } from '../core/signing.js'
import { admitByChain } from '../core/succession.js'
import { CLOSE } from './close-codes.js'
import {
  allowListVerdict,
  checkTokenProof,
  newNonce,
  signTranscript,
  tokenProof,
  verifyTranscript,
  type AuthConfig,
  type Transcript,
} from './handshake.js'
import { AUTH_VERSION, encodeDenied, encodeHello, encodeOk, encodeProve, type WireMessage } from './messages.js'

/** What one side knows between handshake messages. */
export type HandshakeState =
  | { readonly step: 'await-prove'; readonly serverNonce: Uint8Array }
  | { readonly step: 'await-hello' }
  | { readonly step: 'await-ok'; readonly transcript: Transcript }
  | { readonly step: 'done'; readonly peer: SledId; readonly transcript: Transcript }
  | { readonly step: 'failed' }

/** Who this side is and whom it admits. */
export interface HandshakeIdentity {
  readonly keys: KeyPair
  readonly auth: AuthConfig
}

/** What a handshake step means for the link. */
export type HandshakeOutcome =
  /** Wait for the next message. */
  | { readonly kind: 'continue' }
  /** A message y-websocket clients send on open (step 1, awareness): dropped, not a violation. */
  | { readonly kind: 'ignored' }
  /**
   * Authenticated: the peer proved `peer`'s key (the server sends its ok only once admitted).
   * `via`: the allow-listed sled it was admitted as a signed successor of (PROTOCOL.md §8.2);
   * `chain`: the succession records it presented (checked only when it was admitted by them).
   */
  | {
      readonly kind: 'ready'
      readonly peer: SledId
      readonly transcript: Transcript
      readonly chain: readonly string[]
      readonly via?: SledId
    }
  /** Close the link with `close` after sending what the step says. */
  | {
      readonly kind: 'refused'
      readonly close: number
      readonly reason: string
      /** The rejection to count, if any. */
      readonly error?: 'PEER_AUTH_FAILED' | 'PEER_NOT_ALLOWED'
      /** The peer's sled when it proved its key (refused as itself or off the allow-list). */
      readonly peer?: SledId
    }
  /** A message that has no place in the handshake. */
  | { readonly kind: 'violation'; readonly message: string }

/** The result of one step. */
export interface HandshakeStep {
  readonly state: HandshakeState
  readonly send: readonly Uint8Array[]
  readonly outcome: HandshakeOutcome
}

type Hello = Extract<WireMessage, { t: 'hello' }>

/** Inputs of a prove message; everything but `keys` defaults to the honest value. */
export interface ProveInputs {
  /** Signs the transcript (and is presented, unless `presentKey` says otherwise). */
  readonly keys: KeyPair
  readonly token?: string | undefined
  /** Client nonce sent (default: fresh). */
  readonly nonce?: Uint8Array
  /** Identity presented (default: `keys`). */
  readonly presentKey?: Uint8Array
  /** Role the signature is made for (default 'client'). */
  readonly role?: 'client' | 'server'
  /** Server nonce the signature binds (default: the one in hello). */
  readonly signedServerNonce?: Uint8Array
  /** Client nonce the signature binds (default: the one sent). */
  readonly signedClientNonce?: Uint8Array
  /** Signature bytes sent instead of the computed one. */
  readonly signature?: Uint8Array
  /** Flip a bit of the signature. */
  readonly corruptSignature?: boolean
  /** Succession records presented (default none). */
  readonly chain?: readonly string[]
}

/** Inputs of an ok message; everything but `keys` defaults to the honest value. */
export interface OkInputs {
  readonly keys: KeyPair
  readonly token?: string | undefined
  /** Succession records presented (default none). */
  readonly chain?: readonly string[]
  /** Role the signature is made for (default 'server'). */
  readonly role?: 'client' | 'server'
  readonly corruptSignature?: boolean
}

/** Signature bytes with one bit flipped. */
export function corruptSignature(sig: Uint8Array): Uint8Array {
  const out = new Uint8Array(sig)
  out[0] = (out[0] ?? 0) ^ 1
  return out
}

/** The client's answer to `hello`: the prove message and the transcript it claims. */
export function buildProve(hello: Hello, inputs: ProveInputs): { bytes: Uint8Array; transcript: Transcript } {
  const nonce = inputs.nonce ?? newNonce()
  const presentKey = inputs.presentKey ?? inputs.keys.publicKey
  const transcript: Transcript = {
    serverKey: hello.publicKey,
    serverNonce: hello.nonce,
    clientKey: presentKey,
    clientNonce: nonce,
  }
  const signed: Transcript = {
    ...transcript,
    serverNonce: inputs.signedServerNonce ?? transcript.serverNonce,
    clientNonce: inputs.signedClientNonce ?? transcript.clientNonce,
  }
  const role = inputs.role ?? 'client'
  let sig = inputs.signature ?? signTranscript(inputs.keys, role, signed)
  if (inputs.corruptSignature === true) sig = corruptSignature(sig)
  const proof = tokenProof(inputs.token, role, signed)
  return { bytes: encodeProve(presentKey, nonce, sig, proof, inputs.chain ?? []), transcript }
}

/** The server's ok for an accepted prove. */
export function buildOk(t: Transcript, inputs: OkInputs): Uint8Array {
  const role = inputs.role ?? 'server'
  let sig = signTranscript(inputs.keys, role, t)
  if (inputs.corruptSignature === true) sig = corruptSignature(sig)
  return encodeOk(sig, tokenProof(inputs.token, role, t), inputs.chain ?? [])
}

/** The server's first step: it speaks first, with its key and a fresh challenge. */
export function serverStart(keys: KeyPair, nonce: Uint8Array = newNonce()): HandshakeStep {
  return {
    state: { step: 'await-prove', serverNonce: nonce },
    send: [encodeHello(keys.publicKey, nonce)],
    outcome: { kind: 'continue' },
  }
}

/** The client's first state: it waits for the server's hello. */
export function clientStart(): HandshakeState {
  return { step: 'await-hello' }
}

const FAILED: HandshakeState = { step: 'failed' }

/** One handshake step: `msg` received in `state` by the side `id`. */
export function handshakeStep(state: HandshakeState, msg: WireMessage, id: HandshakeIdentity): HandshakeStep {
  const stay = (outcome: HandshakeOutcome): HandshakeStep => ({ state, send: [], outcome })
  if (msg.t === 'denied') return refuse([], CLOSE.AUTH_FAILED, `peer denied access: ${msg.reason}`)
  // y-websocket clients send step 1 and awareness as soon as the socket opens: ignore them
  // until the peer has proven its key; each side sends its own step 1 once ready.
  if (msg.t === 'step1' || msg.t === 'awareness' || msg.t === 'query-awareness') return stay({ kind: 'ignored' })
  const { auth, keys } = id
  if (state.step === 'await-hello' && msg.t === 'hello') {
    if (msg.version !== AUTH_VERSION)
      return authFail(false, `peer speaks handshake v${msg.version}, this node v${AUTH_VERSION}`)
    const { bytes, transcript } = buildProve(msg, { keys, token: auth.token, chain: present(auth) })
    return { state: { step: 'await-ok', transcript }, send: [bytes], outcome: { kind: 'continue' } }
  }
  if (state.step === 'await-prove' && msg.t === 'prove') {
    const t: Transcript = {
      serverKey: keys.publicKey,
      serverNonce: state.serverNonce,
      clientKey: msg.publicKey,
      clientNonce: msg.nonce,
    }
    if (!verifyTranscript('client', t, msg.signature)) return authFail(true, 'handshake signature does not verify')
    if (!checkTokenProof(auth.token, 'client', t, msg.tokenProof)) return authFail(true, 'wrong shared token')
    return admit(id, msg.publicKey, msg.chain, t, () => [buildOk(t, { keys, token: auth.token, chain: present(auth) })])
  }
  if (state.step === 'await-ok' && msg.t === 'ok') {
    const t = state.transcript
    if (!verifyTranscript('server', t, msg.signature))
      return authFail(false, 'server handshake signature does not verify')
    if (!checkTokenProof(auth.token, 'server', t, msg.tokenProof))
      return authFail(false, 'server does not know the shared token')
    return admit(id, t.serverKey, msg.chain, t, () => [])
  }
  // The state stays: the session's violation budget decides whether the link survives.
  return stay({ kind: 'violation', message: `unexpected ${msg.t} during the handshake` })
}

function refuse(
  send: Uint8Array[],
  close: number,
  reason: string,
  error?: 'PEER_AUTH_FAILED' | 'PEER_NOT_ALLOWED',
  peer?: SledId,
): HandshakeStep {
  return {
    state: FAILED,
    send,
    outcome: {
      kind: 'refused',
      close,
      reason,
      ...(error === undefined ? {} : { error }),
      ...(peer === undefined ? {} : { peer }),
    },
  }
}

/** A failed proof: the server tells the client why before closing; a client just closes. */
function authFail(tellPeer: boolean, reason: string): HandshakeStep {
  return refuse(tellPeer ? [encodeDenied(reason)] : [], CLOSE.AUTH_FAILED, reason, 'PEER_AUTH_FAILED')
}

/** The succession records this side presents (none unless its key is a signed successor). */
function present(auth: AuthConfig): readonly string[] {
  return auth.succession?.present() ?? []
}

/**
 * The peer proved `peerKey`: refuse itself; a sled off the allow-list is admitted only as a
 * signed successor of a listed sled, by the chain it presented (PROTOCOL.md §8.2); else ready.
 */
function admit(
  id: HandshakeIdentity,
  peerKey: Uint8Array,
  chain: readonly string[],
  t: Transcript,
  send: () => Uint8Array[],
): HandshakeStep {
  const peer = sledIdFromPublicKey(peerKey)
  if (peer === id.keys.sled) return refuse([], CLOSE.SELF, 'connected to itself (same sled id)', undefined, peer)
  const refused = allowListVerdict(id.auth, peerKey)
  let via: SledId | undefined
  if (refused !== undefined) {
    const allow = id.auth.allow ?? new Set<SledId>()
    const walk = (records: readonly string[]) =>
      records.length === 0
        ? undefined
        : // A verifier of its own: at most 8 records, each key seen once or twice.
          admitByChain(peer, records, createVerifier(16), (s) => allow.has(s), id.auth.succession?.refuse)
    let verdict = walk(chain)
    // A successor whose store was lost again has nothing to present; the records this node holds
    // of it (checked by the guard when they came in) are checked again the same way.
    if (verdict?.ok !== true) verdict = walk(id.auth.succession?.known?.(peer) ?? []) ?? verdict
    if (verdict?.ok !== true) {
      const why = verdict === undefined ? '' : ` (${verdict.reason})`
      return refuse(
        [encodeDenied(`sled ${refused} is not on the allow-list${why}`)],
        CLOSE.NOT_ALLOWED,
        `sled ${refused.slice(0, 16)}… is not on the allow-list${why}`,
        'PEER_NOT_ALLOWED',
        peer,
      )
    }
    via = verdict.via
  }
  const outcome = { kind: 'ready', peer, transcript: t, chain, ...(via === undefined ? {} : { via }) } as const
  return { state: { step: 'done', peer, transcript: t }, send: send(), outcome }
}

/**
 * Wire messages between sledlog peers (docs/PROTOCOL.md §8). Pure.
 *
 * The framing is y-websocket's: each websocket binary message starts with a varuint message
 * type. Types 0 (sync) and 1 (awareness) are y-websocket's own, so a stock `WebsocketProvider`
 * speaks to a sledlog node; type 100 carries sledlog's signed challenge handshake.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { sledlogError } from '../errors.js'

/** y-websocket message types. */
export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const MSG_AUTH = 2
export const MSG_QUERY_AWARENESS = 3
/** sledlog's handshake message type. */
export const MSG_SLED_AUTH = 100
/** sledlog's per-sled content digests (detects replicas that differ under equal state vectors). */
export const MSG_SLED_DIGEST = 101
/** sledlog's holds receipt: "I durably hold your sled's first `length` entries", signed (holds.ts). */
export const MSG_SLED_HOLDS = 102

/** y-protocols sync sub-types. */
export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2

const AUTH_HELLO = 0
const AUTH_PROVE = 1
const AUTH_OK = 2

/** Handshake protocol version. */
export const AUTH_VERSION = 1

/** Most succession records a `prove` or `ok` may carry (PROTOCOL.md §8.2). */
export const MAX_CHAIN_RECORDS = 8

/** Largest succession record a `prove` or `ok` may carry, UTF-8 bytes (real ones are ~400). */
export const MAX_CHAIN_RECORD_BYTES = 2048

/** A decoded wire message. */
export type WireMessage =
  | { readonly t: 'step1'; readonly stateVector: Uint8Array }
  | { readonly t: 'step2'; readonly update: Uint8Array }
  | { readonly t: 'update'; readonly update: Uint8Array }
  | { readonly t: 'awareness' }
  | { readonly t: 'query-awareness' }
  | { readonly t: 'denied'; readonly reason: string }
  | { readonly t: 'hello'; readonly version: number; readonly publicKey: Uint8Array; readonly nonce: Uint8Array }
  | {
      readonly t: 'prove'
      readonly publicKey: Uint8Array
      readonly nonce: Uint8Array
      readonly signature: Uint8Array
      readonly tokenProof: Uint8Array
      /** Succession records presenting the sender as a signed successor (PROTOCOL.md §8.2); often none. */
      readonly chain: readonly string[]
    }
  | {
      readonly t: 'ok'
      readonly signature: Uint8Array
      readonly tokenProof: Uint8Array
      readonly chain: readonly string[]
    }
  | { readonly t: 'digest'; readonly digests: readonly SledDigest[] }
  | { readonly t: 'holds'; readonly length: number; readonly signature: Uint8Array }

/** A hash over a client's (chosen) records 0..length-1. */
export interface SledDigest {
  readonly client: number
  readonly length: number
  readonly hash: Uint8Array
}

function bytes(dec: decoding.Decoder, n: number): Uint8Array {
  if (dec.arr.length - dec.pos < n) throw new RangeError('message too short')
  return decoding.readUint8Array(dec, n)
}

function varBytes(dec: decoding.Decoder): Uint8Array {
  const n = decoding.readVarUint(dec)
  return bytes(dec, n)
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The optional chain at the end of a prove or ok: absent when the body ends, else a count of 1
 * to {@link MAX_CHAIN_RECORDS} and that many varuint-prefixed UTF-8 records of at most
 * {@link MAX_CHAIN_RECORD_BYTES}. A count of 0 is refused: a sender without a chain omits it.
 */
function chainField(dec: decoding.Decoder): string[] {
  if (dec.pos === dec.arr.length) return []
  const n = decoding.readVarUint(dec)
  if (n < 1 || n > MAX_CHAIN_RECORDS) throw new RangeError(`a chain of ${n} records (1..${MAX_CHAIN_RECORDS})`)
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const len = decoding.readVarUint(dec)
    if (len > MAX_CHAIN_RECORD_BYTES) throw new RangeError(`a chain record of ${len} bytes`)
    out.push(strictUtf8.decode(bytes(dec, len)))
  }
  return out
}

function writeChain(e: encoding.Encoder, chain: readonly string[]): void {
  if (chain.length === 0) return
  encoding.writeVarUint(e, chain.length)
  for (const r of chain) encoding.writeVarUint8Array(e, Buffer.from(r, 'utf8'))
}

/** Decodes one wire message; throws PEER_PROTOCOL for anything malformed or unknown. */
export function decodeMessage(buf: Uint8Array): WireMessage {
  try {
    const dec = decoding.createDecoder(buf)
    const type = decoding.readVarUint(dec)
    let msg: WireMessage
    if (type === MSG_SYNC) {
      const sub = decoding.readVarUint(dec)
      const payload = varBytes(dec)
      if (sub === SYNC_STEP1) msg = { t: 'step1', stateVector: payload }
      else if (sub === SYNC_STEP2) msg = { t: 'step2', update: payload }
      else if (sub === SYNC_UPDATE) msg = { t: 'update', update: payload }
      else throw new RangeError(`unknown sync sub-type ${sub}`)
    } else if (type === MSG_AWARENESS) {
      varBytes(dec)
      msg = { t: 'awareness' }
    } else if (type === MSG_QUERY_AWARENESS) {
      msg = { t: 'query-awareness' }
    } else if (type === MSG_AUTH) {
      if (decoding.readVarUint(dec) !== 0) throw new RangeError('unknown auth sub-type')
      msg = { t: 'denied', reason: decoding.readVarString(dec).slice(0, 200) }
    } else if (type === MSG_SLED_AUTH) {
      const sub = decoding.readVarUint(dec)
      if (sub === AUTH_HELLO)
        msg = { t: 'hello', version: decoding.readVarUint(dec), publicKey: bytes(dec, 32), nonce: bytes(dec, 32) }
      else if (sub === AUTH_PROVE) {
        msg = {
          t: 'prove',
          publicKey: bytes(dec, 32),
          nonce: bytes(dec, 32),
          signature: bytes(dec, 64),
          tokenProof: varBytes(dec),
          chain: chainField(dec),
        }
      } else if (sub === AUTH_OK) {
        msg = { t: 'ok', signature: bytes(dec, 64), tokenProof: varBytes(dec), chain: chainField(dec) }
      } else throw new RangeError(`unknown handshake sub-type ${sub}`)
    } else if (type === MSG_SLED_DIGEST) {
      const n = decoding.readVarUint(dec)
      if (n * 34 > buf.length) throw new RangeError('digest count runs past the message')
      const digests: SledDigest[] = []
      for (let i = 0; i < n; i++)
        digests.push({ client: decoding.readVarUint(dec), length: decoding.readVarUint(dec), hash: bytes(dec, 32) })
      msg = { t: 'digest', digests }
    } else if (type === MSG_SLED_HOLDS) {
      const length = decoding.readVarUint(dec)
      if (!Number.isSafeInteger(length)) throw new RangeError('holds length is not a safe integer')
      msg = { t: 'holds', length, signature: bytes(dec, 64) }
    } else {
      throw new RangeError(`unknown message type ${type}`)
    }
    // Awareness payloads are skipped wholesale; everything else must be consumed exactly.
    if (msg.t !== 'awareness' && dec.pos !== buf.length) throw new RangeError('trailing bytes')
    return msg
  } catch (err) {
    throw sledlogError('PEER_PROTOCOL', `bad message: ${(err as Error).message}`)
  }
}

function frame(type: number, write: (enc: encoding.Encoder) => void): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, type)
  write(enc)
  return encoding.toUint8Array(enc)
}

/** Sync step 1: "here is my state vector, send me what I lack". */
export function encodeStep1(stateVector: Uint8Array): Uint8Array {
  return frame(MSG_SYNC, (e) => {
    encoding.writeVarUint(e, SYNC_STEP1)
    encoding.writeVarUint8Array(e, stateVector)
  })
}

/** Sync step 2: the last (possibly empty) chunk of an answer to step 1; marks the answer done. */
export function encodeStep2(update: Uint8Array): Uint8Array {
  return frame(MSG_SYNC, (e) => {
    encoding.writeVarUint(e, SYNC_STEP2)
    encoding.writeVarUint8Array(e, update)
  })
}

/** A sync update: a chunk of an answer, or a live change. */
export function encodeUpdate(update: Uint8Array): Uint8Array {
  return frame(MSG_SYNC, (e) => {
    encoding.writeVarUint(e, SYNC_UPDATE)
    encoding.writeVarUint8Array(e, update)
  })
}

/**
 * An empty awareness update, as y-websocket clients send. sledlog ignores awareness and never
 * sends it (its keep-alive is step 1 every `resyncMs`); tests use it as a harmless message.
 */
export function encodeAwarenessKeepAlive(): Uint8Array {
  return frame(MSG_AWARENESS, (e) => {
    // An awareness update with zero clients.
    encoding.writeVarUint8Array(e, new Uint8Array([0]))
  })
}

/** y-protocols "permission denied", sent before closing an unauthorized link. */
export function encodeDenied(reason: string): Uint8Array {
  return frame(MSG_AUTH, (e) => {
    encoding.writeVarUint(e, 0)
    encoding.writeVarString(e, reason)
  })
}

/** Handshake step 1 (server → client): the server's key and challenge. */
export function encodeHello(publicKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  return frame(MSG_SLED_AUTH, (e) => {
    encoding.writeVarUint(e, AUTH_HELLO)
    encoding.writeVarUint(e, AUTH_VERSION)
    encoding.writeUint8Array(e, publicKey)
    encoding.writeUint8Array(e, nonce)
  })
}

/**
 * Handshake step 2 (client → server): the client's key, challenge and proof, and the succession
 * records that present it as a signed successor, when it is one (omitted when `chain` is empty,
 * so the message is byte for byte what nodes before succession send and accept).
 */
export function encodeProve(
  publicKey: Uint8Array,
  nonce: Uint8Array,
  signature: Uint8Array,
  tokenProof: Uint8Array,
  chain: readonly string[] = [],
): Uint8Array {
  return frame(MSG_SLED_AUTH, (e) => {
    encoding.writeVarUint(e, AUTH_PROVE)
    encoding.writeUint8Array(e, publicKey)
    encoding.writeUint8Array(e, nonce)
    encoding.writeUint8Array(e, signature)
    encoding.writeVarUint8Array(e, tokenProof)
    writeChain(e, chain)
  })
}

/** Handshake step 3 (server → client): the server's proof, and its succession records (see {@link encodeProve}). */
export function encodeOk(signature: Uint8Array, tokenProof: Uint8Array, chain: readonly string[] = []): Uint8Array {
  return frame(MSG_SLED_AUTH, (e) => {
    encoding.writeVarUint(e, AUTH_OK)
    encoding.writeUint8Array(e, signature)
    encoding.writeVarUint8Array(e, tokenProof)
    writeChain(e, chain)
  })
}

/** Per-sled digests: lets a peer notice content that differs under an equal state vector. */
export function encodeDigest(digests: readonly SledDigest[]): Uint8Array {
  return frame(MSG_SLED_DIGEST, (e) => {
    encoding.writeVarUint(e, digests.length)
    for (const d of digests) {
      encoding.writeVarUint(e, d.client)
      encoding.writeVarUint(e, d.length)
      encoding.writeUint8Array(e, d.hash)
    }
  })
}

/** A holds receipt (holds.ts): the length of the receiver's sled the sender holds, and its signature. */
export function encodeHolds(length: number, signature: Uint8Array): Uint8Array {
  return frame(MSG_SLED_HOLDS, (e) => {
    encoding.writeVarUint(e, length)
    encoding.writeUint8Array(e, signature)
  })
}

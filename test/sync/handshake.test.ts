/**
 * The signed challenge handshake (src/sync/handshake.ts): transcripts, role separation, token
 * proofs and the allow-list verdict. Pure functions; the wire-level attacks are in
 * hostile.test.ts.
 */
import { verify } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { sledIdFromPublicKey, type SledId } from '../../src/core/ids.js'
import { keyPairFromSeed, publicKeyObject } from '../../src/core/signing.js'
import {
  allowListVerdict,
  AUTH_DOMAIN,
  checkTokenProof,
  newNonce,
  signTranscript,
  tokenProof,
  transcriptBytes,
  verifyTranscript,
  type Transcript,
} from '../../src/sync/handshake.js'
import { seedOf, testKeys } from '../helpers/keys.js'
import { testSeed } from '../helpers/seed.js'

const SERVER = testKeys(201)
const CLIENT = testKeys(202)
const MALLORY = testKeys(203)

function transcript(over: Partial<Transcript> = {}): Transcript {
  return {
    serverKey: SERVER.publicKey,
    serverNonce: newNonce(),
    clientKey: CLIENT.publicKey,
    clientNonce: newNonce(),
    ...over,
  }
}

describe('transcripts', () => {
  it('bind the role, both keys and both nonces, after the domain prefix', () => {
    const t = transcript()
    const b = transcriptBytes('client', t)
    const head = Buffer.from(AUTH_DOMAIN + 'client\n')
    expect(b.subarray(0, head.length)).toEqual(head)
    expect(b.length).toBe(head.length + 128)
    expect(b.subarray(head.length)).toEqual(Buffer.concat([t.serverKey, t.serverNonce, t.clientKey, t.clientNonce]))
    expect(transcriptBytes('server', t).equals(b)).toBe(false)
    expect(AUTH_DOMAIN).not.toBe('sledlog/entry/v1\n')
  })

  it('nonces are 32 fresh random bytes', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 100; i++) {
      const n = newNonce()
      expect(n).toBeInstanceOf(Uint8Array)
      expect(n.length).toBe(32)
      seen.add(Buffer.from(n).toString('hex'))
    }
    expect(seen.size).toBe(100)
  })
})

describe('valid transcripts verify', () => {
  it('client and server proofs of a full exchange', () => {
    const t = transcript()
    expect(verifyTranscript('client', t, signTranscript(CLIENT, 'client', t))).toBe(true)
    expect(verifyTranscript('server', t, signTranscript(SERVER, 'server', t))).toBe(true)
  })

  it('signatures are deterministic (Ed25519) and 64 bytes', () => {
    const t = transcript()
    const a = signTranscript(CLIENT, 'client', t)
    expect(a.length).toBe(64)
    expect(signTranscript(CLIENT, 'client', t)).toEqual(a)
  })

  it('keys derived from a seed again (keyPairFromSeed) prove the same identity', () => {
    const again = keyPairFromSeed(seedOf(202))
    const t = transcript()
    expect(verifyTranscript('client', t, signTranscript(again, 'client', t))).toBe(true)
  })
})

describe('a proof does not verify', () => {
  it('under the other role (a client proof is no server proof and vice versa)', () => {
    const t = transcript()
    expect(verifyTranscript('server', t, signTranscript(CLIENT, 'client', t))).toBe(false)
    expect(verifyTranscript('client', t, signTranscript(SERVER, 'server', t))).toBe(false)
    // even when both sides use the same key, the role tag separates the proofs
    const same = transcript({ clientKey: SERVER.publicKey })
    expect(verifyTranscript('server', same, signTranscript(SERVER, 'client', same))).toBe(false)
    expect(verifyTranscript('client', same, signTranscript(SERVER, 'server', same))).toBe(false)
  })

  it('with another server nonce or client nonce (no replay onto another link)', () => {
    const t = transcript()
    const sig = signTranscript(CLIENT, 'client', t)
    expect(verifyTranscript('client', { ...t, serverNonce: newNonce() }, sig)).toBe(false)
    expect(verifyTranscript('client', { ...t, clientNonce: newNonce() }, sig)).toBe(false)
    const ssig = signTranscript(SERVER, 'server', t)
    expect(verifyTranscript('server', { ...t, serverNonce: newNonce() }, ssig)).toBe(false)
    expect(verifyTranscript('server', { ...t, clientNonce: newNonce() }, ssig)).toBe(false)
  })

  it('with swapped keys or nonces (no reflection)', () => {
    const t = transcript()
    const swappedKeys: Transcript = { ...t, serverKey: t.clientKey, clientKey: t.serverKey }
    const swappedNonces: Transcript = { ...t, serverNonce: t.clientNonce, clientNonce: t.serverNonce }
    const csig = signTranscript(CLIENT, 'client', t)
    const ssig = signTranscript(SERVER, 'server', t)
    expect(verifyTranscript('client', swappedKeys, csig)).toBe(false)
    expect(verifyTranscript('server', swappedKeys, ssig)).toBe(false)
    expect(verifyTranscript('client', swappedNonces, csig)).toBe(false)
    expect(verifyTranscript('server', swappedNonces, ssig)).toBe(false)
    // the server's proof reflected back as the client's, on the swapped transcript
    expect(verifyTranscript('client', swappedKeys, ssig)).toBe(false)
  })

  it('when made by another key than the one presented', () => {
    const t = transcript()
    expect(verifyTranscript('client', t, signTranscript(MALLORY, 'client', t))).toBe(false)
    expect(verifyTranscript('server', t, signTranscript(MALLORY, 'server', t))).toBe(false)
    // Mallory presenting its own key with its own signature is a valid proof of Mallory only
    const m = transcript({ clientKey: MALLORY.publicKey })
    expect(verifyTranscript('client', m, signTranscript(MALLORY, 'client', m))).toBe(true)
  })

  it('when malformed: wrong lengths, empty, bad key bytes (false, never a throw)', () => {
    const t = transcript()
    const sig = signTranscript(CLIENT, 'client', t)
    expect(verifyTranscript('client', t, sig.subarray(0, 63))).toBe(false)
    expect(verifyTranscript('client', t, new Uint8Array(0))).toBe(false)
    expect(verifyTranscript('client', t, new Uint8Array([...sig, 0]))).toBe(false)
    expect(verifyTranscript('client', t, new Uint8Array(64))).toBe(false)
    expect(verifyTranscript('client', { ...t, clientKey: new Uint8Array(31) }, sig)).toBe(false)
    expect(verifyTranscript('client', { ...t, clientKey: new Uint8Array(32).fill(0xff) }, sig)).toBe(false)
  })

  it('under a weak (small-order) key, even with a signature node:crypto alone would accept', () => {
    // The identity point as public key, R = identity and S = 0: [S]B = R + [k]A holds for every
    // message, so anyone could "prove" this key.
    const identity = new Uint8Array(32)
    identity[0] = 1
    const anyoneSig = new Uint8Array(64)
    anyoneSig[0] = 1
    const t = transcript({ clientKey: identity })
    expect(verify(null, transcriptBytes('client', t), publicKeyObject(identity), anyoneSig)).toBe(true)
    expect(verifyTranscript('client', t, anyoneSig)).toBe(false)
    expect(verifyTranscript('server', transcript({ serverKey: identity }), anyoneSig)).toBe(false)
  })

  it('after any single bit flip of the transcript or the signature (property)', () => {
    const seed = testSeed('handshake bit flips', 4242)
    const fields = ['serverKey', 'serverNonce', 'clientKey', 'clientNonce', 'sig'] as const
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.constantFrom('client' as const, 'server' as const),
        fc.constantFrom(...fields),
        fc.nat(511),
        (sn, cn, role, field, bit) => {
          const t: Transcript = {
            serverKey: SERVER.publicKey,
            serverNonce: sn,
            clientKey: CLIENT.publicKey,
            clientNonce: cn,
          }
          let sig = signTranscript(role === 'client' ? CLIENT : SERVER, role, t)
          expect(verifyTranscript(role, t, sig)).toBe(true)
          let t2 = t
          const flip = (b: Uint8Array, i: number): Uint8Array => {
            const c = new Uint8Array(b)
            c[(i >> 3) % c.length] = (c[(i >> 3) % c.length] as number) ^ (1 << (i & 7))
            return c
          }
          if (field === 'sig') sig = flip(sig, bit)
          else t2 = { ...t, [field]: flip(t[field], bit % 256) }
          expect(verifyTranscript(role, t2, sig)).toBe(false)
        },
      ),
      { seed, numRuns: 200 },
    )
  })
})

describe('token proofs', () => {
  it('are empty without a token, and any proof passes when no token is configured', () => {
    const t = transcript()
    expect(tokenProof(undefined, 'client', t)).toEqual(new Uint8Array(0))
    expect(checkTokenProof(undefined, 'client', t, new Uint8Array(0))).toBe(true)
    expect(checkTokenProof(undefined, 'server', t, new Uint8Array([1, 2, 3]))).toBe(true)
  })

  it('a proof made with the token verifies for its role and transcript only', () => {
    const t = transcript()
    const p = tokenProof('s3cret', 'client', t)
    expect(p.length).toBe(32)
    expect(checkTokenProof('s3cret', 'client', t, p)).toBe(true)
    expect(checkTokenProof('s3cret', 'server', t, p)).toBe(false)
    expect(checkTokenProof('s3cret', 'client', { ...t, serverNonce: newNonce() }, p)).toBe(false)
    expect(checkTokenProof('s3cret', 'client', { ...t, clientKey: MALLORY.publicKey }, p)).toBe(false)
    expect(checkTokenProof('s3cret', 'server', t, tokenProof('s3cret', 'server', t))).toBe(true)
  })

  it('a wrong, missing, truncated or overlong proof fails without throwing', () => {
    const t = transcript()
    const p = tokenProof('s3cret', 'client', t)
    expect(checkTokenProof('s3cret', 'client', t, tokenProof('S3cret', 'client', t))).toBe(false)
    expect(checkTokenProof('s3cret', 'client', t, tokenProof(undefined, 'client', t))).toBe(false)
    expect(checkTokenProof('s3cret', 'client', t, tokenProof('', 'client', t))).toBe(false)
    expect(checkTokenProof('s3cret', 'client', t, p.subarray(0, 31))).toBe(false)
    expect(checkTokenProof('s3cret', 'client', t, new Uint8Array([...p, 0]))).toBe(false)
    expect(checkTokenProof('s3cret', 'client', t, new Uint8Array(32))).toBe(false)
  })

  it('the empty string is a token (not "no token")', () => {
    const t = transcript()
    expect(tokenProof('', 'client', t).length).toBe(32)
    expect(checkTokenProof('', 'client', t, new Uint8Array(0))).toBe(false)
  })
})

describe('allow-list verdict', () => {
  const allow = new Set<SledId>([SERVER.sled, CLIENT.sled])

  it('admits everyone without a list', () => {
    expect(allowListVerdict({}, MALLORY.publicKey)).toBeUndefined()
    expect(allowListVerdict({ token: 'x' }, MALLORY.publicKey)).toBeUndefined()
  })

  it('admits listed sleds and names the refused one', () => {
    expect(allowListVerdict({ allow }, CLIENT.publicKey)).toBeUndefined()
    expect(allowListVerdict({ allow }, SERVER.publicKey)).toBeUndefined()
    expect(allowListVerdict({ allow }, MALLORY.publicKey)).toBe(MALLORY.sled)
    expect(allowListVerdict({ allow: new Set() }, CLIENT.publicKey)).toBe(CLIENT.sled)
  })

  it('compares full sled ids (a shared prefix is not enough)', () => {
    const near = new Uint8Array(CLIENT.publicKey)
    near[31] = (near[31] as number) ^ 1
    expect(allowListVerdict({ allow }, near)).toBe(sledIdFromPublicKey(near))
  })
})

/**
 * Wire messages (src/sync/messages.ts): every encoder round-trips through decodeMessage, and
 * decodeMessage refuses everything malformed with PEER_PROTOCOL — never another exception.
 */
import * as encoding from 'lib0/encoding'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isSledlogError } from '../../src/errors.js'
import {
  AUTH_VERSION,
  decodeMessage,
  encodeAwarenessKeepAlive,
  encodeDenied,
  encodeDigest,
  encodeHello,
  encodeHolds,
  encodeOk,
  encodeProve,
  encodeStep1,
  encodeStep2,
  encodeUpdate,
  MSG_AUTH,
  MSG_AWARENESS,
  MSG_QUERY_AWARENESS,
  MSG_SLED_AUTH,
  MSG_SLED_DIGEST,
  MSG_SLED_HOLDS,
  MSG_SYNC,
  type WireMessage,
} from '../../src/sync/messages.js'
import { prng, testSeed } from '../helpers/seed.js'

const bytes = (n: number, fill: (i: number) => number = (i) => (i * 37 + 11) & 0xff): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => fill(i))
const KEY = bytes(32, (i) => i + 1)
const NONCE = bytes(32, (i) => 255 - i)
const SIG = bytes(64, (i) => (i * 7) & 0xff)
const PROOF = bytes(32, (i) => (i * 13) & 0xff)

/** Hand-built frame. */
function frame(
  ...parts: Array<number | Uint8Array | { varuint: number } | { varbytes: Uint8Array } | { varstring: string }>
): Uint8Array {
  const e = encoding.createEncoder()
  for (const p of parts) {
    if (typeof p === 'number') encoding.writeUint8(e, p)
    else if (p instanceof Uint8Array) encoding.writeUint8Array(e, p)
    else if ('varuint' in p) encoding.writeVarUint(e, p.varuint)
    else if ('varbytes' in p) encoding.writeVarUint8Array(e, p.varbytes)
    else encoding.writeVarString(e, p.varstring)
  }
  return encoding.toUint8Array(e)
}

/** Expects `buf` to be refused with PEER_PROTOCOL (and with nothing else). */
function expectProtocolError(buf: Uint8Array, why = ''): void {
  let thrown: unknown
  try {
    const msg = decodeMessage(buf)
    thrown = new Error(`decoded ${JSON.stringify(msg.t)} from ${Buffer.from(buf).toString('hex')} ${why}`)
  } catch (err) {
    thrown = err
  }
  if (!isSledlogError(thrown, 'PEER_PROTOCOL')) {
    throw new Error(
      `expected PEER_PROTOCOL for ${Buffer.from(buf.subarray(0, 64)).toString('hex')} ${why}, got ${String(thrown)}`,
    )
  }
  expect(thrown.message).toMatch(/^bad message: /)
}

/** Every encoder with the message it must decode to. */
const CASES: ReadonlyArray<{ name: string; bytes: Uint8Array; msg: WireMessage }> = [
  { name: 'step1', bytes: encodeStep1(bytes(9)), msg: { t: 'step1', stateVector: bytes(9) } },
  {
    name: 'step1 (empty state vector)',
    bytes: encodeStep1(new Uint8Array(0)),
    msg: { t: 'step1', stateVector: new Uint8Array(0) },
  },
  { name: 'step2', bytes: encodeStep2(bytes(300)), msg: { t: 'step2', update: bytes(300) } },
  {
    name: 'step2 (empty update)',
    bytes: encodeStep2(new Uint8Array([0, 0])),
    msg: { t: 'step2', update: new Uint8Array([0, 0]) },
  },
  { name: 'update', bytes: encodeUpdate(bytes(2_000)), msg: { t: 'update', update: bytes(2_000) } },
  { name: 'awareness keep-alive', bytes: encodeAwarenessKeepAlive(), msg: { t: 'awareness' } },
  {
    name: 'denied',
    bytes: encodeDenied('sled abc is not on the allow-list'),
    msg: { t: 'denied', reason: 'sled abc is not on the allow-list' },
  },
  { name: 'denied (unicode)', bytes: encodeDenied('nö ✓ 🛷'), msg: { t: 'denied', reason: 'nö ✓ 🛷' } },
  {
    name: 'hello',
    bytes: encodeHello(KEY, NONCE),
    msg: { t: 'hello', version: AUTH_VERSION, publicKey: KEY, nonce: NONCE },
  },
  {
    name: 'prove',
    bytes: encodeProve(KEY, NONCE, SIG, PROOF),
    msg: { t: 'prove', publicKey: KEY, nonce: NONCE, signature: SIG, tokenProof: PROOF, chain: [] },
  },
  {
    name: 'prove (with a succession chain)',
    bytes: encodeProve(KEY, NONCE, SIG, PROOF, ['first record', 'zweiter Datensatz 🛷']),
    msg: {
      t: 'prove',
      publicKey: KEY,
      nonce: NONCE,
      signature: SIG,
      tokenProof: PROOF,
      chain: ['first record', 'zweiter Datensatz 🛷'],
    },
  },
  {
    name: 'prove (no token)',
    bytes: encodeProve(KEY, NONCE, SIG, new Uint8Array(0)),
    msg: { t: 'prove', publicKey: KEY, nonce: NONCE, signature: SIG, tokenProof: new Uint8Array(0), chain: [] },
  },
  { name: 'ok', bytes: encodeOk(SIG, PROOF), msg: { t: 'ok', signature: SIG, tokenProof: PROOF, chain: [] } },
  {
    name: 'ok (no token)',
    bytes: encodeOk(SIG, new Uint8Array(0)),
    msg: { t: 'ok', signature: SIG, tokenProof: new Uint8Array(0), chain: [] },
  },
  {
    name: 'ok (no token, a chain of one)',
    bytes: encodeOk(SIG, new Uint8Array(0), ['r']),
    msg: { t: 'ok', signature: SIG, tokenProof: new Uint8Array(0), chain: ['r'] },
  },
  { name: 'query-awareness', bytes: frame({ varuint: MSG_QUERY_AWARENESS }), msg: { t: 'query-awareness' } },
  { name: 'digest (none)', bytes: encodeDigest([]), msg: { t: 'digest', digests: [] } },
  {
    name: 'digest',
    bytes: encodeDigest([
      { client: 2 ** 52 + 7, length: 50, hash: KEY },
      { client: 1, length: 0, hash: NONCE },
    ]),
    msg: {
      t: 'digest',
      digests: [
        { client: 2 ** 52 + 7, length: 50, hash: KEY },
        { client: 1, length: 0, hash: NONCE },
      ],
    },
  },
  { name: 'holds (none)', bytes: encodeHolds(0, SIG), msg: { t: 'holds', length: 0, signature: SIG } },
  {
    name: 'holds',
    bytes: encodeHolds(2 ** 40 + 3, SIG),
    msg: { t: 'holds', length: 2 ** 40 + 3, signature: SIG },
  },
]

describe('round trips', () => {
  it.each(CASES)('$name', ({ bytes: b, msg }) => {
    expect(decodeMessage(b)).toEqual(msg)
  })

  it('a large update (3-byte length prefix)', () => {
    const big = bytes(300_000)
    expect(decodeMessage(encodeUpdate(big))).toEqual({ t: 'update', update: big })
    expectProtocolError(encodeUpdate(big).subarray(0, 300_000), 'truncated')
  })

  it('frames start with the y-websocket / sledlog message type', () => {
    expect(encodeStep1(new Uint8Array(0))[0]).toBe(MSG_SYNC)
    expect(encodeAwarenessKeepAlive()[0]).toBe(MSG_AWARENESS)
    expect(encodeDenied('x')[0]).toBe(MSG_AUTH)
    expect(encodeHello(KEY, NONCE)[0]).toBe(MSG_SLED_AUTH)
    expect(encodeDigest([])[0]).toBe(MSG_SLED_DIGEST)
    expect(encodeHolds(1, SIG)[0]).toBe(MSG_SLED_HOLDS)
  })

  it('decodes a message that is a view into a larger buffer, without reading past it', () => {
    for (const { name, bytes: b, msg } of CASES) {
      const big = new Uint8Array(b.length + 40).fill(0x41)
      big.set(b, 20)
      expect(decodeMessage(big.subarray(20, 20 + b.length)), name).toEqual(msg)
      // and every truncated view (whose backing buffer continues) is still refused (but a cut
      // right before an optional chain, which leaves a valid prove or ok without one)
      const chained = (msg.t === 'prove' || msg.t === 'ok') && msg.chain.length > 0
      if (msg.t !== 'awareness' && !chained)
        for (let n = 0; n < b.length; n += Math.max(1, b.length >> 6))
          expectProtocolError(big.subarray(20, 20 + n), `${name}/${n}`)
    }
  })

  it('payloads round-trip for random contents (property)', () => {
    const seed = testSeed('messages round trip', 5301)
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.string({ maxLength: 120 }),
        (payload, key, sig, reason) => {
          expect(decodeMessage(encodeStep1(payload))).toEqual({ t: 'step1', stateVector: payload })
          expect(decodeMessage(encodeStep2(payload))).toEqual({ t: 'step2', update: payload })
          expect(decodeMessage(encodeUpdate(payload))).toEqual({ t: 'update', update: payload })
          expect(decodeMessage(encodeHello(key, key))).toEqual({
            t: 'hello',
            version: AUTH_VERSION,
            publicKey: key,
            nonce: key,
          })
          expect(decodeMessage(encodeProve(key, key, sig, payload))).toEqual({
            t: 'prove',
            publicKey: key,
            nonce: key,
            signature: sig,
            tokenProof: payload,
            chain: [],
          })
          expect(decodeMessage(encodeOk(sig, payload))).toEqual({
            t: 'ok',
            signature: sig,
            tokenProof: payload,
            chain: [],
          })
          const wellFormedChain = [Buffer.from(reason, 'utf8').toString('utf8')]
          expect(decodeMessage(encodeOk(sig, payload, wellFormedChain))).toMatchObject({ chain: wellFormedChain })
          // lone surrogates are not representable in UTF-8; everything else round-trips
          const wellFormed = Buffer.from(reason, 'utf8').toString('utf8')
          expect(decodeMessage(encodeDenied(wellFormed))).toEqual({ t: 'denied', reason: wellFormed })
        },
      ),
      { seed, numRuns: 300 },
    )
  })

  it('a denied reason is cut to 200 characters', () => {
    const m = decodeMessage(encodeDenied('x'.repeat(5000)))
    expect(m).toEqual({ t: 'denied', reason: 'x'.repeat(200) })
  })

  it('keeps an unknown hello version for the handshake to refuse', () => {
    expect(decodeMessage(frame({ varuint: MSG_SLED_AUTH }, { varuint: 0 }, { varuint: 7 }, KEY, NONCE))).toMatchObject({
      t: 'hello',
      version: 7,
    })
  })
})

describe('decodeMessage refuses malformed messages with PEER_PROTOCOL', () => {
  it.each(CASES.filter((c) => c.msg.t !== 'awareness'))('every truncation of $name', ({ bytes: b, msg }) => {
    // A chain is an optional tail: cut right before it, a prove or ok is the same one without.
    const chainless =
      (msg.t === 'prove' || msg.t === 'ok') && msg.chain.length > 0
        ? msg.t === 'prove'
          ? encodeProve(msg.publicKey, msg.nonce, msg.signature, msg.tokenProof).length
          : encodeOk(msg.signature, msg.tokenProof).length
        : -1
    for (let n = 0; n < b.length; n++) {
      if (n === chainless) expect(decodeMessage(b.subarray(0, n))).toMatchObject({ t: msg.t, chain: [] })
      else expectProtocolError(b.subarray(0, n), `truncated to ${n}`)
    }
  })

  it('a chain of 0 or more than 8 records, a record over 2048 bytes or of invalid UTF-8', () => {
    const prove = encodeProve(KEY, NONCE, SIG, PROOF)
    const withTail = (...tail: number[]): Uint8Array => new Uint8Array([...prove, ...tail])
    expectProtocolError(withTail(0), 'a chain of 0')
    const nine = encodeProve(
      KEY,
      NONCE,
      SIG,
      PROOF,
      Array.from({ length: 9 }, () => 'r'),
    )
    expectProtocolError(nine, 'a chain of 9')
    expect(
      decodeMessage(
        encodeProve(
          KEY,
          NONCE,
          SIG,
          PROOF,
          Array.from({ length: 8 }, () => 'r'),
        ),
      ),
    ).toMatchObject({
      chain: Array.from({ length: 8 }, () => 'r'),
    })
    expectProtocolError(encodeProve(KEY, NONCE, SIG, PROOF, ['x'.repeat(2049)]), 'a record of 2049 bytes')
    expect(decodeMessage(encodeProve(KEY, NONCE, SIG, PROOF, ['x'.repeat(2048)]))).toMatchObject({
      chain: ['x'.repeat(2048)],
    })
    expectProtocolError(withTail(1, 2, 0xc3, 0x28), 'invalid UTF-8')
    expectProtocolError(encodeOk(SIG, PROOF, ['a', 'b']).subarray(0, -1), 'a truncated record')
  })

  it('every truncation of an awareness message whose payload is not empty', () => {
    const b = frame({ varuint: MSG_AWARENESS }, { varbytes: bytes(20) })
    for (let n = 0; n < b.length; n++) expectProtocolError(b.subarray(0, n), `truncated to ${n}`)
  })

  it.each(CASES.filter((c) => c.msg.t !== 'awareness'))('trailing bytes after $name', ({ bytes: b }) => {
    for (const tail of [[0], [1, 2, 3], [0xff]]) expectProtocolError(new Uint8Array([...b, ...tail]))
  })

  it('awareness payloads are skipped wholesale (trailing bytes after them are ignored)', () => {
    expect(decodeMessage(new Uint8Array([...encodeAwarenessKeepAlive(), 9, 9]))).toEqual({ t: 'awareness' })
  })

  it('unknown message types', () => {
    for (const type of [4, 5, 50, 99, 103, 127, 128, 300, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      expectProtocolError(frame({ varuint: type }), `type ${type}`)
      expectProtocolError(frame({ varuint: type }, { varuint: 0 }, { varbytes: bytes(4) }), `type ${type} with a body`)
    }
  })

  it('unknown sub-types', () => {
    for (const sub of [3, 4, 127, 128, 1000]) {
      expectProtocolError(
        frame({ varuint: MSG_SYNC }, { varuint: sub }, { varbytes: bytes(3) }),
        `sync sub-type ${sub}`,
      )
      expectProtocolError(
        frame({ varuint: MSG_SLED_AUTH }, { varuint: sub }, SIG, { varbytes: PROOF }),
        `handshake sub-type ${sub}`,
      )
    }
    for (const sub of [1, 2, 3, 200])
      expectProtocolError(frame({ varuint: MSG_AUTH }, { varuint: sub }, { varstring: 'no' }), `auth sub-type ${sub}`)
  })

  it('wrong fixed lengths', () => {
    // a hello whose key is 31 bytes: the nonce comes up one byte short
    expectProtocolError(frame({ varuint: MSG_SLED_AUTH }, { varuint: 0 }, { varuint: AUTH_VERSION }, bytes(31), NONCE))
    // a prove with a 63-byte signature
    expectProtocolError(frame({ varuint: MSG_SLED_AUTH }, { varuint: 1 }, KEY, NONCE, bytes(63), { varbytes: PROOF }))
    // an ok whose token proof length lies
    expectProtocolError(frame({ varuint: MSG_SLED_AUTH }, { varuint: 2 }, SIG, { varuint: 1000 }, PROOF))
    // a digest with a 31-byte hash, and one whose count claims more digests than the frame holds
    expectProtocolError(frame({ varuint: MSG_SLED_DIGEST }, { varuint: 1 }, { varuint: 5 }, { varuint: 5 }, bytes(31)))
    expectProtocolError(frame({ varuint: MSG_SLED_DIGEST }, { varuint: 2 ** 40 }, { varuint: 5 }, { varuint: 5 }, KEY))
  })

  it('lying and oversized varuints', () => {
    expectProtocolError(
      frame({ varuint: MSG_SYNC }, { varuint: 2 }, { varuint: 2 ** 40 }, bytes(10)),
      'payload length 2^40',
    )
    expectProtocolError(
      new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
      'varuint past 2^53',
    )
    expectProtocolError(new Uint8Array([0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f]), 'update length 2^32-1')
    expectProtocolError(new Uint8Array([0xff]), 'unterminated varuint')
  })

  it('the empty frame', () => {
    expectProtocolError(new Uint8Array(0))
  })

  it('random bytes and mutated messages: PEER_PROTOCOL or a well-formed message, no other exception (property)', () => {
    const seed = testSeed('decodeMessage fuzz', 8812)
    const stats = { decoded: 0, refused: 0 }
    const valid = CASES.map((c) => c.bytes).filter((b) => b.length < 2000)
    const arb = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.record({
        src: fc.nat(valid.length - 1),
        muts: fc.array(
          fc.record({
            at: fc.nat(),
            byte: fc.integer({ min: 0, max: 255 }),
            kind: fc.constantFrom('set', 'insert', 'delete', 'cut'),
          }),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
      }),
    )
    fc.assert(
      fc.property(arb, (input) => {
        let buf: Uint8Array
        if (input instanceof Uint8Array) buf = input
        else {
          const a = [...(valid[input.src] as Uint8Array)]
          for (const m of input.muts) {
            const at = a.length === 0 ? 0 : m.at % (a.length + 1)
            if (m.kind === 'set' && at < a.length) a[at] = m.byte
            else if (m.kind === 'insert') a.splice(at, 0, m.byte)
            else if (m.kind === 'delete') a.splice(at, 1)
            else a.length = Math.min(a.length, at)
          }
          buf = new Uint8Array(a)
        }
        let msg: WireMessage
        try {
          msg = decodeMessage(buf)
        } catch (err) {
          if (!isSledlogError(err, 'PEER_PROTOCOL'))
            throw new Error(`decodeMessage threw ${String(err)}`, { cause: err })
          stats.refused++
          return
        }
        stats.decoded++
        // whatever decodes has the documented shape
        switch (msg.t) {
          case 'hello':
            expect(msg.publicKey.length + msg.nonce.length).toBe(64)
            break
          case 'prove':
            expect(msg.publicKey.length + msg.nonce.length + msg.signature.length).toBe(128)
            break
          case 'ok':
            expect(msg.signature.length).toBe(64)
            break
          case 'denied':
            expect(msg.reason.length).toBeLessThanOrEqual(200)
            break
          case 'digest':
            for (const d of msg.digests) expect(d.hash.length).toBe(32)
            break
          case 'holds':
            expect(msg.signature.length).toBe(64)
            expect(Number.isSafeInteger(msg.length) && msg.length >= 0).toBe(true)
            break
          default:
            expect(['step1', 'step2', 'update', 'awareness', 'query-awareness']).toContain(msg.t)
        }
      }),
      { seed, numRuns: 3000 },
    )
    console.log(`[decodeMessage fuzz] ${JSON.stringify(stats)}`)
    expect(stats.refused).toBeGreaterThan(100)
    expect(stats.decoded).toBeGreaterThan(10)
  })

  it('seeded random garbage frames are refused or decode (never throw otherwise)', () => {
    const rand = prng(testSeed('garbage frames', 77))
    for (let i = 0; i < 2000; i++) {
      const b = bytes(1 + Math.floor(rand() * 40), () => Math.floor(rand() * 256))
      try {
        decodeMessage(b)
      } catch (err) {
        expect(isSledlogError(err, 'PEER_PROTOCOL'), String(err)).toBe(true)
      }
    }
  })
})

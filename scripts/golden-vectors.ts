/**
 * The golden test vectors of docs/PROTOCOL.md, built from fixed seeds: the worked example of §9
 * (keys, entries, records, updates, storage, a handshake, a holds receipt) and the conformance
 * vectors (every MUST-reject rule with its code and section, and the accepted neighbour of each
 * boundary).
 *
 * Every vector's expected outcome is written down here from the spec, not computed from the
 * reference code; {@link buildGolden} then runs the reference on each vector and refuses to
 * return a fixture the reference disagrees with. scripts/make-golden.ts writes the result to
 * test/fixtures/golden.json and test/core/golden.test.ts checks that the fixture still equals
 * this output byte for byte and that the reference still gives every expected outcome.
 */
import { createHash, createHmac, sign, verify } from 'node:crypto'
import * as ed from '@noble/ed25519'
import * as Y from 'yjs'
import { encodeEntryJson, parseEntryJson, type Entry, type EntryBody } from '../src/core/entry.js'
import { guardUpdate, type LogView } from '../src/core/guard.js'
import { clientIdOf, publicKeyOf, rootNameOf, type SledId } from '../src/core/ids.js'
import {
  createSigner,
  createVerifier,
  endorseSuccession,
  ENTRY_DOMAIN,
  formatRecord,
  keyPairFromSeed,
  openRecord,
  privateKeyObject,
  publicKeyObject,
  signedMessage,
  signRevocation,
  splitRecord,
  type KeyPair,
} from '../src/core/signing.js'
import { endorsementMessage, REVOCATION_DOMAIN, revocationMessage, SUCCESSION_DOMAIN } from '../src/core/statements.js'
import { emptyIndex, indexStatement, retirements } from '../src/core/succession.js'
import { decodeStateVector, encodeRuns, type Run } from '../src/core/update-codec.js'
import { isSledlogError, type RejectCode } from '../src/errors.js'
import { deriveMacKey } from '../src/store/level-store.js'
import {
  checkTokenProof,
  signTranscript,
  tokenProof,
  transcriptBytes,
  verifyTranscript,
} from '../src/sync/handshake.js'
import type { Transcript } from '../src/sync/handshake.js'
import { HOLDS_DOMAIN, MAX_HOLDS_LENGTH, receiptBytes, signReceipt, verifyReceipt } from '../src/sync/holds.js'
import { decodeMessage, encodeHello, encodeHolds, encodeOk, encodeProve } from '../src/sync/messages.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))
const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'))
const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest())

/** The group order of Ed25519 and the field prime. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n
const P = 2n ** 255n - 19n
const le32 = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn)
  return out
}
const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n)
/** RFC 8032's challenge k = SHA-512(R ‖ A ‖ M) mod L. */
const challenge = (R: Uint8Array, A: Uint8Array, msg: Uint8Array): bigint =>
  fromLe(new Uint8Array(createHash('sha512').update(R).update(A).update(msg).digest())) % L

/** Default limits the conformance vectors are checked with unless a vector names its own. */
export const VECTOR_LIMITS = { maxRecordBytes: 65536, maxUpdateBytes: 16 * 1024 * 1024 } as const

/** What a record vector expects of `openRecord` (§4.3). */
export type RecordOutcome =
  | 'ok'
  | 'ENTRY_INVALID'
  | 'UPDATE_BAD_SIGNATURE'
  | 'SUCCESSION_INVALID'
  | 'SUCCESSION_BAD_ENDORSEMENT'
  | 'REVOCATION_BAD_SIGNATURE'
/** What an update vector expects of the guard (§5.3, §6.1). */
export type UpdateOutcome = 'ok' | RejectCode
/** What a state vector vector expects of the decoder (§5.4). */
export type StateVectorOutcome = 'ok' | 'UPDATE_MALFORMED'

/** What unmodified Ed25519 libraries say about a record's signature, without sledlog's extra rules. */
export interface LibraryVerdicts {
  /** node:crypto (OpenSSL) verify with a key built from the raw bytes: cofactorless, no key checks. */
  readonly nodeCryptoRaw: boolean
  /** @noble/ed25519 `verify` with its defaults (ZIP-215: cofactored, lenient encodings). */
  readonly nobleZip215: boolean
  /** @noble/ed25519 `verify` with `{ zip215: false }`. */
  readonly nobleStrict: boolean
}

/** A record and what opening it must give. */
export interface RecordVector {
  readonly name: string
  readonly section: string
  readonly rule: string
  readonly record: string
  readonly expect: RecordOutcome
  /** For signature rules: where a verifier built on a stock library goes wrong. */
  readonly libraries?: LibraryVerdicts
}

/** An update, the log it meets, and what the guard must decide. */
export interface UpdateVector {
  readonly name: string
  readonly section: string
  readonly rule: string
  /** The log holds the golden sled's records 0 … held−1 (§9.2) and nothing else. */
  readonly held: number
  readonly maxRecordBytes: number
  readonly maxUpdateBytes: number
  readonly updateHex: string
  readonly expect: UpdateOutcome
  /** For accepted updates: new records applied, and records already held byte for byte. */
  readonly added?: number
  readonly duplicates?: number
}

/** A state vector and what decoding it must give. */
export interface StateVectorVector {
  readonly name: string
  readonly section: string
  readonly rule: string
  readonly hex: string
  readonly expect: StateVectorOutcome
  /** For accepted ones: [client, clock] pairs in the order they appear. */
  readonly entries?: ReadonlyArray<readonly [number, number]>
}

/** A handshake proof that must not verify (§8.2). */
export interface HandshakeRejection {
  readonly name: string
  readonly section: string
  readonly rule: string
  /** Whose proof is checked: the client's (by the server) or the server's (by the client). */
  readonly role: 'client' | 'server'
  readonly serverKeyHex: string
  readonly serverNonceHex: string
  readonly clientKeyHex: string
  readonly clientNonceHex: string
  readonly signatureHex: string
  /** Token proof presented, and the shared token configured (absent: no token). */
  readonly tokenProofHex?: string
  readonly token?: string
  /** Always false: the proof is refused (4401). */
  readonly expect: false
  /** node:crypto alone on the signature (no weak-key check). */
  readonly nodeCryptoRaw: boolean
}

/** A holds receipt as its receiver checks it: `holderKeyHex`'s about its own sled `subjectKeyHex`, on a link. */
export interface HoldsReceiptCheck {
  readonly holderKeyHex: string
  readonly subjectKeyHex: string
  readonly serverNonceHex: string
  readonly clientNonceHex: string
  /** The length the message states. */
  readonly length: number
  readonly signatureHex: string
}

/** A holds receipt that must not count (§8.6): it does not verify on its link. */
export interface HoldsRejection extends HoldsReceiptCheck {
  readonly name: string
  readonly section: string
  readonly rule: string
  /** Always false: the receipt is a `PEER_PROTOCOL` violation and counts for nothing. */
  readonly expect: false
  /** node:crypto alone on the signature over the bytes of §8.6 (no weak-key check). */
  readonly nodeCryptoRaw: boolean
}

/** A type-102 message that must not decode (§8.1): `PEER_PROTOCOL`. */
export interface HoldsMessageRejection {
  readonly name: string
  readonly section: string
  readonly rule: string
  readonly hex: string
  readonly expect: 'PEER_PROTOCOL'
}

// ---- keys ----

/** The fixed seed: bytes 0x00, 0x01, …, 0x1f. */
const seed = new Uint8Array(Array.from({ length: 32 }, (_, i) => i))
/** A second fixed seed (bytes 0x20 … 0x3f): another sled, and the client of the handshake example. */
const seedB = new Uint8Array(Array.from({ length: 32 }, (_, i) => 32 + i))
const keys = keyPairFromSeed(seed)
const keysB = keyPairFromSeed(seedB)
const sled = keys.sled
const clientId = clientIdOf(sled)
const rootName = rootNameOf(sled)
const signer = createSigner(keys)
const TS = 1_700_000_000_000

const entries: Entry[] = [
  // An event with a producer logical id and an idempotency id (field order: ..., lid, id).
  {
    sled,
    seq: 0,
    ts: TS,
    kind: 'event',
    type: 'order.created',
    payload: { order: 'o-1001', qty: 2, price: 19.99 },
    lid: 7,
    id: 'order-1001',
  },
  // An event without id: nested payload with unicode, escapes, integer-like keys and number forms.
  {
    sled,
    seq: 1,
    ts: TS + 1,
    kind: 'event',
    type: 'note.added',
    payload: {
      text: 'Grüße, 世界 🛷',
      tags: ['ü', 'λ', ''],
      nested: { b: [1, 2.5, -0.001, 1e21, true, null], '10': 'ten', '2': 'two', a: { deep: [[]] } },
      ctl: 'tab\tquote"backslash\\nul\u0000del\u007f\u2028',
    },
  },
  // A gap sentinel: producer ids 10..12 were dropped.
  { sled, seq: 2, ts: TS + 2, kind: 'gap', from: 10, to: 12 },
]
const later: Entry = { sled, seq: 3, ts: TS + 3, kind: 'event', type: 'tick', payload: null }
const records = entries.map((e) => signer.signEntry(e))
const laterRecord = signer.signEntry(later)
const all = [...records, laterRecord]

// ---- key succession: the golden sled S is succeeded by B (seed 20..3f); C (40..5f) is an admin
// key; D (60..7f) succeeds S without S's endorsement. ----

const seedC = new Uint8Array(Array.from({ length: 32 }, (_, i) => 64 + i))
const seedD = new Uint8Array(Array.from({ length: 32 }, (_, i) => 96 + i))
const keysC = keyPairFromSeed(seedC)
const keysD = keyPairFromSeed(seedD)
const endorsed = { successor: keysB.sled, predecessor: sled, lastSeq: 3, reason: 'rotation' } as const
const successionEntry: Entry = {
  sled: keysB.sled,
  seq: 0,
  ts: TS + 10,
  kind: 'succession',
  predecessor: sled,
  lastSeq: 3,
  reason: 'rotation',
  endorsement: endorseSuccession(keys, endorsed),
}
const unendorsedEntry: Entry = {
  sled: keysD.sled,
  seq: 0,
  ts: TS + 11,
  kind: 'succession',
  predecessor: sled,
  lastSeq: -1,
  reason: 'recovery',
  endorsement: null,
}
const selfStatement = { target: sled, fromSeq: 2, authority: 'self', signer: sled } as const
const selfRevocationEntry: Entry = {
  sled: keysB.sled,
  seq: 1,
  ts: TS + 12,
  kind: 'revocation',
  target: sled,
  fromSeq: 2,
  authority: 'self',
  signature: signRevocation(keys, selfStatement),
}
const adminStatement = { target: keysB.sled, fromSeq: 5, authority: 'admin', signer: keysC.sled } as const
const adminRevocationEntry: Entry = {
  sled: keysD.sled,
  seq: 1,
  ts: TS + 13,
  kind: 'revocation',
  target: keysB.sled,
  fromSeq: 5,
  authority: 'admin',
  admin: keysC.sled,
  signature: signRevocation(keysC, adminStatement),
}
const signerOf = (e: Entry): KeyPair => (e.sled === keysB.sled ? keysB : keysD)
const successionRecord = createSigner(keysB).signEntry(successionEntry)
const statementRecords = [successionEntry, unendorsedEntry, selfRevocationEntry, adminRevocationEntry].map((e) =>
  createSigner(signerOf(e)).signEntry(e),
)

function entryVector(e: Entry): Record<string, unknown> {
  const json = encodeEntryJson(e)
  const record = signer.signEntry(e)
  const parts = splitRecord(record)
  if (parts === undefined || parts.json !== json) throw new Error('record does not split back')
  return {
    seq: e.seq,
    entry: e,
    json,
    jsonUtf8Hex: hex(utf8(json)),
    signedMessageHex: hex(signedMessage(json)),
    signatureHex: hex(parts.sig),
    signature: record.slice(0, 86),
    record,
  }
}

// ---- byte building ----

/** A minimal varuint; bigints allow the out-of-range values the rejection vectors need. */
function varuint(n: number | bigint): number[] {
  let v = BigInt(n)
  const out: number[] = []
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n))
    v >>= 7n
  }
  out.push(Number(v))
  return out
}

type Bytes = ArrayLike<number>
function cat(...parts: Array<number | Bytes>): Uint8Array {
  const out: number[] = []
  for (const p of parts) {
    if (typeof p === 'number') out.push(p)
    else out.push(...Array.from(p))
  }
  return new Uint8Array(out)
}

const varString = (b: Bytes): Uint8Array => cat(varuint(b.length), b)
/** A ContentAny string element: the 0x77 tag and a varString. */
const element = (record: string | Bytes): Uint8Array =>
  cat(0x77, varString(typeof record === 'string' ? utf8(record) : record))
const C = varuint(clientId)
const CB = varuint(clientIdOf(keysB.sled))

/** A client block with one root-form struct (info 0x08, parent by name). */
function rootBlock(clock: number, recs: Array<string | Bytes>, name: Bytes = utf8(rootName), client = C): Uint8Array {
  return cat(1, client, varuint(clock), 0x08, 1, varString(name), varuint(recs.length), ...recs.map(element))
}

/** A client block with one origin-form struct (info 0x88, left origin). */
function appendBlock(clock: number, recs: Array<string | Bytes>, origin = cat(C, varuint(clock - 1)), client = C) {
  return cat(1, client, varuint(clock), 0x88, origin, varuint(recs.length), ...recs.map(element))
}

/** An update: its client blocks and a delete set (empty by default). */
const update = (blocks: Bytes[], deleteSet: Bytes = [0]): Uint8Array =>
  cat(varuint(blocks.length), ...blocks, deleteSet)

// ---- record building ----

/** Signs any text as an entry JSON (a valid signature over a possibly invalid text). */
function signText(text: string, domain = ENTRY_DOMAIN, by: KeyPair = keys): string {
  const msg = Buffer.concat([Buffer.from(domain, 'utf8'), Buffer.from(text, 'utf8')])
  return formatRecord(sign(null, msg, privateKeyObject(by.seed)), text)
}

const json3 = encodeEntryJson(later)
/** The JSON text of seq 3 with its payload replaced by a raw JSON text. */
const withPayload = (payload: string): string => json3.replace('"payload":null', `"payload":${payload}`)

/** The signature bytes of a record, with one bit of its first byte flipped. */
function tamper(record: string): string {
  const parts = splitRecord(record) as { sig: Uint8Array; json: string }
  const sig = new Uint8Array(parts.sig)
  sig[0] = (sig[0] as number) ^ 1
  return formatRecord(sig, parts.json)
}

/** A record of the golden sled whose signature is (R, S) with S = r + k·a computed for a chosen R. */
async function signWithR(json: string, R: Uint8Array, rScalar: bigint): Promise<string> {
  const { scalar, pointBytes } = await ed.utils.getExtendedPublicKeyAsync(seed)
  const k = challenge(R, pointBytes, signedMessage(json))
  return formatRecord(cat(R, le32((rScalar + k * scalar) % L)), json)
}

/** The small-order points (canonical encodings), then non-canonical encodings of small-order points. */
const SMALL_ORDER_KEYS: ReadonlyArray<readonly [string, string]> = [
  ['identity (order 1)', '01' + '00'.repeat(31)],
  ['(0, -1), order 2', 'ec' + 'ff'.repeat(30) + '7f'],
  ['y = 0, order 4', '00'.repeat(32)],
  ['y = 0 with the sign bit, order 4', '00'.repeat(31) + '80'],
  ['order 8', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'],
  ['order 8, sign bit', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa'],
  ['order 8', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'],
  ['order 8, sign bit', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85'],
  ['non-canonical identity: x = 0 with the sign bit set', '01' + '00'.repeat(30) + '80'],
  ['non-canonical y = p (≡ 0), order 4', 'ed' + 'ff'.repeat(30) + '7f'],
  ['non-canonical y = p + 1 (≡ 1): the identity', 'ee' + 'ff'.repeat(30) + '7f'],
  ['non-canonical y = p + 1 with the sign bit set', 'ee' + 'ff'.repeat(31)],
]

/** A fixed nonce scalar for hand-made signatures (any value works; fixed keeps the output stable). */
const rFixed = fromLe(sha256('sledlog golden r')) % L

/**
 * A record "signed" under a small-order key A: R = [r]B and S = r, which satisfies the
 * cofactorless equation [S]B = R + [k]A whenever [k]A is the identity, i.e. k ≡ 0 mod 8. The
 * timestamp is ground until it is (deterministically: the first ts from TS that works).
 */
function smallOrderRecord(keyHex: string): string {
  const A = fromHex(keyHex)
  const R = ed.Point.BASE.multiply(rFixed).toBytes()
  for (let i = 0; ; i++) {
    const e = { sled: keyHex as SledId, seq: 0, ts: TS + i, kind: 'event', type: 'small-order key', payload: null }
    const json = encodeEntryJson(e as Entry)
    if (challenge(R, A, signedMessage(json)) % 8n === 0n) return formatRecord(cat(R, le32(rFixed)), json)
  }
}

/** What stock Ed25519 libraries say about a record's signature (see {@link LibraryVerdicts}). */
export async function libraryVerdicts(record: string): Promise<LibraryVerdicts> {
  const parts = splitRecord(record) as { sig: Uint8Array; json: string }
  const A = publicKeyOf(parseEntryJson(parts.json).sled)
  const msg = signedMessage(parts.json)
  let nodeCryptoRaw: boolean
  try {
    nodeCryptoRaw = verify(null, msg, publicKeyObject(A), parts.sig)
  } catch {
    nodeCryptoRaw = false
  }
  const noble = (zip215: boolean): Promise<boolean> => ed.verifyAsync(parts.sig, msg, A, { zip215 }).catch(() => false)
  return { nodeCryptoRaw, nobleZip215: await noble(true), nobleStrict: await noble(false) }
}

// ---- conformance vectors ----

type RecordSpec = Omit<RecordVector, 'libraries'> & { readonly signatureRule?: boolean }

async function recordVectors(): Promise<RecordVector[]> {
  const r3 = laterRecord
  const sig3 = r3.slice(0, 86)
  const canon = (name: string, rule: string, text: string, expect: RecordOutcome = 'ENTRY_INVALID'): RecordSpec => ({
    name,
    section: '§3.3',
    rule,
    record: signText(text),
    expect,
  })
  const field = (name: string, rule: string, text: string, expect: RecordOutcome = 'ENTRY_INVALID'): RecordSpec => ({
    name,
    section: '§3.1',
    rule,
    record: signText(text),
    expect,
  })
  const nested = (depth: number, inner: string): string => '['.repeat(depth) + inner + ']'.repeat(depth)
  const gapJson = encodeEntryJson(entries[2] as Entry)
  const json0 = encodeEntryJson(entries[0] as Entry)
  const specs: RecordSpec[] = [
    { name: 'golden-seq-3', section: '§4', rule: 'the golden record of seq 3 opens', record: r3, expect: 'ok' },
    // §4.1: the record string.
    ...(['B', 'R', 'h', 'x'] as const).map(
      (c): RecordSpec => ({
        name: `sig-last-char-${c}`,
        section: '§4.1',
        rule: `last signature character ${c}, not one of A Q g w (lenient base64 decoders give the same 64 bytes)`,
        record: sig3.slice(0, 85) + c + r3.slice(86),
        expect: 'ENTRY_INVALID',
      }),
    ),
    {
      name: 'sig-85-chars',
      section: '§4.1',
      rule: 'signature of 85 characters',
      record: r3.slice(1),
      expect: 'ENTRY_INVALID',
    },
    {
      name: 'sig-87-chars',
      section: '§4.1',
      rule: 'signature of 87 characters',
      record: 'A' + r3,
      expect: 'ENTRY_INVALID',
    },
    {
      name: 'sig-padding',
      section: '§4.1',
      rule: 'padded base64 (84 characters and "==")',
      record: sig3.slice(0, 84) + '==' + r3.slice(86),
      expect: 'ENTRY_INVALID',
    },
    {
      name: 'sig-standard-alphabet',
      section: '§4.1',
      rule: 'standard base64 "/" for base64url "_"',
      record: r3.replace('_', '/'),
      expect: 'ENTRY_INVALID',
    },
    {
      name: 'no-dot',
      section: '§4.1',
      rule: 'no "." after the signature',
      record: sig3 + json3,
      expect: 'ENTRY_INVALID',
    },
    {
      name: 'colon-for-dot',
      section: '§4.1',
      rule: '":" where the "." belongs',
      record: sig3 + ':' + json3,
      expect: 'ENTRY_INVALID',
    },
    { name: 'empty-json', section: '§4.1', rule: 'nothing after the "."', record: sig3 + '.', expect: 'ENTRY_INVALID' },
    {
      name: 'bom-before-record',
      section: '§4.1, §5.2',
      rule: 'a U+FEFF before the signature is content, not a marker to strip',
      record: '\ufeff' + r3,
      expect: 'ENTRY_INVALID',
    },
    // §3.3 rule 1: whitespace.
    canon('space-after-colon', 'rule 1: a space after ":"', json3.replace('"seq":', '"seq": ')),
    canon('space-after-comma', 'rule 1: a space after ","', json3.replace(',"ts"', ', "ts"')),
    canon('trailing-newline', 'rule 1: a newline after the text', json3 + '\n'),
    canon('leading-bom', 'rule 1: a U+FEFF before the text', '\ufeff' + json3),
    canon('pretty-printed', 'rule 1: indented', JSON.stringify(later, null, 2)),
    // Rule 2: duplicate keys.
    canon('duplicate-top-level-key', 'rule 2: "payload" twice', json3.replace('null}', 'null,"payload":null}')),
    canon(
      'duplicate-seq',
      'rule 2: "seq" twice, the last one wins on parse',
      json3.replace('"seq":3', '"seq":0,"seq":3'),
    ),
    canon('duplicate-payload-key', 'rule 2: a payload object with "a" twice', withPayload('{"a":1,"a":1}')),
    // Rule 3: key order.
    canon(
      'top-level-order',
      'rule 3: "seq" before "sled"',
      `{"seq":3,"sled":"${sled}"` + json3.slice(json3.indexOf(',"ts"')),
    ),
    canon(
      'id-before-lid',
      'rule 3: "id" before "lid"',
      json0.replace('"lid":7,"id":"order-1001"', '"id":"order-1001","lid":7'),
    ),
    canon('index-keys-descending', 'rule 3: array-index keys not ascending', withPayload('{"10":1,"2":2}')),
    canon('index-key-after-name', 'rule 3: an array-index key after another key', withPayload('{"b":1,"2":2}')),
    canon(
      'index-keys-ok',
      'rule 3: index keys first, ascending, then others as written',
      withPayload('{"2":1,"10":2,"b":3,"a":4}'),
      'ok',
    ),
    canon(
      'not-index-keys-ok',
      'rule 3: 4294967295 and 01 are not array indices',
      withPayload('{"a":1,"4294967295":2,"01":3}'),
      'ok',
    ),
    canon(
      'largest-index-key',
      'rule 3: 4294967294 is an array index, so it goes first',
      withPayload('{"a":1,"4294967294":2}'),
    ),
    // Rule 4: numbers.
    canon('trailing-zero', 'rule 4: 1.0', withPayload('1.0')),
    canon('fraction-zero', 'rule 4: 0.10', withPayload('0.10')),
    canon('uppercase-e', 'rule 4: 1E+21', withPayload('1E+21')),
    canon('unsigned-exponent', 'rule 4: 1e21 (the exponent needs its sign)', withPayload('1e21')),
    canon('exponent-below-21', 'rule 4: 1e+20 (integers below 10^21 never use an exponent)', withPayload('1e+20')),
    canon('small-without-exponent', 'rule 4: 0.00000015 (canonical 1.5e-7)', withPayload('0.00000015')),
    canon('small-with-exponent', 'rule 4: 1e-6 (canonical 0.000001)', withPayload('1e-6')),
    canon(
      'too-many-digits',
      'rule 4: 12345678901234567890 (canonical 12345678901234567000)',
      withPayload('12345678901234567890'),
    ),
    canon('subnormal-rounds', 'rule 4: 2.5e-324 parses to 5e-324', withPayload('2.5e-324')),
    canon('seq-as-float', 'rule 4: "seq":3.0', json3.replace('"seq":3', '"seq":3.0')),
    canon('ts-exponent', 'rule 4: "ts":1.700000000003e+12', json3.replace('1700000000003', '1.700000000003e+12')),
    canon(
      'numbers-ok',
      'rule 4: shortest forms',
      withPayload('[1e+21,1.5e-7,0.000001,5e-324,12345678901234567000]'),
      'ok',
    ),
    canon('overflow', 'rule 4 / §3.1: 1e400 parses to infinity', withPayload('1e400')),
    // Rule 5: negative zero.
    canon('negative-zero', 'rule 5: -0', withPayload('-0')),
    canon('negative-zero-nested', 'rule 5: [-0.0]', withPayload('[-0.0]')),
    // Rule 6: strings.
    canon('escaped-slash', 'rule 6: \\/', json3.replace('"tick"', '"ti\\/ck"')),
    canon('escaped-e-acute', 'rule 6: \\u00e9 for é', withPayload('"\\u00e9"')),
    canon('backspace-as-u', 'rule 6: \\u0008 for \\b', withPayload('"\\u0008"')),
    canon('uppercase-hex-escape', 'rule 6: \\u001F (lowercase hex only)', withPayload('"\\u001F"')),
    canon('uppercase-lone-surrogate', 'rule 6: \\uD800 (lowercase hex only)', withPayload('"\\uD800"')),
    canon('lone-surrogate-ok', 'rule 6: a lone surrogate, escaped in lowercase hex', withPayload('"\\ud800x"'), 'ok'),
    canon('escaped-pair', 'rule 6: an escaped surrogate pair (🛷 is raw)', withPayload('"\\ud83d\\udef7"')),
    canon('escaped-del', 'rule 6: \\u007f (U+007F is raw)', withPayload('"\\u007f"')),
    canon('escaped-line-separator', 'rule 6: \\u2028 (U+2028 is raw)', withPayload('"\\u2028"')),
    canon('raw-control', 'rule 6: a raw U+0001 inside a string (not JSON)', withPayload('"\u0001"')),
    canon('raw-tab', 'rule 6: a raw tab inside a string (not JSON)', withPayload('"\t"')),
    canon(
      'escapes-ok',
      'rule 6: the escapes JSON.stringify writes',
      withPayload('"\\"\\\\\\b\\t\\n\\f\\r\\u0000\\u001f/\u007f\u2028é🛷"'),
      'ok',
    ),
    // Rule 7 and not-JSON.
    canon('uppercase-literal', 'rule 7: True', withPayload('True')),
    canon('not-an-object', '§3.3: the text is an array', '[]'),
    // §3.1: fields.
    field('unknown-field', 'a field version 1 does not have', json3.replace('}', ',"extra":1}')),
    field('missing-payload', 'an event without payload', json3.replace(',"payload":null', '')),
    field('gap-with-type', 'a gap with an event field', gapJson.replace('}', ',"type":"x"}')),
    field('gap-from-after-to', 'a gap with from > to', gapJson.replace('"from":10', '"from":13')),
    field('kind-unknown', 'kind "Event"', json3.replace('"event"', '"Event"')),
    field('type-empty', 'type of 0 code units', json3.replace('"tick"', '""')),
    field(
      'type-256-ok',
      'type of 256 UTF-16 code units (128 × U+1F6F7)',
      json3.replace('"tick"', `"${'🛷'.repeat(128)}"`),
      'ok',
    ),
    field('type-257', 'type of 257 UTF-16 code units', json3.replace('"tick"', `"${'🛷'.repeat(128)}x"`)),
    field('id-empty', 'id of 0 code units', json0.replace('"order-1001"}', '""}')),
    field('id-257', 'id of 257 code units', json0.replace('"order-1001"}', `"${'i'.repeat(257)}"}`)),
    field('seq-negative', 'seq -1', json3.replace('"seq":3', '"seq":-1')),
    field('seq-2-53', 'seq 2^53 (not a safe integer)', json3.replace('"seq":3', '"seq":9007199254740992')),
    field('seq-max-ok', 'seq 2^53 − 1', json3.replace('"seq":3', '"seq":9007199254740991'), 'ok'),
    field('ts-fraction', 'ts 1.5', json3.replace('1700000000003', '1.5')),
    field('lid-negative', 'lid -7', json0.replace('"lid":7', '"lid":-7')),
    field('lid-string', 'lid "7"', json0.replace('"lid":7', '"lid":"7"')),
    field('id-null', 'id null (absent fields are omitted)', json0.replace('"order-1001"}', 'null}')),
    field('sled-uppercase', 'sled in uppercase hex', json3.replace(sled, sled.toUpperCase())),
    field('sled-63', 'sled of 63 hex digits', json3.replace(sled, sled.slice(1))),
    field('depth-64-ok', 'payload depth 64: 65 nested arrays', withPayload(nested(65, '')), 'ok'),
    field('depth-65', 'payload depth 65: 66 nested arrays', withPayload(nested(66, ''))),
    field('scalar-at-depth-65', 'payload depth 65: a scalar inside 65 arrays', withPayload(nested(65, '1'))),
  ]
  // §4.2 / §4.3: signatures.
  const sigSpec = (name: string, section: string, rule: string, record: string): RecordSpec => ({
    name,
    section,
    rule,
    record,
    expect: 'UPDATE_BAD_SIGNATURE',
    signatureRule: true,
  })
  const { sig } = splitRecord(r3) as { sig: Uint8Array }
  const sPlusL = cat(sig.subarray(0, 32), le32(fromLe(sig.subarray(32)) + L))
  const torsionR = ed.Point.BASE.multiply(rFixed)
    .add(ed.Point.fromBytes(le32(P - 1n)))
    .toBytes()
  const nonCanonicalIdentity = fromHex('ee' + 'ff'.repeat(30) + '7f')
  specs.push(
    sigSpec(
      'domain-auth',
      '§4.2',
      'signed with the handshake domain "sledlog/auth/v1\\n"',
      signText(json3, 'sledlog/auth/v1\n'),
    ),
    sigSpec('domain-none', '§4.2', 'signed without the domain prefix', signText(json3, '')),
    sigSpec('domain-v2', '§4.2', 'signed with "sledlog/entry/v2\\n"', signText(json3, 'sledlog/entry/v2\n')),
    sigSpec(
      'domain-no-newline',
      '§4.2',
      'signed with "sledlog/entry/v1" (no line feed)',
      signText(json3, 'sledlog/entry/v1'),
    ),
    sigSpec('other-key', '§4.3', 'signed by another sled than the one it names', signText(json3, ENTRY_DOMAIN, keysB)),
    sigSpec('tampered-signature', '§4.3', 'one bit of R flipped', tamper(r3)),
    sigSpec('tampered-text', '§4.3', 'the signature of seq 3 over the text of seq 2', sig3 + '.' + gapJson),
    sigSpec('s-plus-l', '§4.3', 'S + L: the same signature with a non-canonical S ≥ L', formatRecord(sPlusL, json3)),
    sigSpec(
      'torsion-r',
      '§4.3',
      'R with an order-2 component: valid under a cofactored check (ZIP-215), not the cofactorless one',
      await signWithR(json3, torsionR, rFixed),
    ),
    sigSpec(
      'non-canonical-r',
      '§4.3',
      'R = a non-canonical encoding of the identity (y = p + 1), S = k·a: equal points, unequal bytes',
      await signWithR(json3, nonCanonicalIdentity, 0n),
    ),
    ...SMALL_ORDER_KEYS.map(([what, keyHex], i) =>
      sigSpec(
        `small-order-key-${i}`,
        '§4.3, §10',
        `sled = ${what}; R = [r]B, S = r, ts ground until k ≡ 0 mod 8`,
        smallOrderRecord(keyHex),
      ),
    ),
  )
  specs.push(...statementRecordSpecs())
  const out: RecordVector[] = []
  for (const { signatureRule, ...s } of specs) {
    out.push(signatureRule === true ? { ...s, libraries: await libraryVerdicts(s.record) } : s)
  }
  return out
}

/** Record vectors of the succession and revocation kinds (§3.5, §3.6, §4.4). */
function statementRecordSpecs(): RecordSpec[] {
  const [succession, unendorsed, selfRev, adminRev] = statementRecords as [string, string, string, string]
  /** `e` with `change` applied, signed by the sled it names (a valid entry signature). */
  const signedAs = (e: Entry, change: Record<string, unknown>): string => {
    const changed = { ...e, ...change } as Entry
    const k = changed.sled === sled ? keys : changed.sled === keysB.sled ? keysB : keysD
    return signText(encodeEntryJson(changed), ENTRY_DOMAIN, k)
  }
  const jsonOf = (r: string): string => (splitRecord(r) as { json: string }).json
  const sig = (k: KeyPair, bytes: Uint8Array): string =>
    Buffer.from(sign(null, bytes, privateKeyObject(k.seed))).toString('base64url')
  const spec = (name: string, section: string, rule: string, record: string, expect: RecordOutcome): RecordSpec => ({
    name,
    section,
    rule,
    record,
    expect,
  })
  return [
    spec('succession-ok', '§3.5', 'B’s entry 0, succeeding S after seq 3, endorsed by S', succession, 'ok'),
    spec('succession-unendorsed-ok', '§3.5', 'D’s entry 0, succeeding S, endorsement null', unendorsed, 'ok'),
    spec(
      'succession-at-seq-1',
      '§3.5',
      'a succession record at seq 1 (validly signed and endorsed)',
      signedAs(successionEntry, { seq: 1 }),
      'SUCCESSION_INVALID',
    ),
    spec(
      'succession-of-itself',
      '§3.5',
      'a succession naming its own sled as predecessor, endorsed by itself',
      signedAs(successionEntry, {
        predecessor: keysB.sled,
        endorsement: endorseSuccession(keysB, { ...endorsed, predecessor: keysB.sled } as never),
      }),
      'SUCCESSION_INVALID',
    ),
    spec(
      'succession-misplaced-forged',
      '§4.3',
      'a succession at seq 1 whose entry signature is another key’s: the place is decided first',
      signText(encodeEntryJson({ ...successionEntry, seq: 1 }), ENTRY_DOMAIN, keysC),
      'SUCCESSION_INVALID',
    ),
    spec(
      'succession-forged-entry',
      '§4.3',
      'a succession at seq 0 signed by another key than B’s: the entry signature before the endorsement',
      signText(jsonOf(succession), ENTRY_DOMAIN, keysC),
      'UPDATE_BAD_SIGNATURE',
    ),
    spec(
      'endorsement-by-successor',
      '§4.4',
      'the endorsement signed by B (the successor) instead of S',
      signedAs(successionEntry, { endorsement: endorseSuccession(keysB, endorsed as never) }),
      'SUCCESSION_BAD_ENDORSEMENT',
    ),
    spec(
      'endorsement-other-last-seq',
      '§4.4',
      'S’s endorsement of lastSeq 3 in a record saying lastSeq 4',
      signedAs(successionEntry, { lastSeq: 4 }),
      'SUCCESSION_BAD_ENDORSEMENT',
    ),
    spec(
      'endorsement-other-reason',
      '§4.4',
      'S’s endorsement of a rotation in a record saying recovery',
      signedAs(successionEntry, { reason: 'recovery' }),
      'SUCCESSION_BAD_ENDORSEMENT',
    ),
    spec(
      'endorsement-entry-domain',
      '§4.4',
      'S signed the endorsement text under the entry domain instead of the succession domain',
      signedAs(successionEntry, {
        endorsement: sig(
          keys,
          Buffer.concat([
            Buffer.from(ENTRY_DOMAIN),
            endorsementMessage(endorsed).subarray(Buffer.byteLength(SUCCESSION_DOMAIN)),
          ]),
        ),
      }),
      'SUCCESSION_BAD_ENDORSEMENT',
    ),
    spec(
      'endorsement-last-char',
      '§3.5, §4.1',
      'an endorsement whose last character is not one of A Q g w',
      signedAs(successionEntry, {
        endorsement: `${(successionEntry as { endorsement: string }).endorsement.slice(0, 85)}B`,
      }),
      'ENTRY_INVALID',
    ),
    spec(
      'succession-last-seq-minus-2',
      '§3.5',
      'lastSeq -2',
      signedAs(unendorsedEntry, { lastSeq: -2 }),
      'ENTRY_INVALID',
    ),
    spec(
      'succession-endorsement-absent',
      '§3.5',
      'no endorsement field (null must be written)',
      signText(jsonOf(unendorsed).replace(',"endorsement":null', ''), ENTRY_DOMAIN, keysD),
      'ENTRY_INVALID',
    ),
    spec('revocation-self-ok', '§3.6', 'S retires itself from seq 2, carried by B', selfRev, 'ok'),
    spec('revocation-admin-ok', '§3.6', 'admin C retires B from seq 5, carried by D', adminRev, 'ok'),
    spec(
      'revocation-other-from-seq',
      '§4.4',
      'S’s signature of fromSeq 2 in a record saying fromSeq 3',
      signedAs(selfRevocationEntry, { fromSeq: 3 }),
      'REVOCATION_BAD_SIGNATURE',
    ),
    spec(
      'revocation-admin-as-self',
      '§4.4',
      'the admin’s signature presented as a self revocation of B',
      signedAs(adminRevocationEntry, { authority: 'self', admin: undefined }),
      'REVOCATION_BAD_SIGNATURE',
    ),
    spec(
      'revocation-other-admin',
      '§4.4',
      'C’s signature in a record naming D as the admin',
      signedAs(adminRevocationEntry, { admin: keysD.sled }),
      'REVOCATION_BAD_SIGNATURE',
    ),
    spec(
      'revocation-succession-domain',
      '§4.4',
      'S signed the revocation text under the succession domain',
      signedAs(selfRevocationEntry, {
        signature: sig(
          keys,
          Buffer.concat([
            Buffer.from(SUCCESSION_DOMAIN),
            revocationMessage(selfStatement).subarray(Buffer.byteLength(REVOCATION_DOMAIN)),
          ]),
        ),
      }),
      'REVOCATION_BAD_SIGNATURE',
    ),
    spec(
      'revocation-self-with-admin',
      '§3.6',
      'authority self with an admin field',
      signText(
        jsonOf(selfRev).replace('"authority":"self"', `"authority":"self","admin":"${keysC.sled}"`),
        ENTRY_DOMAIN,
        keysB,
      ),
      'ENTRY_INVALID',
    ),
    spec(
      'revocation-admin-without-admin',
      '§3.6',
      'authority admin without its admin field',
      signText(jsonOf(adminRev).replace(`,"admin":"${keysC.sled}"`, ''), ENTRY_DOMAIN, keysD),
      'ENTRY_INVALID',
    ),
  ]
}

type UpdateSpec = Omit<UpdateVector, 'updateHex' | 'maxRecordBytes' | 'maxUpdateBytes'> & {
  readonly update: Uint8Array
  readonly maxRecordBytes?: number
  readonly maxUpdateBytes?: number
}

function updateVectors(): UpdateVector[] {
  const [r0, r1, r2] = records as [string, string, string]
  const r3 = laterRecord
  const u1 = encodeRuns([{ client: clientId, clock: 0, rootName, records }])
  const u2 = encodeRuns([{ client: clientId, clock: 3, rootName, records: [r3] }])
  const uAll = encodeRuns([{ client: clientId, clock: 0, rootName, records: all }])
  const b3 = utf8(r3)
  /** The seq-3 record with its `null` payload replaced by a JSON string holding raw bytes. */
  const r3With = (raw: number[]): Uint8Array => {
    const at = r3.indexOf('null}')
    return cat(utf8(r3.slice(0, at)), 0x22, raw, 0x22, utf8('}'))
  }
  const recordB = createSigner(keysB).signEntry({ ...later, sled: keysB.sled, seq: 0 })
  const recordB3 = createSigner(keysB).signEntry({ ...later, sled: keysB.sled })
  const sledTwin = (sled.slice(0, 63) + (sled.endsWith('8') ? '9' : '8')) as SledId
  const ok = (s: Omit<UpdateSpec, 'expect'>): UpdateSpec => ({ ...s, expect: 'ok' })
  const g = (section: string) => (name: string, rule: string, held: number, u: Uint8Array, expect: RejectCode) => ({
    name,
    section,
    rule,
    held,
    update: u,
    expect,
  })
  const s52 = g('§5.2')
  const s53 = g('§5.3')
  const s61 = g('§6.1')
  const u2Head = cat(1, 1, C, 3, 0x88, C, 2, 1) // u2 up to its one element
  const specs: UpdateSpec[] = [
    ok({
      name: 'golden-9.4',
      section: '§9.4',
      rule: 'seqs 0…2, root form',
      held: 0,
      update: u1,
      added: 3,
      duplicates: 0,
    }),
    ok({
      name: 'golden-9.5',
      section: '§9.5',
      rule: 'seq 3, origin form',
      held: 3,
      update: u2,
      added: 1,
      duplicates: 0,
    }),
    ok({
      name: 'duplicates',
      section: '§6.1',
      rule: 'everything already held',
      held: 4,
      update: uAll,
      added: 0,
      duplicates: 4,
    }),
    ok({
      name: 'overlap',
      section: '§6.1',
      rule: 'a block that overlaps what is held',
      held: 2,
      update: uAll,
      added: 2,
      duplicates: 2,
    }),
    ok({
      name: 'empty',
      section: '§5.3',
      rule: 'no clients, empty delete set',
      held: 0,
      update: cat(0, 0),
      added: 0,
      duplicates: 0,
    }),
    ok({
      name: 'clients-ascending',
      section: '§5.3',
      rule: 'blocks in ascending client order (writers use descending)',
      held: 0,
      update: update(
        clientIdOf(keysB.sled) < clientId
          ? [rootBlock(0, [recordB], utf8(rootNameOf(keysB.sled)), CB), rootBlock(0, records)]
          : [rootBlock(0, records), rootBlock(0, [recordB], utf8(rootNameOf(keysB.sled)), CB)],
      ),
      added: 4,
      duplicates: 0,
    }),
    ok({
      name: 'split-structs',
      section: '§5.3',
      rule: 'one block, two structs: root form for seqs 0…1, origin form for seq 2',
      held: 0,
      update: cat(
        1,
        2,
        C,
        0,
        0x08,
        1,
        varString(utf8(rootName)),
        2,
        element(r0),
        element(r1),
        0x88,
        C,
        1,
        1,
        element(r2),
        0,
      ),
      added: 3,
      duplicates: 0,
    }),
    ok({
      name: 'empty-delete-set-entries',
      section: '§5.3',
      rule: 'delete set naming a client with no ranges and a client with one empty range',
      held: 3,
      update: update([appendBlock(3, [r3])], cat(2, C, 0, CB, 1, 5, 0)),
      added: 1,
      duplicates: 0,
    }),
    ok({
      name: 'record-at-limit',
      section: '§3.4',
      rule: 'a record of exactly maxRecordBytes (233) UTF-8 bytes',
      held: 3,
      update: u2,
      maxRecordBytes: b3.length,
      added: 1,
      duplicates: 0,
    }),
    ok({
      name: 'update-at-limit',
      section: '§3.4',
      rule: 'an update of exactly maxUpdateBytes (1037) bytes',
      held: 0,
      update: u1,
      maxUpdateBytes: u1.length,
      added: 3,
      duplicates: 0,
    }),
    // Size (§6.1 step 1, before anything else).
    { ...s61('update-too-large', 'maxUpdateBytes + 1', 0, u1, 'UPDATE_TOO_LARGE'), maxUpdateBytes: u1.length - 1 },
    {
      ...s61(
        'too-large-and-malformed',
        'over maxUpdateBytes and trailing bytes: size first',
        0,
        cat(u1, 0),
        'UPDATE_TOO_LARGE',
      ),
      maxUpdateBytes: u1.length,
    },
    // §5.2 varuints.
    s52(
      'overlong-clock',
      'clock 3 as 83 00',
      3,
      cat(1, 1, C, 0x83, 0, 0x88, C, 2, 1, element(r3), 0),
      'UPDATE_MALFORMED',
    ),
    s52('overlong-zero', 'client count 0 as 80 00', 0, cat(0x80, 0, 0), 'UPDATE_MALFORMED'),
    s52(
      'overlong-client',
      'the client id with a trailing 80 00 continuation',
      3,
      cat(1, 1, C.slice(0, -1), (C.at(-1) as number) | 0x80, 0, 3, 0x88, C, 2, 1, element(r3), 0),
      'UPDATE_MALFORMED',
    ),
    s52(
      'nine-bytes',
      'a clock of 9 bytes',
      3,
      cat(1, 1, C, Array(8).fill(0xff), 1, 0x88, C, 2, 1, element(r3), 0),
      'UPDATE_MALFORMED',
    ),
    s52(
      'over-2-53',
      'clock 2^53 (8 bytes: 80 80 80 80 80 80 80 10)',
      3,
      cat(1, 1, C, varuint(2n ** 53n), 0x88, C, 2, 1, element(r3), 0),
      'UPDATE_MALFORMED',
    ),
    s52('truncated-varuint', 'the update ends inside the client id', 0, cat(1, 1, C.slice(0, 2)), 'UPDATE_MALFORMED'),
    // §5.2 strings.
    ...(
      [
        ['overlong', [0xc0, 0xaf]],
        ['surrogate', [0xed, 0xa0, 0x80]],
        ['above-10ffff', [0xf4, 0x90, 0x80, 0x80]],
        ['truncated-sequence', [0xe2, 0x82]],
        ['lone-continuation', [0x80]],
      ] as Array<[string, number[]]>
    ).map(([what, raw]) =>
      s52(
        `utf8-${what}`,
        `a record holding invalid UTF-8 (${hex(new Uint8Array(raw))})`,
        3,
        cat(u2Head, element(r3With(raw)), 0),
        'UPDATE_MALFORMED',
      ),
    ),
    s52(
      'utf8-root-name',
      'a root name ending in byte ff',
      0,
      update([rootBlock(0, records, cat(utf8(rootName.slice(0, -1)), 0xff))]),
      'UPDATE_MALFORMED',
    ),
    s52(
      'string-past-end',
      'a record length past the end of the update',
      3,
      cat(u2Head, 0x77, varuint(b3.length), b3.subarray(0, -1)),
      'UPDATE_MALFORMED',
    ),
    {
      ...s53(
        'too-large-and-past-end',
        'a record length over maxRecordBytes and past the end: the length is checked first',
        3,
        cat(u2Head, 0x77, varuint(b3.length), b3.subarray(0, -1)),
        'ENTRY_TOO_LARGE',
      ),
      maxRecordBytes: b3.length - 1,
    },
    {
      ...s53(
        'too-large-and-bad-utf8',
        'a record over maxRecordBytes holding invalid UTF-8: the length is checked first',
        3,
        cat(u2Head, element(r3With([0xff])), 0),
        'ENTRY_TOO_LARGE',
      ),
      maxRecordBytes: b3.length - 2,
    },
    {
      ...s53('record-over-limit', 'a record of maxRecordBytes + 1 UTF-8 bytes', 3, u2, 'ENTRY_TOO_LARGE'),
      maxRecordBytes: b3.length - 1,
    },
    // §5.3 grammar.
    s53('no-structs', 'a client block with 0 structs', 0, cat(1, 0, C, 0, 0), 'UPDATE_MALFORMED'),
    s53(
      'client-twice',
      'the same client in two blocks',
      0,
      update([rootBlock(0, records), appendBlock(3, [r3])]),
      'UPDATE_MALFORMED',
    ),
    ...(
      [
        ['gc', 'a GC struct (deleted range)', cat(1, 1, C, 0, 0x00, 3, 0)],
        ['skip', 'a Skip struct', cat(1, 1, C, 0, 0x0a, 3, 0)],
        ['content-deleted', 'ContentDeleted (ref 1)', cat(1, 1, C, 3, 0x81, C, 2, 1, 0)],
        ['content-binary', 'ContentBinary (ref 3)', cat(1, 1, C, 3, 0x83, C, 2, varString([1]), 0)],
        ['content-string', 'ContentString (ref 4)', cat(1, 1, C, 3, 0x84, C, 2, varString(b3), 0)],
        ['content-type', 'ContentType (ref 7): a nested type', cat(1, 1, C, 3, 0x87, C, 2, 0, 0)],
        [
          'right-origin',
          'an item with a right origin (0x48: an insertion)',
          cat(1, 1, C, 3, 0xc8, C, 2, C, 0, 1, element(r3), 0),
        ],
        [
          'parent-sub',
          'a map-style item (0x28: parentSub key)',
          cat(1, 1, C, 0, 0x28, 1, varString(utf8(rootName)), varString(utf8('k')), 1, element(r0), 0),
        ],
      ] as Array<[string, string, Uint8Array]>
    ).map(([what, rule, u]) =>
      s53(
        `info-${what}`,
        rule,
        what === 'gc' || what === 'skip' || what === 'parent-sub' ? 0 : 3,
        u,
        'UPDATE_NOT_APPEND',
      ),
    ),
    s53(
      'parent-by-id',
      'a 0x08 item whose parent is an ID (parent info 0): a nested type',
      0,
      cat(1, 1, C, 0, 0x08, 0, C, 0, 1, element(r0), 0),
      'UPDATE_NOT_APPEND',
    ),
    s53('content-empty', 'ContentAny with 0 elements', 3, cat(1, 1, C, 3, 0x88, C, 2, 0, 0), 'UPDATE_MALFORMED'),
    s53(
      'content-huge',
      'ContentAny claiming 2^28 elements',
      3,
      cat(1, 1, C, 3, 0x88, C, 2, varuint(2 ** 28), element(r3), 0),
      'UPDATE_MALFORMED',
    ),
    s53('element-object', 'an element with lib0 tag 0x76 (object)', 3, cat(u2Head, 0x76, 0, 0), 'UPDATE_NOT_APPEND'),
    s53('element-null', 'an element with lib0 tag 0x7e (null)', 3, cat(u2Head, 0x7e, 0), 'UPDATE_NOT_APPEND'),
    s53(
      'clock-overflow',
      'clock 2^53 − 1 plus one record: the next clock is not a safe integer',
      3,
      cat(1, 1, C, varuint(2 ** 53 - 1), 0x88, C, varuint(2 ** 53 - 2), 1, element(r3), 0),
      'UPDATE_MALFORMED',
    ),
    s53('trailing-byte', 'a byte after the delete set', 3, cat(u2, 0), 'UPDATE_MALFORMED'),
    s53('no-delete-set', 'the delete set is missing', 3, u2.subarray(0, -1), 'UPDATE_MALFORMED'),
    s53(
      'deletion',
      'a delete set removing clock 0 of the golden client',
      3,
      update([appendBlock(3, [r3])], cat(1, C, 1, 0, 1)),
      'UPDATE_DELETION',
    ),
    s53('deletion-only', 'no structs, a deletion of another client', 0, cat(0, 1, CB, 1, 0, 2), 'UPDATE_DELETION'),
    s53(
      'deletion-then-trailing',
      'a deletion, then a trailing byte: the deletion is read first',
      0,
      cat(0, 1, CB, 1, 0, 2, 0),
      'UPDATE_DELETION',
    ),
    // §6.1 shape and binding.
    s61('root-item-not-at-0', 'a root-form item at clock 3', 3, update([rootBlock(3, [r3])]), 'UPDATE_NOT_APPEND'),
    s61(
      'origin-item-at-0',
      'an origin-form item at clock 0 (origin (client, 0))',
      0,
      update([appendBlock(0, [r0], cat(C, 0))]),
      'UPDATE_NOT_APPEND',
    ),
    s61(
      'origin-other-client',
      'the left origin names another client',
      3,
      update([appendBlock(3, [r3], cat(CB, 2))]),
      'UPDATE_NOT_APPEND',
    ),
    s61(
      'origin-not-previous',
      'the left origin is (client, clock − 2)',
      3,
      update([appendBlock(3, [r3], cat(C, 1))]),
      'UPDATE_NOT_APPEND',
    ),
    s61(
      'split-origin-not-previous',
      'a second struct whose origin skips a clock',
      0,
      cat(1, 2, C, 0, 0x08, 1, varString(utf8(rootName)), 2, element(r0), element(r1), 0x88, C, 0, 1, element(r2), 0),
      'UPDATE_NOT_APPEND',
    ),
    s61(
      'root-name-capital',
      'root name "Log:…"',
      0,
      update([rootBlock(0, records, utf8('Log:' + sled))]),
      'UPDATE_NOT_APPEND',
    ),
    s61(
      'root-name-uppercase-hex',
      'root name with uppercase hex',
      0,
      update([rootBlock(0, records, utf8('log:' + sled.toUpperCase()))]),
      'UPDATE_NOT_APPEND',
    ),
    s61(
      'root-name-extra',
      'root name with a character after the sled id',
      0,
      update([rootBlock(0, records, utf8(rootName + '0'))]),
      'UPDATE_NOT_APPEND',
    ),
    s61(
      'root-name-other-sled',
      'the log of another sled, whose client id differs',
      0,
      update([rootBlock(0, records, utf8(rootNameOf(keysB.sled)))]),
      'UPDATE_BAD_BINDING',
    ),
    s61(
      'root-name-twin',
      'the log of a sled id with the same client id, records naming the golden sled',
      0,
      update([rootBlock(0, records, utf8(rootNameOf(sledTwin)))]),
      'UPDATE_BAD_BINDING',
    ),
    s61(
      'root-name-twin-held',
      'a root item for a same-client sled id when the golden sled is held',
      3,
      update([rootBlock(0, all, utf8(rootNameOf(sledTwin)))]),
      'UPDATE_BAD_BINDING',
    ),
    s61('seq-not-clock', 'the record of seq 2 at clock 3', 3, update([appendBlock(3, [r2])]), 'UPDATE_BAD_BINDING'),
    s61(
      'other-sled-record',
      'another sled’s record (seq 3) at clock 3 of the golden client',
      3,
      update([appendBlock(3, [recordB3])]),
      'UPDATE_BAD_BINDING',
    ),
    s61(
      'new-bad-signature',
      'a new record with a bad signature',
      3,
      update([appendBlock(3, [tamper(r3)])]),
      'UPDATE_BAD_SIGNATURE',
    ),
    s61(
      'new-not-canonical',
      'a new record, validly signed, not canonical',
      3,
      update([appendBlock(3, [signText(json3 + ' ')])]),
      'ENTRY_INVALID',
    ),
    s61(
      'new-not-a-record',
      'a new element that is not a record',
      3,
      update([appendBlock(3, ['not a record'])]),
      'ENTRY_INVALID',
    ),
    s61(
      'all-or-nothing',
      'seqs 0…3 where only seq 3 is forged: nothing is applied',
      0,
      update([rootBlock(0, [r0, r1, r2, tamper(r3)])]),
      'UPDATE_BAD_SIGNATURE',
    ),
    // §6.3 gaps.
    { ...s61('gap', 'seq 3 when nothing is held', 0, u2, 'UPDATE_GAP'), section: '§6.1, §6.3' },
    { ...s61('gap-2', 'seq 3 when seqs 0…1 are held', 2, u2, 'UPDATE_GAP'), section: '§6.1, §6.3' },
    {
      ...s61(
        'gap-forged',
        'past the held records, last record forged',
        0,
        update([appendBlock(3, [tamper(r3)])]),
        'UPDATE_BAD_SIGNATURE',
      ),
      section: '§6.3',
    },
    {
      ...s61(
        'gap-not-canonical',
        'past the held records, last record not canonical',
        0,
        update([appendBlock(3, [signText(json3 + ' ')])]),
        'ENTRY_INVALID',
      ),
      section: '§6.3',
    },
    {
      ...s61(
        'gap-wrong-clock',
        'past the held records, last record at clock 4 but seq 3',
        0,
        update([appendBlock(4, [r3])]),
        'UPDATE_BAD_BINDING',
      ),
      section: '§6.3',
    },
    // Succession and revocation records through the guard (§6.1 step 3.3, opened per §4.3).
    ok({
      name: 'succession-root',
      section: '§3.5',
      rule: 'B’s succession record as entry 0 of its own log (root form)',
      held: 4,
      update: update([rootBlock(0, [successionRecord], utf8(rootNameOf(keysB.sled)), CB)]),
      added: 1,
      duplicates: 0,
    }),
    s61(
      'succession-past-seq-0',
      'S appends, as its seq 4, a succession of D endorsed by D',
      4,
      update([
        appendBlock(4, [
          signer.signEntry({
            sled,
            seq: 4,
            ts: TS + 4,
            ...({
              kind: 'succession',
              predecessor: keysD.sled,
              lastSeq: 0,
              reason: 'rotation',
              endorsement: endorseSuccession(keysD, {
                successor: sled,
                lastSeq: 0,
                reason: 'rotation',
              } as never),
            } as EntryBody),
          } as Entry),
        ]),
      ]),
      'SUCCESSION_INVALID',
    ),
    s61(
      'succession-bad-endorsement',
      'B’s entry 0 whose endorsement is B’s own signature',
      4,
      update([
        rootBlock(
          0,
          [
            createSigner(keysB).signEntry({
              ...successionEntry,
              endorsement: endorseSuccession(keysB, endorsed as never),
            } as Entry),
          ],
          utf8(rootNameOf(keysB.sled)),
          CB,
        ),
      ]),
      'SUCCESSION_BAD_ENDORSEMENT',
    ),
    s61(
      'revocation-bad-signature',
      'S appends, as its seq 4, a self revocation whose signature covers another fromSeq',
      4,
      update([appendBlock(4, [signer.signEntry({ ...selfRevocationEntry, sled, seq: 4, fromSeq: 1 } as Entry)])]),
      'REVOCATION_BAD_SIGNATURE',
    ),
  ]
  return specs.map(({ update: u, maxRecordBytes, maxUpdateBytes, ...s }) => ({
    name: s.name,
    section: s.section,
    rule: s.rule,
    held: s.held,
    maxRecordBytes: maxRecordBytes ?? VECTOR_LIMITS.maxRecordBytes,
    maxUpdateBytes: maxUpdateBytes ?? VECTOR_LIMITS.maxUpdateBytes,
    updateHex: hex(u),
    expect: s.expect,
    ...(s.added === undefined ? {} : { added: s.added, duplicates: s.duplicates }),
  }))
}

function stateVectorVectors(): StateVectorVector[] {
  const cb = clientIdOf(keysB.sled)
  const v = (
    name: string,
    rule: string,
    bytes: Uint8Array,
    expect: StateVectorOutcome,
    e?: Array<[number, number]>,
  ) => ({
    name,
    section: '§5.4',
    rule,
    hex: hex(bytes),
    expect,
    ...(e === undefined ? {} : { entries: e }),
  })
  const [lo, hi] = cb < clientId ? [cb, clientId] : [clientId, cb]
  return [
    v('golden', 'the state vector after §9.4', cat(1, C, 3), 'ok', [[clientId, 3]]),
    v('empty', 'no clients', cat(0), 'ok', []),
    v(
      'ascending',
      'two clients in ascending order (writers use descending)',
      cat(2, varuint(lo), 5, varuint(hi), 0),
      'ok',
      [
        [lo, 5],
        [hi, 0],
      ],
    ),
    v('client-twice', 'a client named twice', cat(2, C, 3, C, 4), 'UPDATE_MALFORMED'),
    v('overlong-clock', 'clock 3 as 83 00', cat(1, C, 0x83, 0), 'UPDATE_MALFORMED'),
    v('over-2-53', 'clock 2^53', cat(1, C, varuint(2n ** 53n)), 'UPDATE_MALFORMED'),
    v('trailing', 'a byte after the last pair', cat(1, C, 3, 0), 'UPDATE_MALFORMED'),
    v('count-past-end', 'a count of 5 with one pair', cat(5, C, 3), 'UPDATE_MALFORMED'),
  ]
}

// ---- handshake ----

const serverNonce = sha256('sledlog golden server nonce')
const clientNonce = sha256('sledlog golden client nonce')
const TOKEN = 'golden-token'

async function handshakeVectors(): Promise<Record<string, unknown>> {
  const t: Transcript = { serverKey: keys.publicKey, serverNonce, clientKey: keysB.publicKey, clientNonce }
  const sigC = signTranscript(keysB, 'client', t)
  const sigS = signTranscript(keys, 'server', t)
  const tokC = tokenProof(TOKEN, 'client', t)
  const tokS = tokenProof(TOKEN, 'server', t)
  const rejection = (
    name: string,
    rule: string,
    role: 'client' | 'server',
    tr: Transcript,
    signature: Uint8Array,
    token?: { proof: Uint8Array; token: string },
  ): HandshakeRejection => {
    const key = role === 'client' ? tr.clientKey : tr.serverKey
    let nodeCryptoRaw: boolean
    try {
      nodeCryptoRaw = verify(null, transcriptBytes(role, tr), publicKeyObject(key), signature)
    } catch {
      nodeCryptoRaw = false
    }
    return {
      name,
      section: '§8.2',
      rule,
      role,
      serverKeyHex: hex(tr.serverKey),
      serverNonceHex: hex(tr.serverNonce),
      clientKeyHex: hex(tr.clientKey),
      clientNonceHex: hex(tr.clientNonce),
      signatureHex: hex(signature),
      ...(token === undefined ? {} : { tokenProofHex: hex(token.proof), token: token.token }),
      expect: false,
      nodeCryptoRaw,
    }
  }
  // A client claiming the identity point as its key: grind its nonce until k ≡ 0 mod 8.
  const identity = fromHex('01' + '00'.repeat(31))
  const R = ed.Point.BASE.multiply(rFixed).toBytes()
  let weak: Transcript = { ...t, clientKey: identity }
  for (let i = 0; challenge(R, identity, transcriptBytes('client', weak)) % 8n !== 0n; i++) {
    weak = { ...weak, clientNonce: sha256(`sledlog golden weak nonce ${i}`) }
  }
  const entryDomainSig = new Uint8Array(
    sign(null, Buffer.concat([Buffer.from(ENTRY_DOMAIN), transcriptBytes('client', t)]), privateKeyObject(seedB)),
  )
  return {
    description:
      'Server = the golden seed, client = seed 20..3f, fixed nonces, shared token "golden-token". ' +
      'Keys, nonces and signatures are raw bytes on the wire (no length prefix); token proofs are varuint-prefixed.',
    serverSeedHex: hex(seed),
    clientSeedHex: hex(seedB),
    serverKeyHex: hex(keys.publicKey),
    clientKeyHex: hex(keysB.publicKey),
    serverNonceHex: hex(serverNonce),
    clientNonceHex: hex(clientNonce),
    token: TOKEN,
    clientTranscriptHex: hex(transcriptBytes('client', t)),
    serverTranscriptHex: hex(transcriptBytes('server', t)),
    clientSignatureHex: hex(sigC),
    serverSignatureHex: hex(sigS),
    clientTokenProofHex: hex(tokC),
    serverTokenProofHex: hex(tokS),
    helloHex: hex(encodeHello(keys.publicKey, serverNonce)),
    proveHex: hex(encodeProve(keysB.publicKey, clientNonce, sigC, tokC)),
    okHex: hex(encodeOk(sigS, tokS)),
    proveNoTokenHex: hex(encodeProve(keysB.publicKey, clientNonce, sigC, new Uint8Array(0))),
    okNoTokenHex: hex(encodeOk(sigS, new Uint8Array(0))),
    rejections: [
      rejection('role-swap', 'the client’s proof presented as the server’s', 'server', t, sigC),
      rejection(
        'other-link',
        'the client’s proof replayed on a link with another server nonce',
        'client',
        { ...t, serverNonce: clientNonce },
        sigC,
      ),
      rejection(
        'entry-domain',
        'the client transcript signed with the entry domain prefixed',
        'client',
        t,
        entryDomainSig,
      ),
      rejection(
        'weak-client-key',
        'client key = the identity point; R = [r]B, S = r, nonce ground',
        'client',
        weak,
        cat(R, le32(rFixed)),
      ),
      rejection(
        'token-role-swap',
        'a valid signature, but the server’s token proof sent by the client',
        'client',
        t,
        sigC,
        {
          proof: tokS,
          token: TOKEN,
        },
      ),
      rejection('token-wrong', 'a valid signature, but a proof of another token', 'client', t, sigC, {
        proof: tokenProof('other-token', 'client', t),
        token: TOKEN,
      }),
    ],
  }
}

// ---- holds receipts (§8.6, §9.10) ----

/** What the reference makes of a receipt on its link (signature, weak-key and length checks). */
export function holdsOutcome(v: HoldsReceiptCheck): boolean {
  const link = { serverNonce: fromHex(v.serverNonceHex), clientNonce: fromHex(v.clientNonceHex) }
  return verifyReceipt(fromHex(v.holderKeyHex), fromHex(v.subjectKeyHex), link, v.length, fromHex(v.signatureHex))
}

/** What the reference's decoder makes of a type-102 message: its length, or the error code. */
export function holdsMessageOutcome(h: string): { length: number } | string {
  try {
    const m = decodeMessage(fromHex(h))
    return m.t === 'holds' ? { length: m.length } : `decoded as ${m.t}`
  } catch (err) {
    if (isSledlogError(err)) return err.code
    throw err
  }
}

function holdsVectors(): Record<string, unknown> {
  // The link of §9.7: S (the golden key) is the server, B (seed 20..3f) the client.
  const link = { serverNonce, clientNonce }
  const receipt = (name: string, holder: KeyPair, subject: KeyPair, length: number) => {
    const signature = signReceipt(holder, subject.publicKey, link, length)
    return {
      name,
      holderKeyHex: hex(holder.publicKey),
      subjectKeyHex: hex(subject.publicKey),
      length,
      signedHex: hex(receiptBytes(subject.publicKey, holder.publicKey, link, length)),
      signatureHex: hex(signature),
      messageHex: hex(encodeHolds(length, signature)),
    }
  }
  const raw = (holder: Uint8Array, signed: Uint8Array, signature: Uint8Array): boolean => {
    try {
      return verify(null, signed, publicKeyObject(holder), signature)
    } catch {
      return false
    }
  }
  const rejection = (
    name: string,
    rule: string,
    length: number,
    signature: Uint8Array,
    holder: Uint8Array = keysB.publicKey,
  ): HoldsRejection => ({
    name,
    section: '§8.6',
    rule,
    holderKeyHex: hex(holder),
    subjectKeyHex: hex(keys.publicKey),
    serverNonceHex: hex(serverNonce),
    clientNonceHex: hex(clientNonce),
    length,
    signatureHex: hex(signature),
    expect: false,
    nodeCryptoRaw: raw(holder, receiptBytes(keys.publicKey, holder, link, length), signature),
  })
  const u64 = (n: number): Buffer => {
    const b = Buffer.alloc(8)
    b.writeBigUInt64BE(BigInt(n))
    return b
  }
  const signB = (...parts: Uint8Array[]): Uint8Array =>
    new Uint8Array(sign(null, Buffer.concat(parts), privateKeyObject(seedB)))
  const domain = Buffer.from(HOLDS_DOMAIN)
  const sig4 = signReceipt(keysB, keys.publicKey, link, 4)
  // A holder claiming the identity point as its key: grind the length until k ≡ 0 mod 8.
  const identity = fromHex('01' + '00'.repeat(31))
  const R = ed.Point.BASE.multiply(rFixed).toBytes()
  let weakLength = 0
  while (challenge(R, identity, receiptBytes(keys.publicKey, identity, link, weakLength)) % 8n !== 0n) weakLength++
  const msg = (name: string, rule: string, bytes: Uint8Array): HoldsMessageRejection => ({
    name,
    section: '§8.1',
    rule,
    hex: hex(bytes),
    expect: 'PEER_PROTOCOL',
  })
  const m4 = encodeHolds(4, sig4)
  return {
    description:
      'Holds receipts (PROTOCOL.md §8.6, §9.10) on the link of the §9.7 handshake: S = the golden key (server), ' +
      'B = seed 20..3f (client), the §9.7 nonces. Signed bytes: domain ‖ subject key ‖ holder key ‖ server nonce ‖ ' +
      'client nonce ‖ u64 big-endian length. Message: varuint 102, varuint length, 64 raw signature bytes.',
    domain: HOLDS_DOMAIN,
    serverNonceHex: hex(serverNonce),
    clientNonceHex: hex(clientNonce),
    receipts: [
      receipt('client-holds-4', keysB, keys, 4),
      receipt('server-holds-0', keys, keysB, 0),
      receipt('client-holds-max', keysB, keys, MAX_HOLDS_LENGTH),
    ],
    rejections: [
      rejection('wrong-length', 'B’s receipt for 4 entries presented as one for 5', 5, sig4),
      rejection(
        'nonce-order',
        'signed with the client nonce before the server nonce',
        4,
        signB(domain, keys.publicKey, keysB.publicKey, clientNonce, serverNonce, u64(4)),
      ),
      rejection(
        'keys-swapped',
        'signed with the holder key before the subject key',
        4,
        signB(domain, keysB.publicKey, keys.publicKey, serverNonce, clientNonce, u64(4)),
      ),
      rejection(
        'length-little-endian',
        'the length signed as u64 little-endian',
        4,
        signB(domain, keys.publicKey, keysB.publicKey, serverNonce, clientNonce, u64(4).reverse()),
      ),
      rejection(
        'no-domain',
        'signed without the holds domain in front',
        4,
        signB(keys.publicKey, keysB.publicKey, serverNonce, clientNonce, u64(4)),
      ),
      rejection(
        'reflected',
        'S’s own receipt about B sent back to S as B’s',
        0,
        signReceipt(keys, keysB.publicKey, link, 0),
      ),
      rejection(
        'weak-holder-key',
        'holder key = the identity point; R = [r]B, S = r, length ground until k ≡ 0 mod 8',
        weakLength,
        cat(R, le32(rFixed)),
        identity,
      ),
    ],
    messages: [
      msg('truncated', 'the message of client-holds-4 without its last signature byte', m4.subarray(0, m4.length - 1)),
      msg('no-signature', 'type and length only', m4.subarray(0, 2)),
      msg('trailing-byte', 'the message of client-holds-4 with one byte more', cat(m4, [0])),
      msg('length-past-max', 'length 2^53 (not a safe integer)', cat(0x66, varuint(2 ** 53), sig4)),
    ],
  }
}

// ---- key succession: worked example (§9.9) ----

/** The retirement seqs the reference computes from `records` with `adminKeys` configured (§6.5). */
export function retirementOutcome(records: readonly string[], adminKeys: readonly string[]): Record<string, number> {
  const ix = emptyIndex()
  for (const r of records) {
    const { entry } = openRecord(r, createVerifier())
    if (entry.kind === 'succession' || entry.kind === 'revocation') indexStatement(ix, entry)
  }
  const out = retirements(ix, new Set(adminKeys as SledId[]), () => true)
  return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : 1)))
}

function successionVectors(): Record<string, unknown> {
  const [succession, unendorsed, selfRev, adminRev] = statementRecords as [string, string, string, string]
  const t: Transcript = { serverKey: keys.publicKey, serverNonce, clientKey: keysB.publicKey, clientNonce }
  const sigC = signTranscript(keysB, 'client', t)
  const entryOf = (e: Entry, record: string) => ({ entry: e, json: encodeEntryJson(e), record })
  const withoutAdmin = retirementOutcome(statementRecords, [])
  const withAdmin = retirementOutcome(statementRecords, [keysC.sled])
  return {
    description:
      'Key succession (PROTOCOL.md §3.5, §3.6, §4.4, §6.5, §8.2): S = the golden sled; B (seed 20..3f) succeeds ' +
      'S after seq 3, endorsed; D (seed 60..7f) succeeds S unendorsed; C (seed 40..5f) is an admin key. B carries ' +
      'S’s self revocation from seq 2; D carries C’s revocation of B from seq 5.',
    successorSeedHex: hex(seedB),
    adminSeedHex: hex(seedC),
    unendorsedSeedHex: hex(seedD),
    successor: keysB.sled,
    admin: keysC.sled,
    unendorsedSuccessor: keysD.sled,
    successionDomain: SUCCESSION_DOMAIN,
    revocationDomain: REVOCATION_DOMAIN,
    endorsementMessageHex: hex(endorsementMessage(endorsed)),
    selfRevocationMessageHex: hex(revocationMessage(selfStatement)),
    adminRevocationMessageHex: hex(revocationMessage(adminStatement)),
    succession: entryOf(successionEntry, succession),
    unendorsed: entryOf(unendorsedEntry, unendorsed),
    selfRevocation: entryOf(selfRevocationEntry, selfRev),
    adminRevocation: entryOf(adminRevocationEntry, adminRev),
    /** Retirement seqs from all four records: without admin keys, and with C configured. */
    retiredWithoutAdmin: withoutAdmin,
    retiredWithAdmin: withAdmin,
    /** B's prove of the §9.7 handshake (no token) presenting its succession record. */
    proveChainHex: hex(encodeProve(keysB.publicKey, clientNonce, sigC, new Uint8Array(0), [succession])),
  }
}

// ---- outcomes of the reference ----

/** What the reference's openRecord gives for a record. */
export function recordOutcome(record: string): RecordOutcome | string {
  try {
    openRecord(record, createVerifier())
    return 'ok'
  } catch (err) {
    if (isSledlogError(err)) return err.code
    throw err
  }
}

/** A log view holding the golden sled's first `held` records. */
export function goldenView(held: number, golden: readonly string[], client: number): LogView {
  return {
    length: (c) => (c === client ? held : 0),
    recordAt: (c, clock) => (c === client && clock < held ? golden[clock] : undefined),
  }
}

/** What the reference's guard (level full) decides for an update vector. */
export function updateOutcome(
  v: UpdateVector,
  golden: readonly string[],
  client: number,
): { expect: string; added?: number; duplicates?: number } {
  const r = guardUpdate(fromHex(v.updateHex), goldenView(v.held, golden, client), {
    verifier: createVerifier(),
    level: 'full',
    maxRecordBytes: v.maxRecordBytes,
    maxUpdateBytes: v.maxUpdateBytes,
  })
  if (!r.ok) return { expect: r.code }
  const added = r.runs.reduce((n, run) => n + run.records.length, 0)
  return { expect: 'ok', added, duplicates: r.duplicates }
}

/** What the reference's state vector decoder gives. */
export function stateVectorOutcome(h: string): { expect: string; entries?: Array<[number, number]> } {
  try {
    return { expect: 'ok', entries: [...decodeStateVector(fromHex(h))] }
  } catch (err) {
    if (isSledlogError(err)) return { expect: err.code }
    throw err
  }
}

/** Whether the reference accepts a handshake proof (signature, weak key and token checks). */
export function handshakeOutcome(v: HandshakeRejection): boolean {
  const t: Transcript = {
    serverKey: fromHex(v.serverKeyHex),
    serverNonce: fromHex(v.serverNonceHex),
    clientKey: fromHex(v.clientKeyHex),
    clientNonce: fromHex(v.clientNonceHex),
  }
  if (!verifyTranscript(v.role, t, fromHex(v.signatureHex))) return false
  return checkTokenProof(v.token, v.role, t, fromHex(v.tokenProofHex ?? ''))
}

function mismatch(kind: string, name: string, want: unknown, got: unknown): Error {
  return new Error(
    `${kind} vector ${name}: the spec says ${JSON.stringify(want)}, the reference ${JSON.stringify(got)}`,
  )
}

// ---- the fixture ----

/** Builds the whole fixture; throws if the reference disagrees with any expected outcome. */
export async function buildGolden(): Promise<Record<string, unknown>> {
  const run: Run = { client: clientId, clock: 0, rootName, records }
  const u1 = encodeRuns([run])
  const u2 = encodeRuns([{ client: clientId, clock: 3, rootName, records: [laterRecord] }])
  const uAll = encodeRuns([{ ...run, records: all }])

  // Cross-check against Yjs itself.
  const doc = new Y.Doc()
  Y.applyUpdate(doc, u1)
  const sv3 = Y.encodeStateVector(doc)
  if (hex(Y.encodeStateAsUpdate(doc)) !== hex(u1)) throw new Error('Yjs re-encodes the first update differently')
  Y.applyUpdate(doc, u2)
  const sv4 = Y.encodeStateVector(doc)
  if (hex(Y.encodeStateAsUpdate(doc)) !== hex(uAll)) throw new Error('Yjs re-encodes the merged update differently')
  doc.destroy()

  // Storage: the first update as LevelStore stores it under the first update key.
  const macKey = deriveMacKey(seed)
  const storeKey = 'u:' + (0).toString(16).padStart(16, '0')
  const mac = createHmac('sha256', macKey)
    .update(storeKey)
    .update(Buffer.from([0]))
    .update(u1)
    .digest()
    .subarray(0, 16)

  const recordsV = await recordVectors()
  const updatesV = updateVectors()
  const svV = stateVectorVectors()
  const handshake = await handshakeVectors()
  const succession = successionVectors()
  const holds = holdsVectors()
  // Written from §6.5: S retired at min(lastSeq 3 + 1, fromSeq 2) = 2; B at 5 only with C as admin.
  const wantRetired = { [sled]: 2 }
  const wantWithAdmin = Object.fromEntries(
    Object.entries({ [sled]: 2, [keysB.sled]: 5 }).sort(([a], [b]) => (a < b ? -1 : 1)),
  )
  if (JSON.stringify(succession.retiredWithoutAdmin) !== JSON.stringify(wantRetired))
    throw mismatch('retirement', 'without admin', wantRetired, succession.retiredWithoutAdmin)
  if (JSON.stringify(succession.retiredWithAdmin) !== JSON.stringify(wantWithAdmin))
    throw mismatch('retirement', 'with admin', wantWithAdmin, succession.retiredWithAdmin)
  for (const v of recordsV) {
    const got = recordOutcome(v.record)
    if (got !== v.expect) throw mismatch('record', v.name, v.expect, got)
  }
  for (const v of updatesV) {
    const got = updateOutcome(v, all, clientId)
    const want = { expect: v.expect, ...(v.added === undefined ? {} : { added: v.added, duplicates: v.duplicates }) }
    if (JSON.stringify(got) !== JSON.stringify(want)) throw mismatch('update', v.name, want, got)
  }
  for (const v of svV) {
    const got = stateVectorOutcome(v.hex)
    if (got.expect !== v.expect || JSON.stringify(got.entries) !== JSON.stringify(v.entries))
      throw mismatch('state vector', v.name, v, got)
  }
  for (const v of handshake.rejections as HandshakeRejection[]) {
    if (handshakeOutcome(v) !== v.expect) throw mismatch('handshake', v.name, v.expect, true)
  }
  const nonces = { serverNonceHex: hex(serverNonce), clientNonceHex: hex(clientNonce) }
  for (const v of holds.receipts as Array<HoldsReceiptCheck & { name: string; messageHex: string }>) {
    if (!holdsOutcome({ ...v, ...nonces })) throw mismatch('holds', v.name, true, false)
    const got = holdsMessageOutcome(v.messageHex)
    if (typeof got === 'string' || got.length !== v.length) throw mismatch('holds message', v.name, v.length, got)
  }
  for (const v of holds.rejections as HoldsRejection[]) {
    if (holdsOutcome(v) !== v.expect) throw mismatch('holds', v.name, v.expect, true)
  }
  for (const v of holds.messages as HoldsMessageRejection[]) {
    const got = holdsMessageOutcome(v.hex)
    if (got !== v.expect) throw mismatch('holds message', v.name, v.expect, got)
  }

  return {
    description:
      'sledlog golden vectors (docs/PROTOCOL.md). Generated by scripts/make-golden.ts; ' +
      'checked by test/core/golden.test.ts. Do not edit by hand.',
    seedHex: hex(seed),
    publicKeyHex: hex(keys.publicKey),
    sled,
    clientId,
    rootName,
    entryDomain: ENTRY_DOMAIN,
    entries: [...entries, later].map(entryVector),
    /** encodeRuns of seqs 0..2: one struct at clock 0, root form (info 0x08). */
    updateHex: hex(u1),
    /** encodeRuns of seq 3 alone, appended after seq 2: origin form (info 0x88). */
    update2Hex: hex(u2),
    /** encodeRuns of seqs 0..3: what Yjs' encodeStateAsUpdate gives after both updates. */
    updateAllHex: hex(uAll),
    /** Y.encodeStateVector after the first update, and after both. */
    stateVectorHex: hex(sv3),
    stateVector2Hex: hex(sv4),
    /** LevelDB value of the first update when it is the first thing committed: MAC ‖ update. */
    store: { macKeyHex: hex(macKey), key: storeKey, macHex: hex(mac) },
    handshake,
    succession,
    holds,
    conformance: {
      description:
        'Every MUST-reject rule of docs/PROTOCOL.md with the code a verifier gives and the section that says so, ' +
        'and the accepted neighbour of each boundary (expect "ok"). Records are opened per §4.3; updates meet a log ' +
        'holding the golden sled’s records 0…held−1 and go through the full guard (§6.1) with the limits given; ' +
        'state vectors are decoded per §5.4. "libraries" records what stock Ed25519 libraries say without ' +
        'sledlog’s rules, i.e. where a verifier built on one goes wrong.',
      secondSeedHex: hex(seedB),
      secondSled: keysB.sled,
      secondClientId: clientIdOf(keysB.sled),
      records: recordsV,
      updates: updatesV,
      stateVectors: svV,
    },
  }
}

/** The golden records 0…3 and client id, for checking update vectors against a fixture. */
export const GOLDEN_LOG = { records: all, clientId } as const

/** The fixture file's exact text. */
export function goldenJson(golden: Record<string, unknown>): string {
  return JSON.stringify(golden, null, 2) + '\n'
}

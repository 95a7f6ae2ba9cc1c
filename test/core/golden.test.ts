/**
 * Golden vectors (test/fixtures/golden.json, made by scripts/make-golden.ts): the code must keep
 * reproducing every byte of docs/PROTOCOL.md's worked example, and Yjs must agree with the
 * canonical update encoding byte for byte.
 */
import { createHmac, sign, verify } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { readFileSync } from 'node:fs'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { encodeEntryJson, parseEntryJson, type Entry } from '../../src/core/entry.js'
import { clientIdOf, rootNameOf, type SledId } from '../../src/core/ids.js'
import {
  createSigner,
  createVerifier,
  keyPairFromSeed,
  openRecord,
  privateKeyObject,
  publicKeyObject,
  signedMessage,
  splitRecord,
} from '../../src/core/signing.js'
import { decodeStateVector, decodeUpdate, encodeRuns, encodeStateVector } from '../../src/core/update-codec.js'
import { isSledlogError } from '../../src/errors.js'
import { DEFAULT_LIMITS } from '../../src/log/sled-log.js'
import { deriveMacKey, LevelStore } from '../../src/store/level-store.js'
import {
  checkTokenProof,
  signTranscript,
  tokenProof,
  transcriptBytes,
  verifyTranscript,
  type Transcript,
} from '../../src/sync/handshake.js'
import { linkReceipts, receiptBytes, signReceipt, verifyReceipt } from '../../src/sync/holds.js'
import { decodeMessage, encodeHello, encodeHolds, encodeOk, encodeProve } from '../../src/sync/messages.js'
import { DEFAULT_SESSION_LIMITS } from '../../src/sync/peer-session.js'
import { guardUpdate } from '../../src/core/guard.js'
import {
  buildGolden,
  goldenJson,
  goldenView,
  handshakeOutcome,
  holdsMessageOutcome,
  holdsOutcome,
  libraryVerdicts,
  recordOutcome,
  retirementOutcome,
  stateVectorOutcome,
  updateOutcome,
  type HandshakeRejection,
  type HoldsMessageRejection,
  type HoldsRejection,
  type RecordVector,
  type StateVectorVector,
  type UpdateVector,
} from '../../scripts/golden-vectors.js'
import { tempDir } from '../helpers/tmp.js'

interface GoldenEntry {
  readonly seq: number
  readonly entry: Entry
  readonly json: string
  readonly jsonUtf8Hex: string
  readonly signedMessageHex: string
  readonly signatureHex: string
  readonly signature: string
  readonly record: string
}

interface Golden {
  readonly seedHex: string
  readonly publicKeyHex: string
  readonly sled: SledId
  readonly clientId: number
  readonly rootName: string
  readonly entryDomain: string
  readonly entries: readonly GoldenEntry[]
  readonly updateHex: string
  readonly update2Hex: string
  readonly updateAllHex: string
  readonly stateVectorHex: string
  readonly stateVector2Hex: string
  readonly store: { readonly macKeyHex: string; readonly key: string; readonly macHex: string }
  readonly handshake: GoldenHandshake
  readonly succession: GoldenSuccession
  readonly holds: GoldenHolds
  readonly conformance: {
    readonly secondSeedHex: string
    readonly secondSled: SledId
    readonly secondClientId: number
    readonly records: readonly RecordVector[]
    readonly updates: readonly UpdateVector[]
    readonly stateVectors: readonly StateVectorVector[]
  }
}

interface GoldenStatement {
  readonly entry: Entry
  readonly json: string
  readonly record: string
}

interface GoldenSuccession {
  readonly successorSeedHex: string
  readonly adminSeedHex: string
  readonly unendorsedSeedHex: string
  readonly successor: SledId
  readonly admin: SledId
  readonly unendorsedSuccessor: SledId
  readonly successionDomain: string
  readonly revocationDomain: string
  readonly endorsementMessageHex: string
  readonly selfRevocationMessageHex: string
  readonly adminRevocationMessageHex: string
  readonly succession: GoldenStatement
  readonly unendorsed: GoldenStatement
  readonly selfRevocation: GoldenStatement
  readonly adminRevocation: GoldenStatement
  readonly retiredWithoutAdmin: Readonly<Record<string, number>>
  readonly retiredWithAdmin: Readonly<Record<string, number>>
  readonly proveChainHex: string
}

interface GoldenReceipt {
  readonly name: string
  readonly holderKeyHex: string
  readonly subjectKeyHex: string
  readonly length: number
  readonly signedHex: string
  readonly signatureHex: string
  readonly messageHex: string
}

interface GoldenHolds {
  readonly domain: string
  readonly serverNonceHex: string
  readonly clientNonceHex: string
  readonly receipts: readonly GoldenReceipt[]
  readonly rejections: readonly HoldsRejection[]
  readonly messages: readonly HoldsMessageRejection[]
}

interface GoldenHandshake {
  readonly serverSeedHex: string
  readonly clientSeedHex: string
  readonly serverKeyHex: string
  readonly clientKeyHex: string
  readonly serverNonceHex: string
  readonly clientNonceHex: string
  readonly token: string
  readonly clientTranscriptHex: string
  readonly serverTranscriptHex: string
  readonly clientSignatureHex: string
  readonly serverSignatureHex: string
  readonly clientTokenProofHex: string
  readonly serverTokenProofHex: string
  readonly helloHex: string
  readonly proveHex: string
  readonly okHex: string
  readonly proveNoTokenHex: string
  readonly okNoTokenHex: string
  readonly rejections: readonly HandshakeRejection[]
}

const fixtureText = readFileSync(new URL('../fixtures/golden.json', import.meta.url), 'utf8')
const golden = JSON.parse(fixtureText) as Golden
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))
const first3 = golden.entries.slice(0, 3)
const fourth = golden.entries[3] as GoldenEntry

describe('golden vectors: the fixture', () => {
  it('is byte for byte what scripts/golden-vectors.ts builds from the fixed seeds today', async () => {
    // The builder also runs the reference on every conformance vector and throws on a mismatch.
    expect(goldenJson(await buildGolden())).toBe(fixtureText)
  })
})

describe('golden vectors: keys and ids', () => {
  it('uses the fixed seed 00..1f', () => {
    expect(golden.seedHex).toBe(Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('hex'))
  })

  it('derives the public key, sled id, client id and root name', () => {
    const keys = keyPairFromSeed(bytes(golden.seedHex))
    expect(hex(keys.publicKey)).toBe(golden.publicKeyHex)
    expect(keys.sled).toBe(golden.sled)
    expect(golden.sled).toBe(golden.publicKeyHex)
    expect(clientIdOf(keys.sled)).toBe(golden.clientId)
    expect(golden.clientId).toBe(Number(BigInt('0x' + golden.sled.slice(0, 14)) >> 3n))
    expect(rootNameOf(keys.sled)).toBe(golden.rootName)
    expect(golden.rootName).toBe('log:' + golden.sled)
  })
})

describe('golden vectors: entries and records', () => {
  const keys = keyPairFromSeed(bytes(golden.seedHex))
  const signer = createSigner(keys)
  const verifier = createVerifier()

  it('covers an event with lid and id, an event without id, a gap and a later event', () => {
    expect(golden.entries.map((g) => g.seq)).toEqual([0, 1, 2, 3])
    expect(golden.entries.map((g) => g.entry.kind)).toEqual(['event', 'event', 'gap', 'event'])
    const e0 = golden.entries[0]?.entry
    expect(e0?.kind === 'event' && e0.id !== undefined && e0.lid !== undefined).toBe(true)
    const e1 = golden.entries[1]?.entry
    expect(e1?.kind === 'event' && e1.id === undefined).toBe(true)
  })

  for (const g of golden.entries) {
    it(`reproduces entry seq ${g.seq} byte for byte`, () => {
      expect(encodeEntryJson(g.entry)).toBe(g.json)
      expect(Buffer.from(g.json, 'utf8').toString('hex')).toBe(g.jsonUtf8Hex)
      expect(hex(signedMessage(g.json))).toBe(g.signedMessageHex)
      expect(g.signedMessageHex.startsWith(Buffer.from(golden.entryDomain, 'utf8').toString('hex'))).toBe(true)
      const record = signer.signEntry(g.entry)
      expect(record).toBe(g.record)
      expect(g.record).toBe(g.signature + '.' + g.json)
      expect(g.signature).toHaveLength(86)
      expect(Buffer.from(g.signatureHex, 'hex').toString('base64url')).toBe(g.signature)
      const parts = splitRecord(g.record)
      expect(parts && hex(parts.sig)).toBe(g.signatureHex)
      expect(parts?.json).toBe(g.json)
    })

    it(`parses and verifies entry seq ${g.seq}`, () => {
      expect(parseEntryJson(g.json)).toEqual(g.entry)
      expect(openRecord(g.record, verifier).entry).toEqual(g.entry)
    })
  }
})

describe('golden vectors: Yjs updates', () => {
  const run = { client: golden.clientId, clock: 0, rootName: golden.rootName, records: first3.map((g) => g.record) }

  it('encodeRuns reproduces the fixture updates', () => {
    expect(hex(encodeRuns([run]))).toBe(golden.updateHex)
    expect(
      hex(encodeRuns([{ client: golden.clientId, clock: 3, rootName: golden.rootName, records: [fourth.record] }])),
    ).toBe(golden.update2Hex)
    expect(hex(encodeRuns([{ ...run, records: golden.entries.map((g) => g.record) }]))).toBe(golden.updateAllHex)
  })

  it('decodeUpdate gives back the records (root form, then origin form)', () => {
    const d = decodeUpdate(bytes(golden.updateHex), 64 * 1024)
    expect(d.emptyDeleteSetClients).toBe(0)
    expect(d.structs).toEqual([
      {
        client: golden.clientId,
        clock: 0,
        origin: null,
        parentKey: golden.rootName,
        records: first3.map((g) => g.record),
      },
    ])
    const d2 = decodeUpdate(bytes(golden.update2Hex), 64 * 1024)
    expect(d2.structs).toEqual([
      {
        client: golden.clientId,
        clock: 3,
        origin: { client: golden.clientId, clock: 2 },
        parentKey: null,
        records: [fourth.record],
      },
    ])
  })

  it('Yjs applies the fixture update and re-encodes it byte-identically', () => {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, bytes(golden.updateHex))
    expect(doc.getArray('log:' + golden.sled).toArray()).toEqual(first3.map((g) => g.record))
    expect(hex(Y.encodeStateAsUpdate(doc))).toBe(golden.updateHex)
    const sv = Y.encodeStateVector(doc)
    expect(hex(sv)).toBe(golden.stateVectorHex)
    expect(decodeStateVector(sv)).toEqual(new Map([[golden.clientId, 3]]))
    expect(Y.decodeStateVector(sv)).toEqual(new Map([[golden.clientId, 3]]))
    expect(hex(encodeStateVector(new Map([[golden.clientId, 3]])))).toBe(golden.stateVectorHex)
    doc.destroy()
  })

  it('Yjs appends the second update after the first; the state vector moves to 4', () => {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, bytes(golden.updateHex))
    Y.applyUpdate(doc, bytes(golden.update2Hex))
    expect(doc.getArray('log:' + golden.sled).toArray()).toEqual(golden.entries.map((g) => g.record))
    const sv = Y.encodeStateVector(doc)
    expect(hex(sv)).toBe(golden.stateVector2Hex)
    expect(decodeStateVector(sv)).toEqual(new Map([[golden.clientId, 4]]))
    // Yjs merges the two structs: its whole-doc update is the single-struct canonical form.
    expect(hex(Y.encodeStateAsUpdate(doc))).toBe(golden.updateAllHex)
    // And the delta past the first state vector is exactly the second update.
    expect(hex(Y.encodeStateAsUpdate(doc, bytes(golden.stateVectorHex)))).toBe(golden.update2Hex)
    doc.destroy()
  })

  it('the second update alone is pending in a fresh doc (its origin is missing)', () => {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, bytes(golden.update2Hex))
    expect(doc.getArray('log:' + golden.sled).length).toBe(0)
    expect(decodeStateVector(Y.encodeStateVector(doc)).size).toBe(0)
    doc.destroy()
  })

  it('the fixture update starts with the bytes the spec spells out', () => {
    // 01 clients, 01 struct, client id varuint, clock 00, info 08, parent info 01, varString root.
    const clientVar = 'c2f3f9bf8f841d'
    const rootHex = Buffer.from(golden.rootName, 'utf8').toString('hex')
    expect(golden.updateHex.startsWith(`0101${clientVar}00` + `0801` + '44' + rootHex + '03' + '77')).toBe(true)
    expect(golden.update2Hex.startsWith(`0101${clientVar}03` + `88${clientVar}02` + '01' + '77')).toBe(true)
    expect(golden.updateHex.endsWith('00')).toBe(true)
  })
})

describe('golden vectors: LevelDB storage', () => {
  it('derives the MAC key as HMAC-SHA256(seed, "sledlog/store-mac/v1")', () => {
    const seed = bytes(golden.seedHex)
    expect(hex(deriveMacKey(seed))).toBe(golden.store.macKeyHex)
    expect(createHmac('sha256', seed).update('sledlog/store-mac/v1').digest('hex')).toBe(golden.store.macKeyHex)
  })

  it('MAC = first 16 bytes of HMAC-SHA256(macKey, key || 0x00 || update)', () => {
    const msg = Buffer.concat([Buffer.from(golden.store.key, 'utf8'), Buffer.from([0]), bytes(golden.updateHex)])
    expect(
      createHmac('sha256', bytes(golden.store.macKeyHex)).update(msg).digest().subarray(0, 16).toString('hex'),
    ).toBe(golden.store.macHex)
  })

  it('LevelStore stores the first committed update as MAC || update under u:0000000000000000', async () => {
    const dir = await tempDir()
    const store = new LevelStore({ path: dir, macKey: deriveMacKey(bytes(golden.seedHex)) })
    await store.open()
    await store.commit({ updates: [bytes(golden.updateHex)], ownNext: 3 })
    await store.close()
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    await db.open()
    try {
      const raw: Record<string, string> = {}
      for await (const [k, v] of db.iterator()) raw[k] = hex(v)
      expect(raw).toEqual({
        'm:format': Buffer.from('1').toString('hex'),
        'm:own-next': Buffer.from('3').toString('hex'),
        [golden.store.key]: golden.store.macHex + golden.updateHex,
      })
    } finally {
      await db.close()
    }
    // And it reads back as trusted.
    const again = new LevelStore({ path: dir, macKey: deriveMacKey(bytes(golden.seedHex)) })
    await again.open()
    const got = []
    for await (const u of again.updates()) got.push({ key: u.key, trusted: u.trusted, hex: hex(u.update) })
    await again.close()
    expect(got).toEqual([{ key: golden.store.key, trusted: true, hex: golden.updateHex }])
  })
})

describe('docs/PROTOCOL.md worked example matches the fixture', () => {
  const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8')
  /** The code blocks of the section starting with `heading`, in order. */
  const blocksOf = (heading: string): string[] => {
    const start = doc.indexOf(heading)
    expect(start).toBeGreaterThanOrEqual(0)
    const end = doc.indexOf('\n### ', start + heading.length)
    const section = doc.slice(start, end < 0 ? undefined : end)
    return [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1] as string)
  }

  it('quotes the keys, ids, signatures and MACs verbatim', () => {
    for (const s of [
      golden.seedHex,
      golden.publicKeyHex,
      golden.rootName,
      String(golden.clientId),
      golden.store.macKeyHex,
      golden.store.macHex,
    ]) {
      expect(doc).toContain(s)
    }
    for (const g of golden.entries) expect(doc).toContain(g.signature)
    expect(doc).toContain(fourth.record)
    expect(doc).toContain(fourth.signatureHex.slice(0, 64))
    expect(doc).toContain(fourth.signatureHex.slice(64))
  })

  it('spells out the signed message of seq 3 and the full update of 9.5', () => {
    const msgBlock = blocksOf('### 9.3')[0] as string
    const msgHex = msgBlock
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => l.split(/\s+/)[0])
      .join('')
    expect(msgHex).toBe(fourth.signedMessageHex)
    const full = blocksOf('### 9.5')[1] as string
    expect(full.replace(/\s+/g, '')).toBe(golden.update2Hex)
  })

  it('spells out the hello, prove and ok of 9.7 byte for byte', () => {
    const [hello, prove, ok] = blocksOf('### 9.7').map((b) =>
      b
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => l.split(/\s+/)[0])
        .join(''),
    )
    expect([hello, prove, ok]).toEqual([golden.handshake.helloHex, golden.handshake.proveHex, golden.handshake.okHex])
    expect(doc).toContain(golden.handshake.clientKeyHex)
  })

  it('names only vectors that exist, with the outcomes the fixture gives (9.8, the table of 4.3)', () => {
    const { records, updates, stateVectors } = golden.conformance
    const byName = new Map<string, { expect: string; libraries?: RecordVector['libraries'] }>(
      [...records, ...updates].map((v) => [v.name, v]),
    )
    expect(doc).toContain(`holds ${records.length + updates.length + stateVectors.length} vectors`)
    const s98 = doc.slice(doc.indexOf('A few of them, worked through'), doc.indexOf('## 10.'))
    const named = [...s98.matchAll(/^- `([a-z0-9-]+)`/gm)].map((m) => m[1] as string)
    expect(named.length).toBeGreaterThanOrEqual(6)
    for (const n of named) {
      const v = byName.get(n)
      expect(v, n).toBeDefined()
      const bullet = s98.slice(s98.indexOf('- `' + n + '`')).split('\n- ')[0] as string
      expect(bullet, n).toContain(v?.expect === 'ok' ? 'ok' : `\`${v?.expect}\``)
    }
    const verdict = (accepts: boolean | undefined): string => (accepts === true ? '**accepts**' : 'rejects')
    for (const n of ['s-plus-l', 'torsion-r', 'non-canonical-r', 'small-order-key-0']) {
      const row = doc.split('\n').find((l) => l.startsWith('|') && l.includes('`' + n + '`')) as string
      const cells = row.split('|').map((c) => c.trim())
      const lib = byName.get(n)?.libraries
      expect(cells.slice(2, 5), n).toEqual([
        verdict(lib?.nodeCryptoRaw),
        verdict(lib?.nobleZip215),
        verdict(lib?.nobleStrict),
      ])
    }
  })

  it('states the size limits of 3.4 with the defaults the code has', () => {
    const row = (name: string): string => doc.split('\n').find((l) => l.startsWith(`| **${name}**`)) as string
    expect(row('record limit')).toContain(`\`LogLimits.maxRecordBytes\`, ${DEFAULT_LIMITS.maxRecordBytes} |`)
    expect(DEFAULT_SESSION_LIMITS.maxUpdateBytes).toBe(1024 * 1024)
    expect(row('peer update limit')).toContain('`SessionLimits.maxUpdateBytes`, 1 MiB |')
    expect(DEFAULT_LIMITS.maxUpdateBytes).toBe(16 * 1024 * 1024)
    expect(row('guard update limit')).toContain('`LogLimits.maxUpdateBytes`, 16 MiB |')
    expect(DEFAULT_SESSION_LIMITS.chunkBytes).toBe(128 * 1024)
    expect(row('sync chunk target')).toContain('`SessionLimits.chunkBytes`, 128 KiB |')
  })

  it('quotes the entry texts (with S for the sled id)', () => {
    for (const g of [golden.entries[0], golden.entries[2], golden.entries[3]] as GoldenEntry[]) {
      expect(doc).toContain(g.json.replace(golden.sled, 'S'))
    }
    const e1 = (golden.entries[1] as GoldenEntry).json
      .replace(golden.sled, 'S')
      .replace('\u007f', '⟨DEL⟩')
      .replace('\u2028', '⟨LS⟩')
    expect(doc).toContain(e1)
  })
})

/** The code a function throws as a SledlogError, or 'ok'. */
function outcome(fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (isSledlogError(err)) return err.code
    throw err
  }
}

describe('conformance vectors: records (§3, §4)', () => {
  const { records } = golden.conformance
  it('cover every record rule: split, canonical form, fields, domain, signature, small-order keys', () => {
    const sections = new Set(records.map((v) => v.section))
    for (const s of ['§3.1', '§3.3', '§3.5', '§3.6', '§4.1', '§4.2', '§4.3', '§4.4']) expect(sections.has(s)).toBe(true)
    expect(records.filter((v) => v.name.startsWith('small-order-key-'))).toHaveLength(12)
    expect(new Set(records.map((v) => v.name)).size).toBe(records.length)
  })

  for (const v of records) {
    it(`${v.name} (${v.section}: ${v.rule}) → ${v.expect}`, async () => {
      expect(recordOutcome(v.record)).toBe(v.expect)
      if (v.expect === 'ENTRY_INVALID' && !v.section.startsWith('§4.1')) {
        // Structure is checked before the signature, and these texts are validly signed.
        const parts = splitRecord(v.record)
        if (parts !== undefined) expect(outcome(() => parseEntryJson(parts.json))).toBe('ENTRY_INVALID')
      }
      if (v.libraries !== undefined) expect(await libraryVerdicts(v.record)).toEqual(v.libraries)
    })
  }

  it('stock libraries accept what sledlog rejects: small-order keys (node:crypto, noble), torsion R (noble)', () => {
    const byName = new Map(records.map((v) => [v.name, v]))
    for (const v of records.filter((r) => r.name.startsWith('small-order-key-'))) {
      expect(v.libraries).toEqual({ nodeCryptoRaw: true, nobleZip215: true, nobleStrict: false })
    }
    expect(byName.get('torsion-r')?.libraries).toEqual({ nodeCryptoRaw: false, nobleZip215: true, nobleStrict: true })
    expect(byName.get('s-plus-l')?.libraries).toEqual({ nodeCryptoRaw: false, nobleZip215: false, nobleStrict: false })
  })
})

describe('conformance vectors: updates (§5, §6)', () => {
  const { updates } = golden.conformance
  const log = golden.entries.map((g) => g.record)
  const goldenRun = { client: golden.clientId, clock: 0, rootName: golden.rootName, records: log }
  const grammarCodes = new Set(['UPDATE_MALFORMED', 'UPDATE_NOT_APPEND', 'UPDATE_DELETION', 'ENTRY_TOO_LARGE'])

  it('cover every update rejection code', () => {
    const codes = new Set(updates.map((v) => v.expect))
    for (const c of [
      'ok',
      'UPDATE_TOO_LARGE',
      'UPDATE_MALFORMED',
      'UPDATE_NOT_APPEND',
      'ENTRY_TOO_LARGE',
      'UPDATE_DELETION',
      'UPDATE_BAD_BINDING',
      'UPDATE_BAD_SIGNATURE',
      'ENTRY_INVALID',
      'UPDATE_GAP',
      'SUCCESSION_INVALID',
      'SUCCESSION_BAD_ENDORSEMENT',
      'REVOCATION_BAD_SIGNATURE',
    ]) {
      expect(codes.has(c as never), c).toBe(true)
    }
    expect(new Set(updates.map((v) => v.name)).size).toBe(updates.length)
  })

  for (const v of updates) {
    it(`${v.name} (${v.section}: ${v.rule}; ${v.held} held) → ${v.expect}`, () => {
      const got = updateOutcome(v, log, golden.clientId)
      expect(got).toEqual(
        v.expect === 'ok' ? { expect: 'ok', added: v.added, duplicates: v.duplicates } : { expect: v.expect },
      )
      const decoded = outcome(() => decodeUpdate(bytes(v.updateHex), v.maxRecordBytes))
      if (v.section.startsWith('§5')) {
        // Grammar rules are the decoder's, whatever the log holds.
        expect(decoded).toBe(v.expect === 'ok' ? 'ok' : v.expect)
      } else if (!grammarCodes.has(v.expect) && v.expect !== 'UPDATE_TOO_LARGE') {
        // Shape, binding, signature and gap rules need the log: the grammar accepts these bytes.
        expect(decoded).toBe('ok')
      }
    })
  }

  it('accepted vectors apply exactly the next records of the golden log, re-encoded canonically', () => {
    const verifier = createVerifier()
    for (const v of updates.filter((u) => u.expect === 'ok' && (u.added ?? 0) > 0)) {
      const r = guardUpdate(bytes(v.updateHex), goldenView(v.held, log, golden.clientId), {
        verifier,
        level: 'full',
        maxRecordBytes: v.maxRecordBytes,
        maxUpdateBytes: v.maxUpdateBytes,
      })
      if (!r.ok) throw new Error(`${v.name}: ${r.code}`)
      const doc = new Y.Doc()
      if (v.held > 0) Y.applyUpdate(doc, encodeRuns([{ ...goldenRun, records: log.slice(0, v.held) }]))
      Y.applyUpdate(doc, encodeRuns(r.runs))
      const mine = doc.getArray(golden.rootName).toArray()
      expect(mine, v.name).toEqual(log.slice(0, v.held + (v.name === 'clients-ascending' ? 3 : (v.added ?? 0))))
      doc.destroy()
    }
  })
})

describe('conformance vectors: state vectors (§5.4)', () => {
  for (const v of golden.conformance.stateVectors) {
    it(`${v.name} (${v.rule}) → ${v.expect}`, () => {
      const got = stateVectorOutcome(v.hex)
      expect(got.expect).toBe(v.expect)
      if (v.expect === 'ok') {
        expect(got.entries).toEqual(v.entries)
        // Yjs reads the accepted ones the same way.
        expect([...Y.decodeStateVector(bytes(v.hex))]).toEqual(v.entries)
      }
    })
  }
})

describe('golden vectors: handshake (§8.1, §8.2)', () => {
  const h = golden.handshake
  const t: Transcript = {
    serverKey: bytes(h.serverKeyHex),
    serverNonce: bytes(h.serverNonceHex),
    clientKey: bytes(h.clientKeyHex),
    clientNonce: bytes(h.clientNonceHex),
  }

  it('derives both keys from the seeds and the transcripts from keys and nonces', () => {
    expect(h.serverSeedHex).toBe(golden.seedHex)
    expect(hex(keyPairFromSeed(bytes(h.serverSeedHex)).publicKey)).toBe(h.serverKeyHex)
    expect(hex(keyPairFromSeed(bytes(h.clientSeedHex)).publicKey)).toBe(h.clientKeyHex)
    const T = h.serverKeyHex + h.serverNonceHex + h.clientKeyHex + h.clientNonceHex
    expect(h.clientTranscriptHex).toBe(Buffer.from('sledlog/auth/v1\nclient\n').toString('hex') + T)
    expect(h.serverTranscriptHex).toBe(Buffer.from('sledlog/auth/v1\nserver\n').toString('hex') + T)
    expect(hex(transcriptBytes('client', t))).toBe(h.clientTranscriptHex)
    expect(hex(transcriptBytes('server', t))).toBe(h.serverTranscriptHex)
  })

  it('reproduces both signatures and token proofs, and each verifies for its role only', () => {
    const server = keyPairFromSeed(bytes(h.serverSeedHex))
    const client = keyPairFromSeed(bytes(h.clientSeedHex))
    expect(hex(signTranscript(client, 'client', t))).toBe(h.clientSignatureHex)
    expect(hex(signTranscript(server, 'server', t))).toBe(h.serverSignatureHex)
    expect(verifyTranscript('client', t, bytes(h.clientSignatureHex))).toBe(true)
    expect(verifyTranscript('server', t, bytes(h.serverSignatureHex))).toBe(true)
    expect(hex(tokenProof(h.token, 'client', t))).toBe(h.clientTokenProofHex)
    expect(hex(tokenProof(h.token, 'server', t))).toBe(h.serverTokenProofHex)
    expect(h.clientTokenProofHex).toBe(
      createHmac('sha256', h.token).update(bytes(h.clientTranscriptHex)).digest().toString('hex'),
    )
    expect(checkTokenProof(h.token, 'server', t, bytes(h.serverTokenProofHex))).toBe(true)
  })

  it('frames hello, prove and ok with raw 32/32/64-byte fields and a varuint-prefixed token proof', () => {
    expect(h.helloHex).toBe('6400' + '01' + h.serverKeyHex + h.serverNonceHex)
    expect(h.proveHex).toBe(
      '6401' + h.clientKeyHex + h.clientNonceHex + h.clientSignatureHex + '20' + h.clientTokenProofHex,
    )
    expect(h.okHex).toBe('6402' + h.serverSignatureHex + '20' + h.serverTokenProofHex)
    expect(h.proveNoTokenHex).toBe('6401' + h.clientKeyHex + h.clientNonceHex + h.clientSignatureHex + '00')
    expect(h.okNoTokenHex).toBe('6402' + h.serverSignatureHex + '00')
    expect(hex(encodeHello(t.serverKey, t.serverNonce))).toBe(h.helloHex)
    const sigC = bytes(h.clientSignatureHex)
    expect(hex(encodeProve(t.clientKey, t.clientNonce, sigC, bytes(h.clientTokenProofHex)))).toBe(h.proveHex)
    expect(hex(encodeOk(bytes(h.serverSignatureHex), bytes(h.serverTokenProofHex)))).toBe(h.okHex)
    expect(decodeMessage(bytes(h.helloHex))).toEqual({
      t: 'hello',
      version: 1,
      publicKey: t.serverKey,
      nonce: t.serverNonce,
    })
    expect(decodeMessage(bytes(h.okNoTokenHex))).toEqual({
      t: 'ok',
      signature: bytes(h.serverSignatureHex),
      tokenProof: bytes(''),
      chain: [],
    })
  })

  for (const v of h.rejections) {
    it(`refuses ${v.name}: ${v.rule}`, () => {
      expect(handshakeOutcome(v)).toBe(false)
      const tr: Transcript = {
        serverKey: bytes(v.serverKeyHex),
        serverNonce: bytes(v.serverNonceHex),
        clientKey: bytes(v.clientKeyHex),
        clientNonce: bytes(v.clientNonceHex),
      }
      const key = publicKeyObject(v.role === 'client' ? tr.clientKey : tr.serverKey)
      expect(verify(null, transcriptBytes(v.role, tr), key, bytes(v.signatureHex))).toBe(v.nodeCryptoRaw)
    })
  }
})

describe('golden vectors: key succession (§3.5, §3.6, §4.4, §6.5, §8.2)', () => {
  const g = golden.succession
  const S = keyPairFromSeed(bytes(golden.seedHex))
  const B = keyPairFromSeed(bytes(g.successorSeedHex))
  const C = keyPairFromSeed(bytes(g.adminSeedHex))
  const D = keyPairFromSeed(bytes(g.unendorsedSeedHex))
  const statements = [g.succession, g.unendorsed, g.selfRevocation, g.adminRevocation]

  it('derives the successor, admin and unendorsed successor from their seeds', () => {
    expect([B.sled, C.sled, D.sled]).toEqual([g.successor, g.admin, g.unendorsedSuccessor])
  })

  it('spells the statement messages as domain and lines of text', () => {
    const text = (h: string): string => Buffer.from(h, 'hex').toString('utf8')
    expect(text(g.endorsementMessageHex)).toBe(`sledlog/succession/v1\n${B.sled}\n${S.sled}\n3\nrotation\n`)
    expect(text(g.selfRevocationMessageHex)).toBe(`sledlog/revocation/v1\n${S.sled}\n2\nself\n${S.sled}\n`)
    expect(text(g.adminRevocationMessageHex)).toBe(`sledlog/revocation/v1\n${B.sled}\n5\nadmin\n${C.sled}\n`)
  })

  it('reproduces every statement record byte for byte, and each opens', () => {
    for (const st of statements) {
      expect(encodeEntryJson(st.entry)).toBe(st.json)
      const by = st.entry.sled === B.sled ? B : D
      expect(createSigner(by).signEntry(st.entry)).toBe(st.record)
      expect(openRecord(st.record, createVerifier()).entry).toEqual(st.entry)
    }
    // The endorsement and revocation signatures verify over the spelled-out messages, by their keys.
    const check = (signer: Uint8Array, msgHex: string, sig: string): boolean =>
      verify(null, bytes(msgHex), publicKeyObject(signer), Buffer.from(sig, 'base64url'))
    const e = g.succession.entry as { endorsement: string }
    expect(check(S.publicKey, g.endorsementMessageHex, e.endorsement)).toBe(true)
    expect(check(B.publicKey, g.endorsementMessageHex, e.endorsement)).toBe(false)
    expect(
      check(S.publicKey, g.selfRevocationMessageHex, (g.selfRevocation.entry as { signature: string }).signature),
    ).toBe(true)
    expect(
      check(C.publicKey, g.adminRevocationMessageHex, (g.adminRevocation.entry as { signature: string }).signature),
    ).toBe(true)
  })

  it('retires S from 2 (the least of 3 + 1 and 2), and B from 5 only with C as an admin key', () => {
    const records = statements.map((st) => st.record)
    expect(retirementOutcome(records, [])).toEqual(g.retiredWithoutAdmin)
    expect(retirementOutcome([...records].reverse(), [C.sled])).toEqual(g.retiredWithAdmin)
    expect(g.retiredWithoutAdmin).toEqual({ [S.sled]: 2 })
  })

  it('frames a prove presenting the succession after the token proof', () => {
    const h = golden.handshake
    expect(g.proveChainHex.startsWith(h.proveNoTokenHex)).toBe(true)
    const record = Buffer.from(g.succession.record, 'utf8')
    const tail = g.proveChainHex.slice(h.proveNoTokenHex.length)
    expect(tail).toBe(
      `01${Buffer.from([(record.length & 0x7f) | 0x80, record.length >> 7]).toString('hex')}${record.toString('hex')}`,
    )
    expect(decodeMessage(bytes(g.proveChainHex))).toMatchObject({ t: 'prove', chain: [g.succession.record] })
  })
})

describe('golden vectors: holds receipts (§8.6, §9.10)', () => {
  const g = golden.holds
  const protocol = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8')
  const S = keyPairFromSeed(bytes(golden.seedHex))
  const B = keyPairFromSeed(bytes(golden.handshake.clientSeedHex))
  const link = { serverNonce: bytes(g.serverNonceHex), clientNonce: bytes(g.clientNonceHex) }

  /**
   * The signed bytes as §8.6's code block spells them, read from the doc text itself: each
   * `‖`-separated part is a string literal, a named 32-byte value or `u64be(length)`. If the doc
   * and the code disagree on an order, a name or the width of the length, this differs.
   */
  function fromSpec(r: GoldenReceipt): Buffer {
    const s86 = protocol.slice(protocol.indexOf('### 8.6'), protocol.indexOf('### 9.'))
    const block = /```\n([^`]*)\n```/.exec(s86)?.[1] ?? ''
    const values: Record<string, string> = {
      'subjectKey[32]': r.subjectKeyHex,
      'holderKey[32]': r.holderKeyHex,
      'serverNonce[32]': g.serverNonceHex,
      'clientNonce[32]': g.clientNonceHex,
    }
    const parts = block.split('‖').map((p) => p.trim())
    expect(parts).toHaveLength(6)
    return Buffer.concat(
      parts.map((p) => {
        if (p.startsWith('"')) return Buffer.from(JSON.parse(p) as string, 'utf8')
        if (p === 'u64be(length)') {
          const b = Buffer.alloc(8)
          b.writeBigUInt64BE(BigInt(r.length))
          return b
        }
        const v = values[p]
        if (v === undefined) throw new Error(`§8.6 names a part this test does not know: ${p}`)
        return Buffer.from(v, 'hex')
      }),
    )
  }

  it('the doc’s bytes are the fixture’s; each signature verifies under node:crypto and noble over them', async () => {
    expect(g.receipts.map((r) => r.name)).toEqual(['client-holds-4', 'server-holds-0', 'client-holds-max'])
    expect(g.domain).toBe('sledlog/holds/v1\n')
    for (const r of g.receipts) {
      const signed = fromSpec(r)
      expect([r.name, signed.toString('hex')]).toEqual([r.name, r.signedHex])
      expect(signed.length).toBe(153)
      const sig = bytes(r.signatureHex)
      expect(verify(null, signed, publicKeyObject(bytes(r.holderKeyHex)), sig)).toBe(true)
      expect(await ed.verifyAsync(sig, signed, bytes(r.holderKeyHex))).toBe(true)
      // Ed25519 is deterministic: the holder's seed signs exactly these bytes.
      const seed = r.holderKeyHex === S.sled ? golden.seedHex : golden.handshake.clientSeedHex
      expect(hex(sign(null, signed, privateKeyObject(bytes(seed))))).toBe(r.signatureHex)
      // The message: varuint 102, varuint length (minimal), the 64 raw signature bytes.
      let n = BigInt(r.length)
      let varuint = ''
      for (; n >= 0x80n; n >>= 7n) varuint += Number((n & 0x7fn) | 0x80n).toString(16)
      varuint += Number(n).toString(16).padStart(2, '0')
      expect(r.messageHex).toBe('66' + varuint + r.signatureHex)
    }
  })

  it('the reference reproduces every receipt, and each side of the link accepts the other’s', () => {
    for (const r of g.receipts) {
      const [holder, subject] = r.holderKeyHex === S.sled ? [S, B] : [B, S]
      expect(hex(receiptBytes(subject.publicKey, holder.publicKey, link, r.length))).toBe(r.signedHex)
      const sig = signReceipt(holder, subject.publicKey, link, r.length)
      expect(hex(sig)).toBe(r.signatureHex)
      expect(hex(linkReceipts(holder, subject.publicKey, link).sign(r.length))).toBe(r.signatureHex)
      expect(hex(encodeHolds(r.length, sig))).toBe(r.messageHex)
      expect(decodeMessage(bytes(r.messageHex))).toEqual({ t: 'holds', length: r.length, signature: sig })
      expect(verifyReceipt(holder.publicKey, subject.publicKey, link, r.length, sig)).toBe(true)
      expect(linkReceipts(subject, holder.publicKey, link).verify(r.length, sig)).toBe(true)
    }
  })

  for (const v of g.rejections) {
    it(`refuses receipt ${v.name}: ${v.rule}`, () => {
      expect(holdsOutcome(v)).toBe(false)
      expect(v.subjectKeyHex).toBe(S.sled)
      // S's session with the presented holder key refuses it too.
      const l = { serverNonce: bytes(v.serverNonceHex), clientNonce: bytes(v.clientNonceHex) }
      expect(linkReceipts(S, bytes(v.holderKeyHex), l).verify(v.length, bytes(v.signatureHex))).toBe(false)
      const signed = receiptBytes(S.publicKey, bytes(v.holderKeyHex), l, v.length)
      const raw = verify(null, signed, publicKeyObject(bytes(v.holderKeyHex)), bytes(v.signatureHex))
      expect(raw).toBe(v.nodeCryptoRaw)
    })
  }

  it('the weak-key vector is one node:crypto alone accepts; the others no library accepts', () => {
    expect(g.rejections.filter((v) => v.nodeCryptoRaw).map((v) => v.name)).toEqual(['weak-holder-key'])
  })

  for (const v of g.messages) {
    it(`refuses message ${v.name}: ${v.rule}`, () => {
      expect(holdsMessageOutcome(v.hex)).toBe('PEER_PROTOCOL')
      expect(outcome(() => decodeMessage(bytes(v.hex)))).toBe(v.expect)
    })
  }

  it('PROTOCOL.md 9.10 spells out the signed bytes, the signature and the message of client-holds-4', () => {
    const r = g.receipts[0] as GoldenReceipt
    const s910 = protocol.slice(protocol.indexOf('### 9.10'), protocol.indexOf('## 10.'))
    const blocks = [...s910.matchAll(/```\n([\s\S]*?)```/g)].map((m) =>
      (m[1] as string)
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => l.split(/\s+/)[0])
        .join(''),
    )
    expect(blocks).toEqual([r.signedHex, r.signatureHex, r.messageHex])
    expect(protocol).toContain('### 9.10 A holds receipt')
    for (const v of [...g.receipts, ...g.rejections, ...g.messages]) expect(s910).toContain('`' + v.name + '`')
  })
})

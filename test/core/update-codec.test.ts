import fc from 'fast-check'
import * as encoding from 'lib0/encoding'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { rootNameOf } from '../../src/core/ids.js'
import {
  decodeStateVector,
  decodeUpdate,
  encodeRuns,
  encodeRunsChunked,
  encodeStateVector,
  recordWireSize,
  type Run,
} from '../../src/core/update-codec.js'
import { isSledlogError } from '../../src/errors.js'
import { clientOf, runOf, signedRecords, signedRun, testKeys } from '../helpers/keys.js'
import { testSeed } from '../helpers/seed.js'

const MAX_RECORD = 64 * 1024
const A = testKeys(1)
const B = testKeys(2)
const C = testKeys(3)

/** Bytes built with a lib0 encoder. */
function enc(build: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder()
  build(e)
  return encoding.toUint8Array(e)
}

/** The varuint encoding of `n`, as lib0 writes it. */
const varuint = (n: number): number[] => [...enc((e) => encoding.writeVarUint(e, n))]

/** Concatenates byte lists and arrays. */
function bytes(...parts: Array<number | readonly number[] | Uint8Array>): Uint8Array {
  const out: number[] = []
  for (const p of parts) {
    if (typeof p === 'number') out.push(p)
    else out.push(...p)
  }
  return new Uint8Array(out)
}

/** Compares bytes as hex (fast, and a readable diff on failure; toEqual on big Uint8Arrays is slow). */
function expectBytes(actual: Uint8Array, expected: Uint8Array, msg?: string): void {
  expect(Buffer.from(actual).toString('hex'), msg).toBe(Buffer.from(expected).toString('hex'))
}

/** The SledlogError code `decodeUpdate` throws for `u` (fails if it throws anything else or nothing). */
function decodeCode(u: Uint8Array, maxRecordBytes = MAX_RECORD): { code: string; message: string } {
  try {
    decodeUpdate(u, maxRecordBytes)
  } catch (err) {
    if (isSledlogError(err)) return { code: err.code, message: err.message }
    throw new Error(`decodeUpdate threw a non-SledlogError: ${String(err)}`, { cause: err })
  }
  throw new Error('decodeUpdate accepted the update')
}

/** A doc written by Yjs itself: each record pushed in its own transaction under its sled's client id. */
function yjsPushDoc(pushes: ReadonlyArray<readonly [typeof A, string]>, gc = false): Y.Doc {
  const doc = new Y.Doc({ gc })
  for (const [keys, record] of pushes) {
    doc.clientID = clientOf(keys)
    doc.getArray<string>(rootNameOf(keys.sled)).push([record])
  }
  return doc
}

/** Records of varied shapes: multi-byte UTF-8, a >10k-char record (lib0's long-string path), a 3-byte length. */
const bodies = (seq: number) =>
  ({
    kind: 'event',
    type: 'codec',
    payload: seq % 5 === 1 ? { text: 'ü日🚀'.repeat(seq + 1) } : seq === 3 ? 'x'.repeat(20_000) : { n: seq },
  }) as const

const recsA = signedRecords(A, 0, 7, bodies)
const recsB = signedRecords(B, 0, 4, bodies)
const recsC = signedRecords(C, 0, 2, bodies)

/** Interleaved pushes of A, B, C. */
function interleaved(): Array<readonly [typeof A, string]> {
  const out: Array<readonly [typeof A, string]> = []
  for (let i = 0; i < 7; i++) {
    for (const [k, recs] of [
      [A, recsA],
      [B, recsB],
      [C, recsC],
    ] as const) {
      const r = recs[i]
      if (r !== undefined) out.push([k, r])
    }
  }
  return out
}

const allRuns: Run[] = [runOf(A, 0, recsA), runOf(B, 0, recsB), runOf(C, 0, recsC)]

describe('encodeRuns is byte-identical to Yjs', () => {
  it('empty: equals the update of an empty doc', () => {
    expectBytes(encodeRuns([]), Y.encodeStateAsUpdate(new Y.Doc()))
  })

  it('one sled, one push per transaction', () => {
    const doc = yjsPushDoc(recsA.map((r) => [A, r] as const))
    expectBytes(encodeRuns([runOf(A, 0, recsA)]), Y.encodeStateAsUpdate(doc))
  })

  it('three sleds, interleaved pushes, whatever the order of the runs (gc on and off)', () => {
    for (const gc of [false, true]) {
      const doc = yjsPushDoc(interleaved(), gc)
      const expected = Y.encodeStateAsUpdate(doc)
      expectBytes(encodeRuns(allRuns), expected)
      expectBytes(encodeRuns([...allRuns].reverse()), expected)
    }
  })

  it('many records pushed in one transaction', () => {
    const doc = new Y.Doc()
    doc.clientID = clientOf(B)
    doc.getArray<string>(rootNameOf(B.sled)).push(recsB)
    expectBytes(encodeRuns([runOf(B, 0, recsB)]), Y.encodeStateAsUpdate(doc))
  })

  it('the partial form (against a state vector) equals Yjs diffs', () => {
    const doc = yjsPushDoc(interleaved())
    const cases: Array<Map<number, number>> = [
      new Map([[clientOf(A), 3]]),
      new Map([
        [clientOf(A), 1],
        [clientOf(B), 4],
        [clientOf(C), 1],
      ]),
      new Map([
        [clientOf(A), 6],
        [clientOf(C), 2],
      ]),
      new Map([
        [clientOf(A), 7],
        [clientOf(B), 4],
        [clientOf(C), 2],
      ]),
      new Map([[12345, 9]]), // an unknown client
    ]
    for (const sv of cases) {
      const runs: Run[] = []
      for (const [k, recs] of [
        [A, recsA],
        [B, recsB],
        [C, recsC],
      ] as const) {
        const have = sv.get(clientOf(k)) ?? 0
        if (have < recs.length) runs.push(runOf(k, have, recs.slice(have)))
      }
      const svBytes = encodeStateVector(sv)
      expectBytes(encodeRuns(runs), Y.encodeStateAsUpdate(doc, svBytes), JSON.stringify([...sv]))
    }
  })

  it('a doc loaded from encodeRuns re-encodes to the same bytes', () => {
    const doc = new Y.Doc({ gc: false })
    Y.applyUpdate(doc, encodeRuns(allRuns))
    expectBytes(Y.encodeStateAsUpdate(doc), encodeRuns(allRuns))
    expect(doc.getArray(rootNameOf(A.sled)).toArray()).toEqual(recsA)
    expect(doc.getArray(rootNameOf(C.sled)).toArray()).toEqual(recsC)
  })

  it('handles the largest safe client id (53 bits, as clientIdOf produces)', () => {
    const run: Run = { client: Number.MAX_SAFE_INTEGER, clock: 0, rootName: rootNameOf(A.sled), records: ['r0', 'r1'] }
    const doc = new Y.Doc()
    doc.clientID = Number.MAX_SAFE_INTEGER
    doc.getArray<string>(run.rootName).push(['r0'])
    doc.getArray<string>(run.rootName).push(['r1'])
    expectBytes(encodeRuns([run]), Y.encodeStateAsUpdate(doc))
    expect(decodeUpdate(encodeRuns([run]), MAX_RECORD).structs[0]?.client).toBe(Number.MAX_SAFE_INTEGER)
  })

  it('refuses an empty run', () => {
    expect(() => encodeRuns([runOf(A, 0, [])])).toThrow(RangeError)
  })
})

describe('decodeUpdate round trip', () => {
  it('decodes encodeRuns output into one struct per run, clients descending', () => {
    const runs = [runOf(A, 0, recsA), runOf(B, 2, recsB.slice(2)), runOf(C, 1, recsC.slice(1))]
    const d = decodeUpdate(encodeRuns(runs), MAX_RECORD)
    expect(d.emptyDeleteSetClients).toBe(0)
    const expected = [...runs]
      .sort((x, y) => y.client - x.client)
      .map((r) => ({
        client: r.client,
        clock: r.clock,
        origin: r.clock === 0 ? null : { client: r.client, clock: r.clock - 1 },
        parentKey: r.clock === 0 ? r.rootName : null,
        records: r.records,
      }))
    expect(d.structs).toEqual(expected)
  })

  it('decodes what Yjs writes (pushes, full state and diffs)', () => {
    const doc = yjsPushDoc(interleaved())
    const d = decodeUpdate(Y.encodeStateAsUpdate(doc), MAX_RECORD)
    const byClient = new Map(d.structs.map((s) => [s.client, s.records]))
    expect(byClient.get(clientOf(A))).toEqual(recsA)
    expect(byClient.get(clientOf(B))).toEqual(recsB)
    expect(byClient.get(clientOf(C))).toEqual(recsC)
    const diff = decodeUpdate(Y.encodeStateAsUpdate(doc, encodeStateVector(new Map([[clientOf(A), 5]]))), MAX_RECORD)
    expect(diff.structs.find((s) => s.client === clientOf(A))).toEqual({
      client: clientOf(A),
      clock: 5,
      origin: { client: clientOf(A), clock: 4 },
      parentKey: null,
      records: recsA.slice(5),
    })
  })

  it('decodes an empty update and several structs of one client', () => {
    expect(decodeUpdate(new Uint8Array([0, 0]), MAX_RECORD)).toEqual({ structs: [], emptyDeleteSetClients: 0 })
    const cl = clientOf(A)
    const two = enc((e) => {
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint(e, 2) // two structs
      encoding.writeVarUint(e, cl)
      encoding.writeVarUint(e, 0)
      encoding.writeUint8(e, 0x08)
      encoding.writeVarUint(e, 1)
      encoding.writeVarString(e, rootNameOf(A.sled))
      encoding.writeVarUint(e, 2)
      for (const r of recsA.slice(0, 2)) {
        encoding.writeUint8(e, 119)
        encoding.writeVarString(e, r)
      }
      encoding.writeUint8(e, 0x88)
      encoding.writeVarUint(e, cl)
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint(e, 1)
      encoding.writeUint8(e, 119)
      encoding.writeVarString(e, recsA[2] as string)
      encoding.writeVarUint(e, 0)
    })
    const d = decodeUpdate(two, MAX_RECORD)
    expect(d.structs.map((s) => [s.clock, s.records.length, s.origin])).toEqual([
      [0, 2, null],
      [2, 1, { client: cl, clock: 1 }],
    ])
    // And Yjs reads the same bytes the same way.
    const doc = new Y.Doc()
    Y.applyUpdate(doc, two)
    expect(doc.getArray(rootNameOf(A.sled)).toArray()).toEqual(recsA.slice(0, 3))
  })

  it('counts delete-set clients that carry no ranges, and zero-length ranges', () => {
    const u = bytes(0, 2, varuint(7), 0, varuint(9), 1, 5, 0)
    expect(decodeUpdate(u, MAX_RECORD)).toEqual({ structs: [], emptyDeleteSetClients: 2 })
  })

  // A leading U+FEFF is content, as in lib0: no BOM stripping, so decoding is Yjs' inverse.
  it('reads strings exactly as Yjs does (a leading U+FEFF is kept)', () => {
    const doc = new Y.Doc()
    doc.getArray<string>('log:x').push(['\ufeffhello'])
    const d = decodeUpdate(Y.encodeStateAsUpdate(doc), MAX_RECORD)
    expect(d.structs[0]?.records).toEqual(['\ufeffhello'])
  })
})

describe('encodeRunsChunked', () => {
  // A run that does not start at 0 too (the form initial sync sends after a state vector).
  const runs: Run[] = [runOf(A, 0, recsA), runOf(B, 1, recsB.slice(1)), signedRun(C, 0, 30)]

  function stateAfter(updates: readonly Uint8Array[], base?: Uint8Array): Uint8Array {
    const doc = new Y.Doc({ gc: false })
    if (base !== undefined) Y.applyUpdate(doc, base)
    for (const u of updates) Y.applyUpdate(doc, u)
    expect(doc.store.pendingStructs).toBeNull()
    return Y.encodeStateAsUpdate(doc)
  }
  const base = encodeRuns([runOf(B, 0, recsB.slice(0, 1))])
  const whole = stateAfter([encodeRuns(runs)], base)

  it.each([1, 64, 300, 1000, 5000, 30_000, 1e9])(
    'chunks of at most ~%d bytes apply in order to the same doc',
    (maxBytes) => {
      const chunks = encodeRunsChunked(runs, maxBytes)
      expectBytes(stateAfter(chunks, base), whole)
      const seen = new Map<number, string[]>()
      for (const chunk of chunks) {
        const d = decodeUpdate(chunk, MAX_RECORD)
        expect(d.structs.length).toBeGreaterThan(0)
        let recordBytes = 0
        let nRecords = 0
        for (const s of d.structs) {
          // Chunks of one client are contiguous and in order.
          const got = seen.get(s.client) ?? []
          const run = runs.find((r) => r.client === s.client) as Run
          expect(s.clock).toBe(run.clock + got.length)
          got.push(...s.records)
          seen.set(s.client, got)
          for (const r of s.records) recordBytes += recordWireSize(r)
          nRecords += s.records.length
        }
        // The bound: the records' wire size fits unless a single record alone is larger, and the
        // per-run header (client, clock, origin or root name) adds at most ~100 bytes per run.
        if (nRecords > 1) expect(recordBytes).toBeLessThanOrEqual(maxBytes)
        expect(chunk.length).toBeLessThanOrEqual(Math.max(maxBytes, recordBytes) + 100 * d.structs.length)
      }
      for (const run of runs) expect(seen.get(run.client)).toEqual(run.records)
      if (maxBytes === 1) expect(chunks.length).toBe(runs.reduce((n, r) => n + r.records.length, 0))
    },
  )

  it('one chunk equal to encodeRuns when everything fits', () => {
    const one = encodeRunsChunked(runs, 1e9)
    expect(one).toHaveLength(1)
    expectBytes(one[0] as Uint8Array, encodeRuns(runs))
    expect(encodeRunsChunked([], 100)).toEqual([])
  })

  it('gives a record larger than the bound an update of its own', () => {
    const big = recsA[3] as string // 20k chars
    const chunks = encodeRunsChunked([runOf(A, 0, recsA.slice(0, 5))], 2000)
    const withBig = chunks.filter((c) => decodeUpdate(c, MAX_RECORD).structs.some((s) => s.records.includes(big)))
    expect(withBig).toHaveLength(1)
    expect(decodeUpdate(withBig[0] as Uint8Array, MAX_RECORD).structs.flatMap((s) => s.records)).toEqual([big])
  })
})

describe('decodeUpdate rejects everything outside the sledlog grammar', () => {
  const valid = encodeRuns([runOf(A, 0, signedRecords(A, 0, 3)), runOf(B, 2, signedRecords(B, 2, 2))])
  const cl = clientOf(A)
  const root = rootNameOf(A.sled)
  /** A client block header: 1 struct of client `cl` at `clock`. */
  const header = (clock = 0, client = cl): number[] => [1, 1, ...varuint(client), ...varuint(clock)]
  /** What every root struct starts with: info 0x08 (ContentAny, no origins), a root parent, its name. */
  const rootHead = (name = root): number[] => [0x08, 1, ...enc((e) => encoding.writeVarString(e, name))]
  /** A root struct with ContentAny of `items` (already-encoded elements). */
  const rootStruct = (items: Array<readonly number[]>, name = root): number[] => [
    ...rootHead(name),
    ...varuint(items.length),
    ...items.flat(),
  ]
  const str = (s: string): number[] => [119, ...enc((e) => encoding.writeVarString(e, s))]
  const rawStr = (b: readonly number[]): number[] => [119, ...varuint(b.length), ...b]

  it('accepts the hand-built baseline', () => {
    expect(decodeUpdate(bytes(header(), rootStruct([str('r')]), 0), MAX_RECORD).structs[0]?.records).toEqual(['r'])
  })

  it('rejects every truncation with UPDATE_MALFORMED, fast', () => {
    const t0 = performance.now()
    for (let i = 0; i < valid.length; i++) {
      expect(decodeCode(valid.subarray(0, i)).code, `prefix of ${i} bytes`).toBe('UPDATE_MALFORMED')
    }
    expect(decodeUpdate(valid, MAX_RECORD).structs).toHaveLength(2)
    expect(performance.now() - t0).toBeLessThan(5000)
  })

  describe('varuints', () => {
    it('rejects overlong varuints (a redundant zero high byte) anywhere', () => {
      expect(decodeCode(bytes(0x80, 0x00, 0)).message).toMatch(/overlong/)
      expect(decodeCode(bytes(0x81, 0x00, 0)).message).toMatch(/overlong/)
      // client 5 written as 85 00
      expect(decodeCode(bytes(1, 1, 0x85, 0x00, 0, rootStruct([str('r')]), 0)).message).toMatch(/overlong/)
      // a 53-bit client id with a redundant ninth byte is refused as too long
      const clientBytes = varuint(cl)
      const overlongClient = [...clientBytes.slice(0, -1), (clientBytes.at(-1) as number) | 0x80, 0x00]
      expect(decodeCode(bytes(1, 1, overlongClient, 0, rootStruct([str('r')]), 0)).code).toBe('UPDATE_MALFORMED')
      // overlong content length and string length
      expect(decodeCode(bytes(header(), rootHead(), 0x81, 0x00, str('r'), 0)).message).toMatch(/overlong/)
      expect(decodeCode(bytes(header(), rootHead(), 1, 119, 0x81, 0x00, 0x72, 0)).message).toMatch(/overlong/)
      // overlong delete-set count
      expect(decodeCode(bytes(0, 0x80, 0x00)).message).toMatch(/overlong/)
      for (const r of [decodeCode(bytes(0x80, 0x00, 0)), decodeCode(bytes(0, 0x80, 0x00))])
        expect(r.code).toBe('UPDATE_MALFORMED')
    })

    it('rejects varuints longer than 8 bytes or above 2^53', () => {
      expect(decodeCode(bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0))).toMatchObject({
        code: 'UPDATE_MALFORMED',
        message: expect.stringMatching(/longer than 8/) as unknown,
      })
      expect(decodeCode(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0)).message).toMatch(
        /longer than 8/,
      )
      // 2^56 - 1 in 8 bytes, and exactly 2^53
      expect(decodeCode(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0)).message).toMatch(/2\^53/)
      expect(decodeCode(bytes(1, 1, varuint(2 ** 53), 0, rootStruct([str('r')]), 0)).message).toMatch(/2\^53/)
      // 2^53 - 1 is fine as a client id
      expect(
        decodeUpdate(bytes(1, 1, varuint(Number.MAX_SAFE_INTEGER), 0, rootStruct([str('r')]), 0), MAX_RECORD).structs[0]
          ?.client,
      ).toBe(Number.MAX_SAFE_INTEGER)
    })

    it('rejects a clock that overflows 2^53', () => {
      const u = bytes(
        header(Number.MAX_SAFE_INTEGER - 1),
        0x88,
        varuint(cl),
        varuint(Number.MAX_SAFE_INTEGER - 2),
        2,
        str('a'),
        str('b'),
        0,
      )
      expect(decodeCode(u)).toMatchObject({
        code: 'UPDATE_MALFORMED',
        message: expect.stringMatching(/clock/) as unknown,
      })
    })
  })

  describe('strings', () => {
    const badUtf8: Array<[string, number[]]> = [
      ['a lone continuation byte', [0x80]],
      ['0xff', [0x72, 0xff]],
      ['an overlong NUL (C0 80)', [0xc0, 0x80]],
      ['an encoded surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
      ['a truncated 3-byte sequence', [0xe2, 0x82]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ]
    it.each(badUtf8)('rejects invalid UTF-8 in a record: %s', (_name, b) => {
      expect(decodeCode(bytes(header(), rootStruct([rawStr(b)]), 0)).code).toBe('UPDATE_MALFORMED')
    })
    it('rejects invalid UTF-8 in a root name', () => {
      const name = [...Buffer.from(root)].slice(0, 10).concat([0xff])
      expect(decodeCode(bytes(header(), 0x08, 1, varuint(name.length), name, 1, str('r'), 0)).code).toBe(
        'UPDATE_MALFORMED',
      )
    })
    it('rejects a string length running past the end', () => {
      expect(decodeCode(bytes(header(), rootStruct([[119, 5, 0x61]]), 0)).code).toBe('UPDATE_MALFORMED')
    })
    it('accepts a record of exactly maxRecordBytes UTF-8 bytes and refuses one byte more (ENTRY_TOO_LARGE)', () => {
      const max = 1000
      // Multi-byte characters: the rule counts UTF-8 bytes, not characters or wire bytes.
      const ok = 'é'.repeat(max / 2)
      expect(Buffer.byteLength(ok, 'utf8')).toBe(max)
      expect(decodeUpdate(encodeRuns([runOf(A, 0, [ok])]), max).structs[0]?.records).toEqual([ok])
      expect(decodeCode(encodeRuns([runOf(A, 0, [ok + 'r'])]), max)).toMatchObject({
        code: 'ENTRY_TOO_LARGE',
        message: expect.stringContaining('1001 UTF-8 bytes') as unknown,
      })
      expect(decodeCode(encodeRuns([runOf(A, 0, ['ok', 'r'.repeat(5 * max)])]), max).code).toBe('ENTRY_TOO_LARGE')
    })
    it('checks a record length against the limit before the bytes: too large wins over truncated and bad UTF-8', () => {
      const max = 100
      // Length prefix 101 with only 3 bytes behind it: too large and truncated.
      expect(decodeCode(bytes(header(), rootStruct([[119, 101, 0x61, 0x62, 0x63]]), 0), max).code).toBe(
        'ENTRY_TOO_LARGE',
      )
      // The same length within the limit is only truncated.
      expect(decodeCode(bytes(header(), rootStruct([[119, 101, 0x61, 0x62, 0x63]]), 0), 101).code).toBe(
        'UPDATE_MALFORMED',
      )
      const badUtf8 = Array.from({ length: 101 }, () => 0xff)
      expect(decodeCode(bytes(header(), rootStruct([rawStr(badUtf8)]), 0), max).code).toBe('ENTRY_TOO_LARGE')
      expect(decodeCode(bytes(header(), rootStruct([rawStr(badUtf8)]), 0), 101).code).toBe('UPDATE_MALFORMED')
    })
    it('checks the clock range when the struct length is read, before its elements', () => {
      // Clock 2^53 - 1 plus one element overflows; the element is not even a string.
      const u = bytes(
        header(Number.MAX_SAFE_INTEGER),
        0x88,
        varuint(cl),
        varuint(Number.MAX_SAFE_INTEGER - 1),
        1,
        0x7d,
        1,
        0,
      )
      expect(decodeCode(u).code).toBe('UPDATE_MALFORMED')
    })
  })

  describe('content and struct kinds (real Yjs updates)', () => {
    function yjsUpdate(build: (doc: Y.Doc) => void): Uint8Array {
      const doc = new Y.Doc()
      doc.clientID = cl
      build(doc)
      return Y.encodeStateAsUpdate(doc)
    }
    const arr = (doc: Y.Doc) => doc.getArray<unknown>(root)
    const notStrings: Array<[string, unknown[]]> = [
      ['an integer', [42]],
      ['a float', [1.5]],
      ['null', [null]],
      ['a boolean', [true]],
      ['an object', [{ sled: A.sled }]],
      ['an array', [['r']]],
      ['a string then a number', ['r', 1]],
    ]
    it.each(notStrings)('ContentAny holding %s → UPDATE_NOT_APPEND', (_name, items) => {
      expect(decodeCode(yjsUpdate((d) => arr(d).push(items))).code).toBe('UPDATE_NOT_APPEND')
    })

    const others: Array<[string, (doc: Y.Doc) => void]> = [
      ['Y.Map set', (d) => d.getMap('m').set('k', 'v')],
      ['Y.Map set on a log root name', (d) => d.getMap(root).set('k', 'v')],
      ['Y.Text insert', (d) => d.getText('t').insert(0, 'hello')],
      ['Y.Text insert with formatting', (d) => d.getText('t').insert(0, 'hi', { bold: true })],
      ['Y.Text embed', (d) => d.getText('t').insertEmbed(0, { img: 'x' })],
      ['a nested Y.Array', (d) => arr(d).push([new Y.Array()])],
      ['a nested Y.Map', (d) => arr(d).push([new Y.Map()])],
      ['a Y.XmlFragment root', (d) => d.getXmlFragment('x').insert(0, [new Y.XmlElement('p')])],
      ['ContentBinary (Uint8Array push)', (d) => arr(d).push([new Uint8Array([1, 2, 3])])],
      ['a subdocument', (d) => arr(d).push([new Y.Doc()])],
      [
        'a deleted item (ContentDeleted)',
        (d) => {
          arr(d).push(['a', 'b'])
          arr(d).delete(0, 1)
        },
      ],
    ]
    it.each(others)('%s → UPDATE_NOT_APPEND', (_name, build) => {
      expect(decodeCode(yjsUpdate(build)).code).toBe('UPDATE_NOT_APPEND')
    })

    it('a string pushed into a nested array is not an append to a root', () => {
      const doc = new Y.Doc()
      doc.clientID = cl
      const nested = new Y.Array<string>()
      arr(doc).push([nested])
      const sv = Y.encodeStateVector(doc)
      nested.push(['r'])
      expect(decodeCode(Y.encodeStateAsUpdate(doc, sv)).code).toBe('UPDATE_NOT_APPEND')
    })

    it('insertion at index 0 of a non-empty array (right origin) → UPDATE_NOT_APPEND', () => {
      const doc = new Y.Doc()
      doc.clientID = cl
      arr(doc).push(['a', 'b'])
      const sv = Y.encodeStateVector(doc)
      arr(doc).insert(0, ['first'])
      expect(decodeCode(Y.encodeStateAsUpdate(doc, sv)).code).toBe('UPDATE_NOT_APPEND')
      expect(decodeCode(Y.encodeStateAsUpdate(doc)).code).toBe('UPDATE_NOT_APPEND')
      // by another client too
      const other = new Y.Doc()
      Y.applyUpdate(other, encodeRuns([runOf(A, 0, ['a', 'b'])]))
      other.clientID = 77
      const sv2 = Y.encodeStateVector(other)
      other.getArray<string>(root).insert(1, ['middle'])
      expect(decodeCode(Y.encodeStateAsUpdate(other, sv2)).code).toBe('UPDATE_NOT_APPEND')
    })

    it('a delete-only update → UPDATE_DELETION', () => {
      const doc = new Y.Doc()
      doc.clientID = cl
      arr(doc).push(['a', 'b', 'c'])
      const updates: Uint8Array[] = []
      doc.on('update', (u: Uint8Array) => updates.push(u))
      arr(doc).delete(1, 1)
      expect(updates).toHaveLength(1)
      expect(decodeCode(updates[0] as Uint8Array).code).toBe('UPDATE_DELETION')
      // A hand-built delete set of any client, any range.
      expect(decodeCode(bytes(0, 1, varuint(999), 1, 0, 1)).code).toBe('UPDATE_DELETION')
      expect(decodeCode(bytes(0, 2, varuint(1), 0, varuint(2), 2, 0, 0, 5, 3)).code).toBe('UPDATE_DELETION')
    })
  })

  describe('hand-built structs', () => {
    const withInfo = (info: number, rest: number[] = []): Uint8Array => bytes(header(), info, rest, 0)
    it.each([
      ['a GC struct', 0x00],
      ['ContentDeleted', 0x01],
      ['ContentJSON', 0x02],
      ['ContentBinary', 0x03],
      ['ContentString', 0x04],
      ['ContentEmbed', 0x05],
      ['ContentFormat', 0x06],
      ['ContentType', 0x07],
      ['ContentDoc', 0x09],
      ['a Skip struct', 0x0a],
      ['ContentAny with a parentSub (map key)', 0x28],
      ['ContentAny with a right origin only', 0x48],
      ['ContentAny with left and right origins', 0xc8],
      ['ContentAny with origin and parentSub', 0xa8],
      ['an unknown content ref', 0x1f],
    ])('%s → UPDATE_NOT_APPEND', (_name, info) => {
      expect(decodeCode(withInfo(info, [1, 1, 1, 1, 1, 1])).code).toBe('UPDATE_NOT_APPEND')
    })

    it('a root item whose parent is an item id (nested type), not a root name → UPDATE_NOT_APPEND', () => {
      expect(decodeCode(bytes(header(), 0x08, 0, varuint(5), 0, 1, str('r'), 0)).code).toBe('UPDATE_NOT_APPEND')
    })

    it('trailing bytes → UPDATE_MALFORMED', () => {
      expect(decodeCode(bytes(valid, 0)).code).toBe('UPDATE_MALFORMED')
      expect(decodeCode(bytes(0, 0, 0)).code).toBe('UPDATE_MALFORMED')
      expect(decodeCode(bytes(valid, valid)).code).toBe('UPDATE_MALFORMED')
    })

    it('a client block appearing twice → UPDATE_MALFORMED', () => {
      const one = encodeRuns([runOf(A, 0, ['a'])])
      const block = one.subarray(1, one.length - 1)
      expect(decodeCode(bytes(2, block, block, 0)).code).toBe('UPDATE_MALFORMED')
      const later = encodeRuns([runOf(A, 1, ['b'])]).subarray(1)
      expect(decodeCode(bytes(2, block, later)).message).toMatch(/twice/)
    })

    it('a client block with no structs → UPDATE_MALFORMED', () => {
      expect(decodeCode(bytes(1, 0, varuint(cl), 0, 0)).code).toBe('UPDATE_MALFORMED')
    })

    it('an empty ContentAny → UPDATE_MALFORMED', () => {
      expect(decodeCode(bytes(header(), rootStruct([]), 0)).code).toBe('UPDATE_MALFORMED')
    })

    it('lying lengths (huge declared counts, few bytes) fail fast with UPDATE_MALFORMED', () => {
      const big = [2 ** 24, 30_000_000, 2 ** 40, Number.MAX_SAFE_INTEGER]
      const cases: Uint8Array[] = []
      for (const n of big) {
        cases.push(bytes(varuint(n), 0)) // client count
        cases.push(bytes(1, varuint(n), varuint(cl), 0, rootStruct([str('r')]))) // struct count
        cases.push(bytes(header(), rootHead(), varuint(n), str('r'), 0)) // ContentAny length
        cases.push(bytes(header(), 0x08, 1, varuint(n), 0x6c, 0)) // root name length
        cases.push(bytes(0, varuint(n), 1, 0)) // delete-set client count
        cases.push(bytes(0, 1, 1, varuint(n), 0, 0)) // delete-set range count
      }
      for (const u of cases) {
        const t0 = performance.now()
        expect(decodeCode(u).code).toBe('UPDATE_MALFORMED')
        expect(performance.now() - t0, Buffer.from(u).toString('hex')).toBeLessThan(50)
      }
      // A lying record length is over the record limit before it is past the end (§5.3 order).
      for (const n of big) {
        const u = bytes(header(), rootStruct([[119, ...varuint(n), 0x72]]), 0)
        expect(decodeCode(u).code, Buffer.from(u).toString('hex')).toBe('ENTRY_TOO_LARGE')
      }
    })
  })

  const seed = testSeed('update-codec mutations', 20261102)
  it(`random mutations of a valid update decode or throw SledlogError, nothing else (fast-check seed ${seed})`, () => {
    const base = encodeRuns([
      runOf(A, 0, signedRecords(A, 0, 2)),
      runOf(B, 3, signedRecords(B, 3, 2)),
      runOf(C, 0, ['x', 'y']),
    ])
    type Mutation = { op: 'flip' | 'set' | 'insert' | 'delete'; at: number; byte: number }
    const mutation = fc.record({
      op: fc.constantFrom('flip' as const, 'set' as const, 'insert' as const, 'delete' as const),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    })
    const apply = (u: Uint8Array, muts: readonly Mutation[]): Uint8Array => {
      const b = [...u]
      for (const m of muts) {
        const i = b.length === 0 ? 0 : m.at % (b.length + (m.op === 'insert' ? 1 : 0))
        if (m.op === 'flip' && b.length > 0) b[i] = (b[i] as number) ^ (m.byte || 1)
        else if (m.op === 'set' && b.length > 0) b[i] = m.byte
        else if (m.op === 'insert') b.splice(i, 0, m.byte)
        else if (m.op === 'delete') b.splice(i, 1)
      }
      return new Uint8Array(b)
    }
    let rejected = 0
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.nat(base.length), (muts, cut) => {
        for (const u of [apply(base, muts), apply(base.subarray(0, cut), muts)]) {
          try {
            const d = decodeUpdate(u, MAX_RECORD)
            for (const s of d.structs) for (const r of s.records) expect(typeof r).toBe('string')
          } catch (err) {
            if (!isSledlogError(err)) throw err
            expect(err.code).toMatch(/^(UPDATE_|ENTRY_TOO_LARGE)/)
            rejected++
          }
        }
      }),
      { seed, numRuns: 2000 },
    )
    expect(rejected).toBeGreaterThan(0)
  })
})

describe('state vectors', () => {
  it('round-trips and matches Yjs', () => {
    const doc = yjsPushDoc(interleaved())
    const sv = decodeStateVector(Y.encodeStateVector(doc))
    expect(sv).toEqual(
      new Map([
        [clientOf(A), 7],
        [clientOf(B), 4],
        [clientOf(C), 2],
      ]),
    )
    expect(encodeStateVector(sv)).toEqual(Y.encodeStateVector(doc))
    expect(decodeStateVector(encodeStateVector(new Map()))).toEqual(new Map())
  })

  it.each([
    ['empty input', []],
    ['truncated', [2, 1, 1]],
    ['trailing bytes', [1, 1, 1, 0]],
    ['a duplicate client', [2, 5, 1, 5, 2]],
    ['an overlong count', [0x81, 0x00, 1, 1]],
    ['a lying count', [...varuint(2 ** 40), 1, 1]],
    ['a 9-byte varuint', [1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1, 0]],
  ])('rejects %s with UPDATE_MALFORMED', (_name, b) => {
    try {
      decodeStateVector(new Uint8Array(b))
      expect.unreachable('accepted')
    } catch (err) {
      expect(isSledlogError(err, 'UPDATE_MALFORMED')).toBe(true)
    }
  })
})

import * as encoding from 'lib0/encoding'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import {
  assertAccepted,
  guardUpdate,
  type GuardAccept,
  type GuardOptions,
  type GuardReject,
  type GuardResult,
} from '../../src/core/guard.js'
import { clientIdOf, rootNameOf } from '../../src/core/ids.js'
import { openRecord } from '../../src/core/signing.js'
import { encodeRuns, type Run } from '../../src/core/update-codec.js'
import { isSledlogError } from '../../src/errors.js'
import { docView, overlayView } from '../../src/log/doc-view.js'
import {
  applyRuns,
  cloneDoc,
  docFromRuns,
  guardOpts,
  hostileFixtures,
  testVerifier,
  threeSledRuns,
} from '../helpers/hostile.js'
import {
  clientOf,
  forgedRecord,
  runOf,
  signedRecord,
  signedRecords,
  signedRun,
  signJsonText,
  tamperSignature,
  testKeys,
} from '../helpers/keys.js'

const A = testKeys(1)
const B = testKeys(2)
const C = testKeys(3)
const D = testKeys(4) // not in the base doc

/** The base doc: 27 entries, 9 each from A, B, C. */
function setup(perSled = 9): { doc: Y.Doc; view: ReturnType<typeof docView> } {
  const doc = docFromRuns(threeSledRuns(perSled))
  return { doc, view: docView(doc) }
}

const state = (doc: Y.Doc): string => Buffer.from(Y.encodeStateAsUpdate(doc)).toString('hex')

function accepted(r: GuardResult): GuardAccept {
  if (!r.ok) throw new Error(`expected acceptance, got ${r.code}: ${r.message}`)
  return r
}
function rejected(r: GuardResult, code: GuardReject['code']): GuardReject {
  if (r.ok) throw new Error(`expected ${code}, the update was accepted`)
  expect(r.code, r.message).toBe(code)
  expect(r.message).not.toMatch(/unexpected guard failure/)
  return r
}

/** Guards `u` against `doc` and checks that the doc did not change, whatever the verdict. */
function guard(doc: Y.Doc, u: Uint8Array, opts: GuardOptions = guardOpts()): GuardResult {
  const before = state(doc)
  const r = guardUpdate(u, docView(doc), opts)
  expect(state(doc)).toBe(before)
  return r
}

interface CraftStruct {
  readonly clock: number
  readonly records: readonly unknown[]
  /** Left origin; when absent the struct is a root item in `root`. */
  readonly origin?: { readonly client: number; readonly clock: number }
  readonly root?: string
}
/**
 * Hand-built v1 update: per client, its structs (the first struct's clock is written, later
 * ones follow), then `ds` (raw delete-set bytes; default: empty).
 */
function craft(
  clients: ReadonlyArray<{ client: number; structs: readonly CraftStruct[] }>,
  ds: readonly number[] = [0],
): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, clients.length)
  for (const { client, structs } of clients) {
    encoding.writeVarUint(e, structs.length)
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, structs[0]?.clock ?? 0)
    for (const s of structs) {
      if (s.origin !== undefined) {
        encoding.writeUint8(e, 0x88)
        encoding.writeVarUint(e, s.origin.client)
        encoding.writeVarUint(e, s.origin.clock)
      } else {
        encoding.writeUint8(e, 0x08)
        encoding.writeVarUint(e, 1)
        encoding.writeVarString(e, s.root ?? '')
      }
      encoding.writeVarUint(e, s.records.length)
      for (const r of s.records) encoding.writeAny(e, r as string)
    }
  }
  for (const b of ds) encoding.writeUint8(e, b)
  return encoding.toUint8Array(e)
}

/** `u` (an encodeRuns output, empty delete set) with its delete set replaced by `ds`. */
const withDs = (u: Uint8Array, ds: readonly number[]): Uint8Array =>
  new Uint8Array([...u.subarray(0, u.length - 1), ...ds])
const varuint = (n: number): number[] => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, n)
  return [...encoding.toUint8Array(e)]
}

describe('guardUpdate accepts valid appends', () => {
  it('a first update into an empty log', () => {
    const doc = new Y.Doc({ gc: false })
    const run = signedRun(A, 0, 5)
    const r = accepted(guard(doc, encodeRuns([run])))
    expect(r.runs).toEqual([run])
    expect(r.entries.map((e) => [e.sled, e.seq])).toEqual([0, 1, 2, 3, 4].map((s) => [A.sled, s]))
    expect(r.duplicates).toBe(0)
    expect(r.equivocations).toEqual([])
    applyRuns(doc, r.runs)
    expect(docView(doc).length(clientOf(A))).toBe(5)
    expect(doc.getArray(rootNameOf(A.sled)).toArray()).toEqual(run.records)
  })

  it('the full state of a doc Yjs wrote (empty delete set, 0 clients) into an empty log', () => {
    const { doc: source } = setup()
    const target = new Y.Doc({ gc: false })
    const r = accepted(guard(target, Y.encodeStateAsUpdate(source)))
    expect(r.runs).toHaveLength(3)
    expect(r.entries).toHaveLength(27)
    applyRuns(target, r.runs)
    expect(state(target)).toBe(state(source))
  })

  it('a contiguous continuation, and an overlapping one (held part counted as duplicates)', () => {
    const { doc } = setup()
    const next = signedRun(A, 9, 3)
    const r = accepted(guard(doc, encodeRuns([next])))
    expect(r.runs).toEqual([next])
    const overlap = runOf(A, 5, [...signedRecords(A, 5, 4), ...next.records])
    const r2 = accepted(guard(doc, encodeRuns([overlap])))
    expect(r2.duplicates).toBe(4)
    expect(r2.runs).toEqual([next])
    expect(r2.entries.map((e) => e.seq)).toEqual([9, 10, 11])
  })

  it("counts duplicates: a doc's own state is all duplicates and adds nothing", () => {
    const { doc } = setup()
    const r = accepted(guard(doc, Y.encodeStateAsUpdate(doc)))
    expect(r).toMatchObject({ runs: [], entries: [], duplicates: 27, equivocations: [] })
    expect(accepted(guard(doc, new Uint8Array([0, 0])))).toMatchObject({ runs: [], duplicates: 0 })
  })

  it('several clients at once, new and known', () => {
    const { doc } = setup()
    const runs = [
      signedRun(A, 9, 2),
      signedRun(D, 0, 3),
      runOf(B, 8, [...signedRecords(B, 8, 1), ...signedRecords(B, 9, 1)]),
    ]
    const r = accepted(guard(doc, encodeRuns(runs)))
    expect(r.duplicates).toBe(1)
    expect(new Map(r.runs.map((x) => [x.client, [x.clock, x.records.length, x.rootName]]))).toEqual(
      new Map([
        [clientOf(A), [9, 2, rootNameOf(A.sled)]],
        [clientOf(D), [0, 3, rootNameOf(D.sled)]],
        [clientOf(B), [9, 1, rootNameOf(B.sled)]],
      ]),
    )
    applyRuns(doc, r.runs)
    expect(docView(doc).length(clientOf(D))).toBe(3)
  })

  it('a client split over several structs in one update', () => {
    const { doc } = setup()
    const recs = signedRecords(A, 9, 3)
    const u = craft([
      {
        client: clientOf(A),
        structs: [
          { clock: 9, origin: { client: clientOf(A), clock: 8 }, records: recs.slice(0, 2) },
          { clock: 11, origin: { client: clientOf(A), clock: 10 }, records: recs.slice(2) },
        ],
      },
    ])
    expect(accepted(guard(doc, u)).runs).toEqual([runOf(A, 9, recs)])
  })

  it('delete-set clients without ranges (or with zero-length ranges) are stripped, not refused', () => {
    const { doc } = setup()
    const u = encodeRuns([signedRun(A, 9, 1)])
    expect(accepted(guard(doc, withDs(u, [1, ...varuint(clientOf(B)), 0]))).runs).toHaveLength(1)
    expect(accepted(guard(doc, withDs(u, [2, ...varuint(7), 0, ...varuint(9), 1, 3, 0]))).runs).toHaveLength(1)
  })

  it('sees runs staged in an overlay view (a flush checking several updates)', () => {
    const { doc, view } = setup()
    const overlay = overlayView(view)
    const first = accepted(guardUpdate(encodeRuns([signedRun(A, 9, 2)]), overlay, guardOpts()))
    for (const run of first.runs) overlay.stage(run)
    const second = encodeRuns([signedRun(A, 11, 2)])
    expect(accepted(guardUpdate(second, overlay, guardOpts())).runs[0]?.clock).toBe(11)
    rejected(guard(doc, second), 'UPDATE_GAP')
    // Re-sending the staged part is a duplicate against the overlay.
    expect(accepted(guardUpdate(encodeRuns([signedRun(A, 9, 2)]), overlay, guardOpts())).duplicates).toBe(2)
  })
})

describe('guardUpdate refuses bad signatures and bindings', () => {
  it('a tampered signature → UPDATE_BAD_SIGNATURE (known and new clients)', () => {
    const { doc } = setup()
    const bad = tamperSignature(signedRecord(A, 9))
    rejected(guard(doc, encodeRuns([runOf(A, 9, [bad])])), 'UPDATE_BAD_SIGNATURE')
    rejected(
      guard(doc, encodeRuns([runOf(A, 9, [signedRecord(A, 9), tamperSignature(signedRecord(A, 10))])])),
      'UPDATE_BAD_SIGNATURE',
    )
    rejected(guard(doc, encodeRuns([runOf(D, 0, [tamperSignature(signedRecord(D, 0))])])), 'UPDATE_BAD_SIGNATURE')
  })

  it('an entry naming sled A signed by another key → UPDATE_BAD_SIGNATURE', () => {
    const { doc } = setup()
    rejected(guard(doc, encodeRuns([runOf(A, 9, [forgedRecord(A.sled, 9)])])), 'UPDATE_BAD_SIGNATURE')
    rejected(guard(doc, encodeRuns([runOf(A, 9, [forgedRecord(A.sled, 9, undefined, B)])])), 'UPDATE_BAD_SIGNATURE')
    rejected(guard(new Y.Doc(), encodeRuns([runOf(A, 0, [forgedRecord(A.sled, 0)])])), 'UPDATE_BAD_SIGNATURE')
  })

  it('an entry signed by sled A in the client of sled B → UPDATE_BAD_BINDING', () => {
    const { doc } = setup()
    // B's client, after B's own entries, holding A's validly signed entry with the right seq
    rejected(guard(doc, encodeRuns([runOf(B, 9, [signedRecord(A, 9)])])), 'UPDATE_BAD_BINDING')
    // a new sled's client, rooted in its own log, holding A's entry
    rejected(guard(doc, encodeRuns([runOf(D, 0, [signedRecord(A, 0)])])), 'UPDATE_BAD_BINDING')
    // A's entry in B's client at a held position (not evidence: it is not B's)
    rejected(guard(doc, encodeRuns([runOf(B, 3, [signedRecord(A, 3)])])), 'UPDATE_BAD_BINDING')
  })

  it('seq != clock → UPDATE_BAD_BINDING', () => {
    const { doc } = setup()
    rejected(guard(doc, encodeRuns([runOf(A, 9, [signedRecord(A, 10)])])), 'UPDATE_BAD_BINDING')
    rejected(guard(doc, encodeRuns([runOf(A, 9, [signedRecord(A, 9), signedRecord(A, 9)])])), 'UPDATE_BAD_BINDING')
    rejected(guard(doc, encodeRuns([runOf(A, 9, [signedRecord(A, 0)])])), 'UPDATE_BAD_BINDING')
    rejected(guard(new Y.Doc(), encodeRuns([runOf(A, 0, [signedRecord(A, 1)])])), 'UPDATE_BAD_BINDING')
    // at a held position: A's valid entry 5 placed at clock 4
    rejected(guard(doc, encodeRuns([runOf(A, 4, [signedRecord(A, 5)])])), 'UPDATE_BAD_BINDING')
  })

  it('a root item in the log of another sled → UPDATE_BAD_BINDING', () => {
    const wrongRoot: Run = {
      client: clientOf(A),
      clock: 0,
      rootName: rootNameOf(B.sled),
      records: signedRecords(A, 0, 2),
    }
    rejected(guard(new Y.Doc(), encodeRuns([wrongRoot])), 'UPDATE_BAD_BINDING')
    const { doc } = setup()
    rejected(guard(doc, encodeRuns([wrongRoot])), 'UPDATE_BAD_BINDING')
    // D's client (with D's valid records) rooted in A's log
    rejected(guard(doc, encodeRuns([{ ...signedRun(D, 0, 1), rootName: rootNameOf(A.sled) }])), 'UPDATE_BAD_BINDING')
  })

  it('a root that is not a sled log → UPDATE_NOT_APPEND', () => {
    const doc = new Y.Doc()
    for (const rootName of [
      'log',
      'log:',
      'other',
      `log:${A.sled.toUpperCase()}`,
      `log:${A.sled}x`,
      `LOG:${A.sled}`,
      A.sled,
    ]) {
      rejected(guard(doc, encodeRuns([{ ...signedRun(A, 0, 1), rootName }])), 'UPDATE_NOT_APPEND')
    }
  })

  it('records that are not signed entries → ENTRY_INVALID', () => {
    const { doc } = setup()
    for (const junk of [
      'hello',
      '',
      'x'.repeat(86) + '.{}',
      signedRecord(A, 9).slice(0, 86) + '.',
      signedRecord(A, 9).replace('.', ':'),
    ]) {
      rejected(guard(doc, encodeRuns([runOf(A, 9, [junk])])), 'ENTRY_INVALID')
    }
    // A valid signature over a non-canonical text: parsing, not the signature, refuses it.
    const json = `{"sled":"${A.sled}", "seq":9,"ts":1,"kind":"event","type":"t","payload":null}`
    rejected(guard(doc, encodeRuns([runOf(A, 9, [signJsonText(A, json)])])), 'ENTRY_INVALID')
    // A non-canonical base64url signature (last char with low bits set).
    const rec = signedRecord(A, 9)
    const last = rec[85] as string
    const twisted = rec.slice(0, 85) + String.fromCharCode(last.charCodeAt(0) + 1) + rec.slice(86)
    rejected(guard(doc, encodeRuns([runOf(A, 9, [twisted])])), 'ENTRY_INVALID')
  })
})

describe('guardUpdate refuses anything but appends', () => {
  const ca = clientIdOf(A.sled)
  const cb = clientIdOf(B.sled)

  it('an origin at another client → UPDATE_NOT_APPEND', () => {
    const { doc } = setup()
    const u = craft([
      { client: ca, structs: [{ clock: 9, origin: { client: cb, clock: 8 }, records: signedRecords(A, 9, 1) }] },
    ])
    rejected(guard(doc, u), 'UPDATE_NOT_APPEND')
    // a new client appending after another sled's item
    const u2 = craft([
      {
        client: clientOf(D),
        structs: [{ clock: 0, origin: { client: ca, clock: 8 }, records: signedRecords(D, 0, 1) }],
      },
    ])
    rejected(guard(doc, u2), 'UPDATE_NOT_APPEND')
  })

  it.each([
    ['clock - 2', 7],
    ['its own clock', 9],
    ['a later clock', 10],
    ['clock 0', 0],
  ])('an origin at %s of its own client → UPDATE_NOT_APPEND', (_name, originClock) => {
    const { doc } = setup()
    const u = craft([
      {
        client: ca,
        structs: [{ clock: 9, origin: { client: ca, clock: originClock }, records: signedRecords(A, 9, 1) }],
      },
    ])
    rejected(guard(doc, u), 'UPDATE_NOT_APPEND')
  })

  it('a second struct of a client that does not chain onto the first → UPDATE_NOT_APPEND', () => {
    const { doc } = setup()
    const recs = signedRecords(A, 9, 2)
    const u = craft([
      {
        client: ca,
        structs: [
          { clock: 9, origin: { client: ca, clock: 8 }, records: recs.slice(0, 1) },
          { clock: 10, origin: { client: cb, clock: 8 }, records: recs.slice(1) },
        ],
      },
    ])
    rejected(guard(doc, u), 'UPDATE_NOT_APPEND')
  })

  it('a root item at a clock other than 0 → UPDATE_NOT_APPEND', () => {
    const { doc } = setup()
    rejected(
      guard(
        doc,
        craft([{ client: ca, structs: [{ clock: 9, root: rootNameOf(A.sled), records: signedRecords(A, 9, 1) }] }]),
      ),
      'UPDATE_NOT_APPEND',
    )
    rejected(
      guard(
        new Y.Doc(),
        craft([{ client: ca, structs: [{ clock: 3, root: rootNameOf(A.sled), records: signedRecords(A, 3, 1) }] }]),
      ),
      'UPDATE_NOT_APPEND',
    )
  })

  it('non-string content, map keys and other Yjs content (real Yjs updates) → UPDATE_NOT_APPEND', () => {
    const { doc } = setup()
    const ops: Array<(d: Y.Doc) => void> = [
      (d) => d.getArray(rootNameOf(A.sled)).push([{ sled: A.sled }]),
      (d) => d.getArray(rootNameOf(A.sled)).push([9]),
      (d) => d.getMap(rootNameOf(A.sled)).set('9', signedRecord(A, 9)),
      (d) => d.getText('t').insert(0, signedRecord(A, 9)),
      (d) => d.getArray(rootNameOf(A.sled)).push([new Y.Array()]),
      (d) => d.getArray(rootNameOf(A.sled)).push([new Uint8Array([1])]),
      (d) => d.getArray(rootNameOf(A.sled)).insert(0, [signedRecord(A, 9)]),
      (d) => d.getArray(rootNameOf(A.sled)).insert(4, [signedRecord(A, 9)]),
    ]
    for (const op of ops) {
      const copy = cloneDoc(doc)
      copy.clientID = ca
      const sv = Y.encodeStateVector(copy)
      op(copy)
      rejected(guard(doc, Y.encodeStateAsUpdate(copy, sv)), 'UPDATE_NOT_APPEND')
      rejected(guard(doc, Y.encodeStateAsUpdate(copy)), 'UPDATE_NOT_APPEND')
    }
  })

  it('a valid record pushed by a foreign client id → refused', () => {
    const { doc } = setup()
    const copy = cloneDoc(doc)
    copy.clientID = 4242
    copy.getArray<string>(rootNameOf(A.sled)).push([signedRecord(A, 9)])
    // appended after A's last item: its origin is another client's item
    rejected(guard(doc, Y.encodeStateAsUpdate(copy, Y.encodeStateVector(doc))), 'UPDATE_NOT_APPEND')
    const fresh = new Y.Doc()
    fresh.clientID = 4242
    fresh.getArray<string>(rootNameOf(A.sled)).push([signedRecord(A, 0)])
    // into an empty log: rooted, but client 4242 is not A's client
    rejected(guard(new Y.Doc(), Y.encodeStateAsUpdate(fresh)), 'UPDATE_BAD_BINDING')
  })

  it('deletions → UPDATE_DELETION, even alongside valid appends', () => {
    const { doc } = setup()
    const copy = cloneDoc(doc)
    const updates: Uint8Array[] = []
    copy.on('update', (u: Uint8Array) => updates.push(u))
    copy.getArray(rootNameOf(B.sled)).delete(2, 3)
    expect(updates).toHaveLength(1)
    rejected(guard(doc, updates[0] as Uint8Array), 'UPDATE_DELETION')
    const u = encodeRuns([signedRun(A, 9, 1)])
    rejected(guard(doc, withDs(u, [1, ...varuint(clientIdOf(B.sled)), 1, 2, 3])), 'UPDATE_DELETION')
    rejected(guard(doc, withDs(u, [1, ...varuint(999), 1, 0, 1])), 'UPDATE_DELETION')
    // The full state of a doc that deleted: the deleted struct is refused first.
    const r = guard(doc, Y.encodeStateAsUpdate(copy))
    expect(r.ok).toBe(false)
  })

  it('starting past the head → UPDATE_GAP with the offered range and the proven sled', () => {
    const { doc } = setup()
    const r = rejected(guard(doc, encodeRuns([signedRun(A, 12, 3)])), 'UPDATE_GAP')
    expect(r.gap).toEqual({ client: clientOf(A), sled: A.sled, from: 12, to: 14 })
    const r2 = rejected(guard(doc, encodeRuns([signedRun(D, 3, 2)])), 'UPDATE_GAP')
    expect(r2.gap).toEqual({ client: clientOf(D), sled: D.sled, from: 3, to: 4 })
    // An unproven gap is not a gap: it is rejected as what it is (a violation), so a peer cannot
    // send forgeries past the head forever without being cut off.
    const r3 = rejected(
      guard(doc, encodeRuns([runOf(A, 12, [signedRecord(A, 12), forgedRecord(A.sled, 13)])])),
      'UPDATE_BAD_SIGNATURE',
    )
    expect(r3.gap).toBeUndefined()
    rejected(guard(doc, encodeRuns([runOf(A, 12, [signedRecord(B, 12)])])), 'UPDATE_BAD_BINDING')
    rejected(guard(doc, encodeRuns([runOf(A, 12, [signedRecord(A, 13)])])), 'UPDATE_BAD_BINDING')
  })

  it('oversize update → UPDATE_TOO_LARGE; the limit is inclusive', () => {
    const { doc } = setup()
    const u = encodeRuns([signedRun(A, 9, 3)])
    rejected(guard(doc, u, guardOpts('full', { maxUpdateBytes: u.length - 1 })), 'UPDATE_TOO_LARGE')
    accepted(guard(doc, u, guardOpts('full', { maxUpdateBytes: u.length })))
    // checked before anything else: garbage too large is TOO_LARGE, not MALFORMED
    rejected(guard(doc, new Uint8Array(101).fill(0xff), guardOpts('full', { maxUpdateBytes: 100 })), 'UPDATE_TOO_LARGE')
  })

  it('oversize record → ENTRY_TOO_LARGE', () => {
    const { doc } = setup()
    const big = signedRecord(A, 9, { kind: 'event', type: 't', payload: 'x'.repeat(2000) })
    rejected(
      guard(doc, encodeRuns([runOf(A, 9, [big])]), guardOpts('full', { maxRecordBytes: 1024 })),
      'ENTRY_TOO_LARGE',
    )
    accepted(guard(doc, encodeRuns([runOf(A, 9, [big])]), guardOpts('full', { maxRecordBytes: 4096 })))
  })

  it('malformed bytes → UPDATE_MALFORMED', () => {
    const { doc } = setup()
    for (const u of [
      new Uint8Array(),
      new Uint8Array([0]),
      new Uint8Array([0, 0, 0]),
      new Uint8Array([1, 1]),
      new Uint8Array(64).fill(0xff),
    ]) {
      rejected(guard(doc, u), 'UPDATE_MALFORMED')
    }
  })
})

describe('guardUpdate and conflicting records at held positions', () => {
  const alt = (seq: number) =>
    signedRecord(A, seq, { kind: 'event', type: 'test', payload: { n: seq, text: 'the other version' } })

  it('two validly signed records for one (sled, seq): accepted as an equivocation, held record unchanged', () => {
    const { doc, view } = setup()
    const held = view.recordAt(clientOf(A), 4) as string
    const other = alt(4)
    const r = accepted(guard(doc, encodeRuns([runOf(A, 4, [other])])))
    expect(r.runs).toEqual([])
    expect(r.equivocations).toEqual([{ sled: A.sled, seq: 4, records: [held, other].sort() }])
    const [first, second] = r.equivocations[0]?.records ?? []
    expect((first as string) < (second as string)).toBe(true)
    for (const rec of [first, second])
      expect(openRecord(rec as string, testVerifier).entry).toMatchObject({ sled: A.sled, seq: 4 })
    applyRuns(doc, r.runs)
    expect(view.recordAt(clientOf(A), 4)).toBe(held)
  })

  it('equivocation, duplicates and fresh records in one update', () => {
    const { doc, view } = setup()
    const held4 = view.recordAt(clientOf(A), 4)
    const update = encodeRuns([runOf(A, 4, [alt(4), ...signedRecords(A, 5, 4), ...signedRecords(A, 9, 1)])])
    const r = accepted(guard(doc, update))
    expect(r.duplicates).toBe(4)
    expect(r.equivocations.map((e) => e.seq)).toEqual([4])
    expect(r.runs).toEqual([signedRun(A, 9, 1)])
    applyRuns(doc, r.runs)
    expect(view.recordAt(clientOf(A), 4)).toBe(held4)
    expect(view.length(clientOf(A))).toBe(10)
  })

  it('an equivocation at clock 0 (root struct) is found too', () => {
    const { doc } = setup()
    const r = accepted(guard(doc, encodeRuns([runOf(A, 0, [alt(0)])])))
    expect(r.equivocations.map((e) => [e.sled, e.seq])).toEqual([[A.sled, 0]])
  })

  it('an invalid record at a held position is rejected, not taken as evidence', () => {
    const { doc } = setup()
    rejected(guard(doc, encodeRuns([runOf(A, 4, [tamperSignature(alt(4))])])), 'UPDATE_BAD_SIGNATURE')
    rejected(guard(doc, encodeRuns([runOf(A, 4, [forgedRecord(A.sled, 4)])])), 'UPDATE_BAD_SIGNATURE')
    rejected(guard(doc, encodeRuns([runOf(A, 4, ['garbage'])])), 'ENTRY_INVALID')
    rejected(guard(doc, encodeRuns([runOf(A, 4, [alt(5)])])), 'UPDATE_BAD_BINDING')
    // the held record itself with one bad neighbour: the whole update goes
    rejected(
      guard(doc, encodeRuns([runOf(A, 3, [...signedRecords(A, 3, 1), tamperSignature(alt(4))])])),
      'UPDATE_BAD_SIGNATURE',
    )
  })
})

describe('guardUpdate is all or nothing', () => {
  it.each([
    ['forged client after the valid one', [signedRun(A, 9, 2), runOf(B, 9, [forgedRecord(B.sled, 9)])]],
    ['forged client before the valid one', [runOf(A, 9, [forgedRecord(A.sled, 9)]), signedRun(B, 9, 2)]],
    ['valid new sled plus a gap', [signedRun(D, 0, 2), signedRun(C, 11, 1)]],
    ['valid plus a wrong binding', [signedRun(C, 9, 1), runOf(A, 9, [signedRecord(B, 9)])]],
  ] as Array<[string, Run[]]>)('a mixed update (%s) is rejected whole and the view is unchanged', (_name, runs) => {
    const { doc, view } = setup()
    const lengths = [A, B, C, D].map((k) => view.length(clientOf(k)))
    const r = guard(doc, encodeRuns(runs))
    expect(r.ok).toBe(false)
    expect([A, B, C, D].map((k) => view.length(clientOf(k)))).toEqual(lengths)
    // while the valid part alone would have been accepted
    expect(runs.map((run) => guardUpdate(encodeRuns([run]), view, guardOpts()).ok)).toContain(true)
  })
})

describe("level 'trusted'", () => {
  const trusted = guardOpts('trusted')

  it('skips signatures and parsing of new records', () => {
    const { doc } = setup()
    const r = accepted(guard(doc, encodeRuns([runOf(A, 9, [forgedRecord(A.sled, 9), 'not even a record'])]), trusted))
    expect(r.runs).toEqual([runOf(A, 9, [forgedRecord(A.sled, 9), 'not even a record'])])
    expect(r.entries).toEqual([])
    expect(accepted(guard(new Y.Doc(), encodeRuns([runOf(D, 0, ['x'])]), trusted)).runs[0]?.rootName).toBe(
      rootNameOf(D.sled),
    )
  })

  it('still enforces structure: appends only, bindings of roots, gaps, deletions, sizes', () => {
    const { doc } = setup()
    const ca = clientOf(A)
    rejected(
      guard(
        doc,
        craft([{ client: ca, structs: [{ clock: 9, origin: { client: clientOf(B), clock: 8 }, records: ['x'] }] }]),
        trusted,
      ),
      'UPDATE_NOT_APPEND',
    )
    rejected(
      guard(
        doc,
        craft([{ client: ca, structs: [{ clock: 9, origin: { client: ca, clock: 7 }, records: ['x'] }] }]),
        trusted,
      ),
      'UPDATE_NOT_APPEND',
    )
    rejected(
      guard(doc, craft([{ client: ca, structs: [{ clock: 9, root: rootNameOf(A.sled), records: ['x'] }] }]), trusted),
      'UPDATE_NOT_APPEND',
    )
    rejected(
      guard(new Y.Doc(), encodeRuns([{ client: ca, clock: 0, rootName: rootNameOf(B.sled), records: ['x'] }]), trusted),
      'UPDATE_BAD_BINDING',
    )
    rejected(
      guard(new Y.Doc(), encodeRuns([{ client: ca, clock: 0, rootName: 'elsewhere', records: ['x'] }]), trusted),
      'UPDATE_NOT_APPEND',
    )
    rejected(guard(doc, encodeRuns([runOf(A, 10, ['x'])]), trusted), 'ENTRY_INVALID') // an unproven gap
    rejected(guard(doc, encodeRuns([signedRun(A, 10, 2)]), trusted), 'UPDATE_GAP')
    rejected(guard(doc, withDs(encodeRuns([runOf(A, 9, ['x'])]), [1, 1, 1, 0, 1]), trusted), 'UPDATE_DELETION')
    rejected(
      guard(
        doc,
        craft([{ client: ca, structs: [{ clock: 9, origin: { client: ca, clock: 8 }, records: [9] }] }]),
        trusted,
      ),
      'UPDATE_NOT_APPEND',
    )
    rejected(
      guard(doc, encodeRuns([runOf(A, 9, ['x'.repeat(200)])]), guardOpts('trusted', { maxRecordBytes: 100 })),
      'ENTRY_TOO_LARGE',
    )
    rejected(
      guard(doc, encodeRuns([runOf(A, 9, ['x'])]), guardOpts('trusted', { maxUpdateBytes: 10 })),
      'UPDATE_TOO_LARGE',
    )
  })

  it('still verifies records that conflict with held ones', () => {
    const { doc } = setup()
    rejected(guard(doc, encodeRuns([runOf(A, 4, [forgedRecord(A.sled, 4)])]), trusted), 'UPDATE_BAD_SIGNATURE')
    const other = signedRecord(A, 4, { kind: 'gap', from: 1, to: 2 })
    expect(accepted(guard(doc, encodeRuns([runOf(A, 4, [other])]), trusted)).equivocations).toHaveLength(1)
    expect(accepted(guard(doc, Y.encodeStateAsUpdate(doc), trusted)).duplicates).toBe(27)
  })
})

describe('assertAccepted', () => {
  it('returns an acceptance and throws a rejection as a SledlogError with the gap details', () => {
    const { doc } = setup()
    const ok = guardUpdate(encodeRuns([signedRun(A, 9, 1)]), docView(doc), guardOpts())
    expect(assertAccepted(ok, 'test')).toBe(ok)
    const gap = guardUpdate(encodeRuns([signedRun(A, 11, 1)]), docView(doc), guardOpts())
    try {
      assertAccepted(gap, 'ctx')
      expect.unreachable()
    } catch (err) {
      expect(isSledlogError(err, 'UPDATE_GAP')).toBe(true)
      expect((err as Error).message).toMatch(/^ctx: /)
      expect(isSledlogError(err) && err.details).toEqual({ client: clientOf(A), sled: A.sled, from: 11, to: 11 })
    }
  })
})

describe('hostile fixtures (test/fixtures/yjs-hostile)', () => {
  const fixtures = hostileFixtures()

  it('holds the four known cases', () => {
    expect(fixtures.map((f) => f.name)).toEqual(
      expect.arrayContaining(['case-v1-171.b64', 'case-v1-47.b64', 'case-v1-4746.b64', 'case-v2-188.b64']),
    )
  })

  it.each(fixtures.map((f) => [f.name, f] as const))(
    '%s is rejected and leaves a doc of 27 entries from 3 sleds unchanged',
    (_name, f) => {
      const { doc, view } = setup()
      expect([A, B, C].map((k) => view.length(clientOf(k)))).toEqual([9, 9, 9])
      const before = Y.encodeStateAsUpdate(doc)
      for (const level of ['full', 'trusted'] as const) {
        const r = guardUpdate(f.bytes, view, guardOpts(level))
        expect(r.ok, `${f.name} at level ${level}`).toBe(false)
        if (!r.ok) expect(r.code).toMatch(/^(UPDATE_|ENTRY_)/)
      }
      expect(Buffer.from(Y.encodeStateAsUpdate(doc)).equals(before)).toBe(true)
      // and against an empty log
      expect(guardUpdate(f.bytes, docView(new Y.Doc()), guardOpts()).ok).toBe(false)
    },
  )
})

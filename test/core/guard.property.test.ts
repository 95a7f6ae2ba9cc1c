/**
 * A randomized hostile peer: updates built by mutating valid bytes, or by real Yjs operations
 * on a copy of the doc (deletes, inserts in the middle, map sets, pushes under foreign or wrong
 * client ids, unsigned or misbound content). Whatever the verdict, the log's invariants hold.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ERROR_CODES } from '../../src/errors.js'
import { guardUpdate, type GuardResult } from '../../src/core/guard.js'
import { clientIdOf, rootNameOf, sledOfRootName, type SledId } from '../../src/core/ids.js'
import { openRecord, type KeyPair } from '../../src/core/signing.js'
import { encodeRuns, type Run } from '../../src/core/update-codec.js'
import { docView } from '../../src/log/doc-view.js'
import { applyRuns, docFromRuns, guardOpts, testVerifier } from '../helpers/hostile.js'
import { forgedRecord, runOf, signedRecord, signedRecords, signedRun, testKeys } from '../helpers/keys.js'
import { testSeed } from '../helpers/seed.js'

const KEYS: readonly KeyPair[] = [testKeys(1), testKeys(2), testKeys(3), testKeys(4)] // the 4th holds nothing yet
const key = (i: number): KeyPair => KEYS[i % KEYS.length] as KeyPair
const BASE_LENGTHS = [6, 4, 5, 0]
const baseRuns: Run[] = KEYS.slice(0, 3).map((k, i) => signedRun(k, 0, BASE_LENGTHS[i] as number))
const baseDoc = docFromRuns(baseRuns)
const baseView = docView(baseDoc)
const baseState = Y.encodeStateAsUpdate(baseDoc)
const baseHex = Buffer.from(baseState).toString('hex')
const baseSv = Y.encodeStateVector(baseDoc)
const opts = guardOpts('full')

/** Valid updates to mutate: full state, continuations, a new sled, an overlap, a Yjs diff. */
const validPool: Uint8Array[] = (() => {
  const k0 = key(0)
  const k1 = key(1)
  const yjsDiff = (() => {
    const d = new Y.Doc({ gc: false })
    Y.applyUpdate(d, baseState)
    d.clientID = clientIdOf(key(2).sled)
    d.getArray<string>(rootNameOf(key(2).sled)).push(signedRecords(key(2), 5, 2))
    return Y.encodeStateAsUpdate(d, baseSv)
  })()
  return [
    baseState,
    encodeRuns([signedRun(k0, 6, 2)]),
    encodeRuns([signedRun(key(3), 0, 2)]),
    encodeRuns([runOf(k1, 2, [...signedRecords(k1, 2, 2), ...signedRecords(k1, 4, 1)]), signedRun(k0, 6, 1)]),
    yjsDiff,
  ]
})()

// ---- the hostile operations ----

type Who = 'own' | 'foreign' | 'other-sled'
type Content = 'valid-next' | 'wrong-seq' | 'other-sled' | 'forged' | 'unsigned' | 'number' | 'object' | 'binary'
type YOp =
  | { op: 'delete'; sled: number; index: number; len: number }
  | { op: 'insert'; sled: number; index: number; who: Who; foreign: number; content: Content }
  | { op: 'push'; sled: number; who: Who; foreign: number; content: Content; count: number }
  | { op: 'map'; sled: number; onLogRoot: boolean; key: string }
  | { op: 'text'; sled: number }
  | { op: 'nested'; sled: number }
type Mutation = { kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate'; at: number; byte: number }
type Attack =
  | { t: 'bytes'; src: number; muts: Mutation[] }
  | { t: 'yjs'; ops: YOp[]; form: 'diff' | 'full' | 'events'; gc: boolean; muts: Mutation[] }
  /** A forked replica of one sled (its own key re-signing from `from` on): equivocation. */
  /** `skip`: a diff that leaves out the first new entry (a peer answering a wrong state vector). */
  | { t: 'fork'; sled: number; from: number; extra: number; form: 'diff' | 'full' | 'skip' }

const sledIdx = fc.integer({ min: 0, max: 3 })
const who = fc.constantFrom<Who>('own', 'own', 'foreign', 'other-sled')
const content = fc.constantFrom<Content>(
  'valid-next',
  'valid-next',
  'wrong-seq',
  'other-sled',
  'forged',
  'unsigned',
  'number',
  'object',
  'binary',
)
const foreign = fc.integer({ min: 1, max: 2 ** 31 })
const yop: fc.Arbitrary<YOp> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      sled: sledIdx,
      index: fc.nat(8),
      len: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      sled: sledIdx,
      index: fc.nat(8),
      who,
      foreign,
      content,
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('push' as const),
      sled: sledIdx,
      who,
      foreign,
      content,
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('map' as const),
      sled: sledIdx,
      onLogRoot: fc.boolean(),
      key: fc.string({ maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('text' as const), sled: sledIdx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('nested' as const), sled: sledIdx }) },
)
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip' as const, 'set' as const, 'insert' as const, 'delete' as const, 'truncate' as const),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
})
const validPush: fc.Arbitrary<YOp> = fc.record({
  op: fc.constant('push' as const),
  sled: sledIdx,
  who: fc.constant('own' as const),
  foreign,
  content: fc.constant('valid-next' as const),
  count: fc.integer({ min: 1, max: 3 }),
})
const form = fc.constantFrom('diff' as const, 'full' as const, 'events' as const)
const attack: fc.Arbitrary<Attack> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('bytes' as const),
      src: fc.nat(validPool.length - 1),
      muts: fc.array(mutation, { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('yjs' as const),
      ops: fc.array(yop, { minLength: 1, maxLength: 3 }),
      form,
      gc: fc.boolean(),
      // mostly unmutated, sometimes a byte-level twist on top of the Yjs update
      muts: fc.oneof(
        { weight: 4, arbitrary: fc.constant<Mutation[]>([]) },
        { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 2 }) },
      ),
    }),
  },
  {
    // valid appends, sometimes followed by one hostile operation
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('yjs' as const),
      ops: fc
        .tuple(fc.array(validPush, { minLength: 1, maxLength: 3 }), fc.option(yop, { freq: 3 }))
        .map(([v, h]) => (h === null ? v : [...v, h])),
      form,
      gc: fc.boolean(),
      muts: fc.constant<Mutation[]>([]),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('fork' as const),
      sled: fc.integer({ min: 0, max: 2 }),
      from: fc.nat(6),
      extra: fc.nat(3),
      form: fc.constantFrom('diff' as const, 'full' as const, 'skip' as const),
    }),
  },
)

function mutate(u: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  const b = [...u]
  for (const m of muts) {
    const i = m.at % (b.length + 1)
    if (m.kind === 'insert') b.splice(i, 0, m.byte)
    else if (m.kind === 'truncate') b.length = Math.min(b.length, i)
    else if (b.length === 0) continue
    else if (m.kind === 'delete') b.splice(i % b.length, 1)
    else if (m.kind === 'set') b[i % b.length] = m.byte
    else b[i % b.length] = (b[i % b.length] as number) ^ (m.byte || 0x80)
  }
  return new Uint8Array(b)
}

/** What a push or insert carries for sled `k` whose array currently holds `len` items. */
function contentFor(c: Content, k: KeyPair, len: number, i: number): unknown {
  switch (c) {
    case 'valid-next':
      return signedRecord(k, len + i)
    case 'wrong-seq':
      return signedRecord(k, len + i + 1)
    case 'other-sled':
      return signedRecord(key(KEYS.indexOf(k) + 1), len + i)
    case 'forged':
      return forgedRecord(k.sled, len + i)
    case 'unsigned':
      return `{"sled":"${k.sled}","seq":${len + i}}`
    case 'number':
      return len + i
    case 'object':
      return { sled: k.sled, seq: len + i }
    case 'binary':
      return new Uint8Array([len, i])
  }
}

/** True when the attack is nothing but valid appends by the sleds' own clients. */
function onlyValidAppends(a: Attack): boolean {
  if (a.t === 'fork') return true
  return (
    a.t === 'yjs' &&
    a.muts.length === 0 &&
    a.ops.every((o) => o.op === 'push' && o.who === 'own' && o.content === 'valid-next')
  )
}

/** Builds the update of an attack. Yjs refusing an operation (e.g. out of range) just skips it. */
function build(a: Attack): Uint8Array | undefined {
  if (a.t === 'bytes') return mutate(validPool[a.src] as Uint8Array, a.muts)
  if (a.t === 'fork') {
    // A replica where the sled wrote other (validly signed) entries from `from` on.
    const k = key(a.sled)
    const held = (baseRuns[a.sled] as Run).records
    const from = Math.min(a.from, held.length)
    const forkBody = (seq: number) => ({ kind: 'event', type: 'fork', payload: { seq } }) as const
    const records = [...held.slice(0, from), ...signedRecords(k, from, held.length - from + a.extra, forkBody)]
    if (records.length === 0) return undefined
    const doc = new Y.Doc({ gc: false })
    doc.clientID = clientIdOf(k.sled)
    for (const r of records) doc.getArray<string>(rootNameOf(k.sled)).push([r])
    if (a.form === 'full') return Y.encodeStateAsUpdate(doc)
    if (a.form === 'diff') return Y.encodeStateAsUpdate(doc, baseSv)
    const sv = Y.decodeStateVector(baseSv)
    sv.set(clientIdOf(k.sled), held.length + 1)
    return Y.encodeStateAsUpdate(doc, Y.encodeStateVector(sv))
  }
  const doc = new Y.Doc({ gc: a.gc })
  Y.applyUpdate(doc, baseState)
  const events: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => events.push(u))
  for (const o of a.ops) {
    const k = key(o.sled)
    const root = rootNameOf(k.sled)
    const clientFor = (w: Who, f: number): number =>
      w === 'own' ? clientIdOf(k.sled) : w === 'foreign' ? f : clientIdOf(key(o.sled + 1).sled)
    try {
      switch (o.op) {
        case 'delete': {
          const arr = doc.getArray(root)
          if (arr.length === 0) break
          const index = o.index % arr.length
          arr.delete(index, Math.min(o.len, arr.length - index))
          break
        }
        case 'insert': {
          doc.clientID = clientFor(o.who, o.foreign)
          const arr = doc.getArray(root)
          arr.insert(o.index % (arr.length + 1), [contentFor(o.content, k, arr.length, 0)])
          break
        }
        case 'push': {
          doc.clientID = clientFor(o.who, o.foreign)
          const arr = doc.getArray(root)
          const len = arr.length
          arr.push(Array.from({ length: o.count }, (_, i) => contentFor(o.content, k, len, i)))
          break
        }
        case 'map':
          doc.clientID = clientIdOf(k.sled)
          doc.getMap(o.onLogRoot ? root : 'm').set(o.key, signedRecord(k, 0))
          break
        case 'text':
          doc.clientID = clientIdOf(k.sled)
          doc.getText('t').insert(0, signedRecord(k, 0))
          break
        case 'nested':
          doc.clientID = clientIdOf(k.sled)
          doc.getArray(root).push([new Y.Array()])
          break
      }
    } catch {
      // Yjs refused the operation: the attack just lacks it
    }
  }
  let u: Uint8Array | undefined
  if (a.form === 'full') u = Y.encodeStateAsUpdate(doc)
  else if (a.form === 'diff') u = Y.encodeStateAsUpdate(doc, baseSv)
  else u = events.length === 0 ? undefined : Y.mergeUpdates(events)
  return u === undefined ? undefined : mutate(u, a.muts)
}

/** Every invariant of a sledlog doc, and that it still extends the base doc. */
function checkInvariants(doc: Y.Doc): void {
  const view = docView(doc)
  expect(doc.store.pendingStructs).toBeNull()
  expect(doc.store.pendingDs).toBeNull()
  // grow-only: no deletions at all
  expect(Y.createDeleteSetFromStructStore(doc.store).clients.size).toBe(0)
  const clients = new Set<number>()
  for (const name of doc.share.keys()) {
    const sled = sledOfRootName(name) as SledId
    expect(sled, `root ${name}`).toBeDefined()
    const client = clientIdOf(sled)
    clients.add(client)
    const records = doc.getArray<string>(name).toArray()
    expect(records.length).toBe(view.length(client))
    records.forEach((r, k) => {
      const { entry } = openRecord(r, testVerifier)
      expect([entry.sled, entry.seq]).toEqual([sled, k])
      expect(view.recordAt(client, k)).toBe(r)
    })
  }
  expect(new Set(doc.store.clients.keys())).toEqual(clients)
  // nothing held before changed, and no log got shorter
  for (const run of baseRuns) {
    const records = doc.getArray<string>(run.rootName).toArray()
    expect(records.length).toBeGreaterThanOrEqual(run.records.length)
    expect(records.slice(0, run.records.length)).toEqual(run.records)
  }
  // the whole state still passes the strict codec and the full guard into an empty log
  const again = guardUpdate(Y.encodeStateAsUpdate(doc), docView(new Y.Doc()), opts)
  expect(again.ok, again.ok ? '' : again.message).toBe(true)
}

const KNOWN = new Set(Object.keys(ERROR_CODES))

describe('hostile peer', () => {
  const seed = testSeed('hostile peer', 20261103)
  it(`random hostile updates are rejected without effect or keep every log invariant (fast-check seed ${seed})`, () => {
    const stats = { accepted: 0, added: 0, equivocations: 0, skipped: 0, rejected: {} as Record<string, number> }
    fc.assert(
      fc.property(attack, (a) => {
        const u = build(a)
        if (u === undefined) {
          stats.skipped++
          return
        }
        let r: GuardResult
        try {
          r = guardUpdate(u, baseView, opts)
        } catch (err) {
          throw new Error(`guardUpdate threw: ${String(err)}`, { cause: err })
        }
        // the guard is pure: the base doc never changes
        expect(Buffer.from(Y.encodeStateAsUpdate(baseDoc)).toString('hex')).toBe(baseHex)
        const skipsAhead = a.t === 'fork' && a.form === 'skip' && a.extra >= 2
        if (skipsAhead) {
          const held = (baseRuns[a.sled] as Run).records.length
          expect(r).toMatchObject({
            ok: false,
            code: 'UPDATE_GAP',
            gap: { sled: key(a.sled).sled, from: held + 1, to: held + a.extra - 1 },
          })
        }
        if (!r.ok) {
          expect(KNOWN.has(r.code)).toBe(true)
          expect(r.message).not.toMatch(/unexpected guard failure/)
          expect(onlyValidAppends(a) && !skipsAhead, `valid appends rejected: ${r.code} ${r.message}`).toBe(false)
          stats.rejected[r.code] = (stats.rejected[r.code] ?? 0) + 1
          return
        }
        stats.accepted++
        const doc = new Y.Doc({ gc: false })
        Y.applyUpdate(doc, baseState)
        applyRuns(doc, r.runs)
        checkInvariants(doc)
        for (const run of r.runs) {
          stats.added += run.records.length
          expect(run.clock).toBe(baseView.length(run.client))
        }
        for (const e of r.equivocations) {
          stats.equivocations++
          expect(e.records[0] < e.records[1]).toBe(true)
          for (const rec of e.records)
            expect(openRecord(rec, testVerifier).entry).toMatchObject({ sled: e.sled, seq: e.seq })
        }
        if (a.t === 'fork') {
          const held = (baseRuns[a.sled] as Run).records.length
          expect(r.equivocations.length).toBe(a.form === 'full' ? held - Math.min(a.from, held) : 0)
          expect(r.runs.reduce((n, x) => n + x.records.length, 0)).toBe(a.form === 'skip' ? 0 : a.extra)
        } else if (onlyValidAppends(a)) {
          expect(r.runs.length).toBeGreaterThan(0)
        }
      }),
      { seed, numRuns: Number(process.env.SLEDLOG_FUZZ_RUNS ?? 1200) },
    )
    console.log(`[hostile peer] ${JSON.stringify(stats)}`)
    // not vacuous: both verdicts and most rejection kinds were exercised
    expect(stats.accepted).toBeGreaterThan(50)
    expect(stats.added).toBeGreaterThan(50)
    expect(stats.equivocations).toBeGreaterThan(10)
    for (const code of [
      'UPDATE_GAP',
      'UPDATE_MALFORMED',
      'UPDATE_NOT_APPEND',
      'UPDATE_DELETION',
      'UPDATE_BAD_SIGNATURE',
      'UPDATE_BAD_BINDING',
      'ENTRY_INVALID',
    ]) {
      expect(stats.rejected[code] ?? 0, code).toBeGreaterThan(0)
    }
  })
})

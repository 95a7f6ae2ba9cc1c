/**
 * Succession and revocation records, pure (PROTOCOL.md §3.5, §3.6, §4.4, §6.5): their canonical
 * text, the statement signatures inside them and every refusal, the retirement rule (a minimum
 * over the records readers see, in any order), and admission of a signed successor by chain.
 */
import { describe, expect, it } from 'vitest'
import { encodeEntryJson, parseEntryJson, type Entry, type EntryBody } from '../../src/core/entry.js'
import type { SledId } from '../../src/core/ids.js'
import { endorsementMessage, revocationMessage } from '../../src/core/statements.js'
import {
  admitByChain,
  chainOf,
  emptyIndex,
  indexStatement,
  isStatementRecord,
  MAX_CHAIN,
  retirements,
  verifiedPredecessors,
  type StatementIndex,
} from '../../src/core/succession.js'
import { createVerifier, endorseSuccession, openRecord, signRevocation, type KeyPair } from '../../src/core/signing.js'
import { isSledlogError } from '../../src/errors.js'
import { entryOf, signEntry, signedRecord, signJsonText, TEST_TS, testKeys } from '../helpers/keys.js'
import { prng, testSeed } from '../helpers/seed.js'
import { revocationBody, revocationRecord, successionBody, successionRecord } from '../helpers/succession.js'

const A = testKeys(41) // predecessor
const B = testKeys(42) // successor
const C = testKeys(43) // successor of B
const ADMIN = testKeys(44)
const X = testKeys(45) // a carrier / stranger
const verifier = createVerifier()

/** The code openRecord gives, or 'ok'. */
function opened(record: string): string {
  try {
    openRecord(record, verifier)
    return 'ok'
  } catch (err) {
    if (isSledlogError(err)) return err.code
    throw err
  }
}

describe('succession and revocation entries: canonical text', () => {
  it('orders the fields sled, seq, ts, kind, predecessor, lastSeq, reason, endorsement', () => {
    const e = entryOf(B.sled, 0, successionBody(B.sled, A, 7))
    const json = encodeEntryJson(e)
    const hex = '[0-9a-f]{64}'
    const head = `^\\{"sled":"${hex}","seq":0,"ts":\\d+,"kind":"succession"`
    const tail = `,"predecessor":"${hex}","lastSeq":7,"reason":"rotation","endorsement":"[A-Za-z0-9_-]{86}"\\}$`
    expect(json).toMatch(new RegExp(head + tail))
    expect(parseEntryJson(json)).toEqual(e)
    const unendorsed = entryOf(B.sled, 0, successionBody(B.sled, A.sled, -1, 'recovery'))
    expect(encodeEntryJson(unendorsed)).toContain('"lastSeq":-1,"reason":"recovery","endorsement":null}')
    expect(parseEntryJson(encodeEntryJson(unendorsed))).toEqual(unendorsed)
  })

  it('orders a revocation sled, seq, ts, kind, target, fromSeq, authority, admin (admin only), signature', () => {
    const self = entryOf(X.sled, 3, revocationBody(A, A.sled, 5))
    expect(encodeEntryJson(self)).toMatch(/"target":"[0-9a-f]{64}","fromSeq":5,"authority":"self","signature":"/)
    const admin = entryOf(X.sled, 3, revocationBody(ADMIN, A.sled, 5))
    expect(encodeEntryJson(admin)).toMatch(/"fromSeq":5,"authority":"admin","admin":"[0-9a-f]{64}","signature":"/)
    for (const e of [self, admin]) expect(parseEntryJson(encodeEntryJson(e))).toEqual(e)
  })

  it('refuses malformed fields with ENTRY_INVALID', () => {
    const ok = encodeEntryJson(entryOf(B.sled, 0, successionBody(B.sled, A, 7)))
    const rev = encodeEntryJson(entryOf(X.sled, 1, revocationBody(A, A.sled, 5)))
    const admin = encodeEntryJson(entryOf(X.sled, 1, revocationBody(ADMIN, A.sled, 5)))
    const bad = [
      ok.replace('"lastSeq":7', '"lastSeq":-2'),
      ok.replace('"lastSeq":7', '"lastSeq":7.5'),
      ok.replace('"rotation"', '"Rotation"'),
      ok.replace(/"endorsement":"[^"]+"/, '"endorsement":"abc"'),
      ok.replace(/"endorsement":"[^"]+"/, ''),
      ok.replace(A.sled, A.sled.toUpperCase()),
      ok.replace('}', ',"extra":1}'),
      rev.replace('"authority":"self"', '"authority":"owner"'),
      rev.replace('"authority":"self"', `"authority":"self","admin":"${ADMIN.sled}"`),
      admin.replace(`,"admin":"${ADMIN.sled}"`, ''),
      rev.replace('"fromSeq":5', '"fromSeq":-1'),
      // Field order is part of the canonical form.
      rev.replace(/"fromSeq":5,"authority":"self"/, '"authority":"self","fromSeq":5'),
    ]
    for (const json of bad) {
      expect(() => parseEntryJson(json), json).toThrow(expect.objectContaining({ code: 'ENTRY_INVALID' }))
    }
  })
})

describe('statements: what openRecord refuses (PROTOCOL.md §4.3, §4.4)', () => {
  it('opens an endorsed and an unendorsed succession, and self and admin revocations', () => {
    expect(opened(successionRecord(B, A, 7))).toBe('ok')
    expect(opened(successionRecord(B, A.sled, 7, 'recovery'))).toBe('ok')
    expect(opened(revocationRecord(X, 0, A, A.sled, 3))).toBe('ok')
    expect(opened(revocationRecord(X, 0, ADMIN, A.sled, 3))).toBe('ok')
  })

  it('refuses a succession at a seq other than 0, or naming itself: SUCCESSION_INVALID', () => {
    expect(opened(signedRecord(B, 1, successionBody(B.sled, A, 7)))).toBe('SUCCESSION_INVALID')
    expect(opened(signedRecord(B, 0, successionBody(B.sled, B, 7)))).toBe('SUCCESSION_INVALID')
    // Structure before signatures: decided even when the entry signature is forged.
    expect(opened(signJsonText(X, encodeEntryJson(entryOf(B.sled, 2, successionBody(B.sled, A, 1)))))).toBe(
      'SUCCESSION_INVALID',
    )
  })

  it('refuses an endorsement that does not verify: SUCCESSION_BAD_ENDORSEMENT', () => {
    const sign = (endorsement: string): string =>
      signedRecord(B, 0, { ...(successionBody(B.sled, A, 7) as object), endorsement } as never)
    // By the successor itself, for another successor, another lastSeq or reason, by a stranger.
    expect(opened(sign(endorseSuccession(B, { successor: B.sled, lastSeq: 7, reason: 'rotation' })))).toBe(
      'SUCCESSION_BAD_ENDORSEMENT',
    )
    expect(opened(sign(endorseSuccession(A, { successor: C.sled, lastSeq: 7, reason: 'rotation' })))).toBe(
      'SUCCESSION_BAD_ENDORSEMENT',
    )
    expect(opened(sign(endorseSuccession(A, { successor: B.sled, lastSeq: 8, reason: 'rotation' })))).toBe(
      'SUCCESSION_BAD_ENDORSEMENT',
    )
    expect(opened(sign(endorseSuccession(A, { successor: B.sled, lastSeq: 7, reason: 'recovery' })))).toBe(
      'SUCCESSION_BAD_ENDORSEMENT',
    )
    // The entry signature is checked first: a forged entry is a forgery, whatever it carries.
    const forged = signJsonText(X, encodeEntryJson(entryOf(B.sled, 0, successionBody(B.sled, X, 7))))
    expect(opened(forged)).toBe('UPDATE_BAD_SIGNATURE')
  })

  it('refuses a revocation signature that does not verify: REVOCATION_BAD_SIGNATURE', () => {
    const carry = (body: object): string => signedRecord(X, 0, body as never)
    const self = revocationBody(A, A.sled, 3) as { signature: string }
    // Another fromSeq, another target, the admin's signature presented as self, self as admin.
    expect(opened(carry({ ...self, fromSeq: 2 }))).toBe('REVOCATION_BAD_SIGNATURE')
    expect(opened(carry({ ...self, target: B.sled }))).toBe('REVOCATION_BAD_SIGNATURE')
    const admin = revocationBody(ADMIN, A.sled, 3) as { signature: string }
    expect(opened(carry({ ...self, signature: admin.signature }))).toBe('REVOCATION_BAD_SIGNATURE')
    expect(opened(carry({ ...admin, admin: X.sled }))).toBe('REVOCATION_BAD_SIGNATURE')
    expect(opened(carry({ ...admin, signature: self.signature }))).toBe('REVOCATION_BAD_SIGNATURE')
  })

  it('signs statements in their own domains, never as entries or handshakes', () => {
    const m = endorsementMessage({ successor: B.sled, predecessor: A.sled, lastSeq: -1, reason: 'recovery' })
    expect(m.toString('utf8')).toBe(`sledlog/succession/v1\n${B.sled}\n${A.sled}\n-1\nrecovery\n`)
    const r = revocationMessage({ target: A.sled, fromSeq: 0, authority: 'admin', signer: ADMIN.sled })
    expect(r.toString('utf8')).toBe(`sledlog/revocation/v1\n${A.sled}\n0\nadmin\n${ADMIN.sled}\n`)
    expect(() => signRevocation(B, { target: A.sled, fromSeq: 0, authority: 'self' })).toThrow(/target key itself/)
    // An endorsement is no entry signature: the same bytes under the entry domain do not open.
    const endorsement = endorseSuccession(A, { successor: B.sled, lastSeq: 7, reason: 'rotation' })
    const json = encodeEntryJson(entryOf(A.sled, 0))
    expect(opened(`${endorsement}.${json}`)).toBe('UPDATE_BAD_SIGNATURE')
  })
})

describe('isStatementRecord', () => {
  it('tells statements from events and gaps by the kind field, whatever the payload says', () => {
    expect(isStatementRecord(successionRecord(B, A, 7))).toBe(true)
    expect(isStatementRecord(revocationRecord(X, 9, A, A.sled, 3))).toBe(true)
    expect(isStatementRecord(signedRecord(A, 0))).toBe(false)
    expect(isStatementRecord(signedRecord(A, 1, { kind: 'gap', from: 1, to: 2 }))).toBe(false)
    const tricky = { kind: 'event', type: 'x', payload: { a: ',"kind":"succession"', kind: 'revocation' } } as const
    expect(isStatementRecord(signedRecord(A, 123456789, tricky))).toBe(false)
  })
})

/** An index of `records` (opened: as the guard would have checked them). */
function indexOf(records: readonly string[]): StatementIndex {
  const ix = emptyIndex()
  for (const r of records) {
    const { entry } = openRecord(r, verifier)
    if (entry.kind === 'succession' || entry.kind === 'revocation') indexStatement(ix, entry)
  }
  return ix
}

const all = (): boolean => true

describe('retirements (PROTOCOL.md §6.5)', () => {
  it('an endorsed succession retires after lastSeq, an unendorsed one nothing', () => {
    expect(retirements(indexOf([successionRecord(B, A, 7)]), new Set(), all)).toEqual(new Map([[A.sled, 8]]))
    expect(retirements(indexOf([successionRecord(B, A, -1)]), new Set(), all)).toEqual(new Map([[A.sled, 0]]))
    expect(retirements(indexOf([successionRecord(B, A.sled, 7)]), new Set(), all).size).toBe(0)
  })

  it('a self revocation always counts, an admin one only with its key configured', () => {
    const self = revocationRecord(X, 0, A, A.sled, 4)
    const admin = revocationRecord(X, 1, ADMIN, B.sled, 2)
    expect(retirements(indexOf([self, admin]), new Set(), all)).toEqual(new Map([[A.sled, 4]]))
    expect(retirements(indexOf([self, admin]), new Set([ADMIN.sled]), all)).toEqual(
      new Map([
        [A.sled, 4],
        [B.sled, 2],
      ]),
    )
  })

  it('takes the least seq over all records, whatever order they arrive in (seeded)', () => {
    const seed = testSeed('retirement order independence')
    const rand = prng(seed)
    const pool = [
      successionRecord(B, A, 9),
      successionRecord(C, B, 3),
      successionRecord(testKeys(46), A, 12),
      revocationRecord(X, 0, A, A.sled, 11),
      revocationRecord(X, 1, ADMIN, A.sled, 6),
      revocationRecord(B, 1, B, B.sled, 5),
      revocationRecord(testKeys(47), 0, ADMIN, C.sled, 0),
      successionRecord(testKeys(48), C.sled, 1),
    ]
    const admins = new Set([ADMIN.sled])
    for (let round = 0; round < 50; round++) {
      const subset = pool.filter(() => rand() < 0.7)
      const want = new Map<SledId, number>()
      const lower = (s: SledId, n: number): void => {
        want.set(s, Math.min(want.get(s) ?? n, n))
      }
      for (const r of subset) {
        const e = openRecord(r, verifier).entry
        if (e.kind === 'succession' && e.endorsement !== null) lower(e.predecessor, e.lastSeq + 1)
        if (e.kind === 'revocation') lower(e.target, e.fromSeq)
      }
      const shuffled = [...subset].sort(() => rand() - 0.5)
      // Applied twice in a row too: the index ignores a record it holds.
      const got = retirements(indexOf([...shuffled, ...shuffled]), admins, all)
      expect(got, `round ${round}`).toEqual(want)
    }
  })

  it('counts only what readers see: a record past its carrier’s fork is withheld', () => {
    const ix = indexOf([revocationRecord(X, 5, A, A.sled, 2), successionRecord(B, A, 0)])
    expect(retirements(ix, new Set(), all).get(A.sled)).toBe(1)
    expect(retirements(ix, new Set(), (s) => s !== B.sled).get(A.sled)).toBe(2)
    expect(retirements(ix, new Set(), (s, seq) => s !== B.sled && seq < 5).get(A.sled)).toBeUndefined()
  })
})

describe('chainOf', () => {
  it('walks predecessors back and successors forward, and flags a contested key', () => {
    const D = testKeys(49)
    const ix = indexOf([successionRecord(B, A, 9), successionRecord(C, B, 3), revocationRecord(X, 0, ADMIN, B.sled, 2)])
    const retired = retirements(ix, new Set(), all)
    const ofC = chainOf(ix, C.sled, retired, new Set(), all)
    expect(ofC.predecessors.map((l) => [l.sled, l.predecessor, l.lastSeq])).toEqual([
      [C.sled, B.sled, 3],
      [B.sled, A.sled, 9],
    ])
    expect(ofC.contested).toBe(false)
    const ofA = chainOf(ix, A.sled, retired, new Set(), all)
    expect(ofA.retiredFrom).toBe(10)
    expect(ofA.successors.map((l) => l.sled)).toEqual([B.sled, C.sled])
    const ofB = chainOf(ix, B.sled, retired, new Set(), all)
    expect(ofB.revocations.map((r) => [r.fromSeq, r.effective])).toEqual([[2, false]])
    expect(chainOf(ix, B.sled, retired, new Set([ADMIN.sled]), all).revocations[0]?.effective).toBe(true)
    // A's key endorses a second successor (stolen, or a rotation run twice): contested.
    indexStatement(ix, openRecord(successionRecord(D, A, 1), verifier).entry as never)
    expect(chainOf(ix, C.sled, retired, new Set(), all).contested).toBe(true)
    expect(chainOf(ix, A.sled, retired, new Set(), all).contested).toBe(true)
  })
})

describe('admitByChain', () => {
  const allow = (s: SledId): boolean => s === A.sled

  it('admits a successor endorsed by an allowed sled, directly or through successors', () => {
    expect(admitByChain(B.sled, [successionRecord(B, A, 4)], verifier, allow)).toMatchObject({ ok: true, via: A.sled })
    const two = admitByChain(C.sled, [successionRecord(C, B, 2), successionRecord(B, A, 4)], verifier, allow)
    expect(two).toMatchObject({ ok: true, via: A.sled })
  })

  it('refuses unendorsed, misordered, foreign, forged, too long and vetoed chains', () => {
    const reason = (v: ReturnType<typeof admitByChain>): string => (v.ok ? 'admitted' : v.reason)
    expect(reason(admitByChain(B.sled, [], verifier, allow))).toMatch(/no succession chain/)
    expect(reason(admitByChain(B.sled, [successionRecord(B, A.sled, 4)], verifier, allow))).toMatch(/not endorsed/)
    expect(reason(admitByChain(C.sled, [successionRecord(B, A, 4)], verifier, allow))).toMatch(/not .*'s/)
    expect(
      reason(admitByChain(C.sled, [successionRecord(B, A, 4), successionRecord(C, B, 2)], verifier, allow)),
    ).toMatch(/not .*'s/)
    expect(reason(admitByChain(C.sled, [successionRecord(C, B, 2)], verifier, allow))).toMatch(/not on the allow-list/)
    expect(reason(admitByChain(B.sled, [signedRecord(B, 0)], verifier, allow))).toMatch(/not a succession/)
    const forged = signJsonText(X, encodeEntryJson(entryOf(B.sled, 0, successionBody(B.sled, A, 4))))
    expect(reason(admitByChain(B.sled, [forged], verifier, allow))).toMatch(/does not open/)
    const long = Array.from({ length: MAX_CHAIN + 1 }, () => successionRecord(B, A, 4))
    expect(reason(admitByChain(B.sled, long, verifier, allow))).toMatch(/more than 8/)
    // Nine successions after A: the 8 records a handshake carries end one short of A, and the
    // refusal says so and what to allow-list (it used to say only "ends at …, not on the list").
    const keys = Array.from({ length: MAX_CHAIN + 1 }, (_, i) => testKeys(900 + i))
    const nine = keys.map((k, i) => successionRecord(k, i === 0 ? A : (keys[i - 1] as KeyPair), 0)).reverse()
    const last = keys[MAX_CHAIN] as KeyPair
    const cut = reason(admitByChain(last.sled, nine.slice(0, MAX_CHAIN), verifier, allow))
    expect(cut).toContain(`after 8 successions, the most a handshake carries: allow-list ${last.sled.slice(0, 12)}`)
    const veto = admitByChain(B.sled, [successionRecord(B, A, 4)], verifier, allow, () => 'contested')
    expect(reason(veto)).toBe('contested')
  })
})

describe('verifiedPredecessors', () => {
  it('lists the predecessors of the records that pass, up to the first that does not', () => {
    const two = [successionRecord(C, B, 2), successionRecord(B, A, 4)]
    expect(verifiedPredecessors(C.sled, two, verifier)).toEqual([B.sled, A.sled])
    // A's endorsement forged in the second record (X's, naming A): C proves it succeeds B, not A.
    const body = { ...successionBody(B.sled, X, 4), predecessor: A.sled } as EntryBody
    const forged = signJsonText(B, encodeEntryJson(entryOf(B.sled, 0, body)))
    expect(verifiedPredecessors(C.sled, [two[0] as string, forged], verifier)).toEqual([B.sled])
    // Nothing from a first record that fails: unendorsed, another sled's, vetoed, none at all.
    expect(verifiedPredecessors(B.sled, [successionRecord(B, A.sled, 4)], verifier)).toEqual([])
    expect(verifiedPredecessors(C.sled, [successionRecord(B, A, 4)], verifier)).toEqual([])
    expect(verifiedPredecessors(B.sled, [successionRecord(B, A, 4)], verifier, () => 'contested')).toEqual([])
    expect(verifiedPredecessors(B.sled, [], verifier)).toEqual([])
  })
})

describe('entries of the statement kinds', () => {
  it('round-trip through the signer', () => {
    const e = { sled: B.sled, seq: 0, ts: TEST_TS, ...successionBody(B.sled, A, 1) } as Entry
    expect(openRecord(signEntry(B, e), verifier).entry).toEqual(e)
  })
})

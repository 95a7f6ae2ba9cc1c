import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { isSledlogError } from '../../src/errors.js'
import {
  CursorTracker,
  EMPTY_CURSOR_ID,
  encodeEventId,
  parseEventId,
  resolveCursor,
} from '../../src/http/stream-cursor.js'
import { prng, testSeed } from '../helpers/seed.js'

const sled = (prefix: string, fill = '0'): SledId => (prefix + fill.repeat(64 - prefix.length)) as SledId
const A = sled('aaaaaaaaaaaaaaaa')
const B = sled('bbbbbbbbbbbbbbbb')
// Two sleds sharing their first 16 hex digits.
const C1 = sled('cccccccccccccccc', '1')
const C2 = sled('cccccccccccccccc', '2')

describe('stream cursor ids', () => {
  it('encode a cursor as sorted prefix:seq pairs and parse back', () => {
    expect(encodeEventId({})).toBe(EMPTY_CURSOR_ID)
    expect(encodeEventId({ [B]: 7, [A]: 0 })).toBe('aaaaaaaaaaaaaaaa:0,bbbbbbbbbbbbbbbb:7')
    expect(parseEventId('aaaaaaaaaaaaaaaa:0,bbbbbbbbbbbbbbbb:7')).toEqual([
      ['aaaaaaaaaaaaaaaa', 0],
      ['bbbbbbbbbbbbbbbb', 7],
    ])
    expect(parseEventId('-')).toEqual([])
  })

  it.each([
    ['', 'empty'],
    ['aaaaaaaaaaaaaaaa', 'no seq'],
    ['aaaaaaaaaaaaaaa:1', 'short prefix'],
    ['AAAAAAAAAAAAAAAA:1', 'upper case'],
    ['aaaaaaaaaaaaaaaa:-1', 'negative'],
    ['aaaaaaaaaaaaaaaa:01', 'leading zero'],
    ['aaaaaaaaaaaaaaaa:1.5', 'fraction'],
    ['aaaaaaaaaaaaaaaa:99999999999999999', 'unsafe integer'],
    ['aaaaaaaaaaaaaaaa:1,', 'trailing comma'],
    ['aaaaaaaaaaaaaaaa:1, bbbbbbbbbbbbbbbb:2', 'space'],
    ['--', 'dashes'],
  ])('refuses %j (%s) with HTTP_BAD_REQUEST', (id) => {
    let err: unknown
    try {
      parseEventId(id)
    } catch (e) {
      err = e
    }
    expect(isSledlogError(err, 'HTTP_BAD_REQUEST')).toBe(true)
  })

  it('maps unambiguous prefixes back to their sleds and drops unknown ones', () => {
    const pairs = parseEventId('aaaaaaaaaaaaaaaa:3,bbbbbbbbbbbbbbbb:9,dddddddddddddddd:4')
    expect(resolveCursor(pairs, [A, B])).toEqual({ [A]: 3, [B]: 9 })
    // B not held here (yet): it will be delivered from its first entry.
    expect(resolveCursor(pairs, [A])).toEqual({ [A]: 3 })
  })

  it('resumes ambiguous prefixes from the lowest candidate, never past an entry', () => {
    // Both sleds in the cursor: each resumes after the lower seq (duplicates possible, no gap).
    expect(resolveCursor(parseEventId('cccccccccccccccc:4,cccccccccccccccc:9'), [C1, C2])).toEqual({ [C1]: 4, [C2]: 4 })
    // One pair for two sleds: either may have been absent, so both start from their first entry.
    expect(resolveCursor(parseEventId('cccccccccccccccc:9'), [C1, C2])).toEqual({})
    // Two pairs for one held sled (the other is unknown here): the lower one.
    expect(resolveCursor(parseEventId('cccccccccccccccc:9,cccccccccccccccc:2'), [C1, A])).toEqual({ [C1]: 2 })
  })

  it('never resumes a sled past what the cursor held for it (random cursors, colliding prefixes)', () => {
    // The guarantee covers resuming on a node that holds every sled of the cursor (the node
    // that sent it always does: logs only grow). On another node, a sled missing there whose
    // 64-bit prefix collides with one it holds could be misread: docs/API.md says so.
    const rand = prng(testSeed('stream-cursor-resolve'))
    const pool = [A, B, C1, C2, sled('cccccccccccccccc', '3')]
    for (let round = 0; round < 1000; round++) {
      const held = pool.filter(() => rand() < 0.7)
      const cursor: Record<string, number> = {}
      for (const s of held) if (rand() < 0.6) cursor[s] = Math.floor(rand() * 20)
      const resumed = resolveCursor(parseEventId(encodeEventId(cursor)), held)
      for (const s of held) {
        expect(resumed[s] ?? -1).toBeLessThanOrEqual(cursor[s] ?? -1)
        const sharing = held.filter((o) => o.slice(0, 16) === s.slice(0, 16))
        if (sharing.length === 1) expect(resumed[s]).toBe(cursor[s])
      }
    }
  })

  it('tracks a cursor whose id equals the encoding of its heads', () => {
    const t = new CursorTracker({ [B]: 2, [A]: -1, [C1]: 5 }, (s) => s !== C1)
    expect(t.id()).toBe('bbbbbbbbbbbbbbbb:2')
    t.advance(C2, 0)
    t.advance(A, 0)
    t.advance(B, 3)
    expect(t.heads()).toEqual({ [A]: 0, [B]: 3, [C2]: 0 })
    expect(t.id()).toBe(encodeEventId(t.heads()))
    expect(new CursorTracker({}, () => true).id()).toBe(EMPTY_CURSOR_ID)
  })
})

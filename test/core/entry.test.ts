import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  assertEntryBody,
  assertJsonValue,
  encodeEntryJson,
  ENTRY_LIMITS,
  parseEntryJson,
  type Entry,
  type JsonValue,
} from '../../src/core/entry.js'
import type { SledId } from '../../src/core/ids.js'
import { isSledlogError } from '../../src/errors.js'
import { testKeys } from '../helpers/keys.js'
import { testSeed } from '../helpers/seed.js'

const SLED = testKeys(1).sled

const event: Entry = {
  sled: SLED,
  seq: 7,
  ts: 1_700_000_000_123,
  kind: 'event',
  type: 'order.created',
  payload: { id: 'o-1', items: [1, 2.5, 'three', null, true], nested: { a: { b: [] } } },
  id: 'idem-1',
}
const gap: Entry = { sled: SLED, seq: 3, ts: 5, kind: 'gap', from: 100, to: 120 }

/** Runs `fn` and returns the SledlogError code it threw (fails the test if it did not throw one). */
function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (isSledlogError(err)) return err.code
    throw new Error(`expected a SledlogError, got ${String(err)}`)
  }
  throw new Error('expected a SledlogError, nothing was thrown')
}

const invalid = (json: string): string => codeOf(() => parseEntryJson(json))

describe('encodeEntryJson / parseEntryJson round trip', () => {
  const cases: Array<[string, Entry]> = [
    ['event with id', event],
    ['event without id', { sled: SLED, seq: 0, ts: 0, kind: 'event', type: 't', payload: null }],
    ['gap', gap],
    ['gap of one id', { sled: SLED, seq: 0, ts: 0, kind: 'gap', from: 0, to: 0 }],
    [
      'max safe seq and ts',
      {
        sled: SLED,
        seq: Number.MAX_SAFE_INTEGER,
        ts: Number.MAX_SAFE_INTEGER,
        kind: 'gap',
        from: 0,
        to: Number.MAX_SAFE_INTEGER,
      },
    ],
    [
      'unicode',
      {
        sled: SLED,
        seq: 1,
        ts: 1,
        kind: 'event',
        type: 'ünïcödé/日本/🚀',
        payload: { 键: 'значение 🎉', emoji: '👩‍👩‍👧' },
        id: '✓',
      },
    ],
    [
      'escapes and controls',
      { sled: SLED, seq: 1, ts: 1, kind: 'event', type: 'q"\\/', payload: '\u0000\u001f\n\t"\\\u2028\u2029\u007f' },
    ],
    [
      'lone surrogates (escaped by JSON.stringify)',
      { sled: SLED, seq: 1, ts: 1, kind: 'event', type: '\ud800x', payload: ['\udc00', 'a\ud83d'] },
    ],
    [
      'numbers',
      {
        sled: SLED,
        seq: 1,
        ts: 1,
        kind: 'event',
        type: 'n',
        payload: [0, -1, 0.1, 1e21, 1e-7, -1.5e300, Number.MAX_SAFE_INTEGER + 2],
      },
    ],
    ['array payload', { sled: SLED, seq: 1, ts: 1, kind: 'event', type: 'a', payload: [[[]], {}, ''] }],
    [
      'integer-like payload keys',
      { sled: SLED, seq: 1, ts: 1, kind: 'event', type: 'k', payload: { '1': 'a', b: 'b', '0': 'c' } },
    ],
  ]
  it.each(cases)('%s', (_name, entry) => {
    const json = encodeEntryJson(entry)
    const parsed = parseEntryJson(json)
    expect(parsed).toEqual(entry)
    expect(encodeEntryJson(parsed)).toBe(json)
    // The canonical form is JSON.stringify of the fields in the fixed order.
    expect(JSON.parse(json)).toEqual(entry)
  })

  it('writes the fields in the fixed order sled, seq, ts, kind, then type, payload, id / from, to', () => {
    expect(Object.keys(JSON.parse(encodeEntryJson(event)) as object)).toEqual([
      'sled',
      'seq',
      'ts',
      'kind',
      'type',
      'payload',
      'id',
    ])
    expect(Object.keys(JSON.parse(encodeEntryJson(gap)) as object)).toEqual(['sled', 'seq', 'ts', 'kind', 'from', 'to'])
    expect(encodeEntryJson(gap)).toBe(`{"sled":"${SLED}","seq":3,"ts":5,"kind":"gap","from":100,"to":120}`)
  })

  it('omits an undefined id', () => {
    const e = { sled: SLED, seq: 0, ts: 0, kind: 'event', type: 't', payload: 1, id: undefined } as unknown as Entry
    expect(encodeEntryJson(e)).not.toContain('"id"')
    expect(parseEntryJson(encodeEntryJson(e))).toEqual({
      sled: SLED,
      seq: 0,
      ts: 0,
      kind: 'event',
      type: 't',
      payload: 1,
    })
  })

  const seed = testSeed('entry round trip', 20261101)
  it(`round-trips arbitrary events and gaps (fast-check seed ${seed})`, () => {
    const seqArb = fc.maxSafeNat()
    const shortString = fc.string({ unit: 'binary', minLength: 1, maxLength: ENTRY_LIMITS.typeLength })
    const eventArb = fc.record(
      {
        sled: fc.constantFrom(SLED, testKeys(2).sled, 'f'.repeat(64) as SledId),
        seq: seqArb,
        ts: seqArb,
        kind: fc.constant('event' as const),
        type: shortString,
        // JSON.parse(JSON.stringify(v)) normalises -0 and key order, as a signer's input would be.
        payload: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.parse(JSON.stringify(v)) as JsonValue),
        id: shortString,
      },
      { requiredKeys: ['sled', 'seq', 'ts', 'kind', 'type', 'payload'] },
    )
    const gapArb = fc
      .record({ sled: fc.constant(SLED), seq: seqArb, ts: seqArb, a: seqArb, b: seqArb })
      .map(({ a, b, ...h }): Entry => ({ ...h, kind: 'gap', from: Math.min(a, b), to: Math.max(a, b) }))
    fc.assert(
      fc.property(fc.oneof(eventArb as fc.Arbitrary<Entry>, gapArb), (e) => {
        const json = encodeEntryJson(e)
        const parsed = parseEntryJson(json)
        expect(parsed).toEqual(e)
        expect(encodeEntryJson(parsed)).toBe(json)
      }),
      { seed, numRuns: 200 },
    )
  })
})

describe('parseEntryJson rejects everything but the canonical text of a well-formed entry', () => {
  const canon = encodeEntryJson(event)
  const canonGap = encodeEntryJson(gap)
  const head = `{"sled":"${SLED}","seq":7,"ts":1700000000123,"kind":"event"`
  const tail = `,"type":"order.created","payload":null,"id":"x"}`

  it('accepts the canonical texts used below', () => {
    expect(parseEntryJson(head + tail).seq).toBe(7)
    expect(parseEntryJson(canon).seq).toBe(7)
    expect(parseEntryJson(canonGap).seq).toBe(3)
  })

  // Each variant parses (as JSON) to exactly the same value as the canonical text: only the
  // canonical-form check can reject it.
  const sameValue: Array<[string, string, string]> = [
    ['space after a colon', canon, canon.replace('"seq":7', '"seq": 7')],
    ['leading whitespace', canon, ' ' + canon],
    ['trailing newline', canon, canon + '\n'],
    ['pretty-printed', canon, JSON.stringify(JSON.parse(canon), null, 2)],
    ['tab inside the payload', canon, canon.replace('"nested":', '"nested":\t')],
    ['seq before sled', canon, canon.replace(`"sled":"${SLED}","seq":7`, `"seq":7,"sled":"${SLED}"`)],
    ['kind first', canonGap, `{"kind":"gap","sled":"${SLED}","seq":3,"ts":5,"from":100,"to":120}`],
    ['payload before type', head + tail, head + `,"payload":null,"type":"order.created","id":"x"}`],
    ['id before payload', head + tail, head + `,"type":"order.created","id":"x","payload":null}`],
    ['to before from', canonGap, canonGap.replace('"from":100,"to":120', '"to":120,"from":100')],
    [
      'integer-like payload key after a named one',
      head + `,"type":"t","payload":{"1":2,"b":1}}`,
      head + `,"type":"t","payload":{"b":1,"1":2}}`,
    ],
    ['duplicate seq key', canon, canon.replace('"seq":7', '"seq":7,"seq":7')],
    ['duplicate key, first value differs', canon, canon.replace('"seq":7', '"seq":8,"seq":7')],
    ['duplicate key inside the payload', canon, canon.replace('{"id":"o-1"', '{"id":"evil","id":"o-1"')],
    ['1.0 for an integer seq', canon, canon.replace('"seq":7', '"seq":7.0')],
    ['exponent form of ts', canon, canon.replace('"ts":1700000000123', '"ts":1.700000000123e12')],
    ['2.50 in the payload', canon, canon.replace('2.5', '2.50')],
    ['escaped character in type', canon, canon.replace('"order.created"', '"\\u006frder.created"')],
    ['escaped slash in type', canon.replace('"order.created"', '"a/b"'), canon.replace('"order.created"', '"a\\/b"')],
    [
      'uppercase unicode escape',
      canon.replace('"order.created"', '"\\u001f"'),
      canon.replace('"order.created"', '"\\u001F"'),
    ],
  ]
  it.each(sameValue)('%s', (_name, good, bad) => {
    expect(parseEntryJson(good)).toBeTruthy()
    expect(JSON.parse(bad)).toEqual(JSON.parse(good))
    expect(invalid(bad)).toBe('ENTRY_INVALID')
  })

  it('rejects -0 wherever a number is allowed (seq, ts, payload)', () => {
    const zero = encodeEntryJson({ ...event, seq: 0, ts: 0, payload: 0 } as Entry)
    expect(parseEntryJson(zero).seq).toBe(0)
    expect(invalid(zero.replace('"seq":0', '"seq":-0'))).toBe('ENTRY_INVALID')
    expect(invalid(zero.replace('"ts":0', '"ts":-0'))).toBe('ENTRY_INVALID')
    expect(invalid(zero.replace('"payload":0', '"payload":-0'))).toBe('ENTRY_INVALID')
    const zeroGap = canonGap.replace('"from":100', '"from":0')
    expect(parseEntryJson(zeroGap).kind).toBe('gap')
    expect(invalid(zeroGap.replace('"from":0', '"from":-0'))).toBe('ENTRY_INVALID')
  })

  it('keeps the key order of payload objects: it is part of the signed text', () => {
    // Not a canonicalisation gap: the verifier reads the same value out of the same bytes, and
    // a different order is a different signed text (and a different signature).
    const a = head + `,"type":"t","payload":{"a":1,"b":2}}`
    const b = head + `,"type":"t","payload":{"b":2,"a":1}}`
    expect(Object.keys((parseEntryJson(a) as { payload: object }).payload)).toEqual(['a', 'b'])
    expect(Object.keys((parseEntryJson(b) as { payload: object }).payload)).toEqual(['b', 'a'])
    expect(encodeEntryJson(parseEntryJson(b))).toBe(b)
  })

  const bad: Array<[string, string]> = [
    ['extra top-level field', canon.replace('"kind":"event"', '"kind":"event","extra":1')],
    ['extra field at the end', canon.slice(0, -1) + ',"z":0}'],
    ['gap field on an event', head + `,"type":"t","payload":null,"from":1}`],
    ['event field on a gap', canonGap.slice(0, -1) + ',"type":"t"}'],
    ['__proto__ field', canon.slice(0, -1) + ',"__proto__":{}}'],
    ['missing sled', canon.replace(`"sled":"${SLED}",`, '')],
    ['missing seq', canon.replace('"seq":7,', '')],
    ['missing ts', canon.replace('"ts":1700000000123,', '')],
    ['missing kind', canon.replace('"kind":"event",', '')],
    ['missing type', canon.replace('"type":"order.created",', '')],
    ['missing payload', head + `,"type":"t"}`],
    ['missing to', canonGap.replace(',"to":120', '')],
    ['missing from', canonGap.replace('"from":100,', '')],
    ['seq as a string', canon.replace('"seq":7', '"seq":"7"')],
    ['seq null', canon.replace('"seq":7', '"seq":null')],
    ['ts as a string', canon.replace('"ts":1700000000123', '"ts":"1700000000123"')],
    ['ts negative', canon.replace('"ts":1700000000123', '"ts":-1')],
    ['ts fractional', canon.replace('"ts":1700000000123', '"ts":1.5')],
    ['type a number', canon.replace('"type":"order.created"', '"type":5')],
    ['type empty', canon.replace('"type":"order.created"', '"type":""')],
    ['type too long', canon.replace('"type":"order.created"', `"type":"${'t'.repeat(ENTRY_LIMITS.typeLength + 1)}"`)],
    ['id a number', canon.replace('"id":"idem-1"', '"id":1')],
    ['id null', canon.replace('"id":"idem-1"', '"id":null')],
    ['id empty', canon.replace('"id":"idem-1"', '"id":""')],
    ['id too long', canon.replace('"id":"idem-1"', `"id":"${'i'.repeat(ENTRY_LIMITS.idLength + 1)}"`)],
    ['unknown kind', canon.replace('"kind":"event"', '"kind":"other"')],
    ['kind not a string', canon.replace('"kind":"event"', '"kind":1')],
    ['sled uppercase hex', canon.replace(SLED, SLED.toUpperCase())],
    ['sled non-hex', canon.replace(SLED, 'g' + SLED.slice(1))],
    ['sled 63 chars', canon.replace(SLED, SLED.slice(1))],
    ['sled 65 chars', canon.replace(SLED, SLED + '0')],
    ['sled not a string', canon.replace(`"${SLED}"`, '1')],
    ['negative seq', canon.replace('"seq":7', '"seq":-1')],
    ['fractional seq', canon.replace('"seq":7', '"seq":7.5')],
    ['unsafe seq 2^53', canon.replace('"seq":7', '"seq":9007199254740992')],
    ['huge seq 1e300', canon.replace('"seq":7', '"seq":1e300')],
    ['gap from > to', canonGap.replace('"from":100', '"from":121')],
    ['gap negative from', canonGap.replace('"from":100', '"from":-1')],
    ['gap fractional to', canonGap.replace('"to":120', '"to":120.5')],
    ['gap unsafe to', canonGap.replace('"to":120', '"to":9007199254740993')],
    ['gap from as a string', canonGap.replace('"from":100', '"from":"100"')],
    ['not JSON', '{"sled":'],
    ['empty string', ''],
    ['JSON null', 'null'],
    ['JSON array', `[${canon}]`],
    ['JSON string', JSON.stringify(canon)],
    ['JSON number', '7'],
    ['byte order mark', '\ufeff' + canon],
    ['trailing garbage', canon + 'x'],
    ['two objects', canon + canon],
  ]
  it.each(bad)('%s', (_name, json) => {
    expect(invalid(json)).toBe('ENTRY_INVALID')
  })

  it('rejects payloads nested deeper than the limit', () => {
    const nest = (n: number): string => '['.repeat(n) + 'null' + ']'.repeat(n)
    const at = (n: number): string => head + `,"type":"t","payload":${nest(n)}}`
    expect(parseEntryJson(at(ENTRY_LIMITS.payloadDepth)).kind).toBe('event')
    expect(invalid(at(ENTRY_LIMITS.payloadDepth + 1))).toBe('ENTRY_INVALID')
    // Very deep JSON must not blow the stack: it is rejected like any other bad entry.
    expect(invalid(at(200_000))).toBe('ENTRY_INVALID')
  })
})

describe('assertJsonValue', () => {
  class Point {
    x = 1
  }
  const deep = (n: number): unknown => {
    let v: unknown = null
    for (let i = 0; i < n; i++) v = [v]
    return v
  }
  const deepObj = (n: number): unknown => {
    let v: unknown = 'leaf'
    for (let i = 0; i < n; i++) v = { k: v }
    return v
  }
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  const cyclicArr: unknown[] = []
  cyclicArr.push(cyclicArr)

  const rejected: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['undefined in an object', { a: undefined }],
    ['undefined in an array', [1, undefined]],
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
    ['a hole in a sparse array', [, 1]],
    ['a function', () => 1],
    ['a function in an object', { f: function named() {} }],
    ['an object with toJSON', { toJSON: () => 'x' }],
    ['a symbol', Symbol('s')],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity in an array', [Number.NEGATIVE_INFINITY]],
    ['NaN nested', { a: { b: [Number.NaN] } }],
    ['a bigint', 1n],
    ['a bigint in an object', { n: 10n }],
    ['a Date', new Date(0)],
    ['a Map', new Map([['a', 1]])],
    ['a Set', new Set([1])],
    ['a class instance', new Point()],
    ['a RegExp', /x/],
    ['a Uint8Array', new Uint8Array([1])],
    ['a boxed string', new String('s')], // eslint-disable-line no-new-wrappers
    ['a boxed number', new Number(1)], // eslint-disable-line no-new-wrappers
    ['an Error', new Error('e')],
    ['a Promise', Promise.resolve(1)],
    ['nesting of arrays beyond the limit', deep(ENTRY_LIMITS.payloadDepth + 1)],
    ['nesting of objects beyond the limit', deepObj(ENTRY_LIMITS.payloadDepth + 1)],
    ['a cyclic object', cyclic],
    ['a cyclic array', cyclicArr],
  ]
  it.each(rejected)('rejects %s with ENTRY_INVALID', (_name, value) => {
    expect(codeOf(() => assertJsonValue(value))).toBe('ENTRY_INVALID')
  })

  const accepted: Array<[string, unknown]> = [
    ['null', null],
    ['true', true],
    ['a string', 'hello'],
    ['unicode', { ключ: '值 🚀', emoji: ['👍🏽', '\u0000'] }],
    ['a lone surrogate (JSON.stringify escapes it)', '\ud800'],
    ['numbers', [0, -1, 1.5, 1e300, Number.MAX_SAFE_INTEGER + 2, Number.MIN_VALUE]],
    ['empty array and object', [[], {}]],
    ['arrays of mixed values', [1, 'a', null, false, [2, [3]], { b: [] }]],
    ['a null-prototype object', Object.assign(Object.create(null) as object, { a: 1 })],
    ['nesting at the limit', deep(ENTRY_LIMITS.payloadDepth)],
    ['object nesting at the limit', deepObj(ENTRY_LIMITS.payloadDepth)],
    [
      'a shared (non-cyclic) sub-object',
      (() => {
        const s = { x: 1 }
        return { a: s, b: s }
      })(),
    ],
  ]
  it.each(accepted)('accepts %s', (_name, value) => {
    expect(() => assertJsonValue(value)).not.toThrow()
  })

  it('accepted values survive JSON.stringify/parse unchanged', () => {
    for (const [, v] of accepted) {
      if (typeof v === 'string' && /[\ud800-\udfff]/.test(v)) continue
      expect(JSON.parse(JSON.stringify(v))).toEqual(v)
    }
  })

  it('documents: -0 is accepted and signed as 0 (JSON has no negative zero)', () => {
    expect(() => assertJsonValue(-0)).not.toThrow()
    const e: Entry = { sled: SLED, seq: 0, ts: 0, kind: 'event', type: 't', payload: -0 }
    expect(encodeEntryJson(e)).toContain('"payload":0}')
  })

  // JSON.stringify silently drops symbol keys and named array properties: refuse them.
  it('rejects an object with a symbol-keyed property (JSON.stringify drops it)', () => {
    const v = { a: 1, [Symbol('hidden')]: 'dropped' }
    expect(JSON.stringify(v)).toBe('{"a":1}')
    expect(codeOf(() => assertJsonValue(v))).toBe('ENTRY_INVALID')
  })
  it('rejects an array with a named property (JSON.stringify drops it)', () => {
    const v = Object.assign([1, 2], { extra: 'dropped' })
    expect(JSON.stringify(v)).toBe('[1,2]')
    expect(codeOf(() => assertJsonValue(v))).toBe('ENTRY_INVALID')
  })
})

describe('assertEntryBody', () => {
  it('accepts well-formed bodies', () => {
    expect(() => assertEntryBody({ kind: 'event', type: 't', payload: null })).not.toThrow()
    expect(() => assertEntryBody({ kind: 'event', type: 't', payload: [1], id: 'x' })).not.toThrow()
    expect(() =>
      assertEntryBody({
        kind: 'event',
        type: 't'.repeat(ENTRY_LIMITS.typeLength),
        payload: 1,
        id: 'i'.repeat(ENTRY_LIMITS.idLength),
      }),
    ).not.toThrow()
    expect(() => assertEntryBody({ kind: 'event', type: 't', payload: 1, id: undefined })).not.toThrow()
    expect(() => assertEntryBody({ kind: 'gap', from: 0, to: 0 })).not.toThrow()
    expect(() => assertEntryBody({ kind: 'gap', from: 5, to: Number.MAX_SAFE_INTEGER })).not.toThrow()
  })

  const bad: Array<[string, unknown]> = [
    ['null', null],
    ['a string', 'event'],
    ['no kind', { type: 't', payload: 1 }],
    ['unknown kind', { kind: 'evt', type: 't', payload: 1 }],
    ['missing payload', { kind: 'event', type: 't' }],
    ['undefined payload', { kind: 'event', type: 't', payload: undefined }],
    ['bad payload', { kind: 'event', type: 't', payload: new Date() }],
    ['empty type', { kind: 'event', type: '', payload: 1 }],
    ['long type', { kind: 'event', type: 't'.repeat(ENTRY_LIMITS.typeLength + 1), payload: 1 }],
    ['non-string type', { kind: 'event', type: 1, payload: 1 }],
    ['null id', { kind: 'event', type: 't', payload: 1, id: null }],
    ['long id', { kind: 'event', type: 't', payload: 1, id: 'i'.repeat(ENTRY_LIMITS.idLength + 1) }],
    ['header fields in a body', { kind: 'event', type: 't', payload: 1, seq: 1 }],
    ['unknown event field', { kind: 'event', type: 't', payload: 1, extra: 1 }],
    ['unknown gap field', { kind: 'gap', from: 0, to: 1, extra: 1 }],
    ['gap from > to', { kind: 'gap', from: 2, to: 1 }],
    ['gap -1', { kind: 'gap', from: -1, to: 1 }],
    ['gap NaN', { kind: 'gap', from: Number.NaN, to: 1 }],
    ['gap unsafe', { kind: 'gap', from: 0, to: 2 ** 53 }],
    ['gap strings', { kind: 'gap', from: '0', to: '1' }],
  ]
  it.each(bad)('rejects %s with ENTRY_INVALID', (_name, body) => {
    expect(codeOf(() => assertEntryBody(body))).toBe('ENTRY_INVALID')
  })
})

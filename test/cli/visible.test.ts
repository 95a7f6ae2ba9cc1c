/**
 * Output that reaches a terminal never carries a raw control or bidi character: table rows,
 * status summaries, tail notices and error messages show them as escapes; NDJSON escapes them
 * in JSON's own syntax, so it parses to the same values.
 */
import { describe, expect, it } from 'vitest'
import { describe as describeStatus } from '../../src/cli/commands/status.js'
import { tableRow } from '../../src/cli/table.js'
import { jsonLine, visible, visibleLines } from '../../src/cli/visible.js'
import type { SledId } from '../../src/core/ids.js'
import type { StoredEntry } from '../../src/core/query.js'
import { ndjson, runMain } from './cli-process.js'
import { entryJson, fakeNode, json, sse } from './fake-node.js'

/** Every character that must never reach a terminal raw. */
const HOSTILE = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  '\u007f',
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(0x80 + i)),
  '\u061c',
  '\u200e',
  '\u200f',
  '\u2028',
  '\u2029',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
]
const charClass = (chars: readonly string[]): RegExp =>
  new RegExp(`[${chars.map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}]`)
/** Any of them raw. */
const RAW = charClass(HOSTILE)
/** Any of them raw but the newline (for multi-line output). */
const RAW_IN_LINES = charClass(HOSTILE.filter((c) => c !== '\n'))
/** Terminal-style attack text: clear screen, retitle the window, reverse the rest of the line. */
const ATTACK = '\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202eevil\u0000'

describe('visible', () => {
  it('escapes every C0, DEL, C1, separator and bidi control, and nothing else', () => {
    const out = visible(HOSTILE.join(''))
    expect(out).not.toMatch(RAW)
    expect(visible('\u001b[2J')).toBe('\\x1b[2J')
    expect(visible('a\nb\tc\rd')).toBe('a\\nb\\tc\\rd')
    expect(visible('\u202egnp.exe')).toBe('\\u202egnp.exe')
    expect(visible('\u009b')).toBe('\\x9b')
    expect(visible('plain ascii, ünïcödé, 日本, emoji 🛷')).toBe('plain ascii, ünïcödé, 日本, emoji 🛷')
    expect(visibleLines(`a${ATTACK}\nb`)).toMatch(/^a[^\n]*\nb$/)
    expect(visibleLines(`a${ATTACK}\nb`)).not.toMatch(RAW_IN_LINES)
  })

  it('jsonLine gives JSON that parses to the same value and holds no raw control', () => {
    const value = { type: ATTACK, payload: { [ATTACK]: HOSTILE.join('') }, list: HOSTILE }
    const line = jsonLine(value)
    expect(line).not.toMatch(RAW)
    expect(JSON.parse(line)).toEqual(value)
    // JSON.stringify alone leaves DEL, C1 and bidi raw: the reason jsonLine exists.
    expect(JSON.stringify(value)).toMatch(/[\u009b\u202e]/)
  })
})

const SLED = 'c'.repeat(64) as SledId

describe('table rows and status summaries', () => {
  it('escape hostile types, ids and payloads before cutting them to the column', () => {
    const e = { sled: SLED, seq: 0, ts: 0, kind: 'event', type: ATTACK, id: ATTACK, payload: { x: ATTACK } }
    const row = tableRow(e as unknown as StoredEntry)
    expect(row).not.toMatch(RAW)
    expect(row).toContain('\\x1b[2J')
    expect(row.split('\n')).toHaveLength(1)
  })

  it('status escapes what the node reports (peer URLs, refusal reasons, codes)', () => {
    const text = describeStatus({
      sled: SLED,
      entries: 0,
      heads: {},
      rejected: { total: 1, byCode: { [ATTACK]: 1 } },
      forks: { sleds: 0, equivocations: 0, ignored: 0, withheld: 0, own: null, first: [] },
      missing: {},
      ownHeadBehind: null,
      writeFailed: null,
      peers: [
        { url: `ws://h:1/${ATTACK}`, connected: false, refused: { code: 4403, reason: ATTACK, retryAt: 0 } },
        { url: null, label: ATTACK, connected: true },
      ],
    } as unknown as Parameters<typeof describeStatus>[0])
    expect(text).not.toMatch(RAW_IN_LINES)
    expect(text).toContain('\\u202eevil')
  })
})

describe('commands end to end', () => {
  it('read --format table, read NDJSON, status and tail never write a raw control character', async () => {
    const hostile = entryJson(0, { type: ATTACK, id: ATTACK, payload: ATTACK })
    const node = await fakeNode((req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path === '/v1/events') json(res, 200, { entries: [hostile], next: null })
      else if (path === '/v1/stream') {
        sse(res, `event: entry\nid: 1\ndata: ${JSON.stringify(hostile)}\n\n`)
        // Raw in the event data, as a hostile node could send it.
        sse(res, `event: hole\ndata: ${ATTACK}\n\nevent: live\ndata: {}\n\n`)
      } else json(res, 500, { error: { code: 'X', message: ATTACK } })
    })
    const table = await runMain(['read', '--url', node.url, '--format', 'table'])
    const lines = await runMain(['read', '--url', node.url])
    const tail = await runMain(['tail', '--url', node.url, '--until-live'])
    const status = await runMain(['status', '--url', node.url])
    for (const r of [table, lines, tail, status]) {
      expect(r.stdout).not.toMatch(RAW_IN_LINES)
      expect(r.stderr).not.toMatch(RAW_IN_LINES)
    }
    expect(table.stdout.split('\n')).toHaveLength(3) // header, one row, final newline
    expect(ndjson(lines.stdout)).toEqual([hostile])
    expect(ndjson(tail.stdout)).toEqual([hostile])
    expect(tail.stderr).toContain('\\x1b[2J')
    expect(status.code).toBe(1)
    expect(status.stderr).toBe(`sledlog status: X: ${visible(ATTACK)} (node ${node.url}, HTTP 500)\n`)
  })
})

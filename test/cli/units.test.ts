import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { parseFlags } from '../../src/cli/args.js'
import { UsageError } from '../../src/cli/cli-error.js'
import { eventOfLine } from '../../src/cli/commands/append.js'
import { nodeConfigOf } from '../../src/cli/commands/node.js'
import { diskProblem } from '../../src/cli/disk-errors.js'
import { resolveNodeSettings } from '../../src/config/resolve.js'
import { parsePosition, parseTime } from '../../src/cli/commands/read.js'
import { readLines } from '../../src/cli/lines.js'
import { progressBar } from '../../src/cli/progress.js'
import { SseOverflow, SseParser } from '../../src/cli/sse-parser.js'
import { tableHeader, tableRow } from '../../src/cli/table.js'
import type { SledId } from '../../src/core/ids.js'
import type { StoredEntry } from '../../src/core/query.js'

const SLED = 'c'.repeat(64) as SledId

function sink(isTTY: boolean) {
  const chunks: string[] = []
  return { chunks, stream: { isTTY, columns: 100, write: (s: string) => chunks.push(s) > 0, once: () => undefined } }
}

describe('SseParser', () => {
  it('assembles events across arbitrary chunk boundaries', () => {
    const text =
      'retry: 2000\n\n: heartbeat\n\nevent: entry\nid: abc:1\ndata: {"a":1}\n\n' +
      'event: live\r\ndata: {}\r\n\r\ndata: x\ndata: y\n\n'
    for (const size of [1, 2, 3, 7, text.length]) {
      const p = new SseParser()
      const events = []
      for (let i = 0; i < text.length; i += size) events.push(...p.feed(text.slice(i, i + size)))
      expect(events).toEqual([
        { event: 'entry', id: 'abc:1', data: '{"a":1}' },
        { event: 'live', data: '{}' },
        { event: 'message', data: 'x\ny' },
      ])
      expect(p.retry).toBe(2000)
    }
  })

  it('drops a leading BOM and events without data', () => {
    const p = new SseParser()
    expect(p.feed('\ufeffevent: x\n\nevent: y\ndata:z\n\n')).toEqual([{ event: 'y', data: 'z' }])
  })
})

describe('SseParser limits', () => {
  it('throws SseOverflow on an endless line or an endless event, not before', () => {
    const line = new SseParser(100)
    expect(line.feed(`data: ${'x'.repeat(80)}\n\n`)).toHaveLength(1)
    expect(() => line.feed('data: '.padEnd(101, 'y'))).toThrow(SseOverflow)
    const event = new SseParser(100)
    for (let i = 0; i < 3; i++) event.feed(`data: ${'z'.repeat(20)}\n`)
    expect(() => event.feed(`data: ${'z'.repeat(40)}\n`)).toThrow(/a stream event exceeds/)
  })
})

describe('diskProblem', () => {
  it('reads Node system errors and LevelDB IO errors (through causes)', () => {
    const sys = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: '/d/k' })
    expect(diskProblem(sys)).toEqual({ code: 'ENOSPC', path: '/d/k' })
    const level = new Error('Database failed to open', {
      cause: Object.assign(new Error('IO error: /d/db/LOCK: Read-only file system'), { code: 'LEVEL_IO_ERROR' }),
    })
    expect(diskProblem(level)).toEqual({ code: 'EROFS', path: '/d/db/LOCK' })
    expect(diskProblem(new Error('IO error: /d/db/000005.ldb: Permission denied'))).toEqual({
      code: 'EACCES',
      path: '/d/db/000005.ldb',
    })
    expect(diskProblem(new Error('Database failed to open'))).toBeUndefined()
    expect(diskProblem('not an error')).toBeUndefined()
  })
})

describe('nodeConfigOf', () => {
  it('passes every security setting into the node configuration', () => {
    const r = resolveNodeSettings({
      flags: {
        data: 'd',
        insecure: true,
        'api-tokens': 't.json',
        'tls-cert': 'c.pem',
        'tls-key': 'k.pem',
        'peer-ca': 'ca.pem',
        'peer-pin': ['a'.repeat(64)],
        'allowed-host': ['h.example'],
        'cors-origin': ['https://app.example'],
      },
      env: {},
    })
    if (!r.ok) throw new Error(r.problems.join('\n'))
    expect(nodeConfigOf(r.settings)).toEqual({
      dataDir: 'd',
      host: '127.0.0.1',
      port: 7400,
      peers: [],
      sync: false,
      minAcks: 0,
      recoveryMode: 'succession',
      insecure: true,
      apiTokensFile: 't.json',
      tls: { certFile: 'c.pem', keyFile: 'k.pem' },
      peerTls: { caFile: 'ca.pem', pins: ['a'.repeat(64)] },
      allowedHosts: ['h.example'],
      corsOrigins: ['https://app.example'],
    })
    const plain = resolveNodeSettings({ flags: { data: 'd' }, env: {} })
    if (!plain.ok) throw new Error('unexpected')
    expect(nodeConfigOf(plain.settings)).toEqual({
      dataDir: 'd',
      host: '127.0.0.1',
      port: 7400,
      peers: [],
      sync: false,
      minAcks: 0,
      recoveryMode: 'succession',
      insecure: false,
    })
    const acked = resolveNodeSettings({
      flags: { data: 'd', peer: ['ws://b:1'], 'min-acks': '1', 'ack-timeout': '2000' },
      env: {},
    })
    if (!acked.ok) throw new Error(acked.problems.join('\n'))
    expect(nodeConfigOf(acked.settings)).toMatchObject({ peers: ['ws://b:1'], minAcks: 1, ackTimeoutMs: 2000 })
  })
})

describe('progressBar', () => {
  it('draws nothing when stderr is not a terminal', () => {
    const s = sink(false)
    const bar = progressBar(s.stream, 'verify', 'records')
    bar.update(5, 10)
    bar.finish()
    expect(s.chunks).toEqual([])
  })

  it('draws in place, throttled, and clears its line at the end', () => {
    const s = sink(true)
    let t = 0
    const bar = progressBar(s.stream, 'verify', 'records', () => t)
    t = 1000
    bar.update(5, 10)
    bar.update(6, 10) // within the redraw interval: skipped
    t = 2000
    bar.update(10)
    bar.finish()
    expect(s.chunks).toHaveLength(3)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the progress line is an ANSI escape
    expect(s.chunks[0]).toMatch(/^\r\x1b\[2Kverify \[#{12}\.{12}\] {2}50% 5\/10 records 5 records\/s$/)
    expect(s.chunks[1]).toContain('100% 10/10')
    expect(s.chunks[2]).toBe('\r\x1b[2K')
  })
})

describe('parseFlags', () => {
  it('turns parseArgs failures into one-line usage errors', () => {
    const opts = { port: { type: 'string' } } as const
    expect(parseFlags(['--port', '1'], opts)).toEqual({ port: '1' })
    for (const argv of [['--bogus'], ['--port'], ['positional']]) {
      const err = (() => {
        try {
          parseFlags(argv, opts)
        } catch (e) {
          return e
        }
      })()
      expect(err).toBeInstanceOf(UsageError)
      expect((err as Error).message).not.toContain('\n')
    }
  })
})

describe('read flag values', () => {
  it('parses positions and times', () => {
    expect(parsePosition(`${SLED}:12`, 'after')).toEqual({ sled: SLED, seq: 12 })
    expect(() => parsePosition(`${SLED}:x`, 'after')).toThrow(/SLED:SEQ/)
    expect(parseTime('1700000000000', 'since')).toBe(1700000000000)
    expect(parseTime('2024-01-02T03:04:05Z', 'since')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5))
    expect(() => parseTime('yesterday', 'since')).toThrow(UsageError)
  })
})

describe('eventOfLine', () => {
  it('accepts events and names the line of a bad one', () => {
    expect(eventOfLine('{"type":"t","payload":{"a":1},"id":"i"}', 1)).toEqual({ type: 't', payload: { a: 1 }, id: 'i' })
    expect(eventOfLine('{"type":"t"}', 1)).toEqual({ type: 't', payload: null })
    expect(() => eventOfLine('{"type":1}', 7)).toThrow(/^stdin line 7: "type" must be a string/)
    expect(() => eventOfLine('[1]', 2)).toThrow(/^stdin line 2: must be a JSON object/)
    expect(() => eventOfLine('{"type":"t","extra":1}', 3)).toThrow(/^stdin line 3: unknown field "extra"/)
    expect(() => eventOfLine('{nope', 4)).toThrow(/^stdin line 4: not valid JSON/)
  })
})

describe('readLines', () => {
  it('numbers lines across chunks, strips CR, keeps a final unterminated line, counts bytes', async () => {
    const input = new PassThrough()
    input.end(Buffer.from('a\r\nbé\n\nlast'))
    const lines = []
    for await (const l of readLines(input)) lines.push(l)
    expect(lines.map((l) => [l.n, l.text])).toEqual([
      [1, 'a'],
      [2, 'bé'],
      [3, ''],
      [4, 'last'],
    ])
    expect(lines.at(-1)?.bytes).toBe(Buffer.byteLength('a\r\nbé\n\nlast'))
  })
})

describe('table', () => {
  it('aligns rows under the header and shows gaps', () => {
    const event = {
      sled: SLED,
      seq: 3,
      ts: 0,
      kind: 'event',
      type: 'order.created',
      payload: { id: 1 },
      id: 'o-1',
      sig: 's',
    } as StoredEntry
    const gap = { sled: SLED, seq: 4, ts: 0, kind: 'gap', from: 5, to: 9, sig: 's' } as StoredEntry
    const header = tableHeader()
    const row = tableRow(event)
    expect(row.indexOf('order.created')).toBe(header.indexOf('TYPE'))
    expect(row.indexOf('{"id":1}')).toBe(header.indexOf('PAYLOAD'))
    expect(tableRow(gap)).toContain('lids 5..9 dropped')
  })
})

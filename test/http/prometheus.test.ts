import { describe, expect, it } from 'vitest'
import { escapeHelp, escapeLabelValue, Exposition, formatValue } from '../../src/http/prometheus.js'

describe('Prometheus exposition', () => {
  it('escapes label values and help text as the text format demands', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd')
    expect(escapeHelp('x\\y\nz "q"')).toBe('x\\\\y\\nz "q"')
    expect([NaN, Infinity, -Infinity, 0, 1.5].map(formatValue)).toEqual(['NaN', '+Inf', '-Inf', '0', '1.5'])
  })

  it('writes HELP and TYPE once per family, then its samples', () => {
    const text = new Exposition()
      .family('x_total', 'counter', 'Things.', [
        { labels: { code: 'A' }, value: 1 },
        { labels: { code: 'quo"te' }, value: 2 },
      ])
      .family('y', 'gauge', 'Level.', 3)
      .family('z', 'gauge', 'Nothing yet.', [])
      .text()
    expect(text).toBe(
      [
        '# HELP x_total Things.',
        '# TYPE x_total counter',
        'x_total{code="A"} 1',
        'x_total{code="quo\\"te"} 2',
        '# HELP y Level.',
        '# TYPE y gauge',
        'y 3',
        '# HELP z Nothing yet.',
        '# TYPE z gauge',
        '',
      ].join('\n'),
    )
  })

  it('refuses what would make a scrape invalid', () => {
    expect(() => new Exposition().family('a', 'gauge', 'h', [{ value: 1 }, { value: 2 }])).toThrow(/repeats series/)
    expect(() => new Exposition().family('a', 'gauge', 'h', 1).family('a', 'gauge', 'h', 1)).toThrow(/twice/)
    expect(() => new Exposition().family('bad-name', 'gauge', 'h', 1)).toThrow(/metric name/)
    expect(() => new Exposition().family('a', 'gauge', 'h', [{ labels: { 'b-c': 'x' }, value: 1 }])).toThrow(
      /label name/,
    )
    expect(() => new Exposition().family('a', 'counter', 'h', 1)).toThrow(/_total/)
  })
})

describe('the test exposition parser', () => {
  it('accepts what Exposition writes and refuses malformed lines', async () => {
    const { parseExposition } = await import('./exposition-parser.js')
    const text = new Exposition()
      .family('a_total', 'counter', 'x\\y\nz', [{ labels: { l: 'q"\\\n' }, value: 2 }])
      .text()
    const f = parseExposition(text).get('a_total')
    expect(f).toMatchObject({ type: 'counter', help: 'x\\y\nz', samples: [{ labels: { l: 'q"\\\n' }, value: 2 }] })
    for (const bad of [
      'a 1\n',
      '# TYPE a gauge\na{l="x} 1\n',
      '# HELP a h\n# TYPE a gauge\na 1\na 2\n',
      '# TYPE a gauge\na one\n',
      '# TYPE a gauge\na{l="\\x"} 1\n',
    ]) {
      expect(() => parseExposition(bad), bad).toThrow()
    }
  })
})

import { describe, expect, it } from 'vitest'
import { Histogram } from '../../src/http/histogram.js'
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

  it('writes a histogram as cumulative buckets, +Inf, sum and count, which the strict parser reads', async () => {
    const h = new Histogram([0.25, 0.5, 1])
    for (const v of [0.125, 0.25, 0.375, 0.75, 8]) h.observe(v)
    const text = new Exposition().histogram('w_seconds', 'Waits.', h.snapshot()).text()
    expect(text).toBe(
      [
        '# HELP w_seconds Waits.',
        '# TYPE w_seconds histogram',
        'w_seconds_bucket{le="0.25"} 2',
        'w_seconds_bucket{le="0.5"} 3',
        'w_seconds_bucket{le="1"} 4',
        'w_seconds_bucket{le="+Inf"} 5',
        'w_seconds_sum 9.5',
        'w_seconds_count 5',
        '',
      ].join('\n'),
    )
    const { parseExposition, sampleValue } = await import('./exposition-parser.js')
    const fams = parseExposition(text)
    expect(fams.get('w_seconds')?.type).toBe('histogram')
    expect(sampleValue(fams, 'w_seconds_bucket', { le: '0.5' })).toBe(3)
    expect(sampleValue(fams, 'w_seconds_count')).toBe(5)
    expect(() => new Histogram([1, 1])).toThrow(/ascend/)
    // A `_bucket` series of a family that is not a histogram is still refused.
    expect(() => parseExposition('# HELP g h\n# TYPE g gauge\ng_bucket{le="1"} 1\n')).toThrow(/undeclared/)
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

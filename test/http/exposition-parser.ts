/**
 * A strict reader of the Prometheus text format (0.0.4) for tests: every line must be a HELP,
 * a TYPE or a sample of a declared family, with valid names, escapes and values, and no series
 * may repeat. Throws naming the first bad line.
 */

/** A parsed family. */
export interface Family {
  readonly type: string
  readonly help: string
  readonly samples: Array<{ readonly labels: Record<string, string>; readonly value: number }>
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const HELP_RE = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\\\\\|\\\\n)*)$`)
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`)
const LABEL = '([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\\\\\|\\\\"|\\\\n)*)"'
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (\\S+)(?: (-?\\d+))?$`)
const VALUE_RE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/

function unescapeLabel(v: string): string {
  return v.replace(/\\(\\|"|n)/g, (_, c: string) => (c === 'n' ? '\n' : c))
}

/**
 * The series of a histogram (`_bucket`, `_sum`, `_count`) or summary (`_sum`, `_count`) family:
 * kept as a family of their own under the sample's name, so tests read them like any other.
 */
function partOf(
  families: Map<string, Family & { helpSeen: boolean; typeSeen: boolean }>,
  name: string,
): (Family & { helpSeen: boolean; typeSeen: boolean }) | undefined {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name)
  const base = m === null ? undefined : families.get(m[1] as string)
  if (base === undefined || m === null) return undefined
  if (!(base.type === 'histogram' || (base.type === 'summary' && m[2] !== 'bucket'))) return undefined
  const part = { type: `${base.type}:${m[2]}`, help: base.help, samples: [], helpSeen: true, typeSeen: true }
  families.set(name, part)
  return part
}

/** Parses an exposition; throws on the first malformed line. */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed')
  const families = new Map<string, Family & { helpSeen: boolean; typeSeen: boolean }>()
  const series = new Set<string>()
  const family = (name: string) => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type: 'untyped', help: '', samples: [], helpSeen: false, typeSeen: false }
      families.set(name, f)
    }
    return f
  }
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`
    let m: RegExpExecArray | null
    if ((m = HELP_RE.exec(line)) !== null) {
      const f = family(m[1] as string)
      if (f.helpSeen || f.samples.length > 0) throw new Error(`HELP repeated or after samples at ${where}`)
      families.set(m[1] as string, { ...f, help: unescapeLabel(m[2] as string), helpSeen: true })
      return
    }
    if ((m = TYPE_RE.exec(line)) !== null) {
      const f = family(m[1] as string)
      if (f.typeSeen || f.samples.length > 0) throw new Error(`TYPE repeated or after samples at ${where}`)
      families.set(m[1] as string, { ...f, type: m[2] as string, typeSeen: true })
      return
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment at ${where}`)
    m = SAMPLE_RE.exec(line)
    if (m === null) throw new Error(`malformed sample at ${where}`)
    const name = m[1] as string
    const f = families.get(name) ?? partOf(families, name)
    if (f === undefined || !f.typeSeen) throw new Error(`sample of undeclared family at ${where}`)
    const rawValue = m[m.length - 2] as string
    if (!VALUE_RE.test(rawValue)) throw new Error(`bad value at ${where}`)
    const labels: Record<string, string> = {}
    const labelText = m[2] ?? ''
    for (const lm of labelText.matchAll(new RegExp(LABEL, 'g'))) {
      const k = lm[1] as string
      if (k in labels) throw new Error(`label ${k} repeated at ${where}`)
      labels[k] = unescapeLabel(lm[2] as string)
    }
    const key = `${name}{${Object.entries(labels)
      .sort()
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',')}}`
    if (series.has(key)) throw new Error(`series repeated at ${where}`)
    series.add(key)
    f.samples.push({
      labels,
      value: rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue),
    })
  })
  for (const [name, f] of families) if (!f.helpSeen || !f.typeSeen) throw new Error(`family ${name} lacks HELP or TYPE`)
  return families
}

/** The value of the one sample of `name` whose labels include `labels`. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const f = families.get(name)
  const hit = f?.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (hit === undefined || hit.length === 0) return undefined
  if (hit.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hit.length} samples`)
  return hit[0]?.value
}

/**
 * A hand-written SVG chart (no dependency) for the "scaling" group: two log-log panels side by
 * side, throughput and latency against log size, one polyline with markers per series.
 */

/** One line of a panel: [x, y] points, x = log size. */
export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly dashed?: boolean
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2']

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** 1500 → "1.5k", 2000000 → "2M", 0.5 → "0.5". */
function short(v: number): string {
  const trim = (x: number): string => String(Number(x.toPrecision(3)))
  if (v >= 1e6) return `${trim(v / 1e6)}M`
  if (v >= 1e3) return `${trim(v / 1e3)}k`
  return trim(v)
}

interface PanelSpec {
  readonly x: number
  readonly y: number
  readonly w: number
  readonly h: number
  readonly title: string
  readonly yLabel: string
  readonly series: readonly Series[]
}

/** Decade bounds around the values, at least one decade wide. */
function logRange(values: readonly number[]): [number, number] {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v))
  if (pos.length === 0) return [1, 10]
  const lo = Math.floor(Math.log10(Math.min(...pos)))
  let hi = Math.ceil(Math.log10(Math.max(...pos)))
  if (hi <= lo) hi = lo + 1
  return [lo, hi]
}

function panel(p: PanelSpec, xRange: [number, number]): string {
  const out: string[] = []
  const [ylo, yhi] = logRange(p.series.flatMap((s) => s.points.map((pt) => pt[1])))
  const [xlo, xhi] = xRange
  const px = (v: number): number => p.x + ((Math.log10(v) - xlo) / (xhi - xlo)) * p.w
  const py = (v: number): number => p.y + p.h - ((Math.log10(v) - ylo) / (yhi - ylo)) * p.h
  out.push(
    `<text x="${p.x + p.w / 2}" y="${p.y - 12}" text-anchor="middle" font-size="14" font-weight="bold">` +
      `${esc(p.title)}</text>`,
  )
  out.push(`<rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" fill="#fff" stroke="#999"/>`)
  // Grid and ticks: decades solid, 2 and 5 faint.
  for (let d = ylo; d <= yhi; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d
      if (Math.log10(v) > yhi + 1e-9) continue
      const y = py(v)
      out.push(
        `<line x1="${p.x}" y1="${y.toFixed(1)}" x2="${p.x + p.w}" y2="${y.toFixed(1)}" ` +
          `stroke="${m === 1 ? '#ddd' : '#f2f2f2'}"/>`,
      )
      out.push(
        `<text x="${p.x - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11" ` +
          `fill="${m === 1 ? '#333' : '#999'}">${short(v)}</text>`,
      )
    }
  }
  for (let d = Math.ceil(xlo); d <= Math.floor(xhi); d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d
      if (Math.log10(v) > xhi + 1e-9 || Math.log10(v) < xlo - 1e-9) continue
      const x = px(v)
      out.push(
        `<line x1="${x.toFixed(1)}" y1="${p.y}" x2="${x.toFixed(1)}" y2="${p.y + p.h}" ` +
          `stroke="${m === 1 ? '#ddd' : '#f2f2f2'}"/>`,
      )
      out.push(
        `<text x="${x.toFixed(1)}" y="${p.y + p.h + 16}" text-anchor="middle" font-size="11" ` +
          `fill="${m === 1 ? '#333' : '#999'}">${short(v)}</text>`,
      )
    }
  }
  out.push(
    `<text x="${p.x + p.w / 2}" y="${p.y + p.h + 34}" text-anchor="middle" font-size="12">log size (entries)</text>`,
  )
  out.push(
    `<text transform="translate(${p.x - 48},${p.y + p.h / 2}) rotate(-90)" text-anchor="middle" font-size="12">` +
      `${esc(p.yLabel)}</text>`,
  )
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string
    const pts = s.points
      .filter((pt) => pt[0] > 0 && pt[1] > 0)
      .slice()
      .sort((a, b) => a[0] - b[0])
    if (pts.length === 0) return
    const d = pts.map((pt) => `${px(pt[0]).toFixed(1)},${py(pt[1]).toFixed(1)}`).join(' ')
    out.push(
      `<polyline points="${d}" fill="none" stroke="${color}" stroke-width="2"` +
        `${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
    )
    for (const pt of pts) {
      out.push(
        `<circle cx="${px(pt[0]).toFixed(1)}" cy="${py(pt[1]).toFixed(1)}" r="3.5" fill="${color}">` +
          `<title>${esc(`${s.name}: ${short(pt[1])} at ${short(pt[0])}`)}</title></circle>`,
      )
    }
    // Legend below the panel.
    const ly = p.y + p.h + 56 + i * 18
    out.push(
      `<line x1="${p.x}" y1="${ly - 4}" x2="${p.x + 24}" y2="${ly - 4}" stroke="${color}" stroke-width="2"` +
        `${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
    )
    out.push(`<circle cx="${p.x + 12}" cy="${ly - 4}" r="3" fill="${color}"/>`)
    const lastPt = pts[pts.length - 1] as readonly [number, number]
    out.push(
      `<text x="${p.x + 32}" y="${ly}" font-size="12">` +
        `${esc(`${s.name} (${short(lastPt[1])} at ${short(lastPt[0])})`)}</text>`,
    )
  })
  return out.join('\n')
}

/** The whole chart: throughput (left) and latency (right) against log size. */
export function renderScalingSvg(opts: {
  title: string
  subtitle: string
  throughput: readonly Series[]
  latency: readonly Series[]
}): string {
  const xs = [...opts.throughput, ...opts.latency].flatMap((s) => s.points.map((p) => p[0])).filter((v) => v > 0)
  const xRange: [number, number] =
    xs.length === 0 ? [4, 6] : [Math.log10(Math.min(...xs)) - 0.15, Math.log10(Math.max(...xs)) + 0.15]
  const legendRows = Math.max(opts.throughput.length, opts.latency.length)
  const W = 1000
  const H = 110 + 300 + 60 + legendRows * 18 + 20
  const body = [
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(opts.title)}</text>`,
    `<text x="${W / 2}" y="48" text-anchor="middle" font-size="12" fill="#555">${esc(opts.subtitle)}</text>`,
    panel(
      { x: 80, y: 90, w: 380, h: 300, title: 'Throughput', yLabel: 'entries/s (log)', series: opts.throughput },
      xRange,
    ),
    panel({ x: 590, y: 90, w: 380, h: 300, title: 'Latency', yLabel: 'ms (log)', series: opts.latency }, xRange),
  ]
  return (
    `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fafafa"/>
${body.join('\n')}
</svg>
`
  )
}

/**
 * Query-string parameters, read strictly: unknown names, repeats of single-valued names and
 * malformed values are HTTP_BAD_REQUEST, so a typo never silently widens a read.
 */
import { isSledId, type SledId } from '../core/ids.js'
import { sledlogError } from '../errors.js'

/** The parameters a route accepts: names that may appear once, and names that may repeat. */
export interface ParamSpec {
  readonly single?: readonly string[]
  readonly multi?: readonly string[]
}

/** Refuses parameters the route does not know and repeats of single-valued ones. */
export function checkParams(params: URLSearchParams, spec: ParamSpec): void {
  const single = spec.single ?? []
  const multi = spec.multi ?? []
  const seen = new Set<string>()
  for (const name of params.keys()) {
    if (multi.includes(name)) continue
    if (!single.includes(name)) {
      const known = [...single, ...multi]
      throw sledlogError(
        'HTTP_BAD_REQUEST',
        `unknown query parameter ${JSON.stringify(name)}` +
          (known.length === 0 ? ' (none accepted)' : ` (accepted: ${known.join(', ')})`),
        { param: name },
      )
    }
    if (seen.has(name))
      throw sledlogError('HTTP_BAD_REQUEST', `query parameter ${name} given more than once`, { param: name })
    seen.add(name)
  }
}

/** An integer parameter in [min, max], or undefined when absent. */
export function intParam(params: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = params.get(name)
  if (v === null) return undefined
  const n = /^-?\d{1,16}$/.test(v) ? Number(v) : NaN
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
    throw sledlogError('HTTP_BAD_REQUEST', `${name} must be an integer in ${min}..${max}`, { param: name })
  }
  return n
}

/** One of `choices`, or undefined when absent. */
export function choiceParam<T extends string>(
  params: URLSearchParams,
  name: string,
  choices: readonly T[],
): T | undefined {
  const v = params.get(name)
  if (v === null) return undefined
  if (!(choices as readonly string[]).includes(v)) {
    throw sledlogError('HTTP_BAD_REQUEST', `${name} must be one of ${choices.join(', ')}`, { param: name })
  }
  return v as T
}

/** Every `sled` parameter, each a sled id; deduplicated. */
export function sledParams(params: URLSearchParams, name = 'sled'): SledId[] {
  const out = new Set<SledId>()
  for (const s of params.getAll(name)) {
    if (!isSledId(s))
      throw sledlogError(
        'HTTP_BAD_REQUEST',
        `${name} ${JSON.stringify(s.slice(0, 80))} is not a sled id (64 lowercase hex)`,
        { param: name },
      )
    out.add(s)
  }
  return [...out]
}

/**
 * Request routing: path patterns with `:param` segments, per-method handlers and scopes, strict
 * query parameters, the access checks (Host, Origin/CORS, token and scope, JSON content type)
 * and the 404/405 answers (405 with `Allow`). Every refusal is the one JSON error format.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Scope } from '../auth/tokens.js'
import { SledlogError, sledlogError } from '../errors.js'
import {
  answerPreflight,
  authorize,
  bearerChallenge,
  checkHost,
  checkJsonContentType,
  checkOrigin,
  setCorsHeaders,
} from './access.js'
import { assertAcceptingWrites, type ApiContext, type Handler } from './context.js'
import { checkParams, type ParamSpec } from './params.js'
import { sendError } from './respond.js'

/** A method's handler, the query parameters it accepts (none when absent) and the scope it needs. */
export interface MethodSpec {
  readonly handler: Handler
  readonly params?: ParamSpec
  /** The token scope the request needs; null: open to anyone (liveness). */
  readonly scope: Scope | null | ((url: URL) => Scope)
}

/** A route: a path pattern (`/v1/consumers/:name`) and its methods. */
export interface Route {
  readonly path: string
  readonly methods: Readonly<Record<string, MethodSpec>>
}

/** Matches `pathname` against a pattern; returns the decoded path parameters, or null. */
export function matchPath(pattern: string, pathname: string): Record<string, string> | null {
  const want = pattern.split('/')
  const got = pathname.split('/')
  if (want.length !== got.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as string
    const g = got[i] as string
    if (w.startsWith(':')) {
      if (g === '') return null
      try {
        params[w.slice(1)] = decodeURIComponent(g)
      } catch {
        throw sledlogError(
          'HTTP_BAD_REQUEST',
          `path segment ${JSON.stringify(g.slice(0, 80))} is not valid percent-encoding`,
        )
      }
    } else if (w !== g) return null
  }
  return params
}

/** Finds the route of a path, or throws HTTP_NOT_FOUND. */
function findRoute(routes: readonly Route[], pathname: string): { route: Route; path: Record<string, string> } {
  for (const route of routes) {
    const path = matchPath(route.path, pathname)
    if (path !== null) return { route, path }
  }
  throw sledlogError('HTTP_NOT_FOUND', `no route ${pathname.slice(0, 200)}`)
}

/** The handler of a method on a route, or HTTP_METHOD_NOT_ALLOWED. */
function methodOf(route: Route, method: string): MethodSpec {
  // hasOwn: a method named like an Object.prototype member must not find a "handler".
  const spec = Object.hasOwn(route.methods, method) ? route.methods[method] : undefined
  if (spec !== undefined) return spec
  const allow = Object.keys(route.methods).join(', ')
  throw sledlogError('HTTP_METHOD_NOT_ALLOWED', `${method} is not allowed on ${route.path} (allowed: ${allow})`, {
    allow,
  })
}

/** Response headers an error carries: `Allow` on 405, `Retry-After` on 429, the challenge on 401. */
function errorHeaders(err: unknown): Record<string, string> {
  if (!(err instanceof SledlogError)) return {}
  const d = err.details ?? {}
  if (err.code === 'HTTP_METHOD_NOT_ALLOWED' && typeof d.allow === 'string') return { allow: d.allow }
  if ((err.code === 'HTTP_TOO_MANY_STREAMS' || err.code === 'BACKUP_BUSY') && typeof d.retryAfter === 'number')
    return { 'retry-after': String(d.retryAfter) }
  if (err.code === 'HTTP_UNAUTHORIZED') return { 'www-authenticate': bearerChallenge(d.reason) }
  return {}
}

/** Creates the request handler for `routes`. */
export function createRouter(
  ctx: ApiContext,
  routes: readonly Route[],
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const method = req.method ?? 'GET'
    try {
      const target = req.url ?? '/'
      // Only origin-form targets: `new URL('//host/x', base)` would read a host out of the path.
      if (!target.startsWith('/')) throw sledlogError('HTTP_NOT_FOUND', 'request target must be a path')
      checkHost(req, ctx.access)
      const cors = checkOrigin(req, ctx.access)
      if (cors !== null) setCorsHeaders(res, cors)
      const url = new URL(`http://node${target}`)
      const { route, path } = findRoute(routes, url.pathname)
      if (method === 'OPTIONS' && cors !== null && req.headers['access-control-request-method'] !== undefined) {
        answerPreflight(res, Object.keys(route.methods))
        return
      }
      const spec = methodOf(route, method)
      const scope = typeof spec.scope === 'function' ? spec.scope(url) : spec.scope
      const principal = authorize(req, ctx.access.tokens, scope)
      checkParams(url.searchParams, spec.params ?? {})
      if (method === 'POST') checkJsonContentType(req)
      if (method !== 'GET' && method !== 'HEAD') assertAcceptingWrites(ctx)
      await spec.handler(ctx, { req, res, url, path, principal })
    } catch (err) {
      if (!(err instanceof SledlogError))
        ctx.logger.error({ err, method, url: req.url?.slice(0, 200) }, 'internal error answering a request')
      sendError(res, err, errorHeaders(err))
    }
  }
}

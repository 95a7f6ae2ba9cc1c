/**
 * Request routing: path patterns with `:param` segments, per-method handlers, strict query
 * parameters, and the 404/405 answers (405 with `Allow`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SledlogError, sledlogError } from '../errors.js'
import { assertAcceptingWrites, type ApiContext, type Handler } from './context.js'
import { checkParams, type ParamSpec } from './params.js'
import { sendError } from './respond.js'

/** A method's handler and the query parameters it accepts (none when absent). */
export interface MethodSpec {
  readonly handler: Handler
  readonly params?: ParamSpec
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

/** Finds the route and handler for a request, or throws HTTP_NOT_FOUND / HTTP_METHOD_NOT_ALLOWED. */
function resolve(
  routes: readonly Route[],
  method: string,
  pathname: string,
): { spec: MethodSpec; path: Record<string, string> } {
  for (const route of routes) {
    const path = matchPath(route.path, pathname)
    if (path === null) continue
    // hasOwn: a method named like an Object.prototype member must not find a "handler".
    const spec = Object.hasOwn(route.methods, method) ? route.methods[method] : undefined
    if (spec === undefined) {
      const allow = Object.keys(route.methods).join(', ')
      throw sledlogError('HTTP_METHOD_NOT_ALLOWED', `${method} is not allowed on ${route.path} (allowed: ${allow})`, {
        allow,
      })
    }
    return { spec, path }
  }
  throw sledlogError('HTTP_NOT_FOUND', `no route ${pathname.slice(0, 200)}`)
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
      const url = new URL(`http://node${target}`)
      const { spec, path } = resolve(routes, method, url.pathname)
      checkParams(url.searchParams, spec.params ?? {})
      if (method !== 'GET' && method !== 'HEAD') assertAcceptingWrites(ctx)
      await spec.handler(ctx, { req, res, url, path })
    } catch (err) {
      if (!(err instanceof SledlogError))
        ctx.logger.error({ err, method, url: req.url?.slice(0, 200) }, 'internal error answering a request')
      const allow =
        err instanceof SledlogError && err.code === 'HTTP_METHOD_NOT_ALLOWED' ? err.details?.allow : undefined
      sendError(res, err, typeof allow === 'string' ? { allow } : {})
    }
  }
}

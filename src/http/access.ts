/**
 * Who may talk to the API, checked before any handler runs (docs/SECURITY.md): the Host header
 * (DNS rebinding), the browser Origin and CORS, the request's content type (so a cross-origin
 * form or text POST never reaches a handler), and the bearer token with the route's scope.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import { hasScope, type Scope } from '../auth/tokens.js'
import type { TokenStore } from '../auth/token-store.js'
import { sledlogError } from '../errors.js'

/** What the access checks need to know about the node. */
export interface AccessOptions {
  /** The API tokens; null or an empty store means an open API (allowed on loopback only). */
  readonly tokens: TokenStore | null
  /** The host the node listens on (a name there is answered as well as loopback and IPs). */
  readonly listenHost: string
  /** More Host names to answer (the node's public DNS names). */
  readonly allowedHosts: readonly string[]
  /** Browser origins allowed cross-origin (`https://app.example.com`). */
  readonly corsOrigins: readonly string[]
  /** True when the node serves HTTPS (the scheme of its own origin). */
  readonly tls: boolean
}

/** Headers a browser may send cross-origin besides the CORS-safelisted ones. */
const CORS_REQUEST_HEADERS = 'authorization, content-type, last-event-id'
/** Response headers a cross-origin script may read. */
const CORS_EXPOSED_HEADERS = 'www-authenticate, allow, retry-after'

/** Lower-cased host name of a Host header value, without port, brackets or a trailing dot. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase()
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') < 0 ? h.length : h.indexOf(']')) : h.replace(/:\d*$/, '')
  return name.endsWith('.') ? name.slice(0, -1) : name
}

/** Normalises an origin or `allowedHosts`-style value for comparison. */
function normOrigin(o: string): string {
  return o.trim().toLowerCase().replace(/\/+$/, '')
}

/**
 * Throws HTTP_HOST_NOT_ALLOWED unless the Host header names loopback, an IP literal, the listen
 * host or an allowed host. A rebinding attack reaches the node under the attacker's DNS name,
 * which is none of these; an IP literal cannot be rebound.
 */
export function checkHost(req: IncomingMessage, o: AccessOptions): void {
  const header = req.headers.host
  // HTTP/1.1 requires Host (Node answers 400 without one); HTTP/1.0 may omit it: no name, no rebinding.
  if (header === undefined) return
  const name = hostName(header)
  if (name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0) return
  if (name === hostName(o.listenHost)) return
  if (o.allowedHosts.some((h) => hostName(h) === name)) return
  throw sledlogError(
    'HTTP_HOST_NOT_ALLOWED',
    `Host ${JSON.stringify(header.slice(0, 100))} is not this node's; ` +
      'add it to allowedHosts (--allowed-host) to serve it',
  )
}

/**
 * Checks the Origin header of a browser request: none (not a browser, or a same-origin GET), the
 * node's own origin, or a configured CORS origin. Returns the origin to answer with CORS headers,
 * or null; throws HTTP_ORIGIN_NOT_ALLOWED otherwise.
 */
export function checkOrigin(req: IncomingMessage, o: AccessOptions): string | null {
  const origin = req.headers.origin
  if (origin === undefined) return null
  const want = normOrigin(origin)
  if (o.corsOrigins.some((c) => normOrigin(c) === want)) return origin
  const host = req.headers.host
  if (host !== undefined && want === `${o.tls ? 'https' : 'http'}://${host.trim().toLowerCase()}`) return null
  throw sledlogError('HTTP_ORIGIN_NOT_ALLOWED', `Origin ${JSON.stringify(origin.slice(0, 100))} is not allowed`)
}

/** Sets the CORS headers every answer to an allowed cross-origin request carries. */
export function setCorsHeaders(res: ServerResponse, origin: string): void {
  res.setHeader('access-control-allow-origin', origin)
  res.setHeader('access-control-expose-headers', CORS_EXPOSED_HEADERS)
  res.setHeader('vary', 'Origin')
}

/** Answers a CORS preflight for an allowed origin: 204 with the route's methods. */
export function answerPreflight(res: ServerResponse, methods: readonly string[]): void {
  res.writeHead(204, {
    'access-control-allow-methods': methods.join(', '),
    'access-control-allow-headers': CORS_REQUEST_HEADERS,
    'access-control-max-age': '600',
    'content-length': 0,
  })
  res.end()
}

/**
 * Throws HTTP_UNSUPPORTED_MEDIA_TYPE unless the request declares a JSON body. Browsers send
 * `text/plain`, form and multipart bodies cross-origin without asking first; `application/json`
 * needs a preflight, which only configured origins pass.
 */
export function checkJsonContentType(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type === 'application/json') return
  throw sledlogError(
    'HTTP_UNSUPPORTED_MEDIA_TYPE',
    'the request body must be sent as Content-Type: application/json' +
      (type === '' ? '' : ` (got ${JSON.stringify(type?.slice(0, 80))})`),
  )
}

/**
 * Who made a request: a token, or (no valid token) the remote address; `open` says the API needs
 * no token at all.
 */
export type Principal =
  | { readonly kind: 'token'; readonly id: string; readonly scopes: readonly Scope[] }
  | { readonly kind: 'address'; readonly address: string; readonly open: boolean }

/** True when the principal may read (an open API, or a token with the read scope). */
export function mayRead(p: Principal): boolean {
  return p.kind === 'token' ? hasScope(p.scopes, 'read') : p.open
}

/** A key to count a principal's streams under. */
export function principalKey(p: Principal): string {
  return p.kind === 'token' ? `token:${p.id}` : `address:${p.address}`
}

/**
 * Checks the bearer token against the route's scope (null: open route). Returns the principal;
 * throws HTTP_UNAUTHORIZED (no or bad token) or HTTP_FORBIDDEN (token without the scope).
 */
export function authorize(req: IncomingMessage, tokens: TokenStore | null, scope: Scope | null): Principal {
  const open = tokens === null || !tokens.required
  const address: Principal = { kind: 'address', address: req.socket.remoteAddress ?? '?', open }
  if (tokens === null || open) return address
  const header = req.headers.authorization
  const auth = tokens.authenticate(header)
  if (!auth.ok) {
    if (scope === null) return address
    throw sledlogError(
      'HTTP_UNAUTHORIZED',
      auth.reason === 'missing'
        ? 'this node requires an API token: send Authorization: Bearer <token> (sledlog token create)'
        : 'the API token is unknown, malformed or revoked',
      { reason: auth.reason },
    )
  }
  if (scope !== null && !hasScope(auth.token.scopes, scope)) {
    throw sledlogError('HTTP_FORBIDDEN', `token ${auth.token.id} lacks the ${scope} scope this route needs`, {
      scope,
    })
  }
  return { kind: 'token', id: auth.token.id, scopes: auth.token.scopes }
}

/** The `WWW-Authenticate` challenge of a 401 (RFC 6750). */
export function bearerChallenge(reason: unknown): string {
  return reason === 'invalid' ? 'Bearer realm="sledlog", error="invalid_token"' : 'Bearer realm="sledlog"'
}

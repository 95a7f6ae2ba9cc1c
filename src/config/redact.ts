/**
 * What messages and logs may show of a URL: everything but its credentials. An operator pastes
 * `http://user:password@host` once; the password must not then sit in every error, log line
 * and terminal scrollback that echoes the URL.
 */

/**
 * A scheme, `://`, then everything up to the last `@` before the next whitespace or quote. Greedy
 * on purpose: a password holding `/` or `@` makes the URL unparseable, and unparseable URLs are
 * exactly the ones error messages echo; a path with an `@` in it is over-redacted, which is fine.
 */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s"'<>`]*@/gi

/**
 * `text` with the user:password part of every URL in it replaced by `***`. Works on a bare URL
 * and on a whole message with URLs inside, valid or not.
 */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1***@')
}

/** True when `text` holds a URL with credentials (a user, a password or both). */
export function hasUrlCredentials(text: string): boolean {
  return new RegExp(USERINFO.source, 'i').test(text)
}

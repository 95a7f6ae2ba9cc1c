/**
 * Text on its way to a terminal. Entry types, payloads, ids, error messages and status fields
 * come from peers and remote nodes: a raw ESC starts an escape sequence (move the cursor, rewrite
 * the screen or the window title, on some terminals worse), a C1 control does the same in 8-bit
 * form, and a bidi override (U+202E) makes text read differently from what it is. So every such
 * character is shown as a visible escape, never written raw.
 */

/**
 * C0 controls, DEL, C1 controls, the line and paragraph separators, and the bidi controls (marks,
 * embeddings, overrides, isolates).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** The same set without C0, which JSON.stringify already escapes. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

const hex = (c: string, width: number): string => (c.codePointAt(0) ?? 0).toString(16).padStart(width, '0')

function escaped(c: string): string {
  const code = c.codePointAt(0) ?? 0
  return SHORT[c] ?? (code <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`)
}

/** `text` with every control and bidi character as a visible escape (`\x1b`, `\n`, `\u202e`). */
export function visible(text: string): string {
  return text.replace(UNSAFE, escaped)
}

/** Like {@link visible}, but keeps line breaks: for multi-line messages. */
export function visibleLines(text: string): string {
  return text.split('\n').map(visible).join('\n')
}

/**
 * `value` as one line of JSON that is also safe on a terminal. JSON.stringify escapes C0 but
 * leaves DEL, C1 and the bidi controls raw; escaping them as `\uXXXX` gives the same JSON value.
 */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`)
}

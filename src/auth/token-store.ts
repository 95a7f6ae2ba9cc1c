/**
 * The node's view of its API tokens file: loaded at start, reloaded when the file changes (so
 * `sledlog token revoke` takes effect without a restart), and consulted for every request.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs'
import { hasScope, readTokensFile, verifyToken, type Scope, type TokenRecord } from './tokens.js'

/** Where the store reports reloads and failures (a pino logger fits). */
export interface TokenStoreLogger {
  warn(obj: Readonly<Record<string, unknown>>, msg: string): void
  error(obj: Readonly<Record<string, unknown>>, msg: string): void
}

/** The outcome of checking a request's credentials. */
export type AuthResult =
  | { readonly ok: true; readonly token: TokenRecord }
  | { readonly ok: false; readonly reason: 'missing' | 'invalid' }

/** How often the file's metadata is polled for changes, ms. */
const POLL_MS = 250

/**
 * Lifecycle: `start()` → `stop()`. Authentication is required once the file has held a token;
 * from then on it stays required until the node restarts, whatever happens to the file: a
 * deleted, emptied or broken file means no token is valid (fail closed), never an open API.
 */
export class TokenStore {
  readonly #path: string
  readonly #logger: TokenStoreLogger | undefined
  #tokens = new Map<string, TokenRecord>()
  #required = false
  #watching = false
  #generation = 0
  readonly #listeners = new Set<() => void>()
  readonly #onChange = (cur: Stats, prev: Stats): void => {
    // Mode and owner too: a chmod or chown leaves mtime alone, and a file others may now
    // write must stop granting tokens at once, not at its next write.
    const changed =
      cur.mtimeMs !== prev.mtimeMs ||
      cur.ino !== prev.ino ||
      cur.size !== prev.size ||
      cur.mode !== prev.mode ||
      cur.uid !== prev.uid
    if (changed) void this.reload()
  }

  constructor(path: string, logger?: TokenStoreLogger) {
    this.#path = path
    this.#logger = logger
  }

  /** The file's path. */
  get path(): string {
    return this.#path
  }

  /** True when requests need a token (the file has held at least one since start). */
  get required(): boolean {
    return this.#required
  }

  /** Tokens currently valid. */
  get size(): number {
    return this.#tokens.size
  }

  /** Loads the file (a broken or group-writable one fails the start) and watches it. */
  async start(): Promise<void> {
    this.#set((await readTokensFile(this.#path)) ?? [])
    this.#watching = true
    watchFile(this.#path, { interval: POLL_MS, persistent: false }, this.#onChange)
  }

  /** Reads the file again; on failure no token is valid until a later reload succeeds. */
  async reload(): Promise<void> {
    const generation = ++this.#generation
    try {
      const records = (await readTokensFile(this.#path)) ?? []
      if (generation !== this.#generation || !this.#watching) return
      const before = this.#tokens.size
      this.#set(records)
      this.#logger?.warn({ path: this.#path, tokens: records.length, before }, 'API tokens file reloaded')
    } catch (err) {
      if (generation !== this.#generation || !this.#watching) return
      this.#tokens = new Map()
      this.#required = true
      this.#logger?.error(
        { path: this.#path, err: (err as Error).message },
        'API tokens file unreadable: every token is refused until it is fixed',
      )
    }
    for (const listener of [...this.#listeners]) listener()
  }

  /**
   * Calls `listener` after every reload (successful or not); returns the function that stops
   * it. Long-lived requests (event streams) use it to end once their token is revoked.
   */
  onReload(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** True while token `id` is valid and has `scope` (a request authenticated earlier may lose it). */
  allows(id: string, scope: Scope): boolean {
    const record = this.#tokens.get(id)
    return record !== undefined && hasScope(record.scopes, scope)
  }

  /** Checks an `Authorization` header value. The token itself is never logged or echoed. */
  authenticate(header: string | undefined): AuthResult {
    if (header === undefined || header === '') return { ok: false, reason: 'missing' }
    const m = /^Bearer +(\S+) *$/i.exec(header)
    if (m === null) return { ok: false, reason: 'invalid' }
    const token = verifyToken(this.#tokens, m[1] as string)
    return token === null ? { ok: false, reason: 'invalid' } : { ok: true, token }
  }

  /** Stops watching the file. */
  stop(): void {
    if (!this.#watching) return
    this.#watching = false
    // Only this store's listener: another store in the process may watch the same file.
    unwatchFile(this.#path, this.#onChange)
  }

  #set(records: readonly TokenRecord[]): void {
    this.#tokens = new Map(records.map((r) => [r.id, r]))
    if (records.length > 0) this.#required = true
  }
}

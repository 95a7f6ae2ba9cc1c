/**
 * Recognises the disk failures an operator must act on (full, read-only, not permitted) in
 * whatever shape they arrive: a Node system error (`code`, `path`) or a LevelDB error whose cause
 * reads "IO error: <path>: <strerror>", and says in one line what happened and what to do.
 */

/** The disk failures told apart. */
export type DiskCode = 'ENOSPC' | 'EDQUOT' | 'EROFS' | 'EACCES' | 'EPERM'

/** A disk failure: what and, when known, on which path. */
export interface DiskProblem {
  readonly code: DiskCode
  readonly path?: string
}

/** strerror(3) texts LevelDB puts in its messages, by code. */
const STRERROR: ReadonlyArray<[DiskCode, string]> = [
  ['ENOSPC', 'No space left on device'],
  ['EDQUOT', 'Disk quota exceeded'],
  ['EROFS', 'Read-only file system'],
  ['EACCES', 'Permission denied'],
  ['EPERM', 'Operation not permitted'],
]

/** The disk problem behind `err` (searching its causes), if it is one. */
export function diskProblem(err: unknown): DiskProblem | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code
    const found = STRERROR.find(([c]) => c === code)
    if (found !== undefined) {
      const path = (e as NodeJS.ErrnoException).path
      return path === undefined ? { code: found[0] } : { code: found[0], path }
    }
    for (const [c, text] of STRERROR) {
      if (!e.message.includes(text)) continue
      const m = /IO error: (.+): [^:]+$/.exec(e.message)
      return m?.[1] === undefined ? { code: c } : { code: c, path: m[1] }
    }
  }
  return undefined
}

/** True for the problems a reader can get around by reading a copy (the disk is fine to read). */
export function isReadOnly(p: DiskProblem): boolean {
  return p.code === 'EROFS' || p.code === 'EACCES' || p.code === 'EPERM'
}

/** Who is writing, for the advice: a node's start or a command writing a data directory. */
export type DiskRole = 'node' | 'write'

/** The one-line explanation of `p` for a writer of data directory `dir`. */
export function diskMessage(p: DiskProblem, dir: string, role: DiskRole): string {
  const where = p.path ?? dir
  const other = role === 'node' ? 'give --data a directory on another disk' : 'use a data directory on another disk'
  switch (p.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return (
        `the disk holding ${where} is full (${p.code}${p.code === 'EDQUOT' ? ': quota exceeded' : ''}): ` +
        `free space on it, or ${other}; nothing stored was lost`
      )
    case 'EROFS':
      return (
        `${where} is on a read-only file system (EROFS): ` +
        `remount it read-write, or ${other} (read, status and verify can read it as it is)`
      )
    default: {
      const who = typeof process.getuid === 'function' ? ` as user ${process.getuid()}` : ''
      return (
        `no permission to write ${where} (${p.code})${who}: ` +
        `run as the owner of ${dir}, or give this user the directory (chown -R)`
      )
    }
  }
}

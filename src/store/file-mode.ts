/**
 * Permission checks for files that hold a secret (the node key, a client's token file) or grant
 * access (the node's tokens file): whoever besides the owner may read a secret, or write a grant,
 * has it, so such a file is refused or warned about before it is used. One check, so the three
 * files judge modes the same way and quote the mode the same way in their messages.
 */
import { stat } from 'node:fs/promises'

/** Group or others may do anything: a secret must grant none of these (ssh's rule for keys). */
export const GROUP_OTHER_ANY = 0o077

/** Group or others may write: a file that grants access must not allow this. */
export const GROUP_OTHER_WRITE = 0o022

/** Mode and owner of a file. */
export interface FileOwnership {
  readonly mode: number
  readonly uid: number
}

/** Mode and owner of the file at `path`; undefined when there is none (ENOENT), other errors thrown. */
export async function fileOwnership(path: string): Promise<FileOwnership | undefined> {
  try {
    const { mode, uid } = await stat(path)
    return { mode, uid }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** The mode of the file at `path`; undefined when there is none (ENOENT), other errors thrown. */
export async function fileMode(path: string): Promise<number | undefined> {
  return (await fileOwnership(path))?.mode
}

/**
 * The owner's uid when it is neither this process's user nor root (its owner may write the
 * file whatever its mode); undefined otherwise, and where uids do not exist (Windows).
 */
export function foreignOwner(uid: number): number | undefined {
  const me = process.getuid?.()
  return me === undefined || uid === me || uid === 0 ? undefined : uid
}

/**
 * The permission bits of `mode` in octal (`644`, for messages) when they give group or others
 * any of the `forbidden` bits; undefined when the file is private enough.
 */
export function looseMode(mode: number, forbidden: number): string | undefined {
  return (mode & forbidden) === 0 ? undefined : (mode & 0o777).toString(8)
}

/**
 * Makes Yjs appends of `ContentAny` linear (DESIGN.md "O(n²) appends").
 *
 * Yjs merges consecutive items of one client with `ContentAny.mergeWith`, which does
 * `this.arr = this.arr.concat(right.arr)`: O(n) per append, O(n²) for a log written one entry at
 * a time (100k appends ~30 s, 1M ~50 min). Pushing onto the left array in place is equivalent
 * because the right item is discarded after a merge; the only other holder of a content array is
 * `ContentAny.copy()`, used by the UndoManager's redo, which sledlog never uses.
 */
import { ContentAny } from 'yjs'

const PATCHED = Symbol.for('sledlog.linearContentAnyMerge')

/** Installs the in-place merge on yjs' `ContentAny` (idempotent; affects this yjs instance). */
export function installLinearMerge(): void {
  const proto = ContentAny.prototype as ContentAny & { [PATCHED]?: true }
  if (proto[PATCHED]) return
  proto.mergeWith = function mergeInPlace(this: ContentAny, right: ContentAny): boolean {
    const src = right.arr
    const dst = this.arr
    for (let i = 0; i < src.length; i++) dst.push(src[i])
    return true
  }
  proto[PATCHED] = true
}

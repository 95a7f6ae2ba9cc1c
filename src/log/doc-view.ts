/**
 * Read access to the records a Yjs doc holds, by (client, clock), straight from its struct store.
 *
 * The doc is the index: with clock == seq, the record at seq k of a sled is element
 * `k - item.clock` of the item covering clock k in that client's struct list, found by binary
 * search. No second copy of the records is kept.
 */
import * as Y from 'yjs'
import type { LogView } from '../core/guard.js'
import type { Run } from '../core/update-codec.js'

/** A {@link LogView} over a Yjs doc's struct store. */
export function docView(doc: Y.Doc): LogView & { records(client: number, from: number, to: number): string[] } {
  const recordAt = (client: number, clock: number): string | undefined => {
    const structs = doc.store.clients.get(client)
    if (structs === undefined || clock < 0) return undefined
    const last = structs[structs.length - 1]
    if (last === undefined || clock >= last.id.clock + last.length) return undefined
    const item = structs[Y.findIndexSS(structs, clock)]
    if (!(item instanceof Y.Item) || !(item.content instanceof Y.ContentAny)) return undefined
    return item.content.arr[clock - item.id.clock] as string
  }
  return {
    length: (client) => Y.getState(doc.store, client),
    recordAt,
    /** Records of `client` in [from, to), walking items instead of searching each. */
    records(client, from, to) {
      const out: string[] = []
      const structs = doc.store.clients.get(client)
      if (structs === undefined || from >= to) return out
      for (let i = Y.findIndexSS(structs, from); i < structs.length && from < to; i++) {
        const item = structs[i]
        if (!(item instanceof Y.Item) || !(item.content instanceof Y.ContentAny)) break
        const arr = item.content.arr
        const stop = Math.min(to, item.id.clock + arr.length)
        for (let c = from; c < stop; c++) out.push(arr[c - item.id.clock] as string)
        from = stop
      }
      return out
    },
  }
}

/** A view of `base` plus runs staged on top of it (for checking a batch before it is applied). */
export function overlayView(base: LogView): LogView & { stage(run: Run): void } {
  const staged = new Map<number, { start: number; records: string[] }>()
  return {
    length(client) {
      const s = staged.get(client)
      return s === undefined ? base.length(client) : s.start + s.records.length
    },
    recordAt(client, clock) {
      const s = staged.get(client)
      if (s === undefined || clock < s.start) return base.recordAt(client, clock)
      return s.records[clock - s.start]
    },
    stage(run) {
      const s = staged.get(run.client)
      if (s === undefined) staged.set(run.client, { start: run.clock, records: [...run.records] })
      else for (const r of run.records) s.records.push(r)
    },
  }
}

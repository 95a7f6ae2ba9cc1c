/**
 * Who gets a slot on a node's sync endpoint when strangers crowd it (docs/PROTOCOL.md §8.2).
 * Pure.
 *
 * Handshake slots: a connection holds one from its upgrade until it authenticates. An honest
 * peer needs it for milliseconds; a stranger can hold it up to the handshake timeout. So when
 * every slot is taken, the newcomer gets one and the oldest pending handshake of the address
 * holding the most slots loses its own: strangers can slow each other down but cannot keep a
 * real peer from authenticating. One address may hold at most `perAddress` slots (a newcomer
 * from an address at its cap is refused: 429).
 *
 * Links: past the link cap an authenticated newcomer is admitted only by evicting someone: a
 * link of the same sled (a restarting peer whose old link is not yet known dead), else, for a
 * preferred peer (on the allow-list, or one this node dials, or a signed successor of one: see
 * server.ts), the oldest link of a peer that is not preferred. Everyone else is refused (4512)
 * and retries with backoff.
 */
import type { SledId } from '../core/ids.js'

/** Caps of the handshake slots. */
export interface HandshakeCaps {
  readonly perAddress: number
  readonly total: number
}

/** What {@link HandshakeSlots.admit} decided. */
export type SlotVerdict<T> =
  | { readonly admitted: false }
  | { readonly admitted: true /** A pending handshake to close to make room. */; readonly evict: T | null }

/** Pending handshakes per remote address, oldest first. */
export class HandshakeSlots<T> {
  readonly #caps: HandshakeCaps
  readonly #byAddress = new Map<string, Array<{ readonly item: T; readonly seq: number }>>()
  #seq = 0
  #total = 0

  constructor(caps: HandshakeCaps) {
    this.#caps = caps
  }

  /** Pending handshakes, from `address` or in all. */
  count(address?: string): number {
    return address === undefined ? this.#total : (this.#byAddress.get(address)?.length ?? 0)
  }

  /**
   * Gives `item` from `address` a slot unless its address is at its cap. When every slot is
   * taken, the oldest item of the address holding the most is removed and returned to evict.
   */
  admit(address: string, item: T): SlotVerdict<T> {
    if (this.count(address) >= this.#caps.perAddress) return { admitted: false }
    let evict: T | null = null
    if (this.#total >= this.#caps.total) {
      evict = this.#victim()
      if (evict !== null) this.release(evict)
    }
    const list = this.#byAddress.get(address) ?? []
    list.push({ item, seq: this.#seq++ })
    this.#byAddress.set(address, list)
    this.#total++
    return { admitted: true, evict }
  }

  /** Frees `item`'s slot (authenticated or closed); no-op when it holds none. */
  release(item: T): void {
    for (const [address, list] of this.#byAddress) {
      const i = list.findIndex((e) => e.item === item)
      if (i < 0) continue
      list.splice(i, 1)
      this.#total--
      if (list.length === 0) this.#byAddress.delete(address)
      return
    }
  }

  /** The oldest item of the address holding the most slots (ties: the oldest item). */
  #victim(): T | null {
    let best: { readonly item: T; readonly seq: number } | null = null
    let bestCount = 0
    for (const list of this.#byAddress.values()) {
      const first = list[0]
      if (first === undefined) continue
      if (list.length > bestCount || (list.length === bestCount && best !== null && first.seq < best.seq)) {
        best = first
        bestCount = list.length
      }
    }
    return best?.item ?? null
  }
}

/** What the link policy needs of an open, authenticated link. */
export interface AdmittedLink {
  readonly sled: SledId
  readonly preferred: boolean
  /** Opened at, ms since the epoch (or any increasing counter). */
  readonly openedAt: number
}

/** What {@link admitLink} decided. */
export type LinkVerdict<L> =
  | { readonly admitted: false }
  | { readonly admitted: true /** A link to close to make room. */; readonly evict: L | null }

/**
 * Admits a newly authenticated link given the `open` ones (not counting it) and the cap.
 * Below the cap: admitted. At it: evict the oldest link of the same sled, else (for a preferred
 * newcomer) the oldest link of a peer that is not preferred, else refuse.
 */
export function admitLink<L extends AdmittedLink>(
  newcomer: { readonly sled: SledId; readonly preferred: boolean },
  open: readonly L[],
  cap: number,
): LinkVerdict<L> {
  if (open.length < cap) return { admitted: true, evict: null }
  const oldest = (pred: (l: L) => boolean): L | null => {
    let best: L | null = null
    for (const l of open) if (pred(l) && (best === null || l.openedAt < best.openedAt)) best = l
    return best
  }
  const same = oldest((l) => l.sled === newcomer.sled)
  if (same !== null) return { admitted: true, evict: same }
  if (!newcomer.preferred) return { admitted: false }
  const stranger = oldest((l) => !l.preferred)
  return stranger === null ? { admitted: false } : { admitted: true, evict: stranger }
}

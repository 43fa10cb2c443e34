/**
 * Where a client remembers the URLs of unfinished uploads, keyed by a
 * fingerprint of the source, so that another run (another process, after a
 * crash or a reboot) resumes instead of sending everything again.
 */

export interface URLStorageEntry {
  /** The upload URL; null for a parallel upload (see partialUrls). */
  uploadUrl: string | null
  /** For a parallel upload: the URLs of its partial uploads, in order. */
  partialUrls: string[] | null
  /** Size of the source when the upload was created, or null (a stream). */
  size: number | null
  metadata: Record<string, string>
  /** ISO 8601 time of creation. */
  createdAt: string
}

export interface URLStorage {
  /** Entries saved under `fingerprint`, oldest first; [] when none. */
  find (fingerprint: string): Promise<URLStorageEntry[]>
  /** Adds an entry, or replaces the one with the same URL (see entryKey). */
  save (fingerprint: string, entry: URLStorageEntry): Promise<void>
  /** Removes the entry holding `url` (as its upload URL or one of its partial URLs), or every entry of `fingerprint`. */
  remove (fingerprint: string, url?: string): Promise<void>
}

/** Entries kept per fingerprint; the oldest go first. Bounds a storage file that is never cleaned. */
export const MAX_ENTRIES_PER_FINGERPRINT = 10

/** What identifies an entry among those of one fingerprint. */
export const entryKey = (entry: URLStorageEntry): string => entry.uploadUrl ?? entry.partialUrls?.[0] ?? ''

export const entryHolds = (entry: URLStorageEntry, url: string): boolean =>
  entry.uploadUrl === url || (entry.partialUrls?.includes(url) ?? false)

/** The entries of one fingerprint after a save: replace by key or append, then trim to the limit. */
export function withEntry (entries: URLStorageEntry[], entry: URLStorageEntry): URLStorageEntry[] {
  const key = entryKey(entry)
  const next = entries.filter((e) => entryKey(e) !== key)
  next.push(entry)
  return next.slice(-MAX_ENTRIES_PER_FINGERPRINT)
}

export function withoutEntry (entries: URLStorageEntry[], url: string | undefined): URLStorageEntry[] {
  return url === undefined ? [] : entries.filter((e) => !entryHolds(e, url))
}

/** Entries in this process's memory: resume within one process (after an abort or a failure). */
export class InMemoryURLStorage implements URLStorage {
  readonly #entries = new Map<string, URLStorageEntry[]>()

  async find (fingerprint: string): Promise<URLStorageEntry[]> {
    return structuredClone(this.#entries.get(fingerprint) ?? [])
  }

  async save (fingerprint: string, entry: URLStorageEntry): Promise<void> {
    this.#entries.set(fingerprint, withEntry(this.#entries.get(fingerprint) ?? [], structuredClone(entry)))
  }

  async remove (fingerprint: string, url?: string): Promise<void> {
    const left = withoutEntry(this.#entries.get(fingerprint) ?? [], url)
    if (left.length === 0) this.#entries.delete(fingerprint)
    else this.#entries.set(fingerprint, left)
  }
}

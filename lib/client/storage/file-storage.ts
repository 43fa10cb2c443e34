/**
 * URL storage in one JSON file, safe with several processes using it at once:
 * - a change is a read-modify-write under a lock file created with O_EXCL, so
 *   two writers never lose each other's entries;
 * - the new content is written to a temp file and renamed over the old one, so
 *   a reader (which takes no lock) sees the old file or the new, never half;
 * - a lock left by a killed process is broken once it is older than
 *   `staleLockAge` (the lock is only held for a few milliseconds).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, stat, unlink, link } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { TusClientError } from '../errors.js'
import { sleep } from '../retry.js'
import { withEntry, withoutEntry, type URLStorage, type URLStorageEntry } from './url-storage.js'

interface StorageFile {
  version: 1
  uploads: Record<string, URLStorageEntry[]>
}

export interface FileURLStorageOptions {
  /** Give up waiting for the lock after this many ms. Default 10 000. */
  lockTimeout?: number
  /** A lock file older than this many ms is taken to be left by a dead process. Default 10 000. */
  staleLockAge?: number
}

/** Bounds the lock loop by count as well as by time. */
const MAX_LOCK_ATTEMPTS = 10_000

export class FileURLStorage implements URLStorage {
  readonly path: string
  readonly #lockPath: string
  readonly #lockTimeout: number
  readonly #staleLockAge: number

  constructor (path: string, options: FileURLStorageOptions = {}) {
    this.path = resolve(path)
    this.#lockPath = this.path + '.lock'
    this.#lockTimeout = options.lockTimeout ?? 10_000
    this.#staleLockAge = options.staleLockAge ?? 10_000
  }

  async find (fingerprint: string): Promise<URLStorageEntry[]> {
    const file = await this.#read()
    return file.uploads[fingerprint] ?? []
  }

  async save (fingerprint: string, entry: URLStorageEntry): Promise<void> {
    await this.#update((uploads) => { uploads[fingerprint] = withEntry(uploads[fingerprint] ?? [], entry) })
  }

  async remove (fingerprint: string, url?: string): Promise<void> {
    await this.#update((uploads) => {
      const left = withoutEntry(uploads[fingerprint] ?? [], url)
      if (left.length === 0) delete uploads[fingerprint]
      else uploads[fingerprint] = left
    })
  }

  async #read (): Promise<StorageFile> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, uploads: {} }
      throw err
    }
    try {
      const parsed = JSON.parse(text) as StorageFile
      if (parsed?.version !== 1 || typeof parsed.uploads !== 'object' || parsed.uploads === null) throw new Error('unknown layout')
      return parsed
    } catch (err) {
      throw new TusClientError(`URL storage ${this.path} is not a fastify-tus storage file (${(err as Error).message}); move it away to start afresh`, { code: 'ERR_TUS_STORAGE', cause: err })
    }
  }

  async #update (change: (uploads: Record<string, URLStorageEntry[]>) => void): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true })
    const token = await this.#lock()
    try {
      const file = await this.#read()
      change(file.uploads)
      await this.#replace(JSON.stringify(file, null, 1) + '\n')
    } finally {
      await this.#unlock(token)
    }
  }

  /** Write a temp file, flush it, rename it over the storage file. */
  async #replace (text: string): Promise<void> {
    const temp = `${this.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
    const handle = await open(temp, 'w', 0o600)
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await rename(temp, this.path)
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw err
    }
  }

  /** Takes the lock and answers the token written into it. */
  async #lock (): Promise<string> {
    const token = `${process.pid} ${randomBytes(8).toString('hex')}`
    const deadline = Date.now() + this.#lockTimeout
    for (let attempt = 0; attempt < MAX_LOCK_ATTEMPTS; attempt++) {
      try {
        const handle = await open(this.#lockPath, 'wx', 0o600)
        try {
          await handle.writeFile(token)
        } finally {
          await handle.close()
        }
        return token
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      if (await this.#breakIfStale()) continue
      if (Date.now() >= deadline) break
      await sleep(Math.min(100, 2 + attempt * 2) * (0.5 + Math.random() / 2))
    }
    throw new TusClientError(`URL storage ${this.path}: could not take the lock ${this.#lockPath} within ${this.#lockTimeout} ms`, { code: 'ERR_TUS_STORAGE' })
  }

  /** Releases the lock, unless it was broken as stale and is now someone else's. */
  async #unlock (token: string): Promise<void> {
    const current = await readFile(this.#lockPath, 'utf8').catch(() => null)
    if (current === token) await unlink(this.#lockPath).catch(() => {})
  }

  /**
   * Removes a lock older than staleLockAge. It is moved aside first (rename is
   * atomic) and checked to be the very file judged stale: if another process
   * broke it and took a fresh lock in between, that one is put back.
   */
  async #breakIfStale (): Promise<boolean> {
    const seen = await stat(this.#lockPath).catch(() => null)
    if (seen === null) return true // released meanwhile: try again at once
    if (Date.now() - seen.mtimeMs < this.#staleLockAge) return false
    const aside = `${this.#lockPath}.${process.pid}.${randomBytes(6).toString('hex')}.stale`
    try {
      await rename(this.#lockPath, aside)
    } catch {
      return true // someone else moved it first
    }
    const moved = await stat(aside).catch(() => null)
    if (moved !== null && moved.ino !== seen.ino) await link(aside, this.#lockPath).catch(() => {})
    await unlink(aside).catch(() => {})
    return true
  }
}

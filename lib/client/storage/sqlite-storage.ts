/**
 * URL storage in a SQLite file (better-sqlite3). SQLite does the locking, so
 * any number of processes can share the file; WAL lets readers run beside a
 * writer, and busy_timeout makes a writer wait for another instead of failing.
 */
import { createRequire } from 'node:module'
import type Database from 'better-sqlite3'
import { MAX_ENTRIES_PER_FINGERPRINT, entryHolds, entryKey, type URLStorage, type URLStorageEntry } from './url-storage.js'

interface Row { url_key: string; entry: string }

/** Loaded on first use: importing the client must not load a native addon nobody asked for. */
const loadDatabase = (): typeof Database => createRequire(import.meta.url)('better-sqlite3') as typeof Database

export class SQLiteURLStorage implements URLStorage {
  readonly #db: Database.Database

  constructor (path: string) {
    const Sqlite = loadDatabase()
    this.#db = new Sqlite(path)
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('busy_timeout = 10000')
    this.#db.exec(`CREATE TABLE IF NOT EXISTS tus_client_uploads (
      fingerprint TEXT NOT NULL,
      url_key TEXT NOT NULL,
      entry TEXT NOT NULL,
      saved_at INTEGER NOT NULL,
      PRIMARY KEY (fingerprint, url_key)
    )`)
  }

  async find (fingerprint: string): Promise<URLStorageEntry[]> {
    const rows = this.#db.prepare('SELECT url_key, entry FROM tus_client_uploads WHERE fingerprint = ? ORDER BY saved_at, rowid').all(fingerprint) as Row[]
    return rows.map((row) => JSON.parse(row.entry) as URLStorageEntry)
  }

  async save (fingerprint: string, entry: URLStorageEntry): Promise<void> {
    const db = this.#db
    db.transaction(() => {
      db.prepare('INSERT OR REPLACE INTO tus_client_uploads (fingerprint, url_key, entry, saved_at) VALUES (?, ?, ?, ?)')
        .run(fingerprint, entryKey(entry), JSON.stringify(entry), Date.now())
      // Keep only the newest entries of this fingerprint.
      db.prepare(`DELETE FROM tus_client_uploads WHERE fingerprint = ? AND rowid NOT IN (
        SELECT rowid FROM tus_client_uploads WHERE fingerprint = ? ORDER BY saved_at DESC, rowid DESC LIMIT ?)`)
        .run(fingerprint, fingerprint, MAX_ENTRIES_PER_FINGERPRINT)
    }).immediate()
  }

  async remove (fingerprint: string, url?: string): Promise<void> {
    const db = this.#db
    if (url === undefined) {
      db.prepare('DELETE FROM tus_client_uploads WHERE fingerprint = ?').run(fingerprint)
      return
    }
    db.transaction(() => {
      const rows = db.prepare('SELECT url_key, entry FROM tus_client_uploads WHERE fingerprint = ?').all(fingerprint) as Row[]
      const remove = db.prepare('DELETE FROM tus_client_uploads WHERE fingerprint = ? AND url_key = ?')
      for (const row of rows) if (entryHolds(JSON.parse(row.entry) as URLStorageEntry, url)) remove.run(fingerprint, row.url_key)
    }).immediate()
  }

  close (): void {
    this.#db.close()
  }
}

/**
 * Opens the metadata database. A string is a SQLite file path (the default);
 * a Kysely instance is used as is and left open for its owner to close.
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { TusDatabase } from './schema.js'

export interface OpenedDatabase {
  db: Kysely<TusDatabase>
  /** True when the plugin opened it and so must close it. */
  owned: boolean
}

export function openDatabase (option: string | Kysely<any>): OpenedDatabase {
  if (typeof option !== 'string') return { db: option as Kysely<TusDatabase>, owned: false }
  const path = option === ':memory:' ? option : resolve(option)
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const sqlite = new Database(path, { timeout: 5000 })
  // WAL lets readers (HEAD) proceed while a writer commits; NORMAL sync is safe
  // under WAL against process crashes, and a power loss can only lose offset
  // advances, leaving the offset behind the bytes, never ahead of them.
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  return { db: new Kysely<TusDatabase>({ dialect: new SqliteDialect({ database: sqlite }) }), owned: true }
}

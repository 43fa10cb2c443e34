/**
 * Opens the metadata database:
 * - a `postgres://` or `postgresql://` connection string opens PostgreSQL
 *   through Kysely's PostgresDialect on a `pg` Pool (pg is loaded only then);
 * - any other string is a SQLite file path (the default);
 * - a Kysely instance is used as is and left open for its owner to close.
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { SqliteDatabase } from 'kysely'
import { Kysely, PostgresAdapter, PostgresDialect, SqliteAdapter, SqliteDialect, sql } from './kysely.js'
import type BetterSqlite3 from 'better-sqlite3'
import type { TusDatabase } from './schema.js'
import { namingStatements } from './postgres-statements.js'

/** What the plugin needs to know about a database to pick its locking. */
export type DialectKind = 'sqlite' | 'postgres' | 'other'

export interface OpenedDatabase {
  db: Kysely<TusDatabase>
  /** True when the plugin opened it and so must close it. */
  owned: boolean
  kind: DialectKind
  /**
   * The same value for every opening of the same database (the SQLite file, the
   * PostgreSQL URL and schema, the Kysely instance given), a value of its own for
   * an in-memory one: what tells plugin instances on one table from instances on two.
   */
  identity: unknown
}

export interface OpenOptions {
  /** Connections in the pg Pool (PostgreSQL only). */
  poolSize?: number
  /** PostgreSQL schema to work in (created when missing); default: the connection's search_path. */
  schema?: string
  /** Told about errors of idle pooled connections (a server restart, a network cut). */
  onPoolError?: (err: Error) => void
}

export const isPostgresUrl = (value: string): boolean => /^postgres(ql)?:\/\//i.test(value)

/** Schema names the `schema` option accepts: plain identifiers, so they never need escaping in a connection option. */
export const isSchemaName = (value: string): boolean => /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(value)

/** Which SQL dialect a Kysely instance speaks, from its adapter (by class, or by name for another copy of Kysely). */
export function dialectOf (db: Kysely<any>): DialectKind {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof PostgresAdapter) return 'postgres'
  if (adapter instanceof SqliteAdapter) return 'sqlite'
  for (let proto = Object.getPrototypeOf(adapter); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const name = String(proto.constructor?.name ?? '')
    if (name === 'PostgresAdapter') return 'postgres'
    if (name === 'SqliteAdapter') return 'sqlite'
  }
  return 'other'
}

export async function openDatabase (option: string | Kysely<any>, options: OpenOptions = {}): Promise<OpenedDatabase> {
  if (typeof option !== 'string') {
    const db = option as Kysely<TusDatabase>
    return { db, owned: false, kind: dialectOf(db), identity: db }
  }
  if (isPostgresUrl(option)) return { ...await openPostgres(option, options), identity: `${option} schema=${options.schema ?? ''}` }
  const opened = await openSqlite(option)
  return { ...opened, identity: option === ':memory:' ? opened.db : `sqlite:${resolve(option)}` }
}

async function openSqlite (option: string): Promise<Omit<OpenedDatabase, 'identity'>> {
  const { default: Database } = await import('better-sqlite3')
  const path = option === ':memory:' ? option : resolve(option)
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const sqlite = new Database(path, { timeout: 5000 })
  // WAL lets readers (HEAD) proceed while a writer commits; NORMAL sync is safe
  // under WAL against process crashes, and a power loss can only lose offset
  // advances, leaving the offset behind the bytes, never ahead of them.
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  return { db: new Kysely<TusDatabase>({ dialect: new SqliteDialect({ database: reusingStatements(sqlite) }) }), owned: true, kind: 'sqlite' }
}

/** Distinct SQL texts kept prepared; the plugin's queries have a few dozen shapes. */
const STATEMENT_CACHE_SIZE = 256

/**
 * Kysely's SQLite driver prepares every query's SQL anew; preparing cost about
 * as much as running the statement on small uploads. The queries come in a few
 * fixed shapes, so each prepared statement is kept and reused (Kysely runs one
 * query at a time on its single connection, so a statement is never in use twice).
 */
function reusingStatements (sqlite: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>()
  return {
    prepare (sql: string) {
      let statement = statements.get(sql)
      if (statement === undefined) {
        statement = sqlite.prepare(sql)
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value as string)
        statements.set(sql, statement)
      }
      return statement
    },
    close () {
      statements.clear()
      sqlite.close()
    }
  }
}

async function openPostgres (url: string, options: OpenOptions): Promise<Omit<OpenedDatabase, 'identity'>> {
  // Loaded here so that SQLite users never load (or need) pg.
  const pg = await import('pg')
  const Pool = (pg.default ?? pg).Pool
  const { schema, poolSize = 10 } = options
  const pool = new Pool({
    connectionString: url,
    max: poolSize,
    // Every connection of the pool works in the schema; a search_path given in the URL wins.
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` })
  })
  // An idle connection that breaks must not crash the process: the pool replaces it.
  pool.on('error', (err) => options.onPoolError?.(err))
  const db = new Kysely<TusDatabase>({ dialect: new PostgresDialect({ pool: namingStatements(pool) }) })
  if (schema !== undefined) {
    try {
      await createSchema(db, schema)
    } catch (err) {
      await db.destroy()
      throw err
    }
  }
  return { db, owned: true, kind: 'postgres' }
}

/** CREATE SCHEMA IF NOT EXISTS can still fail when two processes run it at once: then it exists. */
async function createSchema (db: Kysely<any>, schema: string): Promise<void> {
  const exists = async (): Promise<boolean> => {
    const { rows } = await sql<{ n: number }>`select 1 as n from pg_namespace where nspname = ${schema}`.execute(db)
    return rows.length > 0
  }
  if (await exists()) return
  try {
    await db.schema.createSchema(schema).ifNotExists().execute()
  } catch (err) {
    if (!await exists()) throw err
  }
}

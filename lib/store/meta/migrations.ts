/**
 * Migrations as code, shipped in the package and run on start, the same on
 * SQLite and PostgreSQL. Every step is written to be harmless when repeated
 * (IF NOT EXISTS), because two processes starting at once may both get as far
 * as running it. On PostgreSQL, Kysely's migrator serialises them with an
 * advisory lock and runs each migration in a transaction.
 */
import type { Kysely, Migration } from 'kysely'
import { Migrator, sql } from './kysely.js'
import { dialectOf } from './dialects.js'

/**
 * The schema unqualified names resolve to on PostgreSQL (the first of the
 * search_path), so that introspection, which lists every schema, looks only at
 * ours; null elsewhere.
 */
async function currentSchema (db: Kysely<any>): Promise<string | null> {
  if (dialectOf(db) !== 'postgres') return null
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db)
  const schema = rows[0]?.schema ?? null
  if (schema === null) throw new Error('fastify-tus: no schema on the search_path exists; create it or set the schema option')
  return schema
}

/** The column names of a table of ours, or an empty set when it does not exist. */
async function columnsOf (db: Kysely<any>, name: string): Promise<Set<string>> {
  const schema = await currentSchema(db)
  if (schema === null) {
    const table = (await db.introspection.getTables()).find((t) => t.name === name)
    return new Set(table?.columns.map((c) => c.name))
  }
  // The catalog, for our schema only: Kysely's introspection looks at every
  // schema, and fails when one is dropped while it runs.
  const { rows } = await sql<{ name: string }>`
    select a.attname as name from pg_catalog.pg_attribute a
    join pg_catalog.pg_class c on c.oid = a.attrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = ${name} and a.attnum > 0 and not a.attisdropped`.execute(db)
  return new Set(rows.map((row) => row.name))
}

const migrations: Record<string, Migration> = {
  '2026-11-24-001-create-uploads': {
    async up (db: Kysely<any>): Promise<void> {
      await db.schema.createTable('tus_uploads').ifNotExists()
        .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('upload_offset', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('upload_length', 'bigint')
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('concat', 'varchar(16)')
        .addColumn('parts', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('completed_at', 'bigint')
        .execute()
      await db.schema.createIndex('tus_uploads_expires_at').ifNotExists()
        .on('tus_uploads').column('expires_at').execute()
      await db.schema.createIndex('tus_uploads_created_at').ifNotExists()
        .on('tus_uploads').columns(['created_at', 'id']).execute()
    },
    async down (db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('tus_uploads').ifExists().execute()
    }
  },
  // onComplete delivery kept on the row, so a hook run lost to a crash is run again.
  '2026-11-24-002-complete-hook-delivery': {
    async up (db: Kysely<any>): Promise<void> {
      const columns: Array<[string, 'varchar(16)' | 'integer' | 'text' | 'bigint']> = [
        ['complete_hook_state', 'varchar(16)'],
        ['complete_hook_attempts', 'integer'],
        ['complete_hook_error', 'text'],
        ['complete_hook_next_at', 'bigint'],
        ['complete_hook_done_at', 'bigint']
      ]
      // SQLite runs migrations outside a transaction and has no ADD COLUMN IF NOT
      // EXISTS: skip what a crashed or concurrent run already added.
      const existing = await columnsOf(db, 'tus_uploads')
      for (const [name, type] of columns) {
        if (existing.has(name)) continue
        await db.schema.alterTable('tus_uploads')
          .addColumn(name, type, (c) => name === 'complete_hook_attempts' ? c.notNull().defaultTo(0) : c)
          .execute()
      }
      await db.schema.createIndex('tus_uploads_complete_hook').ifNotExists()
        .on('tus_uploads').columns(['complete_hook_state', 'complete_hook_next_at']).execute()
    },
    async down (db: Kysely<any>): Promise<void> {
      for (const name of ['complete_hook_state', 'complete_hook_attempts', 'complete_hook_error', 'complete_hook_next_at', 'complete_hook_done_at']) {
        await db.schema.alterTable('tus_uploads').dropColumn(name).execute()
      }
    }
  },
  // One writer per upload across instances: a lease per locked upload, taken
  // with one upsert and renewed while held (see lib/locks/database-locker.ts).
  '2026-12-01-003-upload-locks': {
    async up (db: Kysely<any>): Promise<void> {
      await db.schema.createTable('tus_locks').ifNotExists()
        .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('owner', 'varchar(64)', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('requested_at', 'bigint')
        .execute()
    },
    async down (db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('tus_locks').ifExists().execute()
    }
  },
  // Dead instances noticed within seconds: each instance beats in a row of its
  // own, and a lock names its instance (see lib/locks/database-locker.ts).
  '2026-12-02-004-instance-heartbeats': {
    async up (db: Kysely<any>): Promise<void> {
      await db.schema.createTable('tus_instances').ifNotExists()
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .execute()
      if (!(await columnsOf(db, 'tus_locks')).has('instance')) {
        await db.schema.alterTable('tus_locks').addColumn('instance', 'varchar(64)').execute()
      }
    },
    async down (db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('tus_locks').dropColumn('instance').execute()
      await db.schema.dropTable('tus_instances').ifExists().execute()
    }
  },
  // Object storage: what is stored where, kept here rather than in the bucket
  // (see lib/store/meta/object-states.ts). Empty with files on disk.
  '2026-12-03-005-object-states': {
    async up (db: Kysely<any>): Promise<void> {
      await db.schema.createTable('tus_object_states').ifNotExists()
        .addColumn('id', 'varchar(128)', (c) => c.notNull())
        .addColumn('upload_offset', 'bigint', (c) => c.notNull())
        .addColumn('multipart_id', 'varchar(1024)')
        .addColumn('part_count', 'integer', (c) => c.notNull())
        .addColumn('tail_key', 'varchar(1024)')
        .addColumn('tail_size', 'bigint', (c) => c.notNull())
        .addColumn('content_type', 'varchar(255)')
        .addColumn('finished', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('tus_object_states_pk', ['id', 'upload_offset'])
        .execute()
      await db.schema.createTable('tus_object_parts').ifNotExists()
        .addColumn('id', 'varchar(128)', (c) => c.notNull())
        .addColumn('part_number', 'integer', (c) => c.notNull())
        .addColumn('etag', 'varchar(255)', (c) => c.notNull())
        .addPrimaryKeyConstraint('tus_object_parts_pk', ['id', 'part_number'])
        .execute()
    },
    async down (db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('tus_object_parts').ifExists().execute()
      await db.schema.dropTable('tus_object_states').ifExists().execute()
    }
  }
}

/**
 * Errors a concurrent start can cause, worth another try: SQLITE_BUSY; a table
 * or row another process created at the same moment; and on PostgreSQL, a
 * schema, table or column dropped while Kysely's introspection (which looks at
 * every schema) ran (3F000, 42P01, 42703 in pg_get_serial_sequence).
 */
const isBusy = (err: unknown): boolean => {
  const code = String((err as { code?: string })?.code ?? '')
  // 42703 from pg_get_serial_sequence: that introspection looked at a column of a table being dropped with its schema.
  const droppedColumn = code === '42703' && (err as { routine?: string })?.routine === 'pg_get_serial_sequence'
  return code === '3F000' || code === '42P01' || droppedColumn ||
    /SQLITE_BUSY|database is locked|duplicate key|already exists|UNIQUE constraint|duplicate column/i.test(String((err as Error)?.message ?? err) + code)
}

/**
 * Bring the schema to the latest version. Kysely's migrator takes a lock on
 * PostgreSQL; on SQLite a second process can meet SQLITE_BUSY instead, so a
 * busy error is retried (by then the other process has usually finished).
 */
export async function migrate (db: Kysely<any>, attempts = 10): Promise<void> {
  // On PostgreSQL the migrator's own tables are named with their schema, or it
  // would take another schema's table for ours.
  const schema = await currentSchema(db)
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'fastify_tus_migration',
    migrationLockTableName: 'fastify_tus_migration_lock',
    ...(schema === null ? {} : { migrationTableSchema: schema })
  })
  for (let attempt = 1; ; attempt++) {
    const { error } = await migrator.migrateToLatest()
    if (error === undefined) return
    if (attempt >= attempts || !isBusy(error)) throw error
    await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 50))
  }
}

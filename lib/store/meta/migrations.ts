/**
 * Migrations as code, shipped in the package and run on start. Every step is
 * written to be harmless when repeated (IF NOT EXISTS), because two processes
 * starting at once may both get as far as running it.
 */
import { Migrator, sql, type Kysely, type Migration } from 'kysely'

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
      const table = (await db.introspection.getTables()).find((t) => t.name === 'tus_uploads')
      const existing = new Set(table?.columns.map((c) => c.name))
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
  }
}

const isBusy = (err: unknown): boolean =>
  /SQLITE_BUSY|database is locked|duplicate key|already exists|UNIQUE constraint|duplicate column/i.test(String((err as Error)?.message ?? err) + String((err as { code?: string })?.code ?? ''))

/**
 * Bring the schema to the latest version. Kysely's migrator takes a lock on
 * PostgreSQL; on SQLite a second process can meet SQLITE_BUSY instead, so a
 * busy error is retried (by then the other process has usually finished).
 */
export async function migrate (db: Kysely<any>, attempts = 10): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'fastify_tus_migration',
    migrationLockTableName: 'fastify_tus_migration_lock'
  })
  for (let attempt = 1; ; attempt++) {
    const { error } = await migrator.migrateToLatest()
    if (error === undefined) return
    if (attempt >= attempts || !isBusy(error)) throw error
    await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 50))
  }
}

// Exposed for tests that check the table exists.
export const tableExists = async (db: Kysely<any>): Promise<boolean> => {
  const tables = await db.introspection.getTables()
  return tables.some((t) => t.name === 'tus_uploads')
}

export { sql }

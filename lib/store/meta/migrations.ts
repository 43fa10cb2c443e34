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
  }
}

const isBusy = (err: unknown): boolean =>
  /SQLITE_BUSY|database is locked|duplicate key|already exists|UNIQUE constraint/i.test(String((err as Error)?.message ?? err) + String((err as { code?: string })?.code ?? ''))

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

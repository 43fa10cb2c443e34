/**
 * Kysely's values, from its CommonJS build. Kysely's ES module build is some 280
 * modules; loaded as ES modules they kept about 7 MiB more resident than the
 * same code loaded as CommonJS (measured: Fastify + Kysely idle at 68 MiB RSS
 * against 61), and every byte of that counts against a server's peak RSS.
 * The types are the same (they come from the package's declarations); a Kysely
 * instance built with either build works here, since queries are plain
 * operation nodes and dialects are recognised by name (dialectOf).
 */
import { createRequire } from 'node:module'
import type * as KyselyModule from 'kysely'

const kysely = createRequire(import.meta.url)('kysely') as typeof KyselyModule

export const { Migrator, PostgresAdapter, PostgresDialect, SqliteAdapter, SqliteDialect, sql } = kysely
export const Kysely = kysely.Kysely
export type Kysely<DB> = KyselyModule.Kysely<DB>

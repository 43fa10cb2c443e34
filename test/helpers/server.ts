/**
 * Starts the plugin in a real Fastify server on 127.0.0.1 with its own temp dir
 * and SQLite file, or, with TUS_TEST_BACKEND=postgres, its own PostgreSQL
 * schema (dropped at teardown). A test that passes its own `db` gets that.
 * The bytes go to the temp dir's `uploads`, or, with TUS_TEST_STORE=s3 or
 * azure, to a bucket or container, under a key prefix of the server's own
 * (emptied at teardown; helpers/store.ts), unless the test passed its own
 * `s3`, `azure` or `uploadDir`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import tus, { type TusPluginOptions } from '../../lib/index.js'
import { BACKEND, POSTGRES_URL, dropSchema, newSchemaName } from './postgres.js'
import { ON_OBJECTS, OBJECT_UPLOAD_DIRS, objectLocation, testObjectStorage, type Storage } from './store.js'

export interface TestServer {
  app: FastifyInstance
  /** e.g. http://127.0.0.1:43210 */
  origin: string
  /** the upload endpoint, e.g. http://127.0.0.1:43210/files */
  endpoint: string
  dir: string
  uploadDir: string
  /** The SQLite file (unused when the server runs on PostgreSQL). */
  dbPath: string
  /** The PostgreSQL schema of this server, when it runs on PostgreSQL. */
  schema?: string
  /** Where the bytes are: `uploadDir`, or object storage (`storage.objects`: S3 or Azure). What the stored-bytes helpers take. */
  storage: Storage
}

interface Teardown { teardown(fn: () => unknown): void }

export function tempDir (t: Teardown, name = 'fastify-tus-'): string {
  const dir = mkdtempSync(join(tmpdir(), name))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * The `db` (and `schema`) options for a server a test starts itself, on the
 * backend under test: a SQLite file in `dir`, or a fresh PostgreSQL schema
 * dropped at teardown (register this before the server, so it goes after it).
 */
export function testDatabase (t: Teardown, dir: string, file = 'uploads.db'): { db: string; schema?: string } {
  if (BACKEND === 'sqlite') return { db: join(dir, file) }
  const schema = newSchemaName()
  t.teardown(async () => dropSchema(schema))
  return { db: POSTGRES_URL!, schema }
}

export async function startServer (
  t: Teardown,
  options: TusPluginOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>,
  fastifyOptions: FastifyServerOptions = {}
): Promise<TestServer> {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  const dbPath = join(dir, 'uploads.db')
  const schema = BACKEND === 'postgres' && options.db === undefined ? newSchemaName() : undefined
  const database: TusPluginOptions = schema === undefined ? { db: dbPath } : { db: POSTGRES_URL, schema, poolSize: 5 }
  // Teardowns run last-registered first: the app closes, then its schema and its objects go.
  if (schema !== undefined) t.teardown(async () => dropSchema(schema))
  const storage: Storage = { uploadDir: options.uploadDir ?? uploadDir }
  let bytes: TusPluginOptions = {}
  const given = objectLocation(options)
  if (given !== undefined) {
    storage.objects = given
  } else if (ON_OBJECTS && options.uploadDir === undefined) {
    const { option, location } = await testObjectStorage(t)
    storage.objects = location
    bytes = option
    // Created empty, so the tests' "nothing in uploadDir" checks also say that nothing went to disk.
    mkdirSync(uploadDir)
    OBJECT_UPLOAD_DIRS.add(uploadDir)
  }
  const app = Fastify({ logger: false, ...fastifyOptions })
  if (setup !== undefined) await setup(app)
  await app.register(tus, { uploadDir, ...database, ...bytes, ...options })
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return { app, origin, endpoint: `${origin}${options.prefix ?? '/files'}`, dir, uploadDir, dbPath, schema, storage }
}

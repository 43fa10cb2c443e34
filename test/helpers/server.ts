/** Starts the plugin in a real Fastify server on 127.0.0.1 with its own temp dir and SQLite file. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import tus, { type TusPluginOptions } from '../../lib/index.js'

export interface TestServer {
  app: FastifyInstance
  /** e.g. http://127.0.0.1:43210 */
  origin: string
  /** the upload endpoint, e.g. http://127.0.0.1:43210/files */
  endpoint: string
  dir: string
  uploadDir: string
  dbPath: string
}

interface Teardown { teardown(fn: () => unknown): void }

export function tempDir (t: Teardown, name = 'fastify-tus-'): string {
  const dir = mkdtempSync(join(tmpdir(), name))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
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
  const app = Fastify({ logger: false, ...fastifyOptions })
  if (setup !== undefined) await setup(app)
  await app.register(tus, { uploadDir, db: dbPath, ...options })
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return { app, origin, endpoint: `${origin}${options.prefix ?? '/files'}`, dir, uploadDir, dbPath }
}

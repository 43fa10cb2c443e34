// A browser upload page for the tus server: `node examples/browser/server.js` (after `npm install`),
// then open http://127.0.0.1:8080/ (Uppy) or http://127.0.0.1:8080/plain (tus-js-client alone).
// Uploads land in ./uploads, their metadata in ./uploads.db (SQLite), as in examples/basic.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import * as esbuild from 'esbuild'
import tus from 'fastify-tus'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

// Browsers cannot import bare npm specifiers ('@uppy/core'), so app.js is bundled once at
// start-up, in memory: esbuild writes nothing to disk and gives app.js plus app.css (the Uppy
// stylesheets app.js imports).
const bundle = await esbuild.build({
  entryPoints: [join(here, 'app.js')],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  write: false,
  outdir: join(here, 'bundle'), // names the outputs only: nothing is written
  logLevel: 'warning'
})
const assets = new Map(bundle.outputFiles.map((file) => [basename(file.path), file.contents]))
// tus-js-client ships a ready browser build (it sets window.tus); the plain page uses it as is.
assets.set('tus.min.js', await readFile(require.resolve('tus-js-client/dist/tus.min.js')))
const types = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' }

const app = Fastify({ logger: true })
await app.register(tus, {
  prefix: '/files',
  uploadDir: process.env.UPLOAD_DIR ?? './uploads',
  db: process.env.DB_PATH ?? './uploads.db'
})
app.tus.addHook('onComplete', async ({ upload }) => {
  app.log.info({ id: upload.id, bytes: upload.length, metadata: upload.metadata }, 'upload finished')
})

const page = (file) => async (request, reply) =>
  reply.type('text/html; charset=utf-8').send(await readFile(join(here, file)))
app.get('/', page('index.html'))
app.get('/plain', page('plain.html'))
app.get('/assets/:name', async (request, reply) => {
  const { name } = request.params
  const body = assets.get(name)
  if (body === undefined) return reply.code(404).send({ error: 'not found' })
  return reply.type(types[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream').send(Buffer.from(body))
})

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8080) })

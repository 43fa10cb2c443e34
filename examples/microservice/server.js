// A service that takes uploads and passes each finished file on to another tus server:
//   FORWARD_TO=http://127.0.0.1:8081/files node examples/microservice/server.js
// It is a tus server itself (the plugin) and a tus client (the `tusClient` decorator). When an
// upload finishes, onComplete uploads the file to FORWARD_TO with the same metadata and records
// the remote URL in STATE_DIR/<id>.json, served by GET /forwarded/<id> (404 until it is there).
// The client answers at once (completeDelivery 'background'); a failed forward is retried by the
// plugin with backoff, and resumes where it stopped (the client's URL storage), even after a restart.
// Env: FORWARD_TO (required), PORT (8080, 0 = any), HOST (127.0.0.1), UPLOAD_DIR (./uploads),
// DB_PATH (./uploads.db), STATE_DIR (./forwarded).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import Fastify from 'fastify'
import tus from 'fastify-tus'
import { FileURLStorage, tusClient } from 'fastify-tus/client'

const forwardTo = process.env.FORWARD_TO
if (forwardTo === undefined || forwardTo === '') {
  console.error('FORWARD_TO must name the tus endpoint to forward to, e.g. FORWARD_TO=http://127.0.0.1:8081/files')
  process.exit(2)
}
const uploadDir = resolve(process.env.UPLOAD_DIR ?? './uploads')
const stateDir = resolve(process.env.STATE_DIR ?? './forwarded')
await mkdir(stateDir, { recursive: true })

const app = Fastify({ logger: true })

// The client every route and hook shares: app.tusClient.
await app.register(tusClient, {
  endpoint: forwardTo,
  chunkSize: 4 * 1024 * 1024,
  // Remote upload URLs by source file, so an interrupted forward resumes instead of starting again.
  urlStorage: new FileURLStorage(join(stateDir, 'urls.json'))
})

await app.register(tus, {
  prefix: '/files',
  uploadDir,
  db: process.env.DB_PATH ?? './uploads.db',
  // Answer the client's last PATCH first; forwarding runs after it, retried until it succeeds.
  completeDelivery: 'background',
  completeHookRetryInterval: 2000
})

const recordPath = (id) => join(stateDir, `${id}.json`)

async function readRecord (id) {
  try {
    return JSON.parse(await readFile(recordPath(id), 'utf8'))
  } catch (err) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
}

app.tus.addHook('onComplete', async ({ upload, idempotencyKey, attempt }) => {
  // At least once: a run after a successful one (same key, same record) has nothing to do.
  if (await readRecord(upload.id) !== undefined) return
  // The plugin keeps each upload's bytes in <uploadDir>/<id>; a file path lets the client
  // read it in chunks with a known length, and recognise it again when it resumes.
  // The record's metadata goes as it is (keys without a value are null here, and sent so).
  const url = await app.tusClient.upload(join(uploadDir, upload.id), { metadata: upload.metadata })
  const record = { id: upload.id, key: idempotencyKey, url, size: upload.offset, forwardedAt: new Date().toISOString() }
  await writeFile(recordPath(upload.id) + '.tmp', JSON.stringify(record))
  await rename(recordPath(upload.id) + '.tmp', recordPath(upload.id))
  app.log.info({ id: upload.id, url, attempt }, 'upload forwarded')
})

app.get('/forwarded/:id', async (request, reply) => {
  const { id } = request.params
  const record = /^[A-Za-z0-9_-]{1,100}$/.test(id) ? await readRecord(id) : undefined
  if (record === undefined) return reply.code(404).send({ error: 'not forwarded (yet)' })
  return record
})

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8080) })

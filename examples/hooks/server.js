// The three lifecycle hooks doing real work: `node examples/hooks/server.js`.
//   onCreate    accepts only images and PDFs that have a filename, each type up to its own size,
//               and rejects anything else with a 4xx and a one-line reason before anything is stored;
//   onComplete  copies the finished file into FINAL_DIR (default ./final) under a safe name,
//               `<upload id>.<sanitised filename>`, records it in FINAL_DIR/manifest.jsonl
//               (also served by GET /finished), then tells a webhook (NOTIFY_URL, optional);
//   onTerminate removes what onComplete made for that upload.
// onComplete is delivered at least once: if the webhook fails, the plugin runs every onComplete
// handler again later with the same idempotency key, so the copy-and-record step is idempotent.
// Env: PORT (8080, 0 = any), HOST (127.0.0.1), UPLOAD_DIR (./uploads), DB_PATH (./uploads.db),
// FINAL_DIR (./final), NOTIFY_URL (none).
import { copyFile, constants, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { extname, join, resolve, sep } from 'node:path'
import Fastify from 'fastify'
import tus, { TusError } from 'fastify-tus'

const uploadDir = resolve(process.env.UPLOAD_DIR ?? './uploads')
const finalDir = resolve(process.env.FINAL_DIR ?? './final')
const manifestPath = join(finalDir, 'manifest.jsonl')
const notifyUrl = process.env.NOTIFY_URL

const MiB = 1024 * 1024
// What is accepted: the media type, its file extensions and its largest size.
const ACCEPTED = {
  'image/png': { extensions: ['.png'], maxSize: 5 * MiB },
  'image/jpeg': { extensions: ['.jpg', '.jpeg'], maxSize: 5 * MiB },
  'image/gif': { extensions: ['.gif'], maxSize: 5 * MiB },
  'image/webp': { extensions: ['.webp'], maxSize: 5 * MiB },
  'application/pdf': { extensions: ['.pdf'], maxSize: 20 * MiB }
}
const LARGEST = Math.max(...Object.values(ACCEPTED).map((type) => type.maxSize))
const typeOfExtension = (ext) => Object.keys(ACCEPTED).find((type) => ACCEPTED[type].extensions.includes(ext))

/** The last path segment of a client-chosen name, accents dropped, reduced to [A-Za-z0-9._-]; never empty, never hidden. */
function safeName (filename) {
  const base = filename.split(/[/\\]/).pop() ?? ''
  const clean = base.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(-100).replace(/^[._-]+/, '')
  return clean === '' ? 'file' : clean
}

/** Upload ids are [A-Za-z0-9_-], so "<id>." starts the names of this upload's files and of no other's. */
const finalName = (upload) => `${upload.id}.${safeName(upload.metadata.filename ?? '')}`

// Every change to FINAL_DIR runs one at a time in this process, so a retry of
// onComplete and an onTerminate for the same upload never interleave.
let queue = Promise.resolve()
const serially = (task) => {
  const run = queue.then(task)
  queue = run.catch(() => {})
  return run
}

async function readManifestText () {
  try {
    return await readFile(manifestPath, 'utf8')
  } catch (err) {
    if (err.code === 'ENOENT') return ''
    throw err
  }
}

/** The manifest's records; a line cut short by a crash is skipped. */
const readManifest = async (text) => (text ?? await readManifestText()).split('\n').flatMap((line) => {
  try { return line.trim() === '' ? [] : [JSON.parse(line)] } catch { return [] }
})

/** Write a file whole or not at all: a temporary name in the same directory, then rename. */
async function replaceFile (path, write) {
  const temporary = join(finalDir, `.tmp-${randomBytes(6).toString('hex')}`)
  try {
    await write(temporary)
    await rename(temporary, path)
  } catch (err) {
    await rm(temporary, { force: true })
    throw err
  }
}

const app = Fastify({ logger: true })
await mkdir(finalDir, { recursive: true })

await app.register(tus, {
  prefix: '/files',
  uploadDir,
  db: process.env.DB_PATH ?? './uploads.db',
  // The ceiling for every upload, including partial uploads and deferred lengths;
  // onCreate below applies the tighter limit of each type.
  maxSize: LARGEST,
  expiration: 24 * 3600_000,
  // Look for onComplete retries every second (default 5 s), so a failed webhook is retried soon.
  completeHookRetryInterval: 1000,

  onCreate: ({ upload }) => {
    // Partial uploads (concatenation) carry no metadata; the final upload that joins them is checked.
    if (upload.concat === 'partial') return
    const filename = upload.metadata.filename
    if (typeof filename !== 'string' || filename.trim() === '') throw new TusError(400, 'metadata "filename" is required')
    const extension = extname(filename.split(/[/\\]/).pop()).toLowerCase()
    const type = typeOfExtension(extension)
    if (type === undefined) {
      throw new TusError(415, `only PNG, JPEG, GIF and WebP images and PDF files are accepted, not "${extension || 'no extension'}"`)
    }
    const declared = upload.metadata.filetype
    if (typeof declared === 'string' && declared !== '' && declared.split(';')[0].trim().toLowerCase() !== type) {
      throw new TusError(415, `filetype "${declared}" does not match the extension ${extension} (expected ${type})`)
    }
    if (upload.length === null) throw new TusError(400, 'the size must be known up front (Upload-Length), deferred lengths are not accepted')
    const { maxSize } = ACCEPTED[type]
    if (upload.length > maxSize) throw new TusError(413, `${type} files are limited to ${maxSize} bytes, this one has ${upload.length}`)
    // The type is the server's conclusion, not the client's word.
    return { metadata: { ...upload.metadata, filetype: type } }
  },

  onTerminate: ({ upload, reason }) => serially(async () => {
    // The upload's row and bytes are gone already; take back what onComplete made.
    const mine = (name) => name.startsWith(`${upload.id}.`)
    for (const name of await readdir(finalDir)) if (mine(name)) await rm(join(finalDir, name), { force: true })
    const records = await readManifest()
    const kept = records.filter((record) => record.id !== upload.id)
    if (kept.length !== records.length) {
      await replaceFile(manifestPath, (path) => writeFile(path, kept.map((record) => JSON.stringify(record) + '\n').join('')))
    }
    app.log.info({ id: upload.id, reason }, 'upload removed, final copy cleaned up')
  })
})

// Step 1: copy the file into FINAL_DIR and record it, once per idempotency key.
// A copy, not a move: the upload stays complete and GET /files/<id> keeps serving it
// (a move would leave a finished upload without bytes). DELETE /files/<id> removes both.
app.tus.addHook('onComplete', ({ upload, idempotencyKey, attempt }) => serially(async () => {
  const manifest = await readManifestText()
  if ((await readManifest(manifest)).some((record) => record.key === idempotencyKey)) {
    app.log.info({ id: upload.id, attempt }, 'already in FINAL_DIR, nothing to do')
    return
  }
  const name = finalName(upload)
  const target = join(finalDir, name)
  if (!target.startsWith(finalDir + sep)) throw new TusError(400, 'unsafe filename') // cannot happen with safeName; belt and braces
  // Copy to a temporary name, then rename: FINAL_DIR never shows half a file, and a
  // rerun after a crash overwrites its own earlier copy (same name) instead of adding one.
  await replaceFile(target, (path) => copyFile(join(uploadDir, upload.id), path, constants.COPYFILE_FICLONE))
  const record = {
    key: idempotencyKey,
    id: upload.id,
    file: name,
    filename: upload.metadata.filename,
    filetype: upload.metadata.filetype,
    size: upload.offset,
    storedAt: new Date().toISOString()
  }
  // The record goes last: once it is there, the file is complete. A crash before it
  // means the next attempt does everything again, harmlessly. (A line a crash cut short
  // is ended first, so this record starts on a line of its own.)
  const separator = manifest === '' || manifest.endsWith('\n') ? '' : '\n'
  await writeFile(manifestPath, separator + JSON.stringify(record) + '\n', { flag: 'a' })
  app.log.info({ id: upload.id, file: name, attempt }, 'stored in FINAL_DIR')
}))

// Step 2: tell another system. If this throws, the plugin retries the whole onComplete
// (step 1 included) with backoff; the receiver deduplicates with the Idempotency-Key header.
app.tus.addHook('onComplete', async ({ upload, idempotencyKey, attempt }) => {
  if (notifyUrl === undefined) return
  const response = await fetch(notifyUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey },
    body: JSON.stringify({ id: upload.id, file: finalName(upload), filename: upload.metadata.filename, size: upload.offset, attempt }),
    signal: AbortSignal.timeout(10_000)
  })
  if (!response.ok) throw new Error(`webhook ${notifyUrl} answered ${response.status}`)
})

// What has been stored, from the manifest.
app.get('/finished', async () => readManifest())

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8080) })

// examples/hooks: onCreate refuses bad uploads with a one-line reason and stores
// nothing; onComplete copies a finished file into FINAL_DIR under a safe name and
// records it once, even when it is run again (a failing webhook forces a retry);
// onTerminate leaves nothing behind.
import t from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import Database from 'better-sqlite3'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, encodeMetadata, patch, send } from './helpers/http.js'
import { assertError, idOf, waitFor } from './helpers/tus.js'

interface Record { key: string; id: string; file: string; filename: string; filetype: string; size: number }
interface Call { headers: IncomingHttpHeaders; body: { id: string; attempt: number } }

/** Every file under `dir`, as paths relative to it. */
function walk (dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path, base) : [relative(base, path)]
  })
}

t.test('examples/hooks validates, stores, records once and cleans up', async (t) => {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  const dbPath = join(dir, 'uploads.db')
  const finalDir = join(dir, 'out', 'final')

  // The webhook fails the first call for one upload, so the plugin runs its onComplete again.
  const calls: Call[] = []
  let failOnce: string | undefined
  const webhook = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Call['body']
      calls.push({ headers: req.headers, body })
      if (body.id === failOnce) {
        failOnce = undefined
        res.writeHead(500).end('try again later')
      } else {
        res.writeHead(204).end()
      }
    })
  })
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => webhook.close(resolve)))
  const notifyUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/uploaded`

  const server = await spawnServer(t, ['examples/hooks/server.js'], {
    PORT: '0', UPLOAD_DIR: uploadDir, DB_PATH: dbPath, FINAL_DIR: finalDir, NOTIFY_URL: notifyUrl
  })
  const endpoint = `${server.origin}/files/`

  const sql = <R>(query: string, ...params: unknown[]): R[] => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true })
    try { return db.prepare(query).all(...params) as R[] } finally { db.close() }
  }
  const rowCount = (): number => sql<{ n: number }>('select count(*) as n from tus_uploads')[0]!.n
  const manifest = (): Record[] => existsSync(join(finalDir, 'manifest.jsonl'))
    ? readFileSync(join(finalDir, 'manifest.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record)
    : []
  const finalFilesOf = (id: string): string[] => readdirSync(finalDir).filter((name) => name.startsWith(`${id}.`))
  const createWith = async (metadata: { [key: string]: string }, length: number, body?: Buffer) =>
    send('POST', endpoint, {
      headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Metadata': encodeMetadata(metadata), ...(body === undefined ? {} : OCTET) },
      body
    })

  await t.test('onCreate rejects with a 4xx and a one-line reason, storing nothing', async (t) => {
    const exe = await createWith({ filename: 'setup.exe', filetype: 'application/x-msdownload' }, 1000)
    assertError(t, exe, 415, 'executable')
    t.match(exe.text, /only PNG, JPEG, GIF and WebP images and PDF files are accepted, not "\.exe"/)

    const withBody = await createWith({ filename: 'page.html' }, 5, Buffer.from('<b>x'))
    assertError(t, withBody, 415, 'creation-with-upload of a bad type')

    const disguised = await createWith({ filename: 'photo.png', filetype: 'text/html' }, 1000)
    assertError(t, disguised, 415, 'filetype disagrees with the extension')
    t.match(disguised.text, /does not match the extension \.png/)

    const unnamed = await createWith({ filetype: 'image/png' }, 1000)
    assertError(t, unnamed, 400, 'no filename')
    t.equal(unnamed.text, 'metadata "filename" is required')

    const big = await createWith({ filename: 'big.png', filetype: 'image/png' }, 5 * 1024 * 1024 + 1)
    assertError(t, big, 413, 'image over its type limit')
    t.equal(big.text, 'image/png files are limited to 5242880 bytes, this one has 5242881')

    const deferred = await send('POST', endpoint, { headers: { ...TUS, 'Upload-Defer-Length': '1', 'Upload-Metadata': encodeMetadata({ filename: 'a.pdf' }) } })
    assertError(t, deferred, 400, 'deferred length')

    const huge = await createWith({ filename: 'book.pdf' }, 30 * 1024 * 1024)
    assertError(t, huge, 413, 'over the plugin ceiling')

    t.equal(rowCount(), 0, 'no upload row')
    t.same(readdirSync(uploadDir), [], 'no bytes in UPLOAD_DIR')
    t.same(readdirSync(finalDir), [], 'nothing in FINAL_DIR')
  })

  let acceptedId = ''
  const photo = bytes(300_000, 7)
  await t.test('an accepted upload lands byte-exact in FINAL_DIR and is recorded once, through a retry', async (t) => {
    const created = await createWith({ filename: 'holiday photo.png', filetype: 'image/png' }, photo.length)
    t.equal(created.status, 201)
    const url = created.headers.location as string
    acceptedId = idOf(url)
    failOnce = acceptedId
    t.equal((await patch(url, 0, photo.subarray(0, 100_000))).status, 204)
    t.equal((await patch(url, 100_000, photo.subarray(100_000))).status, 204, 'the last PATCH succeeds though onComplete failed (it is retried)')

    // First attempt: stored, then the webhook answered 500. The retry comes within a few seconds.
    await waitFor(() => sql<{ s: string }>('select complete_hook_state as s from tus_uploads where id = ?', acceptedId)[0]?.s === 'delivered', 15_000, 'onComplete delivered')
    const mine = calls.filter((c) => c.body.id === acceptedId)
    t.equal(mine.length, 2, 'the webhook was called twice: onComplete ran twice')
    t.same(mine.map((c) => c.body.attempt), [1, 2])
    t.same(mine.map((c) => c.headers['idempotency-key']), [`${acceptedId}:complete`, `${acceptedId}:complete`], 'with the same idempotency key')
    t.match(server.output(), /already in FINAL_DIR, nothing to do/, 'the second run found its own record')

    const name = `${acceptedId}.holiday_photo.png`
    t.same(finalFilesOf(acceptedId), [name], 'one file, under <id>.<sanitised filename>')
    t.ok(readFileSync(join(finalDir, name)).equals(photo), 'byte-exact')
    const records = manifest().filter((r) => r.id === acceptedId)
    t.equal(records.length, 1, 'recorded once')
    t.match(records[0], { key: `${acceptedId}:complete`, file: name, filename: 'holiday photo.png', filetype: 'image/png', size: photo.length })
    const finished = JSON.parse((await send('GET', `${server.origin}/finished`)).text) as Record[]
    t.same(finished.map((r) => r.id), [acceptedId], 'GET /finished lists it once')

    const download = await send('GET', url)
    t.equal(download.status, 200, 'a copy, not a move: the upload is still served')
    t.ok(download.body.equals(photo))
  })

  let traversalId = ''
  await t.test('a path-traversal filename lands inside FINAL_DIR', async (t) => {
    const body = bytes(4000, 9)
    const tries = [
      { filename: '../../../evil.pdf', expected: 'evil.pdf' },
      { filename: '..\\..\\..\\.hidden evil.pdf', expected: 'hidden_evil.pdf' },
      { filename: '/etc/../ünïcode\u0000name.PDF', expected: 'unicode_name.PDF' }
    ]
    for (const { filename, expected } of tries) {
      // Creation-with-upload: in the default 'wait' mode, onComplete has run when the POST answers.
      const created = await createWith({ filename }, body.length, body)
      t.equal(created.status, 201, `${JSON.stringify(filename)} accepted`)
      const id = idOf(created.headers.location as string)
      traversalId ||= id
      t.same(finalFilesOf(id), [`${id}.${expected}`], `${JSON.stringify(filename)} stored as <id>.${expected}`)
      t.ok(readFileSync(join(finalDir, `${id}.${expected}`)).equals(body))
    }
    const outside = walk(dir).filter((path) => !path.startsWith('out/final/') && !path.startsWith('uploads/') && !path.startsWith('uploads.db'))
    t.same(outside, [], 'no file was written outside FINAL_DIR')
    t.same(readdirSync(join(dir, 'out')), ['final'])
  })

  await t.test('termination leaves nothing behind', async (t) => {
    // A finished upload: its copy and its record go with it.
    const url = `${endpoint}${traversalId}`
    t.equal((await send('DELETE', url, { headers: TUS })).status, 204)
    t.same(finalFilesOf(traversalId), [], 'final copy removed')
    t.equal(manifest().filter((r) => r.id === traversalId).length, 0, 'record removed')
    t.notOk(existsSync(join(uploadDir, traversalId)), 'bytes removed')
    t.equal((await send('GET', url)).status, 404)

    // An unfinished one: nothing of it anywhere.
    const created = await createWith({ filename: 'draft.pdf' }, 1000)
    const draft = created.headers.location as string
    t.equal((await patch(draft, 0, bytes(500))).status, 204)
    t.equal((await send('DELETE', draft, { headers: TUS })).status, 204)
    t.same(finalFilesOf(idOf(draft)), [])
    t.notOk(existsSync(join(uploadDir, idOf(draft))))
    t.equal(sql('select id from tus_uploads where id = ?', idOf(draft)).length, 0, 'no row')

    // The other uploads are untouched.
    t.same(finalFilesOf(acceptedId), [`${acceptedId}.holiday_photo.png`])
    t.equal(manifest().filter((r) => r.id === acceptedId).length, 1)
    t.equal(manifest().length, 3, 'the accepted upload and the two remaining traversal uploads')
  })
})

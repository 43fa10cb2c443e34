/**
 * Hooks that fail or take the bytes away must not turn into 5xx answers for
 * what already happened: a throwing onTerminate after a removal, a GET of a
 * finished upload whose file an onComplete moved.
 */
import t from 'tap'
import { renameSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, tempDir } from './helpers/server.js'
import { TUS, bytes, create, patch, send } from './helpers/http.js'
import { assertError, head, idOf } from './helpers/tus.js'

t.test('a throwing onTerminate: DELETE still answers 204, the other handlers run, the upload is gone', async (t) => {
  const ran: string[] = []
  const { app, endpoint, uploadDir } = await startServer(t, {
    onTerminate: [
      () => { ran.push('first'); throw new Error('cleanup broke') },
      ({ upload }) => { ran.push(`second:${upload.id}`) }
    ]
  })
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const res = await send('DELETE', url, { headers: TUS })
  t.equal(res.status, 204)
  t.same(ran, ['first', `second:${idOf(url)}`])
  t.equal((await head(url)).status, 404)
  t.equal(await app.tus.get(idOf(url)), undefined)
  t.equal((await app.tus.list()).length, 0)
  t.notOk(await import('node:fs').then((fs) => fs.existsSync(join(uploadDir, idOf(url)))), 'bytes removed')

  // app.tus.delete resolves true as well
  const other = await create(endpoint, { 'Upload-Length': '10' })
  t.equal(await app.tus.delete(idOf(other)), true)
})

t.test('GET of a finished upload whose bytes were moved away: 410 with a reason', async (t) => {
  const finalDir = tempDir(t)
  const { endpoint, uploadDir } = await startServer(t, {
    onComplete: ({ upload }) => { renameSync(join(uploadDir, upload.id), join(finalDir, upload.id)) }
  })
  const url = await create(endpoint, { 'Upload-Length': '4' })
  t.equal((await patch(url, 0, bytes(4))).status, 204)
  const res = await send('GET', url)
  assertError(t, res, 410)
  t.match(res.text, /no longer in storage/)
  t.equal((await head(url)).headers['upload-offset'], '4', 'HEAD still tells the upload finished')
})

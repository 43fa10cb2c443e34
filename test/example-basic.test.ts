import t from 'tap'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { TUS, send } from './helpers/http.js'

t.test('examples/basic serves uploads', async (t) => {
  const dir = tempDir(t)
  const { origin } = await spawnServer(t, ['examples/basic/server.js'], {
    PORT: '0', UPLOAD_DIR: join(dir, 'uploads'), DB_PATH: join(dir, 'uploads.db')
  })
  const created = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '3', 'Content-Type': 'application/offset+octet-stream' }, body: 'abc' })
  t.equal(created.status, 201)
  t.equal(created.headers['upload-offset'], '3')
  t.equal((await send('GET', created.headers.location as string)).text, 'abc')
})

// examples/auth: a bearer-token onRequest hook and an owner check in preHandler
// keep every user to their own uploads, for every tus method and downloads.
import t from 'tap'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, send } from './helpers/http.js'

t.test('users reach only their own uploads', async (t) => {
  const dir = tempDir(t)
  const { origin } = await spawnServer(t, ['examples/auth/server.js'], {
    PORT: '0', UPLOAD_DIR: join(dir, 'uploads'), DB_PATH: join(dir, 'uploads.db')
  })
  const alice = { ...TUS, Authorization: 'Bearer alice-token' }
  const bob = { ...TUS, Authorization: 'Bearer bob-token' }

  const anonymous = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '5' } })
  t.equal(anonymous.status, 401, 'no token, no upload')
  const forged = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '5', Authorization: 'Bearer nope' } })
  t.equal(forged.status, 401, 'unknown token refused')

  // Alice tries to claim Bob as owner through metadata; the server records her anyway.
  const created = await send('POST', `${origin}/files/`, {
    headers: { ...alice, 'Upload-Length': '5', 'Upload-Metadata': `owner ${Buffer.from('bob').toString('base64')}` }
  })
  t.equal(created.status, 201)
  const url = created.headers.location as string

  t.equal((await send('HEAD', url, { headers: bob })).status, 404, 'bob cannot HEAD it')
  t.equal((await send('PATCH', url, { headers: { ...bob, ...OCTET, 'Upload-Offset': '0' }, body: 'bobby' })).status, 404, 'bob cannot PATCH it')
  t.equal((await send('POST', url, { headers: { ...bob, ...OCTET, 'Upload-Offset': '0', 'X-HTTP-Method-Override': 'PATCH' }, body: 'bobby' })).status, 404, 'nor through method override')

  const head = await send('HEAD', url, { headers: alice })
  t.equal(head.status, 200)
  t.match(head.headers['upload-metadata'], `owner ${Buffer.from('alice').toString('base64')}`)
  t.equal((await send('PATCH', url, { headers: { ...alice, ...OCTET, 'Upload-Offset': '0' }, body: 'hello' })).status, 204)

  t.equal((await send('GET', url, { headers: bob })).status, 404, 'bob cannot download it')
  const download = await send('GET', url, { headers: alice })
  t.equal(download.status, 200)
  t.equal(download.text, 'hello')

  const mine = await send('GET', `${origin}/my-uploads`, { headers: alice })
  t.same(JSON.parse(mine.text).map((u: { id: string }) => u.id), [url.split('/').pop()])
  t.same(JSON.parse((await send('GET', `${origin}/my-uploads`, { headers: bob })).text), [])

  t.equal((await send('DELETE', url, { headers: bob })).status, 404, 'bob cannot delete it')
  t.equal((await send('DELETE', url, { headers: alice })).status, 204)
})

// Migrations run on start; several processes starting at once on one fresh
// SQLite file must all come up and share the table.
import t from 'tap'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { TUS, send } from './helpers/http.js'

t.test('three processes start at once on one new database', async (t) => {
  const dir = tempDir(t)
  const args = ['dist/lib/cli/main.js', 'serve', '--port', '0', '--log-level', 'warn',
    '--upload-dir', join(dir, 'uploads'), '--db-path', join(dir, 'shared.db')]
  const servers = await Promise.all([spawnServer(t, args), spawnServer(t, args), spawnServer(t, args)])
  const ids: string[] = []
  for (const { origin } of servers) {
    const res = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '1' } })
    t.equal(res.status, 201)
    ids.push(String(res.headers.location).split('/').pop()!)
  }
  // Each process sees the rows the others wrote: one table, migrated once.
  for (const { origin } of servers) {
    for (const id of ids) t.equal((await send('HEAD', `${origin}/files/${id}`, { headers: TUS })).status, 200)
  }
})

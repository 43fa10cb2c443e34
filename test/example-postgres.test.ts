// examples/postgres: cluster.js starts two instances on one PostgreSQL schema and
// one upload directory behind a round-robin proxy. An upload sent through the
// proxy has its PATCHes served by both instances and ends up byte-exact; the
// instances do not outlive the cluster, even when it is killed with SIGKILL.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { TUS, bytes, encodeMetadata, patch, send } from './helpers/http.js'
import { idOf, waitFor } from './helpers/tus.js'
import { postgresOrSkip, query, testSchema } from './helpers/postgres.js'

const url = postgresOrSkip(t)

/** Running (a zombie waiting to be reaped by whoever inherited it counts as gone). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return process.platform !== 'linux'
  }
}

if (url !== undefined) {
  t.test('examples/postgres/cluster.js: any instance serves any request', async (t) => {
    const schema = testSchema(t) // dropped last, once the processes are gone
    const dir = tempDir(t)
    const uploadDir = join(dir, 'uploads')
    const cluster = await spawnServer(t, ['examples/postgres/cluster.js'], {
      PORT: '0', DATABASE_URL: url, DB_SCHEMA: schema, UPLOAD_DIR: uploadDir, INSTANCES: '2'
    })
    await waitFor(() => /instance-2 \(pid \d+\)/.test(cluster.output()), 5000, 'the instance list')
    const pids = [...cluster.output().matchAll(/instance-\d \(pid (\d+)\) at http/g)].map((m) => Number(m[1]))
    t.equal(pids.length, 2, 'two instances')
    // Whatever happens below, no instance is left running.
    t.teardown(() => { for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL') })

    const endpoint = `${cluster.origin}/files/`
    const source = bytes(1024 * 1024 + 777, 31)
    const CHUNK = 128 * 1024
    const servedBy: string[] = []

    const created = await send('POST', endpoint, {
      headers: { ...TUS, 'Upload-Length': String(source.length), 'Upload-Metadata': encodeMetadata({ filename: 'spread.bin' }) }
    })
    t.equal(created.status, 201)
    const location = created.headers.location as string
    t.ok(location.startsWith(`${cluster.origin}/files/`), 'Location names the proxy, not an instance')

    for (let offset = 0; offset < source.length; offset += CHUNK) {
      const res = await patch(location, offset, source.subarray(offset, offset + CHUNK))
      t.equal(res.status, 204, `PATCH at ${offset}`)
      servedBy.push(String(res.headers['x-served-by']))
    }
    t.same([...new Set(servedBy)].sort(), ['instance-1', 'instance-2'], `the PATCHes of one upload were served by both instances (${servedBy.join(', ')})`)
    t.ok(servedBy.every((name, i) => i === 0 || name !== servedBy[i - 1]), 'round-robin: consecutive PATCHes went to different instances')

    const heads = await Promise.all([0, 1].map(async () => send('HEAD', location, { headers: TUS })))
    t.same(heads.map((h) => h.headers['upload-offset']), [String(source.length), String(source.length)], 'both instances see the finished offset')
    t.same(heads.map((h) => String(h.headers['x-served-by'])).sort(), ['instance-1', 'instance-2'])

    const download = await send('GET', location)
    t.equal(download.status, 200)
    t.ok(download.body.equals(source), 'downloaded bytes equal the source')
    t.ok(readFileSync(join(uploadDir, idOf(location))).equals(source), 'stored bytes equal the source')
    const rows = await query<{ upload_offset: string }>('select upload_offset from tus_uploads where id = $1', [idOf(location)], schema)
    t.equal(Number(rows[0]?.upload_offset), source.length, `the row in schema ${schema} says finished`)
    await waitFor(async () => (await query<{ s: string }>('select complete_hook_state as s from tus_uploads where id = $1', [idOf(location)], schema))[0]?.s === 'delivered', 10_000, 'onComplete delivered')

    // The cluster dies without a chance to clean up: its instances stop on their own.
    cluster.child.kill('SIGKILL')
    await waitFor(() => pids.every((pid) => !alive(pid)), 15_000, 'instances to exit after the cluster was killed')
    t.pass('no instance outlived the cluster')
  })
}

// SIGKILL during PATCH streams, at a different moment in each trial: after a
// restart the offset never runs ahead of the bytes, the bytes before it equal
// the source, and the upload resumes to a byte-exact file.
import t from 'tap'
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { exited, patchThenKill, rng } from './helpers/crash.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, send, sha256 } from './helpers/http.js'

const TRIALS = 20
const SIZE = 4 << 20
const PIECE = 128 << 10
const CHECKPOINT = 512 << 10



t.test(`${TRIALS} SIGKILL trials during PATCH`, async (t) => {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  // Offsets are committed every 512 KiB, so kills land between and on checkpoints.
  const env = { TUS_OPTIONS: JSON.stringify({ uploadDir, db: join(dir, 'db.sqlite'), checkpointBytes: CHECKPOINT }) }
  const random = rng(20261124)
  const source = bytes(SIZE, 42)
  const offsets = new Set<number>()

  // One process per trial: the one restarted after a kill serves the next trial.
  let server = await spawnServer(t, ['test/fixtures/server.js'], env)
  for (let trial = 1; trial <= TRIALS; trial++) {
    const created = await send('POST', `${server.origin}/files/`, { headers: { ...TUS, 'Upload-Length': String(SIZE) } })
    const path = new URL(created.headers.location as string).pathname
    const id = path.split('/').pop()!

    // Stream the body in pieces with small pauses, and kill the server somewhere in it.
    const killAt = Math.floor(random() * 220)
    await patchThenKill(server.origin + path, source, PIECE, 5, killAt, server.child)

    server = await spawnServer(t, ['test/fixtures/server.js'], env)
    const head = await send('HEAD', server.origin + path, { headers: TUS })
    t.equal(head.status, 200, `trial ${trial}: upload survives`)
    const offset = Number(head.headers['upload-offset'])
    offsets.add(offset)
    const file = join(uploadDir, id)
    const onDisk = existsSync(file) ? statSync(file).size : -1
    t.ok(offset <= onDisk, `trial ${trial} (kill at ${killAt} ms): offset ${offset} <= ${onDisk} bytes on disk`)
    t.ok(readFileSync(file).subarray(0, offset).equals(source.subarray(0, offset)), `trial ${trial}: bytes before the offset equal the source`)

    if (offset < SIZE) {
      const resumed = await send('PATCH', server.origin + path, {
        headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset) }, body: source.subarray(offset)
      })
      t.equal(resumed.status, 204, `trial ${trial}: resumed from ${offset}`)
    }
    t.equal(sha256(readFileSync(file)), sha256(source), `trial ${trial}: finished file is byte-exact`)
  }
  t.ok(offsets.size >= 4, `kills landed at ${offsets.size} different offsets: ${[...offsets].sort((a, b) => a - b).join(', ')}`)
})

t.test('start-up reconciles rows and files left by a crash', async (t) => {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  const args = ['dist/lib/cli/main.js', 'serve', '--port', '0', '--log-level', 'warn', '--upload-dir', uploadDir, '--db-path', join(dir, 'db.sqlite')]
  let server = await spawnServer(t, args)
  const make = async (body: string): Promise<string> => {
    const res = await send('POST', `${server.origin}/files/`, { headers: { ...TUS, ...OCTET, 'Upload-Length': '100' }, body })
    return new URL(res.headers.location as string).pathname.split('/').pop()!
  }
  const longer = await make('0123456789')
  const missing = await make('abcdefghij')
  server.child.kill('SIGKILL')
  await exited(server.child)

  // What a crash can leave: unconfirmed bytes past the offset, a row whose file
  // is gone, and a file whose row was never written (older than the grace period).
  const fd = openSync(join(uploadDir, longer), 'r+')
  writeSync(fd, Buffer.from('UNCONFIRMED'), 0, 11, 10)
  closeSync(fd)
  const { rmSync, utimesSync } = await import('node:fs')
  rmSync(join(uploadDir, missing))
  const orphan = 'f'.repeat(32)
  writeFileSync(join(uploadDir, orphan), 'no row for me')
  const old = new Date(Date.now() - 3_600_000)
  utimesSync(join(uploadDir, orphan), old, old)

  server = await spawnServer(t, args)
  t.equal(statSync(join(uploadDir, longer)).size, 10, 'unconfirmed tail trimmed to the offset')
  t.equal((await send('HEAD', `${server.origin}/files/${longer}`, { headers: TUS })).headers['upload-offset'], '10')
  const head = await send('HEAD', `${server.origin}/files/${missing}`, { headers: TUS })
  t.equal(head.headers['upload-offset'], '0', 'a row without bytes restarts at 0')
  t.equal(statSync(join(uploadDir, missing)).size, 0, 'with an empty file')
  t.notOk(existsSync(join(uploadDir, orphan)), 'a file without a row is removed')
  const resumed = await send('PATCH', `${server.origin}/files/${missing}`, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: 'x'.repeat(100) })
  t.equal(resumed.status, 204, 'and it can be uploaded again')
})

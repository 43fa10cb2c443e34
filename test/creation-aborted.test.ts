// A creation whose client is gone before the answer leaves nothing behind: no
// one could ever learn its URL. An HTTP/1.0 creation without Host still gets a
// usable absolute Location.
import t from 'tap'
import { connect } from 'node:net'
import { startServer } from './helpers/server.js'
import { everything } from './helpers/store.js'
import { sleep } from './helpers/tus.js'

async function raw (origin: string, request: string, endEarly: boolean): Promise<string> {
  const { hostname, port } = new URL(origin)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => {})
  let answer = ''
  socket.on('data', (chunk) => { answer += chunk.toString() })
  await new Promise((resolve) => socket.once('connect', resolve))
  if (endEarly) socket.end(request)
  else socket.write(request)
  await new Promise((resolve) => { socket.once('close', resolve); setTimeout(resolve, 1000) })
  socket.destroy()
  return answer
}

t.test('a client that half-closes right after its POST leaves no upload', async (t) => {
  const { origin, app, uploadDir, storage } = await startServer(t)
  for (let i = 0; i < 10; i++) {
    await raw(origin, 'POST /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n\r\n', true)
  }
  await sleep(200)
  const { readdirSync } = await import('node:fs')
  const rows = await app.tus.list()
  const files = readdirSync(uploadDir)
  if (storage.objects === undefined) {
    t.equal(rows.length, files.length, 'rows and files agree')
  } else {
    // On object storage an upload with no byte yet has nothing in the bucket.
    t.same(files, [], 'nothing went to uploadDir')
    t.same(await everything(storage.objects), { objects: [], uploads: [] }, 'nothing in the bucket')
  }
  // Whatever Node managed to answer before it saw the FIN is a real upload; nothing unanswered stays.
  t.ok(rows.length <= 10)
  t.comment(`${rows.length} of 10 creations were answered before the FIN was seen`)
})

t.test('HTTP/1.0 without Host gets an absolute Location on the address it reached', async (t) => {
  const { origin } = await startServer(t)
  const answer = await raw(origin, 'POST /files/ HTTP/1.0\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n\r\n', false)
  t.match(answer, /^HTTP\/1\.[01] 201/)
  const location = /location: (\S+)/i.exec(answer)?.[1]
  t.match(location, new RegExp(`^http://127\\.0\\.0\\.1:${new URL(origin).port}/files/[0-9a-f]{32}$`))
})

// A PATCH body is streamed to disk, never buffered: the server's memory must not
// grow with the size of the body. The server runs in its own process so its RSS
// can be read from /proc.
import t from 'tap'
import { createHash } from 'node:crypto'
import { createReadStream, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, send } from './helpers/http.js'

const rss = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024

t.test('a large PATCH (256 MiB, MEM_TEST_MIB to change) uses about the memory of a 1 MiB one', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'uploads')
  const { child, origin } = await spawnServer(t, ['dist/lib/cli/main.js', 'serve', '--port', '0', '--log-level', 'warn',
    '--upload-dir', uploadDir, '--db-path', join(dir, 'db.sqlite')])
  const pid = child.pid!
  const chunk = bytes(1 << 20, 7)
  const total = Number(process.env.MEM_TEST_MIB ?? 256)

  async function upload (mebibytes: number): Promise<{ peak: number; url: string; hash: string }> {
    const created = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': String(mebibytes << 20) } })
    const url = created.headers.location as string
    let peak = rss(pid)
    const sampler = setInterval(() => { peak = Math.max(peak, rss(pid)) }, 20)
    const hash = createHash('sha256')
    const res = await send('PATCH', url, {
      headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(mebibytes << 20) },
      stream: (req) => {
        let sent = 0
        const pump = (): void => {
          while (sent < mebibytes) {
            sent++
            hash.update(chunk)
            if (!req.write(chunk)) { req.once('drain', pump); return }
          }
          req.end()
        }
        pump()
      }
    })
    clearInterval(sampler)
    t.equal(res.status, 204, `${mebibytes} MiB PATCH applied`)
    return { peak, url, hash: hash.digest('hex') }
  }

  const small = await upload(1)
  const large = await upload(total)
  const id = large.url.split('/').pop()!
  const stored = createHash('sha256')
  for await (const c of createReadStream(join(uploadDir, id))) stored.update(c as Buffer)
  t.equal(stored.digest('hex'), large.hash, 'stored bytes equal the body')
  const growth = large.peak - small.peak
  t.comment(`peak RSS: ${(small.peak / 2 ** 20).toFixed(1)} MiB after 1 MiB, ${(large.peak / 2 ** 20).toFixed(1)} MiB during ${total} MiB`)
  t.ok(growth < 48 * 2 ** 20, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB for a ${total}x larger body`)
})

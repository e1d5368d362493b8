// A realtime client in JavaScript, as a browser would be one: npm `noise-handshake` 4.2.0 speaking
// Noise XK to the zt reference server over a WebSocket (`ws` in Node; the browser's own
// WebSocket works the same way).
//
//   ZT_BASE=http://127.0.0.1:8080 ZT_TOKEN=... ZT_CHANNEL=chn_... node client.cjs good
//   ZT_BASE=http://127.0.0.1:8080 node client.cjs wrong-key
//
// `good`: checks the identity's signature over the channel key, completes the handshake with the
// token inside it, expects `ready`, pings, posts a message over HTTP and expects it back on the
// stream; prints "interop ok". `wrong-key`: pins a random key instead; the handshake must fail;
// prints "refused".
'use strict'

const Noise = require('noise-handshake')
const Cipher = require('noise-handshake/cipher')
const sodium = require('sodium-universal')
const WebSocket = require('ws')

const PROTOCOL = 'Noise_XK_25519_ChaChaPoly_BLAKE2b'
const CONTEXT = Buffer.from('zt-chat realtime static key v1\n')
const EMPTY = Buffer.alloc(0)
const LAST = 0

function fail (why) {
  console.error('interop failed: ' + why)
  process.exit(1)
}

// Frames in arrival order, and the close.
function inbox (ws) {
  const queue = []
  const waiting = []
  let closed = false
  ws.on('message', (data) => {
    const frame = Buffer.from(data)
    if (waiting.length) waiting.shift().resolve(frame)
    else queue.push(frame)
  })
  ws.on('close', () => {
    closed = true
    while (waiting.length) waiting.shift().resolve(null)
  })
  return {
    next () {
      if (queue.length) return Promise.resolve(queue.shift())
      if (closed) return Promise.resolve(null)
      return new Promise((resolve) => waiting.push({ resolve }))
    }
  }
}

async function identity (base) {
  const view = await (await fetch(base + '/api/v1/identity')).json()
  if (view.channel.protocol !== PROTOCOL) fail('unexpected protocol ' + view.channel.protocol)
  const key = Buffer.from(view.channel.static_key, 'hex')
  const signature = Buffer.from(view.channel.signature, 'hex')
  const publicKey = Buffer.from(view.public_key, 'hex')
  const signed = Buffer.concat([CONTEXT, key])
  if (!sodium.crypto_sign_verify_detached(signature, signed, publicKey)) {
    fail('the identity key did not sign the channel key')
  }
  return { key, prologue: Buffer.from(view.channel.prologue) }
}

async function main () {
  const mode = process.argv[2]
  const base = process.env.ZT_BASE
  const { key, prologue } = await identity(base)
  const pinned = mode === 'wrong-key' ? Buffer.alloc(32, 7) : key

  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/api/v1/realtime')
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject) })
  const frames = inbox(ws)

  const noise = new Noise('XK', true)
  noise.initialise(prologue, pinned)
  ws.send(noise.send())
  const msg2 = await frames.next()
  if (msg2 === null) {
    if (mode === 'wrong-key') { console.log('refused'); process.exit(0) }
    fail('the server closed during the handshake')
  }
  try {
    noise.recv(msg2)
  } catch (e) {
    if (mode === 'wrong-key') { console.log('refused'); process.exit(0) }
    throw e
  }
  if (mode === 'wrong-key') fail('a handshake with a wrong key went on')
  const hello = Buffer.from(JSON.stringify({ token: process.env.ZT_TOKEN }))
  ws.send(noise.send(hello))
  const tx = new Cipher(noise.tx)
  const rx = new Cipher(noise.rx)

  // Records: one flag byte (1 = more follows, 0 = last), then the JSON.
  let pending = EMPTY
  async function record () {
    for (;;) {
      const frame = await frames.next()
      if (frame === null) fail('the stream closed')
      const plain = Buffer.from(rx.decrypt(frame, EMPTY))
      pending = Buffer.concat([pending, plain.subarray(1)])
      if (plain[0] === LAST) {
        const done = JSON.parse(pending.toString())
        pending = EMPTY
        return done
      }
    }
  }
  function send (value) {
    const json = Buffer.from(JSON.stringify(value))
    ws.send(Buffer.from(tx.encrypt(Buffer.concat([Buffer.from([LAST]), json]), EMPTY)))
  }

  const ready = await record()
  if (ready.type !== 'ready') fail('expected ready, got ' + JSON.stringify(ready))
  send({ type: 'ping' })
  const pong = await record()
  if (pong.type !== 'pong') fail('expected pong, got ' + JSON.stringify(pong))

  const body = 'hello from noise-handshake'
  const posted = await fetch(`${base}/api/v1/channels/${process.env.ZT_CHANNEL}/messages`, {
    method: 'POST',
    headers: { authorization: 'Bearer ' + process.env.ZT_TOKEN, 'content-type': 'application/json' },
    body: JSON.stringify({ body })
  })
  if (posted.status !== 201) fail('posting answered ' + posted.status)
  for (;;) {
    const next = await record()
    if (next.type === 'posted' && next.message.body === body) break
  }
  ws.close()
  console.log('interop ok')
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)))

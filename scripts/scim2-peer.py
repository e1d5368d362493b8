#!/usr/bin/env python3
"""The peer of the SCIM benchmark (examples/chat-server/benches/scim.rs): `scim2-server`'s own
command line, with everything it sets up (its schemas, provider, service and in-memory storage),
served by waitress, a production WSGI server, instead of the standard library's `wsgiref`.

Why: the command serves with `wsgiref`'s ThreadingWSGIServer, which closes every connection
after one request and listens with a backlog of 5; with 32 requests in flight the kernel drops
connection attempts and the load generator's connects time out. A deployment of a Python WSGI
application runs it under a production server; waitress keeps one process (so the in-memory
store is shared by every request), keeps connections alive and listens with a deep backlog.

    python scripts/scim2-peer.py --hostname 127.0.0.1 --port 8000    (scim2-server's options)
"""
import sys

import waitress
import scim2_server.testserver.cli as cli


class WaitressServer:
    """What `with make_server(...) as server: server.serve_forever()` needs."""

    def __init__(self, host, port, app):
        self.host, self.port, self.app = host, port, app

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def serve_forever(self):
        waitress.serve(self.app, host=self.host, port=self.port, threads=8, backlog=1024,
                       connection_limit=1000, _quiet=True)


cli.make_server = lambda host, port, app, server_class=None: WaitressServer(host, port, app)

if __name__ == "__main__":
    sys.exit(cli.main())

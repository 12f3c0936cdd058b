"""A TCP to unix-socket relay for the tests: the seed's samples connect to
host="localhost", port=5432, and the test server (scripts/pg-test-server.sh)
listens only on a unix socket in its own directory. This relays
127.0.0.1:PORT to that socket, so the samples run as written against the
tests' own server and never meet another one.

    python3 pgforward.py PORT SOCKET_PATH

Prints "ready" once listening; stops when stdin closes (the test process
ended) or on SIGTERM.
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def main(port, sock):
    async def handle(r, w):
        try:
            ur, uw = await asyncio.open_unix_connection(sock)
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    # The parent holds our stdin: EOF means it has gone.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))

#!/usr/bin/python3
"""A line-protocol TCP server for the spec tests, on 127.0.0.1.

  pong_server.py PORT

PING        -> PONG
BIG N       -> N bytes of "x", then a newline (for rate faults)
CALL PORT   -> sends PING to 127.0.0.1:PORT and answers its reply, or
               "ERR <strerror>" when that fails
FILE PATH   -> reads the file: "OK <bytes>" or "ERR <strerror>"
PAIR        -> a byte through a Unix socket pair: "OK" or "ERR <strerror>"
"""
import socket
import socketserver
import sys


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            words = line.decode().split()
            if words == ["PING"]:
                answer = b"PONG\n"
            elif len(words) == 2 and words[0] == "BIG":
                answer = b"x" * int(words[1]) + b"\n"
            elif len(words) == 2 and words[0] == "CALL":
                try:
                    with socket.create_connection(("127.0.0.1", int(words[1])), timeout=5) as s:
                        s.sendall(b"PING\n")
                        answer = s.makefile("rb").readline() or b"ERR closed\n"
                except OSError as e:
                    answer = ("ERR " + (e.strerror or str(e)) + "\n").encode()
            elif len(words) == 2 and words[0] == "FILE":
                try:
                    with open(words[1], "rb") as f:
                        answer = ("OK %d\n" % len(f.read())).encode()
                except OSError as e:
                    answer = ("ERR " + (e.strerror or str(e)) + "\n").encode()
            elif words == ["PAIR"]:
                a, b = socket.socketpair()
                try:
                    a.sendall(b"x")
                    answer = b"OK\n" if b.recv(1) == b"x" else b"ERR short\n"
                except OSError as e:
                    answer = ("ERR " + (e.strerror or str(e)) + "\n").encode()
                finally:
                    a.close()
                    b.close()
            else:
                answer = b"ERR unknown command\n"
            self.wfile.write(answer)
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

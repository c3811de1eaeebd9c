#!/usr/bin/python3
"""A small notes service for the fault spec examples: HTTP on 127.0.0.1,
notes stored in a SQLite database file.

  notes_server.py PORT DB_PATH

GET  /health            200 "ok"
POST /notes             stores the body; 201 {"id": N}, or 500 on a database error
GET  /notes             200 {"count": N}
GET  /resolve?host=H    resolves H; 200 {"addr": ...} or 502 {"error": ...}
GET  /upstream?port=P   sends "PING\\n" to 127.0.0.1:P; 200 with the reply or 502
GET  /upstream          the same to $UPSTREAM_ADDR (HOST:PORT)
"""
import json
import os
import socket
import sqlite3
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1])
DB = sys.argv[2]


def db():
    conn = sqlite3.connect(DB, timeout=2)
    conn.execute("create table if not exists notes (id integer primary key, body text)")
    return conn


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/health":
            self.reply(200, "ok")
        elif url.path == "/notes":
            try:
                with db() as conn:
                    (count,) = conn.execute("select count(*) from notes").fetchone()
                self.reply(200, {"count": count})
            except sqlite3.Error as e:
                self.reply(500, {"error": str(e)})
        elif url.path == "/resolve":
            host = query.get("host", ["localhost"])[0]
            try:
                info = socket.getaddrinfo(host, 80, proto=socket.IPPROTO_TCP)
                self.reply(200, {"addr": info[0][4][0]})
            except socket.gaierror as e:
                self.reply(502, {"error": "dns: " + str(e)})
        elif url.path == "/upstream":
            host, port = "127.0.0.1", query.get("port", [None])[0]
            if port is None:
                host, _, port = os.environ.get("UPSTREAM_ADDR", "127.0.0.1:0").rpartition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=5) as s:
                    s.sendall(b"PING\n")
                    self.reply(200, {"reply": s.recv(100).decode().strip()})
            except OSError as e:
                self.reply(502, {"error": "upstream: " + (e.strerror or str(e))})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/notes":
            self.reply(404, {"error": "not found"})
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        try:
            with db() as conn:
                cur = conn.execute("insert into notes (body) values (?)", (body,))
            self.reply(201, {"id": cur.lastrowid})
        except sqlite3.Error as e:
            self.reply(500, {"error": "database: " + str(e)})

    def log_message(self, fmt, *args):
        sys.stderr.write("notes: " + (fmt % args) + "\n")


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

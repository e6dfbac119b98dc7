#!/usr/bin/env python3
"""The brute-force penalty as a guessing client meets it, per mechanism.

Sends GUESSES different wrong passwords for one user from one client address over one
connection to a running postward-authd, with PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256 (each
mechanism with its own user and address, so their records do not mix), and prints how long
each failure took to be answered.

    tests/bench/authd-penalty.py SOCKET [GUESSES]        (default 6)

The user names are user0..user3; they need not exist (unknown users are penalised alike).
"""

import base64
import hashlib
import hmac
import os
import socket
import sys
import time

b64 = lambda b: base64.b64encode(b).decode()


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.s.sendall(b"VERSION\t1\t2\nCPID\t4242\n")
        while self.f.readline().rstrip(b"\n") != b"DONE":
            pass
        self.id = 0

    def ask(self, line):
        self.s.sendall(line.encode() + b"\n")
        return self.f.readline().decode().rstrip("\n")

    def start(self, mech, rip, resp=None):
        self.id += 1
        line = f"AUTH\t{self.id}\t{mech}\tservice=smtp\tnologin\tlip=127.0.0.1\trip={rip}"
        if resp is not None:
            line += f"\tresp={resp}"
        return self.id, self.ask(line)

    def cont(self, i, data):
        return self.ask(f"CONT\t{i}\t{b64(data)}")


def plain(c, user, pw, rip):
    return c.start("PLAIN", rip, b64(f"\0{user}\0{pw}".encode()))[1]


def login(c, user, pw, rip):
    i, _ = c.start("LOGIN", rip)
    c.cont(i, user.encode())
    return c.cont(i, pw.encode())


def cram(c, user, pw, rip):
    i, r = c.start("CRAM-MD5", rip)
    challenge = base64.b64decode(r.split("\t")[2])
    digest = hmac.new(pw.encode(), challenge, hashlib.md5).hexdigest()
    return c.cont(i, f"{user} {digest}".encode())


def scram(c, user, pw, rip):
    nonce = b64(os.urandom(12))
    bare = f"n={user},r={nonce}"
    i, r = c.start("SCRAM-SHA-256", rip, b64(("n,," + bare).encode()))
    first = base64.b64decode(r.split("\t")[2]).decode()
    fields = dict(f.split("=", 1) for f in first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", pw.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    without = f"c=biws,r={fields['r']}"
    sig = hmac.new(stored, f"{bare},{first},{without}".encode(), hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    return c.cont(i, f"{without},p={b64(proof)}".encode())


def main():
    path = sys.argv[1]
    guesses = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    for n, (name, fn) in enumerate([("PLAIN", plain), ("LOGIN", login), ("CRAM-MD5", cram), ("SCRAM-SHA-256", scram)]):
        c = Conn(path)
        took = []
        for g in range(guesses):
            started = time.monotonic()
            answer = fn(c, f"user{n}", f"guess-{g}", f"192.0.2.{10 + n}")
            took.append(time.monotonic() - started)
            assert answer.startswith("FAIL"), answer
        print(f"{name:14} " + "  ".join(f"{t:5.2f}" for t in took) + "  s")


main()

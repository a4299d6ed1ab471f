"""campusgw --hash-password: the hash it prints verifies (checked with libsodium
itself through ctypes), a config holding it passes --check-config, bad input is
refused, and on a terminal it asks twice without echoing the password."""

import ctypes
import ctypes.util
import os
import re
import select
import subprocess
import time

from harness import BUILD_DIR, SANITIZER_MARKS, log, run

EXE = os.path.join(BUILD_DIR, "campusgw")
HASH_RE = re.compile(r"^\$argon2id\$v=19\$m=65536,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$")


def sodium():
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert lib.sodium_init() >= 0
    lib.crypto_pwhash_str_verify.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                             ctypes.c_ulonglong]
    return lib


def verifies(hash_line, secret):
    pw = secret.encode()
    return sodium().crypto_pwhash_str_verify(hash_line.encode(), pw, len(pw)) == 0


def hash_of(stdin_bytes):
    p = subprocess.run([EXE, "--hash-password"], input=stdin_bytes, capture_output=True,
                       timeout=60)
    err = p.stderr.decode()
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    return p.returncode, p.stdout.decode(), err


def config(wd, users):
    return wd.file("c.cfg",
                   'site = { district = "d1"; school = "s1"; name = "Test"; };\n'
                   f'state_dir = "{wd.path}";\n'
                   'http = { listen = "127.0.0.1:8080";\n'
                   f'  users = ( {users} ); }};\n')


def check_config(path):
    p = subprocess.run([EXE, "--check-config", "-c", path], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_piped(wd):
    password = "pässwörd 密码 with spaces "
    rc, out, err = hash_of(password.encode() + b"\n")
    assert rc == 0, err
    line = out.rstrip("\n")
    assert out.endswith("\n") and "\n" not in line, repr(out)
    assert HASH_RE.match(line), line
    assert err == "", err
    assert verifies(line, password)
    assert not verifies(line, password.rstrip())  # spaces are part of it
    assert not verifies(line, password + "\n")    # the newline is not
    # without a newline, and with \r\n: the same password
    rc, out2, _ = hash_of(password.encode())
    assert rc == 0 and verifies(out2.strip(), password)
    rc, out3, _ = hash_of(password.encode() + b"\r\n")
    assert rc == 0 and verifies(out3.strip(), password)
    assert len({line, out2.strip(), out3.strip()}) == 3  # salted

    # a token for scripts is hashed the same way
    token = "3f1c0e6a9b7d4c2e8f5a1b0c9d8e7f6a"
    rc, tout, err = hash_of(token.encode() + b"\n")
    assert rc == 0, err
    assert verifies(tout.strip(), token)

    # the config takes both; the summary names the user, never a hash
    path = config(wd, f'{{ name = "wang"; role = "operator"; password_hash = "{line}"; '
                      f'token_hash = "{tout.strip()}"; }}')
    rc, out = check_config(path)
    log(out.strip().splitlines()[-2])
    assert rc == 0, out
    assert "http: listen 127.0.0.1:8080, HTTP, sessions end after 480 min idle, 1 user: " \
           "wang (operator, token)\n" in out, out
    assert "argon2" not in out, out

    # a hash damaged in copying is refused with file:line, without echoing it
    bad = line[:40] + "!" + line[41:]
    path = config(wd, f'{{ name = "wang"; role = "operator"; password_hash = "{bad}"; }}')
    rc, out = check_config(path)
    assert rc == 1, out
    assert re.search(rf"^{re.escape(path)}:4: http\.users\[0\]\.password_hash: a malformed "
                     r"Argon2id hash", out, re.M), out
    assert bad not in out and "argon2id$v" not in out, out


def test_refused(wd):
    cases = [
        (b"", "refusing an empty password"),
        (b"\n", "refusing an empty password"),
        (b"one\ntwo\n", "stdin holds more than one line"),
        (b"a\0b\n", "holds a NUL byte"),
        (b"x" * 1025, "longer than 1024 bytes"),
    ]
    for data, want in cases:
        rc, out, err = hash_of(data)
        assert rc == 1, (data[:20], rc, err)
        assert out == "", out
        assert want in err, err
    rc, out, _ = hash_of(b"x" * 1024)
    assert rc == 0 and verifies(out.strip(), "x" * 1024)
    rc, out, err = hash_of(b"short\n")
    assert rc == 0 and verifies(out.strip(), "short")
    assert "fewer than 8 characters" in err, err
    p = subprocess.run([EXE, "--hash-password", "-c", wd.file("c.cfg", "")], input=b"pw\n",
                       capture_output=True, timeout=30)
    assert p.returncode == 2 and p.stdout == b"", p


class Terminal:
    """campusgw --hash-password with stdin and stderr on a pseudo-terminal."""

    def __init__(self):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen([EXE, "--hash-password"], stdin=slave, stderr=slave,
                                     stdout=subprocess.PIPE)
        os.close(slave)
        self.screen = b""

    def expect(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; screen {self.screen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"terminal closed waiting for {text!r}; screen {self.screen!r}"
                self.screen += chunk

    def type(self, line):
        os.write(self.master, line.encode() + b"\n")

    def finish(self):
        out, _ = self.proc.communicate(timeout=60)
        # whatever else reached the terminal
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.screen += chunk
        os.close(self.master)
        for mark in SANITIZER_MARKS:
            assert mark.encode() not in self.screen, self.screen
        return self.proc.returncode, out.decode()


def test_terminal(wd):
    password = "tty-pass-word-1"
    t = Terminal()
    t.expect("Password: ")
    t.type(password)
    t.expect("Again: ")
    t.type(password)
    rc, out = t.finish()
    assert rc == 0, t.screen
    assert verifies(out.strip(), password), out
    assert password.encode() not in t.screen, t.screen  # never echoed

    t = Terminal()
    t.expect("Password: ")
    t.type(password)
    t.expect("Again: ")
    t.type(password + "x")
    rc, out = t.finish()
    assert rc == 1 and out == "", (rc, out)
    assert b"the two passwords differ" in t.screen, t.screen
    assert password.encode() not in t.screen, t.screen

    t = Terminal()
    t.expect("Password: ")
    t.type("")
    rc, out = t.finish()
    assert rc == 1 and out == "", (rc, out)
    assert b"refusing an empty password" in t.screen, t.screen


if __name__ == "__main__":
    run([test_piped, test_refused, test_terminal])

#!/usr/bin/python3
"""gateway/http_server.c (libmicrohttpd bridged onto the libuv loop) through the
gw-http-demo driver on a free loopback port: methods, limits, security headers,
static assets with ETags, asynchronous answers that do not serialize,
Server-Sent Events (events, heartbeats, refusal, client limit, dropping a
client that falls behind), HTTPS with a self-signed certificate, connections
beyond the limit, and a clean exit on SIGTERM with requests and streams open."""

import http.client
import json
import os
import socket
import ssl
import threading
import time

from harness import (BUILD_DIR, SANITIZER_MARKS, Process, free_port, log, make_cert, run,
                     wait_for)

DEMO = os.environ.get("GW_HTTP_DEMO", os.path.join(BUILD_DIR, "gw-http-demo"))
# The bridge is two threads: a ThreadSanitizer build of the demo is checked too.
MARKS = SANITIZER_MARKS + ("WARNING: ThreadSanitizer",)
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class Demo(Process):
    def __init__(self, wd, cert=None, env=None, name="demo"):
        self.port = free_port()
        argv = [DEMO, str(self.port)] + (list(cert) if cert else [])
        full_env = dict(os.environ)
        full_env.update(env or {})
        super().__init__(name, argv, wd, env=full_env)
        self.tls = cert is not None

    def start(self):
        super().start()
        self.wait_output(f"listening port={self.port}", 10)
        return self

    def conn(self, timeout=5):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.proc.args[2])
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r, data

    def stats(self):
        r, data = self.request("GET", "/stats")
        assert r.status == 200, r.status
        return json.loads(data)

    def stop_clean(self, timeout=10):
        """SIGTERM: exit 0, the loop closed cleanly, no sanitizer report."""
        rc = self.stop(timeout=timeout)
        out = self.output()
        for mark in MARKS:
            assert mark not in out, f"sanitizer report ({mark}):\n{out[-3000:]}"
        assert rc == 0, f"demo exited {rc}:\n{out[-3000:]}"
        assert "stopped cleanly" in out, out[-2000:]


def check_security_headers(r, html_csp=True):
    for name, value in SECURITY.items():
        assert r.getheader(name) == value, (name, r.getheader(name))
    csp = r.getheader("Content-Security-Policy") or ""
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp


def expect_error(r, data, status, message=None):
    assert r.status == status, (r.status, data)
    check_security_headers(r)
    assert r.getheader("Content-Type") == "application/json", r.getheader("Content-Type")
    body = json.loads(data)
    if message:
        assert body == {"error": message}, body


# ---- scenarios ----

def test_methods_routes_and_headers(wd):
    d = Demo(wd).start()
    r, data = d.request("GET", "/echo?a=1&b=x%20y&flag&%E6%A0%A1=%E5%9B%AD",
                        headers={"Cookie": "sid=abc", "Authorization": "Bearer t0k",
                                 "X-CSRF-Token": "c5rf", "Accept-Language": "zh-CN,en;q=0.5",
                                 "X-Other": "not passed"})
    assert r.status == 200, (r.status, data)
    check_security_headers(r)
    assert r.getheader("Cache-Control") == "no-store"
    assert r.getheader("X-Demo") == "yes"
    assert r.getheader("X-Bad") is None and r.getheader("Injected") is None
    cookies = r.msg.get_all("Set-Cookie")
    assert cookies == ["demo=1; HttpOnly; SameSite=Strict; Path=/", "second=2; Path=/"], cookies
    e = json.loads(data)
    assert e["method"] == "GET" and e["path"] == "/echo" and e["subpath"] == "", e
    assert e["query"] == [["a", "1"], ["b", "x y"], ["flag", ""], ["校", "园"]], e["query"]
    assert e["headers"] == {"cookie": "sid=abc", "authorization": "Bearer t0k",
                            "csrf_token": "c5rf", "content_type": None,
                            "accept_language": "zh-CN,en;q=0.5"}, e["headers"]
    assert e["client"] == "127.0.0.1" and e["loopback"] is True and e["https"] is False, e

    # POST with a body, a prefix route and its subpath (percent-decoded).
    body = json.dumps({"note": "已确认 by 王"}).encode()
    r, data = d.request("POST", "/echo/alarms/A-3F%2Fsmoke/ack", body=body,
                        headers={"Content-Type": "application/json"})
    e = json.loads(data)
    assert r.status == 200 and e["method"] == "POST", e
    assert e["subpath"] == "alarms/A-3F/smoke/ack", e["subpath"]
    assert e["body"] == body.decode() and e["body_len"] == len(body), e
    assert e["headers"]["content_type"] == "application/json"

    # HEAD: the GET's headers, no body.
    r, data = d.request("HEAD", "/echo")
    assert r.status == 200 and data == b"" and int(r.getheader("Content-Length")) > 0
    check_security_headers(r)

    # Static: ETag, revalidation, HEAD, POST refused.
    r, data = d.request("GET", "/static.txt")
    assert r.status == 200 and data == b"static text from campusgw\n", (r.status, data)
    assert r.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert r.getheader("Cache-Control") == "no-cache"
    check_security_headers(r)
    etag = r.getheader("ETag")
    assert etag and etag.startswith('"') and etag.endswith('"'), etag
    r, data = d.request("GET", "/static.txt", headers={"If-None-Match": etag})
    assert r.status == 304 and data == b"" and r.getheader("ETag") == etag, r.status
    r, data = d.request("GET", "/static.txt", headers={"If-None-Match": '"other"'})
    assert r.status == 200 and data
    r, data = d.request("HEAD", "/static.txt")
    assert r.status == 200 and data == b"" and r.getheader("Content-Length") == "26"
    r, data = d.request("POST", "/static.txt", body=b"x")
    expect_error(r, data, 405)
    assert r.getheader("Allow") == "GET, HEAD", r.getheader("Allow")

    # Keep-alive: static, error and dynamic answers on one connection.
    c = d.conn()
    for path, status in (("/static.txt", 200), ("/nope", 404), ("/echo", 200),
                         ("/static.txt", 200)):
        r, data = d.request("GET", path, conn=c)
        assert r.status == status, (path, r.status)
        assert r.getheader("Connection") != "close", (path, r.getheader("Connection"))
    c.close()

    # Methods: only GET, HEAD and POST exist; routes say which they take.
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"):
        r, data = d.request(method, "/echo")
        expect_error(r, data, 405, "method not allowed")
        assert r.getheader("Allow") == "GET, HEAD, POST", (method, r.getheader("Allow"))
    r, data = d.request("GET", "/post-only")
    expect_error(r, data, 405)
    assert r.getheader("Allow") == "POST"
    r, data = d.request("POST", "/post-only", body=b"{}")
    assert r.status == 200 and json.loads(data) == {"ok": True}
    r, data = d.request("POST", "/slow", body=b"")
    expect_error(r, data, 405)
    assert r.getheader("Allow") == "GET, HEAD"

    # Unknown paths, and no way around the route strings.
    for path in ("/nope", "/echoes", "/static.txt/", "/../static.txt", "/static.txt%00.js",
                 "/echo/../../etc/passwd"):
        r, data = d.request("GET", path)
        if path.startswith("/echo/"):
            # A prefix route sees the text, decoded; nothing reads files.
            assert r.status == 200 and json.loads(data)["subpath"] == "../../etc/passwd"
        else:
            expect_error(r, data, 404, "not found")
    r, data = d.request("GET", "/" + "a" * 600)
    expect_error(r, data, 414, "path too long")
    r, data = d.request("GET", "/echo?" + "&".join(f"a{i}={i}" for i in range(64)))
    assert r.status == 200 and len(json.loads(data)["query"]) == 64
    r, data = d.request("GET", "/echo?" + "&".join(f"a{i}={i}" for i in range(65)))
    expect_error(r, data, 400, "too many query arguments")
    r, data = d.request("GET", "/echo?id=a%00b")  # a NUL is never decoded into a string
    assert json.loads(data)["query"] == [["id", "a%00b"]], data
    r, data = d.request("HEAD", "/events")
    assert r.status == 405 and data == b"" and r.getheader("Allow") == "GET", r.status

    # Body limit (16 KiB): by Content-Length before reading, and a chunked body past it.
    r, data = d.request("POST", "/echo", body=b"a" * (16 * 1024))
    assert r.status == 200 and json.loads(data)["body_len"] == 16 * 1024
    r, data = d.request("POST", "/echo", body=b"a" * (16 * 1024 + 1))
    expect_error(r, data, 413, "request body too large")
    c = d.conn()
    c.putrequest("POST", "/echo")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for _ in range(6):
        c.send(b"1000\r\n" + b"b" * 4096 + b"\r\n")
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    expect_error(r, r.read(), 413, "request body too large")
    c.close()
    r, data = d.request("POST", "/echo", body=b"x", headers={"Content-Length": "zz"})
    assert r.status == 400, r.status

    # A request with a body on an unknown path is refused without reading it.
    r, data = d.request("POST", "/nope", body=b"a" * 1000)
    expect_error(r, data, 404)

    st = d.stats()
    assert st["pending"] == 1 and st["sse_clients"] == 0, st  # the /stats request itself
    assert st["rejected"] >= 15, st
    d.stop_clean()


def test_ipv6(wd):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        raise AssertionError(f"this machine has no IPv6 loopback ({e}): cannot test ::1")
    d = Demo(wd, env={"GW_HTTP_HOST": "::1"}).start()
    c = http.client.HTTPConnection("::1", d.port, timeout=5)
    r, data = d.request("GET", "/echo", conn=c)
    e = json.loads(data)
    assert r.status == 200 and e["client"] == "::1" and e["loopback"] is True, e
    c.close()
    d.stop_clean()
    # Not a numeric address: refused before anything starts.
    bad = Demo(wd, env={"GW_HTTP_HOST": "localhost"}, name="badhost")
    Process.start(bad)
    assert bad.proc.wait(10) == 1
    assert "listen host must be a numeric IPv4 or IPv6 address" in bad.output(), bad.output()


def test_async_requests_do_not_serialize(wd):
    d = Demo(wd).start()
    results = []
    lock = threading.Lock()

    def slow():
        t0 = time.monotonic()
        r, data = d.request("GET", "/slow")
        with lock:
            results.append((r.status, data, time.monotonic() - t0))

    threads = [threading.Thread(target=slow) for _ in range(10)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    # While ten answers are pending on the loop, MHD's thread still serves.
    wait_for(lambda: d.stats()["pending"] >= 10, 2, "ten pending /slow requests")
    t1 = time.monotonic()
    r, data = d.request("GET", "/static.txt")
    assert r.status == 200 and time.monotonic() - t1 < 0.25, time.monotonic() - t1
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    log(f"10 parallel /slow in {elapsed:.2f}s")
    assert len(results) == 10, results
    for status, data, took in results:
        assert status == 200 and json.loads(data) == {"slow": True}, (status, data)
        assert took >= 0.29, took
    assert elapsed < 1.5, f"10 parallel /slow took {elapsed:.2f}s: they serialized"
    assert d.stats()["pending"] == 1
    d.stop_clean()


class SseReader:
    """Reads an event stream on a thread: events and comment lines as they come."""

    def __init__(self, demo, path="/events"):
        self.conn = demo.conn(timeout=10)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        self.events = []
        self.comments = []
        self.retry = None
        self.ended = False
        self.error = None
        self.lock = threading.Lock()
        if self.resp.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        event, data = None, []
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                with self.lock:
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    elif line.startswith("retry: "):
                        self.retry = int(line[7:])
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "" and event is not None:
                        self.events.append((event, "\n".join(data)))
                        event, data = None, []
        except Exception as e:  # noqa: BLE001 - the test looks at it
            self.error = e
        self.ended = True

    def counters(self):
        with self.lock:
            return [json.loads(d)["n"] for e, d in self.events if e == "counter"]

    def close(self):
        self.conn.close()


def test_sse(wd):
    d = Demo(wd, env={"GW_HTTP_HEARTBEAT_MS": "300", "GW_HTTP_MAX_SSE": "3"}).start()
    a = SseReader(d)
    assert a.resp.status == 200, a.resp.status
    assert a.resp.getheader("Content-Type") == "text/event-stream"
    assert a.resp.getheader("Cache-Control") == "no-store"
    check_security_headers(a.resp)
    wait_for(lambda: len(a.counters()) >= 5, 5, "five counter events")
    n = a.counters()
    assert n == list(range(n[0], n[0] + len(n))), n  # in order, none lost
    assert a.retry == 3000
    wait_for(lambda: "keepalive" in a.comments, 3, "a heartbeat comment")

    # Refused by on_open (auth), wrong methods, the client limit.
    r, data = d.request("GET", "/events?deny=1")
    expect_error(r, data, 401, "not logged in")
    r, data = d.request("POST", "/events", body=b"")
    expect_error(r, data, 405)
    b, c = SseReader(d), SseReader(d)
    assert b.resp.status == 200 and c.resp.status == 200
    wait_for(lambda: d.stats()["sse_clients"] == 3, 3, "three streams")
    r, data = d.request("GET", "/events")
    expect_error(r, data, 503, "too many event streams")
    b.close()
    c.close()
    # A client that left is noticed at the next write (a heartbeat at the latest).
    wait_for(lambda: d.stats()["sse_clients"] == 1, 5, "the closed streams to be reaped")
    assert not a.ended and len(a.counters()) > len(n)

    # Multi-line data becomes one data: line per line (the reader joins them back).
    r, data = d.request("POST", "/burst?n=1&text=line%201%0Aline%202%0D%0Aline%203", body=b"")
    assert r.status == 200 and json.loads(data) == {"reached": 1}, data
    wait_for(lambda: ("burst", "line 1\nline 2\nline 3") in a.events, 3, "the multi-line event")
    d.stop_clean()

    # A client that does not read falls behind and is dropped.
    d2 = Demo(wd, env={"GW_HTTP_SSE_QUEUE": "65536"}, name="demo2").start()
    stalled = socket.create_connection(("127.0.0.1", d2.port))
    stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: d2.stats()["sse_clients"] == 1, 3, "the stalled stream")
    r, data = d2.request("POST", "/burst?n=200&size=60000", body=b"")
    assert r.status == 200, (r.status, data)
    wait_for(lambda: d2.stats()["sse_dropped"] == 1, 5, "the stalled client to be dropped")
    # Now read it: what was queued, a last comment, then the end of the stream.
    stalled.settimeout(10)
    got = b""
    while True:
        chunk = stalled.recv(65536)
        if not chunk:
            break
        got += chunk
        if got.endswith(b"0\r\n\r\n"):
            break
    assert b": dropped: too far behind" in got, got[-300:]
    assert got.endswith(b"0\r\n\r\n"), got[-100:]  # a clean chunked end, not a reset
    stalled.close()
    wait_for(lambda: d2.stats()["sse_clients"] == 0, 5, "the dropped stream to be gone")
    assert "dropped for falling behind count=1" in d2.output()
    d2.stop_clean()


def test_https(wd):
    cert, key = make_cert(wd, "demo")
    d = Demo(wd, cert=(cert, key)).start()
    r, data = d.request("GET", "/echo?x=1")
    assert r.status == 200, r.status
    e = json.loads(data)
    assert e["https"] is True and e["query"] == [["x", "1"]], e
    check_security_headers(r)
    r, data = d.request("POST", "/echo", body=b"over tls")
    assert json.loads(data)["body"] == "over tls"
    a = SseReader(d)
    wait_for(lambda: len(a.counters()) >= 2, 5, "events over TLS")
    # Plain HTTP to the HTTPS port gets no HTTP answer.
    plain = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
    try:
        plain.request("GET", "/echo")
        resp = plain.getresponse()
        raise AssertionError(f"plain HTTP answered {resp.status} on the HTTPS port")
    except (http.client.HTTPException, ConnectionError, OSError):
        pass
    plain.close()
    # Only TLS 1.2 and 1.3 are offered (HTTPS_PRIORITIES).
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as raw:
        ctx = ssl.create_default_context(cafile=cert)
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
    d.stop_clean()

    # Unreadable key: a clear error and exit 1, before any port is bound.
    bad = Process("badkey", [DEMO, str(free_port()), cert, wd.file("missing.key")], wd).start()
    rc = bad.proc.wait(10)
    assert rc == 1, rc
    assert "cannot read the key" in bad.output() and "missing.key" in bad.output(), bad.output()
    # A file that is not a key: MHD/GnuTLS refuses it.
    garbage = wd.file("garbage.pem", "not a key\n")
    bad2 = Process("badpem", [DEMO, str(free_port()), cert, garbage], wd).start()
    rc = bad2.proc.wait(10)
    assert rc == 1 and "cannot start the HTTP server" in bad2.output(), (rc, bad2.output())
    for p in (bad, bad2):
        for mark in MARKS:
            assert mark not in p.output(), p.output()


def test_connection_limit(wd):
    limit = 8
    d = Demo(wd, env={"GW_HTTP_MAX_CONNECTIONS": str(limit)}).start()
    socks = []
    for _ in range(60):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.settimeout(0.5)
        socks.append(s)
    for s in socks:
        try:
            s.sendall(b"GET /static.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            pass
    served = 0
    deadline = time.monotonic() + 2
    for s in socks:
        try:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            if s.recv(12).startswith(b"HTTP/1.1 200"):
                served += 1
        except (socket.timeout, OSError):
            pass
    log(f"{served} of {len(socks)} connections served while all are held open")
    assert 1 <= served <= limit, served
    assert d.alive()
    for s in socks:
        s.close()
    # Slots free up again: the server still serves, the waiting ones went away.
    wait_for(lambda: d.request("GET", "/static.txt")[0].status == 200, 10,
             "the server to serve again after the flood")
    d.stop_clean()


def test_sigterm_with_work_in_flight(wd):
    d = Demo(wd).start()
    stream = SseReader(d)
    wait_for(lambda: len(stream.counters()) >= 1, 5, "the stream to run")
    results = []

    def slow():
        try:
            r, data = d.request("GET", "/slow")
            results.append(r.status)
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: d.stats()["pending"] >= 5, 2, "four pending /slow requests")
    t0 = time.monotonic()
    d.stop_clean()
    took = time.monotonic() - t0
    for t in threads:
        t.join(5)
    # Answered 503 at once (or the 300 ms timer won the race: 200), never left hanging.
    assert len(results) == 4 and all(s in (200, 503) for s in results), results
    assert 503 in results, results
    wait_for(lambda: stream.ended, 3, "the event stream to end")
    assert stream.error is None, stream.error  # a clean end of the chunked stream
    assert took < 3, took


if __name__ == "__main__":
    run([test_methods_routes_and_headers, test_ipv6, test_async_requests_do_not_serialize, test_sse,
         test_https, test_connection_limit, test_sigterm_with_work_in_flight])

#!/usr/bin/python3
"""Notifiers (gateway/notify.c) through the gw-notify-send driver against real
servers on loopback: an HTTP receiver (200, 500, 404, hang, flaky, WeCom and
DingTalk robot replies), aiosmtpd with STARTTLS + AUTH, with implicit TLS
(smtps), without STARTTLS (the gateway must refuse to send in clear) and with a
certificate the gateway must not trust, and mosquitto for mqtt channels.
A webhook that hangs must not delay the email and mqtt sends issued with it."""

import email
import email.policy
import json
import os
import re
import subprocess
import threading
import time
from email.utils import parsedate_to_datetime

# The loopback HTTP receiver and SMTP server are shared with test_alarm_path.py.
from harness import (BUILD_DIR, PREFIX, SANITIZER_MARKS, Collector, Mailbox, Mosquitto, Receiver,
                     Smtp, free_port, log, make_cert, run, site_config, wait_for)

SUBJECT = "【火警】A栋 3层 301室 烟感报警，未确认"
TEXT = ("【火警】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，未确认\n"
        "确认: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by 姓名\n"
        ".a line that starts with a dot\n")
FROM = "校园网关 <gw@school.cn>"
LINE = re.compile(r"^(\S+) (\w+):(\S+) (ok|failed) (.*) (\d+) (\d+)$")


# ---- the driver ----

def config(wd, hub_port, contacts, smtp_url=None, ca_file=None):
    smtp = ""
    if smtp_url:
        smtp = (f'smtp = {{ url = "{smtp_url}"; username = "gw"; password = "s3cret"; '
                f'from = "{FROM}"; ca_file = "{ca_file}"; }};\n')
    body = smtp + "contacts = {\n" + "".join(
        f"  {name} = ( {', '.join(chans)} );\n" for name, chans in contacts.items()) + "};\n"
    body += f'escalation = {{ alarm = ( {{ after_s = 0; notify = [ "{next(iter(contacts))}" ]; }} ); }};\n'
    text = site_config(wd.path, hub_port, body).replace('timezone = "UTC"',
                                                        'timezone = "Asia/Shanghai"')
    return wd.file("notify.cfg", text)


def parse(stdout):
    out = {}
    for line in stdout.splitlines():
        m = LINE.match(line)
        assert m, f"bad result line {line!r}"
        contact, kind, target, result, error, attempts, ms = m.groups()
        out[target] = dict(contact=contact, kind=kind, ok=result == "ok", error=error,
                           attempts=int(attempts), ms=int(ms))
    return out


def check_clean(stderr):
    for mark in SANITIZER_MARKS:
        assert mark not in stderr, f"gw-notify-send: sanitizer report ({mark}):\n{stderr[-3000:]}"


def notify_send(cfg, contact, text=TEXT, subject=None, timeout=90, extra=()):
    argv = [os.path.join(BUILD_DIR, "gw-notify-send"), "-c", cfg, *extra]
    if subject:
        argv += ["--subject", subject]
    p = subprocess.run(argv + [contact, text], capture_output=True, text=True, timeout=timeout)
    check_clean(p.stderr)
    log(f"gw-notify-send exit={p.returncode}\n{p.stdout}{p.stderr}")
    return p.returncode, parse(p.stdout), p.stderr


def unreachable_hub():
    return free_port()  # nothing listens: contacts without mqtt never connect


# ---- scenarios ----

def test_webhooks(wd):
    rx = Receiver()
    try:
        chans = [f'{{ webhook = "{rx.url("/ok")}"; }}',
                 f'{{ webhook = "{rx.url("/fail500")}"; retries = 2; timeout_ms = 2000; }}',
                 f'{{ webhook = "{rx.url("/notfound")}"; retries = 3; }}',
                 f'{{ webhook = "{rx.url("/flaky")}"; retries = 2; }}',
                 f'{{ webhook = "{rx.url("/wecom-ok")}"; format = "wecom"; }}',
                 f'{{ webhook = "{rx.url("/wecom-bad")}"; format = "wecom"; retries = 3; }}',
                 f'{{ webhook = "{rx.url("/dingtalk-ok")}"; format = "dingtalk"; }}']
        cfg = config(wd, unreachable_hub(), {"hooks": chans})
        rc, res, _ = notify_send(cfg, "hooks")
        assert rc == 1, f"some channels failed: exit 1, got {rc}"
        assert len(res) == 7, res

        r = res[rx.url("/ok")]
        assert r["ok"] and r["attempts"] == 1 and r["contact"] == "hooks", r
        (_, _, headers, body), = rx.got("/ok")
        assert headers["Content-Type"] == "application/json; charset=utf-8", headers
        payload = json.loads(body.decode("utf-8"))
        assert payload["text"] == TEXT and payload["key"] == "gw-notify-send/test", payload

        r = res[rx.url("/fail500")]
        assert not r["ok"] and r["attempts"] == 3 and r["error"].startswith("HTTP 500"), r
        times = [t for _, t, _, _ in rx.got("/fail500")]
        assert len(times) == 3, times
        # gw_retry_backoff_ms: 1 s then 2 s, each ±20 %
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert 0.75 <= gaps[0] <= 1.5 and 1.55 <= gaps[1] <= 2.7, gaps

        r = res[rx.url("/notfound")]
        assert not r["ok"] and r["attempts"] == 1 and "HTTP 404" in r["error"], r
        assert len(rx.got("/notfound")) == 1, "a 404 is not retried"

        r = res[rx.url("/flaky")]
        assert r["ok"] and r["attempts"] == 2, r

        for path in ("/wecom-ok", "/dingtalk-ok"):
            r = res[rx.url(path)]
            assert r["ok"] and r["attempts"] == 1, (path, r)
            (_, _, headers, body), = rx.got(path)
            assert json.loads(body.decode("utf-8")) == {
                "msgtype": "text", "text": {"content": TEXT}}, body

        r = res[rx.url("/wecom-bad")]
        assert not r["ok"] and r["attempts"] == 1, r
        assert r["error"] == "errcode 93000: invalid webhook url", r
        assert len(rx.got("/wecom-bad")) == 1, "errcode 93000 is not retried"
    finally:
        rx.close()


def test_close_cancels_running_sends(wd):
    """Closing the notifier ends a hanging request and a retry waiting on its
    backoff at once: each done runs once, with "notifier closing"."""
    rx = Receiver()
    try:
        chans = [f'{{ webhook = "{rx.url("/hang")}"; timeout_ms = 20000; }}',
                 f'{{ webhook = "{rx.url("/fail500")}"; retries = 5; }}']
        cfg = config(wd, unreachable_hub(), {"ops": chans})
        t0 = time.monotonic()
        rc, res, _ = notify_send(cfg, "ops", extra=["--close-after", "1500"])
        took = time.monotonic() - t0
        assert rc == 1 and len(res) == 2, res
        hang, fail = res[rx.url("/hang")], res[rx.url("/fail500")]
        assert hang["error"] == "notifier closing" and hang["attempts"] == 1, hang
        # 500 at 0 s, again after ~1 s, then closed during the ~2 s backoff
        assert fail["error"] == "notifier closing" and fail["attempts"] == 2, fail
        assert 1450 <= hang["ms"] <= 2500 and 1450 <= fail["ms"] <= 2500, res
        assert len(rx.got("/fail500")) == 2 and len(rx.got("/hang")) == 1
        assert took < 10, f"exited {took:.1f} s after start, not at the close"
    finally:
        rx.close()


def check_mail(box, to="p@school.cn", subject=SUBJECT, body=TEXT):
    (t, mail_from, rcpts, raw, tls), = box.messages
    assert tls, "the message went over TLS"
    assert mail_from == "gw@school.cn" and rcpts == [to], (mail_from, rcpts)
    assert b"\r\n" in raw and all(len(x) <= 998 for x in raw.split(b"\r\n")), raw[:400]
    # Raw headers are ASCII: the Chinese is in RFC 2047 words, the body in base64.
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")
    assert b"=?UTF-8?B?" in head, head
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(msg["Subject"]) == subject, msg["Subject"]
    assert msg["From"].addresses[0].display_name == "校园网关", msg["From"]
    assert msg["From"].addresses[0].addr_spec == "gw@school.cn", msg["From"]
    assert str(msg["To"]) == to, msg["To"]
    assert msg["MIME-Version"] == "1.0", msg["MIME-Version"]
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert re.fullmatch(r"<[^<>@\s]+@school\.cn>", msg["Message-ID"]), msg["Message-ID"]
    date = parsedate_to_datetime(msg["Date"])
    assert abs(date.timestamp() - time.time()) < 120, msg["Date"]
    assert msg["Date"].endswith("+0800"), msg["Date"]  # the site's time zone
    assert msg.get_content().replace("\r\n", "\n") == body, msg.get_content()
    return t


def test_email_starttls(wd):
    cert, key = make_cert(wd, "smtp")
    srv = Smtp(cert, key, "starttls")
    try:
        cfg = config(wd, unreachable_hub(), {"principal": ['{ email = "p@school.cn"; }']},
                     smtp_url=f"smtp://127.0.0.1:{srv.port}", ca_file=cert)
        rc, res, _ = notify_send(cfg, "principal", subject=SUBJECT)
        assert rc == 0, res
        r = res["p@school.cn"]
        assert r["ok"] and r["attempts"] == 1 and r["kind"] == "email", r
        check_mail(srv.box)
        assert srv.box.logins == [(b"gw", b"s3cret")], srv.box.logins
        # Without --subject the first line of the text is the subject.
        srv.box.messages.clear()
        rc, res, _ = notify_send(cfg, "principal")
        assert rc == 0, res
        check_mail(srv.box, subject=TEXT.split("\n")[0])
    finally:
        srv.close()


def test_email_smtps(wd):
    cert, key = make_cert(wd, "smtp")
    srv = Smtp(cert, key, "smtps")
    try:
        cfg = config(wd, unreachable_hub(), {"principal": ['{ email = "p@school.cn"; }']},
                     smtp_url=f"smtps://127.0.0.1:{srv.port}", ca_file=cert)
        rc, res, _ = notify_send(cfg, "principal", subject=SUBJECT)
        assert rc == 0 and res["p@school.cn"]["ok"], res
        check_mail(srv.box)
        assert srv.box.logins == [(b"gw", b"s3cret")], srv.box.logins
    finally:
        srv.close()


def test_email_never_in_clear(wd):
    cert, key = make_cert(wd, "smtp")
    srv = Smtp(cert, key, "plain")  # offers no STARTTLS
    try:
        cfg = config(wd, unreachable_hub(),
                     {"principal": ['{ email = "p@school.cn"; retries = 3; }']},
                     smtp_url=f"smtp://127.0.0.1:{srv.port}", ca_file=cert)
        rc, res, _ = notify_send(cfg, "principal")
        r = res["p@school.cn"]
        assert rc == 1 and not r["ok"], res
        assert "STARTTLS" in r["error"] and r["attempts"] == 1, r
        assert srv.box.messages == [] and srv.box.logins == [], "nothing sent in clear"
    finally:
        srv.close()


def test_email_untrusted_certificate(wd):
    cert, key = make_cert(wd, "smtp")
    other, _ = make_cert(wd, "other")  # the CA the gateway trusts is not the server's
    srv = Smtp(cert, key, "starttls")
    try:
        cfg = config(wd, unreachable_hub(), {"principal": ['{ email = "p@school.cn"; }']},
                     smtp_url=f"smtp://127.0.0.1:{srv.port}", ca_file=other)
        rc, res, _ = notify_send(cfg, "principal")
        r = res["p@school.cn"]
        assert rc == 1 and not r["ok"] and r["attempts"] == 1, res
        assert "certificate" in r["error"].lower(), r
        assert srv.box.messages == [] and srv.box.logins == [], "no login to an untrusted server"
    finally:
        srv.close()


def test_hanging_webhook_delays_nothing(wd):
    """One contact: a webhook that never answers (timeout 5 s), an email and an
    mqtt channel, all issued at once. The email and the mqtt message arrive
    while the webhook still hangs."""
    hang_ms = 5000
    broker = Mosquitto(wd).start()
    col = Collector(broker.port, f"{PREFIX}/notify/#")
    rx = Receiver()
    cert, key = make_cert(wd, "smtp")
    srv = Smtp(cert, key, "starttls")
    try:
        chans = [f'{{ webhook = "{rx.url("/hang")}"; timeout_ms = {hang_ms}; retries = 0; }}',
                 '{ email = "p@school.cn"; }',
                 '{ mqtt = "notify/everyone"; }']
        cfg = config(wd, broker.port, {"everyone": chans},
                     smtp_url=f"smtp://127.0.0.1:{srv.port}", ca_file=cert)
        argv = [os.path.join(BUILD_DIR, "gw-notify-send"), "-c", cfg, "--subject", SUBJECT,
                "everyone", TEXT]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []  # (monotonic time read, line)

        def read():
            for line in p.stdout:
                lines.append((time.monotonic(), line.rstrip("\n")))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        reader.join(5)
        stderr = p.stderr.read()
        check_clean(stderr)
        log("gw-notify-send:\n" + "\n".join(f"{t:.3f} {x}" for t, x in lines) + "\n" + stderr)
        assert p.returncode == 1, "the hanging webhook failed"
        res = parse("\n".join(x for _, x in lines))
        hook, mail, mq = res[rx.url("/hang")], res["p@school.cn"], res["notify/everyone"]
        assert not hook["ok"] and "timed out" in hook["error"] and hook["attempts"] == 1, hook
        assert hang_ms - 100 <= hook["ms"] <= hang_ms + 2000, hook
        assert mail["ok"] and mq["ok"], res
        # Issued together: both done while the webhook still waited for its reply.
        assert mail["ms"] < 2000 and mq["ms"] < 2000, (mail, mq)
        (hang_req, hang_t, _, _), = rx.got("/hang")
        t_mail = check_mail(srv.box)
        _, payload, _, t_mqtt = wait_for(lambda: col.all(f"{PREFIX}/notify/everyone"), 5,
                                         "mqtt notification")[0]
        t_hook_done = next(t for t, x in lines if "/hang" in x)
        assert t_mail < t_hook_done - 2.5 and t_mqtt < t_hook_done - 2.5, \
            (t_mail, t_mqtt, t_hook_done)
        assert abs(t_mail - hang_t) < 2 and abs(t_mqtt - hang_t) < 2, (t_mail, t_mqtt, hang_t)
        obj = json.loads(payload)
        assert obj["text"] == TEXT and obj["key"] == "gw-notify-send/test", obj
        log(f"webhook request at 0, email in at {t_mail - hang_t:+.3f} s, mqtt in at "
            f"{t_mqtt - hang_t:+.3f} s, webhook given up at {t_hook_done - hang_t:+.3f} s")
    finally:
        col.close()
        srv.close()
        rx.close()


if __name__ == "__main__":
    run([test_webhooks, test_close_cancels_running_sends, test_email_starttls, test_email_smtps, test_email_never_in_clear,
         test_email_untrusted_certificate, test_hanging_webhook_delays_nothing])

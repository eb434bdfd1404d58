#!/usr/bin/env python3
"""Drives the smbvault web console in headless Chromium (Debian's chromium
and chromium-driver, through Selenium) against the real server, and checks
the issue-18 "Done when" list. Called by protocol-tests/console.rs, which
prepares a second organization and checks the operation log afterwards.

usage: console_browser.py CONSOLE_URL SMB_PORT ADMIN_PASSWORD CA_CERT SHOTS_DIR WORK_DIR OPERATOR_PASSWORD

Prints one "ok: ..." line per check; any failure raises (exit status 1).
TOTP codes are computed here with the standard library (RFC 6238), not
with smbvault's code.
"""
import base64
import csv
import datetime
import hashlib
import hmac
import io
import json
import os
import re
import ssl
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, SMB_PORT, ADMIN_PW, CA, SHOTS, WORK, OP_PW = sys.argv[1:8]
URL = URL.rstrip("/")
ORG = "DEFAULT"
ADMIN = ORG + "\\admin"
# Lockout threshold the test server is configured with (console.rs).
THRESHOLD = 3


def ok(msg):
    print("ok:", msg, flush=True)


LAST_STEP = [0]


def totp(secret_b32, step_offset=0):
    """RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits) for now + offset steps.
    The server takes each step's code once, so this waits for a step after
    the last one used."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    while int(time.time()) // 30 + step_offset <= LAST_STEP[0]:
        time.sleep(0.5)
    counter = int(time.time()) // 30 + step_offset
    LAST_STEP[0] = counter
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % code


def smbclient(user, password, cmds, share="share"):
    p = subprocess.run(
        ["smbclient", "//127.0.0.1/" + share, "-p", SMB_PORT, "-U", user + "%" + password, "-c", cmds],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def browser(download_dir):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run", "--window-size=1280,900", "--lang=en-US",
              "--user-data-dir=" + os.path.join(WORK, "profile-%d" % time.time_ns())]:
        o.add_argument(a)
    # The console's certificate is self-signed (its fingerprint is printed
    # at start); the test's own HTTP client pins it instead.
    o.accept_insecure_certs = True
    o.add_experimental_option("prefs", {
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "intl.accept_languages": "en-US,en",
    })
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    d.set_page_load_timeout(60)
    return d


def shot(d, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        d.save_screenshot(os.path.join(SHOTS, name + ".png"))


def go(d, element):
    """Clicks something that loads a new page, and waits until it has: a
    click returns before the server (hashing a password) has answered."""
    old = d.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_):
        # Chromium may answer a query on a node of the unloaded page with a
        # generic inspector error ("Node with given id does not belong to
        # the document") instead of "stale element": both mean it is gone.
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(d, 60).until(replaced)


def q(d, css):
    return d.find_element(By.CSS_SELECTOR, css)


def sign_in(d, user, password, code_secret=None):
    d.delete_all_cookies()
    d.get(URL + "/signin")
    q(d, "#user").send_keys(user)
    q(d, "#password").send_keys(password)
    go(d, q(d, "#signin"))
    if code_secret:
        assert d.current_url.endswith("/signin/totp"), d.current_url
        # The next step's code: inside the accepted window and never used
        # before (a code works once, and set-up spent the current one).
        q(d, "#code").send_keys(totp(code_secret, 1))
        go(d, q(d, "#verify"))


def sign_out(d):
    go(d, q(d, "#signout"))
    assert d.current_url.endswith("/signin"), d.current_url


class Http:
    """A plain HTTPS client that trusts only the console's certificate and
    carries one browser session's cookie: for requests a browser would not
    send by itself (tampered URLs and forms)."""

    def __init__(self, cookie):
        self.ctx = ssl.create_default_context(cafile=CA)
        self.cookie = cookie

    def req(self, method, path, form=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        r = urllib.request.Request(URL + path, data=data, method=method)
        r.add_header("Cookie", self.cookie)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx), NoRedirect())
        try:
            with opener.open(r, timeout=30) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def session_http(d):
    c = d.get_cookie("__Host-smbvault")
    assert c and c["secure"] and c["httpOnly"] and c.get("sameSite") == "Strict", c
    return Http("__Host-smbvault=" + c["value"])


def csrf_of(html):
    i = html.index('name="csrf" value="') + len('name="csrf" value="')
    return html[i:html.index('"', i)]


def wait_file(directory, suffix):
    for _ in range(100):
        done = [f for f in os.listdir(directory) if f.endswith(suffix)]
        if done:
            return os.path.join(directory, done[0])
        time.sleep(0.2)
    raise AssertionError("no %s download in %s: %s" % (suffix, directory, os.listdir(directory)))


def log_rows(d):
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in d.find_elements(By.CSS_SELECTOR, "tr.event")]


def main():
    downloads = os.path.join(WORK, "downloads")
    os.makedirs(downloads, exist_ok=True)
    d = browser(downloads)
    try:
        run(d, downloads)
    finally:
        d.quit()


def run(d, downloads):
    # --- Sign-in page: language from Accept-Language, then the switch.
    d.get(URL + "/signin")
    assert q(d, "html").get_attribute("lang") == "en" and q(d, "#signin").text == "Sign in"
    go(d, q(d, "#lang-ja"))
    assert q(d, "#signin").text == "サインイン", q(d, "#signin").text
    shot(d, "signin-ja")
    go(d, q(d, "#lang-en"))
    shot(d, "signin")
    ok("sign-in page in English (Accept-Language) and Japanese (switch)")

    # --- Admin: password, TOTP set-up, org requires TOTP, sign in with it.
    sign_in(d, ADMIN, ADMIN_PW)
    assert "/org/DEFAULT/users" in d.current_url, (d.current_url, q(d, "main").text)
    d.get(URL + "/account/totp")
    secret = q(d, "#totp-secret").text.strip()
    assert "otpauth://totp/" in q(d, "#totp-uri").text
    q(d, "#code").send_keys(totp(secret))
    go(d, q(d, "#totp-confirm"))
    assert "Two-factor sign-in is on" in d.page_source, d.page_source[:2000]
    d.get(URL + "/org/DEFAULT/settings")
    q(d, "#require-totp").click()
    go(d, q(d, "#save-totp"))
    assert q(d, "#require-totp").is_selected()
    sign_out(d)
    sign_in(d, ADMIN, ADMIN_PW)
    assert d.current_url.endswith("/signin/totp"), "password alone must not be enough: " + d.current_url
    q(d, "#code").send_keys("000000")
    go(d, q(d, "#verify"))
    assert "Wrong or reused code" in d.page_source
    d.delete_all_cookies()
    sign_in(d, ADMIN, ADMIN_PW, code_secret=secret)
    assert "/org/DEFAULT/users" in d.current_url, d.current_url
    ok("admin signed in with password + TOTP; a wrong code is refused")

    # --- Admin creates a user; the user reads a file over SMB.
    q(d, "#new-user").send_keys("tanaka")
    go(d, q(d, "#add-user"))
    tanaka_pw = q(d, "#secret").text.strip()
    assert len(tanaka_pw) >= 12, tanaka_pw
    shot(d, "users")
    rc, out = smbclient(ORG + "\\tanaka", tanaka_pw, "get report.txt " + os.path.join(WORK, "got.txt"))
    assert rc == 0, out
    with open(os.path.join(WORK, "got.txt"), encoding="utf-8") as f:
        assert f.read() == "四半期報告 Q3\n"
    ok("admin created DEFAULT\\tanaka in the console; tanaka read report.txt with smbclient")

    # --- Log viewer: find that access, filter, export CSV and JSONL.
    d.get(URL + "/org/DEFAULT/logs")
    rows = log_rows(d)
    assert any("tanaka" in r[1] and r[3] == "open" and "report.txt" in r[5] for r in rows), rows[:10]
    times = [r[0] for r in rows]
    assert times == sorted(times, reverse=True), "newest first"
    q(d, "#f-user").send_keys(ORG + "\\tanaka")
    q(d, "#f-path").send_keys("report")
    Select(q(d, "#f-type")).select_by_value("open")
    go(d, q(d, "#f-apply"))
    rows = log_rows(d)
    assert rows and all(r[3] == "open" and "report.txt" in r[5] and "tanaka" in r[1] for r in rows), rows
    shot(d, "logs")
    n_filtered = len(rows)
    # The same selection by JST time range and result, as the form sends it.
    jst = datetime.timezone(datetime.timedelta(hours=9))
    now = datetime.datetime.now(jst)
    fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M")
    base = {"user": ORG + "\\tanaka", "path": "report", "type": "open", "result": "ok"}
    d.get(URL + "/org/DEFAULT/logs?" + urllib.parse.urlencode(dict(base, since=fmt(now - datetime.timedelta(hours=1)), until=fmt(now + datetime.timedelta(minutes=2)))))
    assert len(log_rows(d)) == n_filtered, log_rows(d)
    d.get(URL + "/org/DEFAULT/logs?" + urllib.parse.urlencode(dict(base, since=fmt(now + datetime.timedelta(minutes=2)))))
    assert not log_rows(d) and q(d, "#no-events")
    d.get(URL + "/org/DEFAULT/logs?" + urllib.parse.urlencode(dict(base, result="failed")))
    assert not log_rows(d)
    d.get(URL + "/org/DEFAULT/logs?" + urllib.parse.urlencode(base))
    q(d, "#export-csv").click()
    path = wait_file(downloads, ".csv")
    raw = open(path, "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:20]
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(table) == n_filtered, (len(table), n_filtered)
    assert all(r["event"] == "open" and r["path"] == "report.txt" and r["user"].endswith("tanaka") for r in table), table
    assert all(r["time"].endswith("+09:00") for r in table), "times in JST"
    q(d, "#export-jsonl").click()
    path = wait_file(downloads, ".jsonl")
    lines = [json.loads(x) for x in open(path, encoding="utf-8") if x.strip()]
    assert len(lines) == n_filtered and all(x["event"] == "open" for x in lines), lines
    ok("log viewer shows tanaka's open of report.txt; filtered to %d rows; CSV (BOM) and JSONL exports match" % n_filtered)

    # --- A hostile file name is text in the viewer; no script runs.
    d.get(URL + "/org/DEFAULT/logs?" + urllib.parse.urlencode({"path": "<script>"}))
    targets = d.find_elements(By.CSS_SELECTOR, "td.target")
    # smbclient sends the "/" of "</script>" as a path separator, so the
    # logged name is "<script>document.title='pwned'<\\script>.txt": an
    # unescaped "<script>" start tag alone would already make a script element.
    assert targets and any("<script>document.title='pwned'" in t.text for t in targets), [t.text for t in targets]
    assert "&lt;script&gt;document.title" in d.page_source
    assert not d.find_elements(By.CSS_SELECTOR, "#events script"), "a script element was created from a file name"
    assert d.title != "pwned" and "pwned" not in d.title, d.title
    assert d.execute_script("return document.title") != "pwned"
    shot(d, "logs-script-name")
    ok("a file name containing <script> shows as text in the log viewer; no script ran")

    # --- Retention.
    d.get(URL + "/org/DEFAULT/settings")
    Select(q(d, "#retention")).select_by_value("3m")
    go(d, q(d, "#save-retention"))
    sel = q(d, "#retention option[selected]")
    assert sel.get_attribute("value") == "3m", sel.get_attribute("value")
    shot(d, "settings")
    ok("admin set the log retention to 3 months")

    # --- Groups and share access (a Japanese group name in URLs and forms).
    d.get(URL + "/org/DEFAULT/groups")
    q(d, "#new-group").send_keys("営業")
    go(d, q(d, "#add-group"))
    form = d.find_element(By.CSS_SELECTOR, "#groups form[action$='/members']")
    form.find_element(By.NAME, "user").send_keys("tanaka")
    go(d, form.find_element(By.CSS_SELECTOR, "button"))
    row = q(d, "#groups").text
    assert "営業" in row and "tanaka" in row, row
    d.get(URL + "/org/DEFAULT/shares")
    form = d.find_element(By.CSS_SELECTOR, "form[action='/org/DEFAULT/shares/share/access']")
    Select(form.find_element(By.NAME, "kind")).select_by_value("group")
    form.find_element(By.NAME, "name").send_keys("営業")
    Select(form.find_element(By.NAME, "access")).select_by_value("read")
    go(d, form.find_element(By.CSS_SELECTOR, "button"))
    cells = [td.text for td in d.find_elements(By.CSS_SELECTOR, "main table td")]
    assert "営業" in cells and "read" in cells, cells
    ok("admin created group 営業, added tanaka, and gave the group read access to the share")

    # --- Shares: add one with a Japanese name; it serves SMB at once.
    d.get(URL + "/org/DEFAULT/shares")
    q(d, "#new-share").send_keys("経理")
    q(d, "#new-share-comment").send_keys("経理部の共有")
    Select(q(d, "#new-share-access")).select_by_value("read_write")
    go(d, q(d, "#add-share"))
    assert "\\経理" in q(d, "main").text and "経理部の共有" in q(d, "main").text, q(d, "main").text
    shot(d, "shares")
    local = os.path.join(WORK, "ledger.txt")
    with open(local, "w", encoding="utf-8") as f:
        f.write("帳簿 2026\n")
    got = os.path.join(WORK, "ledger-back.txt")
    rc, out = smbclient(ORG + "\\tanaka", tanaka_pw, "put %s 帳簿.txt; get 帳簿.txt %s" % (local, got), share="経理")
    assert rc == 0, "put/get in the new share: " + out
    with open(got, encoding="utf-8") as f:
        assert f.read() == "帳簿 2026\n"
    # Remove a second share, with the name typed to confirm.
    q(d, "#new-share").send_keys("一時")
    go(d, q(d, "#add-share"))
    go(d, d.find_element(By.CSS_SELECTOR, "form[action='/org/DEFAULT/shares/%E4%B8%80%E6%99%82/remove'] button"))
    q(d, "#confirm").send_keys("一時")
    go(d, q(d, "#confirm-go"))
    assert "\\一時" not in q(d, "main").text and "\\経理" in q(d, "main").text, q(d, "main").text
    rc, out = smbclient(ORG + "\\tanaka", tanaka_pw, "ls", share="一時")
    assert rc != 0 and "BAD_NETWORK_NAME" in out, "removed share must be gone: " + out
    ok("admin added share 経理 (comment, default access); tanaka put and got a file in it over SMB; share 一時 removed after confirmation")

    # --- Restore from a remote backup generation (issue 19), as the CLI's
    # restore-files: into 復元 <date>/ next to the changed file.
    d.get(URL + "/org/DEFAULT/restore")
    gens = q(d, "#generations").text
    generation = Select(q(d, "#restore-generation")).first_selected_option.get_attribute("value")
    assert generation in gens, (generation, gens)
    q(d, "#restore-path").send_keys("share/見積書.txt")
    go(d, q(d, "#restore-go"))
    notice = q(d, "main").text
    m = re.search(r"→ share/(.+?) \(\d+", notice)
    assert m and m.group(1).startswith("復元 ") and m.group(1).endswith("/見積書.txt"), notice
    shot(d, "restore")
    restored = os.path.join(WORK, "restored.txt")
    rc, out = smbclient(ADMIN, ADMIN_PW, 'get "%s" %s' % (m.group(1).replace("/", "\\"), restored))
    assert rc == 0, out
    with open(restored, encoding="utf-8") as f:
        assert f.read() == "見積書 第1版\n"
    rc, out = smbclient(ADMIN, ADMIN_PW, "get 見積書.txt " + restored)
    with open(restored, encoding="utf-8") as f:
        assert rc == 0 and f.read() == "見積書 第2版\n", out
    # Previous Versions of the share: listed, turned off, turned on again.
    def versions():
        rc, out = smbclient(ADMIN, ADMIN_PW, "allinfo 見積書.txt")
        assert rc == 0, out
        return [l for l in out.splitlines() if l.startswith("@GMT-")]
    assert len(versions()) == 1, versions()
    pv = "form[action='/org/DEFAULT/shares/share/previous-versions'] button"
    d.get(URL + "/org/DEFAULT/shares")
    go(d, q(d, pv))
    assert versions() == [], "Previous Versions off"
    go(d, q(d, pv))
    assert len(versions()) == 1, "Previous Versions on again"
    ok("admin restored share/見積書.txt of generation %s into %s with the generation's bytes (live file untouched); "
       "turned the share's Previous Versions off and on" % (generation, m.group(1)))

    # --- CSRF: a form without (or with a wrong) token is refused.
    http = session_http(d)
    for form in [{"name": "nocsrf", "role": "member"}, {"name": "nocsrf", "role": "member", "csrf": "0" * 64}]:
        st, body = http.req("POST", "/org/DEFAULT/users", form)
        assert st == 403, (st, body[:300])
    st, body = http.req("GET", "/org/DEFAULT/users")
    assert st == 200 and "nocsrf" not in body
    ok("forms posted without or with a wrong CSRF token are refused (403) and change nothing")

    # --- Organization A's admin against organization B.
    token = csrf_of(body)
    gets = ["/org/BETA/users", "/org/BETA/groups", "/org/BETA/shares", "/org/BETA/logs", "/org/BETA/logs.csv",
            "/org/BETA/logs.jsonl", "/org/BETA/settings", "/org/BETA/restore", "/org/beta/users", "/org/NOSUCH/users",
            "/operator/orgs", "/operator/status"]
    for p in gets:
        st, _ = http.req("GET", p)
        assert st in (403, 404), (p, st)
    posts = [
        ("/org/BETA/users", {"name": "intruder", "role": "org_admin"}),
        ("/org/BETA/users/badmin/disable", {}),
        ("/org/BETA/users/bob/reset", {}),
        ("/org/BETA/users/bob/delete", {}),
        ("/org/BETA/groups", {"name": "x"}),
        ("/org/BETA/groups/staff/members", {"user": "bob", "op": "remove"}),
        ("/org/BETA/shares/betashare/access", {"kind": "user", "name": "bob", "access": "none"}),
        ("/org/BETA/shares", {"name": "侵入", "comment": "", "default_access": "read_write"}),
        ("/org/BETA/shares/betashare/remove", {"confirm": "betashare"}),
        ("/org/BETA/settings/retention", {"retention": "1m"}),
        ("/org/BETA/settings/totp", {"require": "on"}),
        ("/org/BETA/restore", {"generation": "latest", "path": "betashare"}),
        ("/org/BETA/shares/betashare/previous-versions", {"on": "off"}),
        # Own organization in the URL, B's names in the path or the form.
        ("/org/DEFAULT/users/BETA%5Cbob/disable", {}),
        ("/org/DEFAULT/users/bob@BETA/reset", {}),
        ("/org/DEFAULT/users/bob/delete", {}),
        ("/org/DEFAULT/users", {"name": "BETA\\intruder", "role": "member"}),
        ("/org/DEFAULT/groups/staff/members", {"user": "bob", "op": "add"}),
        ("/org/DEFAULT/groups/staff/delete", {}),
        ("/org/DEFAULT/shares/betashare/access", {"kind": "user", "name": "tanaka", "access": "read_write"}),
        ("/org/DEFAULT/shares/share/access", {"kind": "user", "name": "BETA\\bob", "access": "read_write"}),
        ("/org/DEFAULT/shares/betashare/remove", {"confirm": "betashare"}),
        ("/operator/orgs", {"name": "EVIL"}),
        ("/operator/orgs/BETA/suspend", {"confirm": "BETA"}),
        ("/operator/orgs/BETA/quota", {"quota": "1"}),
        ("/operator/orgs/BETA/end-contract", {"date": "2030-01-01", "confirm": "BETA"}),
    ]
    for p, form in posts:
        form = dict(form, csrf=token)
        st, body = http.req("POST", p, form)
        assert st in (403, 404), (p, st, body[:400])
    ok("org A's admin got 403/404 for %d pages/exports and %d forms of org B" % (len(gets), len(posts)))

    # --- Staff: sign in with the one-time password, change it; SMB follows.
    sign_out(d)
    sign_in(d, ORG + "\\tanaka", tanaka_pw)
    assert d.current_url.endswith("/account"), d.current_url
    st, _ = session_http(d).req("GET", "/org/DEFAULT/users")
    assert st == 403, st
    new_pw = "新しいPass-2026"
    q(d, "#old").send_keys("wrong-" + tanaka_pw)
    q(d, "#new").send_keys(new_pw)
    q(d, "#new2").send_keys(new_pw)
    go(d, q(d, "#change-password"))
    assert "current password is wrong" in d.page_source
    q(d, "#old").send_keys(tanaka_pw)
    q(d, "#new").send_keys(new_pw)
    q(d, "#new2").send_keys(new_pw)
    go(d, q(d, "#change-password"))
    assert "Password changed" in d.page_source, d.page_source[:1500]
    shot(d, "account")
    rc, out = smbclient(ORG + "\\tanaka", new_pw, "ls")
    assert rc == 0, "new password must work: " + out
    rc, out = smbclient(ORG + "\\tanaka", tanaka_pw, "ls")
    assert rc != 0 and "LOGON_FAILURE" in out, "old password must not work: " + out
    ok("staff changed their own password (old one required); smbclient: new works, old refused")
    sign_out(d)

    # --- Lockout shared by console and SMB.
    sign_in(d, ADMIN, ADMIN_PW, code_secret=secret)
    q(d, "#new-user").send_keys("suzuki")
    go(d, q(d, "#add-user"))
    suzuki_pw = q(d, "#secret").text.strip()
    sign_out(d)
    for i in range(THRESHOLD):
        sign_in(d, ORG + "\\suzuki", "wrong-%d" % i)
        assert d.current_url.endswith("/signin") and "Wrong user name or password" in d.page_source
    sign_in(d, ORG + "\\suzuki", suzuki_pw)
    assert d.current_url.endswith("/signin"), "locked account signed in on the console"
    rc, out = smbclient(ORG + "\\suzuki", suzuki_pw, "ls")
    assert rc != 0, "console failures must lock SMB too: " + out
    ok("%d wrong console passwords locked the account for the console and SMB" % THRESHOLD)
    sign_in(d, ADMIN, ADMIN_PW, code_secret=secret)
    go(d, d.find_element(By.CSS_SELECTOR, "form[action='/org/DEFAULT/users/suzuki/unlock'] button"))
    sign_out(d)
    rc, out = smbclient(ORG + "\\suzuki", suzuki_pw, "ls")
    assert rc == 0, "unlocked: " + out
    for i in range(THRESHOLD):
        rc, out = smbclient(ORG + "\\suzuki", "smb-wrong-%d" % i, "ls")
        assert rc != 0
    sign_in(d, ORG + "\\suzuki", suzuki_pw)
    assert d.current_url.endswith("/signin"), "SMB failures must lock the console too"
    ok("after an unlock, %d wrong SMB passwords locked the console sign-in too" % THRESHOLD)

    # --- The admin sees the console changes in the operation log viewer.
    sign_in(d, ADMIN, ADMIN_PW, code_secret=secret)
    d.get(URL + "/org/DEFAULT/logs?log=operations&type=admin")
    rows = log_rows(d)
    text = "\n".join(" | ".join(r) for r in rows)
    for who, what in [(ADMIN, "added user DEFAULT\\tanaka"), (ADMIN, "set audit retention of DEFAULT to 3m"),
                      (ORG + "\\tanaka", "DEFAULT\\tanaka changed their own password"),
                      (ADMIN, "set up two-factor sign-in for DEFAULT\\admin"),
                      (ADMIN, "unlocked user DEFAULT\\suzuki")]:
        assert any(r[1] == who and what in r[5] for r in rows), (who, what, text)
    shot(d, "logs-operations")
    d.get(URL + "/org/DEFAULT/logs?log=access&type=console-sign-in")
    rows = log_rows(d)
    assert any(r[4] == "ok" and r[1] == ADMIN for r in rows) and any(r[4].startswith("failed") for r in rows), rows
    ok("console changes are in the operation log under the signed-in user; sign-ins in the access log")
    sign_out(d)

    # --- Operator account: the organization requires TOTP of administrators
    # (operators too), so the first sign-in leads to the set-up only.
    sign_in(d, ORG + "\\op", OP_PW)
    assert d.current_url.endswith("/account/totp"), d.current_url
    st, _ = session_http(d).req("GET", "/operator/orgs")
    assert st == 303, "only the set-up page until TOTP is on: %s" % st
    op_secret = q(d, "#totp-secret").text.strip()
    q(d, "#code").send_keys(totp(op_secret))
    go(d, q(d, "#totp-confirm"))
    assert d.current_url.endswith("/operator/orgs"), d.current_url
    q(d, "#new-org").send_keys("GAMMA")
    go(d, q(d, "#add-org"))
    assert "GAMMA" in q(d, "#orgs").text
    go(d, d.find_element(By.CSS_SELECTOR, "form[action='/operator/orgs/GAMMA/suspend'] button"))
    assert q(d, "#confirm"), "suspending asks first"
    q(d, "#confirm").send_keys("GAMMA")
    go(d, q(d, "#confirm-go"))
    row = [r for r in d.find_elements(By.CSS_SELECTOR, "#orgs tr") if r.text.startswith("GAMMA")][0]
    assert "suspended" in row.text, row.text
    row.find_element(By.CSS_SELECTOR, "input[name=quota]").send_keys("10G")
    go(d, row.find_element(By.CSS_SELECTOR, "form[action$='/quota'] button"))
    day = (datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=9))) + datetime.timedelta(days=40)).strftime("%Y-%m-%d")
    http = session_http(d)
    st, body = http.req("POST", "/operator/orgs/GAMMA/end-contract", {"csrf": csrf_of(d.page_source), "date": day})
    assert st == 200 and 'id="confirm"' in body and day in body, (st, body[:500])
    st, body = http.req("POST", "/operator/orgs/GAMMA/end-contract", {"csrf": csrf_of(d.page_source), "date": day, "confirm": "gamma?"})
    assert st == 200 and 'id="confirm"' in body, "a wrong name must not end the contract"
    st, body = http.req("POST", "/operator/orgs/GAMMA/end-contract", {"csrf": csrf_of(d.page_source), "date": day, "confirm": "GAMMA"})
    assert st == 200 and day in body, (st, body[:500])
    d.get(URL + "/operator/orgs")
    shot(d, "operator-orgs")
    # A client holding a session open while the operator looks.
    held = subprocess.Popen(
        ["smbclient", "//127.0.0.1/share", "-p", SMB_PORT, "-U", ORG + "\\tanaka%" + new_pw],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        row = ""
        for _ in range(40):
            d.get(URL + "/operator/status")
            rows = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#sessions tr") if "tanaka" in r.text]
            if rows:
                row = rows[0]
                break
            time.sleep(0.5)
        assert "tanaka" in row and "DEFAULT" in row and "127.0.0.1" in row and "3.1.1" in row, (row, q(d, "main").text)
        assert q(d, "#connections")
        backups = q(d, "#backups").text
        assert "verified" in backups, backups
        shot(d, "operator-status")
    finally:
        held.communicate("quit\n", timeout=30)
    ok("operator's status page lists tanaka's live SMB session (organization, client, dialect) and the database backup as verified")
    ok("operator enrolled TOTP as the organization requires, created GAMMA, suspended it (confirmed), set its quota and ended its contract (confirmed)")
    sign_out(d)


if __name__ == "__main__":
    main()

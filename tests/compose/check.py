#!/usr/bin/env python3
"""Checks a running compose stack from the host, as its admin would; run by tests/compose/run.

    check.py first      readiness, link a Copilot account on the auth helper's page, a Copilot
                        chat through the proxy, a virtual key made and used, spend recorded,
                        the admin UI's sign-in; remembers the key and counts in COMPOSE_STATE
    check.py survived   after a restart: the same key, the linked account and the spend are
                        still there, and the UI signs in
    check.py replicas   examples/compose-replicas: a key with rpm_limit 5 gets exactly 5 of
                        15 chats through the load balancer, which spread them over the proxy
                        and both replicas (each container's own request counter)
"""

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

PROXY = os.environ["COMPOSE_PROXY_URL"]
AUTH = os.environ["COMPOSE_AUTH_URL"]
MOCK = os.environ["COMPOSE_MOCK_URL"]
MASTER = os.environ["COMPOSE_MASTER_KEY"]
UI_USER = os.environ["COMPOSE_UI_USERNAME"]
UI_PASSWORD = os.environ["COMPOSE_UI_PASSWORD"]
STATE = os.environ["COMPOSE_STATE"]
MODEL = "gpt-4.1"  # config.yaml.example's Copilot model


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(method, url, body=None, headers=None, opener=None, form=False):
    headers = dict(headers or {})
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        resp = (opener or urllib.request.build_opener(NoRedirect)).open(req, timeout=30)
        return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def ok(message):
    print(f"  ok: {message}")


def eventually(what, attempt, timeout=20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = attempt()
        if last[0]:
            return last[1]
        time.sleep(0.3)
    fail(f"{what}: {last[1] if last else 'no attempt'}")


def readiness():
    status, _, body = request("GET", f"{PROXY}/health/readiness")
    v = json.loads(body)
    good = (status == 200 and v.get("db") == "connected" and v.get("backend") == "postgres"
            and ("redis" not in v or v["redis"] == "connected") and v.get("status") == "healthy")
    return good, v


def chat(key):
    status, headers, body = request(
        "POST", f"{PROXY}/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        {"Authorization": f"Bearer {key}"})
    return status == 200, f"{status} {body[:300]}"


def link_account():
    status, _, page = request("GET", f"{AUTH}/github", headers={"Authorization": f"Bearer {MASTER}"})
    if status != 200:
        fail(f"auth helper /github answered {status}: {page[:300]}")
    found = re.search(r"/github/status\?flow=([A-Za-z0-9_-]+)", page)
    if not found:
        fail(f"no device flow on the auth helper's page: {page[:500]}")
    flow = found.group(1)
    status, _, body = request("POST", f"{MOCK}/__mock/approve")
    if status != 200:
        fail(f"the GitHub stand-in did not approve: {status} {body}")
    oauth = json.loads(body)["access_token"]

    def linked():
        s, _, b = request("GET", f"{AUTH}/github/status?flow={flow}")
        return s == 200 and json.loads(b).get("state") == "linked", f"{s} {b}"

    eventually("the device flow never reached linked", linked, timeout=30)
    return oauth


def spend_records(key):
    status, _, body = request("GET", f"{PROXY}/spend/logs?api_key={urllib.parse.quote(key)}",
                              headers={"Authorization": f"Bearer {MASTER}"})
    if status != 200:
        fail(f"/spend/logs answered {status}: {body[:300]}")
    v = json.loads(body)
    rows = v if isinstance(v, list) else v.get("data", [])
    return [r for r in rows if r.get("outcome") == "success"]


def ui_signs_in():
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    status, headers, body = request(
        "POST", f"{PROXY}/ui/login",
        {"username": UI_USER, "password": UI_PASSWORD, "next": "/ui/"},
        {"Origin": PROXY}, opener=opener, form=True)
    if status not in (302, 303) or not any(c.name for c in jar):
        fail(f"the admin UI sign-in with .env's UI_USERNAME/UI_PASSWORD answered {status}: {body[:300]}")
    status, _, page = request("GET", f"{PROXY}/ui/", opener=opener)
    if status != 200 or "Dashboard" not in page:
        fail(f"/ui/ after sign-in answered {status}: {page[:300]}")
    status, _, _ = request(
        "POST", f"{PROXY}/ui/login", {"username": UI_USER, "password": "wrong", "next": "/ui/"},
        {"Origin": PROXY}, form=True)
    if status != 401:
        fail(f"a wrong UI password answered {status}")


def first():
    v = eventually("readiness never reported PostgreSQL (and Redis) connected", readiness, 60)
    ok(f"readiness: db {v['db']}, backend {v['backend']}, redis {v.get('redis', 'absent')}")
    status, _, body = request("POST", f"{PROXY}/v1/chat/completions",
                              {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                              {"Authorization": f"Bearer {MASTER}"})
    if status != 503 or "copilot_not_linked" not in body:
        fail(f"before linking, a Copilot chat should be 503 copilot_not_linked: {status} {body[:300]}")
    started = time.monotonic()
    oauth = link_account()
    eventually("a Copilot chat never succeeded after linking (no restart)", lambda: chat(MASTER))
    ok(f"account linked on the auth helper; the proxy served it {time.monotonic() - started:.1f} s later")
    status, _, body = request("POST", f"{PROXY}/key/generate", {"key_alias": "compose"},
                              {"Authorization": f"Bearer {MASTER}"})
    if status != 200:
        fail(f"/key/generate answered {status}: {body[:300]}")
    key = json.loads(body)["key"]
    good, detail = chat(key)
    if not good:
        fail(f"a chat with the new virtual key failed: {detail}")
    good, detail = chat(key)
    ok("virtual key made through the API and used twice")
    def recorded():
        n = len(spend_records(key))
        return n >= 2, n

    records = eventually("the key's spend records never appeared", recorded)
    ok(f"{records} spend records for the key")
    ui_signs_in()
    ok("admin UI signs in with UI_USERNAME/UI_PASSWORD (and refuses a wrong password)")
    with open(STATE, "w") as f:
        json.dump({"key": key, "records": records, "oauth": oauth}, f)


def survived():
    with open(STATE) as f:
        state = json.load(f)
    # GitHub keeps its accounts; the stand-in forgets them when `down` removes its container.
    status, _, body = request("POST", f"{MOCK}/__mock/account", {"access_token": state["oauth"]})
    if status != 200:
        fail(f"the GitHub stand-in did not take the account back: {status} {body}")
    v = eventually("readiness never reported PostgreSQL (and Redis) connected", readiness, 60)
    ok(f"readiness: db {v['db']}, redis {v.get('redis', 'absent')}")
    before = len(spend_records(state["key"]))
    if before < state["records"]:
        fail(f"spend records lost: {state['records']} before, {before} now")
    eventually("the key or the linked account did not survive", lambda: chat(state["key"]), 30)
    ok("the virtual key and the linked account survived")
    def grown():
        n = len(spend_records(state["key"]))
        return n > before, n

    records = eventually("the new spend record never appeared", grown)
    ok(f"spend kept: {before} records before this chat, {records} after")
    ui_signs_in()
    ok("admin UI signs in")
    with open(STATE, "w") as f:
        json.dump({**state, "records": records}, f)


def in_container(container, path, key):
    """GET on a container's own proxy port, from inside it (the replicas publish nothing)."""
    out = subprocess.run(
        ["/usr/bin/docker", "exec", container, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}",
         "-H", f"Authorization: Bearer {key}", f"http://127.0.0.1:4000{path}"],
        capture_output=True, text=True, timeout=30, check=False)
    body, _, status = out.stdout.rpartition("\n")
    return (int(status) if status.isdigit() else 0), body or out.stderr


def chats_served(container):
    status, text = in_container(container, "/metrics", MASTER)
    if status != 200:
        fail(f"/metrics in {container[:12]} answered {status}: {text[:300]}")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tollgate_http_requests_total{")
               and 'route="/v1/chat/completions"' in line)


def replicas():
    lb = os.environ["COMPOSE_LB_URL"]
    containers = os.environ["COMPOSE_PROXY_IDS"].split()
    if len(containers) != 3:
        fail(f"expected the proxy and two replicas, found {len(containers)} containers")

    def lb_ready():
        try:
            s, _, b = request("GET", f"{lb}/health/readiness")
        except OSError as e:
            return False, str(e)
        return s == 200 and json.loads(b).get("redis") == "connected", f"{s} {b[:300]}"

    eventually("the load balancer never reached a ready proxy", lb_ready, 60)
    status, _, body = request("POST", f"{PROXY}/key/generate",
                              {"key_alias": "replicas", "rpm_limit": 5},
                              {"Authorization": f"Bearer {MASTER}"})
    if status != 200:
        fail(f"/key/generate answered {status}: {body[:300]}")
    key = json.loads(body)["key"]
    for c in containers:  # each replica learns the key from PostgreSQL (no request counted)
        eventually(f"container {c[:12]} never knew the new key",
                   lambda: (lambda r: (r[0] == 200, r))(in_container(c, "/v1/models", key)))
    before = {c: chats_served(c) for c in containers}
    statuses = []
    for _ in range(15):
        s, _, b = request("POST", f"{lb}/v1/chat/completions",
                          {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                          {"Authorization": f"Bearer {key}"})
        statuses.append(s)
    served = {c: chats_served(c) - before[c] for c in containers}
    if sum(served.values()) != 15 or min(served.values()) < 1:
        fail(f"the load balancer did not spread the 15 chats over all three: {served}")
    if statuses.count(200) != 5 or statuses.count(429) != 10:
        fail(f"rpm_limit 5 over three replicas: expected 5 × 200 and 10 × 429, got {statuses}")
    ok(f"rpm_limit 5 held across the proxy and two replicas: 5 of 15 chats answered, "
       f"spread {sorted(int(v) for v in served.values())}")


if __name__ == "__main__":
    {"first": first, "survived": survived, "replicas": replicas}[sys.argv[1]]()

"""A storm of wrong-password sign-ins, and the server's resident memory before and after.

Three storms of 300 concurrent sign-ins, each from its own client address (the server trusts
127.0.0.1 as a proxy, so X-Forwarded-For names the client) and for an unknown email, so every one
needs a password check. Prints the answers (401 checked, 503 refused while the password queue is
full) and VmRSS/VmHWM after each storm; the smaps lines are the largest mappings at the end.

    python3 tests/bench/sign_in_storm.py target/release/catalogue 18790
"""
import http.client, json, os, subprocess, sys, time, threading, tempfile
from concurrent.futures import ThreadPoolExecutor
bin_ = sys.argv[1]; port = int(sys.argv[2])
d = tempfile.mkdtemp()
env = dict(os.environ, DATABASE_URL=f"{d}/c.db", CATALOGUE_TRUSTED_PROXIES="127.0.0.1", RUST_LOG="warn")
p = subprocess.Popen([bin_, "serve", "--bind", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def rss():
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith(("VmRSS", "VmHWM")): print(line.strip(), end="  ")
    print(open(f"/proc/{p.pid}/status").read().split("Threads:")[1].split()[0], "threads")
for _ in range(300):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/readyz"); 
        if c.getresponse().status == 200: break
    except Exception: pass
    time.sleep(0.2)
print("ready:", end=" "); rss()
def attempt(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/auth/token", json.dumps({"email": f"s{i}@x.org", "password": "wrong password here"}),
              {"content-type": "application/json", "x-forwarded-for": f"10.1.{i//250}.{i%250}"})
    return c.getresponse().status
for storm in range(3):
    with ThreadPoolExecutor(300) as ex:
        statuses = list(ex.map(attempt, range(storm*300, storm*300+300)))
    print(f"storm {storm}:", {s: statuses.count(s) for s in set(statuses)}, end=" "); rss()
time.sleep(2); print("after:", end=" "); rss()
os.system("awk '/^[0-9a-f]+-/{name=$6} /^Rss:/{if ($2>4000) print $2, name}' /proc/%d/smaps | sort -rn | head -12" % p.pid); p.terminate()

#!/usr/bin/python3
"""The Python peer of the module's REST client, for bench/peers.lua.

N GETs of one order with requests (one Session: a keep-alive connection),
each answer parsed with .json() and checked (status 200, data.id is the
order asked for). It times its own loop and prints

    n=N wall=SECONDS cpu=SECONDS hwm0=KB hwm=KB

    python3 bench/peers/rest_get.py URL KEY ORDER_ID N
"""

import resource
import sys
import time

import requests


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: rest_get.py URL KEY ORDER_ID N")
    base, key, order_id, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    url = "%s/v2/resources/orders/%s" % (base, order_id)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment, as the module
    session.headers.update({"Authorization": "key " + key, "Accept": "application/json"})

    def get():
        r = session.get(url, timeout=10)
        if r.status_code != 200:
            sys.exit("rest_get.py: HTTP %d" % r.status_code)
        if r.json()["data"]["id"] != order_id:
            sys.exit("rest_get.py: the answer is not order " + order_id)

    get()  # opens the connection outside the timing
    cpu0, hwm0 = usage()
    t0 = time.monotonic()
    for _ in range(n):
        get()
    wall = time.monotonic() - t0
    cpu1, hwm = usage()
    print("n=%d wall=%.6f cpu=%.6f hwm0=%d hwm=%d" % (n, wall, cpu1 - cpu0, hwm0, hwm))


if __name__ == "__main__":
    main()

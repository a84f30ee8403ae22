"""The pyvisa-py side of bench/scpi_compare.sh: query round trips per second and 1 MiB block
reads against the same instrument (the tofu-sim process), printed as one JSON line.

    python scpi_rate.py ADDRESS [QUERIES] [BLOCKS]
"""
import json
import socket
import statistics
import sys
import time

import pyvisa


def main():
    address = sys.argv[1]
    queries = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    blocks = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(address, read_termination="\n", write_termination="\n", timeout=10000)
    for _ in range(100):
        inst.query("*IDN?")  # warm-up
    start = time.perf_counter()
    for _ in range(queries):
        inst.query("*IDN?")
    query_s = time.perf_counter() - start
    times = []
    size = 0
    for _ in range(blocks):
        start = time.perf_counter()
        data = inst.query_binary_values("TRAC:DATA?", datatype="B", container=bytes)
        times.append(time.perf_counter() - start)
        size = len(data)
    inst.close()
    rm.close()
    # The ceiling: a plain socket loop (no VISA layer), the fastest Python can ask.
    host, port = address.split("::")[1:3]
    raw = socket.create_connection((host, int(port)))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answers = raw.makefile("rb")
    start = time.perf_counter()
    for _ in range(queries):
        raw.sendall(b"*IDN?\n")
        answers.readline()
    raw_s = time.perf_counter() - start
    raw.close()
    print(json.dumps({
        "queries": queries,
        "query_rate": round(queries / query_s, 1),
        "plain_socket_query_rate": round(queries / raw_s, 1),
        "block_bytes": size,
        "block_median_s": round(statistics.median(times), 6),
        "pyvisa": pyvisa.__version__,
    }))


if __name__ == "__main__":
    main()

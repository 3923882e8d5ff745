#!/usr/bin/env python3
"""Stands in for systemd's notification socket: binds an AF_UNIX datagram socket at PATH
(mode 0666, so the service user can send) and appends each datagram to LOG as one JSON string
per line. Runs until killed. Usage: notify_listener.py PATH LOG"""
import json, os, socket, sys

path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(log, "a", buffering=1) as out:
    out.write(json.dumps("LISTENING") + "\n")
    while True:
        data = s.recv(65536)
        out.write(json.dumps(data.decode("utf-8", "replace")) + "\n")

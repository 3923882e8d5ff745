import Foundation
import Glibc

/// A small HTTP/1.1 server in a Python child process (stdlib only), for the curl tests.
///
/// The script is kept here as a string rather than as a `.py` file: SwiftPM warns about files in
/// a target it does not know how to handle, and the tree builds without warnings.
final class TestHTTPServer {
    let port: Int
    private let process = Process()
    /// Closing our end of the child's stdin tells it to exit, even if this process dies first.
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private var stopped = false

    enum StartError: Error { case noPortLine(String) }

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", "-c", Self.script]
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        try process.run()
        let line = Self.readLine(from: stdoutPipe.fileHandleForReading.fileDescriptor, timeoutMilliseconds: 10_000)
        guard let port = Int(line) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw StartError.noPortLine(line)
        }
        self.port = port
    }

    deinit { stop() }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Ends the child by PID: SIGTERM, up to 2 s, then SIGKILL.
    func stop() {
        guard !stopped else { return }
        stopped = true
        let pid = process.processIdentifier
        try? stdinPipe.fileHandleForWriting.close()
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Reads up to the first newline, waiting at most `timeoutMilliseconds` in all.
    private static func readLine(from fd: Int32, timeoutMilliseconds: Int32) -> String {
        var bytes: [UInt8] = []
        let end = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)
        while !bytes.contains(0x0A) {
            let left = Int32(max(0, end.timeIntervalSinceNow * 1000))
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard left > 0, poll(&pfd, 1, left) > 0 else { break }
            var byte: UInt8 = 0
            guard read(fd, &byte, 1) == 1 else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Routes:
    /// - GET /hello: a fixed body (`helloBody`).
    /// - POST /echo: the request body back, with the request's Content-Type.
    /// - GET /chunked?n=5&delay_ms=200: chunked encoding, n chunks "chunk <i>\n", each sent and
    ///   flushed after a delay.
    /// - GET /stall: a 200 header block announcing 100 bytes, then nothing for 60 s.
    /// - GET /slow_headers: accepts the request and never answers.
    static let helloBody = "Hello from the ClawChat test server\n"

    private static let script = #"""
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

HELLO = b"Hello from the ClawChat test server\n"

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def fixed(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        try:
            if url.path == "/hello":
                self.fixed(200, HELLO)
            elif url.path == "/chunked":
                n = int(query.get("n", ["5"])[0])
                delay = int(query.get("delay_ms", ["200"])[0]) / 1000.0
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(n):
                    time.sleep(delay)
                    data = b"chunk %d\n" % i
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            elif url.path == "/stall":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.flush()
                time.sleep(60)
                self.close_connection = True
            elif url.path == "/slow_headers":
                time.sleep(60)
                self.close_connection = True
            else:
                self.fixed(404, b"not found\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if url.path == "/echo":
            self.fixed(200, body, self.headers.get("Content-Type", "application/octet-stream"))
        else:
            self.fixed(404, b"not found\n")

def exit_when_parent_goes():
    sys.stdin.read()
    os._exit(0)

class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops SYNs when many transfers connect at once.
    request_queue_size = 128

server = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=exit_when_parent_goes, daemon=True).start()
print(server.server_address[1], flush=True)
server.serve_forever()
"""#
}

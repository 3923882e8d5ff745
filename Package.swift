// swift-tools-version: 6.0
//
// ClawChat: a personal AI assistant reached over an encrypted UDP channel.
// Layers (see docs/ARCHITECTURE.md): C system libraries -> ClawReactor (libevent loop, UDP,
// curl multi) and ClawCrypto (libsodium) -> ClawChannel (sans-I/O handshake, session, security
// file) -> the executables.
import PackageDescription

let package = Package(
    name: "ClawChat",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "clawchatd", targets: ["clawchatd"]),
        .executable(name: "clawchat", targets: ["clawchat"]),
        .executable(name: "clawchat-bench", targets: ["clawchat-bench"]),
        .executable(name: "clawchat-relay", targets: ["clawchat-relay"]),
        .executable(name: "clawchat-fuzz", targets: ["clawchat-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian.
        .systemLibrary(name: "CLibevent", pkgConfig: "libevent_core",
                       providers: [.apt(["libevent-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        // What Swift's Glibc module cannot see (it is built without _GNU_SOURCE).
        .target(name: "CShim"),

        .target(name: "ClawReactor", dependencies: ["CLibevent", "CCurl", "CShim"]),
        .target(name: "ClawCrypto", dependencies: ["CSodium"]),
        .target(name: "ClawChannel", dependencies: ["ClawCrypto", "ClawReactor"]),
        .target(name: "ClawTransport", dependencies: ["ClawReactor"]),
        // The reactor glue of each side: the daemon and the client, as libraries so tests can run
        // them in-process on loopback.
        .target(name: "ClawDaemon", dependencies: ["ClawChannel", "ClawCrypto", "ClawReactor", "ClawTransport", "ClawAssistant", "ClawCron", "ClawFiles"]),
        .target(name: "ClawClient", dependencies: ["ClawChannel", "ClawCrypto", "ClawReactor", "ClawTransport"]),
        .target(name: "ClawRelay", dependencies: ["ClawReactor"]),
        // The assistant: JSON, SSE and provider stream decoders (pure), the LLM bridge on curl.
        .target(name: "ClawAssistant", dependencies: ["ClawReactor", "ClawCrypto"]),
        // Files: the sandbox (openat2 RESOLVE_BENEATH) and its operations.
        .target(name: "ClawFiles", dependencies: ["ClawReactor", "CShim"]),
        // Cron: time zones (TZif), cron expressions, the CRON.md format (pure, plus zoneinfo reads).
        .target(name: "ClawCron", dependencies: ["ClawReactor"]),
        // The daemon's settings: a strict TOML-subset parser and the env-file parser (pure, with
        // line numbers), the settings model with its defaults, the merge (flags > file > defaults)
        // and the validation that collects every problem.
        .target(name: "ClawConfig", dependencies: ["ClawReactor", "ClawCrypto", "ClawAssistant", "ClawCron"]),

        .executableTarget(name: "clawchatd", dependencies: [
            "ClawDaemon", "ClawReactor", "ClawCrypto", "ClawChannel", "ClawAssistant", "ClawConfig", "ClawCron", "ClawFiles",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "clawchat", dependencies: [
            "ClawClient", "ClawReactor", "ClawCrypto", "ClawChannel", "ClawTransport", "ClawAssistant",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "clawchat-bench", dependencies: [
            "ClawDaemon", "ClawClient", "ClawReactor", "ClawCrypto", "ClawChannel", "ClawTransport", "ClawRelay", "ClawFiles", "ClawAssistant",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "bench/clawchat-bench"),
        .executableTarget(name: "clawchat-relay", dependencies: [
            "ClawRelay", "ClawReactor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Fuzz targets for every parser of outside bytes (scripts/fuzz builds them with libFuzzer).
        .executableTarget(name: "clawchat-fuzz", dependencies: [
            "ClawAssistant", "ClawChannel", "ClawClient", "ClawConfig", "ClawCron", "ClawCrypto", "ClawFiles", "ClawReactor", "ClawTransport",
        ]),

        .testTarget(name: "ClawReactorTests", dependencies: ["ClawReactor"]),
        .testTarget(name: "ClawCryptoTests", dependencies: ["ClawCrypto"]),
        .testTarget(name: "ClawChannelTests", dependencies: ["ClawChannel", "ClawCrypto", "ClawReactor"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ClawTransportTests", dependencies: ["ClawTransport", "ClawRelay", "ClawCrypto", "ClawReactor"]),
        .testTarget(name: "ClawIntegrationTests",
                    dependencies: ["ClawDaemon", "ClawClient", "ClawChannel", "ClawCrypto", "ClawReactor", "ClawTransport", "ClawRelay", "ClawAssistant", "ClawCron", "ClawFiles"]),
        .testTarget(name: "ClawRelayTests", dependencies: ["ClawRelay", "ClawReactor"]),
        .testTarget(name: "ClawAssistantTests", dependencies: ["ClawAssistant", "ClawReactor", "ClawCrypto"]),
        .testTarget(name: "ClawClientTests", dependencies: ["ClawClient", "ClawReactor", "ClawTransport", "ClawCrypto", "ClawChannel"]),
        .testTarget(name: "ClawCronTests", dependencies: ["ClawCron", "ClawReactor"]),
        .testTarget(name: "ClawFilesTests", dependencies: ["ClawFiles", "ClawReactor"]),
        .testTarget(name: "ClawConfigTests", dependencies: ["ClawConfig", "ClawReactor", "ClawAssistant", "ClawCron"]),
    ],
    swiftLanguageModes: [.v6]
)

// The libsodium layer; see Crypto.swift.

/// A string as a JSON string literal (RFC 8259 escaping), for the `--json` outputs of the command
/// line tools, which do not use Foundation. The same escaping as ``JSONValue/encoded()``.
public func jsonQuoted(_ s: String) -> String {
    JSONValue.string(s).encoded()
}

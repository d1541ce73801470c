/// The escaping of Vigil's text state files (log offsets, firing conditions): one record per line, fields
/// separated by spaces or tabs, so newline, tab and backslash in a value are escaped.
enum StateText {
    /// Paths may hold any byte but NUL; newline, tab and backslash are escaped.
    static func escape(_ path: String) -> String {
        var out = ""
        for c in path {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.append(c)
            }
        }
        return out
    }

    static func unescape(_ text: Substring) -> String {
        var out = ""
        var escaped = false
        for c in text {
            if escaped {
                out.append(c == "n" ? "\n" : c == "t" ? "\t" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}

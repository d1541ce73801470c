/// An `fnmatch(3)`-style pattern: `*`, `?`, `[abc]`, `[a-z]`, `[!x]` (or `[^x]`), and `\` escapes.
///
/// Parsed once at compile time so that a malformed pattern is a diagnostic, not a silent literal (glibc
/// `fnmatch` treats an unbalanced `[` as an ordinary character). Matching is on Unicode scalars.
struct GlobPattern: Sendable, Hashable {
    /// One element of a parsed pattern.
    enum Element: Sendable, Hashable {
        /// A literal scalar.
        case literal(Unicode.Scalar)
        /// `?`: any one scalar.
        case any
        /// `*`: any run of scalars, including none.
        case star
        /// `[...]`: one scalar in (or, negated, not in) the ranges.
        case set([ClosedRange<Unicode.Scalar>], negated: Bool)
    }

    /// The elements in order.
    var elements: [Element]

    /// True when `text` contains a glob metacharacter (`*`, `?`, `[`).
    static func hasMetacharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0 == "*" || $0 == "?" || $0 == "[" }
    }

    /// Parses `pattern`, or returns why it is malformed (a message fragment such as "unbalanced '['").
    static func parse(_ pattern: String) -> Result<GlobPattern, GlobError> {
        let scalars = Array(pattern.unicodeScalars)
        var elements: [Element] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "*":
                if elements.last != .star { elements.append(.star) }
                index += 1
            case "?":
                elements.append(.any)
                index += 1
            case "\\":
                guard index + 1 < scalars.count else { return .failure(.trailingBackslash) }
                elements.append(.literal(scalars[index + 1]))
                index += 2
            case "[":
                var cursor = index + 1
                var negated = false
                if cursor < scalars.count, scalars[cursor] == "!" || scalars[cursor] == "^" {
                    negated = true
                    cursor += 1
                }
                var ranges: [ClosedRange<Unicode.Scalar>] = []
                var first = true
                var closed = false
                while cursor < scalars.count {
                    var low = scalars[cursor]
                    if low == "]" && !first {
                        closed = true
                        cursor += 1
                        break
                    }
                    if low == "[" && cursor + 1 < scalars.count && scalars[cursor + 1] == ":" {
                        return .failure(.characterClass)
                    }
                    if low == "\\" && cursor + 1 < scalars.count {
                        cursor += 1
                        low = scalars[cursor]
                    }
                    first = false
                    cursor += 1
                    if cursor + 1 < scalars.count && scalars[cursor] == "-" && scalars[cursor + 1] != "]" {
                        var high = scalars[cursor + 1]
                        cursor += 2
                        if high == "\\" && cursor < scalars.count {
                            high = scalars[cursor]
                            cursor += 1
                        }
                        guard low <= high else { return .failure(.reversedRange(low, high)) }
                        ranges.append(low...high)
                    } else {
                        ranges.append(low...low)
                    }
                }
                guard closed else { return .failure(.unbalancedBracket) }
                elements.append(.set(ranges, negated: negated))
                index = cursor
            default:
                elements.append(.literal(scalar))
                index += 1
            }
        }
        return .success(GlobPattern(elements: elements))
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// - Parameters:
    ///   - ignoringCase: compare lowercased scalars (the pattern should be lowercased too).
    ///   - leadingPeriod: like `FNM_PERIOD`, a leading `.` in `text` only matches a literal `.`.
    func matches(_ text: String, ignoringCase: Bool = false, leadingPeriod: Bool = false) -> Bool {
        let subject = Array((ignoringCase ? text.lowercased() : text).unicodeScalars)
        if leadingPeriod, subject.first == ".", elements.first != .literal(".") {
            return false
        }
        return Self.match(elements[...], subject[...])
    }

    /// Iterative matching with single-star backtracking (linear in practice, no recursion blow-up).
    private static func match(_ pattern: ArraySlice<Element>, _ text: ArraySlice<Unicode.Scalar>) -> Bool {
        var p = pattern.startIndex
        var t = text.startIndex
        var starP: Int? = nil
        var starT = text.startIndex
        while t < text.endIndex {
            if p < pattern.endIndex {
                switch pattern[p] {
                case .star:
                    starP = p
                    starT = t
                    p += 1
                    continue
                case .any:
                    p += 1
                    t += 1
                    continue
                case .literal(let scalar) where scalar == text[t]:
                    p += 1
                    t += 1
                    continue
                case .set(let ranges, let negated) where ranges.contains(where: { $0.contains(text[t]) }) != negated:
                    p += 1
                    t += 1
                    continue
                default:
                    break
                }
            }
            guard let star = starP else { return false }
            p = star + 1
            starT += 1
            t = starT
        }
        while p < pattern.endIndex, pattern[p] == .star { p += 1 }
        return p == pattern.endIndex
    }
}

/// Why a glob could not be parsed.
enum GlobError: Error, Equatable {
    /// A `[` without its `]`.
    case unbalancedBracket
    /// A `\` with nothing after it.
    case trailingBackslash
    /// A POSIX class such as `[[:digit:]]`, which this matcher does not implement.
    case characterClass
    /// A range such as `[z-a]`.
    case reversedRange(Unicode.Scalar, Unicode.Scalar)

    /// A message fragment naming the problem and the fix.
    var reason: String {
        switch self {
        case .unbalancedBracket: "unbalanced '[' in glob; close it with ']' or escape it as '\\['"
        case .trailingBackslash: "glob ends with '\\'; remove it or escape it as '\\\\'"
        case .characterClass:
            "character classes such as '[:digit:]' are not supported in globs; write a range such as '[0-9]'"
        case .reversedRange(let low, let high): "range '\(low)-\(high)' in glob is reversed; write '\(high)-\(low)'"
        }
    }
}

/// The names rotations get, and recognising them again: `NAME` + the `dateext:` suffix (strftime, default
/// `-%Y%m%d`) + `.N` when that name was taken (a second rotation the same day) + `.gz` once compressed.
/// Retention, compression and the glob filter find a log's rotations by parsing names back, so a file that
/// merely starts with the log's name (`app.log.bak`, `app.log-old`) is never taken for a rotation.
struct RotationNames: Sendable {
    /// One piece of the date format, as a matcher.
    enum Token: Equatable, Sendable {
        case literal(UInt8)
        /// `count` ASCII digits (`%Y` 4, `%m` 2, …); `count` 0: one or more (`%s`).
        case digits(Int)
        /// A conversion Vigil does not model (`%b`, `%A`, …): one or more bytes other than `/` and `.`.
        case word
        /// `%e`: a day of the month padded with a space (" 7" or "17").
        case paddedDay
    }

    /// What a rotation's name says.
    struct Parsed: Equatable, Sendable {
        /// The log's name (`app.log`).
        var base: String
        /// The name without `.gz` (`app.log-20250413.1`): a rotation and its compressed form share it.
        var stem: String
        /// The `.N` counter, 0 when none.
        var counter: Int
        var compressed: Bool
    }

    let format: String
    let tokens: [Token]

    init(dateFormat: String) {
        format = dateFormat
        var tokens: [Token] = []
        var bytes = Array(dateFormat.utf8)[...]
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "%"), let conversion = bytes.popFirst() else {
                tokens.append(.literal(byte))
                continue
            }
            switch conversion {
            case UInt8(ascii: "Y"), UInt8(ascii: "G"): tokens.append(.digits(4))
            case UInt8(ascii: "m"), UInt8(ascii: "d"), UInt8(ascii: "H"), UInt8(ascii: "M"), UInt8(ascii: "S"),
                UInt8(ascii: "y"), UInt8(ascii: "V"), UInt8(ascii: "U"), UInt8(ascii: "W"), UInt8(ascii: "I"),
                UInt8(ascii: "C"), UInt8(ascii: "g"):
                tokens.append(.digits(2))
            case UInt8(ascii: "j"): tokens.append(.digits(3))
            case UInt8(ascii: "u"), UInt8(ascii: "w"): tokens.append(.digits(1))
            case UInt8(ascii: "s"): tokens.append(.digits(0))
            case UInt8(ascii: "e"): tokens.append(.paddedDay)
            case UInt8(ascii: "F"):
                tokens += [
                    .digits(4), .literal(UInt8(ascii: "-")), .digits(2), .literal(UInt8(ascii: "-")), .digits(2),
                ]
            case UInt8(ascii: "%"): tokens.append(.literal(UInt8(ascii: "%")))
            default: tokens.append(.word)
            }
        }
        self.tokens = tokens
    }

    /// `base` + `suffix` (the formatted date) with `.counter` when it is not 0.
    static func name(base: String, suffix: String, counter: Int) -> String {
        counter == 0 ? base + suffix : base + suffix + ".\(counter)"
    }

    /// Parses `name` as a rotation of a log whose name `isBase` accepts; nil when it is not one.
    func parse(_ name: String, isBase: (String) -> Bool) -> Parsed? {
        var bytes = Array(name.utf8)
        var compressed = false
        if bytes.count > 3 && bytes.suffix(3).elementsEqual(".gz".utf8) {
            compressed = true
            bytes.removeLast(3)
        }
        let stem = String(decoding: bytes, as: UTF8.self)
        // With and without a `.N` counter (a date format may itself end in `.DD`, so both readings are tried).
        var readings: [(bytes: ArraySlice<UInt8>, counter: Int)] = [(bytes[...], 0)]
        if let dot = bytes.lastIndex(of: UInt8(ascii: ".")), dot + 1 < bytes.count,
            bytes[(dot + 1)...].allSatisfy({ $0 >= 48 && $0 <= 57 }), bytes.count - dot - 1 <= 6,
            let counter = Int(String(decoding: bytes[(dot + 1)...], as: UTF8.self)), counter > 0
        {
            readings.insert((bytes[..<dot], counter), at: 0)
        }
        for reading in readings {
            // The date suffix ends the reading; try every place it could start, longest base first.
            var start = reading.bytes.endIndex - 1
            while start > reading.bytes.startIndex {
                if matches(tokens[...], reading.bytes[start...]) {
                    let base = String(decoding: reading.bytes[..<start], as: UTF8.self)
                    if isBase(base) {
                        return Parsed(base: base, stem: stem, counter: reading.counter, compressed: compressed)
                    }
                }
                start -= 1
            }
        }
        return nil
    }

    /// Whether `text` is exactly what `tokens` describe.
    private func matches(_ tokens: ArraySlice<Token>, _ text: ArraySlice<UInt8>) -> Bool {
        guard let token = tokens.first else { return text.isEmpty }
        let rest = tokens.dropFirst()
        func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
        switch token {
        case .literal(let byte):
            return text.first == byte && matches(rest, text.dropFirst())
        case .digits(let count) where count > 0:
            guard text.count >= count, text.prefix(count).allSatisfy(isDigit) else { return false }
            return matches(rest, text.dropFirst(count))
        case .digits:
            let run = text.prefix(while: isDigit).count
            guard run > 0 else { return false }
            for length in stride(from: run, through: 1, by: -1) where matches(rest, text.dropFirst(length)) {
                return true
            }
            return false
        case .paddedDay:
            guard text.count >= 2, text.first == 32 || isDigit(text.first!), isDigit(text[text.startIndex + 1]) else {
                return false
            }
            return matches(rest, text.dropFirst(2))
        case .word:
            let run = text.prefix(while: { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ".") }).count
            guard run > 0 else { return false }
            for length in stride(from: run, through: 1, by: -1) where matches(rest, text.dropFirst(length)) {
                return true
            }
            return false
        }
    }
}

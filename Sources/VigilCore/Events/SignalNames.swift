/// Linux signal names and numbers, for `signal:` in `exit:` filters and in `restart`/`reload`.
///
/// The numbers are those of x86_64 and arm64 (the generic Linux ABI; see `man 7 signal`, "Signal
/// numbering for standard signals"). Alpha, MIPS, SPARC and PA-RISC number some signals differently;
/// Vigil does not run there. Kept here rather than taken from Glibc so that VigilCore and VigilRules stay free of libc.
public enum SignalNames {
    /// Standard signals without the `SIG` prefix, with their aliases (`IOT`, `CLD`, `POLL`).
    public static let standard: [(name: String, number: Int32)] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7),
        ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14),
        ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20),
        ("TTIN", 21), ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27),
        ("WINCH", 28), ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ]

    /// The lowest real-time signal as glibc numbers it (`SIGRTMIN`: the kernel's 32 and 33 are taken by
    /// the threading library), as `kill -l` shows it.
    public static let realTimeMinimum: Int32 = 34
    /// `SIGRTMAX`.
    public static let realTimeMaximum: Int32 = 64
    /// The range of signal numbers a rule may give.
    public static let numbers: ClosedRange<Int32> = 1...64

    /// How the forms are described in errors.
    public static let expectedForms = "a name such as HUP, TERM or SIGUSR1, or a number from 1 to 64"

    /// The number for a name (any case, with or without `SIG`; `RTMIN`, `RTMIN+N`, `RTMAX-N`) or for a
    /// decimal number from 1 to 64; nil otherwise.
    public static func number(_ text: String) -> Int32? {
        if let value = Int32(text), !text.hasPrefix("+") {
            return numbers.contains(value) ? value : nil
        }
        var name = Substring(text.uppercased())
        if name.hasPrefix("SIG") { name = name.dropFirst(3) }
        if let entry = standard.first(where: { $0.name == name }) { return entry.number }
        for (prefix, base, sign) in [("RTMIN", realTimeMinimum, Int32(1)), ("RTMAX", realTimeMaximum, Int32(-1))]
        where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            if rest.isEmpty { return base }
            let operatorCharacter: Character = sign > 0 ? "+" : "-"
            guard rest.first == operatorCharacter, rest.count > 1,
                rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }),
                let offset = Int32(rest.dropFirst())
            else { return nil }
            let value = base + sign * offset
            return (realTimeMinimum...realTimeMaximum).contains(value) ? value : nil
        }
        return nil
    }

    /// The name of a signal number for alerts: `SIGKILL`, `SIGRTMIN+2`; `signal 99` for numbers that are
    /// not signals.
    public static func name(of number: Int32) -> String {
        if let entry = standard.first(where: { $0.number == number }) { return "SIG" + entry.name }
        if number == realTimeMinimum { return "SIGRTMIN" }
        if number > realTimeMinimum && number <= realTimeMaximum { return "SIGRTMIN+\(number - realTimeMinimum)" }
        return "signal \(number)"
    }
}

/// Linux signal numbers and names (x86_64 and the other common architectures; see `man 7 signal`).
/// Rules name signals (`signal: HUP`), alerts say how a process died (`killed by SIGKILL`).
public enum SignalNames {
    /// Names without the `SIG` prefix, indexed by number (0 unused).
    static let names: [String] = [
        "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
        "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM",
        "PROF", "WINCH", "IO", "PWR", "SYS",
    ]

    /// The lowest real-time signal number as the kernel counts (glibc reserves 32 and 33 for itself).
    static let realTimeMinimum: Int32 = 34
    static let realTimeMaximum: Int32 = 64

    /// `SIGKILL` for 9, `SIGRTMIN+2` for 36, `signal 99` for numbers that are not signals.
    public static func name(of number: Int32) -> String {
        if number > 0 && Int(number) < names.count { return "SIG" + names[Int(number)] }
        if number >= realTimeMinimum && number <= realTimeMaximum {
            return number == realTimeMinimum ? "SIGRTMIN" : "SIGRTMIN+\(number - realTimeMinimum)"
        }
        return "signal \(number)"
    }

    /// The number for a name with or without `SIG`, in any case (`hup`, `SIGHUP`, `RTMIN+1`), or a number
    /// 1...64 written in digits; nil when it is not a signal.
    public static func number(of text: String) -> Int32? {
        if let value = Int32(text) { return (1...realTimeMaximum).contains(value) ? value : nil }
        var upper = text.uppercased()
        if upper.hasPrefix("SIG") { upper.removeFirst(3) }
        if let index = names.firstIndex(of: upper), index > 0 { return Int32(index) }
        if upper == "IOT" { return 6 }
        if upper == "POLL" { return 29 }
        if upper.hasPrefix("RTMIN") {
            let rest = upper.dropFirst(5)
            if rest.isEmpty { return realTimeMinimum }
            guard rest.hasPrefix("+"), let offset = Int32(rest.dropFirst()) else { return nil }
            let value = realTimeMinimum + offset
            return value <= realTimeMaximum ? value : nil
        }
        return nil
    }

    /// Every name, with `SIG`, for "expected one of" messages.
    public static var allNames: [String] { names.dropFirst().map { "SIG" + $0 } }
}

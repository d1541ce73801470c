extension MessageTemplate {
    /// The default message of a host kind (`pressure`, `disk`, `listening`, `escalation`) by its key.
    public static func defaultHostSource(for kind: String) -> String? {
        switch kind {
        case "pressure": defaultPressureSource
        case "disk": defaultDiskSource
        case "listening": defaultListeningSource
        case "escalation": defaultEscalationSource
        default: nil
        }
    }

    /// The default resolution message of a host kind by its key.
    public static func defaultHostResolvedSource(for kind: String) -> String? {
        switch kind {
        case "pressure": defaultPressureResolvedSource
        case "disk": defaultDiskResolvedSource
        case "listening": defaultListeningResolvedSource
        case "escalation": defaultEscalationResolvedSource
        default: nil
        }
    }
}

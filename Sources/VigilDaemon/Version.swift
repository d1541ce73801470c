/// Vigil's version, printed by `vigil --version` and carried in the alert stream's health records.
public enum VigilVersion {
    public static let string = "0.1.0"
}

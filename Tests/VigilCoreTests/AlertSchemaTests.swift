import Testing
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// Checks `docs/alert.schema.json` against the encoder: the schema lists exactly the members the encoder
/// writes, in the same order, and every sample record validates against it.
@Suite struct AlertSchemaTests {
    /// The schema, parsed by the tests' own JSON parser.
    private static func loadSchema() throws -> JSONValue {
        var path = "\(#filePath)"
        for _ in 0..<3 {
            path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        }
        path += "/docs/alert.schema.json"
        guard let file = fopen(path, "rb") else { throw SchemaFileError(path: path) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return try TestJSON.parse(bytes)
    }

    /// The schema file's properties follow the encoder's member order, and optional members are exactly
    /// `path` and `labels`.
    @Test func schemaMatchesEncoder() throws {
        let schema = try Self.loadSchema()
        #expect(schema["$schema"]?.stringValue == "https://json-schema.org/draft/2020-12/schema")
        #expect(schema["properties"]?.memberNames == AlertRecord.jsonKeyOrder)
        let required = try #require(schema["required"]?.arrayValue).compactMap(\.stringValue)
        #expect(required == AlertRecord.jsonKeyOrder.filter { $0 != "path" && $0 != "labels" })
        guard case .bool(false) = schema["additionalProperties"] else {
            Issue.record("additionalProperties must be false")
            return
        }
        for name in AlertRecord.jsonKeyOrder {
            #expect(schema["properties"]?[name]?["description"]?.stringValue?.isEmpty == false, "\(name)")
        }
    }

    /// Every sample record validates against the schema.
    @Test(arguments: SampleAlerts.all)
    func samplesValidate(record: AlertRecord) throws {
        let schema = try Self.loadSchema()
        let instance = try TestJSON.parse(record.jsonLine())
        var problems: [String] = []
        MiniSchema.validate(instance, against: schema, at: "$", problems: &problems)
        #expect(problems.isEmpty, "\(problems)")
    }

    /// The validator itself rejects a record that breaks the schema, so the test above can fail.
    @Test func validatorCatchesViolations() throws {
        let schema = try Self.loadSchema()
        let bad = try TestJSON.parse(
            #"{"id":"XYZ","time":"now","host":"h","rule":"r","severity":"fatal","state":"firing","kind":"k","message":"m","changes":[{"key":"k","old":1}],"fingerprint":"0000000000000000","extra":true}"#
        )
        var problems: [String] = []
        MiniSchema.validate(bad, against: schema, at: "$", problems: &problems)
        #expect(problems.count == 6, "\(problems)")
    }
}

/// The path of a schema file that could not be opened.
private struct SchemaFileError: Error {
    /// The path tried.
    var path: String
}

/// The subset of JSON Schema 2020-12 that `docs/alert.schema.json` uses: `type`, `enum`, `pattern`,
/// `properties`, `required`, `additionalProperties` (false or a schema) and `items`.
private enum MiniSchema {
    /// Appends a line to `problems` for each way `instance` breaks `schema`.
    static func validate(_ instance: JSONValue, against schema: JSONValue, at path: String, problems: inout [String]) {
        if let type = schema["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? ""]
            guard allowed.contains(typeName(instance)) else {
                problems.append("\(path): \(typeName(instance)) is not \(allowed)")
                return
            }
        }
        if let choices = schema["enum"]?.arrayValue?.compactMap(\.stringValue),
            let string = instance.stringValue, !choices.contains(string)
        {
            problems.append("\(path): '\(string)' is not one of \(choices)")
        }
        if let pattern = schema["pattern"]?.stringValue, let string = instance.stringValue {
            do {
                let regex = try Regex(pattern)
                if string.firstMatch(of: regex) == nil {
                    problems.append("\(path): '\(string)' does not match \(pattern)")
                }
            } catch {
                problems.append("\(path): bad pattern \(pattern)")
            }
        }
        if case .object(let members) = instance {
            let properties = schema["properties"]
            for required in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
            where !members.contains(where: { $0.name == required }) {
                problems.append("\(path): missing '\(required)'")
            }
            for member in members {
                let memberPath = "\(path).\(member.name)"
                if let propertySchema = properties?[member.name] {
                    validate(member.value, against: propertySchema, at: memberPath, problems: &problems)
                } else if case .bool(false) = schema["additionalProperties"] {
                    problems.append("\(memberPath): not allowed")
                } else if let additional = schema["additionalProperties"], case .object = additional {
                    validate(member.value, against: additional, at: memberPath, problems: &problems)
                }
            }
        }
        if case .array(let elements) = instance, let items = schema["items"] {
            for (index, element) in elements.enumerated() {
                validate(element, against: items, at: "\(path)[\(index)]", problems: &problems)
            }
        }
    }

    /// The JSON Schema type name of a value.
    private static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .object: "object"
        case .array: "array"
        case .string: "string"
        case .number: "number"
        case .bool: "boolean"
        case .null: "null"
        }
    }
}

/// The seed's pixel: four 16-bit channels, 8 bytes, as in the .NET example.
public struct MyColor: BitwiseCopyable, Equatable, CustomStringConvertible {
    /// The red channel.
    public var red: Int16
    /// The green channel.
    public var green: Int16
    /// The blue channel.
    public var blue: Int16
    /// The alpha channel.
    public var alpha: Int16

    /// Creates a color from its channels.
    public init(red: Int16, green: Int16, blue: Int16, alpha: Int16) {
        (self.red, self.green, self.blue, self.alpha) = (red, green, blue, alpha)
    }

    /// Makes the color brighter, saturating at `Int16.max`; the seed's `Brighten`.
    public mutating func brighten(by value: Int16) {
        red = red.addingSaturated(value)
        green = green.addingSaturated(value)
        blue = blue.addingSaturated(value)
        alpha = alpha.addingSaturated(value)
    }

    /// `(r, g, b, a)`.
    public var description: String { "(\(red), \(green), \(blue), \(alpha))" }
}

extension Int16 {
    fileprivate func addingSaturated(_ value: Int16) -> Int16 {
        let (sum, overflow) = addingReportingOverflow(value)
        return overflow ? (value > 0 ? .max : .min) : sum
    }
}

/// Parses `--name value` options and flags from the command line, for the examples.
public struct ExampleArguments {
    private var arguments: [String]

    /// Reads the process's arguments.
    public init() { arguments = Array(CommandLine.arguments.dropFirst()) }

    /// Whether `--flag` was given.
    public func has(_ flag: String) -> Bool { arguments.contains(flag) }

    /// The value after `--name`, if given.
    public func value(_ name: String) -> String? {
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }
}

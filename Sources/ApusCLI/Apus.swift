import ArgumentParser
import Glibc
import LinuxSupport

/// The `apus` command.
public struct Apus: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "apus",
        abstract: "A virtual machine monitor for Linux x86-64 on /dev/kvm.",
        discussion: """
        Examples:
          apus run --kernel vmlinuz --initrd initrd.img --cpus 2 --memory 1G --disk path=disk.img
          apus run --bare guest/build/bare/hello.bin
          apus run --bare guest/build/bare/pio-loop.bin --trace exits --stats
          apus run --bare guest/build/bare/smp.bin --cpus 2 --memory 64M
          apus run --kernel vmlinuz --initrd initrd.img --control /tmp/apus.sock
          apus ctl /tmp/apus.sock stats
          apus bench exits
        """,
        subcommands: [RunCommand.self, CtlCommand.self, BenchCommand.self],
        defaultSubcommand: nil)

    public init() {}
}

extension Apus {
    /// `apus [subcommand…] --help` for the subcommand the user typed, e.g. `apus bench boot --help`.
    private static var helpCommand: String {
        var words = ["apus"]
        var node: any ParsableCommand.Type = Apus.self
        for argument in CommandLine.arguments.dropFirst() {
            guard let next = node.configuration.subcommands.first(where: { $0.configuration.commandName == argument }) else { break }
            words.append(argument)
            node = next
        }
        return (words + ["--help"]).joined(separator: " ")
    }

    /// Parses the process arguments, runs the command and exits with its status.
    /// `CLIError`s print as one `apus: …` line with status 1; usage errors as ArgumentParser does.
    public static func runMain() -> Never {
        // A console, log or benchmark pipe whose reader went away must not kill the VMM (and
        // the guest with it) by SIGPIPE: writes fail with EPIPE instead.
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot(RunCommand.normalizedArguments(Array(CommandLine.arguments.dropFirst())))
            try command.run()
            exit(withError: nil)
        } catch let error as CLIError {
            fputsError("apus: \(error)")
            Glibc.exit(1)
        } catch {
            // Help and explicit exit codes go through ArgumentParser; usage errors become one
            // line naming the problem (the full usage is one `--help` away).
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            fputsError("apus: \(message(for: error)) (see '\(helpCommand)')")
            Glibc.exit(code.rawValue)
        }
    }
}

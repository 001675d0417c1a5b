import Glibc

/// Runs a program to completion and captures its standard output (stderr passes through).
/// Used by `apus bench` for its reference programs; not for anything on a hot path.
public func runProcess(_ path: String, _ arguments: [String]) throws(SystemError) -> (status: Int32, output: String) {
    var pipeFDs: [Int32] = [0, 0]
    guard pipe(&pipeFDs) == 0 else { throw .current("pipe") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_addclose(&actions, pipeFDs[0])

    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = argv.withUnsafeBufferPointer { posix_spawn(&pid, path, &actions, nil, UnsafeMutablePointer(mutating: $0.baseAddress!), environ) }
    close(pipeFDs[1])
    guard rc == 0 else {
        close(pipeFDs[0])
        throw SystemError("run \(path)", errno: rc)
    }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress!, $0.count) }
        if n > 0 { output += buffer[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        break
    }
    close(pipeFDs[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (exitStatus(fromWaitStatus: status), String(decoding: output, as: UTF8.self))
}

/// A `waitpid` status as a shell would report it: the exit status, or 128 + the fatal signal.
func exitStatus(fromWaitStatus status: Int32) -> Int32 {
    // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (they are macros).
    status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}

// The registry's latency (openExisting + close) and NamedMutex lock/unlock, uncontended and
// with a second process contending, beside a process-private pthread mutex in the same run.

import Benchmark
import Glibc
import MappedRegistry
import MemoryMappedFiles

let registryDirectory = "/tmp/mapped-records-bench-registry-\(getpid())"
let registry = try! Registry.open(directory: registryDirectory)
let published = try! MemoryMappedFile.createNew(name: "bench-map", capacity: 4096, registry: registry)
let mutex = try! NamedMutex(name: "bench-mutex", registry: registry)
nonisolated(unsafe) let privateMutex: UnsafeMutablePointer<pthread_mutex_t> = {
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
    return mutex
}()
nonisolated(unsafe) var contender: pid_t = 0
/// Where the contending process counts its lock/unlock pairs: proof that it contended.
nonisolated(unsafe) let contenderCount: UnsafeMutablePointer<UInt64> = {
    let memory = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)!
    return memory.bindMemory(to: UInt64.self, capacity: 1)
}()

/// Removes this process's registry and the shared memory of its names when it exits: the map
/// and the mutex are globals that are never closed, and nothing may be left in /tmp or /dev/shm.
func removeRegistryAtExit() {
    atexit {
        let pid = getpid()
        _ = system("rm -rf /tmp/mapped-records-bench-registry-\(pid) /dev/shm/mapped-records.\(pid).*")
    }
}

let benchmarks: @Sendable () -> Void = {
    // Globals are lazy: create the name and the mutex now, in this process, before any fork.
    removeRegistryAtExit()
    _ = published.name
    _ = mutex.name
    _ = contenderCount
    let perOperation = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal], timeUnits: .nanoseconds, scalingFactor: .mega,
        maxDuration: .seconds(3), maxIterations: 30)

    Benchmark(
        "openExisting + close",
        configuration: .init(
            metrics: [.wallClock], timeUnits: .microseconds, maxDuration: .seconds(3), maxIterations: 2000)
    ) { _ in
        let map = try MemoryMappedFile.openExisting(name: "bench-map", registry: registry)
        try map.close()
    }

    Benchmark("lock + unlock uncontended: private pthread mutex", configuration: perOperation) { benchmark in
        for _ in benchmark.scaledIterations {
            pthread_mutex_lock(privateMutex)
            pthread_mutex_unlock(privateMutex)
        }
    }
    Benchmark("lock + unlock uncontended: NamedMutex", configuration: perOperation) { benchmark in
        for _ in benchmark.scaledIterations {
            try mutex.lock()
            try mutex.unlock()
        }
    }
    Benchmark(
        "lock + unlock, 2 processes contending: NamedMutex",
        configuration: .init(
            metrics: [.wallClock], timeUnits: .nanoseconds, scalingFactor: .kilo, maxDuration: .seconds(3),
            maxIterations: 30,
            setup: {
                // The second process only locks and unlocks the mapped mutex until it is killed.
                contenderCount.pointee = 0
                contender = fork()
                if contender == 0 {
                    while true {
                        try mutex.lock()
                        try mutex.unlock()
                        contenderCount.pointee &+= 1
                    }
                }
                while contenderCount.pointee == 0 { sched_yield() }  // it is running
            },
            teardown: {
                kill(contender, SIGKILL)
                var status: Int32 = 0
                waitpid(contender, &status, 0)
                print("contender: \(contenderCount.pointee) lock/unlock pairs meanwhile")
            })
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            try mutex.lock()
            try mutex.unlock()
        }
    }
}

//! Facts about this operating-system process, read from `/proc` (Linux;
//! zero elsewhere): CPU seconds and peak resident memory, for the agent's
//! metrics and the benchmark's report; and the one allocator setting the
//! binary makes at start. It must not keep state.

/// glibc's malloc raises its mmap threshold after each large free, so
/// multi-MiB segment buffers end up on arena heaps that are not given back,
/// and one arena per thread multiplies that: a full-speed agent then holds
/// hundreds of MiB more than it uses. Large buffers are mmapped (and
/// returned on free) from 1 MiB up, and arenas are capped. Measured with
/// `skiff bench --url` against an agent (BENCHMARKS.md). A no-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// User + system CPU seconds of this process (Linux; 0 elsewhere).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 here.
    (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_S
}

/// `/proc` CPU times count in USER_HZ ticks, 100 a second on Linux.
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// `/proc/self/status` sizes are in KiB.
const KIB_PER_MIB: f64 = 1024.0;

/// Peak resident set size in MiB (Linux VmHWM; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / KIB_PER_MIB)
}
